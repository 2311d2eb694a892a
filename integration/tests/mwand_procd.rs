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

/// A two-WAN testbed and mwand with the double as procd (our config),
/// or None where namespaces are unavailable.
fn under_procd() -> Option<(mwan_testbed::Testbed, Double, Mwand)> {
    if !require_netns() {
        return None;
    }
    let tb = testbed(2, 1);
    let double = Double::start(&tb, None);
    let m = Mwand::start_with(
        &tb,
        &config(tb.wans(), &ours),
        &[
            "--supervisor",
            "procd",
            "--ubus-socket",
            path_str(&double.socket),
        ],
    );
    Some((tb, double, m))
}

#[test]
fn procd_runs_the_trackers_and_restarts_one_alone() {
    let Some((tb, double, mut m)) = under_procd() else {
        return;
    };
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

/// `ubus call mwan3 status`: `lost` and `turn` as mwan3track's LOST and
/// TURN files (net/mwan3), which mwan3's object reports. A cut WAN's
/// `lost` grows by its 3 targets per failed round while the other's stays
/// 0; its `turn` keeps counting rounds while it is down and starts again
/// at the round that brings it back online, when `lost` is 0 again.
#[test]
fn mwan3_status_lost_and_turn_follow_a_cut_and_a_recovery() {
    let Some((tb, double, m)) = under_procd() else {
        return;
    };
    m.wait(20, "both WANs online", all_online);
    let mut ubus =
        mwan_ubus::blocking::BlockingClient::connect(&double.socket, Duration::from_secs(5))
            .expect("ubus client");
    let mut mwan3 = |wan: &str| {
        let args = mwan_ubus::blobmsg::Table::new()
            .with("interface", mwan_ubus::blobmsg::Value::string(wan));
        let reply = ubus.call("mwan3", "status", args).expect("mwan3 status");
        let i = &reply.to_json()["interfaces"][wan];
        (
            i["status"].as_str().unwrap_or("").to_string(),
            i["lost"].as_u64(),
            i["turn"].as_u64(),
        )
    };
    tb.cut("wan2").expect("cut wan2");
    m.wait(20, "wan2 offline", |s| state(s, "wan2") == "offline");
    // Many rounds down, so a count that did not start again would show.
    let end = Instant::now() + Duration::from_secs(60);
    let (status, lost, turn) = loop {
        let w2 = mwan3("wan2");
        if w2.2 >= Some(50) || Instant::now() > end {
            break w2;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status, "offline");
    let lost = lost.expect("lost");
    assert!(
        lost >= 9 && lost % 3 == 0,
        "lost {lost}: 3 targets per failed round"
    );
    assert!(
        turn >= Some(lost / 3),
        "turn {turn:?} counts every failed round"
    );
    let (_, lost1, turn1) = mwan3("wan1");
    assert_eq!(lost1, Some(0), "wan1 lost nothing");
    assert!(turn1 >= Some(1), "wan1's rounds: {turn1:?}");

    tb.restore("wan2").expect("restore wan2");
    m.wait(30, "wan2 online again", |s| state(s, "wan2") == "online");
    let (status, lost, turn) = mwan3("wan2");
    assert_eq!((status.as_str(), lost), ("online", Some(0)), "{turn:?}");
    assert!(
        turn >= Some(1) && turn < Some(50),
        "turn {turn:?} did not start again when wan2 came online"
    );
}
