//! bench-failover: what a user of mwand feels, on the testbed.
//!
//! 1. Cut to traffic: a LAN client opens a new TCP connection every 10 ms;
//!    wan1 (the failover policy's primary) is cut silently at a random
//!    phase of its probe schedule; the figure is the time from the cut to
//!    the first completed handshake through the backup. Median, p95 and
//!    max over `--cuts` cuts (default 20) per row:
//!    - loaded: a LAN host keeps traffic on wan1 (100 pings a second and
//!      the client) before and during the cut;
//!    - idle: nothing but the probes on wan1; the client starts at the cut;
//!    - mwan3's defaults replayed through our engine, loaded and idle
//!      (`--mwan3-cuts`, default 8: a cut and the recovery take minutes);
//!    - the same loaded and idle rows with the build in `--base DIR` (the
//!      previous build's target/release), run beside ours, for the ratio.
//!
//!    Each row first measures 30 s of steady state: bytes a minute at the
//!    ISP hop, tracker CPU and wakeups, bursts.
//! 2. False failovers (`--minutes`, default 10; `--skip-noise`): wan1 at
//!    5 % loss and 30 ms jitter with LAN traffic; a one-way UDP upload at
//!    the line rate of a 2 Mbit/s wan1; 16 TCP uploads saturating it. Every
//!    offline verdict and policy move counts.
//! 3. Size of each release binary (the release profile strips them).
//!
//! Each row runs in a child process (this program with `--row`), the base
//! build's with MWAN_BIN_DIR pointing at it.
//! Usage: bench-failover [--cuts N] [--mwan3-cuts N] [--minutes M]
//!                       [--base DIR] [--skip-mwan3] [--skip-noise] [--only-noise]

#[path = "../../tests/mwand_harness/mod.rs"]
mod mwand_harness;

use mwan_integration::lan_traffic::{LanPing, UdpUpload};
use mwan_integration::proc_status_kb;
use mwan_testbed::{find_binary, require_netns, Impairment, Role, Testbed};
use mwand_harness::*;
use std::net::SocketAddrV4;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the LAN client opens a connection: the resolution of the figure.
const CONNECT_EVERY_MS: u64 = 10;

/// A LAN client opening one TCP connection every 10 ms; each completed
/// handshake is reported with the time its attempt started and completed.
struct Client {
    stop: Arc<AtomicBool>,
    done: Receiver<(Instant, Instant)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn connect_nonblocking(to: SocketAddrV4) -> Option<i32> {
    // SAFETY: plain socket calls on a fresh fd we own.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return None;
        }
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: to.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*to.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let rc = libc::connect(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        if rc != 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINPROGRESS) {
            libc::close(fd);
            return None;
        }
        Some(fd)
    }
}

