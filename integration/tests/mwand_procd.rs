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
    // The capabilities file the OpenWrt package installs.
    let caps = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../openwrt-package/files/mwan-track.capabilities.json"
    );
    let mut m = Mwand::start_with(
        &tb,
        &config(tb.wans(), &ours),
        &[
            "--supervisor",
            "procd",
            "--ubus-socket",
            path_str(&double.socket),
            "--tracker-capabilities",
            caps,
        ],
    );
    let s = m.wait(20, "both WANs online with procd's trackers", all_online);
    // Least privilege: procd is asked to run each tracker unprivileged
    // (no `mwan` user on this host: nobody) with the capabilities file.
    // The double records the user (and runs trackers as root).
    let mut ubus =
        mwan_ubus::blocking::BlockingClient::connect(&double.socket, Duration::from_secs(5))
            .expect("ubus client");
    let list = ubus
        .call("service", "list", mwan_ubus::blobmsg::Table::new())
        .expect("service list")
        .to_json();
    let trackers: Vec<&serde_json::Value> = list
        .as_object()
        .into_iter()
        .flat_map(|services| services.values())
        .filter_map(|svc| svc["instances"].as_object())
        .flat_map(|instances| instances.values())
        .filter(|i| i["command"].to_string().contains("--interface"))
        .collect();
    assert_eq!(trackers.len(), 2, "{list:#}");
    for t in &trackers {
        assert_eq!(
            t["user"], "nobody",
            "tracker instance not unprivileged: {t:#}"
        );
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
