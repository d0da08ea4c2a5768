//! Media end to end: upload through the signed URL, complete, send, download; who may
//! see what; what processing does to what was uploaded; and what is collected. The same
//! scenarios run embedded (the disk, URLs on parley itself) and in cluster mode (S3 on
//! SeaweedFS, presigned URLs).

use crate::harness::*;
use parley_proto::rest::{CreateMediaRequest, SendMessageRequest};
use parley_proto::{ErrorCode, MediaId, MediaStatus};
use parley_sdk::{Client, SdkError};
use sha2::{Digest, Sha256};
use std::io::Cursor;

pub(crate) fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The error code of a refused call.
pub(crate) fn refused<T: std::fmt::Debug>(result: Result<T, SdkError>) -> (u16, ErrorCode) {
    match result {
        Err(SdkError::Api { status, code, .. }) => (status, code),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// An upload of `size` bytes declared as `content_type`, nothing else said.
pub(crate) fn declared(content_type: &str, size: u64) -> CreateMediaRequest {
    CreateMediaRequest {
        content_type: content_type.into(),
        size,
        filename: None,
        sha256: None,
        duration_ms: None,
    }
}

pub(crate) fn send_with(attachments: Vec<MediaId>, caption: &str) -> SendMessageRequest {
    SendMessageRequest {
        attachments,
        ..text_request(&ulid::Ulid::new().to_string(), caption)
    }
}

/// A photo-like PNG: a gradient, so it compresses like a picture.
pub(crate) fn png(width: u32, height: u32) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 90])
    });
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(picture)
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
        .unwrap();
    bytes
}

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 200])
    });
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(picture)
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Jpeg)
        .unwrap();
    bytes
}

/// Where a camera puts the place a photo was taken.
const GPS: &str = "GPSLatitude=48.858370N,GPSLongitude=2.294481E";

/// A TIFF (EXIF) block that carries [`GPS`] as text.
fn exif_payload() -> Vec<u8> {
    let mut tiff = b"MM\x00\x2a\x00\x00\x00\x08\x00\x00".to_vec();
    tiff.extend_from_slice(GPS.as_bytes());
    tiff
}

/// A JPEG with an `APP1` EXIF segment after its start marker.
fn jpeg_with_gps() -> Vec<u8> {
    let plain = jpeg(64, 48);
    let mut segment = b"Exif\x00\x00".to_vec();
    segment.extend_from_slice(&exif_payload());
    let mut bytes = plain[..2].to_vec();
    bytes.extend_from_slice(&[0xFF, 0xE1]);
    bytes.extend_from_slice(&((segment.len() + 2) as u16).to_be_bytes());
    bytes.extend_from_slice(&segment);
    bytes.extend_from_slice(&plain[2..]);
    bytes
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG chunk: length, type, data, CRC of type and data.
fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    chunk.extend_from_slice(&body);
    chunk.extend_from_slice(&crc32(&body).to_be_bytes());
    chunk
}

/// A PNG with an `eXIf` chunk (and a text chunk) before its end.
fn png_with_gps() -> Vec<u8> {
    let plain = png(80, 60);
    let end = plain.len() - 12; // IEND
    let mut bytes = plain[..end].to_vec();
    bytes.extend_from_slice(&png_chunk(b"eXIf", &exif_payload()));
    bytes.extend_from_slice(&png_chunk(b"tEXt", format!("Comment\0{GPS}").as_bytes()));
    bytes.extend_from_slice(&plain[end..]);
    bytes
}