impl Client {
    fn start(lan_ns: &str, to: SocketAddrV4) -> Client {
        let ns = std::fs::File::open(format!("/run/netns/{lan_ns}")).expect("LAN namespace");
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, done) = mpsc::channel();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            // SAFETY: setns on a valid namespace fd; affects only this thread.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                panic!("setns: {}", std::io::Error::last_os_error());
            }
            let mut pending: Vec<(i32, Instant)> = Vec::new();
            let mut next = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                let now = Instant::now();
                if now >= next {
                    if let Some(fd) = connect_nonblocking(to) {
                        pending.push((fd, now));
                    }
                    next += Duration::from_millis(CONNECT_EVERY_MS);
                }
                let mut fds: Vec<libc::pollfd> = pending
                    .iter()
                    .map(|(fd, _)| libc::pollfd {
                        fd: *fd,
                        events: libc::POLLOUT,
                        revents: 0,
                    })
                    .collect();
                let wait = next.saturating_duration_since(Instant::now()).as_millis() as i32;
                // SAFETY: fds is a valid array of pollfd.
                unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait.max(1)) };
                let now = Instant::now();
                let mut keep = Vec::with_capacity(pending.len());
                for (p, (fd, started)) in fds.iter().zip(pending.drain(..)) {
                    if p.revents != 0 {
                        let mut err: i32 = 0;
                        let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
                        // SAFETY: reading SO_ERROR into an i32 of the given length.
                        unsafe {
                            libc::getsockopt(
                                fd,
                                libc::SOL_SOCKET,
                                libc::SO_ERROR,
                                (&mut err as *mut i32).cast(),
                                &mut len,
                            );
                            libc::close(fd);
                        }
                        if err == 0 && tx.send((started, now)).is_err() {
                            return;
                        }
                    } else if now.duration_since(started) > Duration::from_secs(3) {
                        // SAFETY: closing our own fd.
                        unsafe { libc::close(fd) };
                    } else {
                        keep.push((fd, started));
                    }
                }
                pending = keep;
            }
            for (fd, _) in pending {
                // SAFETY: closing our own fd.
                unsafe { libc::close(fd) };
            }
        });
        Client {
            stop,
            done,
            thread: Some(thread),
        }
    }

    /// Time from `cut` (asked) to the first handshake of an attempt started
    /// once the hop confirmed the cut (`in_effect`: an attempt started in
    /// between may still complete through wan1), and to the moment mwand's
    /// status showed the failover.
    fn first_after(
        &self,
        m: &Mwand,
        cut: Instant,
        in_effect: Instant,
        limit: Duration,
    ) -> (Option<Duration>, Option<Duration>) {
        let end = cut + limit;
        let mut decided = None;
        loop {
            let Some(left) = end.checked_duration_since(Instant::now()) else {
                return (None, decided);
            };
            match self.done.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok((started, done)) if started >= in_effect => return (Some(done - cut), decided),
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return (None, decided),
            }
            if decided.is_none() && active(&m.status(), "failover") == ["wan2"] {
                decided = Some(cut.elapsed());
            }
        }
    }

    fn drain(&self) {
        while self.done.try_recv().is_ok() {}
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().ok();
        }
    }
}

/// A row of the cut table.
#[derive(Clone, Copy, PartialEq)]
enum Row {
    Loaded,
    Idle,
    Mwan3,
    Mwan3Idle,
}

impl Row {
    fn name(self) -> &'static str {
        match self {
            Row::Loaded => "loaded",
            Row::Idle => "idle",
            Row::Mwan3 => "mwan3",
            Row::Mwan3Idle => "mwan3-idle",
        }
    }

    fn parse(s: &str) -> Option<Row> {
        [Row::Loaded, Row::Idle, Row::Mwan3, Row::Mwan3Idle]
            .into_iter()
            .find(|r| r.name() == s)
    }

    fn tracking(self) -> Tracking {
        if self.mwan3() {
            MWAN3
        } else {
            OURS
        }
    }

    fn mwan3(self) -> bool {
        matches!(self, Row::Mwan3 | Row::Mwan3Idle)
    }

    /// No LAN traffic on wan1 before the cut (the client starts at it).
    fn idle(self) -> bool {
        matches!(self, Row::Idle | Row::Mwan3Idle)
    }

    fn label(self) -> &'static str {
        match self {
            Row::Loaded => "loaded: LAN traffic on wan1, our defaults",
            Row::Idle => "idle: only probes on wan1, our defaults",
            Row::Mwan3 => "loaded, mwan3 defaults (10 s, 4 s, down 5)",
            Row::Mwan3Idle => "idle, mwan3 defaults (10 s, 4 s, down 5)",
        }
    }
}

/// A small xorshift: the random phase of each cut.
struct Phase(u64);

impl Phase {
    fn new() -> Phase {
        Phase(mwan_testbed::monotonic_us() | 1)
    }

