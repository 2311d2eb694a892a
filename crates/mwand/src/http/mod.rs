//! The dashboard's HTTP/1.1 side without I/O: an incremental request
//! reader with bounded sizes and a deadline, the routing of the JSON API
//! (docs/dashboard.md) with its token rule, the responses' headers, the
//! embedded page, and the Prometheus text for `/metrics`. The event loop
//! owns the sockets; it feeds bytes in and writes the bytes it gets back.
//! One request per connection (`Connection: close`): a poll every second
//! or two does not need keep-alive, and it bounds what a client can hold.

use mwan_core::Millis;
use mwan_proto::control::Request as Control;
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

mod assets;
mod json;
mod metrics;
mod request;
mod response;
mod routing;

/// The fuzz target reads bodies alone too (docs/fuzzing.md).
#[cfg(fuzzing)]
pub use json::parse_object;
pub use metrics::{metrics, WanCounters};
pub use request::{Method, Progress, Request, RequestReader};
pub use response::{asset_response, json_response, refusal_response, response};
pub use routing::{check_bind, route, Access, Route};

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

#[cfg(test)]
mod tests;
