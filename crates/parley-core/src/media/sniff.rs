//! What an upload really is, from its first bytes: the declared type is a hint.
//!
//! A type the bytes prove wins over the declared one, so a `.jpg` that is an executable
//! is stored as the executable it is (and only ever downloaded as an attachment). Bytes
//! no signature matches keep the declared type only if it is one of a few types that no
//! browser runs; anything else becomes `application/octet-stream`.

/// How many leading bytes [`sniff`] looks at.
pub const SNIFF_BYTES: usize = 8192;

/// What the server does with an upload of this kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A picture it decodes: dimensions, metadata stripped, thumbnail, blurhash.
    Image(ImageKind),
    Audio,
    Video,
    /// Anything else: stored and offered as a download.
    File,
}

/// The picture formats parley decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageKind {
    Jpeg,
    Png,
    Webp,
    Gif,
}

/// The verdict on an upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sniffed {
    pub content_type: String,
    pub kind: Kind,
}

/// Declared types kept for bytes no signature matches: text a browser shows as text.
const PLAIN_TYPES: [&str; 4] = [
    "text/plain",
    "text/csv",
    "text/markdown",
    "application/json",
];

/// Sniffed types a browser would render or run: stored as plain bytes.
const MARKUP_TYPES: [&str; 5] = [
    "text/html",
    "text/xml",
    "application/xml",
    "image/svg+xml",
    "application/javascript",
];

/// Judges an upload by its first bytes (at most [`SNIFF_BYTES`] are looked at) and what
/// the client declared.
pub fn sniff(head: &[u8], declared: &str) -> Sniffed {
    let declared = essence(declared);
    let head = &head[..head.len().min(SNIFF_BYTES)];
    let Some(found) = infer::get(head) else {
        let content_type = if PLAIN_TYPES.contains(&declared.as_str()) {
            declared
        } else {
            "application/octet-stream".to_owned()
        };
        return Sniffed {
            content_type,
            kind: Kind::File,
        };
    };
    let mut content_type = found.mime_type().to_owned();
    if MARKUP_TYPES.contains(&content_type.as_str()) {
        // Markup and scripts are only ever files, whatever they are.
        return Sniffed {
            content_type: "application/octet-stream".to_owned(),
            kind: Kind::File,
        };
    }
    // One container holds audio or video: a voice note in WebM or MP4 is `audio/…`
    // when the client says so.
    if let (Some(("audio", declared_sub)), Some(("video", found_sub))) =
        (declared.split_once('/'), content_type.split_once('/'))
    {
        if declared_sub == found_sub || (declared_sub, found_sub) == ("m4a", "mp4") {
            content_type = declared.clone();
        }
    }
    let kind = match content_type.as_str() {
        "image/jpeg" => Kind::Image(ImageKind::Jpeg),
        "image/png" => Kind::Image(ImageKind::Png),
        "image/webp" => Kind::Image(ImageKind::Webp),
        "image/gif" => Kind::Image(ImageKind::Gif),
        other if other.starts_with("audio/") => Kind::Audio,
        other if other.starts_with("video/") => Kind::Video,
        _ => Kind::File,
    };
    Sniffed { content_type, kind }
}

/// `type/subtype` in lower case, parameters dropped.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Whether a browser may show this type in the page (`Content-Disposition: inline`):
/// the pictures parley processed, and audio and video for players. Everything else is
/// downloaded as a file.
pub fn shown_inline(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/jpeg" | "image/png" | "image/webp" | "image/gif"
    ) || content_type.starts_with("audio/")
        || content_type.starts_with("video/")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const EXE: &[u8] = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0";

    #[test]
    fn the_bytes_win_over_the_declared_type() {
        let exe = sniff(EXE, "image/jpeg");
        assert_eq!(exe.kind, Kind::File);
        assert_ne!(exe.content_type, "image/jpeg");
        assert!(!shown_inline(&exe.content_type));
        let png = sniff(PNG, "application/octet-stream");
        assert_eq!(png.content_type, "image/png");
        assert_eq!(png.kind, Kind::Image(ImageKind::Png));
    }

    #[test]
    fn unknown_bytes_keep_only_plain_declared_types() {
        assert_eq!(
            sniff(b"hello, world", "text/plain; charset=utf-8").content_type,
            "text/plain"
        );
        for risky in ["text/html", "image/svg+xml", "application/javascript", ""] {
            let sniffed = sniff(b"<html><script>alert(1)</script>", risky);
            assert_eq!(sniffed.content_type, "application/octet-stream", "{risky}");
        }
    }

    #[test]
    fn audio_in_a_video_container_stays_audio() {
        let mut webm = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm".to_vec();
        webm.resize(512, 0);
        let webm = webm.as_slice();
        assert_eq!(sniff(webm, "audio/webm").content_type, "audio/webm");
        assert_eq!(sniff(webm, "audio/webm").kind, Kind::Audio);
        assert_eq!(sniff(webm, "image/png").content_type, "video/webm");
    }
}
