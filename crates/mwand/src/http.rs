//! The dashboard's HTTP/1.1 side without I/O: an incremental request
//! reader with bounded sizes and a deadline, the routing of the JSON API
//! (docs/dashboard.md) with its token rule, the responses' headers, the
//! embedded page, and the Prometheus text for `/metrics`. The event loop
//! owns the sockets; it feeds bytes in and writes the bytes it gets back.
//! One request per connection (`Connection: close`): a poll every second
//! or two does not need keep-alive, and it bounds what a client can hold.

use mwan_core::Millis;
use mwan_proto::control::{Request as Control, Status};
use std::net::SocketAddr;

pub mod server;

/// Request line plus headers.
pub const MAX_HEAD: usize = 8 * 1024;
pub const MAX_HEADERS: usize = 32;
/// The largest body any API call needs is `{"interface": ..., "policy": ...}`.
pub const MAX_BODY: usize = 1024;
/// A request not complete this long after its connection was accepted is
/// answered 408 and the connection closed (slow clients cannot hold a slot).
pub const REQUEST_TIMEOUT_MS: Millis = 5_000;
/// The header a write carries the token in.
pub const TOKEN_HEADER: &str = "x-mwan-token";

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

fn refuse(status: u16, reason: impl Into<String>) -> Refusal {
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

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Request line and headers: the request (body empty) and the body length.
fn parse_head(head: &[u8]) -> Result<(Request, usize), Refusal> {
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

/// One file of the page, stored gzip-compressed (`make web`).
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub gzip: &'static [u8],
}

pub const ASSETS: [Asset; 3] = [
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        gzip: include_bytes!("../../../web/index.html.gz"),
    },
    Asset {
        path: "/mwan.css",
        content_type: "text/css; charset=utf-8",
        gzip: include_bytes!("../../../web/mwan.css.gz"),
    },
    Asset {
        path: "/mwan.js",
        content_type: "text/javascript; charset=utf-8",
        gzip: include_bytes!("../../../web/mwan.js.gz"),
    },
];

/// What a request asks for, once it is allowed.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Asset(usize),
    /// `/favicon.ico`: 204, so browsers do not log a 404 on every visit.
    NoContent,
    Status,
    Explain,
    History {
        since: u64,
    },
    Metrics,
    /// A write, as the control request mwand already serves.
    Control(Control),
}

/// Who may write, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// From `--http-token-file`; None: writes only from loopback.
    pub token: Option<String>,
}

/// Refuses a listen address that is not loopback without a token: anyone
/// on the network could otherwise steer the router's traffic.
pub fn check_bind(addr: &SocketAddr, access: &Access) -> Result<(), String> {
    if addr.ip().is_loopback() || access.token.is_some() {
        Ok(())
    } else {
        Err(format!(
            "--http {addr} is not a loopback address: it needs --http-token-file"
        ))
    }
}

/// Equal strings in a time that depends on their lengths only.
pub fn same_token(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
    }
    diff == 0
}

const READS: [&str; 4] = ["/api/status", "/api/explain", "/api/history", "/metrics"];
const WRITES: [&str; 4] = [
    "/api/override",
    "/api/override/clear",
    "/api/restart",
    "/api/reload",
];

/// Routes a complete request from `peer`. Reads are open to whoever can
/// connect; a write needs POST, a JSON body, no foreign Origin, and the
/// token or a loopback peer.
pub fn route(request: &Request, peer: &SocketAddr, access: &Access) -> Result<Route, Refusal> {
    let path = request.path.as_str();
    let read_only = matches!(request.method, Method::Get | Method::Head);
    if let Some(i) = ASSETS
        .iter()
        .position(|a| a.path == path || (path == "/index.html" && a.path == "/"))
    {
        return if read_only {
            Ok(Route::Asset(i))
        } else {
            Err(refuse(405, format!("{path} is read-only: use GET")))
        };
    }
    if path == "/favicon.ico" && read_only {
        return Ok(Route::NoContent);
    }
    if READS.contains(&path) {
        if !read_only {
            return Err(refuse(405, format!("{path} is read-only: use GET")));
        }
        return Ok(match path {
            "/api/status" => Route::Status,
            "/api/explain" => Route::Explain,
            "/metrics" => Route::Metrics,
            _ => Route::History {
                since: query_u64(&request.query, "since")?.unwrap_or(0),
            },
        });
    }
    if !WRITES.contains(&path) {
        return Err(refuse(404, format!("no such page or API call: {path}")));
    }
    if read_only {
        return Err(refuse(405, format!("{path} changes things: use POST")));
    }
    authorize_write(request, peer, access)?;
    let fields = parse_object(&request.body)?;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.clone())
    };
    let interface = || {
        field("interface")
            .ok_or_else(|| refuse(400, format!("{path} needs {{\"interface\": \"<name>\"}}")))
    };
    Ok(Route::Control(match path {
        "/api/override" => Control::Override {
            interface: interface()?,
            policy: field("policy"),
            persistent: false,
        },
        "/api/override/clear" => Control::ClearOverride {
            policy: field("policy"),
        },
        "/api/restart" => Control::Restart {
            interface: interface()?,
        },
        _ => Control::Reload,
    }))
}

