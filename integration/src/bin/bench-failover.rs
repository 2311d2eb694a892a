//! bench-failover: what a user of mwand feels, on the testbed.
//!
//! 1. Cut to traffic: the LAN client opens a new TCP connection every 50 ms;
//!    wan1 (the failover policy's primary) is cut silently; the figure is
//!    the time from the cut to the first completed handshake through the
//!    backup. Median and max over `--cuts` cuts (default 5), with our
//!    defaults and with mwan3's defaults replayed through our engine.
//! 2. False failovers: wan1 at 5 % loss and 30 ms jitter for `--minutes`
//!    (default 10); every time it was declared offline counts.
//! 3. Footprint: RSS and CPU of mwand and each tracker over that run.
//! 4. Size of each release binary (the release profile strips them).
//!
//! The three measurements run side by side on three testbeds.
//! Usage: bench-failover [--cuts N] [--minutes M] [--skip-mwan3]

#[path = "../../tests/mwand_harness/mod.rs"]
mod mwand_harness;

use mwan_integration::proc_status_kb;
use mwan_testbed::{find_binary, require_netns, Impairment};
use mwand_harness::*;
use std::net::SocketAddrV4;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A LAN client opening one TCP connection every 50 ms; each completed
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
                    next += Duration::from_millis(50);
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

    /// Time from `cut` to the first handshake of an attempt started after
    /// it, and to the moment mwand's status showed the failover.
    fn first_after(
        &self,
        m: &Mwand,
        cut: Instant,
        limit: Duration,
    ) -> (Option<Duration>, Option<Duration>) {
        let end = cut + limit;
        let mut decided = None;
        loop {
            let Some(left) = end.checked_duration_since(Instant::now()) else {
                return (None, decided);
            };
            match self.done.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok((started, done)) if started >= cut => return (Some(done - cut), decided),
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

/// Cut-to-traffic times over `cuts` cuts with `tracking` on every WAN.
fn cut_to_traffic(label: &str, tracking: Tracking, cuts: usize) -> Vec<Duration> {
    let tb = testbed(2, 7);
    let m = Mwand::start(&tb, &config(tb.wans(), &|_| tracking.clone()));
    // mwan3's 10 s interval needs a few rounds before anything is known.
    let limit = 60 + 20 * u64::from(tracking.down);
    m.wait(limit, "both WANs online", all_online);
    let http = *tb
        .targets()
        .http
        .iter()
        .find_map(|a| match a {
            std::net::SocketAddr::V4(v4) => Some(v4),
            _ => None,
        })
        .expect("v4 HTTP target");
    let client = Client::start(tb.lan_ns(), http);
    let mut times = Vec::new();
    for i in 0..cuts {
        m.wait(limit, "wan1 carrying the failover policy", |s| {
            active(s, "failover") == ["wan1"] && all_online(s)
        });
        std::thread::sleep(Duration::from_millis(500));
        client.drain();
        let cut = Instant::now();
        tb.cut("wan1").expect("cut");
        let (traffic, decided) = client.first_after(&m, cut, Duration::from_secs(limit));
        match traffic {
            Some(d) => {
                eprintln!(
                    "  [{label}] cut {}: first new connection after {} ms (policy moved after {})",
                    i + 1,
                    d.as_millis(),
                    ms(decided)
                );
                times.push(d);
            }
            None => eprintln!("  [{label}] cut {}: no connection within {limit} s", i + 1),
        }
        tb.restore("wan1").expect("restore");
    }
    times
}

struct Footprint {
    name: String,
    rss_kb: u64,
    rss_anon_kb: u64,
    cpu_pct: f64,
}

fn proc_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the command: state is [0]; utime [11], stime [12].
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

/// False failovers of a noisy but working wan1 over `minutes`, and the
/// footprint of mwand and its trackers meanwhile.
fn noisy_link(minutes: f64) -> (usize, usize, Vec<Footprint>) {
    let tb = testbed(2, 11);
    let m = Mwand::start(&tb, &config(tb.wans(), &ours));
    m.wait(30, "both WANs online", all_online);
    tb.impair(
        "wan1",
        Impairment {
            delay_ms: 20.0,
            jitter_ms: 30.0,
            loss_pct: 5.0,
            ..Default::default()
        },
    )
    .expect("impair");
    let status = m.status();
    let mut pids: Vec<(String, u32)> = vec![("mwand".into(), m.pid())];
    for w in ["wan1", "wan2"] {
        if let Some(p) = tracker_pid(&status, w) {
            pids.push((format!("mwan-track {w}"), p as u32));
        }
    }
    let ticks0: Vec<u64> = pids.iter().map(|(_, p)| proc_ticks(*p)).collect();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(minutes * 60.0);
    let mut policy_moves = 0;
    let mut on_wan1 = true;
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(500));
        let s = m.status();
        let now_wan1 = active(&s, "failover") == ["wan1"];
        if on_wan1 && !now_wan1 {
            policy_moves += 1;
        }
        on_wan1 = now_wan1;
    }
    let secs = t0.elapsed().as_secs_f64();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let footprint = pids
        .iter()
        .zip(ticks0)
        .map(|((name, pid), t0)| Footprint {
            name: name.clone(),
            rss_kb: proc_status_kb(&pid.to_string(), "VmRSS:"),
            rss_anon_kb: proc_status_kb(&pid.to_string(), "RssAnon:"),
            cpu_pct: (proc_ticks(*pid).saturating_sub(t0)) as f64 / hz / secs * 100.0,
        })
        .collect();
    let downs = m
        .hooks_text()
        .lines()
        .filter(|l| l.starts_with("disconnected wan1"))
        .count();
    (downs, policy_moves, footprint)
}

