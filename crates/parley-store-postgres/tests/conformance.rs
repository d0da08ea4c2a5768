//! The shared `Store` conformance suite, run against PostgreSQL (a fresh schema per test).

mod support;

async fn new_store() -> (std::sync::Arc<dyn parley_core::Store>, support::Schema) {
    let schema = support::Schema::create().await;
    let store = parley_store_postgres::PgStore::connect_with(
        schema.connect_options(),
        parley_store_postgres::PgStore::pool_options().max_connections(4),
    )
    .await
    .expect("connect a PgStore to its test schema");
    (std::sync::Arc::new(store), schema)
}

parley_testkit::store_conformance!(new_store);
