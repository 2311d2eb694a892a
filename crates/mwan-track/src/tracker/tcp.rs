//! TCP connect (`nping-tcp`): a new non-blocking socket per probe, kept in
//! the probe's slot; the handshake completing is the answer. HTTP probes
//! start the same way (`connect`, `established`).

use super::probes::{Outgoing, Probes, SLOTS};
use super::socket;
use super::{ProbeMethod, TOKEN_SLOT};
use crate::sys;
use mio::net::TcpStream;
use mio::{Interest, Token};
use mwan_proto::track::ProbeOutcome;
use socket2::{Protocol, SockAddr, Type};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

/// A probe's connection, kept in its slot until the probe ends.
pub(super) struct Conn {
    pub(super) stream: TcpStream,
    connected: bool,
    /// HTTP: bytes of the request written so far.
    pub(super) written: usize,
    /// HTTP: the start of the answer, enough for the status line.
    pub(super) head: [u8; 64],
    pub(super) head_len: usize,
}

/// The slot whose connection has `token`.
pub(super) fn slot_of(token: Token) -> Option<usize> {
    token.0.checked_sub(TOKEN_SLOT).filter(|&si| si < SLOTS)
}

/// Starts connecting `probe` (routed through the WAN like every probe
/// socket) and keeps the connection in its slot.
pub(super) fn connect(probes: &mut Probes, probe: Outgoing) -> io::Result<()> {
    let addr = probes.target_addr(probe.target)?;
    let v6 = addr.is_ipv6();
    let s = socket::routed_socket(probes, v6, Type::STREAM, Protocol::TCP)?;
    let port = probes.config.targets[probe.target].port;
    match s.connect(&SockAddr::from(SocketAddr::new(addr, port))) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let mut stream = TcpStream::from_std(s.into());
    probes.poll.registry().register(
        &mut stream,
        Token(TOKEN_SLOT + probe.slot),
        Interest::READABLE | Interest::WRITABLE,
    )?;
    probes.set_conn(
        probe.slot,
        Conn {
            stream,
            connected: false,
            written: 0,
            head: [0; 64],
            head_len: 0,
        },
    );
    Ok(())
}

/// Whether the probe in slot `si` is connected. A connect that failed ends
/// the probe here (refused, unreachable, ...), so `false` means "still
/// connecting, or over".
pub(super) fn established(probes: &mut Probes, si: usize) -> bool {
    let v6 = probes.target_addrs[probes.target_of(si)].is_some_and(|a| a.is_ipv6());
    let Some(conn) = probes.conn_mut(si) else {
        return false;
    };
    if conn.connected {
        return true;
    }
    let outcome = match sys::take_socket_error(conn.stream.as_raw_fd()) {
        0 => match conn.stream.peer_addr() {
            Ok(_) => None,
            Err(_) => return false, // still connecting (spurious wakeup)
        },
        libc::ECONNREFUSED => Some(ProbeOutcome::Refused),
        // connect(2) reports ICMP errors as errno; map back to the
        // ICMP type/code that causes each on Linux.
        libc::EHOSTUNREACH => Some(ProbeOutcome::Unreachable {
            icmp_type: if v6 { 1 } else { 3 },
            icmp_code: if v6 { 3 } else { 1 },
        }),
        libc::ENETUNREACH => Some(ProbeOutcome::Unreachable {
            icmp_type: if v6 { 1 } else { 3 },
            icmp_code: 0,
        }),
        libc::ETIMEDOUT => Some(ProbeOutcome::Timeout),
        e => Some(ProbeOutcome::SendError { errno: e }),
    };
    match outcome {
        Some(o) => {
            probes.finish(si, o);
            false
        }
        None => {
            conn.connected = true;
            true
        }
    }
}

pub(super) struct Tcp;

impl ProbeMethod for Tcp {
    fn transmit(&mut self, probes: &mut Probes, probe: Outgoing) -> io::Result<()> {
        connect(probes, probe)
    }

    fn on_readable(&mut self, probes: &mut Probes, token: Token, _errored: bool) {
        let Some(si) = slot_of(token) else {
            return;
        };
        let now = sys::monotonic_us();
        if established(probes, si) {
            probes.reply(si, now, None);
        }
    }
}
