//! Decoding captures and making their thumbnails.
//!
//! A thumbnail is about [`THUMBNAIL_WIDTH`] pixels wide. The JPEG is decoded at a reduced DCT
//! scale (1/2, 1/4 or 1/8, the smallest that is still at least as large as the thumbnail), so
//! a 1920x1080 frame is decoded as 480x270 instead of being decoded whole and then shrunk;
//! the full entropy-coded stream is still read, so a truncated or corrupt capture fails here.

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageBuffer, Luma, Rgb};

/// The width thumbnails are made at.
pub const THUMBNAIL_WIDTH: u32 = 320;

/// JPEG quality of thumbnails.
const THUMBNAIL_QUALITY: u8 = 80;

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

/// Decodes a JPEG at reduced scale and encodes its thumbnail. CPU-bound: call from
/// `spawn_blocking`.
pub fn decode_jpeg(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let invalid = |e: jpeg_decoder::Error| DecodeError::Invalid(e.to_string());
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    decoder.read_info().map_err(invalid)?;
    let info = decoder
        .info()
        .ok_or_else(|| DecodeError::Invalid("no frame header".into()))?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    if width == 0 || height == 0 {
        return Err(DecodeError::Invalid("the image has no pixels".into()));
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(DecodeError::TooLarge { width, height });
    }
    let target_height = (u64::from(height) * u64::from(THUMBNAIL_WIDTH) / u64::from(width)).max(1);
    let (scaled_w, scaled_h) = decoder
        .scale(
            THUMBNAIL_WIDTH.min(width) as u16,
            target_height.min(u64::from(height)) as u16,
        )
        .map_err(invalid)?;
    let pixels = decoder.decode().map_err(invalid)?;
    let info = decoder
        .info()
        .ok_or_else(|| DecodeError::Invalid("no frame header".into()))?;
    let (w, h) = (u32::from(scaled_w), u32::from(scaled_h));
    let image = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => {
            ImageBuffer::<Rgb<u8>, _>::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8)
        }
        jpeg_decoder::PixelFormat::L8 => {
            ImageBuffer::<Luma<u8>, _>::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8)
        }
        jpeg_decoder::PixelFormat::L16 => {
            let eight: Vec<u8> = pixels.chunks_exact(2).map(|p| p[0]).collect();
            ImageBuffer::<Luma<u8>, _>::from_raw(w, h, eight).map(DynamicImage::ImageLuma8)
        }
        jpeg_decoder::PixelFormat::CMYK32 => {
            let rgb: Vec<u8> = pixels
                .chunks_exact(4)
                .flat_map(|p| {
                    let k = u16::from(p[3]);
                    [p[0], p[1], p[2]].map(|c| ((u16::from(c) * k) / 255) as u8)
                })
                .collect();
            ImageBuffer::<Rgb<u8>, _>::from_raw(w, h, rgb).map(DynamicImage::ImageRgb8)
        }
    }
    .ok_or_else(|| DecodeError::Invalid("decoded size does not match the header".into()))?;
    let thumb_w = THUMBNAIL_WIDTH.min(w);
    let thumb_h = ((u64::from(h) * u64::from(thumb_w)) / u64::from(w)).max(1) as u32;
    let thumb = if (thumb_w, thumb_h) == (w, h) {
        image
    } else {
        image.resize_exact(thumb_w, thumb_h, FilterType::Triangle)
    };
    let mut thumbnail = Vec::with_capacity(32 * 1024);
    JpegEncoder::new_with_quality(&mut thumbnail, THUMBNAIL_QUALITY)
        .encode_image(&thumb.to_rgb8())
        .map_err(|e| DecodeError::Invalid(e.to_string()))?;
    Ok(Decoded {
        width,
        height,
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
