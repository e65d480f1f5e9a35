//! `EntityTag::parse` (RFC 9110 §8.8.3).
//!
//! Invariants:
//! - a tag that parses formats (Display, and `to_header_value`) back to exactly the input bytes;
//! - it is weak exactly when the input starts with `W/`, and the constructors accept its
//!   opaque value and build the same tag;
//! - weak comparison is reflexive, strong comparison is reflexive for strong tags only;
//! - an `InvalidCharacter(b)` error names a byte that really is in the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use timelapser_core::etag::InvalidEntityTag;
use timelapser_core::EntityTag;

fuzz_target!(|data: &[u8]| {
    match EntityTag::parse(data) {
        Ok(tag) => {
            let formatted = tag.to_string();
            assert_eq!(
                formatted.as_bytes(),
                data,
                "Display must give back exactly the parsed bytes"
            );
            let value = tag.to_header_value();
            assert_eq!(value.as_bytes(), data, "to_header_value must be the input");
            assert_eq!(EntityTag::parse(value.as_bytes()).as_ref(), Ok(&tag));
            assert_eq!(tag.is_weak(), data.starts_with(b"W/"));
            let rebuilt = if tag.is_weak() {
                EntityTag::weak(tag.opaque())
            } else {
                EntityTag::strong(tag.opaque())
            };
            assert_eq!(rebuilt.as_ref(), Ok(&tag));
            assert!(tag.weak_eq(&tag));
            assert_eq!(tag.strong_eq(&tag), !tag.is_weak());
        }
        Err(InvalidEntityTag::InvalidCharacter(b)) => {
            assert!(data.contains(&b), "error names {b:#04x}, not in the input");
        }
        Err(InvalidEntityTag::NotQuoted) => {}
    }
});
