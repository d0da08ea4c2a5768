//! The search index's own file (`parley-search.db`): built again when it is missing or
//! belongs to another database, caught up after a restart, and scrubbed of deleted words
//! while the store runs.

use parley_core::Store;
use parley_store_sqlite::SqliteStore;
use parley_testkit::store::{delete, edit, found, group, say, send, user};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn open(directory: &Path) -> (SqliteStore, Arc<dyn Store>) {
    let store = SqliteStore::open(directory)
        .await
        .expect("open sqlite store");
    (store.clone(), Arc::new(store))
}

/// Whether any of the store's files (both databases and their WALs) holds `word`.
fn files_hold(directory: &Path, word: &str) -> Vec<String> {
    let mut holding = Vec::new();
    for entry in std::fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        if bytes
            .windows(word.len())
            .any(|window| window == word.as_bytes())
        {
            holding.push(path.file_name().unwrap().to_string_lossy().to_string());
        }
    }
    holding
}

/// An index file deleted while the server was down is built again from the messages; an
/// edit and a delete made before are honoured by the new index.
#[tokio::test]
async fn a_missing_index_file_is_built_again() {
    let directory = tempfile::tempdir().unwrap();
    let (closer, store) = open(directory.path()).await;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let chat = group(&store, &[alice.clone(), bob.clone()]).await;
    let first = send(&store, say(&chat, &alice, "orange marmalade"))
        .await
        .seq;
    let second = send(&store, say(&chat, &bob, "orange juice")).await.seq;
    let third = send(&store, say(&chat, &bob, "lemon curd")).await.seq;
    send(&store, edit(&chat, &bob, second, "apple juice")).await;
    send(&store, delete(&chat, &bob, third)).await;
    assert_eq!(found(&store, &alice, "orange", &chat).await, vec![first]);
    closer.close().await;
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(directory.path().join(format!("parley-search.db{suffix}")));
    }

    let (_, store) = open(directory.path()).await;
    assert_eq!(found(&store, &alice, "orange", &chat).await, vec![first]);
    assert_eq!(found(&store, &alice, "juice", &chat).await, vec![second]);
    assert!(found(&store, &alice, "lemon", &chat).await.is_empty());
}

/// An index file that has indexed further than this database's log (a copy of another
/// database's index, or a database restored from a backup) is emptied and built again,
/// not trusted: its position would skip this database's new messages.
#[tokio::test]
async fn an_index_file_of_another_database_is_rebuilt() {
    let theirs = tempfile::tempdir().unwrap();
    {
        let (closer, store) = open(theirs.path()).await;
        let carol = user(&store, "carol").await;
        let dave = user(&store, "dave").await;
        let chat = group(&store, &[carol.clone(), dave]).await;
        for n in 0..50 {
            send(&store, say(&chat, &carol, &format!("their words {n}"))).await;
        }
        assert_eq!(found(&store, &carol, "their", &chat).await.len(), 50);
        closer.close().await;
    }
    let ours = tempfile::tempdir().unwrap();
    let (closer, store) = open(ours.path()).await;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let chat = group(&store, &[alice.clone(), bob]).await;
    let seq = send(&store, say(&chat, &alice, "our words")).await.seq;
    closer.close().await;
    drop(store);
    std::fs::copy(
        theirs.path().join("parley-search.db"),
        ours.path().join("parley-search.db"),
    )
    .unwrap();

    let (_, store) = open(ours.path()).await;
    assert_eq!(found(&store, &alice, "words", &chat).await, vec![seq]);
    let later = send(&store, say(&chat, &alice, "more words")).await.seq;
    assert_eq!(
        found(&store, &alice, "words", &chat).await,
        vec![seq, later]
    );
}

/// Messages committed by a store that was dropped without closing (its indexer had no
/// chance to run) are found after the next open: the log is in the messages' file.
#[tokio::test]
async fn what_was_logged_before_a_restart_is_indexed() {
    let directory = tempfile::tempdir().unwrap();
    let chat;
    let alice;
    let mut seqs = Vec::new();
    {
        let (_, store) = open(directory.path()).await;
        alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;
        chat = group(&store, &[alice.clone(), bob]).await;
        for n in 0..20 {
            seqs.push(
                send(&store, say(&chat, &alice, &format!("kumquat {n}")))
                    .await
                    .seq,
            );
        }
    }
    let (_, store) = open(directory.path()).await;
    assert_eq!(found(&store, &alice, "kumquat", &chat).await, seqs);
}

