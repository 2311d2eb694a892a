//! bench-flood: what a control client that streams requests and never
//! reads its replies costs mwand (issue 13's first attack), on the testbed.
//!
//! `--clients N` (default 20) such clients flood mwand for `--seconds S`
//! (default 10) while mwanctl asks for `status` every 200 ms. Printed:
//! mwand's log lines and bytes added, its CPU time, its VmRSS before and
//! after, and the slowest `status` answer.
//! Usage: bench-flood [--clients N] [--seconds S]

#[path = "../../tests/mwand_harness/mod.rs"]
mod mwand_harness;

use mwand_harness::*;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Field `n` (1-based, as in proc(5)) of /proc/PID/stat.
fn stat_field(pid: u32, n: usize) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after_name = stat.rsplit_once(')').expect("stat format").1;
    after_name
        .split_whitespace()
        .nth(n - 3)
        .and_then(|f| f.parse().ok())
        .expect("stat field")
}

/// utime + stime of `pid`, in milliseconds.
fn cpu_ms(pid: u32) -> u64 {
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    (stat_field(pid, 14) + stat_field(pid, 15)) * 1000 / hz
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn arg(args: &[String], name: &str, default: u64) -> Result<u64, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a number")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (clients, seconds) = match (arg(&args, "--clients", 20), arg(&args, "--seconds", 10)) {
        (Ok(c), Ok(s)) => (c, s),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("bench-flood: {e}");
            return ExitCode::from(2);
        }
    };
    let Some((_tb, m, _)) = two_wans_online() else {
        return ExitCode::SUCCESS;
    };
    let pid = m.pid();
    let (lines0, bytes0) = {
        let log = m.log_text();
        (log.lines().count(), log.len())
    };
    let (cpu0, rss0) = (cpu_ms(pid), rss_kb(pid));
    let stop = Arc::new(AtomicBool::new(false));
    let flooders: Vec<_> = (0..clients)
        .map(|_| {
            let stop = stop.clone();
            let sock = m.run_dir.join("control.sock");
            std::thread::spawn(move || flood(&sock, &stop))
        })
        .collect();
    let start = Instant::now();
    let (mut slowest, mut failed) = (Duration::ZERO, 0);
    while start.elapsed() < Duration::from_secs(seconds) {
        let asked = Instant::now();
        if !m.ctl(&["status"]).status.success() {
            failed += 1;
        }
        slowest = slowest.max(asked.elapsed());
        std::thread::sleep(Duration::from_millis(200));
    }
    let elapsed = start.elapsed();
    let (cpu1, rss1) = (cpu_ms(pid), rss_kb(pid));
    stop.store(true, Ordering::Relaxed);
    for f in flooders {
        f.join().expect("flood thread");
    }
    let log = m.log_text();
    println!(
        "== {clients} clients streaming status requests without reading, {:.1} s",
        elapsed.as_secs_f64()
    );
    println!(
        "mwand log: +{} lines, +{} bytes",
        log.lines().count() - lines0,
        log.len() - bytes0
    );
    println!(
        "mwand CPU: {} ms ({:.0} % of one core)",
        cpu1 - cpu0,
        (cpu1 - cpu0) as f64 / elapsed.as_millis() as f64 * 100.0
    );
    println!("mwand VmRSS: {rss0} kB before, {rss1} kB at the end");
    println!(
        "mwanctl status: slowest answer {} ms, {failed} failed",
        slowest.as_millis()
    );
    ExitCode::SUCCESS
}