fn authorize_write(request: &Request, peer: &SocketAddr, access: &Access) -> Result<(), Refusal> {
    // A page elsewhere cannot send this content type across origins
    // without a preflight we never answer, and cannot forge Origin.
    let json = request.header("content-type").is_some_and(|t| {
        t.split(';')
            .next()
            .is_some_and(|t| t.trim() == "application/json")
    });
    if !json {
        return Err(refuse(415, "writes take Content-Type: application/json"));
    }
    if let (Some(origin), Some(host)) = (request.header("origin"), request.header("host")) {
        if origin != format!("http://{host}") && origin != format!("https://{host}") {
            return Err(refuse(403, format!("write from foreign origin {origin}")));
        }
    }
    match (request.header(TOKEN_HEADER), &access.token) {
        (Some(given), Some(expected)) if same_token(given, expected) => Ok(()),
        (Some(_), _) => Err(refuse(403, "wrong token")),
        // The Host check stops DNS rebinding: a page of evil.example made
        // to resolve to 127.0.0.1 is same-origin, but its Host is not ours.
        (None, _)
            if peer.ip().is_loopback() && request.header("host").is_none_or(is_loopback_host) =>
        {
            Ok(())
        }
        (None, _) if peer.ip().is_loopback() => Err(refuse(
            403,
            "a write without token must address the loopback by IP or localhost",
        )),
        (None, _) => Err(refuse(
            401,
            "writes from another host need the X-Mwan-Token header",
        )),
    }
}

/// `127.0.0.1`, `[::1]` or `localhost`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn query_u64(query: &str, key: &str) -> Result<Option<u64>, Refusal> {
    for pair in query.split('&') {
        if let Some(v) = pair.strip_prefix(key).and_then(|r| r.strip_prefix('=')) {
            return v
                .parse()
                .map(Some)
                .map_err(|_| refuse(400, format!("'{key}' must be a whole number, got '{v}'")));
        }
    }
    Ok(None)
}

/// A flat JSON object whose values are strings or null; the API needs no
/// more. An empty body is an empty object.
pub fn parse_object(body: &[u8]) -> Result<Vec<(String, Option<String>)>, Refusal> {
    let text = std::str::from_utf8(body).map_err(|_| refuse(400, "body is not UTF-8"))?;
    let bad = |what: &str| {
        refuse(
            400,
            format!("body: {what}; expected {{\"name\": \"value\", ...}}"),
        )
    };
    let mut p = text.trim_start();
    if p.is_empty() {
        return Ok(Vec::new());
    }
    p = p.strip_prefix('{').ok_or_else(|| bad("not an object"))?;
    let mut fields = Vec::new();
    loop {
        p = p.trim_start();
        if let Some(rest) = p.strip_prefix('}') {
            if fields.is_empty() && rest.trim().is_empty() {
                return Ok(fields);
            }
            return Err(bad("misplaced '}'"));
        }
        let (name, rest) = json_string(p).ok_or_else(|| bad("bad key"))?;
        p = rest
            .trim_start()
            .strip_prefix(':')
            .ok_or_else(|| bad("missing ':'"))?
            .trim_start();
        let value = if let Some(rest) = p.strip_prefix("null") {
            p = rest;
            None
        } else {
            let (v, rest) = json_string(p).ok_or_else(|| bad("values must be strings or null"))?;
            p = rest;
            Some(v)
        };
        fields.push((name, value));
        p = p.trim_start();
        if let Some(rest) = p.strip_prefix(',') {
            p = rest;
        } else if let Some(rest) = p.strip_prefix('}') {
            return if rest.trim().is_empty() {
                Ok(fields)
            } else {
                Err(bad("text after the object"))
            };
        } else {
            return Err(bad("missing ',' or '}'"));
        }
    }
}