/// A PNG whose header claims 100,000 × 100,000 pixels (40 GB decoded) in a few bytes.
fn decompression_bomb() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = 100_000u32.to_be_bytes().to_vec();
    header.extend_from_slice(&100_000u32.to_be_bytes());
    header.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale
    bytes.extend_from_slice(&png_chunk(b"IHDR", &header));
    bytes.extend_from_slice(&png_chunk(b"IDAT", &[0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1]));
    bytes.extend_from_slice(&png_chunk(b"IEND", &[]));
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Upload → send → another member gets the message with the attachment live and in
/// history, and downloads the same bytes; the thumbnail is a smaller JPEG.
#[tokio::test]
async fn a_photo_reaches_the_other_member_whole() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let chat = alice.direct_with(&bob).await;
    let mut bob_socket = bob.connect().await;
    sync_done(&mut bob_socket).await;
    let photo = png(1200, 800);
    let media = alice
        .client
        .upload(photo.clone(), "image/png", Some("beach.png"))
        .await
        .unwrap();
    assert_eq!(media.status, MediaStatus::Ready);
    assert_eq!(media.content_type, "image/png");
    assert_eq!((media.width, media.height), (Some(1200), Some(800)));
    let thumbnail = media.thumbnail.expect("a picture has a thumbnail");
    assert_eq!((thumbnail.width, thumbnail.height), (320, 213));
    assert!(media.blurhash.as_ref().is_some_and(|hash| hash.len() == 28));
    let sent = alice
        .client
        .send_rest(
            &chat.conversation_id,
            &send_with(vec![media.media_id.clone()], "the beach"),
        )
        .await
        .unwrap();
    assert_eq!(sent.attachments, vec![media.clone()]);
    let live = messages(&mut bob_socket, &chat.conversation_id, 1).await;
    assert_eq!(live[0].attachments, vec![media.clone()]);
    assert_eq!(live[0].content, "the beach");
    let history = bob
        .client
        .history(&chat.conversation_id, None, None, None)
        .await
        .unwrap();
    let stored = history.messages.last().unwrap();
    assert_eq!(stored.attachments, vec![media.clone()]);
    // PNG is re-encoded (metadata stripped), losslessly: the same pixels.
    let downloaded = bob
        .client
        .download_media(&media.media_id, false)
        .await
        .unwrap();
    assert_eq!(downloaded.len() as u64, media.size);
    let decoded = image::load_from_memory(&downloaded).unwrap().to_rgb8();
    let original = image::load_from_memory(&photo).unwrap().to_rgb8();
    assert_eq!(sha256(decoded.as_raw()), sha256(original.as_raw()));
    let small = bob
        .client
        .download_media(&media.media_id, true)
        .await
        .unwrap();
    assert!(
        small.starts_with(&[0xFF, 0xD8, 0xFF]),
        "the thumbnail is a JPEG"
    );
    let small = image::load_from_memory(&small).unwrap();
    assert_eq!((small.width(), small.height()), (320, 213));
}

/// A file that is not a picture arrives with the exact bytes (sha256), as an attachment
/// download with its name.
#[tokio::test]
async fn a_file_downloads_byte_for_byte_with_its_name() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let group = alice.group_with("team", &[&bob]).await;
    let file: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let media = alice
        .client
        .upload(
            file.clone(),
            "application/octet-stream",
            Some("data été.bin"),
        )
        .await
        .unwrap();
    assert_eq!(media.filename.as_deref(), Some("data été.bin"));
    alice
        .client
        .send_rest(
            &group.conversation_id,
            &send_with(vec![media.media_id.clone()], ""),
        )
        .await
        .unwrap();
    let link = bob.client.media_link(&media.media_id, false).await.unwrap();
    let response = reqwest::get(&link.url).await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    if link.url.starts_with(&server.url) {
        // Served by parley itself (the disk store): never rendered on its origin. S3
        // serves from its own origin and cannot be told to add these.
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox"));
    }
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(
        disposition.contains("data%20%C3%A9t%C3%A9.bin"),
        "{disposition}"
    );
    let body = response.bytes().await.unwrap();
    assert_eq!(sha256(&body), sha256(&file));
    // A video player asks for ranges.
    let part = reqwest::Client::new()
        .get(&link.url)
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(&part.bytes().await.unwrap()[..], &file[1000..2000]);
}

