//! Interim responses (1xx, RFC 9110 §15.2) from the origin. The Workers runtime's `fetch` does
//! not skip them: a `103 Early Hints` before the final response comes back as the response,
//! with the rest of the connection (the final response, head and all) as its body. This reads
//! the final response out of those bytes, so that the client gets it and never a 500.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;

/// The most header fields a final response may have here.
const MAX_FIELDS: usize = 128;

/// A final response read from the bytes after an interim one.
#[derive(Debug, PartialEq, Eq)]
pub struct Final {
    /// Its status (200 to 599).
    pub status: StatusCode,
    /// Its fields.
    pub headers: HeaderMap,
    /// Its body: the bytes after its head, cut at its Content-Length when it has one.
    pub body: Vec<u8>,
}

/// Reads the final response from `bytes`, skipping further interim responses; `None` when they
/// hold no complete, valid final response head (or one with a status outside 200..=599).
pub fn final_response(mut bytes: &[u8]) -> Option<Final> {
    loop {
        let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
        let mut response = httparse::Response::new(&mut fields);
        let httparse::Status::Complete(head) = response.parse(bytes).ok()? else {
            return None;
        };
        let code = response.code?;
        let rest = &bytes[head..];
        if (100..200).contains(&code) {
            bytes = rest;
            continue;
        }
        let status = StatusCode::from_u16(code)
            .ok()
            .filter(|s| (200..=599).contains(&s.as_u16()))?;
        let mut headers = HeaderMap::new();
        for field in response.headers.iter() {
            headers.append(
                HeaderName::from_bytes(field.name.as_bytes()).ok()?,
                HeaderValue::from_bytes(field.value).ok()?,
            );
        }
        let length = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<usize>().ok());
        let body = match length {
            Some(length) => rest.get(..length)?.to_vec(),
            None => rest.to_vec(),
        };
        return Some(Final {
            status,
            headers,
            body,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn rfc9110_15_2_the_final_response_follows_interim_ones() {
        let bytes =
            b"HTTP/1.1 200 OK\r\ncache-control: max-age=60\r\ncontent-length: 5\r\n\r\nfinal";
        let got = final_response(bytes).unwrap();
        assert_eq!(got.status, StatusCode::OK);
        assert_eq!(got.headers["cache-control"], "max-age=60");
        assert_eq!(got.body, b"final");
        // After another interim response, and with extra bytes past Content-Length.
        let bytes = b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 404 Nope\r\ncontent-length: 2\r\n\r\nnoXX";
        let got = final_response(bytes).unwrap();
        assert_eq!(
            (got.status.as_u16(), got.body.as_slice()),
            (404, &b"no"[..])
        );
        // Without a length: the rest.
        let got = final_response(b"HTTP/1.1 200 OK\r\n\r\nall of it").unwrap();
        assert_eq!(got.body, b"all of it");
    }

    #[test]
    fn rfc9110_15_2_anything_else_is_no_final_response() {
        for bytes in [
            &b""[..],
            b"final",
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nabc",
            b"HTTP/1.1 103 Early Hints\r\n\r\n",
            b"HTTP/1.1 999 Odd\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n",
        ] {
            assert_eq!(
                final_response(bytes),
                None,
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}
