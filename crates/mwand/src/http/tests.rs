//! Helpers the http parts' tests share, and the test of [`serve`] as a whole.

use super::request::Refusal;
use super::*;

pub(crate) fn loopback() -> SocketAddr {
    "127.0.0.1:40000".parse().unwrap_or_else(|e| panic!("{e}"))
}

pub(crate) fn remote() -> SocketAddr {
    "192.0.2.7:40000".parse().unwrap_or_else(|e| panic!("{e}"))
}

pub(crate) fn with_token() -> Access {
    Access {
        token: Some("s3cret-token".into()),
    }
}

pub(crate) fn read(bytes: &[u8]) -> Progress {
    RequestReader::new(0).feed(bytes)
}

pub(crate) fn complete(bytes: &[u8]) -> Request {
    match read(bytes) {
        Progress::Complete(r) => r,
        other => panic!("{other:?}"),
    }
}

pub(crate) fn refused(p: Progress) -> Refusal {
    match p {
        Progress::Refused(r) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

pub(crate) fn post(path: &str, headers: &str, body: &str) -> Request {
    complete(
        format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\n\
             {headers}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
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

pub(crate) fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
pub(crate) fn serve_answers_reads_writes_and_refusals() {
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