/// Only the uploader and members of a conversation it was sent to may download; anyone
/// else gets 404, as for an id that does not exist. A signed URL stops working when it
/// expires.
#[tokio::test]
async fn strangers_non_members_and_expired_urls_are_refused() {
    let server = TestServer::start_with(|config| config.media.download_url_secs = 2).await;
    let [alice, bob, eve] = server.users(["alice", "bob", "eve"]).await;
    let chat = alice.direct_with(&bob).await;
    let media = alice
        .client
        .upload(jpeg(40, 30), "image/jpeg", None)
        .await
        .unwrap();
    // Before it is sent, only the uploader sees it.
    assert_eq!(
        refused(bob.client.media_link(&media.media_id, false).await),
        (404, ErrorCode::NotFound)
    );
    alice
        .client
        .media_link(&media.media_id, false)
        .await
        .unwrap();
    alice
        .client
        .send_rest(
            &chat.conversation_id,
            &send_with(vec![media.media_id.clone()], "hi"),
        )
        .await
        .unwrap();
    let link = bob.client.media_link(&media.media_id, false).await.unwrap();
    for thumbnail in [false, true] {
        assert_eq!(
            refused(eve.client.media_link(&media.media_id, thumbnail).await),
            (404, ErrorCode::NotFound)
        );
    }
    assert_eq!(
        refused(
            eve.client
                .media_link(&MediaId::from("m_nothing"), false)
                .await
        ),
        (404, ErrorCode::NotFound)
    );
    // Eve may not attach it either, or forward it.
    let eve_chat = eve.direct_with(&bob).await;
    assert_eq!(
        refused(
            eve.client
                .send_rest(
                    &eve_chat.conversation_id,
                    &send_with(vec![media.media_id.clone()], "")
                )
                .await
        ),
        (404, ErrorCode::NotFound)
    );
    // Without a token, the API refuses; the redirect points at the signed URL.
    let bare = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = format!("{}/api/v1/media/{}", server.url, media.media_id);
    assert_eq!(bare.get(&url).send().await.unwrap().status(), 401);
    let redirect = bare
        .get(&url)
        .bearer_auth(bob.token())
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 302);
    assert_eq!(redirect.headers()["cache-control"], "private, no-store");
    // The signed URL works now, and not once it has expired.
    assert_eq!(reqwest::get(&link.url).await.unwrap().status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(3200)).await;
    let expired = reqwest::get(&link.url).await.unwrap().status();
    assert!(
        expired == 403 || expired == 400,
        "expired URL answered {expired}"
    );
    // Tampering with the URL is refused too.
    let tampered = bob.client.media_link(&media.media_id, false).await.unwrap();
    let tampered = tampered.url.replace("original", "thumbnail");
    assert!(reqwest::get(&tampered)
        .await
        .unwrap()
        .status()
        .is_client_error());
}

/// 100 MiB + 1 byte is refused before anything is stored; so is more than the quota,
/// and bytes that are not what was declared.
#[tokio::test]
async fn sizes_quotas_and_hashes_are_enforced() {
    let server = TestServer::start_with(|config| config.media.quota_bytes = 5_000_000).await;
    let alice = server.user("alice").await;
    let too_big = declared("video/mp4", 100 * 1024 * 1024 + 1);
    assert_eq!(
        refused(alice.client.create_media(&too_big).await),
        (413, ErrorCode::MediaTooLarge)
    );
    let over_quota = CreateMediaRequest {
        size: 5_000_001,
        ..too_big.clone()
    };
    assert_eq!(
        refused(alice.client.create_media(&over_quota).await),
        (413, ErrorCode::MediaTooLarge)
    );
    let empty = CreateMediaRequest {
        size: 0,
        ..too_big.clone()
    };
    assert_eq!(
        refused(alice.client.create_media(&empty).await),
        (400, ErrorCode::InvalidRequest)
    );
    // Not uploaded yet: not ready, and cannot be sent.
    let request = CreateMediaRequest {
        size: 1000,
        sha256: Some(sha256(&[7u8; 1000])),
        ..too_big.clone()
    };
    let upload = alice.client.create_media(&request).await.unwrap();
    assert_eq!(
        refused(alice.client.complete_media(&upload.media_id).await),
        (409, ErrorCode::MediaNotReady)
    );
    let bob = server.user("bob").await;
    let chat = alice.direct_with(&bob).await;
    assert_eq!(
        refused(
            alice
                .client
                .send_rest(
                    &chat.conversation_id,
                    &send_with(vec![upload.media_id.clone()], "")
                )
                .await
        ),
        (409, ErrorCode::MediaNotReady)
    );
    // Other bytes than the declared hash: refused, and the upload can be made again.
    alice
        .client
        .put_upload(&upload, vec![8u8; 1000])
        .await
        .unwrap();
    assert_eq!(
        refused(alice.client.complete_media(&upload.media_id).await),
        (409, ErrorCode::MediaNotReady)
    );
    alice
        .client
        .put_upload(&upload, vec![7u8; 1000])
        .await
        .unwrap();
    let media = alice.client.complete_media(&upload.media_id).await.unwrap();
    assert_eq!(media.size, 1000);
    // Completing again answers the same.
    assert_eq!(
        alice.client.complete_media(&upload.media_id).await.unwrap(),
        media
    );
    // Eleven attachments are too many; the same one twice is refused.
    let twice = send_with(vec![media.media_id.clone(), media.media_id.clone()], "");
    assert_eq!(
        refused(alice.client.send_rest(&chat.conversation_id, &twice).await),
        (400, ErrorCode::InvalidRequest)
    );
}

