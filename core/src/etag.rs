//! Entity tags (RFC 9110 §8.8.3) and the generators Timelapser makes them with.
//!
//! ```text
//! entity-tag = [ weak ] opaque-tag
//! weak       = %s"W/"
//! opaque-tag = DQUOTE *etagc DQUOTE
//! etagc      = %x21 / %x23-7E / obs-text
//! ```
//!
//! The generators are those of the original caching guide, made precise:
//! - [`EntityTag::from_timestamp`]: `"<unix seconds>.<microseconds>"` of an `updated_at`;
//! - [`EntityTag::from_content`]: a content hash (SHA-256 by default, MD5 for compatibility);
//! - [`EntityTag::composite_with_timestamp`] / [`EntityTag::composite_with_version`]: id plus
//!   timestamp or version;
//! - [`CollectionTag`]: a digest of every member's id and version, in representation order.
//!
//! NOTE: changing any generator's format changes every tag the system has handed out, so every
//! client revalidates once and downloads again; treat the formats as part of the contract.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use http::HeaderValue;
use md5::Md5;
use sha2::{Digest, Sha256};

/// An entity tag: an opaque validator of one representation, strong or weak.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EntityTag {
    weak: bool,
    /// The characters between the quotes, all `etagc`.
    opaque: String,
}

/// Why a value is not an entity tag.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEntityTag {
    /// The value is not `[W/]"..."`.
    #[error("an entity tag is a quoted string, optionally prefixed by W/")]
    NotQuoted,
    /// The quoted part holds a character outside `etagc` (a quote, a control or a space).
    #[error("an entity tag may not contain {0:#04x}")]
    InvalidCharacter(u8),
}

/// The digest used by [`EntityTag::from_content`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// SHA-256, hex encoded (64 characters). The default, and what media URLs are named by.
    #[default]
    Sha256,
    /// MD5, hex encoded (32 characters), for compatibility with v4's tags. Not for security.
    Md5,
}

/// `etagc = %x21 / %x23-7E / obs-text` (RFC 9110 §8.8.3).
///
/// obs-text is accepted only as part of valid UTF-8, because tags are kept as strings; a tag
/// with other high bytes is treated as malformed.
fn is_etagc(b: u8) -> bool {
    b == 0x21 || (0x23..=0x7E).contains(&b) || b >= 0x80
}

impl EntityTag {
    /// A strong tag with the given opaque value (without quotes).
    pub fn strong(opaque: impl Into<String>) -> Result<Self, InvalidEntityTag> {
        Self::new(false, opaque.into())
    }

    /// A weak tag with the given opaque value (without quotes).
    pub fn weak(opaque: impl Into<String>) -> Result<Self, InvalidEntityTag> {
        Self::new(true, opaque.into())
    }

    fn new(weak: bool, opaque: String) -> Result<Self, InvalidEntityTag> {
        if let Some(&b) = opaque.as_bytes().iter().find(|&&b| !is_etagc(b)) {
            return Err(InvalidEntityTag::InvalidCharacter(b));
        }
        Ok(Self { weak, opaque })
    }

    /// Builds a tag from generator output, which is always `etagc` by construction.
    fn generated(opaque: String) -> Self {
        debug_assert!(opaque.bytes().all(is_etagc));
        Self {
            weak: false,
            opaque,
        }
    }

    /// Parses exactly one entity tag, with no surrounding whitespace.
    pub fn parse(value: &[u8]) -> Result<Self, InvalidEntityTag> {
        let (weak, quoted) = match value.strip_prefix(b"W/") {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        let inner = quoted
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .ok_or(InvalidEntityTag::NotQuoted)?;
        if let Some(&b) = inner.iter().find(|&&b| !is_etagc(b)) {
            return Err(InvalidEntityTag::InvalidCharacter(b));
        }
        let opaque = String::from_utf8(inner.to_vec())
            .map_err(|e| InvalidEntityTag::InvalidCharacter(inner[e.utf8_error().valid_up_to()]))?;
        Ok(Self { weak, opaque })
    }

    /// Whether the tag is weak (`W/"..."`).
    pub fn is_weak(&self) -> bool {
        self.weak
    }

    /// The opaque value, without quotes or `W/`.
    pub fn opaque(&self) -> &str {
        &self.opaque
    }

    /// Strong comparison (RFC 9110 §8.8.3.2): both tags are strong and their opaque values
    /// are identical, character by character.
    pub fn strong_eq(&self, other: &EntityTag) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }

