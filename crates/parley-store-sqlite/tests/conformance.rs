//! The shared `Store` conformance suite, run against SQLite (a fresh file per test).

async fn new_store() -> (std::sync::Arc<dyn parley_core::Store>, tempfile::TempDir) {
    let directory = tempfile::tempdir().expect("temp dir");
    let store = parley_store_sqlite::SqliteStore::open(directory.path())
        .await
        .expect("open sqlite store");
    (std::sync::Arc::new(store), directory)
}

parley_testkit::store_conformance!(new_store);
