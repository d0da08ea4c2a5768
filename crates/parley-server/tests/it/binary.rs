//! The real `parley` binary as a child process, for tests that kill it or weigh it.
//! Shared by the `it` crate and `tests/hostile.rs` (through `#[path]`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Starts `parley serve` on a free port over `data_dir`, with cheap Argon2, generous
/// limits and `env` on top; returns the child and its URL.
pub fn spawn_binary(data_dir: &Path, env: &[(&str, String)]) -> (Child, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_parley"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("PARLEY_AUTH__ARGON2_MEMORY_KIB", "1024")
        .env("PARLEY_AUTH__ARGON2_ITERATIONS", "1")
        .env("PARLEY_LIMITS__USER_MESSAGES_PER_MINUTE", "1000000")
        .env("PARLEY_LIMITS__AUTH_ATTEMPTS_PER_MINUTE", "100000")
        .env("PARLEY_LIMITS__FRAMES_PER_SECOND", "100000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("the parley binary starts");
    let stdout = child.stdout.take().unwrap();
    // The address comes on the first line that has one (warnings may come before it).
    let mut reader = BufReader::new(stdout);
    let mut seen = String::new();
    for _ in 0..20 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(url) = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
        {
            return (child, url.to_owned());
        }
        seen.push_str(&line);
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("no URL in {seen:?}")
}
