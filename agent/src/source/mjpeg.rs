//! Splitting a stream of concatenated JPEGs (ffmpeg's `-f image2pipe -c:v mjpeg`) into frames.
//!
//! A frame runs from SOI (`FF D8`) to EOI (`FF D9`). Searching for `FF D9` alone is not enough:
//! a segment such as APP1 (EXIF) may embed a thumbnail with its own EOI. So the splitter walks
//! the marker segments by their lengths (ITU T.81 §B.1.1.4) and scans for markers only inside
//! entropy-coded data, where `FF 00` is a stuffed byte and `FF D0`..`FF D7` are restart markers.

use bytes::Bytes;

/// A frame larger than this is not a frame: the stream is resynchronised at the next SOI.
const MAX_FRAME_BYTES: usize = 64 << 20;

/// An incremental splitter.
#[derive(Debug, Default)]
pub struct MjpegSplitter {
    buf: Vec<u8>,
    /// Where parsing resumes in `buf` (always inside the frame that starts at 0).
    pos: usize,
    /// `pos` is inside entropy-coded data (after SOS).
    in_entropy: bool,
}

impl MjpegSplitter {
    /// A splitter at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns the frames they complete, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Bytes> {
        self.buf.extend_from_slice(bytes);
        let mut frames = Vec::new();
        loop {
            if self.pos == 0 && !self.seek_soi() {
                return frames;
            }
            match self.parse() {
                Parsed::Malformed => {
                    // Not at a marker where one must be: resynchronise after this SOI.
                    self.buf.drain(..2);
                    self.pos = 0;
                    self.in_entropy = false;
                }
                Parsed::Frame(end) => {
                    let rest = self.buf.split_off(end);
                    frames.push(Bytes::from(std::mem::replace(&mut self.buf, rest)));
                    self.pos = 0;
                    self.in_entropy = false;
                }
                Parsed::Incomplete => {
                    if self.buf.len() > MAX_FRAME_BYTES {
                        // Not a JPEG stream we understand: drop it and look for the next SOI.
                        self.buf.drain(..2);
                        self.pos = 0;
                        self.in_entropy = false;
                        continue;
                    }
                    return frames;
                }
            }
        }
    }

    /// Drops bytes before the first SOI; true when the buffer starts with one.
    fn seek_soi(&mut self) -> bool {
        match self.buf.windows(2).position(|w| w == [0xFF, 0xD8]) {
            Some(start) => {
                self.buf.drain(..start);
                self.pos = 2;
                true
            }
            None => {
                // Keep a trailing FF: it may be the first half of an SOI.
                let keep = usize::from(self.buf.last() == Some(&0xFF));
                let drop = self.buf.len() - keep;
                self.buf.drain(..drop);
                false
            }
        }
    }

    /// Parses from `pos` as far as the buffer allows.
    fn parse(&mut self) -> Parsed {
        match self.parse_segments() {
            Some(parsed) => parsed,
            None => Parsed::Incomplete,
        }
    }

    /// `None` when the buffer ends first.
    fn parse_segments(&mut self) -> Option<Parsed> {
        let buf = &self.buf;
        loop {
            if self.in_entropy {
                // Find a marker that is neither a stuffed byte nor a restart marker.
                let mut i = self.pos;
                loop {
                    let j = i + buf.get(i..)?.iter().position(|&b| b == 0xFF)?;
                    let next = *buf.get(j + 1)?;
                    match next {
                        0x00 | 0xD0..=0xD7 | 0xFF => i = j + 1,
                        _ => {
                            self.pos = j;
                            self.in_entropy = false;
                            break;
                        }
                    }
                }
            }
            let p = self.pos;
            if *buf.get(p)? != 0xFF {
                return Some(Parsed::Malformed);
            }
            let marker = *buf.get(p + 1)?;
            match marker {
                0xFF => self.pos = p + 1, // fill byte
                0xD9 => return Some(Parsed::Frame(p + 2)),
                0x01 | 0xD0..=0xD8 => self.pos = p + 2,
                _ => {
                    let length =
                        usize::from(u16::from_be_bytes([*buf.get(p + 2)?, *buf.get(p + 3)?]));
                    if length < 2 {
                        return Some(Parsed::Malformed);
                    }
                    if buf.len() < p + 2 + length {
                        return None;
                    }
                    self.pos = p + 2 + length;
                    if marker == 0xDA {
                        self.in_entropy = true;
                    }
                }
            }
        }
    }
}

