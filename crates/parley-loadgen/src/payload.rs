//! The load generator's message tag: who sent what, when, in which phase.
//!
//! Every generated message carries `lg.<phase>.<conversation>.<sender>.<counter>.<sent_us>`
//! both as its `client_msg_id` and at the start of its `content` (padded to the chosen
//! size), so the receiver computes end-to-end latency without any shared table. Times
//! are Unix microseconds from one monotonic [`Clock`], so they only compare in-process.

use std::fmt::Write as _;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Whether a message counts in the results or only warms the server up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Warmup,
    Measured,
}

/// The parsed tag of a generated message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tag {
    pub phase: Phase,
    /// Index into the run's conversation plan.
    pub conversation_index: u32,
    /// Index of the sending simulated user.
    pub sender_index: u32,
    /// Per-run unique counter.
    pub counter: u64,
    /// When the scheduler handed the message to the SDK (Unix µs).
    pub sent_at_micros: u64,
}

const TAG_PREFIX: &str = "lg.";

impl Tag {
    /// Writes the tag into `out` (cleared first).
    pub fn write_to(&self, out: &mut String) {
        out.clear();
        let phase_letter = match self.phase {
            Phase::Warmup => 'w',
            Phase::Measured => 'm',
        };
        let _ = write!(
            out,
            "{TAG_PREFIX}{phase_letter}.{}.{}.{}.{}",
            self.conversation_index, self.sender_index, self.counter, self.sent_at_micros
        );
    }

    /// The tag as a fresh string (the `client_msg_id`).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(48);
        self.write_to(&mut out);
        out
    }

    /// The message content: the tag, a space, and padding up to `message_size` bytes.
    pub fn content(&self, client_msg_id: &str, message_size: usize, padding: &str) -> String {
        let padding_len = message_size
            .saturating_sub(client_msg_id.len() + 1)
            .min(padding.len());
        let mut content = String::with_capacity(client_msg_id.len() + 1 + padding_len);
        content.push_str(client_msg_id);
        content.push(' ');
        content.push_str(&padding[..padding_len]);
        content
    }

    /// Parses a tag from a `client_msg_id` or from the start of a `content`; `None` for
    /// anything the generator did not make (system messages, other clients).
    pub fn parse(text: &str) -> Option<Tag> {
        let tag_text = text.strip_prefix(TAG_PREFIX)?;
        let tag_text = tag_text.split(' ').next()?;
        let mut fields = tag_text.split('.');
        let phase = match fields.next()? {
            "w" => Phase::Warmup,
            "m" => Phase::Measured,
            _ => return None,
        };
        let tag = Tag {
            phase,
            conversation_index: fields.next()?.parse().ok()?,
            sender_index: fields.next()?.parse().ok()?,
            counter: fields.next()?.parse().ok()?,
            sent_at_micros: fields.next()?.parse().ok()?,
        };
        fields.next().is_none().then_some(tag)
    }
}

/// Unix time in microseconds, read from a monotonic clock anchored once.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    anchor: Instant,
    anchor_unix_micros: u64,
}

impl Clock {
    pub fn new() -> Self {
        let anchor_unix_micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since_epoch| since_epoch.as_micros() as u64);
        Self {
            anchor: Instant::now(),
            anchor_unix_micros,
        }
    }

    /// Now, in Unix microseconds; never goes backwards.
    pub fn now_micros(&self) -> u64 {
        self.anchor_unix_micros + self.anchor.elapsed().as_micros() as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_tag() -> Tag {
        Tag {
            phase: Phase::Measured,
            conversation_index: 12,
            sender_index: 7,
            counter: 123_456,
            sent_at_micros: 1_795_428_000_123_456,
        }
    }

    /// A tag survives the trip through `client_msg_id` and through padded content.
    #[test]
    fn tag_round_trips_through_id_and_content() {
        let tag = sample_tag();
        let client_msg_id = tag.encode();
        assert_eq!(client_msg_id, "lg.m.12.7.123456.1795428000123456");
        assert_eq!(Tag::parse(&client_msg_id), Some(tag));
        let padding = "x".repeat(1024);
        let content = tag.content(&client_msg_id, 100, &padding);
        assert_eq!(content.len(), 100);
        assert_eq!(Tag::parse(&content), Some(tag));
        let short_content = tag.content(&client_msg_id, 0, &padding);
        assert_eq!(short_content, format!("{client_msg_id} "));
    }

    /// Foreign text is not mistaken for a tag.
    #[test]
    fn foreign_text_is_not_a_tag() {
        for text in [
            "hello",
            "lg.x.1.2.3.4",
            "lg.m.1.2.3",
            "lg.m.1.2.3.4.5",
            "lg.m.a.2.3.4",
            "",
        ] {
            assert_eq!(Tag::parse(text), None, "{text}");
        }
        let warmup = Tag {
            phase: Phase::Warmup,
            ..sample_tag()
        };
        assert_eq!(Tag::parse(&warmup.encode()).unwrap().phase, Phase::Warmup);
    }

    /// The clock is monotonic and close to the system clock.
    #[test]
    fn clock_is_monotonic_unix_micros() {
        let clock = Clock::new();
        let first = clock.now_micros();
        let second = clock.now_micros();
        assert!(second >= first);
        let system_micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64;
        assert!(system_micros.abs_diff(first) < 5_000_000);
    }
}
