//! What an HTTP failure means, in words for a status message: "connection refused", "timed
//! out", "cannot resolve the host name". reqwest's own text names the URL, which may hold
//! credentials, and reads "error sending request"; neither belongs in a status.

use std::error::Error as _;

use crate::redact::redact;

/// A short, credential-free description of a failed request.
pub fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".into();
    }
    let mut source = error.source();
    let mut innermost = None;
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            match io.kind() {
                ConnectionRefused => return "connection refused".into(),
                ConnectionReset => return "connection reset".into(),
                ConnectionAborted => return "connection aborted".into(),
                TimedOut => return "timed out".into(),
                HostUnreachable => return "host unreachable".into(),
                NetworkUnreachable => return "network unreachable".into(),
                _ => {}
            }
        }
        innermost = Some(e.to_string());
        source = e.source();
    }
    let text = innermost.unwrap_or_else(|| error.to_string());
    if text.contains("dns error") || text.contains("failed to lookup address") {
        return "cannot resolve the host name".into();
    }
    if error.is_connect() {
        return format!("cannot connect: {}", redact(&text));
    }
    if error.is_body() || error.is_decode() {
        return format!("the answer broke off: {}", redact(&text));
    }
    redact(&text)
}

/// The `detail` (else `title`) of an RFC 9457 problem document, when the body is one.
pub fn problem_detail(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value
        .get("detail")
        .or_else(|| value.get("title"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_says_so() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let error = reqwest::get(format!("http://user:pw@127.0.0.1:{port}/x"))
            .await
            .unwrap_err();
        assert_eq!(describe(&error), "connection refused");
    }

    #[test]
    fn problem_details() {
        assert_eq!(
            problem_detail(br#"{"type":"about:blank","title":"T","status":422,"detail":"D"}"#),
            Some("D".into())
        );
        assert_eq!(problem_detail(b"<html>"), None);
    }
}