fn median(v: &[Duration]) -> Option<Duration> {
    let mut s = v.to_vec();
    s.sort();
    s.get(s.len() / 2).copied()
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{} ms", d.as_millis()))
}

fn main() {
    let mut cuts = 5usize;
    let mut minutes = 10.0f64;
    let mut skip_mwan3 = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--cuts" => cuts = args.next().and_then(|v| v.parse().ok()).expect("--cuts N"),
            "--minutes" => {
                minutes = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--minutes M")
            }
            "--skip-mwan3" => skip_mwan3 = true,
            other => {
                eprintln!("bench-failover: unknown argument {other}; usage: [--cuts N] [--minutes M] [--skip-mwan3]");
                std::process::exit(2);
            }
        }
    }
    if !require_netns() {
        return;
    }
    eprintln!(
        "bench-failover: {cuts} cuts per setting, {minutes} min of a 5 % loss / 30 ms jitter link; running side by side"
    );
    let ours_run = std::thread::spawn(move || cut_to_traffic("ours", OURS, cuts));
    let mwan3_run =
        (!skip_mwan3).then(|| std::thread::spawn(move || cut_to_traffic("mwan3", MWAN3, cuts)));
    let noisy_run = std::thread::spawn(move || noisy_link(minutes));
    let ours_t = ours_run.join().expect("ours run");
    let mwan3_t = mwan3_run.map(|h| h.join().expect("mwan3 run"));
    let (downs, moves, footprint) = noisy_run.join().expect("noisy run");

    println!("cut of the active WAN -> first new TCP connection through the backup (client connects every 50 ms)");
    println!(
        "  {:<52} {:>10} {:>10} {:>6}",
        "settings", "median", "max", "cuts"
    );
    println!(
        "  {:<52} {:>10} {:>10} {:>6}",
        "ours (0.2 s interval, down 3, adaptive timeout)",
        ms(median(&ours_t)),
        ms(ours_t.iter().max().copied()),
        format!("{}/{cuts}", ours_t.len())
    );
    if let Some(t) = &mwan3_t {
        println!(
            "  {:<52} {:>10} {:>10} {:>6}",
            "mwan3 defaults (10 s interval, 4 s timeout, down 5)",
            ms(median(t)),
            ms(t.iter().max().copied()),
            format!("{}/{cuts}", t.len())
        );
    }
    println!("false failovers over {minutes} min at 5 % loss, 30 ms jitter (ours): {downs} offline verdict(s), {moves} policy move(s)");
    println!("footprint over that run (steady state):");
    for f in &footprint {
        println!(
            "  {:<18} RSS {:>6} kB  RssAnon {:>6} kB  CPU {:.2} %",
            f.name, f.rss_kb, f.rss_anon_kb, f.cpu_pct
        );
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
