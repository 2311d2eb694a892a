//! The event loop: one mio poll, one deadline table, a fixed table of
//! in-flight probe slots ([`Probes`]) and one probe method, which owns the
//! method's sockets and bytes (`icmp.rs`, `arp.rs`, `tcp.rs`, `udp.rs`,
//! `dns.rs`, `http.rs`). The loop schedules probes, hands readable sockets
//! to the method and reports what the method decides.

mod arp;
mod dns;
mod http;
mod icmp;
mod probes;
mod socket;
mod tcp;
mod udp;

use crate::args::{Args, Budget, Method};
use crate::burst::{self, TrafficWatch};
use crate::packet::COOKIE_LEN;
use crate::report::{Controller, Hello};
use crate::schedule::Schedule;
use crate::sys;
use crate::timers::Deadlines;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use mwan_proto::track::{ControllerMessage, ProbeOutcome};
use probes::{Binding, Outgoing, Probes, SLOTS};
use socket::{errno_of, OpenFailure};
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};

pub use socket::StartError;

const TIMER_SEND: usize = 0;
const TIMER_RECONNECT: usize = 1;
const TIMER_REFRESH: usize = 2;
/// Reading the device's counters for the traffic watch (crate::burst).
const TIMER_WATCH: usize = 3;
/// The next step of a confirmation burst.
const TIMER_BURST: usize = 4;
/// The first of the per-slot probe timeouts (one timer per slot).
const TIMER_PROBE: usize = 5;

// Tokens: the loop's own, then the methods' (one method runs per tracker).
const TOKEN_SIGNAL: Token = Token(0);
const TOKEN_CONTROLLER: Token = Token(1);
const TOKEN_ICMP4: Token = Token(2);
const TOKEN_ICMP6: Token = Token(3);
const TOKEN_ARP: Token = Token(4);
/// TCP and HTTP: one connection per probe, token = this + slot.
const TOKEN_SLOT: usize = 1000;
/// UDP and DNS: one socket per target, token = this + target index.
const TOKEN_TARGET: usize = 2000;

/// How often the device's address and ifindex are re-read.
const REFRESH_US: u64 = 5_000_000;

/// One probe method: its sockets, how a probe leaves, how an answer is
/// matched to its probe. The loop owns the schedule, the in-flight slots
/// and the reporting; a method reads them and ends probes through
/// [`Probes`]. Nothing here may allocate once the sockets are open (the
/// debug build's allocation count is asserted by the integration tests).
/// How to add one: docs/tracker.md, "Adding a probe method".
trait ProbeMethod {
    /// Opens (or re-opens after an address or device change) the method's
    /// long-lived sockets and registers them with `probes.poll`. A missing
    /// device or address is not fatal ([`socket::tolerable`]): probes
    /// report send errors until the next refresh re-opens.
    /// The default is for methods with a new socket per probe.
    fn open(&mut self, _probes: &mut Probes) -> Result<(), OpenFailure> {
        Ok(())
    }

    /// A long-lived socket the targets need is not open (so the periodic
    /// refresh re-opens even when the binding did not change).
    fn missing(&self, _probes: &Probes) -> bool {
        false
    }

    /// Sends `probe` (its slot is already taken and stamped). An error
    /// becomes the probe's `send_error`.
    fn transmit(&mut self, probes: &mut Probes, probe: Outgoing) -> io::Result<()>;

    /// The method's socket with `token` is readable, or has an error
    /// pending (`errored`, EPOLLERR). Read until drained (edge-triggered).
    fn on_readable(&mut self, probes: &mut Probes, token: Token, errored: bool);

    /// Whether the method holds raw or packet sockets (which keeps
    /// CAP_NET_RAW to re-open them).
    fn needs_raw(&self) -> bool {
        false
    }

    /// Probes leave from the IPv4 source whatever the targets (ARP).
    fn needs_ipv4_source(&self) -> bool {
        false
    }

    /// Kind of the ICMP socket per family (v4, v6), for the start-up line.
    fn icmp_sockets(&self) -> [&'static str; 2] {
        ["-", "-"]
    }
}

/// The method this tracker runs. An enum rather than a `Box<dyn
/// ProbeMethod>`: calls are direct and the release binary 2,656 bytes
/// smaller (measured on x86_64). A new method adds a variant here, an arm
/// in `each_method!` and one in `probe_method`.
enum AnyMethod {
    Icmp(icmp::Icmp),
    Arp(arp::Arp),
    Tcp(tcp::Tcp),
    Udp(udp::Udp),
    Dns(dns::Dns),
    Http(http::Http),
}

