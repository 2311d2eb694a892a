//! Responses: status line, the headers every response carries, bodies.

use super::assets::ASSETS;
use super::request::Refusal;

pub(super) fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// The page loads only its own files; nothing inline, no frames.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// A whole response. Every one is no-store, carries the CSP and closes the
/// connection. `head_only` drops the body (HEAD) but keeps its length.
pub fn response(
    status: u16,
    content_type: &str,
    extra_headers: &[(&str, &str)],
    body: &[u8],
    head_only: bool,
) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nContent-Security-Policy: {CSP}\r\n\
         X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n",
        reason_phrase(status),
        body.len()
    );
    for (name, value) in extra_headers {
        head += &format!("{name}: {value}\r\n");
    }
    head += "\r\n";
    let mut out = head.into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

/// A refusal as a response: the reason as plain text, and `Allow` on 405.
pub fn refusal_response(refusal: &Refusal) -> Vec<u8> {
    let allow: &[(&str, &str)] = if refusal.status == 405 {
        &[("Allow", "GET, HEAD, POST")]
    } else {
        &[]
    };
    let body = format!("{}\n", refusal.reason);
    response(
        refusal.status,
        "text/plain; charset=utf-8",
        allow,
        body.as_bytes(),
        false,
    )
}

/// One of the page's files, gzip-compressed as embedded.
pub fn asset_response(index: usize, head_only: bool) -> Vec<u8> {
    let asset = &ASSETS[index];
    response(
        200,
        asset.content_type,
        &[("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")],
        asset.gzip,
        head_only,
    )
}

/// A JSON reply from the API.
pub fn json_response(json: &str, head_only: bool) -> Vec<u8> {
    response(200, "application/json", &[], json.as_bytes(), head_only)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::refuse;

    #[test]
    fn every_response_is_no_store_with_a_strict_csp() {
        let text =
            String::from_utf8(refusal_response(&refuse(405, "use POST"))).unwrap_or_default();
        assert!(
            text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nAllow: GET, HEAD, POST\r\n"));
        let asset = asset_response(0, true);
        for r in [text.into_bytes(), asset, json_response("{}", false)] {
            let t = String::from_utf8_lossy(&r);
            assert!(t.contains("\r\nCache-Control: no-store\r\n"), "{t}");
            assert!(
                t.contains("Content-Security-Policy: default-src 'self'; script-src 'self';"),
                "{t}"
            );
            assert!(!t.contains("unsafe-inline"));
        }
        let head = String::from_utf8_lossy(&asset_response(0, true)).into_owned();
        assert!(
            head.ends_with("\r\n\r\n") && head.contains("Content-Encoding: gzip"),
            "{head}"
        );
    }
}
