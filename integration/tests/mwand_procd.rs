//! mwand under procd semantics, on the testbed: the ubus+procd test double
//! (`mwan-ubus-double`, checked against captures of the real ones by the
//! ubus crate's tests) runs the trackers; mwand asks for them over ubus.
//! Per-WAN restart leaves the other tracker alone, a crashed mwand finds
//! procd's trackers on restart, a clean stop removes them.
//!
//! Needs root and `cargo build --workspace --bins` first.

mod mwand_harness;

use mwan_testbed::require_netns;
use mwand_harness::*;
use std::time::{Duration, Instant};

fn parent_of(pid: u64) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn procd_runs_the_trackers_and_restarts_one_alone() {
    if !require_netns() {
        return;
    }
    let tb = testbed(2, 1);
    let double = Double::start(&tb, None);
    let mut m = Mwand::start_with(
        &tb,
        &config(tb.wans(), &ours),
        &[
            "--supervisor",
            "procd",
            "--ubus-socket",
            path_str(&double.socket),
        ],
    );
    // procd (without ujail, as on most routers, and as the double plays
    // it) would run an instance's `user` with no capability: the trackers
    // start as root and switch to the tracker user themselves (no `mwan`
    // user on this host: nobody), keeping CAP_NET_RAW and CAP_NET_ADMIN.
    let s = m.wait(20, "both WANs online with procd's trackers", all_online);
    for wan in ["wan1", "wan2"] {
        let pid = tracker_pid(&s, wan).expect("tracker pid");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(
            field("Uid:"),
            "65534\t65534\t65534\t65534",
            "{wan}: {status}"
        );
        assert_eq!(field("CapEff:"), "0000000000003000", "{wan}: {status}");
    }
    let (pid1, pid2) = (
        tracker_pid(&s, "wan1").expect("wan1 pid"),
        tracker_pid(&s, "wan2").expect("wan2 pid"),
    );
    assert_eq!(
        parent_of(pid1),
        Some(double.child.id()),
        "wan1's tracker is not procd's"
    );
    assert_eq!(
        parent_of(pid2),
        Some(double.child.id()),
        "wan2's tracker is not procd's"
    );

    let out = m.ctl(&["restart", "wan2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = m.wait(20, "procd restarted wan2's tracker", |s| {
        tracker_pid(s, "wan2").is_some_and(|p| p != pid2) && tracker_connected(s, "wan2")
    });
    assert_eq!(
        tracker_pid(&s, "wan1"),
        Some(pid1),
        "wan1's tracker was restarted too"
    );
    let pid2 = tracker_pid(&s, "wan2").expect("pid");

    // A crashed mwand: procd keeps the trackers, the new mwand uses them.
    m.kill9();
    m.spawn(&tb);
    let s = m.wait(20, "trackers reconnected to the new mwand", |s| {
        all_online(s) && tracker_connected(s, "wan1") && tracker_connected(s, "wan2")
    });
    assert_eq!(tracker_pid(&s, "wan1"), Some(pid1));
    assert_eq!(tracker_pid(&s, "wan2"), Some(pid2));

    // A clean stop removes procd's tracker service.
    assert!(m.stop(), "mwand did not stop on SIGTERM");
    let end = Instant::now() + Duration::from_secs(10);
    while !m.tracker_pids().is_empty() {
        assert!(
            Instant::now() < end,
            "trackers still running after a clean stop: {:?}",
            m.tracker_pids()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
