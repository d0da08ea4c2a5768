//! The command-line client, run as the real `parley` binary against a real server.

use crate::harness::*;
use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs `parley ARGS` with its own session directory.
fn parley(server: &TestServer, session_dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(args)
        .env("PARLEY_SERVER", &server.url)
        .env("PARLEY_CONFIG_DIR", session_dir)
        .env("PARLEY_PASSWORD", "password-123")
        .output()
        .expect("the parley binary runs")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// alice and bob registered, each with a session directory of their own, and the direct
/// chat alice created with bob (its id).
fn alice_and_bob_in_a_chat(server: &TestServer) -> (tempfile::TempDir, tempfile::TempDir, String) {
    let alice_dir = tempfile::tempdir().unwrap();
    let bob_dir = tempfile::tempdir().unwrap();
    stdout(&parley(server, alice_dir.path(), &["register", "alice"]));
    stdout(&parley(server, bob_dir.path(), &["register", "bob"]));
    let created: serde_json::Value = serde_json::from_str(&stdout(&parley(
        server,
        alice_dir.path(),
        &["create", "direct", "bob", "--json"],
    )))
    .unwrap();
    let chat = created["conversation_id"].as_str().unwrap().to_owned();
    (alice_dir, bob_dir, chat)
}

/// register, create, send, conversations, history, read, chat (over stdin), logout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_tour_works_end_to_end() {
    let server = TestServer::start().await;
    let alice_dir = tempfile::tempdir().unwrap();
    let bob_dir = tempfile::tempdir().unwrap();
    let (alice, bob) = (alice_dir.path(), bob_dir.path());
    stdout(&parley(
        &server,
        alice,
        &["register", "alice", "--display-name", "Alice"],
    ));
    stdout(&parley(&server, bob, &["register", "bob"]));

    let created: serde_json::Value = serde_json::from_str(&stdout(&parley(
        &server,
        alice,
        &["create", "direct", "bob", "--json"],
    )))
    .unwrap();
    let conversation_id = created["conversation_id"].as_str().unwrap().to_owned();
    stdout(&parley(
        &server,
        alice,
        &["send", &conversation_id, "Hello", "Bob!"],
    ));

    let listed: serde_json::Value =
        serde_json::from_str(&stdout(&parley(&server, bob, &["conversations", "--json"]))).unwrap();
    let conversations = listed.get("conversations").unwrap_or(&listed);
    assert_eq!(
        conversations[0]["conversation_id"],
        conversation_id.as_str()
    );
    assert_eq!(conversations[0]["unread_count"], 1);
    let history = stdout(&parley(&server, bob, &["history", &conversation_id]));
    assert!(history.contains("Hello Bob!"), "{history}");
    stdout(&parley(&server, bob, &["read", &conversation_id, "1"]));

    // The interactive chat sends each stdin line; end of input closes it cleanly.
    let mut chat = Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(["chat", &conversation_id])
        .env("PARLEY_SERVER", &server.url)
        .env("PARLEY_CONFIG_DIR", bob)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    chat.stdin
        .take()
        .unwrap()
        .write_all(b"hi from the chat command\n")
        .unwrap();
    let chat_output = tokio::task::spawn_blocking(move || chat.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let chat_text = stdout(&chat_output);
    assert!(
        chat_text.contains("Hello Bob!"),
        "chat shows history first: {chat_text}"
    );
    let alice_history = eventually(
        "the chat line is stored",
        std::time::Duration::from_millis(50),
        || {
            let text = stdout(&parley(&server, alice, &["history", &conversation_id]));
            std::future::ready(text.contains("hi from the chat command").then_some(text))
        },
    )
    .await;
    assert!(alice_history.contains("Hello Bob!"));

    stdout(&parley(&server, alice, &["logout"]));
    let after = parley(&server, alice, &["whoami"]);
    assert!(!after.status.success(), "logged out: whoami fails");
}

/// `parley bench` drives a real server and reports zero loss and duplication.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_generator_reports_a_clean_run() {
    let server = TestServer::start().await;
    let session_dir = tempfile::tempdir().unwrap();
    let output = parley(
        &server,
        session_dir.path(),
        &[
            "bench",
            "--users",
            "6",
            "--conversations",
            "4",
            "--group-ratio",
            "0.5",
            "--group-members",
            "3",
            "--rate",
            "20",
            "--duration",
            "2s",
            "--warmup",
            "0s",
            "--drain",
            "3s",
            "--json",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert!(report["sent"].as_u64().unwrap() >= 20, "{report}");
    assert_eq!(report["acked"], report["sent"], "{report}");
    assert!(report["delivered"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(
        report["delivered"], report["expected_deliveries"],
        "{report}"
    );
    assert_eq!(
        (report["lost"].as_u64(), report["duplicated"].as_u64()),
        (Some(0), Some(0)),
        "{report}"
    );
}

/// react, edit, delete (for everyone and for me), forward and search from the command
/// line, checked through history as the other user sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_changes_forwards_and_searches_messages() {
    let server = TestServer::start().await;
    let alice_dir = tempfile::tempdir().unwrap();
    let bob_dir = tempfile::tempdir().unwrap();
    let (alice, bob) = (alice_dir.path(), bob_dir.path());
    stdout(&parley(&server, alice, &["register", "alice"]));
    stdout(&parley(&server, bob, &["register", "bob"]));
    let id_of = |json: String| -> String {
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        value["conversation_id"].as_str().unwrap().to_owned()
    };
    let direct = id_of(stdout(&parley(
        &server,
        alice,
        &["create", "direct", "bob", "--json"],
    )));
    let group = id_of(stdout(&parley(
        &server,
        alice,
        &["create", "group", "Trip", "bob", "--json"],
    )));
    stdout(&parley(
        &server,
        alice,
        &["send", &direct, "Holiday in Crète?"],
    ));
    stdout(&parley(&server, alice, &["send", &direct, "typo hre"]));
    assert!(
        stdout(&parley(&server, bob, &["react", &direct, "1", "👍"])).contains("reacted 👍 to #1")
    );
    stdout(&parley(
        &server,
        alice,
        &["edit", &direct, "2", "typo here"],
    ));
    let forwarded = stdout(&parley(&server, alice, &["forward", &direct, "1", &group]));
    assert!(
        forwarded.contains(&format!("forwarded as #2 in {group}")),
        "{forwarded}"
    );

    let history = stdout(&parley(&server, bob, &["history", &direct]));
    assert!(
        history.contains("#1") && history.contains("Holiday in Crète? [👍 1]"),
        "{history}"
    );
    assert!(history.contains("typo here (edited)"), "{history}");
    assert!(history.contains("[bob reacted 👍 to #1]"), "{history}");
    let in_group = stdout(&parley(&server, bob, &["history", &group]));
    assert!(
        in_group.contains("[forwarded] Holiday in Crète?"),
        "{in_group}"
    );

    let found = stdout(&parley(&server, bob, &["search", "crete", "HOL"]));
    assert_eq!(found.lines().count(), 2, "{found}");
    assert!(found.contains("«Holiday» in «Crète»?"), "{found}");
    let json: serde_json::Value = serde_json::from_str(&stdout(&parley(
        &server,
        bob,
        &["search", "hol", "--in", &group, "--json"],
    )))
    .unwrap();
    assert_eq!(json["results"].as_array().unwrap().len(), 1);

    stdout(&parley(&server, alice, &["delete", &direct, "1"]));
    stdout(&parley(&server, bob, &["delete", &direct, "2", "--for-me"]));
    let after = stdout(&parley(&server, bob, &["history", &direct]));
    assert!(after.contains("alice: [deleted]"), "{after}");
    assert!(after.contains("[hidden by you]"), "{after}");
    assert!(!after.contains("Crète"), "{after}");
    let refused = parley(&server, bob, &["edit", &direct, "3", "not mine"]);
    assert!(!refused.status.success());
    assert_eq!(
        stdout(&parley(&server, bob, &["search", "typo"])).trim(),
        "no messages found"
    );
}

/// `parley block`, `blocked`, `privacy`, `disappear`, `clear`: a blocked user's send
/// fails with the server's reason, everything is undone as it was done, and a cleared
/// chat's history is empty for the one who cleared it only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_blocks_sets_privacy_and_clears_a_chat() {
    let server = TestServer::start().await;
    let (alice_dir, bob_dir, chat) = alice_and_bob_in_a_chat(&server);
    let (alice, bob) = (alice_dir.path(), bob_dir.path());

    assert!(stdout(&parley(&server, alice, &["block", "bob"])).contains("blocked bob"));
    let listed: serde_json::Value =
        serde_json::from_str(&stdout(&parley(&server, alice, &["blocked", "--json"]))).unwrap();
    assert_eq!(listed[0]["username"], "bob");
    let refused = parley(&server, bob, &["send", &chat, "hello?"]);
    assert!(!refused.status.success());
    let reason = String::from_utf8_lossy(&refused.stderr);
    assert!(reason.contains("block"), "{reason}");
    stdout(&parley(&server, alice, &["block", "bob", "--undo"]));
    assert!(stdout(&parley(&server, alice, &["blocked"])).contains("you block nobody"));
    stdout(&parley(&server, bob, &["send", &chat, "hello again"]));

    let privacy = stdout(&parley(&server, alice, &["privacy", "contacts"]));
    assert!(privacy.contains("contacts"), "{privacy}");
    let me: serde_json::Value =
        serde_json::from_str(&stdout(&parley(&server, alice, &["whoami", "--json"]))).unwrap();
    assert_eq!(me["last_seen_privacy"], "contacts");
    let wrong = parley(&server, alice, &["privacy", "friends"]);
    assert!(!wrong.status.success(), "an unknown choice is refused");

    stdout(&parley(&server, alice, &["disappear", &chat, "7d"]));
    let listed: serde_json::Value =
        serde_json::from_str(&stdout(&parley(&server, bob, &["conversations", "--json"]))).unwrap();
    let conversations = listed.get("conversations").unwrap_or(&listed);
    assert_eq!(conversations[0]["disappearing_seconds"], 604_800);
    stdout(&parley(&server, bob, &["disappear", &chat, "off"]));

    let cleared = stdout(&parley(&server, alice, &["clear", &chat]));
    assert!(cleared.contains("deleted for you up to #"), "{cleared}");
    let history: serde_json::Value = serde_json::from_str(&stdout(&parley(
        &server,
        alice,
        &["history", &chat, "--json"],
    )))
    .unwrap();
    let messages = history.get("messages").unwrap_or(&history);
    assert_eq!(messages.as_array().map(Vec::len), Some(0), "{history}");
    let kept: serde_json::Value = serde_json::from_str(&stdout(&parley(
        &server,
        bob,
        &["history", &chat, "--json"],
    )))
    .unwrap();
    let kept = kept.get("messages").unwrap_or(&kept);
    assert!(
        kept.as_array().is_some_and(|kept| !kept.is_empty()),
        "bob keeps his"
    );
}

/// `parley account export | logout-everywhere | delete`: the export is the user's own
/// messages; logging out everywhere ends every session; deleting ends the login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_exports_logs_out_everywhere_and_deletes_the_account() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let (me, other) = (dir.path(), other_dir.path());
    stdout(&parley(&server, me, &["register", "erin"]));
    stdout(&parley(&server, other, &["register", "finn"]));
    let created: serde_json::Value = serde_json::from_str(&stdout(&parley(
        &server,
        me,
        &["create", "direct", "finn", "--json"],
    )))
    .unwrap();
    let chat = created["conversation_id"].as_str().unwrap().to_owned();
    stdout(&parley(&server, me, &["send", &chat, "mine", "to", "keep"]));
    stdout(&parley(&server, other, &["send", &chat, "finn's", "own"]));

    let file = me.join("export.json");
    let said = stdout(&parley(
        &server,
        me,
        &["account", "export", "--output", file.to_str().unwrap()],
    ));
    assert!(said.contains("1 messages exported"), "{said}");
    let export: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(export["messages"].as_array().unwrap().len(), 1);
    assert_eq!(export["messages"][0]["content"], "mine to keep");

    // A second login of erin's, then out everywhere: both fail after.
    let second = tempfile::tempdir().unwrap();
    stdout(&parley(&server, second.path(), &["login", "erin"]));
    stdout(&parley(&server, me, &["account", "logout-everywhere"]));
    assert!(!parley(&server, second.path(), &["whoami"]).status.success());
    assert!(!parley(&server, me, &["whoami"]).status.success());

    stdout(&parley(&server, me, &["login", "erin"]));
    stdout(&parley(&server, me, &["account", "delete"]));
    assert!(
        !parley(&server, me, &["login", "erin"]).status.success(),
        "no login any more"
    );
}

/// `send --attach`, `download` and `avatar`: a photo goes up with a caption, the other
/// side saves the same picture, and a profile picture is set and removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sends_downloads_and_sets_pictures() {
    let server = TestServer::start().await;
    let (alice_dir, bob_dir, conversation_id) = alice_and_bob_in_a_chat(&server);
    let (alice, bob) = (alice_dir.path(), bob_dir.path());
    let photo_path = alice.join("beach.png");
    std::fs::write(&photo_path, crate::media::png(200, 100)).unwrap();
    let photo = photo_path.to_str().unwrap();
    stdout(&parley(
        &server,
        alice,
        &["send", &conversation_id, "the beach", "--attach", photo],
    ));

    let history: serde_json::Value = serde_json::from_str(&stdout(&parley(
        &server,
        bob,
        &["history", &conversation_id, "--json"],
    )))
    .unwrap();
    let messages = history.get("messages").unwrap_or(&history);
    let sent = messages.as_array().unwrap().last().unwrap();
    assert_eq!(sent["content"], "the beach");
    let media_id = sent["attachments"][0]["media_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let saved = bob.join("saved.png");
    stdout(&parley(
        &server,
        bob,
        &["download", &media_id, "-o", saved.to_str().unwrap()],
    ));
    let picture = image::load_from_memory(&std::fs::read(&saved).unwrap()).unwrap();
    assert_eq!((picture.width(), picture.height()), (200, 100));
    let plain = stdout(&parley(&server, bob, &["history", &conversation_id]));
    assert!(plain.contains("photo 200×100"), "{plain}");
    assert!(plain.contains(&media_id), "{plain}");

    stdout(&parley(&server, alice, &["avatar", photo]));
    let me: serde_json::Value =
        serde_json::from_str(&stdout(&parley(&server, alice, &["whoami", "--json"]))).unwrap();
    let avatar = me["avatar_media_id"].as_str().unwrap().to_owned();
    stdout(&parley(
        &server,
        bob,
        &[
            "download",
            &avatar,
            "--thumbnail",
            "-o",
            saved.to_str().unwrap(),
        ],
    ));
    stdout(&parley(&server, alice, &["avatar", "--remove"]));
    let me: serde_json::Value =
        serde_json::from_str(&stdout(&parley(&server, alice, &["whoami", "--json"]))).unwrap();
    assert!(me.get("avatar_media_id").is_none(), "{me}");
}