/// A JSON string at the start of `p`: its value and the rest.
fn json_string(p: &str) -> Option<(String, &str)> {
    let mut chars = p.strip_prefix('"')?.char_indices();
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &p[i + 2..])),
            '\\' => out.push(match chars.next()?.1 {
                '"' => '"',
                '\\' => '\\',
                '/' => '/',
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                'u' => {
                    let hex: String = (0..4)
                        .filter_map(|_| chars.next().map(|(_, c)| c))
                        .collect();
                    char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
                }
                _ => return None,
            }),
            c if (c as u32) < 0x20 => return None,
            c => out.push(c),
        }
    }
    None
}

fn reason_phrase(status: u16) -> &'static str {
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

/// Connections served at once; one more is accepted and closed at once,
/// so a flood of idle clients cannot take the memory or the loop.
pub const MAX_CONNECTIONS: usize = 8;

/// What the API reads and does: mwand implements it over the handlers the
/// control socket already uses, so the page and `mwanctl` agree.
pub trait Api {
    /// The `Status` object, as `mwanctl status --json`.
    fn status_json(&mut self) -> String;
    /// `{"explain": [...]}`, as `mwanctl explain --json`.
    fn explain_json(&mut self) -> String;
    /// `mwan_core::history::History::json_since(since)`.
    fn history_json(&mut self, since: u64) -> String;
    fn metrics_text(&mut self) -> String;
    /// A write: mwand's message, or why it refused.
    fn control(&mut self, request: Control) -> Result<String, String>;
}

/// The whole response to a complete request from `peer`.
pub fn serve(request: &Request, peer: &SocketAddr, access: &Access, api: &mut dyn Api) -> Vec<u8> {
    let head_only = request.method == Method::Head;
    let route = match route(request, peer, access) {
        Ok(route) => route,
        Err(refusal) => return refusal_response(&refusal),
    };
    match route {
        Route::Asset(i) => asset_response(i, head_only),
        Route::NoContent => response(204, "text/plain", &[], b"", head_only),
        Route::Status => json_response(&api.status_json(), head_only),
        Route::Explain => json_response(&api.explain_json(), head_only),
        Route::History { since } => json_response(&api.history_json(since), head_only),
        Route::Metrics => response(
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            &[],
            api.metrics_text().as_bytes(),
            head_only,
        ),
        Route::Control(request) => {
            let (status, key, text) = match api.control(request) {
                Ok(message) => (200, "{\"ok\":true,\"message\":", message),
                // mwand understood the request and refused it (an unknown
                // interface or policy): the client's to fix.
                Err(error) => (400, "{\"ok\":false,\"error\":", error),
            };
            let mut body = key.to_owned();
            mwan_core::history::json_string(&mut body, &text);
            body.push('}');
            response(status, "application/json", &[], body.as_bytes(), false)
        }
    }
}

fn label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Writes one metric family: HELP, TYPE, then one line per sample.
fn family<'a>(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, f64)>,
) {
    out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
    for (labels, value) in samples {
        out.push_str(name);
        if !labels.is_empty() {
            out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push_str("=\"");
                label(out, v);
                out.push('"');
            }
            out.push('}');
        }
        out.push_str(&format!(" {value}\n"));
    }
}

const STATES: [&str; 6] = [
    "online",
    "offline",
    "connecting",
    "disconnecting",
    "unknown",
    "disabled",
];

/// One interface's counters since mwand started, which [`Status`] does not
/// carry: state changes (counted with the history's events) and the
/// probes its tracker reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WanCounters {
    pub transitions: u64,
    pub probes_sent: u64,
    pub probes_lost: u64,
}