    /// Weak comparison (RFC 9110 §8.8.3.2): the opaque values are identical, whether either
    /// or both tags are weak.
    pub fn weak_eq(&self, other: &EntityTag) -> bool {
        self.opaque == other.opaque
    }

    /// The tag as a header value, for `ETag` or a conditional request header.
    pub fn to_header_value(&self) -> HeaderValue {
        HeaderValue::from_str(&self.to_string())
            .expect("etagc characters that are valid UTF-8 form a valid header value")
    }

    /// Timestamp tag: `"<unix seconds>.<microseconds>"` of the representation's `updated_at`,
    /// as v4's `generate_timestamp_etag` made it (Python's `datetime.timestamp()`), with the
    /// microseconds always six digits so that equal instants always give equal tags.
    pub fn from_timestamp(updated_at: DateTime<Utc>) -> Self {
        Self::generated(timestamp_token(updated_at))
    }

    /// Content-hash tag: the hex digest of the bytes of the representation.
    pub fn from_content(content: &[u8], algorithm: HashAlgorithm) -> Self {
        Self::generated(hex_digest(content, algorithm))
    }

    /// Composite tag of an entity id and its modification time: `"<id>-<secs>.<micros>"`.
    pub fn composite_with_timestamp(id: impl fmt::Display, updated_at: DateTime<Utc>) -> Self {
        Self::generated(format!(
            "{}-{}",
            sanitize(&id.to_string()),
            timestamp_token(updated_at)
        ))
    }

    /// Composite tag of an entity id and a version: `"<id>-<version>"`.
    pub fn composite_with_version(id: impl fmt::Display, version: impl fmt::Display) -> Self {
        Self::generated(format!(
            "{}-{}",
            sanitize(&id.to_string()),
            sanitize(&version.to_string())
        ))
    }
}

impl fmt::Display for EntityTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.weak {
            f.write_str("W/")?;
        }
        write!(f, "\"{}\"", self.opaque)
    }
}

impl FromStr for EntityTag {
    type Err = InvalidEntityTag;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.as_bytes())
    }
}

/// `<unix seconds>.<microseconds>`; negative instants (before 1970) keep a leading `-`.
fn timestamp_token(at: DateTime<Utc>) -> String {
    let micros = at.timestamp_micros();
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    format!("{sign}{}.{:06}", abs / 1_000_000, abs % 1_000_000)
}

/// Replaces what may not stand in an opaque tag (quotes, spaces, controls) by `_`, so that a
/// generator never fails; ids and versions in this system are integers and timestamps anyway.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii() && !is_etagc(c as u8) {
                '_'
            } else {
                c
            }
        })
        .collect()
}

fn hex_digest(content: &[u8], algorithm: HashAlgorithm) -> String {
    match algorithm {
        HashAlgorithm::Sha256 => format!("{:x}", Sha256::digest(content)),
        HashAlgorithm::Md5 => format!("{:x}", Md5::digest(content)),
    }
}

/// Builds the tag of a collection (a list of images, the cameras, a page of results).
///
/// The tag is a SHA-256 over every member's id and version in the order the representation
/// lists them, plus any context the representation depends on (a page cursor, a total count).
/// So it changes when a member is added, removed, reordered or changed — including an old
/// member whose change leaves the newest timestamp and the count as they were, which v4's
/// "count + latest timestamp" missed — and only then.
#[derive(Clone, Debug, Default)]
pub struct CollectionTag {
    hasher: Sha256,
    members: u64,
}

impl CollectionTag {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one member, identified by `id`, at `version` (an `updated_at`, a revision number).
    pub fn member(mut self, id: impl fmt::Display, version: impl fmt::Display) -> Self {
        self.push_field(b'm', &id.to_string());
        self.push_field(b'v', &version.to_string());
        self.members += 1;
        self
    }

    /// Adds a member whose version is a timestamp, in the same form as timestamp tags.
    pub fn member_at(self, id: impl fmt::Display, updated_at: DateTime<Utc>) -> Self {
        self.member(id, timestamp_token(updated_at))
    }

    /// Adds something else the representation depends on (a cursor, a filter, a total).
    pub fn context(mut self, name: &str, value: impl fmt::Display) -> Self {
        self.push_field(b'k', name);
        self.push_field(b'c', &value.to_string());
        self
    }

