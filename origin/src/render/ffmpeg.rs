//! The ffmpeg command of a render: a concat list of the stored originals (no frame copied),
//! H.264 in yuv420p at even dimensions with `+faststart`, progress on stdout.
//!
//! Overlays are drawn by ffmpeg's `drawtext` without a file per frame: each frame's capture
//! time travels in the concat list as packet metadata (`file_packet_metadata`), which the
//! decoder turns into frame metadata that `drawtext` expands (`%{metadata:capture_time}`);
//! the camera's name is read from one text file, never interpolated into the filter graph.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use timelapser_core::render::Preset;

/// The frame metadata key that carries a frame's capture time, as shown.
pub const CAPTURE_TIME_KEY: &str = "capture_time";

/// What one render asks of ffmpeg.
#[derive(Clone, Debug, PartialEq)]
pub struct Invocation {
    /// The concat list file.
    pub list: PathBuf,
    /// The temp file to write.
    pub output: PathBuf,
    /// Frames per second (fractional when derived from a duration).
    pub frame_rate: f64,
    /// The quality preset.
    pub preset: Preset,
    /// Width of the video (even).
    pub width: u32,
    /// Height of the video (even).
    pub height: u32,
    /// Even out brightness between frames.
    pub deflicker: bool,
    /// Draw each frame's capture time (from the list's packet metadata).
    pub time_overlay: bool,
    /// Draw the text of this file (the camera's name) in the top-left corner.
    pub name_overlay: Option<PathBuf>,
    /// The font for overlays (else fontconfig's `Sans`).
    pub font: Option<PathBuf>,
}

/// Escapes a value for a filter's option inside a filter graph: first for the option
/// parser (`\`, `'` and `:` quoted by a backslash), then for the graph's parser (that text's
/// `\`, `'`, `,`, `;`, `[` and `]` quoted again), the two levels libavfilter reads.
pub fn filter_value(value: &str) -> String {
    let escape = |text: &str, special: &[char]| {
        let mut out = String::with_capacity(text.len() + 8);
        for c in text.chars() {
            if special.contains(&c) {
                out.push('\\');
            }
            out.push(c);
        }
        out
    };
    let option = escape(value, &['\\', '\'', ':']);
    escape(&option, &['\\', '\'', ',', ';', '[', ']'])
}

impl Invocation {
    /// The filter graph: scale to the preset's size, deflicker, overlays, yuv420p.
    pub fn filters(&self) -> String {
        let mut filters = vec![format!("scale={}:{}", self.width, self.height)];
        if self.deflicker {
            filters.push("deflicker=size=5:mode=pm".to_owned());
        }
        let font = match &self.font {
            Some(path) => format!("fontfile={}", filter_value(&path.display().to_string())),
            None => "font=Sans".to_owned(),
        };
        // Text a twentieth of the height, on a translucent box, a margin from the edges.
        let size = (self.height / 20).max(10);
        let margin = (self.height / 40).max(4);
        let style = format!(
            "{font}:fontsize={size}:fontcolor=white:box=1:boxcolor=black@0.55:boxborderw={}",
            (size / 4).max(2)
        );
        if self.time_overlay {
            filters.push(format!(
                "drawtext={style}:x=w-tw-{margin}:y=h-th-{margin}:text={}",
                filter_value(&format!("%{{metadata:{CAPTURE_TIME_KEY}}}"))
            ));
        }
        if let Some(file) = &self.name_overlay {
            filters.push(format!(
                "drawtext={style}:x={margin}:y={margin}:expansion=none:textfile={}",
                filter_value(&file.display().to_string())
            ));
        }
        filters.push("format=yuv420p".to_owned());
        filters.join(",")
    }

    /// The arguments after the program name.
    ///
    /// yuv420p and even dimensions, so that every browser plays it; `+faststart` puts the
    /// index first, so playback and seeking start before the whole file has arrived;
    /// `-xerror` fails the render when a frame cannot be read instead of skipping it.
    pub fn arguments(&self) -> Vec<OsString> {
        let rate = format_rate(self.frame_rate);
        let crf = self.preset.crf().to_string();
        let filters = self.filters();
        let mut args: Vec<OsString> = Vec::with_capacity(40);
        let mut push = |items: &[&str]| args.extend(items.iter().map(OsString::from));
        push(&["-hide_banner", "-nostdin", "-loglevel", "error", "-xerror"]);
        push(&["-f", "concat", "-safe", "0", "-r", &rate, "-i"]);
        args.push(self.list.clone().into_os_string());
        let mut push = |items: &[&str]| args.extend(items.iter().map(OsString::from));
        push(&["-vf", &filters]);
        push(&["-c:v", "libx264", "-preset", self.preset.encoder_preset()]);
        push(&["-crf", &crf, "-r", &rate]);
        push(&["-movflags", "+faststart"]);
        push(&["-progress", "pipe:1", "-nostats", "-y"]);
        args.push(self.output.clone().into_os_string());
        args
    }
}

