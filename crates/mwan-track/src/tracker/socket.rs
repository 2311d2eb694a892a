//! Socket setup shared by the probe methods: routing a socket through the
//! WAN (mark, device, source, TTL), registering it with the loop, reading
//! datagrams in batches, and the start-up error.

use super::probes::Probes;
use crate::sys::{self, RECV_BATCH};
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;

/// Receive buffer per datagram (probe answers are small; an ICMP error
/// quotes at most 576 bytes on IPv4, 1280 on IPv6).
pub(super) const RX_SLOT: usize = 2048;

/// A socket that could not be opened: what it was for, and why.
pub(super) type OpenFailure = (&'static str, io::Error);

#[derive(Debug)]
pub enum StartError {
    Socket { what: &'static str, err: io::Error },
    Device(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Socket { what, err } => {
                write!(f, "cannot open {what}: {err}")?;
                if err.raw_os_error() == Some(libc::EPERM)
                    || err.raw_os_error() == Some(libc::EACCES)
                {
                    f.write_str(" (needs CAP_NET_RAW for raw/packet sockets, CAP_NET_ADMIN for --mark; see docs/tracker.md)")?;
                }
                Ok(())
            }
            StartError::Device(m) => f.write_str(m),
        }
    }
}

pub(super) fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// An open that fails only because the device or its address is missing
/// now: not fatal, probes report send errors until a refresh re-opens.
pub(super) fn tolerable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EADDRNOTAVAIL | libc::ENODEV | libc::EINVAL)
    )
}

/// A new non-blocking socket of the family (IPv6 if `v6`), routed through
/// the WAN ([`route_socket`]).
pub(super) fn routed_socket(
    probes: &Probes,
    v6: bool,
    ty: Type,
    protocol: Protocol,
) -> io::Result<Socket> {
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    let s = Socket::new(domain, ty, Some(protocol))?;
    route_socket(probes, &s, v6)?;
    Ok(s)
}

/// Applies mark, device, source address and TTL to a new socket and makes
/// it non-blocking, so the probe leaves through the WAN (docs/tracker.md).
pub(super) fn route_socket(probes: &Probes, s: &Socket, v6: bool) -> io::Result<()> {
    let config = &probes.config;
    s.set_nonblocking(true)?;
    if let Some(m) = config.mark {
        s.set_mark(m)?;
    }
    s.bind_device(Some(config.device.as_bytes()))?;
    let src = if v6 {
        probes.binding.src6.map(IpAddr::V6)
    } else {
        probes.binding.src4.map(IpAddr::V4)
    };
    match src {
        Some(ip) => s.bind(&SockAddr::from(SocketAddr::new(ip, 0)))?,
        None => return Err(io::Error::from_raw_os_error(libc::EADDRNOTAVAIL)),
    }
    if v6 {
        s.set_unicast_hops_v6(config.max_ttl)
    } else {
        s.set_ttl_v4(config.max_ttl)
    }
}

/// Registers a long-lived socket for readable events under `token`.
pub(super) fn register(
    registry: &Registry,
    fd: RawFd,
    token: Token,
    what: &'static str,
) -> Result<(), OpenFailure> {
    registry
        .register(&mut SourceFd(&fd), token, Interest::READABLE)
        .map_err(|e| (what, e))
}

/// Deregisters a socket that is being replaced (it is closed right after,
/// so a failure is only logged).
pub(super) fn deregister(registry: &Registry, fd: RawFd) {
    if let Err(e) = registry.deregister(&mut SourceFd(&fd)) {
        eprintln!("mwan-track: deregister: {e}");
    }
}

/// Reads the next batch from `fd` into `rx` (datagram i at `i * RX_SLOT`).
/// `None` when drained, or after too many errors. A pending socket error
/// is returned once by recv (for ping sockets its details are in the error
/// queue, read by `on_error`), so errors are skipped a bounded number of
/// times.
pub(super) fn next_batch(
    fd: RawFd,
    rx: &mut [u8],
    got: &mut [sys::Received; RECV_BATCH],
    errors: &mut u32,
    mut on_error: impl FnMut(&mut [u8]),
) -> Option<usize> {
    loop {
        match sys::recv_batch(fd, rx, RX_SLOT, got) {
            Ok(n) => return Some(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(_) if *errors < 64 => {
                *errors += 1;
                on_error(rx);
            }
            Err(_) => return None,
        }
    }
}
