//! Identifier newtypes. All ids are opaque strings on the wire.
//!
//! The server makes them as a one-letter prefix and a ULID (`u_01J…`, `d_…`, `c_…`);
//! message ids are bare ULIDs. Clients must not parse them.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }
    };
}

id_type!(
    /// A user account (`u_…`).
    UserId
);
id_type!(
    /// One logged-in device of a user (`d_…`); every login makes one.
    DeviceId
);
id_type!(
    /// A direct chat or a group (`c_…`).
    ConversationId
);
id_type!(
    /// An uploaded photo, video, voice note or file (`m_…`).
    MediaId
);
id_type!(
    /// A message, globally unique and roughly time-ordered (a ULID).
    MessageId
);
