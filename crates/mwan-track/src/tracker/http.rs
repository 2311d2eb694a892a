//! HTTP (`httping`): a TCP connect per probe (`tcp.rs`), then `GET PATH
//! HTTP/1.0`; the status line is the answer (2xx/3xx good, as httping).

use super::probes::{Outgoing, Probes};
use super::socket::errno_of;
use super::tcp::{self, Conn};
use super::ProbeMethod;
use crate::args::Args;
use crate::packet;
use crate::sys;
use mio::Token;
use mwan_proto::track::ProbeOutcome;
use std::io::{self, Read, Write};
use std::net::IpAddr;

pub(super) struct Http {
    /// Each target's request, built once at start.
    requests: Vec<Vec<u8>>,
}

impl Http {
    pub(super) fn new(config: &Args, target_addrs: &[Option<IpAddr>]) -> Http {
        let requests = config
            .targets
            .iter()
            .zip(target_addrs)
            .map(|(t, addr)| {
                let host = match addr {
                    Some(IpAddr::V6(v6)) => format!("[{v6}]"),
                    Some(v4) => v4.to_string(),
                    None => String::new(),
                };
                let host = if t.port == 80 { host } else { format!("{host}:{}", t.port) };
                format!("GET {} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: mwan-track\r\nConnection: close\r\n\r\n", t.path).into_bytes()
            })
            .collect();
        Http { requests }
    }
}

/// Writes what is left of `request`, then reads until the status line is
/// complete. `None`: wait for the socket again; `Some(Ok)`: a good status;
/// `Some(Err)`: the probe's outcome.
fn exchange(conn: &mut Conn, request: &[u8]) -> Option<Result<(), ProbeOutcome>> {
    while conn.written < request.len() {
        match conn.stream.write(&request[conn.written..]) {
            Ok(n) => conn.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let errno = errno_of(&e);
                return Some(Err(if errno == libc::ECONNRESET {
                    ProbeOutcome::Refused
                } else {
                    ProbeOutcome::SendError { errno }
                }));
            }
        }
    }
    loop {
        if conn.head_len == conn.head.len() {
            return Some(Err(ProbeOutcome::BadAnswer));
        }
        match conn.stream.read(&mut conn.head[conn.head_len..]) {
            Ok(0) => return Some(Err(ProbeOutcome::BadAnswer)),
            Ok(n) => {
                conn.head_len += n;
                match packet::http_status(&conn.head[..conn.head_len]) {
                    None => {}
                    Some(Ok(code)) if (200..400).contains(&code) => return Some(Ok(())),
                    Some(_) => return Some(Err(ProbeOutcome::BadAnswer)),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let errno = errno_of(&e);
                return Some(Err(ProbeOutcome::SendError { errno }));
            }
        }
    }
}

impl ProbeMethod for Http {
    fn transmit(&mut self, probes: &mut Probes, probe: Outgoing) -> io::Result<()> {
        tcp::connect(probes, probe)
    }

    fn on_readable(&mut self, probes: &mut Probes, token: Token, _errored: bool) {
        let Some(si) = tcp::slot_of(token) else {
            return;
        };
        let now = sys::monotonic_us();
        if !tcp::established(probes, si) {
            return;
        }
        let request = &self.requests[probes.target_of(si)];
        let Some(conn) = probes.conn_mut(si) else {
            return;
        };
        match exchange(conn, request) {
            None => {}
            Some(Ok(())) => probes.reply(si, now, None),
            Some(Err(outcome)) => probes.finish(si, outcome),
        }
    }
}
