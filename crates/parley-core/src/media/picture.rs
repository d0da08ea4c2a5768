//! Pictures: decoded within bounds, stripped of their metadata, shrunk to a thumbnail and
//! summed up in a BlurHash.
//!
//! Decoding untrusted images is where servers get hurt, so the header's dimensions are
//! checked against a pixel budget before a single pixel is decoded (a decompression
//! bomb of a few KiB that would expand to gigabytes is refused there), and the decoder
//! runs under an allocation limit too. Callers run [`process`] on a blocking thread.
//!
//! Stripping: JPEG and PNG are decoded and encoded again (EXIF, XMP, IPTC, comments and
//! text chunks do not survive; the EXIF orientation is applied first, so the picture stays
//! upright). WebP keeps its compressed image and loses its `EXIF` and `XMP ` chunks, unless
//! its EXIF turns it: then it is encoded again as PNG, upright. GIF has no EXIF and is kept
//! as it is (its animation too; comment and application extensions stay).

use super::sniff::ImageKind;
use image::{DynamicImage, ImageDecoder, ImageReader};
use std::io::Cursor;

/// How far processing goes.
#[derive(Clone, Copy, Debug)]
pub struct PictureLimits {
    /// Most pixels (width × height) decoded.
    pub max_pixels: u64,
    /// Most bytes the decoder may allocate.
    pub max_alloc: u64,
    /// The thumbnail fits in a square this wide.
    pub thumbnail_edge: u32,
}

impl Default for PictureLimits {
    fn default() -> Self {
        Self {
            max_pixels: 50_000_000,
            max_alloc: 512 * 1024 * 1024,
            thumbnail_edge: 320,
        }
    }
}

/// What processing made of a picture.
#[derive(Clone, Debug)]
pub struct Picture {
    /// The bytes to keep instead of the upload (metadata stripped); `None`: keep them.
    pub cleaned: Option<Vec<u8>>,
    /// The cleaned picture's type when it is not the upload's (a turned WebP is a PNG).
    pub content_type: Option<&'static str>,
    /// Pixels, upright.
    pub width: u32,
    pub height: u32,
    /// A JPEG at most `thumbnail_edge` wide and high (transparency painted white).
    pub thumbnail: Vec<u8>,
    pub thumbnail_width: u32,
    pub thumbnail_height: u32,
    pub blurhash: String,
}

/// Why a picture was not processed.
#[derive(Debug, thiserror::Error)]
pub enum PictureError {
    /// More pixels than the budget: refused before decoding.
    #[error("{width}×{height} pixels is more than the {max} this server decodes")]
    TooManyPixels { width: u32, height: u32, max: u64 },
    /// Not a picture the decoder can read (truncated, corrupt, or lying): keep it as a file.
    #[error("the picture cannot be decoded: {0}")]
    Undecodable(String),
    /// Not processed now (it took too long, the server is busy or stopping): ask again.
    #[error("the picture was not processed: {0}")]
    Busy(String),
}

/// Lowers the calling thread (a decoding thread of its own) to the lowest priority of
/// the normal class, `SCHED_BATCH` at nice 19 on Linux: the sends get the cores first,
/// and a decode still moves on a busy machine (`SCHED_IDLE` would starve it there).
/// Failing that, it stays as it is: only the messages' latency suffers, never a result.
pub fn run_in_background() {
    #[cfg(unix)]
    {
        use thread_priority::unix::{
            set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
            ThreadSchedulePolicy,
        };
        use thread_priority::ThreadPriority;
        let batch = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch);
        if let Err(error) =
            set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, batch)
        {
            tracing::debug!(?error, "could not lower a decoding thread's priority");
        }
    }
}

/// Processes the picture `bytes` of the sniffed `kind`.
pub fn process(
    bytes: &[u8],
    kind: ImageKind,
    limits: PictureLimits,
) -> Result<Picture, PictureError> {
    let undecodable = |error: image::ImageError| PictureError::Undecodable(error.to_string());
    let mut reader = ImageReader::new(Cursor::new(bytes));
    reader.set_format(match kind {
        ImageKind::Jpeg => image::ImageFormat::Jpeg,
        ImageKind::Png => image::ImageFormat::Png,
        ImageKind::Webp => image::ImageFormat::WebP,
        ImageKind::Gif => image::ImageFormat::Gif,
    });
    let mut decoder = reader.into_decoder().map_err(undecodable)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(PictureError::TooManyPixels {
            width,
            height,
            max: limits.max_pixels,
        });
    }
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_alloc = Some(limits.max_alloc);
    decoder.set_limits(decoder_limits).map_err(undecodable)?;
    let orientation = decoder.orientation().map_err(undecodable)?;
    let mut picture = DynamicImage::from_decoder(decoder).map_err(undecodable)?;
    let turned = orientation != image::metadata::Orientation::NoTransforms;
    picture.apply_orientation(orientation);
    let mut content_type = None;
    let cleaned = match kind {
        ImageKind::Jpeg => Some(encode_jpeg(&picture, 88)?),
        ImageKind::Png => Some(encode_png(&picture)?),
        ImageKind::Webp if turned => {
            content_type = Some("image/png");
            Some(encode_png(&picture)?)
        }
        ImageKind::Webp => strip_webp(bytes),
        ImageKind::Gif => None,
    };
    let thumbnail = picture.thumbnail(limits.thumbnail_edge, limits.thumbnail_edge);
    let thumbnail_bytes = encode_jpeg(&on_white(&thumbnail), 80)?;
    Ok(Picture {
        cleaned,
        content_type,
        width: picture.width(),
        height: picture.height(),
        thumbnail: thumbnail_bytes,
        thumbnail_width: thumbnail.width(),
        thumbnail_height: thumbnail.height(),
        blurhash: blurhash_of(&thumbnail),
    })
}