/// `$body` with `$m` bound to the method inside `$any`, whichever it is.
macro_rules! each_method {
    ($any:expr, $m:ident => $body:expr) => {
        match $any {
            AnyMethod::Icmp($m) => $body,
            AnyMethod::Arp($m) => $body,
            AnyMethod::Tcp($m) => $body,
            AnyMethod::Udp($m) => $body,
            AnyMethod::Dns($m) => $body,
            AnyMethod::Http($m) => $body,
        }
    };
}

impl ProbeMethod for AnyMethod {
    fn open(&mut self, probes: &mut Probes) -> Result<(), OpenFailure> {
        each_method!(self, m => m.open(probes))
    }

    fn missing(&self, probes: &Probes) -> bool {
        each_method!(self, m => m.missing(probes))
    }

    fn transmit(&mut self, probes: &mut Probes, probe: Outgoing) -> io::Result<()> {
        each_method!(self, m => m.transmit(probes, probe))
    }

    fn on_readable(&mut self, probes: &mut Probes, token: Token, errored: bool) {
        each_method!(self, m => m.on_readable(probes, token, errored))
    }

    fn needs_raw(&self) -> bool {
        each_method!(self, m => m.needs_raw())
    }

    fn needs_ipv4_source(&self) -> bool {
        each_method!(self, m => m.needs_ipv4_source())
    }

    fn icmp_sockets(&self) -> [&'static str; 2] {
        each_method!(self, m => m.icmp_sockets())
    }
}

pub struct Tracker {
    probes: Probes,
    method: AnyMethod,
    schedule: Schedule,
    controller: Option<Controller>,
    device_query: sys::DeviceQuery,
    next_seq: u16,
    started_at_us: u64,
    /// What keeps the tracker from probing now, as last reported.
    trouble: Option<&'static str>,
    signal: OwnedFd,
    watch: TrafficWatch,
    last_watch_us: u64,
    /// The probe budget in probes a minute, if any: bursts are paid from
    /// what the rounds leave of it.
    budget_per_minute: Option<u64>,
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
    match budget_per_minute(budget, bytes_per_probe) {
        None => interval_us,
        Some(ppm) => interval_us.max(probes_per_round * 60_000_000 / ppm),
    }
}

/// A probe budget in whole probes a minute (at least one).
fn budget_per_minute(budget: Option<Budget>, bytes_per_probe: u64) -> Option<u64> {
    Some(match budget? {
        Budget::ProbesPerMinute(p) => u64::from(p),
        Budget::BytesPerDay(b) => b / (bytes_per_probe * 1440),
    })
    .map(|p| p.max(1))
}

/// The method `config` asks for, with its buffers sized.
fn probe_method(
    config: &Args,
    target_addrs: &[Option<IpAddr>],
    device_query: &sys::DeviceQuery,
) -> Result<AnyMethod, StartError> {
    Ok(match config.method {
        Method::Icmp => AnyMethod::Icmp(icmp::Icmp::new(config)),
        Method::Arp => AnyMethod::Arp(arp::Arp::new(config, device_query)?),
        Method::Tcp => AnyMethod::Tcp(tcp::Tcp),
        Method::Udp => AnyMethod::Udp(udp::Udp::new(config)),
        Method::Dns => AnyMethod::Dns(dns::Dns::new(config)),
        Method::Http => AnyMethod::Http(http::Http::new(config, target_addrs)),
    })
}

impl Tracker {
    pub fn new(config: Args) -> Result<Tracker, StartError> {
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
        let mut target_addrs: Vec<Option<IpAddr>> = config.targets.iter().map(|t| t.addr).collect();
        if config.method == Method::Arp {
            arp::resolve_gateway(&config, &mut target_addrs)?;
        }
        let device_query = sys::DeviceQuery::new().map_err(sock_err("the device query socket"))?;
        let method = probe_method(&config, &target_addrs, &device_query)?;
        let now = sys::monotonic_us();
        // The shortest round the probe budget allows.
        let v6 = target_addrs.iter().flatten().any(|a| a.is_ipv6());
        let per_round = config.targets.len() as u64 * u64::from(config.count);
        let probe_bytes = bytes_per_probe(config.method, config.size, v6);
        let budget_floor_us = budgeted_interval_us(0, per_round, config.budget, probe_bytes);
        let budget_per_minute = budget_per_minute(config.budget, probe_bytes);
        let controller = config
            .controller
            .clone()
            .map(|p| Controller::new(p, TOKEN_CONTROLLER));
        let schedule = Schedule::new(
            now,
            config.interval_ms * 1000,
            config.targets.len(),
            config.count,
            budget_floor_us,
        );
        let timers = Deadlines::new(TIMER_PROBE + SLOTS);
        let mut t = Tracker {
            probes: Probes::new(config, poll, timers, target_addrs),
            method,
            schedule,
            controller,
            device_query,
            next_seq: 0,
            started_at_us: now,
            trouble: None,
            signal,
            watch: TrafficWatch::default(),
            last_watch_us: now,
            budget_per_minute,
        };
        t.probes.binding = t.learn_binding();
        t.set_trouble(t.trouble_with(&t.probes.binding));
        t.method
            .open(&mut t.probes)
            .map_err(|(what, err)| StartError::Socket { what, err })?;
        t.probes.timers.arm(TIMER_SEND, now);
        t.probes.timers.arm(TIMER_REFRESH, now + REFRESH_US);
        t.probes.timers.arm(TIMER_WATCH, now);
        if t.controller.is_some() {
            t.probes.timers.arm(TIMER_RECONNECT, now);
        }
        Ok(t)
    }

