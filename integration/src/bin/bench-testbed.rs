//! Measures the testbed's impairment hop against its settings:
//! - iputils `ping` over N probes (default 1000, 10 ms apart) at 50 ms +-
//!   10 ms and 10 % loss: mean, mdev and loss against the setting;
//! - TCP goodput under a 10 Mbit/s cap and the RTT a ping sees meanwhile
//!   (bufferbloat of the cap's queue);
//! - unimpaired TCP goodput through the hop;
//! - the hop's CPU over each run, from /proc/<pid>/stat.
//!
//! Run as root after `cargo build --release --workspace --bins`:
//! `target/release/bench-testbed [--probes N] [--seed S]`.

use mwan_testbed::{netns, require_netns, Impairment, Role, Testbed, TestbedOptions};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

struct PingSummary {
    sent: u32,
    received: u32,
    avg: f64,
    max: f64,
    mdev: f64,
}

fn parse_ping(text: &str) -> Option<PingSummary> {
    let counts = text.lines().find(|l| l.contains("packets transmitted"))?;
    let num = |suffix: &str| -> Option<u32> {
        counts.split(',').find_map(|p| {
            p.trim()
                .strip_suffix(suffix)?
                .split_whitespace()
                .last()?
                .parse()
                .ok()
        })
    };
    let rtt = text.lines().find(|l| l.starts_with("rtt"))?;
    let v: Vec<f64> = rtt
        .split('=')
        .nth(1)?
        .split(',')
        .next()?
        .trim()
        .trim_end_matches(" ms")
        .split('/')
        .filter_map(|x| x.parse().ok())
        .collect();
    Some(PingSummary {
        sent: num("packets transmitted")?,
        received: num("received")?,
        avg: *v.get(1)?,
        max: *v.get(2)?,
        mdev: *v.get(3)?,
    })
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    // After the command: state is field 3, utime 14, stime 15 (1-based).
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// Measures the CPU share (percent of one core) of `pid` while `f` runs.
fn with_cpu<T>(pid: u32, f: impl FnOnce() -> T) -> (T, f64) {
    let (c0, t0) = (cpu_seconds(pid), Instant::now());
    let out = f();
    let pct = 100.0 * (cpu_seconds(pid) - c0) / t0.elapsed().as_secs_f64();
    (out, pct)
}

fn ping(tb: &Testbed, args: &[&str]) -> Result<PingSummary, String> {
    let mut argv = vec!["ping", "-n", "-q"];
    argv.extend_from_slice(args);
    let out = tb.exec(Role::Router, &argv).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_ping(&text).ok_or_else(|| format!("cannot parse ping output: {text}"))
}

/// Downloads from the internet's TCP source for `warmup + measure`; returns
/// goodput in Mbit/s over the measured part.
fn download(
    tb: &Testbed,
    source: SocketAddr,
    warmup: Duration,
    measure: Duration,
) -> Result<f64, String> {
    netns::in_netns(tb.router_ns(), move || {
        let mut s = TcpStream::connect_timeout(&source, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut buf = vec![0u8; 256 * 1024];
        let start = Instant::now();
        let mut counted = 0u64;
        let mut measuring_since = None;
        while start.elapsed() < warmup + measure {
            let n = s.read(&mut buf)?;
            if n == 0 {
                break;
            }
            if start.elapsed() >= warmup {
                measuring_since.get_or_insert_with(Instant::now);
                counted += n as u64;
            }
        }
        let secs = measuring_since.map_or(1e-9, |t| t.elapsed().as_secs_f64());
        Ok(counted as f64 * 8.0 / secs / 1e6)
    })
    .map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let mut probes = 1000u32;
    let mut seed = 1u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = args.next();
        match (a.as_str(), value.as_deref().map(str::parse::<u64>)) {
            ("--probes", Some(Ok(n))) if n > 0 => probes = n as u32,
            ("--seed", Some(Ok(n))) => seed = n,
            _ => {
                eprintln!("usage: bench-testbed [--probes N>0] [--seed S] (got '{a}')");
                return ExitCode::FAILURE;
            }
        }
    }
    if !require_netns() {
        eprintln!("bench-testbed: needs root and network namespaces");
        return ExitCode::FAILURE;
    }
    match run(probes, seed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-testbed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(probes: u32, seed: u64) -> Result<(), String> {
    let tb = Testbed::up(TestbedOptions { wans: 1, seed }).map_err(|e| e.to_string())?;
    let hop = tb.hop_pid("wan1").map_err(|e| e.to_string())?;
    let target = tb.targets().icmp_v4[0].to_string();
    let source = tb.targets().tcp_source[0];
    let mut rows: Vec<(String, String, String)> = Vec::new();

    // Baseline RTT without impairment, to show what the hop path itself adds.
    let base = ping(&tb, &["-c", "200", "-i", "0.01", &target])?;

    let imp = Impairment {
        delay_ms: 50.0,
        jitter_ms: 10.0,
        loss_pct: 10.0,
        ..Default::default()
    };
    tb.impair("wan1", imp).map_err(|e| e.to_string())?;
    let count = probes.to_string();
    let (p, cpu_ping) = with_cpu(hop, || {
        ping(&tb, &["-c", &count, "-i", "0.01", "-W", "2", &target])
    });
    let p = p?;
    let loss = 100.0 * f64::from(p.sent - p.received) / f64::from(p.sent);
    rows.push((
        "unimpaired RTT (200 probes)".into(),
        "-".into(),
        format!("avg {:.3} ms, mdev {:.3} ms", base.avg, base.mdev),
    ));
    rows.push((
        format!("RTT mean ({} probes, 10 ms apart)", p.sent),
        "50 ms".into(),
        format!("{:.2} ms ({:+.2})", p.avg, p.avg - 50.0),
    ));
    rows.push((
        "RTT mdev".into(),
        "10 ms".into(),
        format!("{:.2} ms ({:+.2})", p.mdev, p.mdev - 10.0),
    ));
    rows.push((
        "loss".into(),
        "10 %".into(),
        format!("{:.1} % ({:+.1} points)", loss, loss - 10.0),
    ));
    rows.push((
        "hop CPU during the ping run".into(),
        "-".into(),
        format!("{cpu_ping:.2} % of one core"),
    ));

    let capped = Impairment {
        rate_kbit: 10_000,
        ..Default::default()
    };
    tb.impair("wan1", capped).map_err(|e| e.to_string())?;
    let pinger = tb
        .command(
            Role::Router,
            &[
                "ping", "-n", "-q", "-c", "75", "-i", "0.2", "-W", "3", &target,
            ],
        )
        .map_err(|e| e.to_string())?
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let wire_before = tb.hop_status("wan1").map_err(|e| e.to_string())?;
    let wire_start = Instant::now();
    let (goodput, cpu_cap) = with_cpu(hop, || {
        download(&tb, source, Duration::from_secs(3), Duration::from_secs(12))
    });
    let goodput = goodput?;
    let wire_after = tb.hop_status("wan1").map_err(|e| e.to_string())?;
    let wire = (wire_after.downstream.forwarded_bytes - wire_before.downstream.forwarded_bytes)
        as f64
        * 8.0
        / wire_start.elapsed().as_secs_f64()
        / 1e6;
    let ping_out = pinger.wait_with_output().map_err(|e| e.to_string())?;
    let loaded = parse_ping(&String::from_utf8_lossy(&ping_out.stdout));
    rows.push((
        "TCP goodput under cap (CUBIC, 12 s)".into(),
        "10 Mbit/s".into(),
        format!("{goodput:.2} Mbit/s payload"),
    ));
    rows.push((
        "frames leaving the cap (15 s, incl. start)".into(),
        "10 Mbit/s".into(),
        format!("{wire:.2} Mbit/s of Ethernet frames"),
    ));
    rows.push((
        "ping RTT during that download".into(),
        "up to ~1000 ms".into(),
        loaded.map_or("no ping summary".into(), |l| {
            format!("avg {:.0} ms, max {:.0} ms", l.avg, l.max)
        }),
    ));
    rows.push((
        "hop CPU at the cap".into(),
        "-".into(),
        format!("{cpu_cap:.2} % of one core"),
    ));

    tb.impair("wan1", Impairment::default())
        .map_err(|e| e.to_string())?;
    let (free, cpu_free) = with_cpu(hop, || {
        download(&tb, source, Duration::from_secs(1), Duration::from_secs(4))
    });
    rows.push((
        "TCP goodput, no impairment (4 s)".into(),
        "-".into(),
        format!("{:.0} Mbit/s", free?),
    ));
    rows.push((
        "hop CPU at that rate".into(),
        "-".into(),
        format!("{cpu_free:.1} % of one core"),
    ));

    println!("bench-testbed: impairment hop vs setting (seed {seed})");
    println!("{:<44} {:<16} measured", "figure", "setting");
    for (a, b, c) in &rows {
        println!("{a:<44} {b:<16} {c}");
    }
    Ok(())
}