fn encode_jpeg(picture: &DynamicImage, quality: u8) -> Result<Vec<u8>, PictureError> {
    let mut bytes = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality);
    // JPEG has no alpha and at most 8 bits a channel.
    DynamicImage::ImageRgb8(picture.to_rgb8())
        .write_with_encoder(encoder)
        .map_err(|error| PictureError::Undecodable(error.to_string()))?;
    Ok(bytes)
}

/// The picture with any transparency painted over white (JPEG has no alpha).
fn on_white(picture: &DynamicImage) -> DynamicImage {
    if !picture.color().has_alpha() {
        return picture.clone();
    }
    let rgba = picture.to_rgba8();
    DynamicImage::ImageRgb8(image::RgbImage::from_fn(
        rgba.width(),
        rgba.height(),
        |x, y| {
            let [r, g, b, a] = rgba.get_pixel(x, y).0;
            let over = |channel: u8| {
                ((u16::from(channel) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8
            };
            image::Rgb([over(r), over(g), over(b)])
        },
    ))
}

fn encode_png(picture: &DynamicImage) -> Result<Vec<u8>, PictureError> {
    let mut bytes = Vec::new();
    picture
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
        .map_err(|error| PictureError::Undecodable(error.to_string()))?;
    Ok(bytes)
}

/// A BlurHash of 4×3 components, from a picture no larger than 64 pixels a side.
fn blurhash_of(picture: &DynamicImage) -> String {
    let small = picture.thumbnail(64, 64).to_rgba8();
    blurhash::encode(4, 3, small.width(), small.height(), small.as_raw()).unwrap_or_default()
}

/// The WebP file without its `EXIF` and `XMP ` chunks (and their flags in `VP8X`);
/// `None` if it has none, or is not a RIFF file this understands (the decoder read it
/// all the same).
fn strip_webp(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WEBP" {
        return None;
    }
    let mut kept = Vec::with_capacity(bytes.len());
    kept.extend_from_slice(&bytes[..12]);
    let mut at = 12;
    let mut stripped = false;
    while at + 8 <= bytes.len() {
        let tag = &bytes[at..at + 4];
        let length = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().ok()?) as usize;
        let end = at.checked_add(8 + length + (length & 1))?.min(bytes.len());
        if tag == b"EXIF" || tag == b"XMP " {
            stripped = true;
        } else {
            let start = kept.len();
            kept.extend_from_slice(&bytes[at..end]);
            if tag == b"VP8X" && kept.len() >= start + 9 {
                // Flags: bit 3 EXIF, bit 2 XMP.
                kept[start + 8] &= !0b0000_1100;
            }
        }
        at = end;
    }
    if !stripped {
        return None;
    }
    let riff_length = u32::try_from(kept.len() - 8).ok()?;
    kept[4..8].copy_from_slice(&riff_length.to_le_bytes());
    Some(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn decoding_threads_run_at_the_lowest_priority() {
        use thread_priority::unix::{
            thread_schedule_policy, NormalThreadSchedulePolicy, ThreadSchedulePolicy,
        };
        let policy = std::thread::spawn(|| {
            run_in_background();
            thread_schedule_policy().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(
            policy,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Batch)
        );
        // Only that thread: this one keeps its class.
        assert_ne!(thread_schedule_policy().unwrap(), policy);
    }

    fn png(width: u32, height: u32) -> Vec<u8> {
        let picture = DynamicImage::ImageRgb8(image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        }));
        encode_png(&picture).unwrap()
    }

    #[test]
    fn a_picture_gets_dimensions_a_thumbnail_and_a_blurhash() {
        let processed = process(&png(1000, 500), ImageKind::Png, PictureLimits::default()).unwrap();
        assert_eq!((processed.width, processed.height), (1000, 500));
        assert_eq!(
            (processed.thumbnail_width, processed.thumbnail_height),
            (320, 160)
        );
        assert!(processed.thumbnail.starts_with(b"\xff\xd8\xff"));
        // 4×3 components: a size flag, a maximum, the DC (4) and 11 AC values (2 each).
        assert_eq!(processed.blurhash.len(), 1 + 1 + 4 + 2 * 11);
        assert!(processed.cleaned.is_some());
    }

    #[test]
    fn too_many_pixels_are_refused_before_decoding() {
        let limits = PictureLimits {
            max_pixels: 100 * 100,
            ..PictureLimits::default()
        };
        let error = process(&png(101, 100), ImageKind::Png, limits).unwrap_err();
        assert!(
            matches!(error, PictureError::TooManyPixels { width: 101, .. }),
            "{error}"
        );
    }

    #[test]
    fn garbage_is_undecodable() {
        let error = process(
            b"\x89PNG\r\n\x1a\nnot really",
            ImageKind::Png,
            PictureLimits::default(),
        )
        .unwrap_err();
        assert!(matches!(error, PictureError::Undecodable(_)));
    }

    #[test]
    fn webp_metadata_chunks_are_dropped() {
        let mut file = b"RIFF\0\0\0\0WEBP".to_vec();
        file.extend_from_slice(b"VP8X\x0a\0\0\0\x0c\0\0\0\0\0\0\0\0\0");
        file.extend_from_slice(b"EXIF\x03\0\0\0GPS\0");
        file.extend_from_slice(b"VP8L\x02\0\0\0ab");
        let stripped = strip_webp(&file).unwrap();
        assert!(!stripped.windows(3).any(|window| window == b"GPS"));
        assert_eq!(stripped[20] & 0b1100, 0);
        assert_eq!(
            u32::from_le_bytes(stripped[4..8].try_into().unwrap()) as usize,
            stripped.len() - 8
        );
        assert!(stripped.ends_with(b"VP8L\x02\0\0\0ab"));
    }
}