    /// Capabilities the running tracker still needs to re-open its sockets.
    pub fn needed_capabilities(&self) -> Vec<u32> {
        let mut keep = Vec::new();
        if self.method.needs_raw() {
            keep.push(sys::CAP_NET_RAW);
        }
        if self.probes.config.mark.is_some() {
            keep.push(sys::CAP_NET_ADMIN);
        }
        keep
    }

    pub fn describe(&self) -> String {
        let config = &self.probes.config;
        let [icmp4, icmp6] = self.method.icmp_sockets();
        format!(
            "interface {} device {} method {}, {} target(s), icmp sockets v4 {icmp4} v6 {icmp6}, source {}/{}",
            config.interface,
            config.device,
            method_label(config.method),
            config.targets.len(),
            or_dash(self.probes.binding.src4),
            or_dash(self.probes.binding.src6)
        )
    }

    /// Reads the device's ifindex and the addresses the targets' families
    /// need (an IPv6 lookup reads /proc/net/if_inet6, so only when used).
    fn learn_binding(&self) -> Binding {
        let config = &self.probes.config;
        let dev = &config.device;
        let v4 = self.probes.has_family(false) || self.method.needs_ipv4_source();
        Binding {
            ifindex: self.device_query.ifindex(dev),
            src4: config.source4.or_else(|| {
                if v4 {
                    self.device_query.ipv4(dev)
                } else {
                    None
                }
            }),
            src6: config.source6.or_else(|| {
                if self.probes.has_family(true) {
                    sys::device_ipv6(dev)
                } else {
                    None
                }
            }),
        }
    }

    fn on_send_timer(&mut self, now: u64) {
        let (target, round) = self.schedule.take(now);
        self.send_probe(target, round, now, false);
        self.probes
            .timers
            .arm(TIMER_SEND, self.schedule.due_at().max(now));
    }

    /// Reads the device's counters; when its traffic stopped coming back,
    /// starts a confirmation burst (crate::burst), paid from the probe
    /// budget's spare probes if there is a budget.
    fn on_watch_timer(&mut self, now: u64) {
        if std::mem::take(&mut self.probes.burst.unanswered) {
            self.watch.unanswered();
        }
        let p = &self.probes;
        if let (Some(sent), Some(received)) = (p.inbound.sent(), p.inbound.read()) {
            let other_sent = sent.wrapping_sub(p.probes_sent);
            let other_received = received.wrapping_sub(p.timely_answers());
            let mut due = self
                .watch
                .observe(now, other_sent, other_received, p.rtt_high_us);
            let probes = self.probes.target_addrs.len() as u32 * burst::BURST_PER_TARGET;
            if let Some(ppm) = self.budget_per_minute {
                let per_round =
                    self.probes.target_addrs.len() as u64 * u64::from(self.probes.config.count);
                let spare = burst::spare_per_minute(ppm, per_round, self.schedule.round_us());
                let elapsed = now.saturating_sub(self.last_watch_us);
                due = self.watch.spend(spare, elapsed, u64::from(probes), due) && due;
            }
            if due {
                self.probes.begin_burst(probes);
                self.on_burst_timer(now);
            }
        }
        self.last_watch_us = now;
        self.probes
            .timers
            .arm(TIMER_WATCH, now + self.watch.period_us());
    }

    /// One step of the burst: a probe to every target, the next step
    /// [`burst::BURST_SPACING_US`] later, none once an answer came.
    fn on_burst_timer(&mut self, now: u64) {
        if self.probes.burst.done {
            return;
        }
        let round = self.schedule.round();
        for target in 0..self.probes.target_addrs.len() {
            if self.probes.burst.to_send > 0 {
                self.send_probe(target, round, now, true);
            }
        }
        if self.probes.burst.to_send > 0 {
            self.probes
                .timers
                .arm(TIMER_BURST, now + burst::BURST_SPACING_US);
        }
    }

