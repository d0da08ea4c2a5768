//! The saved login: `session.json` in the user's config directory, readable only by them.
//!
//! The directory is `$PARLEY_CONFIG_DIR` if set, else `<config dir>/parley` (e.g.
//! `~/.config/parley`). The file holds one session (server, user, device, token), is
//! written atomically with mode 0600, and is the only state the CLI keeps on disk.

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// File name of the saved session inside the config directory.
pub const SESSION_FILE: &str = "session.json";

/// One logged-in device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The server this token belongs to (normalized, no trailing slash).
    pub server: String,
    pub username: String,
    pub user_id: String,
    pub device_id: String,
    pub token: String,
}

/// `$PARLEY_CONFIG_DIR`, or `<config dir>/parley`.
pub fn config_dir() -> anyhow::Result<PathBuf> {
    if let Some(overridden) = std::env::var_os("PARLEY_CONFIG_DIR").filter(|dir| !dir.is_empty()) {
        return Ok(PathBuf::from(overridden));
    }
    let base =
        dirs::config_dir().context("no config directory on this system; set PARLEY_CONFIG_DIR")?;
    Ok(base.join("parley"))
}

/// A server URL as stored and compared: without a trailing slash.
pub fn normalize_server(server: &str) -> String {
    server.trim().trim_end_matches('/').to_owned()
}

/// Reads the session in `dir`; `None` when there is none.
pub fn load(dir: &Path) -> anyhow::Result<Option<Session>> {
    let path = dir.join(SESSION_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    let session = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a parley session file", path.display()))?;
    Ok(Some(session))
}

/// Writes the session to `dir` (created 0700 if missing), replacing any other, 0600.
pub fn save(dir: &Path, session: &Session) -> anyhow::Result<PathBuf> {
    create_private_dir(dir)?;
    let path = dir.join(SESSION_FILE);
    let temporary_path = dir.join(format!("{SESSION_FILE}.tmp"));
    let text = serde_json::to_string_pretty(session)?;
    write_private_file(&temporary_path, text.as_bytes())
        .with_context(|| format!("writing {}", temporary_path.display()))?;
    std::fs::rename(&temporary_path, &path)
        .with_context(|| format!("replacing {}", path.display()))?;
    Ok(path)
}

/// Deletes the session in `dir`; `false` if there was none.
pub fn remove(dir: &Path) -> anyhow::Result<bool> {
    let path = dir.join(SESSION_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error).with_context(|| format!("deleting {}", path.display())),
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

#[cfg(unix)]
fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // A leftover temporary file keeps its old mode; force 0600 either way.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// Reads a password from the terminal without echo.
pub(crate) fn prompt_password(prompt: &str) -> anyhow::Result<String> {
    rpassword::prompt_password(prompt).context(
        "cannot read a password without a terminal: pass --password or set PARLEY_PASSWORD",
    )
}

/// A new password, typed twice.
pub(crate) fn prompt_new_password() -> anyhow::Result<String> {
    let password = prompt_password("new password: ")?;
    let repeated = prompt_password("repeat password: ")?;
    anyhow::ensure!(password == repeated, "the passwords differ");
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_session() -> Session {
        Session {
            server: "http://127.0.0.1:8080".into(),
            username: "alice".into(),
            user_id: "u_1".into(),
            device_id: "d_1".into(),
            token: "secret".into(),
        }
    }

    /// A saved session loads back equal; removing it leaves no session.
    #[test]
    fn save_load_remove_round_trip() {
        let temporary = tempfile::tempdir().unwrap();
        let dir = temporary.path().join("nested").join("parley");
        assert_eq!(load(&dir).unwrap(), None);
        let path = save(&dir, &sample_session()).unwrap();
        assert_eq!(path, dir.join(SESSION_FILE));
        assert_eq!(load(&dir).unwrap(), Some(sample_session()));
        let replacement = Session {
            username: "bob".into(),
            ..sample_session()
        };
        save(&dir, &replacement).unwrap();
        assert_eq!(load(&dir).unwrap().unwrap().username, "bob");
        assert!(remove(&dir).unwrap());
        assert!(!remove(&dir).unwrap());
        assert_eq!(load(&dir).unwrap(), None);
    }

    /// The token file is private to its owner (0600), and so is a fresh directory (0700).
    #[cfg(unix)]
    #[test]
    fn session_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let temporary = tempfile::tempdir().unwrap();
        let dir = temporary.path().join("parley");
        std::fs::create_dir_all(temporary.path()).unwrap();
        std::fs::write(temporary.path().join("unrelated"), "x").unwrap();
        let path = save(&dir, &sample_session()).unwrap();
        let file_mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(file_mode, 0o600);
        let dir_mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
    }

    /// A corrupt file is an error naming the file, not a silent logout.
    #[test]
    fn corrupt_session_is_an_error() {
        let temporary = tempfile::tempdir().unwrap();
        std::fs::write(temporary.path().join(SESSION_FILE), "{not json").unwrap();
        let error = load(temporary.path()).unwrap_err();
        assert!(format!("{error:#}").contains(SESSION_FILE));
    }

    #[test]
    fn servers_are_normalized() {
        assert_eq!(normalize_server(" http://h:1/ "), "http://h:1");
        assert_eq!(normalize_server("http://h:1"), "http://h:1");
    }
}
