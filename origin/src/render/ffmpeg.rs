//! The ffmpeg command of a render: a concat list of the stored originals (no frame copied),
//! H.264 in yuv420p at even dimensions with `+faststart`, progress on stdout.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// What one render asks of ffmpeg.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The concat list file.
    pub list: PathBuf,
    /// The temp file to write.
    pub output: PathBuf,
    /// Frames per second.
    pub fps: u32,
    /// Width of the first frame.
    pub width: u32,
    /// Height of the first frame.
    pub height: u32,
}

impl Invocation {
    /// The arguments after the program name.
    ///
    /// yuv420p and even dimensions, so that every browser plays it; `+faststart` puts the
    /// index first, so playback and seeking start before the whole file has arrived;
    /// `-xerror` fails the render when a frame cannot be read instead of skipping it.
    pub fn arguments(&self) -> Vec<OsString> {
        let even = |n: u32| (n.max(2) / 2) * 2;
        let fps = self.fps.to_string();
        let mut args: Vec<OsString> = Vec::with_capacity(32);
        let mut push = |items: &[&str]| args.extend(items.iter().map(OsString::from));
        push(&["-hide_banner", "-nostdin", "-loglevel", "error", "-xerror"]);
        push(&["-f", "concat", "-safe", "0", "-r", &fps, "-i"]);
        args.push(self.list.clone().into_os_string());
        let scale = format!(
            "scale={}:{},format=yuv420p",
            even(self.width),
            even(self.height)
        );
        let mut push = |items: &[&str]| args.extend(items.iter().map(OsString::from));
        push(&["-vf", &scale]);
        push(&["-c:v", "libx264", "-preset", "veryfast", "-r", &fps]);
        push(&["-movflags", "+faststart"]);
        push(&["-progress", "pipe:1", "-nostats", "-y"]);
        args.push(self.output.clone().into_os_string());
        args
    }
}

/// Quotes a path for ffmpeg's concat list (`'` closes, `\'` is a quote, `'` reopens).
pub fn concat_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

/// The concat list of frames, in order.
pub fn concat_list<'a>(frames: impl IntoIterator<Item = &'a Path>) -> String {
    frames
        .into_iter()
        .map(|path| format!("file {}\n", concat_quote(path)))
        .collect()
}

/// The last lines of ffmpeg's error output, joined, for a failed render's reason.
pub fn error_summary(stderr: &str) -> String {
    let tail: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let start = tail.len().saturating_sub(3);
    if tail.is_empty() {
        "no message".to_owned()
    } else {
        tail[start..].join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_of_a_render() {
        let invocation = Invocation {
            list: "/data/tmp/render-7.txt".into(),
            output: "/data/tmp/render-7.mp4".into(),
            fps: 24,
            width: 1919,
            height: 1081,
        };
        let args: Vec<String> = invocation
            .arguments()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let expected = "-hide_banner -nostdin -loglevel error -xerror -f concat -safe 0 -r 24 \
            -i /data/tmp/render-7.txt -vf scale=1918:1080,format=yuv420p -c:v libx264 \
            -preset veryfast -r 24 -movflags +faststart -progress pipe:1 -nostats -y \
            /data/tmp/render-7.mp4";
        assert_eq!(args.join(" "), expected);
    }

    #[test]
    fn concat_paths_are_quoted() {
        assert_eq!(concat_quote(Path::new("/data/a.jpg")), "'/data/a.jpg'");
        assert_eq!(concat_quote(Path::new("/it's/a.jpg")), "'/it'\\''s/a.jpg'");
        assert_eq!(
            concat_list([Path::new("/a.jpg"), Path::new("/b.jpg")]),
            "file '/a.jpg'\nfile '/b.jpg'\n"
        );
    }

    #[test]
    fn errors_are_summarised_from_the_last_lines() {
        assert_eq!(error_summary(""), "no message");
        assert_eq!(error_summary("a\n\nb\nc\nd\n"), "b; c; d");
    }
}
