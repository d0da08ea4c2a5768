//! `parley send` (text, files as attachments) and `parley download`.

use super::*;
use std::path::{Path, PathBuf};

/// Sends `text` (the caption, if files are attached) with each of `attach` uploaded
/// first, over REST.
pub(crate) async fn send(
    server: &str,
    conversation_id: String,
    text: Vec<String>,
    attach: Vec<PathBuf>,
) -> anyhow::Result<()> {
    let (client, _) = logged_in(server)?;
    anyhow::ensure!(
        !text.is_empty() || !attach.is_empty(),
        "give a text, or --attach a file"
    );
    let mut attachments = Vec::with_capacity(attach.len());
    for path in &attach {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let filename = path.file_name().and_then(|name| name.to_str());
        let media = client
            .upload(bytes, guess_type(path), filename)
            .await
            .with_context(|| format!("uploading {}", path.display()))?;
        println!(
            "uploaded {} as {} ({}, {} bytes)",
            path.display(),
            media.media_id,
            media.content_type,
            media.size
        );
        attachments.push(media.media_id);
    }
    let request = SendMessageRequest {
        client_msg_id: parley_sdk::new_client_msg_id(),
        content: text.join(" "),
        content_type: None,
        reply_to_seq: None,
        target_seq: None,
        mentions: Vec::new(),
        attachments,
    };
    let message = client
        .send_rest(&ConversationId::from(conversation_id), &request)
        .await
        .context("sending")?;
    println!("sent #{} in {}", message.seq, message.conversation_id);
    Ok(())
}

/// Saves a media's bytes (or its thumbnail's) to `out`.
pub(crate) async fn download(
    server: &str,
    media_id: String,
    out: PathBuf,
    thumbnail: bool,
) -> anyhow::Result<()> {
    let (client, _) = logged_in(server)?;
    let bytes = client
        .download_media(&parley_sdk::proto::MediaId(media_id), thumbnail)
        .await
        .context("downloading")?;
    std::fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    println!("saved {} bytes to {}", bytes.len(), out.display());
    Ok(())
}

/// Uploads `file` and makes it the profile picture, or `group`'s; `None` removes it.
pub(crate) async fn avatar(
    server: &str,
    file: Option<PathBuf>,
    group: Option<String>,
) -> anyhow::Result<()> {
    let (client, _) = logged_in(server)?;
    let media_id = match &file {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let filename = path.file_name().and_then(|name| name.to_str());
            let media = client
                .upload(bytes, guess_type(path), filename)
                .await
                .with_context(|| format!("uploading {}", path.display()))?;
            Some(media.media_id)
        }
        None => None,
    };
    let what = match &media_id {
        Some(media_id) => format!("set to {media_id}"),
        None => "removed".to_owned(),
    };
    match group {
        Some(conversation_id) => {
            let request = parley_sdk::proto::rest::UpdateConversationRequest {
                avatar_media_id: Some(media_id),
                ..Default::default()
            };
            let conversation = client
                .update_conversation(&ConversationId::from(conversation_id), &request)
                .await
                .context("setting the group's picture")?;
            println!("picture of {} {what}", conversation.conversation_id);
        }
        None => {
            let request = parley_sdk::proto::rest::UpdateProfileRequest {
                avatar_media_id: Some(media_id),
                ..Default::default()
            };
            client
                .update_me(&request)
                .await
                .context("setting your picture")?;
            println!("profile picture {what}");
        }
    }
    Ok(())
}

/// A type to declare from the file name; the server sniffs the bytes anyway.
fn guess_type(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .and_then(|extension| extension.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match extension.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "ogg" | "opus" => "audio/ogg",
        "m4a" => "audio/mp4",
        "wav" => "audio/wav",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        _ => "application/octet-stream",
    }
}
