//! Uploads sent in parts: a large file in 8 MiB pieces, resumed after an interruption
//! from the parts that arrived, joined on completion into the same media an upload sent
//! whole would be. Embedded (the disk) and in cluster mode (S3's multipart upload joins
//! them).

use crate::harness::*;
use crate::media::{declared, refused, send_with, sha256};
use parley_proto::limits::MEDIA_PART_BYTES;
use parley_proto::rest::CreateMediaRequest;
use parley_proto::{ErrorCode, MediaStatus};

/// Bytes no sniffer takes for anything: a file, served as uploaded.
fn file_bytes(len: u64) -> Vec<u8> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Parts arrive in any order; completing with one missing names it (409) and keeps the
/// others; asking again signs only the missing one; once it arrives, completion joins
/// them and another member downloads exactly the file. A finished upload has no parts.
#[tokio::test]
async fn a_large_upload_resumes_from_the_parts_that_arrived() {
    let server = TestServer::start().await;
    let [alice, bob, eve] = server.users(["alice", "bob", "eve"]).await;
    let chat = alice.direct_with(&bob).await;
    let bytes = file_bytes(2 * MEDIA_PART_BYTES + 1000);
    let upload = alice
        .client
        .create_media(&CreateMediaRequest {
            filename: Some("archive.bin".into()),
            sha256: Some(sha256(&bytes)),
            ..declared("application/octet-stream", bytes.len() as u64)
        })
        .await
        .unwrap();
    let media_id = upload.media_id.clone();
    assert_eq!(
        refused(eve.client.upload_parts(&media_id).await),
        (404, ErrorCode::NotFound)
    );
    let parts = alice.client.upload_parts(&media_id).await.unwrap();
    assert_eq!(parts.part_size, MEDIA_PART_BYTES);
    let spans: Vec<(u32, u64, u64)> = parts
        .parts
        .iter()
        .map(|part| (part.part_number, part.offset, part.size))
        .collect();
    assert_eq!(
        spans,
        vec![
            (1, 0, MEDIA_PART_BYTES),
            (2, MEDIA_PART_BYTES, MEDIA_PART_BYTES),
            (3, 2 * MEDIA_PART_BYTES, 1000)
        ]
    );
    assert!(parts
        .parts
        .iter()
        .all(|part| !part.received && part.upload_url.is_some()));
    let slice = |number: usize| {
        let part = &parts.parts[number - 1];
        bytes[part.offset as usize..(part.offset + part.size) as usize].to_vec()
    };
    // The last part first, then the first; the second is "interrupted".
    for number in [3, 1] {
        alice
            .client
            .put_part(&parts.parts[number - 1], slice(number))
            .await
            .unwrap();
    }
    let (status, code) = refused(alice.client.complete_media(&media_id).await);
    assert_eq!((status, code), (409, ErrorCode::MediaNotReady));
    let resumed = alice.client.upload_parts(&media_id).await.unwrap();
    let received: Vec<bool> = resumed.parts.iter().map(|part| part.received).collect();
    assert_eq!(received, vec![true, false, true]);
    assert!(resumed.parts[0].upload_url.is_none());
    alice
        .client
        .put_part(&resumed.parts[1], slice(2))
        .await
        .unwrap();
    let media = alice.client.complete_media(&media_id).await.unwrap();
    assert_eq!(media.status, MediaStatus::Ready);
    assert_eq!(media.size, bytes.len() as u64);
    assert_eq!(
        refused(alice.client.upload_parts(&media_id).await),
        (400, ErrorCode::InvalidRequest)
    );
    alice
        .client
        .send_rest(
            &chat.conversation_id,
            &send_with(vec![media_id.clone()], ""),
        )
        .await
        .unwrap();
    let downloaded = bob.client.download_media(&media_id, false).await.unwrap();
    assert_eq!(sha256(&downloaded), sha256(&bytes));
}

