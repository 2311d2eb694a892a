//! UDP (`nping-udp`): one connected socket per target with `IP_RECVERR`.
//! Probes carry our cookie and sequence; an echo of them matches exactly,
//! any other datagram goes to that target's oldest probe (nping counts
//! those too), and an ICMP port unreachable means the host is up. DNS
//! probes use the same sockets ([`TargetSockets`]).

use super::probes::{Outgoing, Probes};
use super::socket::{self, OpenFailure, RX_SLOT};
use super::{ProbeMethod, TOKEN_TARGET};
use crate::args::Args;
use crate::packet::COOKIE_LEN;
use crate::sys;
use mio::net::UdpSocket;
use mio::Token;
use mwan_proto::track::ProbeOutcome;
use socket2::{Protocol, SockAddr, Type};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

/// Called with each datagram read: the probes, the target's index, the
/// datagram and the monotonic time it was read.
pub(super) type AnswerFn<'a> = dyn FnMut(&mut Probes, usize, &[u8], u64) + 'a;

/// One connected UDP socket per target (token `TOKEN_TARGET + target`),
/// and the buffer answers are read into.
pub(super) struct TargetSockets {
    sockets: Vec<Option<UdpSocket>>,
    rx: Vec<u8>,
}

impl TargetSockets {
    pub(super) fn new(targets: usize) -> TargetSockets {
        TargetSockets {
            sockets: (0..targets).map(|_| None).collect(),
            rx: vec![0; RX_SLOT],
        }
    }

    /// The target whose socket has `token`.
    fn target_of(&self, token: Token) -> Option<usize> {
        token
            .0
            .checked_sub(TOKEN_TARGET)
            .filter(|&t| t < self.sockets.len())
    }

    fn open_one(probes: &Probes, t: usize) -> io::Result<UdpSocket> {
        let addr = probes.target_addr(t)?;
        let v6 = addr.is_ipv6();
        let s = socket::routed_socket(probes, v6, Type::DGRAM, Protocol::UDP)?;
        sys::enable_recverr(s.as_raw_fd(), v6)?;
        let port = probes.config.targets[t].port;
        s.connect(&SockAddr::from(SocketAddr::new(addr, port)))?;
        Ok(UdpSocket::from_std(s.into()))
    }

    pub(super) fn open(&mut self, probes: &Probes) -> Result<(), OpenFailure> {
        let registry = probes.poll.registry();
        for t in 0..self.sockets.len() {
            if let Some(old) = self.sockets[t].take() {
                socket::deregister(registry, old.as_raw_fd());
            }
            match Self::open_one(probes, t) {
                Ok(s) => {
                    let token = Token(TOKEN_TARGET + t);
                    socket::register(registry, s.as_raw_fd(), token, "a UDP socket")?;
                    self.sockets[t] = Some(s);
                }
                Err(e) if socket::tolerable(&e) => {}
                Err(e) => return Err(("a UDP socket", e)),
            }
        }
        Ok(())
    }

    pub(super) fn missing(&self) -> bool {
        self.sockets.iter().any(Option::is_none)
    }

