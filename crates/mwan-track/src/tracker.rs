//! The event loop: one mio poll, one deadline table, a fixed table of
//! in-flight probe slots, method-specific sockets.

use crate::args::{Args, Budget, Method};
use crate::packet::{self, DnsVerdict, IcmpEvent, COOKIE_LEN};
use crate::report::{self, Backlog, Controller, Hello, Record};
use crate::schedule::Schedule;
use crate::sys::{self, RECV_BATCH};
use crate::timers::Deadlines;
use mio::net::{TcpStream, UdpSocket};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use mwan_proto::track::{ControllerMessage, ProbeOutcome};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};

/// In-flight probe slots; a probe's slot is its sequence number modulo this
/// (a power of two dividing 2^16, so the mapping survives wrap-around).
const SLOTS: usize = 128;

const TIMER_SEND: usize = 0;
const TIMER_RECONNECT: usize = 1;
const TIMER_REFRESH: usize = 2;
const TIMER_PROBE: usize = 3;

const TOKEN_SIGNAL: Token = Token(0);
const TOKEN_CONTROLLER: Token = Token(1);
const TOKEN_ICMP4: Token = Token(2);
const TOKEN_ICMP6: Token = Token(3);
const TOKEN_ARP: Token = Token(4);
const TOKEN_SLOT: usize = 1000;
const TOKEN_TARGET: usize = 2000;

/// Receive buffer per datagram (probe answers are small; an ICMP error
/// quotes at most 576 bytes on IPv4, 1280 on IPv6).
const RX_SLOT: usize = 2048;

/// How often the device's address and ifindex are re-read.
const REFRESH_US: u64 = 5_000_000;

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

/// Per-probe TCP/HTTP connection state, kept in the probe's slot.
struct Conn {
    stream: TcpStream,
    connected: bool,
    written: usize,
    head: [u8; 64],
    head_len: usize,
}

#[derive(Default)]
struct Slot {
    active: bool,
    target: u16,
    seq: u16,
    sent_at_us: u64,
    /// CLOCK_REALTIME at send, paired with kernel receive timestamps.
    sent_realtime_us: u64,
    round: u64,
    conn: Option<Conn>,
    /// Already reported lost at the controller's timeout: the slot stays
    /// open until the `--timeout` cap, and only an answer is reported (a
    /// late reply).
    reported: bool,
}

struct IcmpSock {
    sock: Socket,
    /// Raw socket (we choose the identifier, get the IP header on v4) or
    /// ICMP datagram "ping" socket (kernel chooses the identifier).
    raw: bool,
}

/// Addresses and device facts the probes are bound to.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
struct Binding {
    ifindex: Option<u32>,
    src4: Option<Ipv4Addr>,
    src6: Option<Ipv6Addr>,
}

pub struct Tracker {
    a: Args,
    poll: Poll,
    timers: Deadlines,
    slots: Vec<Slot>,
    target_names: Vec<String>,
    target_addrs: Vec<Option<IpAddr>>,
    http_requests: Vec<Vec<u8>>,
    icmp4: Option<IcmpSock>,
    icmp6: Option<IcmpSock>,
    arp: Option<OwnedFd>,
    mac: [u8; 6],
    udp: Vec<Option<UdpSocket>>,
    binding: Binding,
    device_query: sys::DeviceQuery,
    icmp_id: u16,
    cookie: [u8; COOKIE_LEN],
    dns_key: u16,
    next_seq: u16,
    sample_seq: u64,
    // schedule
    schedule: Schedule,
    /// When a probe is reported lost (`--timeout`, then `SetTimeout`).
    timeout_us: u64,
    /// How long a probe's slot stays open for an answer: `--timeout`, or
    /// `timeout_us` if longer. Between the two, an answer is reported as a
    /// second sample (a reply) for a probe already reported lost.
    cap_us: u64,
    // output
    backlog: Backlog,
    controller: Option<Controller>,
    started_at_us: u64,
    line: Vec<u8>,
    tx: Vec<u8>,
    rx: Vec<u8>,
    trouble: Option<&'static str>,
    signal: OwnedFd,
    stop: bool,
}

fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// Bytes on the wire per probe, both directions, for --budget-bytes-day.
fn bytes_per_probe(m: Method, size: usize, v6: bool) -> u64 {
    let ip = if v6 { 40 } else { 20 };
    (match m {
        Method::Icmp => 2 * (ip + 8 + size.max(COOKIE_LEN)),
        Method::Arp => 2 * 60,
        Method::Tcp => 4 * (ip + 40),
        Method::Udp => 2 * (ip + 8 + size.max(10)),
        Method::Dns => 2 * (ip + 8 + 40) + 64,
        Method::Http => 10 * (ip + 32) + 600,
    }) as u64
}

/// The round interval a probe budget allows: never shorter than asked, long
/// enough that `probes_per_round` per round stay within the budget.
fn budgeted_interval_us(
    interval_us: u64,
    probes_per_round: u64,
    budget: Option<Budget>,
    bytes_per_probe: u64,
) -> u64 {
    let ppm = match budget {
        None => return interval_us,
        Some(Budget::ProbesPerMinute(p)) => u64::from(p),
        Some(Budget::BytesPerDay(b)) => (b / (bytes_per_probe * 1440)).max(1),
    };
    interval_us.max(probes_per_round * 60_000_000 / ppm.max(1))
}

