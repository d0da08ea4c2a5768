//! Search latency over a large store, and the cost of indexing on the append path.
//!
//! ```sh
//! cargo run --release -p parley-server --example search_bench -- [--database-url URL]
//!     [--messages 1000000] [--conversations 10000] [--member-of 200] [--queries 2000]
//!     [--unindexed true]
//! ```
//!
//! `--unindexed true` fills with a content type that is not indexed (everything else the
//! same), to read the cost of indexing off the append rate; its searches find nothing.
//!
//! Fills a fresh store (SQLite in a temporary directory, or the PostgreSQL database at
//! `--database-url`, in a fresh schema dropped at the end) through `Store::append_messages`
//! in batches of 512, as the committer does: `--conversations` groups of three members, a
//! searching user in `--member-of` of them, messages of 6-20 words drawn from a Zipf-like
//! vocabulary of 20,000 words (so some words are in most conversations and most are
//! rare). Then runs `--queries` searches as that user, half across all their
//! conversations and half within one, with one or two words (whole words and 3-letter
//! prefixes), and reports p50/p95/p99/max of `Store::search_messages` plus the snippet
//! (what `GET /search` does besides HTTP), and the append rate while filling.

use parley_core::ids;
use parley_core::search::{query_terms, snippet};
use parley_core::store::{NewConversation, NewMessage, SearchQuery, UserRecord};
use parley_core::Store;
use parley_proto::{ContentType, ConversationId, ConversationType, DeviceId, Role, Timestamp};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    database_url: Option<String>,
    messages: usize,
    conversations: usize,
    member_of: usize,
    queries: usize,
    unindexed: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        database_url: None,
        messages: 1_000_000,
        conversations: 10_000,
        member_of: 200,
        queries: 2_000,
        unindexed: false,
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let value = given
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        let number = || value.parse::<usize>().expect("a number");
        match flag.as_str() {
            "--database-url" => args.database_url = Some(value.clone()),
            "--messages" => args.messages = number(),
            "--conversations" => args.conversations = number(),
            "--member-of" => args.member_of = number(),
            "--queries" => args.queries = number(),
            "--unindexed" => args.unindexed = value == "true",
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(args.member_of <= args.conversations);
    args
}

/// A small deterministic generator (xorshift), so runs are comparable.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    /// Zipf-like: rank r is picked about as often as 1/r.
    fn zipf(&mut self, ranks: usize) -> usize {
        let uniform = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((ranks as f64).powf(uniform) as usize)
            .saturating_sub(1)
            .min(ranks - 1)
    }
}

/// 20,000 pronounceable words, some with accents.
fn vocabulary() -> Vec<String> {
    let onsets = [
        "b", "c", "d", "f", "g", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "cr", "st",
        "tr",
    ];
    let vowels = ["a", "e", "i", "o", "u", "é", "è", "ou", "ai"];
    let codas = ["", "n", "r", "s", "l", "x", "nt", "st"];
    let mut words = Vec::with_capacity(20_000);
    let mut random = Random(0x9E37_79B9_7F4A_7C15);
    while words.len() < 20_000 {
        let syllables = 2 + random.below(3);
        let mut word = String::new();
        for _ in 0..syllables {
            word.push_str(onsets[random.below(onsets.len())]);
            word.push_str(vowels[random.below(vowels.len())]);
        }
        word.push_str(codas[random.below(codas.len())]);
        if !words.contains(&word) {
            words.push(word);
        }
    }
    words
}

fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    let index = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1e3
}

