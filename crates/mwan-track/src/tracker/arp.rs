//! ARP (`arping`, `nping-arp`): one packet socket bound to the device; a
//! broadcast who-has from our IPv4 source, answered by the target's reply
//! (which carries no sequence: it goes to that target's oldest probe).

use super::probes::{Outgoing, Probes};
use super::socket::{self, OpenFailure, StartError, RX_SLOT};
use super::{ProbeMethod, TOKEN_ARP};
use crate::args::Args;
use crate::packet;
use crate::sys::{self, RECV_BATCH};
use mio::Token;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};

/// ARP's ethertype, in host order.
const ETH_P_ARP: u16 = libc::ETH_P_ARP as u16;

pub(super) struct Arp {
    socket: Option<OwnedFd>,
    /// The device's Ethernet address (the request's sender).
    mac: [u8; 6],
    /// [`RECV_BATCH`] datagrams of [`RX_SLOT`] bytes.
    rx: Vec<u8>,
}

/// Replaces `gateway` targets (no address yet) by `--gateway`, or by the
/// main table's IPv4 default route through the device.
pub(super) fn resolve_gateway(
    config: &Args,
    target_addrs: &mut [Option<IpAddr>],
) -> Result<(), StartError> {
    for addr in target_addrs.iter_mut().filter(|t| t.is_none()) {
        *addr = config
            .gateway
            .or_else(|| sys::default_gateway_v4(&config.device).map(IpAddr::V4));
        if addr.is_none() {
            return Err(StartError::Device(format!(
                "--target gateway: no --gateway given and no IPv4 default route through {} in the main table",
                config.device
            )));
        }
    }
    Ok(())
}

impl Arp {
    pub(super) fn new(config: &Args, device_query: &sys::DeviceQuery) -> Result<Arp, StartError> {
        let mac = device_query.hw_addr(&config.device).ok_or_else(|| {
            StartError::Device(format!(
                "ARP needs an Ethernet device; {} is missing or has no Ethernet address",
                config.device
            ))
        })?;
        Ok(Arp {
            socket: None,
            mac,
            rx: vec![0; RX_SLOT * RECV_BATCH],
        })
    }
}

impl ProbeMethod for Arp {
    fn open(&mut self, probes: &mut Probes) -> Result<(), OpenFailure> {
        let registry = probes.poll.registry();
        if let Some(old) = self.socket.take() {
            socket::deregister(registry, old.as_raw_fd());
        }
        let opened = sys::packet_socket(ETH_P_ARP).and_then(|fd| {
            let ifindex = probes
                .binding
                .ifindex
                .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))?;
            sys::bind_packet_socket(fd.as_raw_fd(), ETH_P_ARP, ifindex)?;
            Ok(fd)
        });
        match opened {
            Ok(fd) => {
                socket::register(registry, fd.as_raw_fd(), TOKEN_ARP, "the ARP socket")?;
                self.socket = Some(fd);
            }
            Err(e) if socket::tolerable(&e) => {}
            Err(e) => return Err(("the ARP (packet) socket", e)),
        }
        Ok(())
    }

    fn missing(&self, _probes: &Probes) -> bool {
        self.socket.is_none()
    }

    fn transmit(&mut self, probes: &mut Probes, probe: Outgoing) -> io::Result<()> {
        let addr = probes.target_addr(probe.target)?;
        let fd = self
            .socket
            .as_ref()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))?;
        let (IpAddr::V4(dst), Some(src)) = (addr, probes.binding.src4) else {
            return Err(io::Error::from_raw_os_error(libc::EADDRNOTAVAIL));
        };
        let request = packet::build_arp_request(&self.mac, src, dst);
        let ifindex = probes.binding.ifindex.unwrap_or(0);
        sys::send_packet(fd.as_raw_fd(), &request, ETH_P_ARP, ifindex, [0xff; 6])
    }

    fn on_readable(&mut self, probes: &mut Probes, token: Token, _errored: bool) {
        if token != TOKEN_ARP {
            return;
        }
        let Some(fd) = self.socket.as_ref().map(|f| f.as_raw_fd()) else {
            return;
        };
        let mut got = [sys::Received::default(); RECV_BATCH];
        let mut errors = 0;
        // A packet socket reports ENETDOWN once when the link goes: skipped.
        while let Some(n) = socket::next_batch(fd, &mut self.rx, &mut got, &mut errors, |_| {}) {
            let now = sys::monotonic_us();
            for (i, g) in got[..n].iter().enumerate() {
                let Some(us) = probes.binding.src4 else {
                    continue;
                };
                let Some(from) =
                    packet::parse_arp_reply(&self.rx[i * RX_SLOT..][..g.len.min(RX_SLOT)], us)
                else {
                    continue;
                };
                let from = IpAddr::V4(from);
                if let Some(t) = probes.target_addrs.iter().position(|&a| a == Some(from)) {
                    if let Some(si) = probes.oldest_for(t) {
                        probes.reply(si, now, g.rx_realtime_us);
                    }
                }
            }
            if n < RECV_BATCH {
                return;
            }
        }
    }

    fn needs_raw(&self) -> bool {
        self.socket.is_some()
    }

    fn needs_ipv4_source(&self) -> bool {
        true
    }
}
