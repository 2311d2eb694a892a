//! A restarted mwand adopts what the previous one installed (issue 12,
//! bugs 1 and 2): after a kill -9 and a restart, `ip rule`, `ip route show
//! table all` and `nft list ruleset` are as they were, nothing was deleted
//! or replaced on the way, the trackers kept their pids, and each WAN
//! changed state once at most when its tracker replayed its backlog.
//! Under procd (the ubus double, playing netifd: the config names no
//! device, as on a router) and under the embedded supervisor, with
//! netifd's facts and with the kernel's (devices in the config).
//!
//! Needs root and `make build` first.

mod mwand_harness;

use mwan_testbed::{require_netns, Testbed};
use mwand_harness::*;
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
    let monitor = Monitor::start(tb, &["monitor", "route", "rule"]);

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

    let events = monitor.finish();
    let ours: Vec<&str> = events
        .lines()
        .filter(|l| l.starts_with("Deleted") || l.contains("proto 77"))
        .collect();
    assert!(
        ours.is_empty(),
        "routes or rules deleted or rewritten across the restart:\n{events}\nmwand log:\n{new_log}"
    );
    assert_same_dump(
        &full_kernel_dump(tb),
        &before,
        "the kernel changed across the restart",
        &new_log,
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
    let netifd = WithNetifd::start(&tb, &[]);
    let mut m = netifd.mwand(&tb);
    let s = m.wait(30, "devices learnt from netifd", |s| {
        iface(s, "wan1")["device"] == tb.wans()[0].device.as_str()
    });
    assert_eq!(iface(&s, "wan2")["device"], tb.wans()[1].device.as_str());
    restart_changes_nothing(&tb, &mut m);
    assert!(m.stop(), "mwand did not stop on SIGTERM");
}

#[test]
fn kill_9_under_the_embedded_supervisor_with_netifd_facts_changes_nothing() {
    if !require_netns() {
        return;
    }
    let tb = testbed(2, 1);
    let netifd = WithNetifd::start(&tb, &[]);
    let mut m = netifd.mwand_with(&tb, "embedded");
    restart_changes_nothing(&tb, &mut m);
    assert!(m.stop(), "mwand did not stop on SIGTERM");
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

/// When netifd brings a WAN up (issue 12, minor): from mwand's start, a
/// WAN netifd reports down is no policy member (the policy uses the next one, not an
/// `unreachable` table for a member without routes), its coming up never
/// sets a policy table `unreachable` on the way, and a netifd restart
/// afterwards logs no error and rewrites nothing.
#[test]
fn a_wan_netifd_brings_up_never_leaves_its_policy_without_a_route() {
    if !require_netns() {
        return;
    }
    let tb = testbed(2, 1);
    let netifd = WithNetifd::start(&tb, &["wan1"]);
    // Every IPv4 route mwand writes, from its start (the policies' IPv6
    // tables are `unreachable` throughout: no WAN here has IPv6).
    let monitor = Monitor::start(&tb, &["-4", "monitor", "route"]);
    let mut m = netifd.mwand(&tb);
    m.wait(30, "failover on wan2 while netifd has wan1 down", |s| {
        active(s, "failover") == ["wan2"] && state(s, "wan2") == "online"
    });
    std::fs::write(&netifd.netifd, netifd_dump(tb.wans(), &[])).expect("netifd dump");
    netifd.double.signal(libc::SIGUSR2);
    m.wait(30, "failover back on wan1 once netifd has it up", |s| {
        active(s, "failover") == ["wan1"] && state(s, "wan1") == "online"
    });
    std::thread::sleep(Duration::from_millis(300));
    let before = full_kernel_dump(&tb);

    // netifd restarts: its objects go and come back; nothing changes.
    let log_before = m.log_text().len();
    netifd.double.signal(libc::SIGUSR1);
    std::thread::sleep(Duration::from_secs(2));
    let events = monitor.finish();
    let log = m.log_text();
    let new_log = log.get(log_before..).unwrap_or_default();
    let unreachable: Vec<&str> = events
        .lines()
        .filter(|l| l.contains("unreachable"))
        .collect();
    assert!(
        unreachable.is_empty(),
        "a policy table went unreachable while wan2 was usable:\n{events}\nmwand log:\n{log}"
    );
    assert!(
        !new_log.contains("ERROR"),
        "a netifd restart logged an error:\n{new_log}"
    );
    assert_same_dump(
        &full_kernel_dump(&tb),
        &before,
        "netifd's restart changed the kernel",
        new_log,
    );
    assert!(m.stop(), "mwand did not stop on SIGTERM");
}

/// `mwanctl resume` (mwan3's `ifup`) of a WAN whose device only netifd
/// knows (seen on the real procd and netifd): the resumed WAN gets
/// netifd's facts again, so its tracker comes back and it is online.
/// Before the fix the new WAN state had no device: no tracker, offline.
#[test]
fn a_resumed_wan_keeps_netifds_facts() {
    if !require_netns() {
        return;
    }
    let tb = testbed(2, 1);
    let netifd = WithNetifd::start(&tb, &[]);
    let m = netifd.mwand(&tb);
    m.wait(30, "both WANs online with netifd's facts", all_online);
    for (verb, want) in [("pause", "disabled"), ("resume", "online")] {
        let out = m.ctl(&[verb, "wan2"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        m.wait(30, &format!("wan2 {want} after {verb}"), |s| {
            state(s, "wan2") == want && (verb == "pause" || tracker_connected(s, "wan2"))
        });
    }
}
