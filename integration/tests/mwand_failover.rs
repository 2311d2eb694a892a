//! mwand end to end on the testbed, traffic from the LAN client: a silent cut
//! fails over and back; every WAN cut falls to last_resort and traffic
//! resumes when one returns; a saturated uplink stays online.
//!
//! Needs root and `cargo build --workspace --bins` first. Limits are generous
//! (outcomes, not timings: bench-failover measures those).

mod mwand_harness;

use mwan_testbed::{Impairment, Role};
use mwand_harness::*;
use std::time::{Duration, Instant};

#[test]
fn silent_cut_fails_over_and_back_with_lan_traffic() {
    let Some((tb, m, _)) = two_wans_online() else {
        return;
    };
    let answer = lan_http(&tb, 5).expect("LAN fetch before the cut");
    assert_eq!(wan_of_answer(&tb, &answer), Some("wan1"), "{answer}");

    tb.cut("wan1").expect("cut");
    let s = m.wait(10, "failover to wan2", |s| {
        active(s, "failover") == ["wan2"]
    });
    assert_eq!(state(&s, "wan1"), "offline");
    let answer = lan_http(&tb, 5).expect("LAN fetch during the cut");
    assert_eq!(wan_of_answer(&tb, &answer), Some("wan2"), "{answer}");
    // The balanced policy keeps only the live WAN too.
    assert_eq!(active(&s, "balanced"), ["wan2"]);

    tb.restore("wan1").expect("restore");
    m.wait(30, "fail-back to wan1", |s| {
        active(s, "failover") == ["wan1"]
    });
    let answer = lan_http(&tb, 5).expect("LAN fetch after restore");
    assert_eq!(wan_of_answer(&tb, &answer), Some("wan1"), "{answer}");

    // mwan3-compatible hooks ran for the changes (fork/exec, not blocking).
    // Whole lines: "disconnected wan1 eth1" contains "connected wan1 eth1",
    // so a substring check would pass without any fail-back hook.
    let hooks = m.hooks_text();
    let lines: Vec<&str> = hooks.lines().collect();
    let down = lines.iter().position(|l| *l == "disconnected wan1 eth1");
    let back = lines.iter().rposition(|l| *l == "connected wan1 eth1");
    assert!(down.is_some(), "no disconnected hook for wan1: {hooks}");
    assert!(
        back.is_some_and(|b| Some(b) > down),
        "no connected hook for wan1 after its disconnected one: {hooks}"
    );
}

#[test]
fn all_wans_cut_falls_to_last_resort_then_one_return_resumes_traffic() {
    let Some((tb, m, _)) = two_wans_online() else {
        return;
    };

    tb.cut("wan1").expect("cut wan1");
    tb.cut("wan2").expect("cut wan2");
    let s = m.wait(10, "last resort", |s| {
        active(s, "failover").is_empty()
            && state(s, "wan1") == "offline"
            && state(s, "wan2") == "offline"
    });
    let failover = s["policies"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == "failover"))
        .expect("policy");
    assert_eq!(failover["last_resort"], "unreachable", "{s:#}");
    // The kernel says so too: the policy's table holds an unreachable route.
    let routes = tb
        .exec_ok(
            Role::Router,
            &["ip", "-4", "route", "show", "table", "all", "proto", "77"],
        )
        .expect("routes");
    assert!(routes.contains("unreachable default"), "{routes}");
    assert!(
        lan_http(&tb, 2).is_none(),
        "traffic got out with every WAN cut"
    );

    tb.restore("wan2").expect("restore wan2");
    m.wait(30, "wan2 carries the policy again", |s| {
        active(s, "failover") == ["wan2"]
    });
    let answer = lan_http(&tb, 5).expect("LAN fetch after wan2 returned");
    assert_eq!(wan_of_answer(&tb, &answer), Some("wan2"), "{answer}");
}

