//! The dashboard inside the loop (`--http`, docs/dashboard.md): the
//! listener's events and timer, the `http::Api` over the same handlers the
//! control socket uses, and the history it serves (a sample per WAN each
//! housekeeping second, an event per state change and policy move).

use super::{Daemon, DaemonError};
use crate::clock::now_ms;
use crate::http::{self, server::Server, Access};
use crate::wan::Change;
use mio::{Registry, Token};
use mwan_core::history::{EventKind, Sample};
use mwan_core::Millis;
use mwan_proto::control::{Request, Response};
use std::path::Path;

/// The listener and a registry of its own, so a handler can lend the
/// daemon to the server as its `Api` while the server registers sockets.
pub(super) struct HttpSide {
    server: Server,
    registry: Registry,
}

/// The first line of `--http-token-file`, refused when empty: an empty
/// token would let any peer write.
fn read_token(path: &Path) -> Result<String, DaemonError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        DaemonError::Io(
            "--http-token-file",
            std::io::Error::new(e.kind(), format!("{}: {e}", path.display())),
        )
    })?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(DaemonError::Io(
            "--http-token-file",
            std::io::Error::other(format!("{}: the first line is empty", path.display())),
        ));
    }
    Ok(token)
}

/// Binds `--http` when given (refused beyond loopback without a token).
pub(super) fn bind(
    opts: &crate::Options,
    registry: &Registry,
    first: Token,
) -> Result<Option<HttpSide>, DaemonError> {
    let Some(addr) = opts.http else {
        return Ok(None);
    };
    let token = opts
        .http_token_file
        .as_deref()
        .map(read_token)
        .transpose()?;
    let server = Server::bind(addr, Access { token }, registry, first)
        .map_err(|e| DaemonError::Io("--http listener", e))?;
    let registry = registry
        .try_clone()
        .map_err(|e| DaemonError::Io("--http listener", e))?;
    log::info!(
        "dashboard on http://{}/",
        server.local_addr().map_or(addr, |a| a)
    );
    Ok(Some(HttpSide { server, registry }))
}

impl Daemon {
    pub(super) fn on_http(&mut self, token: Token) {
        let Some(mut side) = self.http.take() else {
            return;
        };
        side.server.ready(&side.registry, token, now_ms(), self);
        self.http = Some(side);
    }

    /// Cuts off requests past their deadline (a slow client loses its slot).
    pub(super) fn http_tick(&mut self, now: Millis) {
        if let Some(side) = self.http.as_mut() {
            side.server.tick(&side.registry, now);
        }
    }

    pub(super) fn http_deadline(&self) -> Option<Millis> {
        self.http.as_ref().and_then(|s| s.server.next_deadline())
    }

    /// One sample per WAN into the history (each housekeeping second).
    pub(super) fn record_history(&mut self, now: Millis) {
        for wan in self.wans.values() {
            let st = wan.status(now);
            let sample = Sample {
                state: wan.state(),
                latency_ms: st.latency_ms,
                jitter_ms: st.jitter_ms,
                loss_pct: st.loss_pct,
                score: st.score,
            };
            self.history.record(&st.name, now, &sample);
        }
    }

    /// A state change in the timeline, with what the WAN's figures say.
    pub(super) fn record_state_change(&mut self, name: &str, change: &Change, now: Millis) {
        let reason = match self.wans.get(name).map(|w| w.status(now)) {
            Some(st) => st
                .reason
                .unwrap_or_else(|| match (st.loss_pct, st.latency_ms) {
                    (Some(loss), Some(ms)) => format!("loss {loss:.0}%, latency {ms:.1} ms"),
                    (Some(loss), None) => format!("loss {loss:.0}%"),
                    _ => "no probe answers yet".into(),
                }),
            None => String::new(),
        };
        let text = format!("{} -> {}", change.from, change.to);
        self.history
            .event(now, EventKind::State, name, &text, &reason);
    }

    /// Policy moves in the timeline: each policy whose carriers changed
    /// since `before`, with its `explain` sentence as the reason.
    pub(super) fn record_policy_moves(&mut self, before: &[String], now: Millis) {
        let after = self.engine.summary_lines();
        let explained = self.engine.explain(None, now).unwrap_or_default();
        for line in after.iter().filter(|l| !before.contains(l)) {
            let (policy, text) = line.split_once(": ").unwrap_or((line, ""));
            let reason = explained
                .iter()
                .find(|e| e.policy == policy)
                .map(|e| e.lines.join(" "))
                .unwrap_or_default();
            self.history
                .event(now, EventKind::Policy, policy, text, &reason);
        }
    }

    /// The history's WANs follow the enabled interfaces.
    pub(super) fn sync_history(&mut self) {
        let names: Vec<&str> = self.wans.keys().map(String::as_str).collect();
        self.history.set_interfaces(&names);
    }
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| {
        let mut out = String::from("{\"ok\":false,\"error\":");
        mwan_core::history::json_string(&mut out, &format!("cannot encode: {e}"));
        out + "}"
    })
}

impl http::Api for Daemon {
    fn status_json(&mut self) -> String {
        match self.handle_request(Request::Status) {
            Response::Status(s) => json(&s),
            other => json(&other),
        }
    }

    fn explain_json(&mut self) -> String {
        match self.handle_request(Request::Explain { policy: None }) {
            Response::Explain(v) => json(&serde_json::json!({ "explain": v })),
            other => json(&other),
        }
    }

    fn history_json(&mut self, since: u64) -> String {
        self.history.json_since(since)
    }

    fn metrics_text(&mut self) -> String {
        let status = self.status(now_ms());
        let history = &self.history;
        http::metrics(&status, &|name| {
            history
                .wans()
                .iter()
                .find(|w| w.name() == name)
                .map_or(0, |w| w.transitions())
        })
    }

    fn control(&mut self, request: Request) -> Result<String, String> {
        match self.handle_request(request) {
            Response::Done { message } => Ok(message),
            Response::Error { message } => Err(message),
            _ => Ok("done".into()),
        }
    }
}
