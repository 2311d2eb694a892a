//! Reading one request: an incremental reader with bounded sizes and a
//! deadline, and the parse of its request line and headers.

use mwan_core::Millis;

use super::{MAX_BODY, MAX_HEAD, MAX_HEADERS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub path: String,
    pub query: String,
    /// Names lower-cased, values trimmed.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A request answered with an error status and why, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
}

pub(super) fn refuse(status: u16, reason: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason: reason.into(),
    }
}

/// What the bytes received so far amount to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Keep reading.
    Incomplete,
    Complete(Request),
    Refused(Refusal),
}

/// Collects one request's bytes; never holds more than
/// `MAX_HEAD + MAX_BODY`.
#[derive(Debug)]
pub struct RequestReader {
    buf: Vec<u8>,
    accepted_at: Millis,
    /// Set once the head parsed: (request without body, body start, length).
    head: Option<(Request, usize, usize)>,
}

impl RequestReader {
    pub fn new(accepted_at: Millis) -> Self {
        RequestReader {
            buf: Vec::new(),
            accepted_at,
            head: None,
        }
    }

    /// When the request must be complete, `timeout` after accept.
    pub fn deadline(&self, timeout: Millis) -> Millis {
        self.accepted_at + timeout
    }

    /// The connection has had its time: answer 408 and close.
    pub fn expired(&self, now: Millis, timeout: Millis) -> Option<Refusal> {
        (now >= self.deadline(timeout))
            .then(|| refuse(408, format!("request not complete within {timeout} ms")))
    }

    /// Adds bytes read from the socket.
    pub fn feed(&mut self, bytes: &[u8]) -> Progress {
        let room = (MAX_HEAD + MAX_BODY).saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
        if self.head.is_none() {
            let Some(end) = find(&self.buf, b"\r\n\r\n") else {
                return if self.buf.len() >= MAX_HEAD {
                    Progress::Refused(refuse(431, "request head over 8 KiB"))
                } else {
                    Progress::Incomplete
                };
            };
            if end + 4 > MAX_HEAD {
                return Progress::Refused(refuse(431, "request head over 8 KiB"));
            }
            match parse_head(&self.buf[..end]) {
                Ok((request, length)) => self.head = Some((request, end + 4, length)),
                Err(refusal) => return Progress::Refused(refusal),
            }
        }
        let Some((request, start, length)) = &self.head else {
            return Progress::Incomplete;
        };
        if self.buf.len() < start + length {
            return Progress::Incomplete;
        }
        let mut request = request.clone();
        request.body = self.buf[*start..start + length].to_vec();
        Progress::Complete(request)
    }
}

pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Request line and headers: the request (body empty) and the body length.
pub(super) fn parse_head(head: &[u8]) -> Result<(Request, usize), Refusal> {
    let head = std::str::from_utf8(head).map_err(|_| refuse(400, "request head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refuse(400, format!("bad request line '{line}'")));
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(refuse(400, format!("unsupported protocol '{version}'")));
    }
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        other => return Err(refuse(405, format!("method {other} not allowed"))),
    };
    if !target.starts_with('/') {
        return Err(refuse(400, format!("bad request target '{target}'")));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = Vec::new();
    for line in lines {
        if headers.len() == MAX_HEADERS {
            return Err(refuse(431, format!("more than {MAX_HEADERS} headers")));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(refuse(400, format!("bad header line '{line}'")));
        };
        if name.is_empty() || name.contains([' ', '\t']) {
            return Err(refuse(400, format!("bad header name '{name}'")));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let request = Request {
        method,
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: Vec::new(),
    };
    if request.header("transfer-encoding").is_some() {
        return Err(refuse(
            411,
            "chunked bodies are not accepted: send Content-Length",
        ));
    }
    let mut lengths = request
        .headers
        .iter()
        .filter(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse::<usize>());
    let length = match (lengths.next(), lengths.next()) {
        (None, _) if method == Method::Post => {
            return Err(refuse(411, "POST needs a Content-Length"))
        }
        (None, _) => 0,
        (Some(Ok(n)), None) => n,
        (Some(Ok(_)), Some(_)) => return Err(refuse(400, "more than one Content-Length")),
        (Some(Err(_)), _) => return Err(refuse(400, "bad Content-Length")),
    };
    if length > MAX_BODY {
        return Err(refuse(
            413,
            format!("body of {length} bytes, at most {MAX_BODY} accepted"),
        ));
    }
    Ok((request, length))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::tests::*;
    use crate::http::{route, Access, Route, REQUEST_TIMEOUT_MS};
    use mwan_proto::control::Request as Control;

    #[test]
    fn a_request_arriving_byte_by_byte_completes_once() {
        let text = b"POST /api/restart HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 21\r\n\r\n{\"interface\":\"wan1\"}\n";
        let mut reader = RequestReader::new(0);
        for (i, b) in text.iter().enumerate() {
            let p = reader.feed(&[*b]);
            if i + 1 < text.len() {
                assert_eq!(p, Progress::Incomplete, "after {} bytes", i + 1);
            } else {
                let Progress::Complete(r) = p else {
                    panic!("{p:?}")
                };
                assert_eq!(r.body, b"{\"interface\":\"wan1\"}\n");
                assert_eq!(
                    route(&r, &loopback(), &Access { token: None }),
                    Ok(Route::Control(Control::Restart {
                        interface: "wan1".into()
                    }))
                );
            }
        }
    }

    #[test]
    fn a_slow_client_gets_408_at_the_deadline() {
        let mut reader = RequestReader::new(1_000);
        assert_eq!(reader.feed(b"GET /api/sta"), Progress::Incomplete);
        assert_eq!(
            reader.expired(1_000 + REQUEST_TIMEOUT_MS - 1, REQUEST_TIMEOUT_MS),
            None
        );
        let r = reader
            .expired(1_000 + REQUEST_TIMEOUT_MS, REQUEST_TIMEOUT_MS)
            .unwrap_or_else(|| panic!("not expired"));
        assert_eq!(r.status, 408);
    }

    #[test]
    fn an_endless_head_is_refused_431_without_growing() {
        let mut reader = RequestReader::new(0);
        assert_eq!(reader.feed(b"GET / HTTP/1.1\r\n"), Progress::Incomplete);
        let line = [b'a'; 1000];
        let mut last = Progress::Incomplete;
        for _ in 0..20 {
            last = reader.feed(&line);
            if last != Progress::Incomplete {
                break;
            }
        }
        assert_eq!(refused(last).status, 431);
        assert!(reader.buf.len() <= MAX_HEAD + MAX_BODY);
    }

    #[test]
    fn too_many_headers_are_431() {
        let mut text = String::from("GET / HTTP/1.1\r\n");
        for i in 0..=MAX_HEADERS {
            text += &format!("X-{i}: y\r\n");
        }
        text += "\r\n";
        assert_eq!(refused(read(text.as_bytes())).status, 431);
    }

    #[test]
    fn an_oversized_body_is_413_before_it_is_read() {
        let text = format!(
            "POST /api/reload HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        let r = refused(read(text.as_bytes()));
        assert_eq!(r.status, 413);
        assert!(r.reason.contains("1025 bytes"), "{}", r.reason);
    }

    #[test]
    fn a_post_without_length_is_411() {
        assert_eq!(
            refused(read(b"POST /api/reload HTTP/1.1\r\n\r\n")).status,
            411
        );
        assert_eq!(
            refused(read(
                b"POST /api/reload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            ))
            .status,
            411
        );
    }

    #[test]
    fn malformed_requests_are_400_with_a_reason() {
        for (text, words) in [
            (&b"GARBAGE\r\n\r\n"[..], "bad request line"),
            (b"GET / HTTP/2.0\r\n\r\n", "unsupported protocol"),
            (b"GET http://x/ HTTP/1.1\r\n\r\n", "bad request target"),
            (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", "bad header line"),
            (
                b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                "bad Content-Length",
            ),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                "more than one",
            ),
        ] {
            let r = refused(read(text));
            assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(text));
            assert!(r.reason.contains(words), "{}", r.reason);
        }
        assert_eq!(refused(read(b"DELETE / HTTP/1.1\r\n\r\n")).status, 405);
    }
}
