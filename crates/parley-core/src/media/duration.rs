//! How long a recording lasts, read from its container without a native toolchain:
//! MP4/QuickTime (`mvhd`), Ogg (Opus and Vorbis: the last page's granule position) and
//! WAV (data length over byte rate). WebM from a browser's `MediaRecorder` does not say;
//! the client's own measure stands in for it then.

/// How many bytes from each end of a file [`duration_ms`] wants to see.
pub const DURATION_WINDOW: u64 = 1024 * 1024;

/// The longest recording there is: anything longer read from a container is a misread,
/// and a client may not claim more.
pub const MAX_DURATION_MS: u64 = 100 * 3600 * 1000;

/// The duration of the recording of `content_type` whose first and last bytes are
/// `head` and `tail` (each up to [`DURATION_WINDOW`]; the same bytes twice for a small
/// file), if its container says.
pub fn duration_ms(content_type: &str, head: &[u8], tail: &[u8]) -> Option<u64> {
    let subtype = content_type.split_once('/')?.1;
    let found = match subtype {
        "mp4" | "m4a" | "x-m4a" | "quicktime" | "3gpp" => mvhd(head).or_else(|| mvhd(tail)),
        "ogg" | "opus" => ogg(head, tail),
        "wav" | "x-wav" | "vnd.wave" => wav(head),
        _ => None,
    }?;
    (found <= MAX_DURATION_MS).then_some(found)
}

fn be32(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u32::from_be_bytes(
        bytes.get(at..at + 4)?.try_into().ok()?,
    )))
}

fn be64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

fn le32(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u32::from_le_bytes(
        bytes.get(at..at + 4)?.try_into().ok()?,
    )))
}

/// The movie header box: timescale and duration, version 0 or 1.
fn mvhd(bytes: &[u8]) -> Option<u64> {
    let at = bytes.windows(4).position(|window| window == b"mvhd")? + 4;
    let version = *bytes.get(at)?;
    let (timescale, duration) = match version {
        0 => (be32(bytes, at + 12)?, be32(bytes, at + 16)?),
        1 => (be32(bytes, at + 20)?, be64(bytes, at + 24)?),
        _ => return None,
    };
    if timescale == 0 || duration == u64::from(u32::MAX) || duration == u64::MAX {
        return None;
    }
    Some(duration.checked_mul(1000)? / timescale)
}

/// The last Ogg page's granule position over the stream's rate (Opus: 48 kHz less its
/// pre-skip; Vorbis: the rate in its identification header).
fn ogg(head: &[u8], tail: &[u8]) -> Option<u64> {
    let (rate, skip) = if let Some(at) = find(head, b"OpusHead") {
        let pre_skip = u64::from(u16::from_le_bytes(
            head.get(at + 10..at + 12)?.try_into().ok()?,
        ));
        (48_000, pre_skip)
    } else {
        let at = find(head, b"\x01vorbis")?;
        (le32(head, at + 12)?, 0)
    };
    let last_page = tail.windows(4).rposition(|window| window == b"OggS")?;
    let granule = u64::from_le_bytes(tail.get(last_page + 6..last_page + 14)?.try_into().ok()?);
    if rate == 0 || granule == u64::MAX {
        return None;
    }
    Some(granule.saturating_sub(skip).checked_mul(1000)? / rate)
}

/// `data` length over the `fmt ` chunk's byte rate.
fn wav(head: &[u8]) -> Option<u64> {
    if head.get(0..4)? != b"RIFF" || head.get(8..12)? != b"WAVE" {
        return None;
    }
    let mut at = 12;
    let mut byte_rate = None;
    while at + 8 <= head.len() {
        let length = le32(head, at + 4)?;
        match &head[at..at + 4] {
            b"fmt " => byte_rate = le32(head, at + 16),
            b"data" => {
                let rate = byte_rate.filter(|rate| *rate > 0)?;
                return Some(length.checked_mul(1000)? / rate);
            }
            _ => {}
        }
        at = at.checked_add(8 + usize::try_from(length).ok()? + (length as usize & 1))?;
    }
    None
}

fn find(bytes: &[u8], needle: &[u8]) -> Option<usize> {
    bytes
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mp4_says_in_its_movie_header() {
        let mut file = b"\0\0\0\x18ftypisom\0\0\0\0isomiso2\0\0\0\x6cmoov\0\0\0\x64mvhd".to_vec();
        file.extend_from_slice(&[0, 0, 0, 0]); // version 0, flags
        file.extend_from_slice(&[0; 8]); // creation, modification
        file.extend_from_slice(&1000u32.to_be_bytes()); // timescale
        file.extend_from_slice(&12_345u32.to_be_bytes()); // duration
        assert_eq!(duration_ms("video/mp4", &file, &file), Some(12_345));
        assert_eq!(duration_ms("audio/mp4", b"nothing here", b""), None);
    }

    #[test]
    fn ogg_opus_counts_granules_at_48_khz() {
        let mut head = b"OggS\0\x02".to_vec();
        head.extend_from_slice(&[0; 20]);
        head.extend_from_slice(b"OpusHead\x01\x01");
        head.extend_from_slice(&312u16.to_le_bytes());
        let mut tail = b"OggS\0\x04".to_vec();
        tail.extend_from_slice(&(48_000u64 * 3 + 312).to_le_bytes());
        assert_eq!(duration_ms("audio/ogg", &head, &tail), Some(3000));
    }

    #[test]
    fn wav_is_data_over_byte_rate() {
        let mut file = b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0".to_vec();
        file.extend_from_slice(&8000u32.to_le_bytes()); // sample rate
        file.extend_from_slice(&16_000u32.to_le_bytes()); // byte rate
        file.extend_from_slice(b"\x02\0\x10\0data");
        file.extend_from_slice(&24_000u32.to_le_bytes());
        assert_eq!(duration_ms("audio/wav", &file, &file), Some(1500));
    }
}