impl Tracker {
    pub fn new(a: Args) -> Result<Tracker, StartError> {
        let sock_err = |what| move |err| StartError::Socket { what, err };
        let poll = Poll::new().map_err(sock_err("the event loop"))?;
        let signal = sys::termination_signalfd().map_err(sock_err("the signal fd"))?;
        poll.registry()
            .register(
                &mut SourceFd(&signal.as_raw_fd()),
                TOKEN_SIGNAL,
                Interest::READABLE,
            )
            .map_err(sock_err("the signal fd"))?;
        let mut rand = [0u8; COOKIE_LEN + 4];
        sys::random_bytes(&mut rand);
        let mut cookie = [0u8; COOKIE_LEN];
        cookie.copy_from_slice(&rand[..COOKIE_LEN]);
        let mut target_addrs: Vec<Option<IpAddr>> = a.targets.iter().map(|t| t.addr).collect();
        if a.method == Method::Arp {
            for addr in target_addrs.iter_mut().filter(|t| t.is_none()) {
                *addr = a
                    .gateway
                    .or_else(|| sys::default_gateway_v4(&a.device).map(IpAddr::V4));
                if addr.is_none() {
                    return Err(StartError::Device(format!(
                        "--target gateway: no --gateway given and no IPv4 default route through {} in the main table",
                        a.device
                    )));
                }
            }
        }
        let http_requests = a
            .targets
            .iter()
            .zip(&target_addrs)
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
        let now = sys::monotonic_us();
        // The shortest round the probe budget allows.
        let v6 = target_addrs.iter().flatten().any(|a| a.is_ipv6());
        let per_round = a.targets.len() as u64 * u64::from(a.count);
        let budget_floor_us = budgeted_interval_us(
            0,
            per_round,
            a.budget,
            bytes_per_probe(a.method, a.size, v6),
        );
        let controller = a
            .controller
            .clone()
            .map(|p| Controller::new(p, TOKEN_CONTROLLER));
        let mut t = Tracker {
            poll,
            timers: Deadlines::new(TIMER_PROBE + SLOTS),
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
            target_names: a.targets.iter().map(|t| t.text.clone()).collect(),
            target_addrs,
            http_requests,
            icmp4: None,
            icmp6: None,
            arp: None,
            mac: [0; 6],
            udp: (0..a.targets.len()).map(|_| None).collect(),
            binding: Binding::default(),
            device_query: sys::DeviceQuery::new().map_err(sock_err("the device query socket"))?,
            icmp_id: u16::from_le_bytes([rand[8], rand[9]]),
            cookie,
            dns_key: u16::from_le_bytes([rand[10], rand[11]]),
            next_seq: 0,
            sample_seq: 0,
            schedule: Schedule::new(
                now,
                a.interval_ms * 1000,
                a.targets.len(),
                a.count,
                budget_floor_us,
            ),
            timeout_us: a.timeout_ms * 1000,
            cap_us: a.timeout_ms * 1000,
            backlog: Backlog::new(a.backlog),
            controller,
            started_at_us: now,
            line: Vec::with_capacity(256),
            tx: vec![0; a.size.max(COOKIE_LEN) + 64 + a.dns_name.len()],
            rx: vec![0; RX_SLOT * RECV_BATCH],
            trouble: None,
            signal,
            stop: false,
            a,
        };
        if t.a.method == Method::Arp {
            t.mac = t.device_query.hw_addr(&t.a.device).ok_or_else(|| {
                StartError::Device(format!(
                    "ARP needs an Ethernet device; {} is missing or has no Ethernet address",
                    t.a.device
                ))
            })?;
        }
        t.binding = t.learn_binding();
        t.set_trouble(t.trouble_with(&t.binding));
        t.open_sockets()
            .map_err(|(what, err)| StartError::Socket { what, err })?;
        t.timers.arm(TIMER_SEND, now);
        t.timers.arm(TIMER_REFRESH, now + REFRESH_US);
        if t.controller.is_some() {
            t.timers.arm(TIMER_RECONNECT, now);
        }
        Ok(t)
    }

    /// Capabilities the running tracker still needs to re-open its sockets.
    pub fn needed_capabilities(&self) -> Vec<u32> {
        let mut keep = Vec::new();
        if self.arp.is_some()
            || self.icmp4.as_ref().is_some_and(|s| s.raw)
            || self.icmp6.as_ref().is_some_and(|s| s.raw)
        {
            keep.push(sys::CAP_NET_RAW);
        }
        if self.a.mark.is_some() {
            keep.push(sys::CAP_NET_ADMIN);
        }
        keep
    }

    pub fn describe(&self) -> String {
        let kind = |s: &Option<IcmpSock>| match s {
            Some(IcmpSock { raw: true, .. }) => "raw",
            Some(_) => "datagram",
            None => "-",
        };
        format!(
            "interface {} device {} method {}, {} target(s), icmp sockets v4 {} v6 {}, source {}/{}",
            self.a.interface,
            self.a.device,
            method_label(self.a.method),
            self.a.targets.len(),
            kind(&self.icmp4),
            kind(&self.icmp6),
            or_dash(self.binding.src4),
            or_dash(self.binding.src6)
        )
    }

    /// Reads the device's ifindex and the addresses the targets' families
    /// need (an IPv6 lookup reads /proc/net/if_inet6, so only when used).
    fn learn_binding(&self) -> Binding {
        let dev = &self.a.device;
        let v4 = self.has_family(false) || self.a.method == Method::Arp;
        Binding {
            ifindex: self.device_query.ifindex(dev),
            src4: self.a.source4.or_else(|| {
                if v4 {
                    self.device_query.ipv4(dev)
                } else {
                    None
                }
            }),
            src6: self.a.source6.or_else(|| {
                if self.has_family(true) {
                    sys::device_ipv6(dev)
                } else {
                    None
                }
            }),
        }
    }