/// `/metrics` in the Prometheus text format (0.0.4), with `counters` of
/// each interface by name.
pub fn metrics(status: &Status, counters: &dyn Fn(&str) -> WanCounters) -> String {
    let mut out = String::new();
    let wans = &status.interfaces;
    let per_wan = |f: &dyn Fn(&mwan_proto::control::InterfaceStatus) -> Option<f64>| {
        wans.iter()
            .filter_map(|w| f(w).map(|v| (vec![("interface", w.name.as_str())], v)))
            .collect::<Vec<_>>()
    };
    family(
        &mut out,
        "mwan_interface_state",
        "gauge",
        "1 for the state the interface is in, 0 for the others.",
        wans.iter().flat_map(|w| {
            STATES.iter().map(move |s| {
                (
                    vec![("interface", w.name.as_str()), ("state", *s)],
                    f64::from(u8::from(w.state == *s)),
                )
            })
        }),
    );
    family(
        &mut out,
        "mwan_interface_state_age_seconds",
        "gauge",
        "Seconds in the current state.",
        per_wan(&|w| Some(w.state_age_s as f64)),
    );
    family(
        &mut out,
        "mwan_interface_latency_seconds",
        "gauge",
        "Smoothed round-trip time.",
        per_wan(&|w| w.latency_ms.map(|v| v / 1000.0)),
    );
    family(
        &mut out,
        "mwan_interface_jitter_seconds",
        "gauge",
        "Smoothed round-trip time variation.",
        per_wan(&|w| w.jitter_ms.map(|v| v / 1000.0)),
    );
    family(
        &mut out,
        "mwan_interface_loss_ratio",
        "gauge",
        "Smoothed probe loss, 0 to 1.",
        per_wan(&|w| w.loss_pct.map(|v| v / 100.0)),
    );
    family(
        &mut out,
        "mwan_interface_score",
        "gauge",
        "Quality score, lower is better.",
        per_wan(&|w| w.score),
    );
    family(
        &mut out,
        "mwan_interface_transitions_total",
        "counter",
        "State changes since mwand started.",
        per_wan(&|w| Some(counters(&w.name).transitions as f64)),
    );
    family(
        &mut out,
        "mwan_interface_probes_sent_total",
        "counter",
        "Probes the interface's tracker reported since mwand started.",
        per_wan(&|w| Some(counters(&w.name).probes_sent as f64)),
    );
    family(
        &mut out,
        "mwan_interface_probes_lost_total",
        "counter",
        "Of those, probes without an answer (timeout, unreachable, refused, bad answer, not sent).",
        per_wan(&|w| Some(counters(&w.name).probes_lost as f64)),
    );
    family(
        &mut out,
        "mwan_tracker_restarts_total",
        "counter",
        "Tracker restarts since mwand started.",
        per_wan(&|w| Some(f64::from(w.tracker.restarts))),
    );
    family(
        &mut out,
        "mwan_tracker_connected",
        "gauge",
        "1 when the interface's tracker is connected.",
        per_wan(&|w| Some(f64::from(u8::from(w.tracker.connected)))),
    );
    family(
        &mut out,
        "mwan_policy_share_ratio",
        "gauge",
        "Share of a policy's new flows an interface carries, 0 to 1.",
        status.policies.iter().flat_map(|p| {
            p.active.iter().map(move |a| {
                (
                    vec![
                        ("policy", p.name.as_str()),
                        ("interface", a.interface.as_str()),
                    ],
                    a.share_pct / 100.0,
                )
            })
        }),
    );
    family(
        &mut out,
        "mwan_overrides",
        "gauge",
        "Overrides in force.",
        [(vec![], status.overrides.len() as f64)],
    );
    family(
        &mut out,
        "mwan_uptime_seconds",
        "gauge",
        "Seconds since mwand started.",
        [(vec![], status.uptime_s as f64)],
    );
    let d = &status.dataplane;
    for (name, help, value) in [
        (
            "mwan_route_dumps_total",
            "Full reads of our routes and rules.",
            d.route_dumps,
        ),
        (
            "mwan_restored_objects_total",
            "Routes and rules put back after someone removed them.",
            d.restored_objects,
        ),
        (
            "mwan_nft_installs_total",
            "Installs of table inet mwan.",
            d.nft_installs,
        ),
    ] {
        family(&mut out, name, "counter", help, [(vec![], value as f64)]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mwan_proto::control::{ActiveMemberStatus, InterfaceStatus, PolicyStatus, TrackerStatus};

    fn loopback() -> SocketAddr {
        "127.0.0.1:40000".parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn remote() -> SocketAddr {
        "192.0.2.7:40000".parse().unwrap_or_else(|e| panic!("{e}"))
    }

    fn with_token() -> Access {
        Access {
            token: Some("s3cret-token".into()),
        }
    }

    fn read(bytes: &[u8]) -> Progress {
        RequestReader::new(0).feed(bytes)
    }

    fn complete(bytes: &[u8]) -> Request {
        match read(bytes) {
            Progress::Complete(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn refused(p: Progress) -> Refusal {
        match p {
            Progress::Refused(r) => r,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn post(path: &str, headers: &str, body: &str) -> Request {
        complete(
            format!(
                "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\n\
                 {headers}Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
    }

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

    #[test]
    fn reads_route_and_take_a_since_cursor() {
        let open = Access { token: None };
        let get = |t: &str| complete(format!("GET {t} HTTP/1.1\r\n\r\n").as_bytes());
        assert_eq!(route(&get("/"), &remote(), &open), Ok(Route::Asset(0)));
        assert_eq!(
            route(&get("/index.html"), &remote(), &open),
            Ok(Route::Asset(0))
        );
        assert_eq!(
            route(&get("/mwan.js"), &remote(), &open),
            Ok(Route::Asset(2))
        );
        assert_eq!(
            route(&get("/api/status"), &remote(), &open),
            Ok(Route::Status)
        );
        assert_eq!(
            route(&get("/metrics"), &remote(), &open),
            Ok(Route::Metrics)
        );
        assert_eq!(
            route(&get("/api/history?since=42"), &remote(), &open),
            Ok(Route::History { since: 42 })
        );
        assert_eq!(
            route(&get("/api/history?since=x"), &remote(), &open).map_err(|r| r.status),
            Err(400)
        );
        assert_eq!(
            route(&get("/nope"), &remote(), &open).map_err(|r| r.status),
            Err(404)
        );
    }

    #[test]
    fn a_get_never_writes() {
        for path in WRITES {
            let r = complete(
                format!("GET {path} HTTP/1.1\r\n{TOKEN_HEADER}: s3cret-token\r\n\r\n").as_bytes(),
            );
            let refusal = route(&r, &loopback(), &with_token())
                .err()
                .unwrap_or_else(|| panic!("{path} allowed"));
            assert_eq!(refusal.status, 405, "{path}");
        }
        let r = post("/api/status", "", "");
        assert_eq!(
            route(&r, &loopback(), &with_token()).map_err(|r| r.status),
            Err(405)
        );
    }

    #[test]
    fn a_write_from_another_host_needs_the_token() {
        let body = "{\"interface\": \"wan2\", \"policy\": \"balanced\"}";
        let no_token = post("/api/override", "", body);
        let r = route(&no_token, &remote(), &with_token())
            .err()
            .unwrap_or_else(|| panic!("allowed"));
        assert_eq!(r.status, 401);
        let wrong = post("/api/override", "X-Mwan-Token: s3cret-tokem\r\n", body);
        assert_eq!(
            route(&wrong, &remote(), &with_token()).map_err(|r| r.status),
            Err(403)
        );
        let right = post("/api/override", "X-Mwan-Token: s3cret-token\r\n", body);
        assert_eq!(
            route(&right, &remote(), &with_token()),
            Ok(Route::Control(Control::Override {
                interface: "wan2".into(),
                policy: Some("balanced".into()),
                persistent: false,
            }))
        );
        // Loopback writes without a token; a wrong one is still refused.
        assert!(route(&no_token, &loopback(), &with_token()).is_ok());
        assert_eq!(
            route(&wrong, &loopback(), &with_token()).map_err(|r| r.status),
            Err(403)
        );
    }

    #[test]
    fn cross_site_writes_are_refused() {
        let foreign = post("/api/reload", "Origin: http://evil.example\r\n", "{}");
        assert_eq!(
            route(&foreign, &loopback(), &Access { token: None }).map_err(|r| r.status),
            Err(403)
        );
        let same = post("/api/reload", "Origin: http://127.0.0.1:8080\r\n", "{}");
        assert_eq!(
            route(&same, &loopback(), &Access { token: None }),
            Ok(Route::Control(Control::Reload))
        );
        let form = complete(
            b"POST /api/reload HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n",
        );
        assert_eq!(
            route(&form, &loopback(), &Access { token: None }).map_err(|r| r.status),
            Err(415)
        );
    }

    #[test]
    fn dns_rebinding_cannot_write_through_loopback() {
        let open = Access { token: None };
        let rebound = complete(
            b"POST /api/reload HTTP/1.1\r\nHost: evil.example:8080\r\nOrigin: http://evil.example:8080\r\n\
              Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        );
        assert_eq!(
            route(&rebound, &loopback(), &open).map_err(|r| r.status),
            Err(403)
        );
        for host in ["localhost:8080", "127.0.0.1", "[::1]:8080", "LOCALHOST"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "router:8080",
            "evil.example",
            "[2001:db8::1]:80",
            "127.0.0.1.evil.example",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn write_bodies_are_checked() {
        let open = Access { token: None };
        let r = post("/api/restart", "", "{}");
        assert_eq!(
            route(&r, &loopback(), &open).map_err(|r| r.status),
            Err(400)
        );
        let r = post("/api/override/clear", "", "");
        assert_eq!(
            route(&r, &loopback(), &open),
            Ok(Route::Control(Control::ClearOverride { policy: None }))
        );
        for bad in [
            "[1]",
            "{\"interface\": 3}",
            "{\"a\":\"b\"} x",
            "{\"a\" \"b\"}",
            "{\"a\":\"\\q\"}",
        ] {
            assert_eq!(
                route(&post("/api/restart", "", bad), &loopback(), &open).map_err(|r| r.status),
                Err(400),
                "{bad}"
            );
        }
        assert_eq!(
            parse_object(b" {\"interface\" : \"w\\u00e4n\\\"1\", \"policy\": null } "),
            Ok(vec![
                ("interface".into(), Some("wän\"1".into())),
                ("policy".into(), None)
            ])
        );
    }

    #[test]
    fn binding_beyond_loopback_needs_a_token() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(check_bind(&any, &Access { token: None }).is_err());
        assert!(check_bind(&any, &with_token()).is_ok());
        assert!(check_bind(&loopback(), &Access { token: None }).is_ok());
        let v6: SocketAddr = "[::1]:8080".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(check_bind(&v6, &Access { token: None }).is_ok());
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abd", "abc"));
        assert!(!same_token("ab", "abc"));
        assert!(!same_token("abcd", "abc"));
        assert!(!same_token("", "abc"));
    }

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

    /// Runs `program` with `input` on its stdin; panics naming it if it
    /// cannot run (`make deps` installs what the tests use).
    pub(crate) fn pipe(program: &str, args: &[&str], input: &[u8]) -> std::process::Output {
        use std::io::Write;
        use std::process::{Command, Stdio};
        Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                child
                    .stdin
                    .take()
                    .map(|mut i| i.write_all(input))
                    .transpose()?;
                child.wait_with_output()
            })
            .unwrap_or_else(|e| panic!("{program}: {e}: run `make deps`"))
    }

    /// The embedded .gz files are the page as it is in web/ (`make web`).
    #[test]
    fn embedded_page_matches_its_source() {
        let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
        for (asset, source) in ASSETS.iter().zip(["index.html", "mwan.css", "mwan.js"]) {
            let out = pipe("gzip", &["-dc"], asset.gzip);
            let want = std::fs::read(web.join(source)).unwrap_or_else(|e| panic!("{source}: {e}"));
            assert!(
                out.stdout == want,
                "web/{source}.gz is stale: run `make web`"
            );
        }
        let total: usize = ASSETS.iter().map(|a| a.gzip.len()).sum();
        assert!(
            total <= 40 * 1024,
            "page is {total} bytes gzipped, over 40 KB"
        );
        // No inline script or style: the CSP would block them.
        let html = std::fs::read_to_string(web.join("index.html")).unwrap_or_default();
        assert!(
            !html.contains("<script>") && !html.contains("<style") && !html.contains(" style=")
        );
    }

    /// mwand's side, recorded: what the API asked for.
    #[derive(Default)]
    pub(crate) struct Recorder {
        pub(crate) asked: Vec<String>,
        /// Answer with a real-looking mwand (for the browser) instead of
        /// stubs.
        canned: bool,
    }

    /// One WAN online, one policy, one event: enough for the page.
    const CANNED_STATUS: &str = r#"{"config":"/etc/config/mwan","dataplane_error":null,
"interfaces":[{"name":"wan1","device":"eth1","state":"online","state_age_s":65,"latency_ms":12.5,
"jitter_ms":1.0,"loss_pct":0.0,"score":13.5,"tracker":{"pid":42,"restarts":0,"uptime_s":65,"connected":true},
"reason":null}],"override":null,"overrides":[],
"dataplane":{"route_dumps":1,"restored_objects":0,"nft_installs":1,"conntrack_pending":[]},
"policies":[{"name":"balanced","active":[{"interface":"wan1","weight":1,"share_pct":100.0}],
"last_resort":null}],"uptime_s":65}"#;
    const CANNED_EXPLAIN: &str = r#"{"explain":[{"policy":"balanced","lines":["policy balanced uses wan1 (weight 1) for IPv4"]}]}"#;

    impl Recorder {
        pub(crate) fn canned() -> Self {
            Recorder {
                canned: true,
                ..Self::default()
            }
        }
    }

    impl Api for Recorder {
        fn status_json(&mut self) -> String {
            self.asked.push("status".into());
            if self.canned {
                return CANNED_STATUS.into();
            }
            "{\"uptime_s\":1}".into()
        }
        fn explain_json(&mut self) -> String {
            self.asked.push("explain".into());
            if self.canned {
                return CANNED_EXPLAIN.into();
            }
            "{\"explain\":[]}".into()
        }
        fn history_json(&mut self, since: u64) -> String {
            self.asked.push(format!("history {since}"));
            if self.canned {
                let mut h = mwan_core::history::History::new();
                h.set_interfaces(&["wan1"]);
                let sample = mwan_core::history::Sample {
                    state: mwan_core::health::LinkState::Online,
                    latency_ms: Some(12.5),
                    jitter_ms: Some(1.0),
                    loss_pct: Some(0.0),
                    score: Some(13.5),
                };
                for s in 0..120 {
                    h.record("wan1", s * 1000, &sample);
                }
                let kind = mwan_core::history::EventKind::State;
                h.event(
                    60_000,
                    kind,
                    "wan1",
                    "online -> offline",
                    "3 of 3 rounds failed",
                );
                return h.json_since(since);
            }
            "{}".into()
        }
        fn metrics_text(&mut self) -> String {
            self.asked.push("metrics".into());
            "# metrics\n".into()
        }
        fn control(&mut self, request: Control) -> Result<String, String> {
            self.asked.push(format!("{request:?}"));
            match request {
                Control::Restart { interface } if interface == "wan9" => {
                    Err("no interface \"wan9\"".into())
                }
                _ => Ok("done".into()),
            }
        }
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn serve_answers_reads_writes_and_refusals() {
        let open = Access { token: None };
        let mut api = Recorder::default();
        let get = |t: &str| complete(format!("GET {t} HTTP/1.1\r\n\r\n").as_bytes());
        let r = text(serve(&get("/api/status"), &remote(), &open, &mut api));
        assert!(
            r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("\r\n\r\n{\"uptime_s\":1}"),
            "{r}"
        );
        let r = text(serve(
            &get("/api/history?since=7"),
            &remote(),
            &open,
            &mut api,
        ));
        assert!(r.contains("Content-Type: application/json\r\n"), "{r}");
        let r = text(serve(&get("/metrics"), &remote(), &open, &mut api));
        assert!(r.contains("Content-Type: text/plain; version=0.0.4"), "{r}");
        let head = complete(b"HEAD /api/explain HTTP/1.1\r\n\r\n");
        let r = text(serve(&head, &remote(), &open, &mut api));
        assert!(
            r.contains("Content-Length: 14\r\n") && r.ends_with("\r\n\r\n"),
            "{r}"
        );
        let r = text(serve(
            &post("/api/restart", "", "{\"interface\":\"wan1\"}"),
            &loopback(),
            &open,
            &mut api,
        ));
        assert!(
            r.starts_with("HTTP/1.1 200 ") && r.ends_with("{\"ok\":true,\"message\":\"done\"}"),
            "{r}"
        );
        let r = text(serve(
            &post("/api/restart", "", "{\"interface\":\"wan9\"}"),
            &loopback(),
            &open,
            &mut api,
        ));
        assert!(
            r.starts_with("HTTP/1.1 400 ")
                && r.ends_with("{\"ok\":false,\"error\":\"no interface \\\"wan9\\\"\"}"),
            "{r}"
        );
        // Refused before mwand is asked anything.
        let r = text(serve(
            &post("/api/reload", "", "{}"),
            &remote(),
            &open,
            &mut api,
        ));
        assert!(r.starts_with("HTTP/1.1 401 "), "{r}");
        let r = text(serve(&get("/api/reload"), &loopback(), &open, &mut api));
        assert!(r.starts_with("HTTP/1.1 405 "), "{r}");
        assert_eq!(
            api.asked,
            [
                "status",
                "history 7",
                "metrics",
                "explain",
                "Restart { interface: \"wan1\" }",
                "Restart { interface: \"wan9\" }"
            ]
        );
    }

    pub(crate) fn status() -> Status {
        Status {
            interfaces: vec![
                InterfaceStatus {
                    name: "wan1".into(),
                    device: Some("eth1".into()),
                    state: "online".into(),
                    state_age_s: 65,
                    latency_ms: Some(12.5),
                    jitter_ms: Some(1.0),
                    loss_pct: Some(2.0),
                    score: Some(13.5),
                    tracker: TrackerStatus {
                        pid: Some(42),
                        restarts: 1,
                        uptime_s: Some(60),
                        connected: true,
                    },
                    reason: None,
                },
                InterfaceStatus {
                    name: "wan \"2\"".into(),
                    device: None,
                    state: "offline".into(),
                    state_age_s: 3,
                    latency_ms: None,
                    jitter_ms: None,
                    loss_pct: Some(100.0),
                    score: None,
                    tracker: TrackerStatus {
                        pid: None,
                        restarts: 0,
                        uptime_s: None,
                        connected: false,
                    },
                    reason: None,
                },
            ],
            policies: vec![PolicyStatus {
                name: "balanced".into(),
                active: vec![ActiveMemberStatus {
                    interface: "wan1".into(),
                    weight: 1,
                    share_pct: 100.0,
                }],
                last_resort: None,
                ceilings: Vec::new(),
            }],
            override_: None,
            uptime_s: 100,
            config: "/etc/config/mwan".into(),
            dataplane_error: None,
            dataplane_error_kind: None,
            overrides: Vec::new(),
            dataplane: Default::default(),
            event_loop: Default::default(),
            config_warning: None,
        }
    }

    #[test]
    fn metrics_have_one_line_per_label_set() {
        let text = metrics(&status(), &|name| WanCounters {
            transitions: if name == "wan1" { 3 } else { 1 },
            probes_sent: 120,
            probes_lost: 7,
        });
        assert!(text.contains("mwan_interface_state{interface=\"wan1\",state=\"online\"} 1\n"));
        assert!(text
            .contains("mwan_interface_state{interface=\"wan \\\"2\\\"\",state=\"offline\"} 1\n"));
        assert!(text.contains("mwan_interface_latency_seconds{interface=\"wan1\"} 0.0125\n"));
        assert!(!text.contains("mwan_interface_latency_seconds{interface=\"wan \\\"2"));
        assert!(text.contains("# TYPE mwan_interface_transitions_total counter\n"));
        assert!(text.contains("mwan_interface_transitions_total{interface=\"wan1\"} 3\n"));
        assert!(text.contains("# TYPE mwan_interface_probes_sent_total counter\n"));
        assert!(text.contains("mwan_interface_probes_sent_total{interface=\"wan1\"} 120\n"));
        assert!(text.contains("mwan_interface_probes_lost_total{interface=\"wan1\"} 7\n"));
        assert!(
            text.contains("mwan_policy_share_ratio{policy=\"balanced\",interface=\"wan1\"} 1\n")
        );
    }

    /// Read back by a real Prometheus text parser: prometheus_client's,
    /// from Debian's python3-prometheus-client (`make deps` installs it).
    #[test]
    fn metrics_parse_with_prometheus_client() {
        const CHECK: &str = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(sys.stdin.read())}
for f in sorted(fams.values(), key=lambda f: f.name):
    for s in f.samples:
        print(f.type, s.name, ",".join(k + "=" + v for k, v in sorted(s.labels.items())), s.value)
"#;
        let text = metrics(&status(), &|_| WanCounters {
            transitions: 2,
            probes_sent: 60,
            probes_lost: 3,
        });
        let out = pipe("/usr/bin/python3", &["-c", CHECK], text.as_bytes());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "prometheus_client refused the text (`make deps` installs it): {stderr}\n{text}"
        );
        let parsed = String::from_utf8_lossy(&out.stdout);
        // A sample whose name does not match its TYPE line comes back untyped.
        assert!(
            !parsed.lines().any(|l| l.starts_with("unknown")),
            "{parsed}"
        );
        for line in [
            "gauge mwan_interface_state interface=wan1,state=online 1.0",
            "gauge mwan_interface_state interface=wan \"2\",state=offline 1.0",
            "gauge mwan_interface_loss_ratio interface=wan \"2\" 1.0",
            "gauge mwan_interface_latency_seconds interface=wan1 0.0125",
            "counter mwan_interface_transitions_total interface=wan1 2.0",
            "counter mwan_interface_probes_sent_total interface=wan1 60.0",
            "counter mwan_interface_probes_lost_total interface=wan \"2\" 3.0",
            "counter mwan_tracker_restarts_total interface=wan1 1.0",
            "gauge mwan_policy_share_ratio interface=wan1,policy=balanced 1.0",
            "counter mwan_nft_installs_total  0.0",
        ] {
            assert!(
                parsed.lines().any(|l| l == line),
                "missing '{line}' in:\n{parsed}"
            );
        }
    }
}
