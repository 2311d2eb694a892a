//! The dashboard inside the loop (`--http`, docs/dashboard.md; cargo
//! feature `http`): the listener's events and timer and the `http::Api`
//! over the same handlers the control socket uses. The history it serves
//! is recorded in every build (`history.rs`).

use super::{Daemon, DaemonError};
use crate::clock::now_ms;
use crate::http::{self, server::Server, Access};
use mio::{Registry, Token};
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
        let (history, wans) = (&self.history, &self.wans);
        http::metrics(&status, &|name| {
            let (probes_sent, probes_lost) = wans.get(name).map_or((0, 0), |w| w.probes());
            http::WanCounters {
                transitions: history
                    .wans()
                    .iter()
                    .find(|w| w.name() == name)
                    .map_or(0, |w| w.transitions()),
                probes_sent,
                probes_lost,
            }
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
