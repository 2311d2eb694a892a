//! mwand end to end on the testbed, traffic from the LAN client: a silent cut
//! fails over and back; every WAN cut falls to last_resort and traffic
//! resumes when one returns; a saturated uplink stays online, also when
//! many uploads start at once.
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
    cap_with_deep_queue(&tb, "wan1", 2000);
    let sink = ipv4(&tb.targets().tcp_sink);
    let source = ipv4(&tb.targets().tcp_source);
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

    let seen = m.watch_keeps_policy(
        "wan1",
        "failover",
        Duration::from_secs(18),
        Duration::from_millis(200),
        "saturated wan1",
    );
    let out = down_child.wait_with_output().expect("download output");
    up_child.wait().expect("upload ended");
    let bytes: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(
        !seen.states.contains("offline"),
        "saturated wan1 was declared offline (states {:?}):\n{}",
        seen.states,
        m.log_text()
    );
    // 20 s at 2 Mbit/s is 5 MB; the download shares the link with probes.
    assert!(bytes > 1_000_000, "download moved only {bytes} bytes");
    eprintln!(
        "saturated wan1: states {:?}, smoothed latency up to {:.0} ms, {bytes} bytes down",
        seen.states, seen.max_latency_ms
    );
}

/// Limits `wan`'s uplink to `rate_kbit` behind a 1 s queue: a bulk
/// transfer fills it and the RTT of everything else, probes included,
/// rises towards a second.
fn cap_with_deep_queue(tb: &mwan_testbed::Testbed, wan: &str, rate_kbit: u64) {
    tb.impair(
        wan,
        Impairment {
            rate_kbit,
            queue_ms: 1000,
            ..Default::default()
        },
    )
    .expect("impair");
}

fn ipv4(addrs: &[std::net::SocketAddr]) -> std::net::SocketAddr {
    *addrs.iter().find(|a| a.is_ipv4()).expect("an IPv4 target")
}

/// Issue 14: `uploads` LAN uploads start together on a `rate_kbit` uplink
/// with a 1 s queue. Their first windows fill the queue within a few
/// milliseconds, so the probes' RTT jumps from ~0 to about a second in one
/// step; the configured 3 s timeout covers it, so wan1 must never be
/// declared offline (before the fix it was, ~0.9 s after the start, in 10
/// of 13 trials at 2 Mbit/s with 16 uploads), nor lose the policy.
fn saturated_at_once_stays_online(rate_kbit: u64, uploads: u32) {
    let Some((tb, m, _)) = two_wans_online() else {
        return;
    };
    cap_with_deep_queue(&tb, "wan1", rate_kbit);
    // Let the estimator settle on the capped (still idle) link.
    std::thread::sleep(Duration::from_secs(2));
    let sink = ipv4(&tb.targets().tcp_sink);
    let one = format!("cat /dev/zero > /dev/tcp/{}/{}", sink.ip(), sink.port());
    let all = format!("for i in $(seq {uploads}); do timeout 14 bash -c '{one}' & done; wait");
    let mut load = tb
        .spawn(Role::Lan, &["timeout", "16", "bash", "-c", &all])
        .expect("uploads");

    let seen = m.watch_keeps_policy(
        "wan1",
        "failover",
        Duration::from_secs(12),
        Duration::from_millis(100),
        &format!("{uploads} uploads at {rate_kbit} kbit/s"),
    );
    load.wait().expect("uploads ended");
    let hooks = m.hooks_text();
    assert!(
        !seen.states.contains("offline") && !hooks.contains("disconnected wan1"),
        "{uploads} uploads at {rate_kbit} kbit/s: wan1 declared offline (states {:?}):\n\
         hooks: {hooks}\n{}",
        seen.states,
        m.log_text()
    );
    // The load was real: the queue delayed the probes by hundreds of ms.
    assert!(
        seen.max_latency_ms > 300.0,
        "{uploads} uploads at {rate_kbit} kbit/s: latency only {} ms",
        seen.max_latency_ms
    );
    eprintln!(
        "{uploads} uploads at once, {rate_kbit} kbit/s: states {:?}, smoothed latency up to {:.0} ms",
        seen.states, seen.max_latency_ms
    );
}

#[test]
fn saturated_uplink_survives_16_uploads_starting_at_once() {
    saturated_at_once_stays_online(2000, 16);
}

#[test]
fn saturated_uplink_survives_8_uploads_starting_at_once_at_1_mbit() {
    saturated_at_once_stays_online(1000, 8);
}

/// Issue 14: a probe budget spaces wan1's rounds 6 s apart (30 probes a
/// minute over 3 targets). Before the fix the core expected them at the
/// 0.2 s interval and the healthy WAN went `online -> unknown` every round.
#[test]
fn a_budgeted_wan_stays_online_between_its_rounds() {
    if !mwan_testbed::require_netns() {
        return;
    }
    let tb = testbed(2, 1);
    let text = config(tb.wans(), &ours).replacen(
        "config interface 'wan1'\n\toption enabled '1'\n",
        "config interface 'wan1'\n\toption enabled '1'\n\toption probe_budget_per_minute '30'\n",
        1,
    );
    assert!(text.contains("probe_budget_per_minute"), "{text}");
    let m = Mwand::start(&tb, &text);
    m.wait(20, "both WANs online", all_online);
    // Four budgeted rounds.
    let end = Instant::now() + Duration::from_secs(25);
    let mut seen_states = std::collections::BTreeSet::new();
    while Instant::now() < end {
        seen_states.insert(state(&m.status(), "wan1"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = m.log_text();
    let flips = log.matches("wan1: online -> unknown").count();
    assert!(
        flips == 0 && seen_states == ["online".to_string()].into(),
        "budgeted wan1 left online {flips} times (states {seen_states:?}):\n{log}"
    );
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