    /// Uniform in 0..n.
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn http_target(tb: &Testbed) -> SocketAddrV4 {
    *tb.targets()
        .http
        .iter()
        .find_map(|a| match a {
            std::net::SocketAddr::V4(v4) => Some(v4),
            _ => None,
        })
        .expect("v4 HTTP target")
}

fn ping_target(tb: &Testbed) -> std::net::IpAddr {
    std::net::IpAddr::V4(tb.targets().icmp_v4[0])
}

/// Steady state of wan1 over `secs`: bytes a minute both ways at the ISP
/// hop, the tracker's CPU and its wakeups (context switches) a second.
fn steady_state(tb: &Testbed, m: &Mwand, secs: u64) -> String {
    let pid = tracker_pid(&m.status(), "wan1").unwrap_or(0) as u32;
    let switches = |pid: u32| {
        ["voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"]
            .iter()
            .map(|k| proc_status_kb(&pid.to_string(), k))
            .sum::<u64>()
    };
    let hop_bytes = |tb: &Testbed| {
        tb.hop_status("wan1")
            .map(|h| h.upstream.forwarded_bytes + h.downstream.forwarded_bytes)
            .unwrap_or(0)
    };
    let (b0, t0, s0, at) = (
        hop_bytes(tb),
        proc_ticks(pid),
        switches(pid),
        Instant::now(),
    );
    std::thread::sleep(Duration::from_secs(secs));
    let elapsed = at.elapsed().as_secs_f64();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    format!(
        "{:.0} {:.3} {:.1}",
        (hop_bytes(tb) - b0) as f64 / elapsed * 60.0,
        (proc_ticks(pid) - t0) as f64 / hz / elapsed * 100.0,
        (switches(pid) - s0) as f64 / elapsed
    )
}

/// Cut-to-traffic times over `cuts` cuts of `row`, each at a random phase
/// of the probe interval. Prints `steady ...` (idle rows) and `cuts ...`
/// lines for the parent.
fn cut_to_traffic(row: Row, cuts: usize) {
    let tracking = row.tracking();
    let interval_ms = (tracking.interval.parse::<f64>().expect("interval") * 1000.0) as u64;
    let tb = testbed(2, 7);
    let m = Mwand::start(&tb, &config(tb.wans(), &|_| tracking.clone()));
    // mwan3's 10 s interval needs a few rounds before anything is known.
    let limit = 60 + 20 * u64::from(tracking.down);
    m.wait(limit, "both WANs online", all_online);
    // Steady state before the first cut: idle, or with the LAN's traffic.
    {
        let _traffic = (!row.idle()).then(|| {
            (
                LanPing::start(&tb, ping_target(&tb)),
                Client::start(tb.lan_ns(), http_target(&tb)),
            )
        });
        let figures = steady_state(&tb, &m, 30);
        let bursts = m.log_text().matches("wan1: confirmation burst").count();
        println!("steady {figures} {bursts}");
    }
    let http = http_target(&tb);
    let mut phase = Phase::new();
    let mut times = Vec::new();
    for i in 0..cuts {
        m.wait(limit, "wan1 carrying the failover policy", |s| {
            active(s, "failover") == ["wan1"] && all_online(s)
        });
        let traffic = (!row.idle()).then(|| {
            let ping = LanPing::start(&tb, ping_target(&tb));
            let client = Client::start(tb.lan_ns(), http);
            (ping, client)
        });
        std::thread::sleep(Duration::from_millis(500 + phase.below(interval_ms)));
        let idle_client;
        let client = match &traffic {
            Some((_, c)) => {
                c.drain();
                c
            }
            None => {
                idle_client = Client::start(tb.lan_ns(), http);
                &idle_client
            }
        };
        let cut = Instant::now();
        tb.cut("wan1").expect("cut");
        let in_effect = Instant::now();
        let (first, decided) = client.first_after(&m, cut, in_effect, Duration::from_secs(limit));
        match first {
            Some(d) => {
                eprintln!(
                    "  [{}] cut {}: first new connection after {} ms (policy moved after {})",
                    row.name(),
                    i + 1,
                    d.as_millis(),
                    ms(decided)
                );
                times.push(d.as_millis());
            }
            None => eprintln!(
                "  [{}] cut {}: no connection within {limit} s",
                row.name(),
                i + 1
            ),
        }
        drop(traffic);
        tb.restore("wan1").expect("restore");
    }
    let log = m.log_text();
    println!(
        "bursts {} {} {}",
        log.matches("wan1: confirmation burst answered").count(),
        log.matches("wan1: confirmation burst unanswered").count(),
        log.matches("wan1: confirmation burst inconclusive").count()
    );
    println!(
        "cuts {}",
        times
            .iter()
            .map(u128::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    );
}

fn proc_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the command: state is [0]; utime [11], stime [12].
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

/// A noise case of the false-failover runs.
#[derive(Clone, Copy, PartialEq)]
enum Noise {
    /// 5 % loss, 30 ms jitter (20 ms delay), LAN traffic on wan1.
    Jitter,
    /// A one-way UDP upload at the line rate of a 2 Mbit/s wan1.
    OneWayUdp,
    /// 16 TCP uploads at once filling a 2 Mbit/s wan1's 1 s buffer.
    Saturated,
}

const NOISES: [Noise; 3] = [Noise::Jitter, Noise::OneWayUdp, Noise::Saturated];

impl Noise {
    fn name(self) -> &'static str {
        match self {
            Noise::Jitter => "jitter",
            Noise::OneWayUdp => "udp",
            Noise::Saturated => "saturated",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Noise::Jitter => "5 % loss, 30 ms jitter, LAN traffic",
            Noise::OneWayUdp => "one-way UDP upload at 2 Mbit/s line rate",
            Noise::Saturated => "saturated 2 Mbit/s uplink (16 TCP uploads)",
        }
    }
}

/// LAN traffic of a noise case, stopped when dropped.
struct NoiseTraffic {
    _ping: Option<LanPing>,
    _client: Option<Client>,
    _udp: Option<UdpUpload>,
    uploads: Vec<std::process::Child>,
}

impl Drop for NoiseTraffic {
    fn drop(&mut self) {
        for c in &mut self.uploads {
            c.kill().ok();
            c.wait().ok();
        }
    }
}

/// False failovers of a working wan1 under `noise` over `minutes`: prints
/// `noise <offline verdicts> <policy moves> <bursts answered> <bursts
/// unanswered> <tracker CPU %>` for the parent.
fn noisy_link(noise: Noise, minutes: f64) {
    let tb = testbed(2, 11);
    let m = Mwand::start(&tb, &config(tb.wans(), &ours));
    m.wait(30, "both WANs online", all_online);
    let impairment = match noise {
        Noise::Jitter => Impairment {
            delay_ms: 20.0,
            jitter_ms: 30.0,
            loss_pct: 5.0,
            ..Default::default()
        },
        Noise::OneWayUdp | Noise::Saturated => Impairment {
            rate_kbit: 2000,
            ..Default::default()
        },
    };
    tb.impair("wan1", impairment).expect("impair");
    // Two-way traffic first, so the WAN counts as carrying traffic.
    let ping = LanPing::start(&tb, ping_target(&tb));
    std::thread::sleep(Duration::from_secs(1));
    let traffic = match noise {
        Noise::Jitter => NoiseTraffic {
            _ping: Some(ping),
            _client: Some(Client::start(tb.lan_ns(), http_target(&tb))),
            _udp: None,
            uploads: Vec::new(),
        },
        Noise::OneWayUdp => {
            let sink = *tb
                .targets()
                .dns_server
                .iter()
                .find(|a| a.is_ipv4())
                .expect("DNS");
            let upload = UdpUpload::start(&tb, sink, 2000, 1000);
            drop(ping);
            NoiseTraffic {
                _ping: None,
                _client: None,
                _udp: Some(upload),
                uploads: Vec::new(),
            }
        }
        Noise::Saturated => {
            let sink = tb
                .targets()
                .tcp_sink
                .iter()
                .find(|a| a.is_ipv4())
                .expect("sink");
            let upload = format!("cat /dev/zero > /dev/tcp/{}/{}", sink.ip(), sink.port());
            let children = (0..16)
                .map(|_| {
                    tb.command(Role::Lan, &["bash", "-c", &upload])
                        .expect("upload")
                        .stderr(std::process::Stdio::null())
                        .spawn()
                        .expect("upload")
                })
                .collect();
            drop(ping);
            NoiseTraffic {
                _ping: None,
                _client: None,
                _udp: None,
                uploads: children,
            }
        }
    };
    let pid = tracker_pid(&m.status(), "wan1").unwrap_or(0) as u32;
    let ticks0 = proc_ticks(pid);
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(minutes * 60.0);
    let mut policy_moves = 0;
    let mut on_wan1 = true;
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(500));
        let now_wan1 = active(&m.status(), "failover") == ["wan1"];
        if on_wan1 && !now_wan1 {
            policy_moves += 1;
        }
        on_wan1 = now_wan1;
    }
    drop(traffic);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu = (proc_ticks(pid) - ticks0) as f64 / hz / t0.elapsed().as_secs_f64() * 100.0;
    let downs = m
        .hooks_text()
        .lines()
        .filter(|l| l.starts_with("disconnected wan1"))
        .count();
    let log = m.log_text();
    if downs > 0 {
        // What led to each offline verdict, for the record.
        for l in log.lines().filter(|l| l.contains("wan1:")) {
            eprintln!("  [{}] {l}", noise.name());
        }
    }
    println!(
        "noise {downs} {policy_moves} {} {} {} {cpu:.2}",
        log.matches("wan1: confirmation burst answered").count(),
        log.matches("wan1: confirmation burst unanswered").count(),
        log.matches("wan1: confirmation burst inconclusive").count()
    );
}

