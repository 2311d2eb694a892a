//! A restarted mwand adopts what the previous one installed (issue 12,
//! bugs 1 and 2): after a kill -9 and a restart, `ip rule`, `ip route show
//! table all` and `nft list ruleset` are as they were, nothing was deleted
//! or replaced on the way, the trackers kept their pids, and each WAN
//! changed state once at most when its tracker replayed its backlog.
//! Under procd (the ubus double, playing netifd: the config names no
//! device, as on a router) and under the embedded supervisor (devices in
//! the config: the kernel's facts).
//!
//! Needs root and `make build` first.

mod mwand_harness;

use mwan_testbed::{require_netns, Role, Testbed};
use mwand_harness::*;
use std::io::Read;
use std::time::Duration;

/// Kills mwand with SIGKILL, starts it again, and checks that the restart
/// changed nothing (see the module's comment).
fn restart_changes_nothing(tb: &Testbed, m: &mut Mwand) {
    let s = m.wait(30, "both WANs online", all_online);
    let pids = (tracker_pid(&s, "wan1"), tracker_pid(&s, "wan2"));
    assert!(pids.0.is_some() && pids.1.is_some(), "{s:#}");
    // Let the trackers' settings and the data plane settle.
    std::thread::sleep(Duration::from_millis(500));
    let before = full_kernel_dump(tb);
    let mut monitor = tb
        .command(Role::Router, &["ip", "monitor", "route", "rule"])
        .expect("monitor")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("ip monitor");
    std::thread::sleep(Duration::from_millis(200));

    m.kill9();
    let log_before = m.log_text().len();
    m.spawn(tb);
    let s = m.wait(30, "trackers back with the new mwand", |s| {
        all_online(s) && tracker_connected(s, "wan1") && tracker_connected(s, "wan2")
    });
    // The trackers replay their backlog on reconnecting; give mwand time
    // to show any flapping that follows.
    std::thread::sleep(Duration::from_secs(2));
    let log = m.log_text();
    let new_log = log.get(log_before..).unwrap_or_default().to_string();

    monitor.kill().expect("stop monitor");
    monitor.wait().expect("reap monitor");
    let mut events = String::new();
    monitor
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut events)
        .expect("monitor output");
    let ours: Vec<&str> = events
        .lines()
        .filter(|l| l.starts_with("Deleted") || l.contains("proto 77"))
        .collect();
    assert!(
        ours.is_empty(),
        "routes or rules deleted or rewritten across the restart:\n{events}\nmwand log:\n{new_log}"
    );
    assert_eq!(
        full_kernel_dump(tb),
        before,
        "the kernel changed across the restart; mwand log:\n{new_log}"
    );
    assert!(
        !new_log.contains("replaced"),
        "the restart replaced the nft table:\n{new_log}"
    );
    assert_eq!(s["dataplane"]["nft_installs"], 0, "{s:#}");
    assert_eq!(
        (tracker_pid(&s, "wan1"), tracker_pid(&s, "wan2")),
        pids,
        "trackers replaced, not adopted:\n{new_log}"
    );
    for wan in ["wan1", "wan2"] {
        let changes = transitions(&new_log, wan);
        assert!(
            changes.len() <= 1,
            "{wan} changed state {} times after the restart: {changes:?}\n{new_log}",
            changes.len()
        );
    }
}

#[test]
fn kill_9_under_procd_with_netifd_facts_changes_nothing_in_the_kernel() {
    if !require_netns() {
        return;
    }
    let tb = testbed(2, 1);
    let dir = std::env::temp_dir().join(format!("mwand-restart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let netifd = dir.join("netifd.json");
    std::fs::write(&netifd, netifd_dump(tb.wans())).expect("netifd dump");
    let double = Double::start(&tb, Some(&netifd));
    let mut m = Mwand::start_with(
        &tb,
        &config_without_devices(tb.wans()),
        &[
            "--supervisor",
            "procd",
            "--ubus-socket",
            path_str(&double.socket),
        ],
    );
    let s = m.wait(30, "devices learnt from netifd", |s| {
        iface(s, "wan1")["device"] == tb.wans()[0].device.as_str()
    });
    assert_eq!(iface(&s, "wan2")["device"], tb.wans()[1].device.as_str());
    restart_changes_nothing(&tb, &mut m);
    assert!(m.stop(), "mwand did not stop on SIGTERM");
    drop(double);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn kill_9_under_the_embedded_supervisor_with_kernel_facts_changes_nothing() {
    if !require_netns() {
        return;
    }
    let tb = testbed(2, 1);
    let mut m = Mwand::start(&tb, &config(tb.wans(), &ours));
    restart_changes_nothing(&tb, &mut m);
}
