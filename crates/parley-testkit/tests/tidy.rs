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
        // Encoding for the wire is the gateway's (and a network bus adapter's) job.
        "serde_json",
    ];
    for dependency in core["dependencies"].as_array().unwrap() {
        let name = dependency["name"].as_str().unwrap();
        assert!(
            !forbidden.contains(&name),
            "parley-core must not depend on {name}"
        );
    }
}

/// The core speaks the domain's language: what an error is called on the wire, how a
/// frame is encoded and what a REST body looks like are decided in the gateway
/// (ARCHITECTURE.md, "Code map").
#[test]
fn core_knows_no_wire_codes_or_encodings() {
    let mut crossings = Vec::new();
    let source = workspace_root().join("crates/parley-core/src");
    visit(&source, &mut |file| {
        let text = std::fs::read_to_string(file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for needle in [
                "ErrorCode",
                ".to_json(",
                "serde_json",
                "http_status",
                "parley_proto::rest",
            ] {
                if code.contains(needle) {
                    crossings.push(format!(
                        "{}:{}: {needle}",
                        file.strip_prefix(&source).unwrap().display(),
                        number + 1
                    ));
                }
            }
        }
    });
    assert!(
        crossings.is_empty(),
        "wire concerns in parley-core: {crossings:?}"
    );
}

/// Most lines in one source file. A file past it holds more than one idea and is split
/// along them (as `chat/` and the SQLite store were); the few that are one long idea are
/// listed below with the size they may not outgrow.
const MAX_FILE_LINES: usize = 600;
const LONG_FILES: &[(&str, usize, &str)] = &[
    (
        "parley-testkit/src/store.rs",
        1400,
        "the Store conformance cases: one behaviour each",
    ),
    (
        "parley-testkit/src/bus.rs",
        700,
        "the Bus conformance cases: one behaviour each",
    ),
    (
        "parley-store-sqlite/src/store.rs",
        800,
        "the `impl Store` in trait order, one method each",
    ),
];

#[test]
fn source_files_stay_small() {
    let mut too_long = Vec::new();
    let crates = workspace_root().join("crates");
    for entry in std::fs::read_dir(&crates).unwrap() {
        let source = entry.unwrap().path().join("src");
        visit(&source, &mut |file| {
            let name = file.strip_prefix(&crates).unwrap().display().to_string();
            let lines = std::fs::read_to_string(file).unwrap().lines().count();
            let limit = LONG_FILES
                .iter()
                .find(|(long, _, _)| *long == name)
                .map_or(MAX_FILE_LINES, |(_, limit, _)| *limit);
            if lines > limit {
                too_long.push(format!("{name}: {lines} lines (at most {limit})"));
            }
        });
    }
    assert!(
        too_long.is_empty(),
        "split these files along their ideas: {too_long:?}"
    );
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