/// Runs this program as a child for one row or noise case (`args`), with
/// the binaries of `bin_dir` if given; returns its stdout lines.
fn child(args: Vec<String>, bin_dir: Option<String>) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut cmd = std::process::Command::new(std::env::current_exe().expect("own path"));
        cmd.args(&args).stderr(std::process::Stdio::inherit());
        if let Some(dir) = &bin_dir {
            cmd.env("MWAN_BIN_DIR", dir);
        }
        let out = cmd.output().expect("bench child");
        if !out.status.success() {
            eprintln!("bench-failover: child {args:?} failed: {}", out.status);
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    })
}

/// The words after `key` on the line of `lines` that starts with it.
fn field<'a>(lines: &'a [String], key: &str) -> Vec<&'a str> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(key))
        .map(|rest| rest.split_whitespace().collect())
        .unwrap_or_default()
}

/// Median, p95 (nearest rank) and max of cut times in ms.
fn stats(v: &[u64]) -> Option<(u64, u64, u64)> {
    let mut s = v.to_vec();
    s.sort_unstable();
    let rank = |p: usize| s[(s.len() * p).div_ceil(100).clamp(1, s.len()) - 1];
    (!s.is_empty()).then(|| (rank(50), rank(95), s[s.len() - 1]))
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{} ms", d.as_millis()))
}

