//! Lexical rules shared by the header parsers (RFC 9110 §5.6).

/// `OWS = *( SP / HTAB )` (RFC 9110 §5.6.3).
pub(crate) fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Trims optional whitespace from both ends.
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_ows(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_ows(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// `tchar` (RFC 9110 §5.6.2).
pub(crate) fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' |
        b'^' | b'_' | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// `token = 1*tchar` (RFC 9110 §5.6.2).
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// `qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text` (RFC 9110 §5.6.4).
fn is_qdtext(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E | 0x80..=0xFF)
}

/// Parses a `quoted-string` at the start of `s` (RFC 9110 §5.6.4), returning the unescaped
/// content and the rest of the input, or `None` when `s` does not start with a well-formed one.
pub(crate) fn parse_quoted_string(s: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let mut rest = s.strip_prefix(b"\"")?;
    let mut out = Vec::new();
    loop {
        match rest {
            [b'"', tail @ ..] => return Some((out, tail)),
            // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
            [b'\\', c, tail @ ..] if *c == b'\t' || *c >= 0x20 && *c != 0x7F => {
                out.push(*c);
                rest = tail;
            }
            [c, tail @ ..] if is_qdtext(*c) => {
                out.push(*c);
                rest = tail;
            }
            _ => return None,
        }
    }
}

/// Splits a comma-separated list (`#rule`, RFC 9110 §5.6.1) into its elements, honouring
/// quoted strings (a comma inside quotes does not split) and dropping empty elements, as
/// recipients are required to.
pub(crate) fn split_list(s: &[u8]) -> Vec<&[u8]> {
    let mut items = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, &b) in s.iter().enumerate() {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_quotes = false;
            }
        } else if b == b'"' {
            in_quotes = true;
        } else if b == b',' {
            items.push(trim_ows(&s[start..i]));
            start = i + 1;
        }
    }
    items.push(trim_ows(&s[start..]));
    items.retain(|item| !item.is_empty());
    items
}

/// Parses `1*DIGIT` as a non-negative integer, saturating at `u64::MAX` rather than failing,
/// as RFC 9110 §14.1.1 and RFC 9111 §1.2.2 ask of recipients of very large numbers.
pub(crate) fn parse_digits_saturating(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |acc, &d| {
        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// An HTTP-date (RFC 9110 §5.6.7), read as robustly as that section encourages: the preferred
/// IMF-fixdate and the obsolete RFC 850 and asctime forms (by `httpdate`), with optional
/// whitespace around it and day and month names in any case (`sun, 06 NOV 1994 ...`).
/// `None` for anything else (`0`, `-1`, a date with a zone other than GMT).
pub fn parse_http_date(value: &[u8]) -> Option<std::time::SystemTime> {
    let text = std::str::from_utf8(trim_ows(value)).ok()?;
    if let Ok(t) = httpdate::parse_http_date(text) {
        return Some(t);
    }
    if !text.is_ascii() {
        return None;
    }
    // Names as httpdate expects them: `Sun`, `Nov`, `Sunday`, `GMT`.
    let mut normalised = String::with_capacity(text.len());
    let mut word_start = true;
    for c in text.chars() {
        if c.is_ascii_alphabetic() {
            normalised.push(if word_start {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            });
            word_start = false;
        } else {
            normalised.push(c);
            word_start = true;
        }
    }
    let normalised = normalised.replace("Gmt", "GMT");
    if let Ok(t) = httpdate::parse_http_date(&normalised) {
        return Some(t);
    }
    // The day name is redundant: a wrong one (`Thu Aug  8 02:01:18 2050`, a Monday) does not
    // make the date unreadable.
    let day_end = normalised.find(|c: char| !c.is_ascii_alphabetic())?;
    let (day, rest) = normalised.split_at(day_end);
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const LONG: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let names = if day.len() > 3 { LONG } else { DAYS };
    names
        .iter()
        .find_map(|name| httpdate::parse_http_date(&format!("{name}{rest}")).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn rfc9110_5_6_7_dates_in_every_form_and_case() {
        let t = parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        for form in [
            &b"Sunday, 06-Nov-94 08:49:37 GMT"[..],
            b"Sun Nov  6 08:49:37 1994",
            b"sun, 06 nov 1994 08:49:37 gmt",
            b"SUN, 06 NOV 1994 08:49:37 GMT",
            b"  Sun, 06 Nov 1994 08:49:37 GMT\t",
            // A wrong day name is ignored.
            b"Thu, 06 Nov 1994 08:49:37 GMT",
            b"Thu Nov  6 08:49:37 1994",
            b"Friday, 06-Nov-94 08:49:37 GMT",
        ] {
            assert_eq!(
                parse_http_date(form),
                Some(t),
                "{}",
                String::from_utf8_lossy(form)
            );
        }
        for bad in [
            &b"0"[..],
            b"-1",
            b"",
            b"Sun, 06 Nov 1994 08:49:37 PST",
            b"\xff",
        ] {
            assert_eq!(
                parse_http_date(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn ows_is_trimmed_from_both_ends_only() {
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"   "), b"");
    }

    #[test]
    fn quoted_string_unescapes_quoted_pairs() {
        let (value, rest) = parse_quoted_string(br#""a\"b\\c", x"#).unwrap();
        assert_eq!(value, br#"a"b\c"#);
        assert_eq!(rest, b", x");
    }

    #[test]
    fn unterminated_or_control_quoted_strings_are_rejected() {
        assert!(parse_quoted_string(b"\"abc").is_none());
        assert!(parse_quoted_string(b"\"a\x01b\"").is_none());
        assert!(parse_quoted_string(b"abc\"").is_none());
    }

    #[test]
    fn list_split_honours_quotes_and_drops_empty_elements() {
        // RFC 9110 §5.6.1.2: recipients accept and ignore empty list elements.
        assert_eq!(
            split_list(br#" , a, "b,c" ,, d "#),
            vec![&b"a"[..], &b"\"b,c\""[..], &b"d"[..]]
        );
    }

    #[test]
    fn digits_saturate_instead_of_overflowing() {
        assert_eq!(parse_digits_saturating(b"42"), Some(42));
        assert_eq!(
            parse_digits_saturating(b"99999999999999999999999"),
            Some(u64::MAX)
        );
        assert_eq!(parse_digits_saturating(b"-1"), None);
        assert_eq!(parse_digits_saturating(b""), None);
    }
}