/// More bytes than declared (an S3 presigned PUT cannot pin the length; the disk store
/// refuses them at the upload) never become media.
#[tokio::test]
async fn more_bytes_than_declared_are_refused() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let request = declared("application/pdf", 100);
    let upload = alice.client.create_media(&request).await.unwrap();
    match alice.client.put_upload(&upload, vec![1u8; 101]).await {
        Err(_) => assert_eq!(
            refused(alice.client.complete_media(&upload.media_id).await),
            (409, ErrorCode::MediaNotReady)
        ),
        Ok(()) => assert_eq!(
            refused(alice.client.complete_media(&upload.media_id).await),
            (413, ErrorCode::MediaTooLarge)
        ),
    }
}

/// The type comes from the bytes: an executable declared as a JPEG is stored as what it
/// is and only ever downloaded as an attachment; a picture declared as something else
/// is a picture.
#[tokio::test]
async fn a_lying_content_type_is_corrected() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let mut exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00".to_vec();
    exe.resize(4096, 0);
    let media = alice
        .client
        .upload(exe, "image/jpeg", Some("cat.jpg"))
        .await
        .unwrap();
    assert_ne!(media.content_type, "image/jpeg");
    assert!(media.thumbnail.is_none() && media.width.is_none());
    let link = alice
        .client
        .media_link(&media.media_id, false)
        .await
        .unwrap();
    let response = reqwest::get(&link.url).await.unwrap();
    let disposition = response.headers()["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    let html = b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>".to_vec();
    let media = alice
        .client
        .upload(html, "text/html", Some("x.html"))
        .await
        .unwrap();
    assert_eq!(media.content_type, "application/octet-stream");
    let picture = alice
        .client
        .upload(png(10, 10), "application/pdf", None)
        .await
        .unwrap();
    assert_eq!(picture.content_type, "image/png");
    assert!(picture.thumbnail.is_some());
}

/// EXIF (GPS) and text metadata never reach another member: JPEG and PNG.
#[tokio::test]
async fn picture_metadata_is_stripped() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let chat = alice.direct_with(&bob).await;
    for (bytes, declared) in [
        (jpeg_with_gps(), "image/jpeg"),
        (png_with_gps(), "image/png"),
    ] {
        assert!(
            contains(&bytes, GPS.as_bytes()),
            "the test picture carries GPS"
        );
        image::load_from_memory(&bytes).expect("the test picture decodes");
        let media = alice.client.upload(bytes, declared, None).await.unwrap();
        assert_eq!(media.content_type, declared);
        alice
            .client
            .send_rest(
                &chat.conversation_id,
                &send_with(vec![media.media_id.clone()], ""),
            )
            .await
            .unwrap();
        let downloaded = bob
            .client
            .download_media(&media.media_id, false)
            .await
            .unwrap();
        assert!(
            !contains(&downloaded, GPS.as_bytes()),
            "{declared}: GPS still there"
        );
        assert!(!contains(&downloaded, b"Exif\0\0") && !contains(&downloaded, b"eXIf"));
        let picture = image::load_from_memory(&downloaded).unwrap();
        assert_eq!(
            (picture.width(), picture.height()),
            (media.width.unwrap(), media.height.unwrap())
        );
        let thumbnail = bob
            .client
            .download_media(&media.media_id, true)
            .await
            .unwrap();
        assert!(!contains(&thumbnail, GPS.as_bytes()));
    }
}

/// A picture whose header claims more pixels than the server decodes is refused at the
/// header, before any pixel is allocated, and nothing of it stays.
#[tokio::test]
async fn a_decompression_bomb_is_refused() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bomb = decompression_bomb();
    assert!(bomb.len() < 100);
    let request = declared("image/png", bomb.len() as u64);
    let upload = alice.client.create_media(&request).await.unwrap();
    alice.client.put_upload(&upload, bomb).await.unwrap();
    let started = std::time::Instant::now();
    assert_eq!(
        refused(alice.client.complete_media(&upload.media_id).await),
        (413, ErrorCode::MediaTooLarge)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Its bytes are gone: completing again finds nothing uploaded.
    assert_eq!(
        refused(alice.client.complete_media(&upload.media_id).await),
        (409, ErrorCode::MediaNotReady)
    );
    // A real picture just over a lower pixel budget is refused the same way.
    let server = TestServer::start_with(|config| config.media.max_pixels = 10_000).await;
    let alice = server.user("alice").await;
    assert_eq!(
        refused(alice.client.upload(png(101, 100), "image/png", None).await),
        (413, ErrorCode::MediaTooLarge)
    );
    alice
        .client
        .upload(png(100, 100), "image/png", None)
        .await
        .unwrap();
}

