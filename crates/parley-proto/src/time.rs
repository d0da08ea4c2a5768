//! Timestamps: milliseconds since the Unix epoch inside, RFC 3339 UTC on the wire.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A point in time with millisecond precision, written as `2026-11-23T10:00:00.123Z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        Self(Utc::now().timestamp_millis())
    }

    pub fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn to_rfc3339(self) -> String {
        let date_time: DateTime<Utc> = Utc
            .timestamp_millis_opt(self.0)
            .single()
            .unwrap_or_default();
        date_time.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// Parses RFC 3339; `None` outside the years 0000-9999 (after the offset is applied),
    /// which RFC 3339 cannot write back.
    pub fn parse(text: &str) -> Option<Self> {
        let millis = DateTime::parse_from_rfc3339(text).ok()?.timestamp_millis();
        (Self::MIN_MILLIS..=Self::MAX_MILLIS)
            .contains(&millis)
            .then_some(Self(millis))
    }

    /// `0000-01-01T00:00:00.000Z` and `9999-12-31T23:59:59.999Z`.
    const MIN_MILLIS: i64 = -62_167_219_200_000;
    const MAX_MILLIS: i64 = 253_402_300_799_999;
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Timestamp::parse(&text).ok_or_else(|| de::Error::custom("expected an RFC 3339 timestamp"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_millisecond_precision() {
        let stamp = Timestamp(1_795_428_000_123);
        let json = serde_json::to_string(&stamp).unwrap();
        assert_eq!(json, "\"2026-11-23T10:00:00.123Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), stamp);
    }

    /// Found by the `proto_strings` fuzz target: these parsed, but their written form did
    /// not (years -1 and 10000).
    #[test]
    fn refuses_what_it_could_not_write_back() {
        for text in [
            "0000-01-01T00:00:00+00:01",
            "9999-12-31T23:59:59-00:01",
            "9999-12-31T23:59:60.9999Z",
        ] {
            assert_eq!(Timestamp::parse(text), None, "{text}");
        }
        for millis in [Timestamp::MIN_MILLIS, Timestamp::MAX_MILLIS, 0] {
            let written = Timestamp(millis).to_rfc3339();
            assert_eq!(
                Timestamp::parse(&written),
                Some(Timestamp(millis)),
                "{written}"
            );
        }
    }
}
