//! A fresh PostgreSQL schema per test, on the server `PARLEY_TEST_DATABASE_URL` names
//! (default `postgres://postgres@127.0.0.1:5432/test`).
//!
//! Each test gets `CREATE SCHEMA t_<ulid>` and connects with `search_path` set to it, so
//! tests share one database (and run in parallel) without seeing each other's rows; the
//! guard drops the schema afterwards. A server that cannot be reached fails the test with
//! the URL and the variable to set: these tests never skip.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use std::str::FromStr;
use std::time::Duration;

/// The variable that names the server the tests use.
pub const DATABASE_URL_VARIABLE: &str = "PARLEY_TEST_DATABASE_URL";

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn database_url() -> String {
    std::env::var(DATABASE_URL_VARIABLE).unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned())
}

/// One test's schema; dropped, with everything in it, when the guard is.
pub struct Schema {
    url: String,
    name: String,
}

impl Schema {
    /// Creates a fresh, empty schema. Panics, naming the URL and the variable, if
    /// PostgreSQL cannot be reached.
    pub async fn create() -> Self {
        let url = database_url();
        let mut connection = admin_connection(&url).await;
        let name = format!("t_{}", ulid::Ulid::new().to_string().to_lowercase());
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut connection)
            .await
            .unwrap_or_else(|error| panic!("cannot create the test schema {name}: {error}"));
        connection.close().await.ok();
        Self { url, name }
    }

    /// Options whose connections see only this schema. They carry its name as their
    /// `application_name`, so the guard can end the ones a failed test left open.
    pub fn connect_options(&self) -> PgConnectOptions {
        PgConnectOptions::from_str(&self.url)
            .expect("a valid URL (it connected before)")
            .options([("search_path", self.name.as_str())])
            .application_name(&self.name)
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

async fn admin_connection(url: &str) -> PgConnection {
    let connected = match PgConnectOptions::from_str(url) {
        Ok(options) => tokio::time::timeout(
            Duration::from_secs(10),
            PgConnection::connect_with(&options),
        )
        .await
        .unwrap_or_else(|_| Err(sqlx::Error::Protocol("no answer within 10 s".into()))),
        Err(error) => Err(error),
    };
    connected.unwrap_or_else(|error| {
        panic!(
            "PostgreSQL is required for these tests: cannot connect to {url} ({error}). \
             Start PostgreSQL there, or set {DATABASE_URL_VARIABLE} to a server that \
             accepts connections."
        )
    })
}

impl Drop for Schema {
    fn drop(&mut self) {
        let url = self.url.clone();
        let name = self.name.clone();
        // On a thread of its own: the guard is dropped inside the test's runtime, which
        // cannot block on a future. The test's own connections are ended first: one that
        // a panic left inside a transaction would hold locks the drop waits for.
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?;
            runtime.block_on(async {
                let mut connection = PgConnection::connect(&url)
                    .await
                    .map_err(|error| error.to_string())?;
                sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE application_name = $1 AND pid <> pg_backend_pid()",
                )
                .bind(&name)
                .execute(&mut connection)
                .await
                .map_err(|error| error.to_string())?;
                sqlx::query("SET lock_timeout = '10s'")
                    .execute(&mut connection)
                    .await
                    .map_err(|error| error.to_string())?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .execute(&mut connection)
                    .await
                    .map_err(|error| error.to_string())?;
                connection.close().await.map_err(|error| error.to_string())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("test schema {} left behind: {error}", self.name),
            Err(_) => eprintln!("test schema {} left behind: the drop panicked", self.name),
        }
    }
}
