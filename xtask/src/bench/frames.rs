//! Synthetic JPEGs for the benchmarks: photo-like, distinct per seed, of a chosen size.

use anyhow::Result;
use image::codecs::jpeg::JpegEncoder;

/// A photo-like frame: gradients, shapes and noise; distinct per `seed`.
pub fn frame(width: u32, height: u32, seed: u32, noise: u32) -> Vec<u8> {
    let mut rng = seed.wrapping_mul(2_654_435_761) | 1;
    let mut rgb = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            let n = (rng % (2 * noise + 1)) as i32 - noise as i32;
            let base = [
                (x * 255 / width) as i32,
                (y * 255 / height) as i32,
                (((x + y + seed * 7) / 3) % 256) as i32,
            ];
            rgb.extend(base.map(|c| (c + n).clamp(0, 255) as u8));
        }
    }
    rgb
}

/// `rgb` encoded as a JPEG of `quality`.
pub fn encode(width: u32, height: u32, rgb: &[u8], quality: u8) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality).encode(
        rgb,
        width,
        height,
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

/// A distinct photo-like JPEG: [`frame`] then [`encode`].
pub fn jpeg(width: u32, height: u32, seed: u32, noise: u32, quality: u8) -> Result<Vec<u8>> {
    encode(width, height, &frame(width, height, seed, noise), quality)
}

/// A ~45 KB 320x180 thumbnail (the v4 guide's thumbnail size).
pub fn thumbnail_45kb() -> Result<Vec<u8>> {
    let rgb = frame(320, 180, 7, 40);
    let mut best = encode(320, 180, &rgb, 90)?;
    for quality in (50..=100).rev() {
        let jpeg = encode(320, 180, &rgb, quality)?;
        if jpeg.len() <= 46_080 {
            best = jpeg;
            break;
        }
    }
    Ok(best)
}
