//! ICMP echo (`ping`, `nping-icmp`): one raw socket per target family, or
//! a ping socket without CAP_NET_RAW. Replies are matched by identifier
//! (raw sockets), sequence, cookie and source; errors by what they quote.

use super::probes::{Outgoing, Probes};
use super::socket::{self, OpenFailure, RX_SLOT};
use super::{ProbeMethod, TOKEN_ICMP4, TOKEN_ICMP6};
use crate::args::Args;
use crate::packet::{self, IcmpEvent, COOKIE_LEN};
use crate::sys::{self, RECV_BATCH};
use mio::Token;
use mwan_proto::track::ProbeOutcome;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::os::fd::{AsRawFd, RawFd};

struct IcmpSocket {
    sock: Socket,
    /// Raw socket (we choose the identifier, get the IP header on v4) or
    /// ICMP datagram "ping" socket (kernel chooses the identifier).
    raw: bool,
}

pub(super) struct Icmp {
    v4: Option<IcmpSocket>,
    v6: Option<IcmpSocket>,
    /// Echo identifier on raw sockets (random per tracker).
    id: u16,
    /// Starts every payload, so replies to another tracker's probes with
    /// the same identifier and sequence are told apart.
    cookie: [u8; COOKIE_LEN],
    tx: Vec<u8>,
    /// [`RECV_BATCH`] datagrams of [`RX_SLOT`] bytes.
    rx: Vec<u8>,
}

impl Icmp {
    pub(super) fn new(config: &Args) -> Icmp {
        let mut rand = [0u8; COOKIE_LEN + 2];
        sys::random_bytes(&mut rand);
        let mut cookie = [0u8; COOKIE_LEN];
        cookie.copy_from_slice(&rand[..COOKIE_LEN]);
        Icmp {
            v4: None,
            v6: None,
            id: u16::from_le_bytes([rand[COOKIE_LEN], rand[COOKIE_LEN + 1]]),
            cookie,
            tx: vec![0; config.size.max(COOKIE_LEN) + 64],
            rx: vec![0; RX_SLOT * RECV_BATCH],
        }
    }

    fn socket(&self, v6: bool) -> &Option<IcmpSocket> {
        if v6 {
            &self.v6
        } else {
            &self.v4
        }
    }

    fn socket_mut(&mut self, v6: bool) -> &mut Option<IcmpSocket> {
        if v6 {
            &mut self.v6
        } else {
            &mut self.v4
        }
    }

    fn read(&mut self, probes: &mut Probes, v6: bool, errored: bool) {
        let Some(sock) = self.socket(v6) else {
            return;
        };
        let fd = sock.sock.as_raw_fd();
        let raw = sock.raw;
        if !raw && errored {
            drain_ping_errors(probes, fd, &mut self.rx, &self.cookie);
        }
        let mut got = [sys::Received::default(); RECV_BATCH];
        let mut errors = 0;
        // Edge-triggered: read until a batch comes back short (drained).
        while let Some(n) = socket::next_batch(fd, &mut self.rx, &mut got, &mut errors, |rx| {
            if !raw {
                drain_ping_errors(probes, fd, rx, &self.cookie)
            }
        }) {
            let now = sys::monotonic_us();
            for (i, g) in got[..n].iter().enumerate() {
                let buf = &self.rx[i * RX_SLOT..][..g.len.min(RX_SLOT)];
                let ev = if v6 {
                    packet::parse_icmp6(buf, &self.cookie)
                } else {
                    packet::parse_icmp4(buf, raw, &self.cookie)
                };
                match ev {
                    Some(IcmpEvent::Reply { id, seq }) if !raw || id == self.id => {
                        if let Some(si) = g.from.and_then(|a| probes.slot_for(seq, a)) {
                            probes.reply(si, now, g.rx_realtime_us);
                        }
                    }
                    Some(IcmpEvent::Error {
                        icmp_type,
                        icmp_code,
                        dst,
                        id,
                        seq,
                    }) if !raw || id == self.id => {
                        if let Some(si) = probes.slot_for(seq, dst) {
                            probes.finish(
                                si,
                                ProbeOutcome::Unreachable {
                                    icmp_type,
                                    icmp_code,
                                },
                            );
                        }
                    }
                    _ => {}
                }
            }
            if n < RECV_BATCH {
                return;
            }
        }
    }
}

/// Ping sockets report ICMP errors through the error queue.
fn drain_ping_errors(probes: &mut Probes, fd: RawFd, rx: &mut [u8], cookie: &[u8; COOKIE_LEN]) {
    while let Ok(err) = sys::recv_errqueue(fd, rx) {
        let Some(seq) = packet::parse_own_echo(&rx[..err.len.min(rx.len())], cookie) else {
            continue;
        };
        if let Some(si) = probes.slot_for_seq(seq) {
            let outcome = match err.icmp {
                Some((icmp_type, icmp_code)) => ProbeOutcome::Unreachable {
                    icmp_type,
                    icmp_code,
                },
                None => ProbeOutcome::SendError { errno: err.errno },
            };
            probes.finish(si, outcome);
        }
    }
}

