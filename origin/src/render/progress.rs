//! ffmpeg's `-progress` output (`key=value` lines, a block per report ending in
//! `progress=continue` or `progress=end`), read into render progress.

/// One line of `-progress` output that matters here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressLine {
    /// `frame=N`: frames encoded so far.
    Frame(u64),
    /// `progress=end`: the encoder finished.
    End,
}

/// Parses one line; `None` for every other key (bitrates, times, `progress=continue`).
pub fn parse_line(line: &str) -> Option<ProgressLine> {
    let (key, value) = line.trim().split_once('=')?;
    match (key, value.trim()) {
        ("frame", n) => n.parse().ok().map(ProgressLine::Frame),
        ("progress", "end") => Some(ProgressLine::End),
        _ => None,
    }
}

/// The fraction done after `frame` of `total` frames, below 1 until the video is stored
/// (hashing and moving it into place come after the last frame).
pub fn fraction(frame: u64, total: u64) -> f64 {
    (frame as f64 / total.max(1) as f64).min(0.99)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_the_end_are_read_and_the_rest_ignored() {
        let lines = [
            ("frame=42", Some(ProgressLine::Frame(42))),
            ("frame= 7 ", Some(ProgressLine::Frame(7))),
            ("fps=12.5", None),
            ("out_time=00:00:01.000000", None),
            ("progress=continue", None),
            ("progress=end", Some(ProgressLine::End)),
            ("frame=N/A", None),
            ("garbage", None),
        ];
        for (line, expected) in lines {
            assert_eq!(parse_line(line), expected, "{line}");
        }
    }

    #[test]
    fn progress_stays_below_one_until_stored() {
        assert_eq!(fraction(0, 120), 0.0);
        assert_eq!(fraction(60, 120), 0.5);
        assert_eq!(fraction(120, 120), 0.99);
        assert_eq!(fraction(500, 120), 0.99);
        assert_eq!(fraction(3, 0), 0.99);
    }
}