async fn user(store: &Arc<dyn Store>, name: &str) -> parley_proto::UserId {
    let user_id = ids::new_user_id();
    store
        .insert_user(UserRecord {
            user_id: user_id.clone(),
            username: name.to_owned(),
            password_hash: "$argon2id$bench".into(),
            display_name: name.to_owned(),
            status_message: None,
            avatar_url: None,
            avatar_media_id: None,
            push_previews: false,
            last_seen_privacy: parley_proto::LastSeenPrivacy::Everyone,
            deleted_at: None,
            last_seen_at: None,
            created_at: Timestamp::now(),
        })
        .await
        .expect("insert user");
    user_id
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = parse_args();
    let directory = tempfile::tempdir().expect("a temporary directory");
    let mut schema = None;
    let store: Arc<dyn Store> = match &args.database_url {
        None => Arc::new(
            parley_store_sqlite::SqliteStore::open(directory.path())
                .await
                .expect("open SQLite"),
        ),
        Some(url) => {
            let name = format!("search_bench_{}", std::process::id());
            let admin = sqlx::PgPool::connect(url)
                .await
                .expect("connect PostgreSQL");
            sqlx::query(&format!("CREATE SCHEMA {name}"))
                .execute(&admin)
                .await
                .expect("create schema");
            schema = Some((admin, name.clone()));
            let options: sqlx::postgres::PgConnectOptions = url.parse().expect("a database URL");
            let options = options.options([("search_path", name.as_str())]);
            Arc::new(
                parley_store_postgres::PgStore::connect_with(
                    options,
                    parley_store_postgres::PgStore::pool_options(),
                )
                .await
                .expect("open PostgreSQL"),
            )
        }
    };
    let words = vocabulary();
    let mut random = Random(42);

    // Users: the searcher plus 3,000 others; groups of three.
    let searcher = user(&store, "searcher").await;
    let mut others = Vec::new();
    for index in 0..3_000 {
        others.push(user(&store, &format!("user{index}")).await);
    }
    let started = Instant::now();
    let mut conversation_ids = Vec::with_capacity(args.conversations);
    for index in 0..args.conversations {
        let mut members = vec![(others[random.below(others.len())].clone(), Role::Owner)];
        let searchers = index % (args.conversations / args.member_of) == 0
            && conversation_ids.len() / (args.conversations / args.member_of) < args.member_of;
        let second = if searchers {
            searcher.clone()
        } else {
            others[random.below(others.len())].clone()
        };
        let third = others[random.below(others.len())].clone();
        for candidate in [second, third] {
            if !members.iter().any(|(user_id, _)| *user_id == candidate) {
                members.push((candidate, Role::Member));
            }
        }
        let conversation_id = ids::new_conversation_id();
        store
            .insert_conversation(NewConversation {
                conversation_id: conversation_id.clone(),
                kind: ConversationType::Group,
                name: Some(format!("group {index}")),
                description: None,
                direct_key: None,
                members: members.clone(),
                created_at: Timestamp::now(),
                system_message: None,
            })
            .await
            .expect("insert conversation");
        conversation_ids.push((conversation_id, members, searchers));
    }
    let mine: Vec<ConversationId> = conversation_ids
        .iter()
        .filter(|(_, _, searchers)| *searchers)
        .map(|(id, _, _)| id.clone())
        .collect();
    eprintln!(
        "{} conversations ({} with the searcher) in {:.1} s",
        conversation_ids.len(),
        mine.len(),
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let mut sent = 0usize;
    while sent < args.messages {
        let batch: Vec<NewMessage> = (0..512.min(args.messages - sent))
            .map(|_| {
                let (conversation_id, members, _) =
                    &conversation_ids[random.below(conversation_ids.len())];
                let sender = &members[random.below(members.len())].0;
                let length = 6 + random.below(15);
                let content: Vec<&str> = (0..length)
                    .map(|_| words[random.zipf(words.len())].as_str())
                    .collect();
                let message_id = ids::new_message_id();
                NewMessage {
                    client_msg_id: message_id.to_string(),
                    message_id,
                    conversation_id: conversation_id.clone(),
                    sender_id: sender.clone(),
                    sender_device_id: DeviceId::from("d_bench"),
                    content: content.join(" "),
                    content_type: if args.unindexed {
                        ContentType::from("x-bench")
                    } else {
                        ContentType::TEXT
                    },
                    reply_to_seq: None,
                    created_at: Timestamp::now(),
                    system: None,
                    target_seq: None,
                    mentions: Vec::new(),
                    forwarded: false,
                    attachments: Vec::new(),
                }
            })
            .collect();
        sent += batch.len();
        store.append_messages(batch).await.expect("append");
        if sent % 100_000 < 512 {
            eprintln!(
                "{sent} messages, {:.0}/s",
                sent as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    let fill = started.elapsed();
    println!(
        "filled {} messages in {} conversations in {:.1} s: {:.0} appends/s (batches of 512, indexing included)",
        args.messages,
        args.conversations,
        fill.as_secs_f64(),
        args.messages as f64 / fill.as_secs_f64()
    );

    for (label, within) in [("all 200 conversations", false), ("one conversation", true)] {
        let mut latencies = Vec::with_capacity(args.queries / 2);
        let mut hits = 0usize;
        for query_index in 0..args.queries / 2 {
            // One or two words, whole or a 3-letter prefix, common and rare alike.
            let mut text = String::new();
            for _ in 0..1 + query_index % 2 {
                let word = &words[random.zipf(words.len())];
                let term = if random.below(2) == 0 {
                    word.clone()
                } else {
                    word.chars().take(3).collect()
                };
                text.push_str(&term);
                text.push(' ');
            }
            let terms = query_terms(&text);
            let conversation = within.then(|| &mine[random.below(mine.len())]);
            let begun = Instant::now();
            let found = store
                .search_messages(SearchQuery {
                    user_id: &searcher,
                    terms: &terms,
                    conversation_id: conversation,
                    before: None,
                    limit: 21,
                })
                .await
                .expect("search");
            for message in &found {
                std::hint::black_box(snippet(&message.content, &terms));
            }
            latencies.push(begun.elapsed());
            hits += found.len();
        }
        latencies.sort();
        println!(
            "search within {label}: {} queries, p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {:.1} results per query (page of 20 + 1)",
            latencies.len(),
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.95),
            percentile(&latencies, 0.99),
            percentile(&latencies, 1.0),
            hits as f64 / latencies.len() as f64
        );
    }
    if let Some((admin, name)) = schema {
        let _ = sqlx::query(&format!("DROP SCHEMA {name} CASCADE"))
            .execute(&admin)
            .await;
    }
}
