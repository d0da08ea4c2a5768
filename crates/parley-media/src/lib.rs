//! parley's media storage: the [`MediaStore`](parley_core::MediaStore) port on two
//! backends, both run through `parley_testkit::media`'s conformance suite.
//!
//! - [`DiskMediaStore`]: the embedded default. Files under the data directory; parley
//!   answers its own signed URLs ([`DiskMediaStore::router`]).
//! - [`S3MediaStore`]: cluster mode. An S3-compatible bucket through `object_store`;
//!   clients upload and download with presigned URLs.

mod disk;
mod range;
mod s3;

pub use disk::{DiskMediaStore, BLOB_PATH};
pub use s3::{S3Config, S3MediaStore};
