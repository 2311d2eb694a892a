//! What a request may do: the routes of the JSON API and the token rule
//! for writes.

use mwan_proto::control::Request as Control;
use std::net::SocketAddr;

use super::assets::ASSETS;

use super::json::parse_object;
use super::request::{refuse, Method, Refusal, Request};
use super::TOKEN_HEADER;
use mwan_core::token::same_token;

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

pub(super) const READS: [&str; 4] = ["/api/status", "/api/explain", "/api/history", "/metrics"];
pub(super) const WRITES: [&str; 4] = [
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

pub(super) fn authorize_write(
    request: &Request,
    peer: &SocketAddr,
    access: &Access,
) -> Result<(), Refusal> {
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
pub(super) fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub(super) fn query_u64(query: &str, key: &str) -> Result<Option<u64>, Refusal> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::tests::*;

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
}