    fn send_probe(&mut self, target: usize, round: u64, now: u64, burst: bool) {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let probe = self.probes.start(target, seq, round, burst);
        if let Err(e) = self.method.transmit(&mut self.probes, probe) {
            let errno = errno_of(&e);
            self.probes
                .finish(probe.slot, ProbeOutcome::SendError { errno });
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
            ) && !matches!(self.probes.timers.get(TIMER_REFRESH), Some(t) if t <= soon)
            {
                self.probes.timers.arm(TIMER_REFRESH, soon);
            }
        }
    }

    /// What keeps the tracker from probing with binding `b`, if anything.
    fn trouble_with(&self, b: &Binding) -> Option<&'static str> {
        if b.ifindex.is_none() {
            Some("device is missing")
        } else if b.src4.is_none()
            && (self.probes.has_family(false) || self.method.needs_ipv4_source())
        {
            Some("device has no IPv4 address")
        } else if self.probes.has_family(true) && b.src6.is_none() {
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
                eprintln!("mwan-track: {}: {m}", self.probes.config.device);
                if let Some(c) = self.controller.as_mut() {
                    c.trouble(m);
                }
            }
        }
    }

    fn on_refresh(&mut self, now: u64) {
        self.probes.timers.arm(TIMER_REFRESH, now + REFRESH_US);
        let b = self.learn_binding();
        self.set_trouble(self.trouble_with(&b));
        if b != self.probes.binding || self.method.missing(&self.probes) {
            if b.ifindex != self.probes.binding.ifindex {
                self.probes.inbound = sys::InboundCounter::open(&self.probes.config.device);
            }
            self.probes.binding = b;
            if let Err((what, e)) = self.method.open(&mut self.probes) {
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
                self.probes
                    .timers
                    .arm(TIMER_SEND, self.schedule.due_at().max(now));
            }
            ControllerMessage::SetTimeout { timeout_ms } => {
                self.probes.timeout_us = timeout_ms.clamp(10, 600_000) * 1000
            }
        }
    }

    fn try_connect(&mut self, now: u64) {
        let Some(c) = self.controller.as_mut() else {
            return;
        };
        let hello = Hello {
            interface: &self.probes.config.interface,
            started_at_us: self.started_at_us,
        };
        match c.connect(self.probes.poll.registry(), hello, &self.probes.backlog) {
            Ok(()) => {
                if let Some(m) = self.trouble {
                    c.trouble(m);
                }
            }
            Err(delay_ms) => self
                .probes
                .timers
                .arm(TIMER_RECONNECT, now + delay_ms * 1000),
        }
    }

    fn flush_controller(&mut self) {
        let method = self.probes.config.method.wire();
        let Some(c) = self.controller.as_mut() else {
            return;
        };
        if let Some(why) = c.flush(
            self.probes.poll.registry(),
            &mut self.probes.backlog,
            &self.probes.target_names,
            method,
        ) {
            self.controller_lost(&why);
        }
    }

    fn controller_lost(&mut self, why: &str) {
        eprintln!(
            "mwan-track: {}: controller connection lost ({why}); probing on, reconnecting",
            self.probes.config.interface
        );
        self.probes
            .timers
            .arm(TIMER_RECONNECT, sys::monotonic_us() + 100_000);
    }

    fn on_controller_readable(&mut self) {
        let mut msgs: [Option<ControllerMessage>; 8] = Default::default();
        let mut n = 0;
        let lost = {
            let Some(c) = self.controller.as_mut() else {
                return;
            };
            c.read(self.probes.poll.registry(), &mut self.probes.backlog, |m| {
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
        while let Some(t) = self.probes.timers.pop_due(now) {
            match t {
                TIMER_SEND => self.on_send_timer(now),
                TIMER_RECONNECT => self.try_connect(now),
                TIMER_REFRESH => self.on_refresh(now),
                TIMER_WATCH => self.on_watch_timer(now),
                TIMER_BURST => self.on_burst_timer(now),
                t => self.probes.on_timeout(t - TIMER_PROBE, now),
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
            let timeout =
                self.probes.timers.next().map(|t| {
                    std::time::Duration::from_micros(t.saturating_sub(sys::monotonic_us()))
                });
            match self.probes.poll.poll(&mut events, timeout) {
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
                    token => self
                        .method
                        .on_readable(&mut self.probes, token, ev.is_error()),
                }
            }
            if let Some(sig) = signal.or(self.probes.stop.then_some(0)) {
                self.flush_controller();
                #[cfg(debug_assertions)]
                if let Some(warm) = warm_allocs {
                    eprintln!(
                        "mwan-track: heap allocations after warm-up (round {} .. {}, {} samples): {}",
                        2,
                        self.schedule.round(),
                        self.probes.sample_seq,
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
    use std::net::{Ipv4Addr, Ipv6Addr};

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