const USAGE: &str = "usage: bench-failover [--cuts N] [--mwan3-cuts N] [--minutes M] [--base DIR] [--skip-mwan3] [--skip-noise] [--only-noise]";

fn main() {
    let mut cuts = 20usize;
    let mut mwan3_cuts = 8usize;
    let mut minutes = 10.0f64;
    let mut base: Option<String> = None;
    let (mut skip_mwan3, mut skip_noise, mut only_noise) = (false, false, false);
    let (mut row, mut noise) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| panic!("{a} needs a value; {USAGE}"))
        };
        match a.as_str() {
            "--cuts" => cuts = value().parse().expect("--cuts N"),
            "--mwan3-cuts" => mwan3_cuts = value().parse().expect("--mwan3-cuts N"),
            "--minutes" => minutes = value().parse().expect("--minutes M"),
            "--base" => base = Some(value()),
            "--row" => row = Some(Row::parse(&value()).expect("--row loaded|idle|mwan3")),
            "--noise" => {
                let v = value();
                noise = Some(*NOISES.iter().find(|n| n.name() == v).expect("--noise CASE"));
            }
            "--skip-mwan3" => skip_mwan3 = true,
            "--skip-noise" => skip_noise = true,
            "--only-noise" => only_noise = true,
            other => {
                eprintln!("bench-failover: unknown argument {other}; {USAGE}");
                std::process::exit(2);
            }
        }
    }
    if !require_netns() {
        return;
    }
    if let Some(row) = row {
        cut_to_traffic(row, cuts);
        return;
    }
    if let Some(noise) = noise {
        noisy_link(noise, minutes);
        return;
    }
    eprintln!(
        "bench-failover: {cuts} cuts per row ({mwan3_cuts} with mwan3's defaults), base build {}, {minutes} min per noise case",
        base.as_deref().unwrap_or("none")
    );
    let noise_runs: Vec<_> = if skip_noise {
        Vec::new()
    } else {
        NOISES
            .iter()
            .map(|n| {
                let args = vec![
                    "--noise".into(),
                    n.name().into(),
                    "--minutes".into(),
                    minutes.to_string(),
                ];
                (*n, child(args, None))
            })
            .collect()
    };
    let row_args = |row: Row, n: usize| {
        vec![
            "--row".to_string(),
            row.name().into(),
            "--cuts".into(),
            n.to_string(),
        ]
    };
    let mwan3_runs: Vec<_> = if skip_mwan3 || only_noise {
        Vec::new()
    } else {
        [Row::Mwan3, Row::Mwan3Idle]
            .into_iter()
            .map(|r| (r, child(row_args(r, mwan3_cuts), None)))
            .collect()
    };
    // (build, row, output): ours and the base build's side by side, a row at a time.
    let mut rows: Vec<(&str, Row, Vec<String>)> = Vec::new();
    if !only_noise {
        for row in [Row::Loaded, Row::Idle] {
            let ours = child(row_args(row, cuts), None);
            let base_run = base
                .clone()
                .map(|dir| child(row_args(row, cuts), Some(dir)));
            rows.push(("this", row, ours.join().expect("row")));
            if let Some(b) = base_run {
                rows.push(("base", row, b.join().expect("base row")));
            }
        }
    }
    for (r, run) in mwan3_runs {
        rows.push(("this", r, run.join().expect("mwan3 row")));
    }

    println!(
        "cut of the active WAN -> first new TCP connection through the backup (client connects every {CONNECT_EVERY_MS} ms; cut at a random phase of the probe interval)"
    );
    println!(
        "  {:<5} {:<44} {:>7} {:>7} {:>7} {:>5} {:>9} {:>10}",
        "build", "row", "median", "p95", "max", "cuts", "bursts", "vs base"
    );
    let median_of = |build: &str, row: Row| {
        rows.iter()
            .find(|(b, r, _)| *b == build && *r == row)
            .and_then(|(_, _, out)| stats(&parse_ms(out)))
            .map(|s| s.0)
    };
    for (build, row, out) in &rows {
        let times = parse_ms(out);
        let asked = if row.mwan3() { mwan3_cuts } else { cuts };
        let label = row.label();
        let (med, p95, max) = stats(&times)
            .map_or(("-".into(), "-".into(), "-".into()), |(a, b, c)| {
                (a.to_string(), b.to_string(), c.to_string())
            });
        let ratio = match (*build, median_of("this", *row), median_of("base", *row)) {
            ("base", Some(t), Some(b)) if t > 0 => format!("x{:.2}", b as f64 / t as f64),
            _ => String::new(),
        };
        println!(
            "  {build:<5} {label:<44} {med:>7} {p95:>7} {max:>7} {:>5} {:>9} {ratio:>10}",
            format!("{}/{asked}", times.len()),
            field(out, "bursts ").join("/")
        );
    }
    if !rows.is_empty() {
        println!("  (ms; bursts: confirmation bursts answered/unanswered/inconclusive over the row; vs base: base median / this median)");
        println!("steady state of wan1 before the cuts, 30 s: bytes a minute at the ISP hop (both ways), tracker CPU, tracker wakeups a second, bursts");
        for (build, row, out) in &rows {
            let f = field(out, "steady ");
            if f.len() == 4 && !row.mwan3() {
                println!(
                    "  {build:<5} {:<7} {:>9} B/min {:>6} % {:>6}/s {:>3}",
                    row.name(),
                    f[0],
                    f[1],
                    f[2],
                    f[3]
                );
            }
        }
        println!("  (idle: all of it is probes; loaded: includes the LAN's 100 pings a second and connections)");
    }
    if !noise_runs.is_empty() {
        println!(
            "false failovers over {minutes} min each (our defaults, wan1 carrying the policy):"
        );
        for (n, run) in noise_runs {
            let out = run.join().expect("noise run");
            let f = field(&out, "noise ");
            if f.len() == 6 {
                println!(
                    "  {:<44} {} offline verdict(s), {} policy move(s); bursts {} answered, {} unanswered, {} inconclusive; tracker CPU {} %",
                    n.describe(),
                    f[0],
                    f[1],
                    f[2],
                    f[3],
                    f[4],
                    f[5]
                );
            } else {
                println!("  {:<44} no result", n.describe());
            }
        }
    }
    println!("binary sizes (release profile: opt-level z, LTO, stripped):");
    for b in ["mwand", "mwan-track", "mwanctl"] {
        match find_binary(b)
            .ok()
            .and_then(|p| std::fs::metadata(&p).ok().map(|m| (p, m.len())))
        {
            Some((p, len)) => println!("  {b:<12} {:>8} bytes  ({})", len, p.display()),
            None => println!("  {b:<12} not found"),
        }
    }
}

/// The cut times of a row's output, in ms.
fn parse_ms(out: &[String]) -> Vec<u64> {
    field(out, "cuts ")
        .iter()
        .filter_map(|v| v.parse().ok())
        .collect()
}