/// The SDK sends a file past one part in parts by itself, and `resume_upload` finishes
/// one that stopped half-way without sending again what arrived.
#[tokio::test]
async fn the_sdk_uploads_large_files_in_parts_and_resumes() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bytes = file_bytes(MEDIA_PART_BYTES + 12_345);
    let media = alice
        .client
        .upload(bytes.clone(), "application/octet-stream", Some("big.bin"))
        .await
        .unwrap();
    assert_eq!(media.size, bytes.len() as u64);
    let downloaded = alice
        .client
        .download_media(&media.media_id, false)
        .await
        .unwrap();
    assert_eq!(sha256(&downloaded), sha256(&bytes));

    let upload = alice
        .client
        .create_media(&declared("application/octet-stream", bytes.len() as u64))
        .await
        .unwrap();
    let parts = alice.client.upload_parts(&upload.media_id).await.unwrap();
    alice
        .client
        .put_part(&parts.parts[0], bytes[..MEDIA_PART_BYTES as usize].to_vec())
        .await
        .unwrap();
    let media = alice
        .client
        .resume_upload(&upload.media_id, &bytes)
        .await
        .unwrap();
    let downloaded = alice
        .client
        .download_media(&media.media_id, false)
        .await
        .unwrap();
    assert_eq!(sha256(&downloaded), sha256(&bytes));
}

/// A part longer than it should be is refused: by the disk's signed URL at once, or (S3
/// presigned URLs cannot pin a length) on completion, which deletes the parts (413).
#[tokio::test]
async fn a_part_longer_than_its_size_is_refused() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let size = MEDIA_PART_BYTES + 10;
    let upload = alice
        .client
        .create_media(&declared("application/octet-stream", size))
        .await
        .unwrap();
    let parts = alice.client.upload_parts(&upload.media_id).await.unwrap();
    alice
        .client
        .put_part(&parts.parts[0], file_bytes(MEDIA_PART_BYTES))
        .await
        .unwrap();
    match alice.client.put_part(&parts.parts[1], file_bytes(11)).await {
        Err(_) => assert_eq!(
            refused(alice.client.complete_media(&upload.media_id).await),
            (409, ErrorCode::MediaNotReady)
        ),
        Ok(()) => {
            assert_eq!(
                refused(alice.client.complete_media(&upload.media_id).await),
                (413, ErrorCode::MediaTooLarge)
            );
            let after = alice.client.upload_parts(&upload.media_id).await.unwrap();
            assert!(after.parts.iter().all(|part| !part.received));
        }
    }
}

/// An upload sent in parts and never completed is collected with its parts.
#[tokio::test]
async fn parts_of_an_abandoned_upload_are_collected() {
    let server = TestServer::start_with(|config| {
        config.media.unsent_secs = 2;
        config.media.collect_interval_secs = 1;
    })
    .await;
    let alice = server.user("alice").await;
    let upload = alice
        .client
        .create_media(&declared("application/octet-stream", MEDIA_PART_BYTES + 1))
        .await
        .unwrap();
    let parts = alice.client.upload_parts(&upload.media_id).await.unwrap();
    alice
        .client
        .put_part(&parts.parts[1], vec![7u8])
        .await
        .unwrap();
    // Embedded, the part is a file under the data directory (in cluster mode, an S3
    // object, not checked here).
    let config = server.config();
    let part_file = config
        .data_dir
        .join("media/objects")
        .join(format!("p/{}/2", upload.media_id));
    let embedded = config.media.s3.is_none();
    assert_eq!(part_file.exists(), embedded);
    let every = std::time::Duration::from_millis(200);
    eventually("the abandoned upload is collected", every, || async {
        matches!(
            alice.client.upload_parts(&upload.media_id).await,
            Err(parley_sdk::SdkError::Api { status: 404, .. })
        )
        .then_some(())
    })
    .await;
    assert!(!part_file.exists(), "the part's bytes are deleted");
}
