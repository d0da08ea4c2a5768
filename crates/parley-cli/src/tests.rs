//! Command lines parse as documented; usernames resolve exactly.

use super::*;
use clap::Parser;

#[derive(clap::Parser)]
struct Harness {
    #[command(subcommand)]
    command: Command,
}

fn parse(arguments: &[&str]) -> Command {
    Harness::try_parse_from(std::iter::once("parley").chain(arguments.iter().copied()))
        .unwrap_or_else(|error| panic!("{arguments:?}: {error}"))
        .command
}

/// The documented command lines parse into the expected commands.
#[test]
fn command_lines_parse() {
    assert!(matches!(
        parse(&["register", "alice", "--display-name", "Alice", "--password", "pw"]),
        Command::Register { ref username, ref display_name, ref password }
            if username == "alice" && display_name.as_deref() == Some("Alice") && password.as_deref() == Some("pw")
    ));
    assert!(matches!(
        parse(&["create", "group", "team", "bob", "carol"]),
        Command::Create(CreateCommand::Group { ref name, ref usernames, json: false })
            if name == "team" && usernames.len() == 2
    ));
    assert!(matches!(
        parse(&["create", "direct", "bob", "--json"]),
        Command::Create(CreateCommand::Direct { json: true, .. })
    ));
    assert!(matches!(
        parse(&["send", "c_1", "hello", "there"]),
        Command::Send { ref text, .. } if text.join(" ") == "hello there"
    ));
    assert!(matches!(
        parse(&["history", "c_1", "--limit", "5", "--before", "40"]),
        Command::History {
            limit: 5,
            before: Some(40),
            ..
        }
    ));
    assert!(matches!(
        parse(&["read", "c_1", "7"]),
        Command::Read { seq: 7, .. }
    ));
    assert!(matches!(
        parse(&["bench", "--mode", "idle", "--connections", "10", "--json"]),
        Command::Bench { json: true, ref args } if args.connections == 10
    ));
    assert!(Harness::try_parse_from(["parley", "send", "c_1"]).is_err());
    assert!(matches!(
        parse(&["send", "c_1", "--attach", "a.png", "--attach", "b.pdf"]),
        Command::Send { ref text, ref attach, .. } if text.is_empty() && attach.len() == 2
    ));
}

fn profile(username: &str) -> PublicProfile {
    PublicProfile {
        user_id: UserId::from(format!("u_{username}")),
        username: username.into(),
        display_name: username.to_uppercase(),
        status_message: None,
        avatar_url: None,
        avatar_media_id: None,
    }
}

/// Search results are prefix matches; only the exact username is taken.
#[test]
fn usernames_resolve_exactly() {
    let candidates = vec![profile("bobby"), profile("bob"), profile("bo")];
    assert_eq!(
        pick_exact_username(candidates.clone(), "@Bob")
            .unwrap()
            .user_id,
        UserId::from("u_bob")
    );
    assert!(pick_exact_username(candidates, "b").is_err());
}