/// While the store runs (no close, no restart), a deleted message's words leave every
/// file within a few seconds: the message's row, its edit entries, the index and both
/// WALs.
#[tokio::test]
async fn deleted_words_leave_the_files_while_running() {
    let directory = tempfile::tempdir().unwrap();
    let (_closer, store) = open(directory.path()).await;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let chat = group(&store, &[alice.clone(), bob.clone()]).await;
    let word = "qvbnmzephyrquill";
    let seq = send(&store, say(&chat, &alice, &format!("{word} one")))
        .await
        .seq;
    send(&store, edit(&chat, &alice, seq, &format!("{word} two"))).await;
    assert_eq!(found(&store, &bob, word, &chat).await, vec![seq]);
    assert!(
        !files_hold(directory.path(), word).is_empty(),
        "the word was written"
    );
    send(&store, delete(&chat, &alice, seq)).await;
    assert!(found(&store, &bob, word, &chat).await.is_empty());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let holding = files_hold(directory.path(), word);
        if holding.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still holding the deleted word after 10 s: {holding:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The index follows a long run of sends, edits and deletes, across a restart in the
/// middle and a rebuild at the end: every word finds exactly the messages whose current
/// text has it. (A `delete` with terms other than those indexed would corrupt the lists:
/// this is where that shows.)
#[tokio::test]
async fn the_index_follows_every_change_in_order() {
    const WORDS: [&str; 8] = [
        "apple", "banana", "cherry", "damson", "elder", "fig", "grape", "hazel",
    ];
    let directory = tempfile::tempdir().unwrap();
    let mut random = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |below: usize| {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        (random % below as u64) as usize
    };
    let (mut closer, mut store) = open(directory.path()).await;
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    let chat = group(&store, &[alice.clone(), bob.clone()]).await;
    // seq → current words (None once deleted).
    let mut model: std::collections::BTreeMap<i64, Option<Vec<&str>>> = Default::default();
    for step in 0..300 {
        if step == 150 {
            closer.close().await;
            (closer, store) = open(directory.path()).await;
        }
        let text: Vec<&str> = (0..1 + next(3)).map(|_| WORDS[next(WORDS.len())]).collect();
        let live: Vec<i64> = model
            .iter()
            .filter(|(_, words)| words.is_some())
            .map(|(seq, _)| *seq)
            .collect();
        match next(5) {
            0 if !live.is_empty() => {
                let target = live[next(live.len())];
                send(&store, edit(&chat, &alice, target, &text.join(" "))).await;
                model.insert(target, Some(text));
            }
            1 if !live.is_empty() => {
                let target = live[next(live.len())];
                send(&store, delete(&chat, &alice, target)).await;
                model.insert(target, None);
            }
            _ => {
                let seq = send(&store, say(&chat, &alice, &text.join(" "))).await.seq;
                model.insert(seq, Some(text));
            }
        }
        if step % 50 == 49 {
            for word in WORDS {
                assert_eq!(
                    found(&store, &bob, word, &chat).await,
                    having(&model, word),
                    "{word} at {step}"
                );
            }
        }
    }
    closer.close().await;
    drop(store);
    let _ = std::fs::remove_file(directory.path().join("parley-search.db"));
    let (_, store) = open(directory.path()).await;
    for word in WORDS {
        assert_eq!(
            found(&store, &bob, word, &chat).await,
            having(&model, word),
            "{word} rebuilt"
        );
    }
}

/// The `seq`s whose current words (in the test's model) include `word`, ascending.
fn having(model: &std::collections::BTreeMap<i64, Option<Vec<&str>>>, word: &str) -> Vec<i64> {
    model
        .iter()
        .filter(|(_, words)| words.as_ref().is_some_and(|words| words.contains(&word)))
        .map(|(seq, _)| *seq)
        .collect()
}
