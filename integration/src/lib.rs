//! Support shared by the integration tests (`tests/`) and the benchmarks
//! (`src/bin/bench-*`). The network itself comes from mwan-testbed.

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

/// A `kB` field of `/proc/<pid>/status` (`pid` may be `self`), 0 when absent.
pub fn proc_kb(pid: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
