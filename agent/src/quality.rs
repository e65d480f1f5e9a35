//! Frames that show nothing: blank ones (a lens cap, a dead sensor, night without light: the
//! luma barely varies) and frozen ones (a camera whose encoder hangs keeps sending the same
//! picture). Both are detected on the decoded luma plane, so a camera that stamps a new EXIF
//! time on the same picture is still frozen.

use sha2::{Digest, Sha256};

/// What a frame looks like.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// A picture.
    Good,
    /// The luma barely varies; `black` when it is also dark.
    Blank {
        /// Dark as well as flat.
        black: bool,
    },
    /// The same picture as the previous `repeats` frames (at least `frozen_after - 1`).
    Frozen {
        /// Identical frames in a row, this one included.
        in_a_row: u32,
    },
    /// The JPEG does not decode.
    Undecodable(String),
}

impl Verdict {
    /// The status message for it, `None` for a good frame.
    pub fn message(&self) -> Option<String> {
        match self {
            Verdict::Good => None,
            Verdict::Blank { black: true } => Some("frames are black".into()),
            Verdict::Blank { black: false } => Some("frames are blank (one flat colour)".into()),
            Verdict::Frozen { in_a_row } => Some(format!(
                "frames are frozen ({in_a_row} identical frames in a row)"
            )),
            Verdict::Undecodable(e) => Some(format!("a frame does not decode: {e}")),
        }
    }
}

/// The checks of one camera, remembering the previous frame.
#[derive(Debug)]
pub struct QualityCheck {
    blank_stddev: f64,
    frozen_after: u32,
    previous: Option<[u8; 32]>,
    in_a_row: u32,
}

impl QualityCheck {
    /// A check with the camera's thresholds.
    pub fn new(blank_stddev: f64, frozen_after: u32) -> Self {
        Self {
            blank_stddev,
            frozen_after,
            previous: None,
            in_a_row: 0,
        }
    }

    /// Judges a frame (and remembers it for the next).
    pub fn check(&mut self, jpeg: &[u8]) -> Verdict {
        let luma = match image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg) {
            Ok(image) => image.into_luma8(),
            Err(e) => return Verdict::Undecodable(e.to_string()),
        };
        let digest: [u8; 32] = Sha256::digest(luma.as_raw()).into();
        if self.previous == Some(digest) {
            self.in_a_row += 1;
        } else {
            self.in_a_row = 1;
            self.previous = Some(digest);
        }
        let (mean, stddev) = mean_and_stddev(luma.as_raw());
        if stddev < self.blank_stddev {
            return Verdict::Blank { black: mean < 32.0 };
        }
        if self.in_a_row >= self.frozen_after {
            return Verdict::Frozen {
                in_a_row: self.in_a_row,
            };
        }
        Verdict::Good
    }
}

fn mean_and_stddev(pixels: &[u8]) -> (f64, f64) {
    if pixels.is_empty() {
        return (0.0, 0.0);
    }
    let (mut sum, mut squares) = (0u64, 0u64);
    for &p in pixels {
        sum += u64::from(p);
        squares += u64::from(p) * u64::from(p);
    }
    let n = pixels.len() as f64;
    let mean = sum as f64 / n;
    let variance = (squares as f64 / n - mean * mean).max(0.0);
    (mean, variance.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(f: impl Fn(u32, u32) -> u8) -> Vec<u8> {
        let image = image::GrayImage::from_fn(64, 48, |x, y| image::Luma([f(x, y)]));
        let mut out = std::io::Cursor::new(Vec::new());
        image.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
        out.into_inner()
    }

    #[test]
    fn black_and_flat_frames_are_blank() {
        let mut check = QualityCheck::new(4.0, 3);
        assert_eq!(check.check(&jpeg(|_, _| 2)), Verdict::Blank { black: true });
        assert_eq!(
            check.check(&jpeg(|_, _| 180)),
            Verdict::Blank { black: false }
        );
        assert_eq!(
            check.check(&jpeg(|x, y| (x * 3 + y * 2) as u8)),
            Verdict::Good
        );
    }

    #[test]
    fn the_same_picture_in_a_row_is_frozen() {
        let mut check = QualityCheck::new(4.0, 3);
        let scene = jpeg(|x, y| (x * 3 + y * 2) as u8);
        let other = jpeg(|x, y| (x * 2 + y * 3) as u8);
        assert_eq!(check.check(&scene), Verdict::Good);
        assert_eq!(check.check(&scene), Verdict::Good);
        assert_eq!(check.check(&scene), Verdict::Frozen { in_a_row: 3 });
        assert_eq!(check.check(&scene), Verdict::Frozen { in_a_row: 4 });
        assert_eq!(check.check(&other), Verdict::Good);
    }

    #[test]
    fn garbage_does_not_decode() {
        let mut check = QualityCheck::new(4.0, 3);
        assert!(matches!(
            check.check(b"\xFF\xD8 not really"),
            Verdict::Undecodable(_)
        ));
    }
}