    fn has_family(&self, v6: bool) -> bool {
        self.target_addrs
            .iter()
            .flatten()
            .any(|a| a.is_ipv6() == v6)
    }

    /// Applies mark, device, source address and TTL to a new socket.
    fn route_socket(&self, s: &Socket, v6: bool, bind_port: bool) -> io::Result<()> {
        s.set_nonblocking(true)?;
        if let Some(m) = self.a.mark {
            s.set_mark(m)?;
        }
        s.bind_device(Some(self.a.device.as_bytes()))?;
        let src = if v6 {
            self.binding.src6.map(IpAddr::V6)
        } else {
            self.binding.src4.map(IpAddr::V4)
        };
        match src {
            Some(ip) if bind_port => s.bind(&SockAddr::from(SocketAddr::new(ip, 0)))?,
            Some(_) => {}
            None => return Err(io::Error::from_raw_os_error(libc::EADDRNOTAVAIL)),
        }
        if v6 {
            s.set_unicast_hops_v6(self.a.max_ttl)
        } else {
            s.set_ttl_v4(self.a.max_ttl)
        }
    }

    fn open_icmp(&self, v6: bool) -> Result<IcmpSock, (&'static str, io::Error)> {
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
                let bytes: Vec<u8> = filter.iter().flat_map(|w| w.to_ne_bytes()).collect();
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
        } else if v6 {
            opt(sys::set_int_opt(fd, libc::SOL_IPV6, libc::IPV6_RECVERR, 1))?;
        } else {
            opt(sys::set_int_opt(fd, libc::SOL_IP, libc::IP_RECVERR, 1))?;
        }
        opt(sys::enable_rx_timestamps(fd))?;
        opt(self.route_socket(&sock, v6, true))?;
        Ok(IcmpSock { sock, raw })
    }

    fn open_arp(&self) -> io::Result<OwnedFd> {
        let proto = (libc::ETH_P_ARP as u16).to_be();
        // SAFETY: plain socket(2) call.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(proto),
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just created and is owned here.
        let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let ifindex = self
            .binding
            .ifindex
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))?;
        // SAFETY: sockaddr_ll is plain old data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: valid sockaddr_ll of the given size.
        let r = unsafe {
            libc::bind(
                fd,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(owned)
    }

    fn open_udp(&self, t: usize) -> io::Result<UdpSocket> {
        let addr =
            self.target_addrs[t].ok_or_else(|| io::Error::from_raw_os_error(libc::EDESTADDRREQ))?;
        let v6 = addr.is_ipv6();
        let s = Socket::new(
            if v6 { Domain::IPV6 } else { Domain::IPV4 },
            Type::DGRAM,
            Some(Protocol::UDP),
        )?;
        if v6 {
            sys::set_int_opt(s.as_raw_fd(), libc::SOL_IPV6, libc::IPV6_RECVERR, 1)?;
        } else {
            sys::set_int_opt(s.as_raw_fd(), libc::SOL_IP, libc::IP_RECVERR, 1)?;
        }
        self.route_socket(&s, v6, true)?;
        s.connect(&SockAddr::from(SocketAddr::new(
            addr,
            self.a.targets[t].port,
        )))?;
        Ok(UdpSocket::from_std(s.into()))
    }

    /// Opens (or re-opens after an address/device change) the long-lived
    /// sockets. A missing address is not fatal: probes report send errors
    /// until the next refresh finds one.
    fn open_sockets(&mut self) -> Result<(), (&'static str, io::Error)> {
        let reg = self.poll.registry();
        let tolerable = |e: &io::Error| {
            matches!(
                e.raw_os_error(),
                Some(libc::EADDRNOTAVAIL | libc::ENODEV | libc::EINVAL)
            )
        };
        match self.a.method {
            Method::Icmp => {
                for v6 in [false, true] {
                    if !self.has_family(v6) {
                        continue;
                    }
                    let slot = if v6 { &mut self.icmp6 } else { &mut self.icmp4 };
                    if let Some(old) = slot.take() {
                        if let Err(e) = reg.deregister(&mut SourceFd(&old.sock.as_raw_fd())) {
                            eprintln!("mwan-track: deregister: {e}");
                        }
                    }
                    let s = match self.open_icmp(v6) {
                        Ok(s) => s,
                        Err((_, e)) if tolerable(&e) => continue,
                        Err(e) => return Err(e),
                    };
                    let token = if v6 { TOKEN_ICMP6 } else { TOKEN_ICMP4 };
                    reg.register(
                        &mut SourceFd(&s.sock.as_raw_fd()),
                        token,
                        Interest::READABLE,
                    )
                    .map_err(|e| ("the ICMP socket", e))?;
                    *(if v6 { &mut self.icmp6 } else { &mut self.icmp4 }) = Some(s);
                }
            }
            Method::Arp => {
                if let Some(old) = self.arp.take() {
                    if let Err(e) = reg.deregister(&mut SourceFd(&old.as_raw_fd())) {
                        eprintln!("mwan-track: deregister: {e}");
                    }
                }
                match self.open_arp() {
                    Ok(fd) => {
                        reg.register(
                            &mut SourceFd(&fd.as_raw_fd()),
                            TOKEN_ARP,
                            Interest::READABLE,
                        )
                        .map_err(|e| ("the ARP socket", e))?;
                        self.arp = Some(fd);
                    }
                    Err(e) if tolerable(&e) => {}
                    Err(e) => return Err(("the ARP (packet) socket", e)),
                }
            }
            Method::Udp | Method::Dns => {
                for t in 0..self.udp.len() {
                    if let Some(mut old) = self.udp[t].take() {
                        if let Err(e) = reg.deregister(&mut old) {
                            eprintln!("mwan-track: deregister: {e}");
                        }
                    }
                    match self.open_udp(t) {
                        Ok(mut s) => {
                            reg.register(&mut s, Token(TOKEN_TARGET + t), Interest::READABLE)
                                .map_err(|e| ("a UDP socket", e))?;
                            self.udp[t] = Some(s);
                        }
                        Err(e) if tolerable(&e) => {}
                        Err(e) => return Err(("a UDP socket", e)),
                    }
                }
            }
            Method::Tcp | Method::Http => {}
        }
        Ok(())
    }

    fn on_send_timer(&mut self, now: u64) {
        let (target, round) = self.schedule.take(now);
        self.send_probe(target, round, now);
        self.timers.arm(TIMER_SEND, self.schedule.due_at().max(now));
    }

    fn send_probe(&mut self, target: usize, round: u64, now: u64) {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let si = usize::from(seq) % SLOTS;
        if self.slots[si].active {
            // More probes in flight than slots: the oldest gives up early.
            self.finish(si, ProbeOutcome::Timeout);
        }
        let slot = &mut self.slots[si];
        slot.active = true;
        slot.reported = false;
        slot.target = target as u16;
        slot.seq = seq;
        slot.round = round;
        let sent_at = sys::monotonic_us();
        slot.sent_at_us = sent_at;
        slot.sent_realtime_us = sys::realtime_us();
        self.timers.arm(TIMER_PROBE + si, sent_at + self.timeout_us);
        if let Err(e) = self.transmit(si, target, seq) {
            let errno = errno_of(&e);
            self.finish(si, ProbeOutcome::SendError { errno });
            // The device or its address may have changed: look soon, but
            // do not keep pushing the look back while every probe fails.
            let soon = now + 200_000;
            if matches!(
                errno,
                libc::EADDRNOTAVAIL
                    | libc::EINVAL
                    | libc::ENODEV
                    | libc::ENETDOWN
                    | libc::ENETUNREACH
            ) && !matches!(self.timers.get(TIMER_REFRESH), Some(t) if t <= soon)
            {
                self.timers.arm(TIMER_REFRESH, soon);
            }
        }
    }

    fn transmit(&mut self, si: usize, target: usize, seq: u16) -> io::Result<()> {
        let addr = self.target_addrs[target]
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EDESTADDRREQ))?;
        match self.a.method {
            Method::Icmp => {
                let sock = if addr.is_ipv6() {
                    &self.icmp6
                } else {
                    &self.icmp4
                };
                let sock = sock
                    .as_ref()
                    .ok_or_else(|| io::Error::from_raw_os_error(libc::EADDRNOTAVAIL))?;
                let len = packet::build_echo(
                    &mut self.tx,
                    addr.is_ipv6(),
                    self.icmp_id,
                    seq,
                    &self.cookie,
                    self.a.size,
                );
                sys::send_to(sock.sock.as_raw_fd(), &self.tx[..len], addr).map(drop)
            }
            Method::Arp => {
                let fd = self
                    .arp
                    .as_ref()
                    .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))?;
                let (IpAddr::V4(dst), Some(src)) = (addr, self.binding.src4) else {
                    return Err(io::Error::from_raw_os_error(libc::EADDRNOTAVAIL));
                };
                let pkt = packet::build_arp_request(&self.mac, src, dst);
                // SAFETY: sockaddr_ll is plain old data.
                let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                sll.sll_family = libc::AF_PACKET as u16;
                sll.sll_protocol = (libc::ETH_P_ARP as u16).to_be();
                sll.sll_ifindex = self.binding.ifindex.unwrap_or(0) as i32;
                sll.sll_halen = 6;
                sll.sll_addr[..6].fill(0xff);
                // SAFETY: valid buffer and address for the call.
                let r = unsafe {
                    libc::sendto(
                        fd.as_raw_fd(),
                        pkt.as_ptr().cast(),
                        pkt.len(),
                        libc::MSG_DONTWAIT,
                        (&sll as *const libc::sockaddr_ll).cast(),
                        std::mem::size_of::<libc::sockaddr_ll>() as u32,
                    )
                };
                if r < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            }
            Method::Udp | Method::Dns => {
                let len = if self.a.method == Method::Dns {
                    let aaaa = self.a.dns_expect.is_some_and(|e| e.is_ipv6());
                    packet::build_dns_query(
                        &mut self.tx,
                        seq ^ self.dns_key,
                        &self.a.dns_name,
                        aaaa,
                    )
                } else {
                    let len = self.a.size.max(COOKIE_LEN + 2);
                    self.tx[..COOKIE_LEN].copy_from_slice(&self.cookie);
                    self.tx[COOKIE_LEN..COOKIE_LEN + 2].copy_from_slice(&seq.to_be_bytes());
                    self.tx[COOKIE_LEN + 2..len].fill(0);
                    len
                };
                let sock = self.udp[target]
                    .as_ref()
                    .ok_or_else(|| io::Error::from_raw_os_error(libc::EADDRNOTAVAIL))?;
                sock.send(&self.tx[..len]).map(drop)
            }
            Method::Tcp | Method::Http => {
                let v6 = addr.is_ipv6();
                let s = Socket::new(
                    if v6 { Domain::IPV6 } else { Domain::IPV4 },
                    Type::STREAM,
                    Some(Protocol::TCP),
                )?;
                self.route_socket(&s, v6, true)?;
                match s.connect(&SockAddr::from(SocketAddr::new(
                    addr,
                    self.a.targets[target].port,
                ))) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
                    Err(e) => return Err(e),
                }
                let mut stream = TcpStream::from_std(s.into());
                self.poll.registry().register(
                    &mut stream,
                    Token(TOKEN_SLOT + si),
                    Interest::READABLE | Interest::WRITABLE,
                )?;
                self.slots[si].conn = Some(Conn {
                    stream,
                    connected: false,
                    written: 0,
                    head: [0; 64],
                    head_len: 0,
                });
                Ok(())
            }
        }
    }

    /// Ends a probe with an answer. The round-trip time comes from the
    /// kernel's receive stamp when there is one (so a busy event loop does not
    /// inflate it), else from the monotonic clock now; a stamp that disagrees
    /// with the monotonic clock (CLOCK_REALTIME stepped) is ignored.
    fn reply(&mut self, si: usize, now: u64, rx_realtime_us: Option<u64>) {
        let slot = &self.slots[si];
        let mono = now.saturating_sub(slot.sent_at_us);
        let rtt = match rx_realtime_us.map(|rx| rx as i64 - slot.sent_realtime_us as i64) {
            Some(r)
                if r >= 0
                    && r as u64 <= mono + 1000
                    && mono - (r as u64).min(mono) <= 1_000_000 =>
            {
                r as u64
            }
            _ => mono,
        };
        self.finish(
            si,
            ProbeOutcome::Reply {
                rtt_us: rtt.min(u64::from(u32::MAX)) as u32,
            },
        );
    }

    /// Ends a probe: records the sample, frees the slot. For a probe
    /// already reported lost only an answer is recorded (a late reply).
    fn finish(&mut self, si: usize, outcome: ProbeOutcome) {
        let slot = &mut self.slots[si];
        if !slot.active {
            return;
        }
        slot.active = false;
        let news = !slot.reported || matches!(outcome, ProbeOutcome::Reply { .. });
        if let Some(mut c) = slot.conn.take() {
            if let Err(e) = self.poll.registry().deregister(&mut c.stream) {
                eprintln!("mwan-track: deregister: {e}");
            }
        }
        self.timers.cancel(TIMER_PROBE + si);
        if news {
            self.record(si, outcome);
        }
    }

    /// A probe's timeout passed: report it lost. Its slot stays open until
    /// the cap, so an answer after the timeout still teaches the
    /// controller the link's RTT (and may withdraw a failure); past the
    /// cap the slot is freed without another sample.
    fn on_probe_timeout(&mut self, si: usize, now: u64) {
        let slot = &self.slots[si];
        if !slot.active {
            return;
        }
        let close_at = slot.sent_at_us + self.cap_us.max(self.timeout_us);
        if slot.reported || close_at <= now {
            self.finish(si, ProbeOutcome::Timeout);
            return;
        }
        self.record(si, ProbeOutcome::Timeout);
        self.slots[si].reported = true;
        self.timers.arm(TIMER_PROBE + si, close_at);
    }

    /// One sample of the probe in slot `si` to stdout and the backlog.
    fn record(&mut self, si: usize, outcome: ProbeOutcome) {
        let slot = &self.slots[si];
        let rec = Record {
            seq: self.sample_seq,
            target: slot.target,
            sent_at_us: slot.sent_at_us,
            outcome,
            round: slot.round,
        };
        self.sample_seq += 1;
        if self.a.stdout {
            report::json_line(
                &mut self.line,
                &rec,
                &self.target_names[usize::from(rec.target)],
                self.a.method.wire(),
            );
            let mut out = io::stdout().lock();
            if let Err(e) = out.write_all(&self.line).and_then(|()| out.flush()) {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    self.stop = true;
                }
            }
        }
        if self.controller.is_some() {
            self.backlog.push(rec);
        }
    }

    /// The oldest in-flight probe to `target` (for answers that carry no sequence).
    fn oldest_for(&self, target: usize) -> Option<usize> {
        (0..SLOTS)
            .filter(|&i| self.slots[i].active && usize::from(self.slots[i].target) == target)
            .min_by_key(|&i| self.slots[i].sent_at_us)
    }

    /// The in-flight slot for sequence `seq` sent to `addr`.
    fn slot_for(&self, seq: u16, addr: IpAddr) -> Option<usize> {
        let si = usize::from(seq) % SLOTS;
        let s = &self.slots[si];
        (s.active && s.seq == seq && self.target_addrs[usize::from(s.target)] == Some(addr))
            .then_some(si)
    }

    /// Ping sockets report ICMP errors through the error queue.
    fn drain_ping_errors(&mut self, fd: i32) {
        while let Ok(err) = sys::recv_errqueue(fd, &mut self.rx) {
            let Some(seq) =
                packet::parse_own_echo(&self.rx[..err.len.min(self.rx.len())], &self.cookie)
            else {
                continue;
            };
            let si = usize::from(seq) % SLOTS;
            if self.slots[si].active && self.slots[si].seq == seq {
                let outcome = match err.icmp {
                    Some((icmp_type, icmp_code)) => ProbeOutcome::Unreachable {
                        icmp_type,
                        icmp_code,
                    },
                    None => ProbeOutcome::SendError { errno: err.errno },
                };
                self.finish(si, outcome);
            }
        }
    }

    /// Reads the next batch from `fd` into `self.rx` (datagram i at
    /// `i * RX_SLOT`). `None` when drained, or after too many errors. A
    /// pending socket error is returned once by recv (for ping sockets its
    /// details are in the error queue, read by `on_error`), so errors are
    /// skipped a bounded number of times.
    fn next_batch(
        &mut self,
        fd: i32,
        got: &mut [sys::Received; RECV_BATCH],
        errors: &mut u32,
        mut on_error: impl FnMut(&mut Self),
    ) -> Option<usize> {
        loop {
            match sys::recv_batch(fd, &mut self.rx, RX_SLOT, got) {
                Ok(n) => return Some(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(_) if *errors < 64 => {
                    *errors += 1;
                    on_error(self);
                }
                Err(_) => return None,
            }
        }
    }

    fn on_icmp(&mut self, v6: bool, errored: bool) {
        let Some(sock) = (if v6 { &self.icmp6 } else { &self.icmp4 }) else {
            return;
        };
        let fd = sock.sock.as_raw_fd();
        let raw = sock.raw;
        if !raw && errored {
            self.drain_ping_errors(fd);
        }
        let mut got = [sys::Received::default(); RECV_BATCH];
        let mut errors = 0;
        // Edge-triggered: read until a batch comes back short (drained).
        while let Some(n) = self.next_batch(fd, &mut got, &mut errors, |t| {
            if !raw {
                t.drain_ping_errors(fd)
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
                    Some(IcmpEvent::Reply { id, seq }) if !raw || id == self.icmp_id => {
                        if let Some(si) = g.from.and_then(|a| self.slot_for(seq, a)) {
                            self.reply(si, now, g.rx_realtime_us);
                        }
                    }
                    Some(IcmpEvent::Error {
                        icmp_type,
                        icmp_code,
                        dst,
                        id,
                        seq,
                    }) if !raw || id == self.icmp_id => {
                        if let Some(si) = self.slot_for(seq, dst) {
                            self.finish(
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

    fn on_arp(&mut self) {
        let Some(fd) = self.arp.as_ref().map(|f| f.as_raw_fd()) else {
            return;
        };
        let mut got = [sys::Received::default(); RECV_BATCH];
        let mut errors = 0;
        // A packet socket reports ENETDOWN once when the link goes: skipped.
        while let Some(n) = self.next_batch(fd, &mut got, &mut errors, |_| {}) {
            let now = sys::monotonic_us();
            for (i, g) in got[..n].iter().enumerate() {
                let Some(us) = self.binding.src4 else {
                    continue;
                };
                let Some(from) =
                    packet::parse_arp_reply(&self.rx[i * RX_SLOT..][..g.len.min(RX_SLOT)], us)
                else {
                    continue;
                };
                let from = IpAddr::V4(from);
                if let Some(t) = self.target_addrs.iter().position(|&a| a == Some(from)) {
                    if let Some(si) = self.oldest_for(t) {
                        self.reply(si, now, g.rx_realtime_us);
                    }
                }
            }
            if n < RECV_BATCH {
                return;
            }
        }
    }

    fn on_udp(&mut self, t: usize, errored: bool) {
        let Some(fd) = self.udp[t].as_ref().map(|s| s.as_raw_fd()) else {
            return;
        };
        let dns = self.a.method == Method::Dns;
        let v6 = self.target_addrs[t].is_some_and(|a| a.is_ipv6());
        // ICMP errors wait in the error queue (IP_RECVERR), signalled by EPOLLERR.
        while let Some(err) = errored
            .then(|| sys::recv_errqueue(fd, &mut self.rx).ok())
            .flatten()
        {
            let quoted = &self.rx[..err.len.min(self.rx.len())];
            let seq = if dns {
                quoted
                    .get(..2)
                    .map(|b| u16::from_be_bytes([b[0], b[1]]) ^ self.dns_key)
            } else if quoted.get(..COOKIE_LEN) == Some(&self.cookie[..]) {
                quoted
                    .get(COOKIE_LEN..COOKIE_LEN + 2)
                    .map(|b| u16::from_be_bytes([b[0], b[1]]))
            } else {
                None
            };
            let si = match seq.and_then(|s| self.target_addrs[t].and_then(|a| self.slot_for(s, a)))
            {
                Some(si) => si,
                None => match self.oldest_for(t) {
                    Some(si) => si,
                    None => continue,
                },
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
            self.finish(si, outcome);
        }
        // Edge-triggered: read until WouldBlock; a pending error is returned
        // once by recv (its details were taken from the error queue above).
        let mut errors = 0;
        loop {
            let n = match self.udp[t].as_ref().map(|s| s.recv(&mut self.rx)) {
                Some(Ok(n)) => n,
                Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => return,
                Some(Err(_)) if errors < 64 => {
                    errors += 1;
                    continue;
                }
                Some(Err(_)) | None => return,
            };
            let now = sys::monotonic_us();
            if dns {
                if n < 2 {
                    continue;
                }
                let seq = u16::from_be_bytes([self.rx[0], self.rx[1]]) ^ self.dns_key;
                let Some(si) = self.target_addrs[t].and_then(|a| self.slot_for(seq, a)) else {
                    continue;
                };
                let aaaa = self.a.dns_expect.is_some_and(|e| e.is_ipv6());
                let qlen = packet::build_dns_query(
                    &mut self.tx,
                    seq ^ self.dns_key,
                    &self.a.dns_name,
                    aaaa,
                );
                match packet::check_dns_answer(&self.rx[..n], &self.tx[..qlen], self.a.dns_expect) {
                    DnsVerdict::NotOurs => {}
                    DnsVerdict::Good => self.reply(si, now, None),
                    DnsVerdict::Bad => self.finish(si, ProbeOutcome::BadAnswer),
                }
            } else {
                // An echo carries our cookie and sequence; any other answer
                // (nping counts those too) goes to the oldest probe.
                let echoed = match self.rx[..n].get(..COOKIE_LEN + 2) {
                    Some(p) if p[..COOKIE_LEN] == self.cookie => {
                        Some(u16::from_be_bytes([p[COOKIE_LEN], p[COOKIE_LEN + 1]]))
                    }
                    _ => None,
                };
                let si = match echoed {
                    Some(seq) => self.target_addrs[t].and_then(|a| self.slot_for(seq, a)),
                    None => self.oldest_for(t),
                };
                if let Some(si) = si {
                    self.reply(si, now, None);
                }
            }
        }
    }

    fn on_conn(&mut self, si: usize) {
        let now = sys::monotonic_us();
        let http = self.a.method == Method::Http;
        let v6 = self.target_addrs[usize::from(self.slots[si].target)].is_some_and(|a| a.is_ipv6());
        let target = usize::from(self.slots[si].target);
        let Some(conn) = self.slots[si].conn.as_mut() else {
            return;
        };
        if !conn.connected {
            let err = sys::take_socket_error(conn.stream.as_raw_fd());
            let outcome = match err {
                0 => match conn.stream.peer_addr() {
                    Ok(_) => None,
                    Err(_) => return, // still connecting (spurious wakeup)
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
            if let Some(o) = outcome {
                self.finish(si, o);
                return;
            }
            conn.connected = true;
            if !http {
                self.reply(si, now, None);
                return;
            }
        }
        let req = &self.http_requests[target];
        while conn.written < req.len() {
            match conn.stream.write(&req[conn.written..]) {
                Ok(n) => conn.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let errno = errno_of(&e);
                    self.finish(
                        si,
                        if errno == libc::ECONNRESET {
                            ProbeOutcome::Refused
                        } else {
                            ProbeOutcome::SendError { errno }
                        },
                    );
                    return;
                }
            }
        }
        loop {
            if conn.head_len == conn.head.len() {
                self.finish(si, ProbeOutcome::BadAnswer);
                return;
            }
            match conn.stream.read(&mut conn.head[conn.head_len..]) {
                Ok(0) => {
                    self.finish(si, ProbeOutcome::BadAnswer);
                    return;
                }
                Ok(n) => {
                    conn.head_len += n;
                    match packet::http_status(&conn.head[..conn.head_len]) {
                        None => {}
                        Some(Ok(code)) if (200..400).contains(&code) => {
                            self.reply(si, now, None);
                            return;
                        }
                        Some(_) => {
                            self.finish(si, ProbeOutcome::BadAnswer);
                            return;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let errno = errno_of(&e);
                    self.finish(si, ProbeOutcome::SendError { errno });
                    return;
                }
            }
        }
    }

    /// What keeps the tracker from probing with binding `b`, if anything.
    fn trouble_with(&self, b: &Binding) -> Option<&'static str> {
        if b.ifindex.is_none() {
            Some("device is missing")
        } else if self.has_family(false) && b.src4.is_none() && self.a.method != Method::Arp
            || self.a.method == Method::Arp && b.src4.is_none()
        {
            Some("device has no IPv4 address")
        } else if self.has_family(true) && b.src6.is_none() {
            Some("device has no usable global IPv6 address")
        } else {
            None
        }
    }

    /// Logs a change of trouble and tells the controller.
    fn set_trouble(&mut self, trouble: Option<&'static str>) {
        if trouble != self.trouble {
            self.trouble = trouble;
            if let Some(m) = trouble {
                eprintln!("mwan-track: {}: {m}", self.a.device);
                if let Some(c) = self.controller.as_mut() {
                    c.trouble(m);
                }
            }
        }
    }

    fn on_refresh(&mut self, now: u64) {
        self.timers.arm(TIMER_REFRESH, now + REFRESH_US);
        let b = self.learn_binding();
        self.set_trouble(self.trouble_with(&b));
        let missing = match self.a.method {
            Method::Icmp => {
                (self.has_family(false) && self.icmp4.is_none())
                    || (self.has_family(true) && self.icmp6.is_none())
            }
            Method::Arp => self.arp.is_none(),
            Method::Udp | Method::Dns => self.udp.iter().any(Option::is_none),
            Method::Tcp | Method::Http => false,
        };
        if b != self.binding || missing {
            self.binding = b;
            if let Err((what, e)) = self.open_sockets() {
                eprintln!("mwan-track: re-opening {what}: {e}");
            }
        }
    }

    fn on_controller_message(&mut self, m: ControllerMessage) {
        match m {
            ControllerMessage::SetInterval { interval_ms } => {
                let now = sys::monotonic_us();
                self.schedule
                    .set_interval(now, interval_ms.clamp(10, 86_400_000) * 1000);
                self.timers.arm(TIMER_SEND, self.schedule.due_at().max(now));
            }
            ControllerMessage::SetTimeout { timeout_ms } => {
                self.timeout_us = timeout_ms.clamp(10, 600_000) * 1000
            }
        }
    }

    fn try_connect(&mut self, now: u64) {
        let Some(c) = self.controller.as_mut() else {
            return;
        };
        let hello = Hello {
            interface: &self.a.interface,
            started_at_us: self.started_at_us,
        };
        match c.connect(self.poll.registry(), hello, &self.backlog) {
            Ok(()) => {
                if let Some(m) = self.trouble {
                    c.trouble(m);
                }
            }
            Err(delay_ms) => self.timers.arm(TIMER_RECONNECT, now + delay_ms * 1000),
        }
    }

    fn flush_controller(&mut self) {
        let method = self.a.method.wire();
        let Some(c) = self.controller.as_mut() else {
            return;
        };
        if let Some(why) = c.flush(
            self.poll.registry(),
            &mut self.backlog,
            &self.target_names,
            method,
        ) {
            self.controller_lost(&why);
        }
    }

    fn controller_lost(&mut self, why: &str) {
        eprintln!(
            "mwan-track: {}: controller connection lost ({why}); probing on, reconnecting",
            self.a.interface
        );
        self.timers
            .arm(TIMER_RECONNECT, sys::monotonic_us() + 100_000);
    }

    fn on_controller_readable(&mut self) {
        let mut msgs: [Option<ControllerMessage>; 8] = Default::default();
        let mut n = 0;
        let lost = {
            let Some(c) = self.controller.as_mut() else {
                return;
            };
            c.read(self.poll.registry(), &mut self.backlog, |m| {
                // Only the latest interval/timeout matter; keep the last few.
                msgs[n % 8] = Some(m);
                n += 1;
            })
        };
        for m in msgs.iter_mut().filter_map(Option::take) {
            self.on_controller_message(m);
        }
        if let Some(why) = lost {
            self.controller_lost(&why);
        }
    }

    fn fire_timers(&mut self, now: u64) {
        while let Some(t) = self.timers.pop_due(now) {
            match t {
                TIMER_SEND => self.on_send_timer(now),
                TIMER_RECONNECT => self.try_connect(now),
                TIMER_REFRESH => self.on_refresh(now),
                t => self.on_probe_timeout(t - TIMER_PROBE, now),
            }
        }
    }

    /// Runs until SIGTERM/SIGINT/SIGHUP. Returns the signal number.
    pub fn run(&mut self) -> io::Result<u32> {
        let mut events = Events::with_capacity(64);
        // Debug builds: heap allocations once two rounds are done (buffers
        // have their sizes by then), printed at exit for the tests.
        #[cfg(debug_assertions)]
        let mut warm_allocs: Option<u64> = None;
        loop {
            #[cfg(debug_assertions)]
            if warm_allocs.is_none() && self.schedule.round() >= 2 {
                warm_allocs = Some(crate::alloc_count::allocations());
            }
            let now = sys::monotonic_us();
            self.fire_timers(now);
            self.flush_controller();
            let timeout = self
                .timers
                .next()
                .map(|t| std::time::Duration::from_micros(t.saturating_sub(sys::monotonic_us())));
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let mut signal = None;
            for ev in events.iter() {
                match ev.token() {
                    TOKEN_SIGNAL => signal = sys::read_signals(self.signal.as_raw_fd()).or(signal),
                    TOKEN_CONTROLLER => {
                        if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                            self.on_controller_readable();
                        }
                    }
                    TOKEN_ICMP4 => self.on_icmp(false, ev.is_error()),
                    TOKEN_ICMP6 => self.on_icmp(true, ev.is_error()),
                    TOKEN_ARP => self.on_arp(),
                    Token(t) if (TOKEN_SLOT..TOKEN_SLOT + SLOTS).contains(&t) => {
                        self.on_conn(t - TOKEN_SLOT)
                    }
                    Token(t) if t >= TOKEN_TARGET && t - TOKEN_TARGET < self.udp.len() => {
                        self.on_udp(t - TOKEN_TARGET, ev.is_error())
                    }
                    Token(_) => {}
                }
            }
            if let Some(sig) = signal.or(self.stop.then_some(0)) {
                self.flush_controller();
                #[cfg(debug_assertions)]
                if let Some(warm) = warm_allocs {
                    eprintln!(
                        "mwan-track: heap allocations after warm-up (round {} .. {}, {} samples): {}",
                        2,
                        self.schedule.round(),
                        self.sample_seq,
                        crate::alloc_count::allocations() - warm
                    );
                }
                return Ok(sig);
            }
        }
    }
}

/// The method as users name it (mwan3's `track_method` words), for logs.
fn method_label(m: Method) -> &'static str {
    match m {
        Method::Icmp => "ping",
        Method::Arp => "arping",
        Method::Tcp => "tcp",
        Method::Udp => "udp",
        Method::Dns => "dns",
        Method::Http => "http",
    }
}

/// An address, or `-` when there is none.
fn or_dash<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_line_words_are_for_users() {
        assert_eq!(method_label(Method::Icmp), "ping");
        assert_eq!(method_label(Method::Arp), "arping");
        let src: Option<Ipv4Addr> = Some(Ipv4Addr::new(198, 51, 100, 2));
        assert_eq!(or_dash(src), "198.51.100.2");
        assert_eq!(or_dash(None::<Ipv6Addr>), "-");
    }

    #[test]
    fn budget_stretches_the_interval_never_shrinks_it() {
        let ppm = |p| Some(Budget::ProbesPerMinute(p));
        // 4 probes per 1 s round = 240/min; a 60/min budget makes rounds 4 s.
        assert_eq!(budgeted_interval_us(1_000_000, 4, ppm(60), 0), 4_000_000);
        assert_eq!(budgeted_interval_us(10_000_000, 4, ppm(60), 0), 10_000_000);
        assert_eq!(budgeted_interval_us(1_000_000, 4, None, 0), 1_000_000);
        // ICMP v4, 56 bytes: 2 x (20 + 8 + 56) = 168 bytes a probe; 10 MB a
        // day = 41 probes a minute; one target -> a round every 1.46 s.
        let b = bytes_per_probe(Method::Icmp, 56, false);
        assert_eq!(b, 168);
        assert_eq!(
            budgeted_interval_us(500_000, 1, Some(Budget::BytesPerDay(10_000_000)), b),
            60_000_000 / 41
        );
        // A budget too small for one probe a minute still allows one.
        assert_eq!(
            budgeted_interval_us(1_000, 1, Some(Budget::BytesPerDay(1000)), b),
            60_000_000
        );
    }
}