    /// Sends `datagram` to `target` on its socket.
    pub(super) fn send(&self, probes: &Probes, target: usize, datagram: &[u8]) -> io::Result<()> {
        probes.target_addr(target)?;
        let sock = self.sockets[target]
            .as_ref()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EADDRNOTAVAIL))?;
        sock.send(datagram).map(drop)
    }

    /// Handles the socket with `token`: ICMP errors from its error queue
    /// first (signalled by EPOLLERR: `errored`), each ending the probe
    /// `quoted_seq` finds in the quoted datagram (else the target's oldest),
    /// then every datagram to `answer(probes, target, datagram, now)`.
    pub(super) fn on_readable(
        &mut self,
        probes: &mut Probes,
        token: Token,
        errored: bool,
        quoted_seq: &dyn Fn(&[u8]) -> Option<u16>,
        answer: &mut AnswerFn<'_>,
    ) {
        let Some(t) = self.target_of(token) else {
            return;
        };
        let Some(fd) = self.sockets[t].as_ref().map(|s| s.as_raw_fd()) else {
            return;
        };
        let v6 = probes.target_addrs[t].is_some_and(|a| a.is_ipv6());
        while let Some(err) = errored
            .then(|| sys::recv_errqueue(fd, &mut self.rx).ok())
            .flatten()
        {
            let quoted = &self.rx[..err.len.min(self.rx.len())];
            let by_seq = quoted_seq(quoted)
                .and_then(|seq| probes.target_addrs[t].and_then(|a| probes.slot_for(seq, a)));
            let Some(si) = by_seq.or_else(|| probes.oldest_for(t)) else {
                continue;
            };
            let outcome = match err.icmp {
                Some((3, 3)) if !v6 => ProbeOutcome::Refused,
                Some((1, 4)) if v6 => ProbeOutcome::Refused,
                Some((icmp_type, icmp_code)) => ProbeOutcome::Unreachable {
                    icmp_type,
                    icmp_code,
                },
                None => ProbeOutcome::SendError { errno: err.errno },
            };
            probes.finish(si, outcome);
        }
        // Edge-triggered: read until WouldBlock; a pending error is returned
        // once by recv (its details were taken from the error queue above).
        let mut errors = 0;
        loop {
            let n = match self.sockets[t].as_ref().map(|s| s.recv(&mut self.rx)) {
                Some(Ok(n)) => n,
                Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => return,
                Some(Err(_)) if errors < 64 => {
                    errors += 1;
                    continue;
                }
                Some(Err(_)) | None => return,
            };
            answer(probes, t, &self.rx[..n], sys::monotonic_us());
        }
    }
}

pub(super) struct Udp {
    sockets: TargetSockets,
    /// Starts every datagram, followed by the probe's sequence.
    cookie: [u8; COOKIE_LEN],
    tx: Vec<u8>,
}

impl Udp {
    pub(super) fn new(config: &Args) -> Udp {
        let mut cookie = [0u8; COOKIE_LEN];
        sys::random_bytes(&mut cookie);
        Udp {
            sockets: TargetSockets::new(config.targets.len()),
            cookie,
            tx: vec![0; config.size.max(COOKIE_LEN) + 64],
        }
    }

    /// The sequence after our cookie at the start of `datagram`.
    fn seq_after_cookie(cookie: &[u8; COOKIE_LEN], datagram: &[u8]) -> Option<u16> {
        match datagram.get(..COOKIE_LEN + 2) {
            Some(p) if p[..COOKIE_LEN] == cookie[..] => {
                Some(u16::from_be_bytes([p[COOKIE_LEN], p[COOKIE_LEN + 1]]))
            }
            _ => None,
        }
    }
}

impl ProbeMethod for Udp {
    fn open(&mut self, probes: &mut Probes) -> Result<(), OpenFailure> {
        self.sockets.open(probes)
    }

    fn missing(&self, _probes: &Probes) -> bool {
        self.sockets.missing()
    }

    fn transmit(&mut self, probes: &mut Probes, probe: Outgoing) -> io::Result<()> {
        let len = probes.config.size.max(COOKIE_LEN + 2);
        self.tx[..COOKIE_LEN].copy_from_slice(&self.cookie);
        self.tx[COOKIE_LEN..COOKIE_LEN + 2].copy_from_slice(&probe.seq.to_be_bytes());
        self.tx[COOKIE_LEN + 2..len].fill(0);
        self.sockets.send(probes, probe.target, &self.tx[..len])
    }

    fn on_readable(&mut self, probes: &mut Probes, token: Token, errored: bool) {
        let cookie = &self.cookie;
        self.sockets.on_readable(
            probes,
            token,
            errored,
            &|quoted| Self::seq_after_cookie(cookie, quoted),
            &mut |probes, t, datagram, now| {
                let si = match Self::seq_after_cookie(cookie, datagram) {
                    Some(seq) => probes.target_addrs[t].and_then(|a| probes.slot_for(seq, a)),
                    None => probes.oldest_for(t),
                };
                if let Some(si) = si {
                    probes.reply(si, now, None);
                }
            },
        );
    }
}