/// A raw ICMP socket, or a ping socket when raw ones are not allowed, with
/// its filters, error reporting and receive stamps set and routed.
fn open_socket(probes: &Probes, v6: bool) -> Result<IcmpSocket, OpenFailure> {
    let (domain, proto) = if v6 {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    let what = if v6 {
        "the ICMPv6 socket"
    } else {
        "the ICMP socket"
    };
    let (sock, raw) = match Socket::new(domain, Type::RAW, Some(proto)) {
        Ok(s) => (s, true),
        // Without CAP_NET_RAW, fall back to a ping socket where
        // net.ipv4.ping_group_range admits our group.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES)) => {
            match Socket::new(domain, Type::DGRAM, Some(proto)) {
                Ok(s) => (s, false),
                Err(_) => return Err((what, e)),
            }
        }
        Err(e) => return Err((what, e)),
    };
    let fd = sock.as_raw_fd();
    let opt = |r: io::Result<()>| r.map_err(|e| (what, e));
    if raw {
        if v6 {
            // ICMP6_FILTER: pass echo replies and errors only (bit set = block).
            let mut filter = [u32::MAX; 8];
            for t in [1u8, 2, 3, 4, 129] {
                filter[usize::from(t >> 5)] &= !(1 << (t & 31));
            }
            let mut bytes = [0u8; 32];
            for (b, w) in bytes.chunks_exact_mut(4).zip(filter) {
                b.copy_from_slice(&w.to_ne_bytes());
            }
            opt(sys::set_bytes_opt(fd, libc::IPPROTO_ICMPV6, 1, &bytes))?;
        } else {
            // ICMP_FILTER: pass echo reply, unreachable, time exceeded, parameter problem.
            let pass: u32 = (1 << 0) | (1 << 3) | (1 << 11) | (1 << 12);
            opt(sys::set_bytes_opt(
                fd,
                libc::SOL_RAW,
                1,
                &(!pass).to_ne_bytes(),
            ))?;
        }
    } else {
        opt(sys::enable_recverr(fd, v6))?;
    }
    opt(sys::enable_rx_timestamps(fd))?;
    opt(socket::route_socket(probes, &sock, v6))?;
    Ok(IcmpSocket { sock, raw })
}

impl ProbeMethod for Icmp {
    fn open(&mut self, probes: &mut Probes) -> Result<(), OpenFailure> {
        for v6 in [false, true] {
            if !probes.has_family(v6) {
                continue;
            }
            let registry = probes.poll.registry();
            if let Some(old) = self.socket_mut(v6).take() {
                socket::deregister(registry, old.sock.as_raw_fd());
            }
            let s = match open_socket(probes, v6) {
                Ok(s) => s,
                Err((_, e)) if socket::tolerable(&e) => continue,
                Err(e) => return Err(e),
            };
            let token = if v6 { TOKEN_ICMP6 } else { TOKEN_ICMP4 };
            socket::register(registry, s.sock.as_raw_fd(), token, "the ICMP socket")?;
            *self.socket_mut(v6) = Some(s);
        }
        Ok(())
    }

    fn missing(&self, probes: &Probes) -> bool {
        (probes.has_family(false) && self.v4.is_none())
            || (probes.has_family(true) && self.v6.is_none())
    }

    fn transmit(&mut self, probes: &mut Probes, probe: Outgoing) -> io::Result<()> {
        let addr = probes.target_addr(probe.target)?;
        let fd = self
            .socket(addr.is_ipv6())
            .as_ref()
            .map(|s| s.sock.as_raw_fd())
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EADDRNOTAVAIL))?;
        let len = packet::build_echo(
            &mut self.tx,
            addr.is_ipv6(),
            self.id,
            probe.seq,
            &self.cookie,
            probes.config.size,
        );
        sys::send_to(fd, &self.tx[..len], addr).map(drop)
    }

    fn on_readable(&mut self, probes: &mut Probes, token: Token, errored: bool) {
        match token {
            TOKEN_ICMP4 => self.read(probes, false, errored),
            TOKEN_ICMP6 => self.read(probes, true, errored),
            _ => {}
        }
    }

    fn needs_raw(&self) -> bool {
        [&self.v4, &self.v6]
            .into_iter()
            .any(|s| s.as_ref().is_some_and(|s| s.raw))
    }

    fn icmp_sockets(&self) -> [&'static str; 2] {
        let kind = |s: &Option<IcmpSocket>| match s {
            Some(IcmpSocket { raw: true, .. }) => "raw",
            Some(_) => "datagram",
            None => "-",
        };
        [kind(&self.v4), kind(&self.v6)]
    }
}
