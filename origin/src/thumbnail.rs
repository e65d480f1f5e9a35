//! Decoding captures and making their thumbnails.
//!
//! A thumbnail is about [`THUMBNAIL_WIDTH`] pixels wide. The JPEG is decoded by libjpeg-turbo
//! (Debian's libturbojpeg, SIMD Huffman decoding) at a reduced DCT scale (1/8, 1/4, 3/8, ...,
//! the smallest that is still at least as wide as the thumbnail), so a 1920x1080 frame is
//! decoded as 480x270 instead of being decoded whole and then shrunk; the whole entropy-coded
//! stream is still read, so a truncated or corrupt capture fails here.
//!
//! Chosen over the pure-Rust decoders after measuring: jpeg-decoder (which also scales) and
//! zune-jpeg (which does not) took 26-35 ms for a 1.4 MB 1080p frame, libjpeg-turbo a fraction
//! of that; capture throughput is bound by this decode.

use image::codecs::jpeg::JpegEncoder;
use image::{ImageBuffer, Rgb};

/// The width thumbnails are made at.
pub const THUMBNAIL_WIDTH: u32 = 320;

/// JPEG quality of thumbnails.
const THUMBNAIL_QUALITY: i32 = 80;

/// Refuse frames larger than this (a decompression bomb guard): 100 megapixels.
const MAX_PIXELS: u64 = 100_000_000;

/// A decoded capture's facts and its thumbnail.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// Width of the original.
    pub width: u32,
    /// Height of the original.
    pub height: u32,
    /// The thumbnail, JPEG.
    pub thumbnail: Vec<u8>,
}

/// Why a capture is not usable.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not a decodable JPEG.
    #[error("the body is not a decodable JPEG image: {0}")]
    Invalid(String),
    /// Too many pixels.
    #[error("the image is {width}x{height}, more than the {MAX_PIXELS} pixels allowed")]
    TooLarge {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
}

/// The reduced DCT scales libjpeg-turbo offers for downscaling, largest reduction first
/// (1/8, 1/4, 3/8, 1/2, ...): the output is `ceil(size * num / 8)`.
const SCALE_NUMERATORS: [usize; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

/// `ceil(size * num / 8)`, libjpeg-turbo's TJSCALED.
fn scaled(size: usize, num: usize) -> usize {
    (size * num).div_ceil(8)
}

/// Decodes a JPEG at reduced scale and encodes its thumbnail. CPU-bound: call from
/// `spawn_blocking`.
pub fn decode_jpeg(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let invalid = |e: turbojpeg::Error| DecodeError::Invalid(e.to_string());
    let mut decompressor = turbojpeg::Decompressor::new().map_err(invalid)?;
    let header = decompressor.read_header(bytes).map_err(invalid)?;
    let (width, height) = (header.width, header.height);
    if width == 0 || height == 0 {
        return Err(DecodeError::Invalid("the image has no pixels".into()));
    }
    let (w32, h32) = (width as u32, height as u32);
    if (width as u64) * (height as u64) > MAX_PIXELS {
        return Err(DecodeError::TooLarge {
            width: w32,
            height: h32,
        });
    }
    // The smallest DCT scale that is still at least thumbnail-wide: libjpeg-turbo then does
    // the inverse DCT and colour conversion on that many pixels only.
    let num = SCALE_NUMERATORS
        .into_iter()
        .find(|&n| scaled(width, n) >= (THUMBNAIL_WIDTH as usize).min(width))
        .unwrap_or(8);
    let (w, h) = (scaled(width, num), scaled(height, num));
    let mut image = turbojpeg::Image {
        pixels: vec![0u8; w * h * 3],
        width: w,
        pitch: w * 3,
        height: h,
        format: turbojpeg::PixelFormat::RGB,
    };
    decompressor
        .decompress(bytes, image.as_deref_mut())
        .map_err(invalid)?;
    let rgb = ImageBuffer::<Rgb<u8>, _>::from_raw(w as u32, h as u32, image.pixels)
        .ok_or_else(|| DecodeError::Invalid("decoded size does not match the header".into()))?;
    let thumb_w = THUMBNAIL_WIDTH.min(w as u32);
    let thumb_h = ((h as u64 * u64::from(thumb_w)) / w as u64).max(1) as u32;
    // Box sampling (`thumbnail`): the remaining reduction is at most 2x, where it looks as
    // good as a triangle filter at a fraction of the cost.
    let thumb = if (thumb_w, thumb_h) == (w as u32, h as u32) {
        rgb
    } else {
        image::imageops::thumbnail(&rgb, thumb_w, thumb_h)
    };
    let mut compressor = turbojpeg::Compressor::new().map_err(invalid)?;
    compressor.set_quality(THUMBNAIL_QUALITY);
    compressor.set_subsamp(turbojpeg::Subsamp::Sub2x2);
    let thumbnail = compressor
        .compress_to_vec(turbojpeg::Image {
            pixels: thumb.as_raw().as_slice(),
            width: thumb_w as usize,
            pitch: thumb_w as usize * 3,
            height: thumb_h as usize,
            format: turbojpeg::PixelFormat::RGB,
        })
        .map_err(invalid)?;
    Ok(Decoded {
        width: w32,
        height: h32,
        thumbnail,
    })
}

/// Encodes an RGB frame as JPEG (the synthetic camera and tests use it).
pub fn encode_jpeg(width: u32, height: u32, rgb: &[u8], quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality)
        .encode(rgb, width, height, image::ExtendedColorType::Rgb8)
        .expect("encoding an in-memory RGB frame cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(width: u32, height: u32) -> Vec<u8> {
        let rgb: Vec<u8> = (0..width * height)
            .flat_map(|i| {
                let (x, y) = (i % width, i / width);
                [(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8]
            })
            .collect();
        encode_jpeg(width, height, &rgb, 85)
    }

    #[test]
    fn thumbnails_are_320_wide_with_the_aspect_ratio() {
        let decoded = decode_jpeg(&frame(1920, 1080)).unwrap();
        assert_eq!((decoded.width, decoded.height), (1920, 1080));
        let thumb = image::load_from_memory(&decoded.thumbnail).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (320, 180));
    }

    #[test]
    fn small_images_are_not_enlarged() {
        let decoded = decode_jpeg(&frame(100, 50)).unwrap();
        let thumb = image::load_from_memory(&decoded.thumbnail).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (100, 50));
    }

    #[test]
    fn truncated_and_garbage_bodies_are_rejected() {
        let jpeg = frame(640, 480);
        assert!(decode_jpeg(&jpeg[..jpeg.len() / 2]).is_err());
        assert!(decode_jpeg(b"not an image").is_err());
        assert!(decode_jpeg(&[]).is_err());
    }
}