/// Deleting a message for everyone takes its attachments with it: gone from history and
/// from the members' reach; a forward carries the media on, to its new readers.
#[tokio::test]
async fn delete_and_forward_carry_attachments_as_expected() {
    let server = TestServer::start().await;
    let [alice, bob, carol] = server.users(["alice", "bob", "carol"]).await;
    let chat = alice.direct_with(&bob).await;
    let bob_carol = bob.direct_with(&carol).await;
    let media = alice
        .client
        .upload(png(50, 50), "image/png", None)
        .await
        .unwrap();
    let sent = alice
        .client
        .send_rest(
            &chat.conversation_id,
            &send_with(vec![media.media_id.clone()], "pic"),
        )
        .await
        .unwrap();
    let copies = bob
        .client
        .forward(&parley_proto::rest::ForwardRequest {
            from_conversation_id: chat.conversation_id.clone(),
            seq: sent.seq,
            to_conversation_ids: vec![bob_carol.conversation_id.clone()],
            client_msg_id: None,
        })
        .await
        .unwrap();
    assert_eq!(copies[0].attachments, vec![media.clone()]);
    carol
        .client
        .download_media(&media.media_id, false)
        .await
        .unwrap();
    alice
        .client
        .delete_message(&chat.conversation_id, sent.seq)
        .await
        .unwrap();
    let history = bob
        .client
        .history(&chat.conversation_id, None, None, None)
        .await
        .unwrap();
    let deleted = history
        .messages
        .iter()
        .find(|message| message.seq == sent.seq)
        .unwrap();
    assert!(deleted.deleted && deleted.attachments.is_empty());
    // Bob still reaches it through the copy he forwarded to Carol; Carol does.
    bob.client
        .download_media(&media.media_id, false)
        .await
        .unwrap();
    carol
        .client
        .download_media(&media.media_id, false)
        .await
        .unwrap();
    bob.client
        .delete_message(&bob_carol.conversation_id, copies[0].seq)
        .await
        .unwrap();
    assert_eq!(
        refused(carol.client.media_link(&media.media_id, false).await),
        (404, ErrorCode::NotFound)
    );
}

/// Uploads never sent are collected after `unsent_secs`, and media no message carries
/// any more after the next collection; their bytes go too.
#[tokio::test]
async fn unused_media_are_collected() {
    let server = TestServer::start_with(|config| {
        config.media.unsent_secs = 3;
        config.media.collect_interval_secs = 1;
    })
    .await;
    let alice = server.user("alice").await;
    let orphan = alice
        .client
        .upload(png(20, 20), "image/png", None)
        .await
        .unwrap();
    let orphan_link = alice
        .client
        .media_link(&orphan.media_id, false)
        .await
        .unwrap();
    let every = std::time::Duration::from_millis(200);
    eventually("the unsent upload is collected", every, || async {
        matches!(
            alice.client.media_link(&orphan.media_id, false).await,
            Err(SdkError::Api { status: 404, .. })
        )
        .then_some(())
    })
    .await;
    assert!(reqwest::get(&orphan_link.url)
        .await
        .unwrap()
        .status()
        .is_client_error());
    assert_eq!(
        refused(alice.client.complete_media(&orphan.media_id).await),
        (404, ErrorCode::NotFound)
    );
    // A sent one stays until no message carries it any more.
    let server = TestServer::start_with(|config| config.media.collect_interval_secs = 1).await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let chat = alice.direct_with(&bob).await;
    let kept = alice
        .client
        .upload(b"hello".to_vec(), "text/plain", Some("a.txt"))
        .await
        .unwrap();
    let sent = alice
        .client
        .send_rest(
            &chat.conversation_id,
            &send_with(vec![kept.media_id.clone()], ""),
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(
        bob.client
            .download_media(&kept.media_id, false)
            .await
            .unwrap(),
        b"hello"
    );
    let link = bob.client.media_link(&kept.media_id, false).await.unwrap();
    alice
        .client
        .delete_message(&chat.conversation_id, sent.seq)
        .await
        .unwrap();
    eventually(
        "the deleted message's media are collected",
        every,
        || async {
            matches!(
                alice.client.media_link(&kept.media_id, false).await,
                Err(SdkError::Api { status: 404, .. })
            )
            .then_some(())
        },
    )
    .await;
    // Its bytes went with it (the signed URL, still within its time, finds nothing).
    assert!(reqwest::get(&link.url)
        .await
        .unwrap()
        .status()
        .is_client_error());
}

/// Anything but a media type, or a filename past 255 bytes, is refused; a path in a file
/// name is flattened.
#[tokio::test]
async fn bad_upload_requests_are_refused() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let base = declared("image/png", 10);
    for bad in [
        CreateMediaRequest {
            content_type: "png".into(),
            ..base.clone()
        },
        CreateMediaRequest {
            filename: Some("x".repeat(256)),
            ..base.clone()
        },
        CreateMediaRequest {
            sha256: Some("abc".into()),
            ..base.clone()
        },
        CreateMediaRequest {
            duration_ms: Some(360_000_001),
            ..base.clone()
        },
    ] {
        assert_eq!(
            refused(alice.client.create_media(&bad).await),
            (400, ErrorCode::InvalidRequest)
        );
    }
    let media = alice
        .client
        .upload(
            b"plain text".to_vec(),
            "text/plain",
            Some("../../etc/passwd"),
        )
        .await
        .unwrap();
    assert_eq!(media.filename.as_deref(), Some(".._.._etc_passwd"));
    assert_eq!(media.content_type, "text/plain");
    let client = Client::new(&server.url).unwrap();
    assert!(
        client.create_media(&base).await.is_err(),
        "no token, no upload"
    );
}