    /// Length-prefixed fields, so that no two different member lists hash the same bytes.
    fn push_field(&mut self, kind: u8, value: &str) {
        self.hasher.update([kind]);
        self.hasher.update((value.len() as u64).to_be_bytes());
        self.hasher.update(value.as_bytes());
    }

    /// The strong tag: `"c<count>-<first 32 hex digits of the digest>"`.
    pub fn finish(self) -> EntityTag {
        let mut hasher = self.hasher;
        hasher.update(self.members.to_be_bytes());
        let digest = format!("{:x}", hasher.finalize());
        EntityTag::generated(format!("c{}-{}", self.members, &digest[..32]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn tag(s: &str) -> EntityTag {
        s.parse().unwrap()
    }

    #[test]
    fn parses_strong_and_weak_tags() {
        // RFC 9110 §8.8.3: entity-tag = [ weak ] opaque-tag
        assert_eq!(tag("\"xyzzy\""), EntityTag::strong("xyzzy").unwrap());
        assert_eq!(tag("W/\"xyzzy\""), EntityTag::weak("xyzzy").unwrap());
        assert_eq!(tag("\"\""), EntityTag::strong("").unwrap());
        assert!(tag("W/\"x\"").is_weak());
        assert!(!tag("\"x\"").is_weak());
    }

    #[test]
    fn rejects_malformed_tags() {
        // RFC 9110 §8.8.3: the opaque-tag is quoted; etagc excludes DQUOTE, SP and controls.
        for bad in [
            "xyzzy",
            "\"xyzzy",
            "xyzzy\"",
            "w/\"x\"",
            "W/x",
            "\"a\"b\"",
            "\"a b\"",
            "\"a\tb\"",
            "\"a\x7fb\"",
            "",
            "\"",
            "W/",
            " \"x\"",
            "\"x\" ",
        ] {
            assert!(bad.parse::<EntityTag>().is_err(), "{bad:?} parsed");
        }
        assert!(EntityTag::strong("a\"b").is_err());
        assert!(EntityTag::parse(b"\"\xff\"").is_err());
    }

    #[test]
    fn obs_text_that_is_utf8_is_accepted() {
        assert_eq!(tag("\"caf\u{e9}\"").opaque(), "caf\u{e9}");
    }

    #[test]
    fn comparison_table_of_rfc_9110_section_8_8_3_2() {
        // ETag 1 | ETag 2 | Strong Comparison | Weak Comparison
        let table = [
            ("W/\"1\"", "W/\"1\"", false, true),
            ("W/\"1\"", "W/\"2\"", false, false),
            ("W/\"1\"", "\"1\"", false, true),
            ("\"1\"", "\"1\"", true, true),
        ];
        for (a, b, strong, weak) in table {
            assert_eq!(tag(a).strong_eq(&tag(b)), strong, "strong {a} {b}");
            assert_eq!(tag(a).weak_eq(&tag(b)), weak, "weak {a} {b}");
            assert_eq!(tag(b).strong_eq(&tag(a)), strong, "strong {b} {a}");
            assert_eq!(tag(b).weak_eq(&tag(a)), weak, "weak {b} {a}");
        }
    }

    #[test]
    fn timestamp_tag_is_seconds_dot_six_digit_micros() {
        let at = Utc.timestamp_opt(1_719_999_999, 123_456_000).unwrap();
        assert_eq!(
            EntityTag::from_timestamp(at).to_string(),
            "\"1719999999.123456\""
        );
        let whole = Utc.timestamp_opt(1_700_000_000, 5_000).unwrap();
        assert_eq!(
            EntityTag::from_timestamp(whole).to_string(),
            "\"1700000000.000005\""
        );
        // Nanoseconds below a microsecond do not change the tag: the database keeps micros.
        let nanos = Utc.timestamp_opt(1_700_000_000, 5_999).unwrap();
        assert_eq!(
            EntityTag::from_timestamp(nanos),
            EntityTag::from_timestamp(whole)
        );
    }

    #[test]
    fn timestamp_tag_before_the_epoch_keeps_its_sign() {
        let at = Utc.timestamp_opt(-2, 500_000_000).unwrap(); // -1.5 s
        assert_eq!(EntityTag::from_timestamp(at).opaque(), "-1.500000");
    }

    #[test]
    fn content_hash_tags_are_hex_digests() {
        assert_eq!(
            EntityTag::from_content(b"abc", HashAlgorithm::Sha256).opaque(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            EntityTag::from_content(b"abc", HashAlgorithm::Md5).opaque(),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert!(!EntityTag::from_content(b"", HashAlgorithm::default()).is_weak());
    }

    #[test]
    fn composite_tags_join_id_and_timestamp_or_version() {
        let at = Utc.timestamp_opt(1_700_000_000, 250_000_000).unwrap();
        assert_eq!(
            EntityTag::composite_with_timestamp(42, at).to_string(),
            "\"42-1700000000.250000\""
        );
        assert_eq!(
            EntityTag::composite_with_version("config", "v2.1").to_string(),
            "\"config-v2.1\""
        );
        // Characters that may not appear in a tag are replaced, never an error.
        assert_eq!(
            EntityTag::composite_with_version("a \"b\"", 1).opaque(),
            "a__b_-1"
        );
    }

    #[test]
    fn header_value_round_trips() {
        let t = EntityTag::weak("v1").unwrap();
        assert_eq!(t.to_header_value(), "W/\"v1\"");
        assert_eq!(EntityTag::parse(t.to_header_value().as_bytes()).unwrap(), t);
    }

    #[test]
    fn collection_tag_changes_when_an_older_member_changes() {
        let base = || CollectionTag::new().member(3, "t3").member(2, "t2");
        let older_updated = CollectionTag::new()
            .member(3, "t3")
            .member(2, "t2b")
            .member(1, "t1");
        let original = base().member(1, "t1").finish();
        assert_ne!(original, older_updated.finish());
        assert_eq!(original, base().member(1, "t1").finish());
        assert!(original.opaque().starts_with("c3-"));
    }

    #[test]
    fn collection_tag_is_not_fooled_by_field_boundaries() {
        let a = CollectionTag::new().member("1", "23").finish();
        let b = CollectionTag::new().member("12", "3").finish();
        assert_ne!(a, b);
        let c = CollectionTag::new()
            .member(1, 1)
            .context("before", 5)
            .finish();
        let d = CollectionTag::new()
            .member(1, 1)
            .context("before", 6)
            .finish();
        assert_ne!(c, d);
    }

    fn members() -> impl Strategy<Value = Vec<(u32, u32)>> {
        proptest::collection::vec((any::<u32>(), any::<u32>()), 0..20)
    }

    fn collection(items: &[(u32, u32)]) -> EntityTag {
        items
            .iter()
            .fold(CollectionTag::new(), |t, (id, v)| t.member(id, v))
            .finish()
    }

    proptest! {
        #[test]
        fn prop_parse_format_round_trip(weak: bool, opaque in "[!#-~]{0,40}") {
            let t = if weak { EntityTag::weak(opaque) } else { EntityTag::strong(opaque) }.unwrap();
            prop_assert_eq!(t.to_string().parse::<EntityTag>().unwrap(), t);
        }

        #[test]
        fn prop_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(t) = EntityTag::parse(&bytes) {
                let formatted = t.to_string();
                prop_assert_eq!(formatted.as_bytes(), &bytes[..]);
            }
        }

        #[test]
        fn prop_collection_tag_is_deterministic(items in members()) {
            prop_assert_eq!(collection(&items), collection(&items));
        }

        #[test]
        fn prop_collection_tag_changes_when_a_member_is_added(items in members(), extra: (u32, u32), at: usize) {
            let mut more = items.clone();
            more.insert(at % (items.len() + 1), extra);
            prop_assert_ne!(collection(&items), collection(&more));
        }

        #[test]
        fn prop_collection_tag_changes_when_a_member_is_removed(items in members(), at: usize) {
            prop_assume!(!items.is_empty());
            let mut fewer = items.clone();
            fewer.remove(at % items.len());
            prop_assert_ne!(collection(&items), collection(&fewer));
        }

        #[test]
        fn prop_collection_tag_changes_when_any_member_is_updated(items in members(), at: usize, bump in 1u32..) {
            prop_assume!(!items.is_empty());
            let mut updated = items.clone();
            let i = at % items.len();
            updated[i].1 = updated[i].1.wrapping_add(bump);
            prop_assert_ne!(collection(&items), collection(&updated));
        }
    }
}
