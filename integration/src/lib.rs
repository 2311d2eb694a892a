//! Support shared by the integration tests (`tests/`) and the benchmarks
//! (`src/bin/bench-*`). The network itself comes from mwan-testbed.

pub mod lan_traffic;

use mwan_testbed::WanInfo;

/// Arguments of an ICMP `mwan-track` on `w` probing `targets`, with the
/// WAN's tracker `mark` when given (docs/tracker.md).
pub fn icmp_tracker_args(
    w: &WanInfo,
    mark: Option<&str>,
    targets: &[&str],
    interval: &str,
    timeout: &str,
) -> Vec<String> {
    let mut a: Vec<String> = [
        "--interface",
        &w.name,
        "--device",
        &w.device,
        "--method",
        "ping",
        "--interval",
        interval,
        "--timeout",
        timeout,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(m) = mark {
        a.extend(["--mark".to_string(), m.to_string()]);
    }
    for t in targets {
        a.extend(["--target".to_string(), t.to_string()]);
    }
    a
}

/// A testbed of `wans` WANs with each WAN's tracker mark routed
/// ([`mwan_testbed::Testbed::route_tracker_mark`]); the marks, WAN 1 first.
pub fn testbed_with_tracker_marks(wans: usize) -> (mwan_testbed::Testbed, Vec<String>) {
    let tb = mwan_testbed::Testbed::up(mwan_testbed::TestbedOptions {
        wans,
        ..Default::default()
    })
    .expect("testbed up");
    let marks = (1..=wans)
        .map(|i| tb.route_tracker_mark(i).expect("tracker mark route"))
        .collect();
    (tb, marks)
}

/// The number of `key` (`RssAnon:`, `Pss:`) in a /proc/PID/status or
/// smaps_rollup text, in kB.
pub fn proc_kb(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A `kB` field of `/proc/<pid>/status` (`pid` may be `self`), 0 when absent.
pub fn proc_status_kb(pid: &str, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    proc_kb(&status, key).unwrap_or(0)
}