#[test]
fn saturated_uplink_stays_online_and_carries_traffic() {
    let Some((tb, m, _)) = two_wans_online() else {
        return;
    };
    // A 2 Mbit/s uplink with a deep buffer: a bulk transfer fills it and the
    // RTT of everything else, probes included, rises towards a second.
    tb.impair(
        "wan1",
        Impairment {
            rate_kbit: 2000,
            queue_ms: 1000,
            ..Default::default()
        },
    )
    .expect("impair");
    let sink = tb
        .targets()
        .tcp_sink
        .iter()
        .find(|a| a.is_ipv4())
        .expect("sink");
    let source = tb
        .targets()
        .tcp_source
        .iter()
        .find(|a| a.is_ipv4())
        .expect("source");
    let upload = format!("cat /dev/zero > /dev/tcp/{}/{}", sink.ip(), sink.port());
    let download = format!(
        "timeout 18 cat < /dev/tcp/{}/{} | wc -c",
        source.ip(),
        source.port()
    );
    let mut up_child = tb
        .spawn(Role::Lan, &["timeout", "20", "bash", "-c", &upload])
        .expect("upload");
    let down_child = tb
        .command(Role::Lan, &["bash", "-c", &download])
        .expect("download")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("download");

    let end = Instant::now() + Duration::from_secs(18);
    let mut seen_states = std::collections::BTreeSet::new();
    let mut max_latency: f64 = 0.0;
    while Instant::now() < end {
        let s = m.status();
        seen_states.insert(state(&s, "wan1"));
        max_latency = max_latency.max(iface(&s, "wan1")["latency_ms"].as_f64().unwrap_or(0.0));
        assert_eq!(
            active(&s, "failover"),
            ["wan1"],
            "saturated wan1 lost the policy: {s:#}\n{}",
            m.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = down_child.wait_with_output().expect("download output");
    up_child.wait().expect("upload ended");
    let bytes: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(
        !seen_states.contains("offline"),
        "saturated wan1 was declared offline (states {seen_states:?}):\n{}",
        m.log_text()
    );
    // 20 s at 2 Mbit/s is 5 MB; the download shares the link with probes.
    assert!(bytes > 1_000_000, "download moved only {bytes} bytes");
    eprintln!("saturated wan1: states {seen_states:?}, smoothed latency up to {max_latency:.0} ms, {bytes} bytes down");
}

#[test]
fn carrier_loss_fails_over_at_once_and_its_return_fails_back() {
    let Some((tb, m, _)) = two_wans_online() else {
        return;
    };
    tb.link("wan1", false).expect("carrier down");
    let s = m.wait(5, "failover on carrier loss", |s| {
        active(s, "failover") == ["wan2"]
    });
    // "disabled" (the link event), not "offline": no probe verdict was
    // waited for.
    assert_eq!(state(&s, "wan1"), "disabled", "{s:#}");
    // ... and says why, so it does not read as `enabled '0'`.
    let wan1 = &s["interfaces"][0];
    assert_eq!(wan1["reason"], "no carrier", "{s:#}");
    let answer = lan_http(&tb, 5).expect("LAN fetch while wan1 has no carrier");
    assert_eq!(wan_of_answer(&tb, &answer), Some("wan2"), "{answer}");
    // Forcing traffic onto the dead WAN is allowed, with a warning.
    let out = m.ctl(&["override", "wan1"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        said.contains("note: wan1 is disabled (no carrier): traffic forced onto it is likely lost"),
        "{said}"
    );
    assert!(m.ctl(&["override", "--clear"]).status.success());
    tb.link("wan1", true).expect("carrier up");
    m.wait(30, "fail-back after carrier returns", |s| {
        active(s, "failover") == ["wan1"] && state(s, "wan1") == "online"
    });
    let hooks = m.hooks_text();
    assert!(hooks.contains("ifdown wan1 eth1"), "hooks: {hooks}");
    assert!(hooks.contains("ifup wan1 eth1"), "hooks: {hooks}");
}
