//! The paths of API.md that more than one part of the system must recognise: the event stream,
//! the operational endpoints, and the media namespace `/media/<folder>/<sha256>.<ext>` with its
//! validated names.
//!
//! A media path is only ever turned into a file name through [`MediaName::parse`], which
//! accepts exactly a known folder and 64 lowercase hex digits with that folder's extension, so
//! nothing a request carries (`..`, `%2F`, a NUL) can reach a file system.

use std::fmt;

/// `GET /api/events`: the live event stream.
pub const EVENTS: &str = "/api/events";

/// The operational endpoints: metrics and the in-memory cache's counters, for operators (with
/// the admin token, or on the origin's operations listener), never served through the edge.
/// `/healthz` is not one of them: anyone may ask whether the edge and its origin are up.
pub const OPERATIONAL: [&str; 2] = [METRICS, CACHE_STATS];

/// `GET /metrics`: Prometheus metrics.
pub const METRICS: &str = "/metrics";

/// `GET /api/cache/stats`: the in-memory cache's counters.
pub const CACHE_STATS: &str = "/api/cache/stats";

/// Whether a request path is an operational endpoint. The path is compared as the origin routes
/// it (exactly, without decoding): a spelling the origin does not route is not one.
pub fn is_operational(path: &str) -> bool {
    OPERATIONAL.contains(&path)
}

/// The prefix of every immutable media path.
pub const MEDIA_PREFIX: &str = "/media/";

/// The kinds of media file, each a folder under `/media/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// Captured originals.
    Image,
    /// Thumbnails of captures (named by the original's hash).
    Thumbnail,
    /// Rendered videos.
    Video,
}

impl MediaKind {
    /// Every kind.
    pub const ALL: [MediaKind; 3] = [MediaKind::Image, MediaKind::Thumbnail, MediaKind::Video];

    /// The folder: the path segment after `/media/`, and the folder on disk.
    pub fn folder(self) -> &'static str {
        match self {
            MediaKind::Image => "images",
            MediaKind::Thumbnail => "thumbnails",
            MediaKind::Video => "videos",
        }
    }

    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            MediaKind::Image | MediaKind::Thumbnail => "jpg",
            MediaKind::Video => "mp4",
        }
    }

    /// The media type sent as Content-Type.
    pub fn content_type(self) -> &'static str {
        match self {
            MediaKind::Image | MediaKind::Thumbnail => "image/jpeg",
            MediaKind::Video => "video/mp4",
        }
    }

    /// The kind whose folder this is.
    pub fn from_folder(folder: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.folder() == folder)
    }
}

/// Whether `s` is a SHA-256 in lowercase hex (the only file names media has).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A media file: its kind and the SHA-256 that names it (64 lowercase hex digits).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MediaName {
    /// Its kind.
    pub kind: MediaKind,
    sha256: String,
}

impl MediaName {
    /// A name from a hash; `None` unless it is 64 lowercase hex digits.
    pub fn new(kind: MediaKind, sha256: impl Into<String>) -> Option<Self> {
        let sha256 = sha256.into();
        is_sha256_hex(&sha256).then_some(Self { kind, sha256 })
    }

    /// Parses the two path segments after `/media/`; `None` for anything that is not exactly
    /// a known folder and `<64 hex>.<its extension>`.
    pub fn parse(folder: &str, file: &str) -> Option<Self> {
        let kind = MediaKind::from_folder(folder)?;
        let (hash, extension) = file.split_once('.')?;
        if extension != kind.extension() {
            return None;
        }
        Self::new(kind, hash)
    }

    /// Parses a whole request path (`/media/<folder>/<file>`, no query). A valid name needs
    /// no percent-decoding, so the path is taken as it was sent: an encoded one is not valid.
    pub fn from_path(path: &str) -> Option<Self> {
        let (folder, file) = path.strip_prefix(MEDIA_PREFIX)?.split_once('/')?;
        Self::parse(folder, file)
    }

    /// The hash (64 lowercase hex digits).
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The file name: `<sha256>.<ext>`.
    pub fn file_name(&self) -> String {
        format!("{}.{}", self.sha256, self.kind.extension())
    }

    /// The URL path: `/media/<folder>/<sha256>.<ext>`.
    pub fn url(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for MediaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&media_url(self.kind, &self.sha256))
    }
}

/// The URL path of a media file: `/media/<folder>/<sha256>.<ext>`.
pub fn media_url(kind: MediaKind, sha256: &str) -> String {
    format!(
        "{MEDIA_PREFIX}{}/{sha256}.{}",
        kind.folder(),
        kind.extension()
    )
}

/// Whether a request path is in the media namespace (valid name or not).
pub fn is_media_path(path: &str) -> bool {
    path.starts_with(MEDIA_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const HASH: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn only_hash_and_extension_names_are_accepted() {
        let image = MediaName::parse("images", &format!("{HASH}.jpg")).unwrap();
        assert_eq!(image.kind, MediaKind::Image);
        assert_eq!(image.sha256(), HASH);
        assert!(MediaName::parse("videos", &format!("{HASH}.mp4")).is_some());
        for (folder, file) in [
            ("images", format!("{HASH}.mp4")),
            ("images", format!("{}.jpg", HASH.to_uppercase())),
            ("images", format!("{HASH}.jpg.jpg")),
            ("images", "../../etc/passwd".to_owned()),
            ("images", format!("..%2F{HASH}.jpg")),
            ("images", format!("{}.jpg", &HASH[1..])),
            ("images", format!("{HASH}\0.jpg")),
            ("../images", format!("{HASH}.jpg")),
            ("tmp", format!("{HASH}.jpg")),
            ("images", HASH.to_string()),
        ] {
            assert_eq!(MediaName::parse(folder, &file), None, "{folder}/{file}");
        }
    }

    #[test]
    fn paths_round_trip() {
        let path = format!("/media/thumbnails/{HASH}.jpg");
        let name = MediaName::from_path(&path).unwrap();
        assert_eq!(name.kind, MediaKind::Thumbnail);
        assert_eq!(name.url(), path);
        assert_eq!(name.file_name(), format!("{HASH}.jpg"));
        assert_eq!(
            MediaName::from_path(&format!("/media/images/{HASH}.jpg/x")),
            None
        );
        assert_eq!(
            MediaName::from_path(&format!("/api/images/{HASH}.jpg")),
            None
        );
        assert!(is_media_path("/media/anything"));
        assert!(!is_media_path("/api/events"));
        assert_eq!(MediaName::new(MediaKind::Video, "abc"), None);
    }

    #[test]
    fn metrics_and_cache_stats_are_operational_and_health_is_not() {
        assert!(is_operational("/metrics"));
        assert!(is_operational("/api/cache/stats"));
        for path in [
            "/healthz",
            "/",
            "/api/cameras",
            EVENTS,
            "/media/images/x.jpg",
        ] {
            assert!(!is_operational(path), "{path}");
        }
    }

    #[test]
    fn kinds_have_their_folder_extension_and_type() {
        let expected = [
            (MediaKind::Image, "images", "jpg", "image/jpeg"),
            (MediaKind::Thumbnail, "thumbnails", "jpg", "image/jpeg"),
            (MediaKind::Video, "videos", "mp4", "video/mp4"),
        ];
        for (kind, folder, extension, content_type) in expected {
            assert_eq!(kind.folder(), folder);
            assert_eq!(kind.extension(), extension);
            assert_eq!(kind.content_type(), content_type);
            assert_eq!(MediaKind::from_folder(folder), Some(kind));
        }
        assert_eq!(expected.len(), MediaKind::ALL.len());
    }
}
