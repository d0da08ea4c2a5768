//! Checks on user text: lengths in characters, no control characters, names on one line
//! without bidi overrides, message content, avatar URLs.

use super::*;

pub(super) fn checked_text(
    field: &str,
    text: String,
    min_chars: usize,
    max_chars: usize,
) -> Result<String> {
    let trimmed = text.trim();
    let count = trimmed.chars().count();
    if count < min_chars
        || count > max_chars
        || trimmed.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(Error::Invalid(format!(
            "{field} must be {min_chars}-{max_chars} characters without control characters"
        )));
    }
    Ok(trimmed.to_owned())
}

/// Characters that reorder the text around them: a name with one can show as something
/// else ("Admin" spelled backwards by U+202E), so names refuse them.
pub(super) fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A name shown on one line next to messages (display names, group names): 1 to
/// `max_chars` characters, no control characters, no line breaks, no bidi overrides.
pub(super) fn checked_name(field: &str, text: String, max_chars: usize) -> Result<String> {
    let text = checked_text(field, text, 1, max_chars)?;
    if text
        .chars()
        .any(|c| c == '\n' || c == '\u{2028}' || c == '\u{2029}' || is_bidi_control(c))
    {
        return Err(Error::Invalid(format!(
            "{field} must be one line without bidirectional override characters"
        )));
    }
    Ok(text)
}

/// Message content: no control characters but line feeds and tabs, and something besides
/// white space.
pub(super) fn check_content(content: &str) -> Result<()> {
    if content
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::Invalid(
            "content must not contain control characters other than line feed and tab".into(),
        ));
    }
    if content.trim().is_empty() {
        return Err(Error::Invalid(
            "content must not be empty or only white space".into(),
        ));
    }
    Ok(())
}

pub(super) fn optional_text(
    field: &str,
    text: Option<String>,
    max_chars: usize,
) -> Result<Option<String>> {
    match text {
        None => Ok(None),
        Some(text) if text.trim().is_empty() => Ok(None),
        Some(text) => checked_text(field, text, 1, max_chars).map(Some),
    }
}

pub(super) fn optional_url(url: String) -> Result<Option<String>> {
    let url = url.trim();
    if url.is_empty() {
        return Ok(None);
    }
    if url.len() > MAX_AVATAR_URL
        || !(url.starts_with("https://") || url.starts_with("http://"))
        || url.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(Error::Invalid(
            "avatar_url must be an http(s) URL without spaces or control characters".into(),
        ));
    }
    Ok(Some(url.to_owned()))
}

/// Longest media type `POST /media` takes.
const MAX_CONTENT_TYPE: usize = 127;

/// `type/subtype` (lower case, parameters dropped): what `POST /media` takes. The whole
/// value, parameters included, is at most 127 characters (the schema's `maxLength`).
pub(super) fn checked_content_type(content_type: &str) -> Result<String> {
    if content_type.chars().count() > MAX_CONTENT_TYPE {
        return Err(Error::Invalid(format!(
            "content_type is at most {MAX_CONTENT_TYPE} characters"
        )));
    }
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let token = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match essence.split_once('/') {
        Some((kind, subtype))
            if essence.len() <= MAX_CONTENT_TYPE && token(kind) && token(subtype) =>
        {
            Ok(essence)
        }
        _ => Err(Error::Invalid(
            "content_type must be a media type such as image/jpeg".into(),
        )),
    }
}

/// A file name as shown and offered on download: no path, no control characters, no
/// bidi controls (`invoice\u{202E}fdp.exe` must not read as a PDF), at most 255 bytes;
/// `None` if nothing is left.
pub(super) fn checked_filename(filename: Option<String>) -> Result<Option<String>> {
    let Some(name) = filename else {
        return Ok(None);
    };
    let limit = parley_proto::limits::MAX_FILENAME_BYTES;
    if name.len() > limit {
        return Err(Error::Invalid(format!("filename is at most {limit} bytes")));
    }
    let cleaned: String = name
        .chars()
        .map(|c| {
            let hidden_turn = is_bidi_control(c)
                || matches!(c, '\u{200E}' | '\u{200F}' | '\u{2028}' | '\u{2029}');
            if c == '/' || c == '\\' || c.is_control() || hidden_turn {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned.trim();
    Ok((!cleaned.is_empty() && cleaned != "." && cleaned != "..").then(|| cleaned.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_media_types() {
        assert_eq!(
            checked_content_type("Image/JPEG; q=1").unwrap(),
            "image/jpeg"
        );
        let long_parameters = format!("image/png; x={}", "y".repeat(120));
        for bad in [
            "",
            "image",
            "image/",
            "/png",
            "a b/c",
            "image/png/x",
            &long_parameters,
        ] {
            assert!(checked_content_type(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn filenames_lose_paths_and_control_characters() {
        assert_eq!(
            checked_filename(Some("../../etc/passwd".into()))
                .unwrap()
                .as_deref(),
            Some(".._.._etc_passwd")
        );
        assert_eq!(
            checked_filename(Some("a\u{0}b.txt".into()))
                .unwrap()
                .as_deref(),
            Some("a_b.txt")
        );
        assert_eq!(
            checked_filename(Some("invoice\u{202E}fdp.exe".into()))
                .unwrap()
                .as_deref(),
            Some("invoice_fdp.exe")
        );
        assert_eq!(checked_filename(Some("  ".into())).unwrap(), None);
        assert!(checked_filename(Some("x".repeat(256))).is_err());
    }
}
