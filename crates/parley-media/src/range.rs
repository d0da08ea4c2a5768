//! The one `Range` request header the disk backend serves: a single byte range.

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Range {
    /// Not one range of bytes this server serves as a part: the whole file.
    Ignored,
    /// `[start, end)`.
    Part(u64, u64),
    Unsatisfiable,
}

/// One `bytes=` range (`a-b`, `a-`, `-n`) of a file of `length` bytes; several ranges or
/// another unit are served as the whole file (RFC 9110 lets a server ignore `Range`).
pub(crate) fn parse_range(value: &str, length: u64) -> Range {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Range::Ignored;
    };
    if spec.contains(',') {
        return Range::Ignored;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Range::Ignored;
    };
    let (first, last) = (first.trim(), last.trim());
    let parsed = match (first.is_empty(), last.is_empty()) {
        (true, false) => last
            .parse::<u64>()
            .ok()
            .map(|suffix| (length.saturating_sub(suffix), length)),
        (false, true) => first.parse::<u64>().ok().map(|start| (start, length)),
        (false, false) => match (first.parse::<u64>(), last.parse::<u64>()) {
            (Ok(start), Ok(end)) if end >= start => {
                Some((start, end.saturating_add(1).min(length)))
            }
            _ => return Range::Ignored,
        },
        (true, true) => None,
    };
    match parsed {
        None => Range::Ignored,
        Some((start, end)) if start >= length || start >= end => Range::Unsatisfiable,
        Some((start, end)) => Range::Part(start, end),
    }
}