/// A frame rate as ffmpeg reads it: `24`, `14.286`.
pub fn format_rate(rate: f64) -> String {
    let text = format!("{rate:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The font overlays use: DejaVu Sans from Debian's `fonts-dejavu-core`, if installed.
pub fn default_font() -> Option<PathBuf> {
    let path = Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf");
    path.is_file().then(|| path.to_path_buf())
}

/// Quotes a path for ffmpeg's concat list (`'` closes, `\'` is a quote, `'` reopens).
pub fn concat_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

/// Quotes a value for ffmpeg's concat list.
fn concat_quote_text(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The concat list of frames, in order; with a capture time, each frame carries it as
/// packet metadata ([`CAPTURE_TIME_KEY`]) for the time overlay.
pub fn concat_list<'a>(frames: impl IntoIterator<Item = (&'a Path, Option<&'a str>)>) -> String {
    let mut list = String::from("ffconcat version 1.0\n");
    for (path, time) in frames {
        list.push_str(&format!("file {}\n", concat_quote(path)));
        if let Some(time) = time {
            list.push_str(&format!(
                "file_packet_metadata {}\n",
                concat_quote_text(&format!("{CAPTURE_TIME_KEY}={time}"))
            ));
        }
    }
    list
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

    fn invocation() -> Invocation {
        Invocation {
            list: "/data/tmp/render-7.txt".into(),
            output: "/data/tmp/render-7.mp4".into(),
            frame_rate: 24.0,
            preset: Preset::Standard,
            width: 1280,
            height: 720,
            deflicker: false,
            time_overlay: false,
            name_overlay: None,
            font: None,
        }
    }

    #[test]
    fn the_command_of_a_render() {
        let args: Vec<String> = invocation()
            .arguments()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let expected = "-hide_banner -nostdin -loglevel error -xerror -f concat -safe 0 -r 24 \
            -i /data/tmp/render-7.txt -vf scale=1280:720,format=yuv420p -c:v libx264 \
            -preset veryfast -crf 23 -r 24 -movflags +faststart -progress pipe:1 -nostats -y \
            /data/tmp/render-7.mp4";
        assert_eq!(args.join(" "), expected);
        assert_eq!(format_rate(14.286), "14.286");
        assert_eq!(format_rate(30.5), "30.5");
    }

    #[test]
    fn overlays_and_deflicker_are_filters() {
        let filters = Invocation {
            preset: Preset::Draft,
            width: 854,
            height: 480,
            deflicker: true,
            time_overlay: true,
            name_overlay: Some("/data/tmp/render-7-name.txt".into()),
            font: Some("/fonts/a:b.ttf".into()),
            ..invocation()
        }
        .filters();
        assert_eq!(
            filters,
            "scale=854:480,deflicker=size=5:mode=pm,\
             drawtext=fontfile=/fonts/a\\\\:b.ttf:fontsize=24:fontcolor=white:box=1:boxcolor=black@0.55:boxborderw=6:x=w-tw-12:y=h-th-12:text=%{metadata\\\\:capture_time},\
             drawtext=fontfile=/fonts/a\\\\:b.ttf:fontsize=24:fontcolor=white:box=1:boxcolor=black@0.55:boxborderw=6:x=12:y=12:expansion=none:textfile=/data/tmp/render-7-name.txt,\
             format=yuv420p"
        );
        assert_eq!(filter_value("it's, [a]"), "it\\\\\\\'s\\, \\[a\\]");
    }

    #[test]
    fn concat_paths_are_quoted() {
        assert_eq!(concat_quote(Path::new("/data/a.jpg")), "'/data/a.jpg'");
        assert_eq!(concat_quote(Path::new("/it's/a.jpg")), "'/it'\\''s/a.jpg'");
        assert_eq!(
            concat_list([(Path::new("/a.jpg"), None), (Path::new("/b.jpg"), None)]),
            "ffconcat version 1.0\nfile '/a.jpg'\nfile '/b.jpg'\n"
        );
        assert_eq!(
            concat_list([(Path::new("/a.jpg"), Some("2026-11-25 10:00:00 CET"))]),
            "ffconcat version 1.0\nfile '/a.jpg'\n\
             file_packet_metadata 'capture_time=2026-11-25 10:00:00 CET'\n"
        );
    }

    #[test]
    fn errors_are_summarised_from_the_last_lines() {
        assert_eq!(error_summary(""), "no message");
        assert_eq!(error_summary("a\n\nb\nc\nd\n"), "b; c; d");
    }
}