enum Parsed {
    /// A frame ends here (after its EOI).
    Frame(usize),
    /// More bytes are needed.
    Incomplete,
    /// Not a JPEG where one should be.
    Malformed,
}

/// Whether `bytes` is one whole JPEG: SOI first, EOI last (trailing padding allowed).
pub fn is_complete_jpeg(bytes: &[u8]) -> bool {
    let mut splitter = MjpegSplitter::new();
    bytes.starts_with(&[0xFF, 0xD8])
        && splitter
            .push(bytes)
            .first()
            .is_some_and(|frame| bytes[frame.len()..].iter().all(|&b| b == 0 || b == 0xFF))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real JPEG (the `image` crate's encoder), of a given size and shade.
    pub(crate) fn jpeg(width: u32, height: u32, shade: u8) -> Vec<u8> {
        let image = image::GrayImage::from_fn(width, height, |x, y| {
            image::Luma([shade.wrapping_add((x * 7 + y * 3) as u8)])
        });
        let mut out = std::io::Cursor::new(Vec::new());
        image
            .write_to(&mut out, image::ImageFormat::Jpeg)
            .expect("encode");
        out.into_inner()
    }

    /// A JPEG with an APP1 segment embedding a whole thumbnail JPEG (with its own EOI).
    fn jpeg_with_thumbnail() -> Vec<u8> {
        let main = jpeg(32, 16, 10);
        let thumb = jpeg(8, 8, 200);
        let mut app1 = vec![0xFF, 0xE1];
        let length = (thumb.len() + 2) as u16;
        app1.extend_from_slice(&length.to_be_bytes());
        app1.extend_from_slice(&thumb);
        let mut out = main[..2].to_vec();
        out.extend_from_slice(&app1);
        out.extend_from_slice(&main[2..]);
        out
    }

    #[test]
    fn frames_are_split_at_any_chunk_boundary() {
        let frames = [jpeg(16, 16, 0), jpeg_with_thumbnail(), jpeg(40, 30, 99)];
        let mut stream = b"garbage before".to_vec();
        for f in &frames {
            stream.extend_from_slice(f);
        }
        for chunk in [1, 2, 3, 7, 64, 1000, stream.len()] {
            let mut splitter = MjpegSplitter::new();
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                got.extend(splitter.push(piece));
            }
            assert_eq!(got.len(), 3, "chunk {chunk}");
            for (g, f) in got.iter().zip(&frames) {
                assert_eq!(&g[..], &f[..], "chunk {chunk}");
            }
        }
    }

    #[test]
    fn an_embedded_thumbnail_does_not_end_the_frame() {
        let whole = jpeg_with_thumbnail();
        let frames = MjpegSplitter::new().push(&whole);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].len(), whole.len());
        image::load_from_memory(&frames[0]).expect("decodes");
    }

    #[test]
    fn complete_and_truncated_files() {
        let whole = jpeg(20, 20, 5);
        assert!(is_complete_jpeg(&whole));
        assert!(!is_complete_jpeg(&whole[..whole.len() - 1]));
        assert!(!is_complete_jpeg(&whole[..whole.len() / 2]));
        assert!(!is_complete_jpeg(b"<html>not a jpeg</html>"));
        let mut padded = whole.clone();
        padded.extend_from_slice(&[0, 0, 0]);
        assert!(is_complete_jpeg(&padded));
    }
}
