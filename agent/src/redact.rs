//! Credentials never reach a log line or a status message: every text that may hold a URL
//! (a source's address, ffmpeg's stderr, an HTTP client's error) passes through [`redact`].

/// `text` with the userinfo (`user:password@`) of every URL in it replaced by `***@`.
///
/// A URL is recognised by its `://`; its authority runs to the next `/`, `?`, `#`, whitespace,
/// quote or closing bracket. The last `@` of the authority ends the userinfo (a password may
/// itself contain `@` when not percent-encoded).
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (before, after) = rest.split_at(i + 3);
        out.push_str(before);
        let end = after
            .find(|c: char| {
                matches!(
                    c,
                    '/' | '?' | '#' | '"' | '\'' | '<' | '>' | ')' | ']' | '`'
                ) || c.is_whitespace()
            })
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_replaced_wherever_a_url_appears() {
        assert_eq!(
            redact("rtsp://admin:s3cret@192.0.2.10:554/stream1"),
            "rtsp://***@192.0.2.10:554/stream1"
        );
        assert_eq!(
            redact("[rtsp @ 0x55] rtsp://u:p@h/cam: Server returned 401 Unauthorized"),
            "[rtsp @ 0x55] rtsp://***@h/cam: Server returned 401 Unauthorized"
        );
        assert_eq!(
            redact("error for url (http://a:b@cam.local) and rtsps://x:y@z:1"),
            "error for url (http://***@cam.local) and rtsps://***@z:1"
        );
    }

    #[test]
    fn a_password_holding_an_at_sign_is_hidden_whole() {
        assert_eq!(redact("rtsp://u:p@ss@host/x"), "rtsp://***@host/x");
    }

    #[test]
    fn text_without_credentials_is_unchanged() {
        for text in [
            "rtsp://192.0.2.10/stream",
            "connection refused",
            "dir:///srv/ftp/cam",
            "v4l2:///dev/video0",
            "mail me at someone@example.org",
        ] {
            assert_eq!(redact(text), text);
        }
    }
}
