//! Rules of the workspace that the compiler does not check, checked here (in the spirit of
//! rust-analyzer's `tidy.rs`).

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `parley-core` is independent of transport and storage: none of these may be among its
/// dependencies, so the domain can be tested with the local ports and reused everywhere.
#[test]
fn core_imports_no_transport_or_storage_crate() {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let core = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|package| package["name"] == "parley-core")
        .expect("parley-core in the workspace");
    let forbidden = [
        "axum",
        "hyper",
        "tower",
        "tokio-tungstenite",
        "tungstenite",
        "reqwest",
        "sqlx",
        "rusqlite",
        "redis",
        "async-nats",
        "object_store",
        "parley-gateway",
        "parley-store-sqlite",
    ];
    for dependency in core["dependencies"].as_array().unwrap() {
        let name = dependency["name"].as_str().unwrap();
        assert!(
            !forbidden.contains(&name),
            "parley-core must not depend on {name}"
        );
    }
}

/// Every non-test source file opens with a `//!` module doc saying what it is for.
#[test]
fn every_source_file_has_a_module_doc() {
    let mut missing = Vec::new();
    let crates = workspace_root().join("crates");
    for entry in std::fs::read_dir(&crates).unwrap() {
        let source = entry.unwrap().path().join("src");
        visit(&source, &mut |file| {
            let text = std::fs::read_to_string(file).unwrap();
            if !text.trim_start().starts_with("//!") {
                missing.push(file.strip_prefix(&crates).unwrap().display().to_string());
            }
        });
    }
    assert!(missing.is_empty(), "files without a `//!` doc: {missing:?}");
}

fn visit(directory: &Path, check: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            visit(&path, check);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            check(&path);
        }
    }
}