/// Two nodes on one S3 bucket: a photo uploaded through one node reaches a member
/// connected to the other, who downloads the same bytes through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_cross_nodes_on_one_bucket() {
    let cluster = crate::cluster::TestCluster::start(2).await;
    let [alice, bob] = cluster.nodes[0].users(["alice", "bob"]).await;
    let bob = cluster.on(1, &bob).await;
    let chat = alice.direct_with(&bob).await;
    let mut bob_socket = bob.connect().await;
    sync_done(&mut bob_socket).await;
    let file: Vec<u8> = (0..2_500_000u32).map(|i| (i % 253) as u8).collect();
    let media = alice
        .client
        .upload(file.clone(), "application/zip", Some("archive.bin"))
        .await
        .unwrap();
    let picture = alice
        .client
        .upload(jpeg(800, 600), "image/jpeg", None)
        .await
        .unwrap();
    alice
        .client
        .send_rest(
            &chat.conversation_id,
            &send_with(
                vec![media.media_id.clone(), picture.media_id.clone()],
                "both",
            ),
        )
        .await
        .unwrap();
    let live = messages(&mut bob_socket, &chat.conversation_id, 1).await;
    assert_eq!(live[0].attachments, vec![media.clone(), picture.clone()]);
    let downloaded = bob
        .client
        .download_media(&media.media_id, false)
        .await
        .unwrap();
    assert_eq!(sha256(&downloaded), sha256(&file));
    let thumbnail = bob
        .client
        .download_media(&picture.media_id, true)
        .await
        .unwrap();
    let thumbnail = image::load_from_memory(&thumbnail).unwrap();
    assert_eq!((thumbnail.width(), thumbnail.height()), (320, 240));
}

/// The upload URL stays valid until it expires, but nothing sent through it after the
/// completion reaches anyone: downloads come from what the server checked.
#[tokio::test]
async fn a_late_upload_cannot_change_what_was_sent() {
    let server = TestServer::start().await;
    let [alice, bob] = server.users(["alice", "bob"]).await;
    let chat = alice.direct_with(&bob).await;
    let request = declared("text/plain", 11);
    let upload = alice.client.create_media(&request).await.unwrap();
    alice
        .client
        .put_upload(&upload, b"first words".to_vec())
        .await
        .unwrap();
    let media = alice.client.complete_media(&upload.media_id).await.unwrap();
    alice
        .client
        .send_rest(
            &chat.conversation_id,
            &send_with(vec![media.media_id.clone()], ""),
        )
        .await
        .unwrap();
    // Same length, other bytes, through the URL that is still valid.
    let _ = alice
        .client
        .put_upload(&upload, b"other words".to_vec())
        .await;
    assert_eq!(
        bob.client
            .download_media(&media.media_id, false)
            .await
            .unwrap(),
        b"first words"
    );
    assert_eq!(
        alice.client.complete_media(&upload.media_id).await.unwrap(),
        media
    );
}
