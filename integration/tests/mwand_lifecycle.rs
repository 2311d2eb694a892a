//! mwand's life on the testbed: hot reload (unchanged WANs keep tracker pid
//! and state; an invalid config changes nothing), per-WAN tracker restart,
//! a tracker killed and respawned, mwand killed with SIGKILL and restarted
//! without a route flap, the control socket refusing garbage, clean stop.
//!
//! Needs root and `cargo build --workspace --bins` first.

mod mwand_harness;

use mwan_testbed::{Role, Testbed};
use mwand_harness::*;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::time::Duration;

#[test]
fn reload_touches_only_what_changed_and_rejects_bad_configs() {
    let Some((tb, m, before)) = two_wans_online() else {
        return;
    };
    let text = std::fs::read_to_string(&m.config).expect("config");
    let (pid1, pid2) = (tracker_pid(&before, "wan1"), tracker_pid(&before, "wan2"));
    std::thread::sleep(Duration::from_millis(1500));
    let age1 = iface(&m.status(), "wan1")["state_age_s"]
        .as_u64()
        .expect("age");
    assert!(age1 >= 1);

    // Same file: nothing changes at all.
    let out = m.ctl(&["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(tracker_pid(&m.status(), "wan1"), pid1);

    // wan2 probes twice per target from now on: only its tracker restarts.
    let wan2_at = text.find("config interface 'wan2'").expect("wan2 section");
    let (head, tail) = text.split_at(wan2_at);
    let changed = format!(
        "{head}{}",
        tail.replacen("option count '1'", "option count '2'", 1)
    );
    std::fs::write(&m.config, &changed).expect("write");
    let out = m.ctl(&["reload"]);
    assert!(
        out.status.success(),
        "reload: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = m.wait(20, "wan2's new tracker connected", |s| {
        tracker_pid(s, "wan2") != pid2 && tracker_connected(s, "wan2")
    });
    assert_eq!(
        tracker_pid(&s, "wan1"),
        pid1,
        "unchanged wan1 lost its tracker"
    );
    assert_eq!(state(&s, "wan1"), "online");
    assert!(
        iface(&s, "wan1")["state_age_s"].as_u64().expect("age") >= age1,
        "unchanged wan1 lost its health history: {s:#}"
    );
    let pid2_new = tracker_pid(&s, "wan2");

    // An invalid config: the caller gets every problem, nothing changes.
    let rules_before = kernel_dump(&tb);
    let broken = changed.replacen("option down '3'", "option down 'often'", 1);
    std::fs::write(&m.config, &broken).expect("write");
    let out = m.ctl(&["reload"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "bad reload accepted: {err}");
    assert!(
        err.contains("'down'") && err.contains("often"),
        "error does not name the problem: {err}"
    );
    // --json: scripts get an object on stdout too, not silence.
    let out = m.ctl(&["--json", "reload"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("reload --json stdout is not JSON ({e}): {out:?}"));
    assert_eq!(v["ok"], false, "{v}");
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains("often")),
        "{v}"
    );
    let s = m.status();
    assert_eq!(tracker_pid(&s, "wan1"), pid1);
    assert_eq!(tracker_pid(&s, "wan2"), pid2_new);
    assert!(all_online(&s), "{s:#}");
    assert_eq!(
        kernel_dump(&tb),
        rules_before,
        "a rejected reload changed the kernel"
    );

    // SIGHUP with the same broken file: logged, still running.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(m.pid() as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(tracker_pid(&m.status(), "wan1"), pid1);
}

#[test]
fn restart_of_one_wan_leaves_the_others_alone() {
    let Some((tb, m, s)) = two_wans_online() else {
        return;
    };
    let (pid1, pid2) = (tracker_pid(&s, "wan1"), tracker_pid(&s, "wan2"));
    let dump = kernel_dump(&tb);

    let out = m.ctl(&["restart", "wan2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // wan2 keeps its last known state while the new tracker starts.
    let s = m.status();
    assert_eq!(state(&s, "wan2"), "online", "{s:#}");
    let s = m.wait(20, "wan2's new tracker connected", |s| {
        tracker_pid(s, "wan2") != pid2 && tracker_connected(s, "wan2")
    });
    assert_eq!(tracker_pid(&s, "wan1"), pid1);
    assert_eq!(iface(&s, "wan2")["tracker"]["restarts"], 1);
    assert_eq!(
        kernel_dump(&tb),
        dump,
        "a tracker restart changed routes or rules"
    );

    let out = m.ctl(&["restart", "nosuchwan"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nosuchwan"));
}

#[test]
fn killed_tracker_is_respawned_and_its_wan_is_not_failed() {
    let Some((_tb, m, s)) = two_wans_online() else {
        return;
    };
    let pid1 = tracker_pid(&s, "wan1").expect("pid");
    // SAFETY: a tracker of this test's mwand, by pid.
    unsafe { libc::kill(pid1 as i32, libc::SIGKILL) };
    let s = m.wait(20, "a new wan1 tracker", |s| {
        tracker_pid(s, "wan1").is_some_and(|p| p != pid1) && tracker_connected(s, "wan1")
    });
    assert!(iface(&s, "wan1")["tracker"]["restarts"].as_u64() >= Some(1));
    assert_eq!(
        active(&s, "failover"),
        ["wan1"],
        "a dead tracker failed its WAN over"
    );
    m.wait(20, "wan1 online again", |s| state(s, "wan1") == "online");
}

#[test]
fn kill_9_and_restart_adopts_trackers_and_routes_without_a_flap() {
    let Some((tb, mut m, s)) = two_wans_online() else {
        return;
    };
    let (pid1, pid2) = (tracker_pid(&s, "wan1"), tracker_pid(&s, "wan2"));
    let dump = kernel_dump(&tb);
    let monitor = Monitor::start(&tb, &["monitor", "route", "rule"]);

    let table_before = nft_table(&tb);
    m.kill9();
    let log_before = m.log_text().len();
    m.spawn(&tb);
    let s = m.wait(20, "adopted trackers reconnected", |s| {
        tracker_connected(s, "wan1") && tracker_connected(s, "wan2") && all_online(s)
    });
    // The nft table the previous mwand left is adopted, not rewritten.
    let log = m.log_text();
    let new_log = log.get(log_before..).unwrap_or_default();
    assert!(
        !new_log.contains("nft table inet mwan replaced"),
        "the restart rewrote the nft table:\n{new_log}"
    );
    assert_eq!(s["dataplane"]["nft_installs"], 0, "{s:#}");
    assert_eq!(nft_table(&tb), table_before);
    assert_eq!(
        tracker_pid(&s, "wan1"),
        pid1,
        "wan1's tracker was replaced, not adopted"
    );
    assert_eq!(
        tracker_pid(&s, "wan2"),
        pid2,
        "wan2's tracker was replaced, not adopted"
    );
    assert_eq!(
        m.tracker_pids().len(),
        2,
        "duplicate trackers: {:?}",
        m.tracker_pids()
    );
    std::thread::sleep(Duration::from_millis(500));
    let events = monitor.finish();
    let ours: Vec<&str> = events
        .lines()
        .filter(|l| l.contains("proto 77") || l.contains("table 10"))
        .collect();
    assert!(
        ours.is_empty(),
        "routes or rules flapped across the restart:\n{events}"
    );
    assert_eq!(kernel_dump(&tb), dump);

    // A clean stop removes every route and rule of ours and the trackers.
    assert!(m.stop(), "mwand did not stop on SIGTERM");
    let after = tb
        .exec_ok(
            Role::Router,
            &["ip", "route", "show", "table", "all", "proto", "77"],
        )
        .expect("routes");
    assert!(after.trim().is_empty(), "left behind: {after}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        m.tracker_pids().is_empty(),
        "trackers left: {:?}",
        m.tracker_pids()
    );
}

#[test]
fn control_socket_answers_garbage_with_an_error_and_keeps_serving() {
    let Some((_tb, m, _)) = two_wans_online() else {
        return;
    };
    let sock = m.run_dir.join("control.sock");
    let mode = std::fs::metadata(&sock).expect("socket").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );

    for garbage in [
        &b"\x05\x00\x00\x00\x01\x00zzz"[..],
        &b"\xff\xff\xff\xff"[..],
        &b"\x06\x00\x00\x00\x01\x00\xff\xff\xff\xff"[..],
    ] {
        let mut c = std::os::unix::net::UnixStream::connect(&sock).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        c.write_all(garbage).expect("write");
        let mut reply = Vec::new();
        // The daemon closes after the error reply; a timeout would leave
        // `reply` short and fail below.
        c.read_to_end(&mut reply).ok();
        let mut r = mwan_proto::frame::FrameReader::new();
        r.extend(&reply);
        match r.next::<mwan_proto::control::Response>() {
            Ok(Some(mwan_proto::control::Response::Error { message })) => {
                assert!(!message.is_empty())
            }
            other => panic!("garbage {garbage:?} got {other:?}"),
        }
    }
    // A client that connects and says nothing does not block the others.
    let _silent = std::os::unix::net::UnixStream::connect(&sock).expect("connect");
    let s = m.status();
    assert_eq!(s["interfaces"].as_array().map(Vec::len), Some(2));
    for args in [
        &["interfaces", "--json"][..],
        &["policies"],
        &["rules"],
        &["connected"],
        &["explain", "failover"],
        &["override", "wan2"],
    ] {
        let out = m.ctl(args);
        assert!(
            out.status.success(),
            "mwanctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let listed = m.ctl(&["interfaces", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(
        listed["interfaces"].as_array().map(Vec::len),
        Some(2),
        "the ubus reply's shape: {listed}"
    );
    assert!(m
        .ctl(&["override", "wan1", "--policy", "balanced"])
        .status
        .success());
    let s = m.status();
    assert_eq!(active(&s, "failover"), ["wan2"], "override ignored: {s:#}");
    assert_eq!(active(&s, "balanced"), ["wan1"], "override ignored: {s:#}");
    assert_eq!(s["override"]["interface"], "wan2");
    assert_eq!(
        s["overrides"],
        serde_json::json!([
            {"interface": "wan2", "policy": null},
            {"interface": "wan1", "policy": "balanced"}
        ]),
        "every override in status"
    );
    assert!(m.ctl(&["override", "--clear"]).status.success());
    let s = m.status();
    assert!(s["override"].is_null());
    let bad = m.ctl(&["explain", "nosuchpolicy"]);
    assert_eq!(bad.status.code(), Some(1));
    let none = std::process::Command::new(mwan_testbed::find_binary("mwanctl").expect("mwanctl"))
        .args(["--run-dir", "/nonexistent-mwan", "status"])
        .output()
        .expect("mwanctl");
    assert_eq!(
        none.status.code(),
        Some(3),
        "unreachable daemon must exit 3"
    );
}

#[test]
fn a_new_address_on_a_wan_is_followed_without_a_restart() {
    let Some((tb, m, s)) = two_wans_online() else {
        return;
    };
    let (pid1, pid2) = (tracker_pid(&s, "wan1"), tracker_pid(&s, "wan2"));
    let w2 = tb.wan("wan2").expect("wan2").clone();
    // A DHCP renew that hands out another address in the same subnet.
    let old = format!("{}/{}", w2.router_v4, w2.v4_prefix);
    let new_ip = std::net::Ipv4Addr::from(u32::from(w2.router_v4) + 1);
    let new = format!("{new_ip}/{}", w2.v4_prefix);
    // As a DHCP client does: the old lease goes (with its routes), the new
    // one comes (deleting a primary address after adding another in the
    // same subnet would take the new one with it).
    tb.exec_ok(
        Role::Router,
        &["ip", "addr", "del", &old, "dev", &w2.device],
    )
    .expect("del address");
    tb.exec_ok(
        Role::Router,
        &["ip", "addr", "add", &new, "dev", &w2.device],
    )
    .expect("add address");
    let gw = w2.gateway_v4.to_string();
    tb.exec(
        Role::Router,
        &[
            "ip", "route", "replace", "default", "via", &gw, "dev", &w2.device, "metric", "2",
        ],
    )
    .expect("route");
    let want_rule = format!("from {new_ip} lookup");
    let end = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let rules = tb
            .exec_ok(Role::Router, &["ip", "-4", "rule"])
            .expect("rules");
        if rules.contains(&want_rule) && !rules.contains(&format!("from {} lookup", w2.router_v4)) {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "the source rule did not follow the new address:\n{rules}\n{}",
            m.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // wan2's tracker probes from the new address now; wan1's is untouched.
    let s = m.wait(10, "wan2's tracker restarted with the new source", |s| {
        tracker_pid(s, "wan2") != pid2 && tracker_connected(s, "wan2")
    });
    assert_eq!(tracker_pid(&s, "wan1"), pid1);
    let pid = tracker_pid(&s, "wan2").expect("pid");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(cmdline.contains(&format!("--source {new_ip}")), "{cmdline}");
}

#[test]
fn a_hung_tracker_makes_its_wan_unknown_and_is_replaced() {
    let Some((_tb, m, s)) = two_wans_online() else {
        return;
    };
    let pid1 = tracker_pid(&s, "wan1").expect("pid");
    // Stopped, not dead: its connection stays open and says nothing. A
    // silent link would still produce lost-probe reports; nothing at all
    // means the tracker is silent: wan1 becomes unknown and keeps carrying
    // traffic; past the silence limit mwand replaces the tracker.
    // SAFETY: a tracker of this test's mwand, by pid.
    unsafe { libc::kill(pid1 as i32, libc::SIGSTOP) };
    let mut seen_unknown = false;
    let end = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = m.status();
        let st = state(&s, "wan1");
        assert!(
            st == "online" || st == "unknown",
            "a hung tracker made wan1 {st}:\n{s:#}\n{}",
            m.log_text()
        );
        assert_eq!(active(&s, "failover"), ["wan1"], "failover moved: {s:#}");
        seen_unknown |= st == "unknown";
        let replaced =
            tracker_pid(&s, "wan1").is_some_and(|p| p != pid1) && tracker_connected(&s, "wan1");
        if replaced && seen_unknown && st == "online" {
            assert!(iface(&s, "wan1")["tracker"]["restarts"].as_u64() >= Some(1));
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "no new tracker with wan1 online within 30 s: {s:#}\n{}",
            m.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !std::path::Path::new(&format!("/proc/{pid1}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid1}/stat"))
                .is_ok_and(|st| st.contains(") Z")),
        "the hung tracker was left running"
    );
    assert!(m.log_text().contains("silent past its silence limit"));
}

/// `nft list table inet mwan` in the router, or "" when it is missing.
fn nft_table(tb: &mwan_testbed::Testbed) -> String {
    tb.exec(Role::Router, &["nft", "list", "table", "inet", "mwan"])
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Polls `probe` every 100 ms until it equals `want`; panics after 5 s.
fn restored_within_5s(what: &str, want: &str, probe: impl Fn() -> String) {
    let end = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now = probe();
        if now == want {
            return;
        }
        assert!(
            std::time::Instant::now() < end,
            "{what} not restored within 5 s:\n{now}\nexpected:\n{want}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn routes_rules_and_nft_table_removed_by_someone_else_are_restored() {
    let Some((tb, m, _)) = two_wans_online() else {
        return;
    };
    std::thread::sleep(Duration::from_millis(500));
    let before = kernel_dump(&tb);
    let table_before = nft_table(&tb);
    assert!(table_before.contains("chain prerouting"), "{table_before}");

    // An fw4 reload flushes the ruleset; an admin deletes our table.
    tb.exec_ok(
        Role::Router,
        &["nft", "flush", "chain", "inet", "mwan", "prerouting"],
    )
    .expect("nft flush chain");
    restored_within_5s("a flushed chain", &table_before, || nft_table(&tb));
    tb.exec_ok(Role::Router, &["nft", "delete", "table", "inet", "mwan"])
        .expect("nft delete table");
    restored_within_5s("table inet mwan", &table_before, || nft_table(&tb));

    // An admin (or a firewall reload) flushes one of our tables and a rule.
    let table = before
        .lines()
        .find(|l| l.starts_with("default via") && l.contains("table"))
        .and_then(|l| l.split_whitespace().skip_while(|w| *w != "table").nth(1))
        .expect("a default route in one of our tables")
        .to_string();
    tb.exec_ok(
        Role::Router,
        &["ip", "-4", "route", "flush", "table", &table],
    )
    .expect("flush");
    tb.exec_ok(Role::Router, &["ip", "-4", "rule", "del", "pref", "1300"])
        .expect("rule del");
    // (Often back before this line: mwand reacts to the notification.)
    restored_within_5s("routes and rules", &before, || kernel_dump(&tb));
    let s = m.status();
    assert!(
        s["dataplane"]["nft_installs"].as_u64() >= Some(3),
        "install + 2 restores expected: {s:#}"
    );
    // At least the default route and rule 1300 were put back.
    assert!(
        s["dataplane"]["restored_objects"].as_u64() >= Some(2),
        "restored routes and rules not counted: {s:#}"
    );
}

#[test]
fn a_failover_writes_without_rereading_the_kernel() {
    let Some((tb, m, s)) = two_wans_online() else {
        return;
    };
    std::thread::sleep(Duration::from_millis(1500));
    let dumps = m.status()["dataplane"]["route_dumps"].clone();
    assert!(dumps.as_u64() >= Some(1), "{s:#}");
    tb.cut("wan1").expect("cut");
    m.wait(10, "failover to wan2", |s| {
        active(s, "failover") == ["wan2"]
    });
    // Its own route and rule changes come back as rtnetlink notifications
    // stamped with mwand's port id: not a reason to dump (housekeeping runs
    // every second, so wait past two of its passes).
    std::thread::sleep(Duration::from_millis(2500));
    let s = m.status();
    assert_eq!(
        s["dataplane"]["route_dumps"], dumps,
        "a failover re-read the kernel: {s:#}"
    );
    tb.restore("wan1").expect("restore");
}

#[test]
fn sysctls_set_before_a_kill_9_are_restored_by_the_next_mwand() {
    if !mwan_testbed::require_netns() {
        return;
    }
    let tb = testbed(2, 1);
    let paths = [
        "net.ipv4.fib_multipath_hash_policy",
        "net.ipv6.fib_multipath_hash_policy",
        "net.ipv4.conf.all.src_valid_mark",
    ];
    // The admin's values; mwand sets 1, 1, 1 while it runs.
    tb.exec_ok(
        Role::Router,
        &["sysctl", "-qw", "net.ipv6.fib_multipath_hash_policy=2"],
    )
    .expect("sysctl");
    let read = || -> Vec<String> {
        paths
            .iter()
            .map(|p| {
                tb.exec_ok(Role::Router, &["sysctl", "-n", p])
                    .expect("sysctl -n")
                    .trim()
                    .to_string()
            })
            .collect()
    };
    let before = read();
    let mut m = Mwand::start(&tb, &config(tb.wans(), &ours));
    assert_eq!(read(), ["1", "1", "1"], "mwand's own values while it runs");
    m.kill9();
    // The new mwand must not take mwand's values (1, 1, 1) for the admin's.
    m.spawn(&tb);
    let comment = tb
        .exec_ok(Role::Router, &["nft", "list", "table", "inet", "mwan"])
        .expect("nft list");
    assert!(
        comment.contains("sysctl before mwand: ipv4/fib_multipath_hash_policy=0"),
        "{comment}"
    );
    assert!(m.stop(), "mwand did not stop on SIGTERM");
    assert!(
        m.log_text().contains("kept in table inet mwan"),
        "{}",
        m.log_text()
    );
    assert_eq!(read(), before, "sysctls after kill -9, restart and stop");
    let nft = tb
        .exec(Role::Router, &["nft", "list", "tables"])
        .expect("nft");
    assert!(
        !String::from_utf8_lossy(&nft.stdout).contains("mwan"),
        "table left behind"
    );
}

#[test]
fn peers_mwand_drops_are_counted_in_status() {
    let Some((_tb, m, s)) = two_wans_online() else {
        return;
    };
    assert_eq!(s["event_loop"]["dropped_control_peers"], 0, "{s:#}");
    assert_eq!(s["dataplane_error_kind"], serde_json::Value::Null, "{s:#}");
    // An unreadable request on the control socket and an unreadable frame
    // on the trackers' socket: each connection is dropped and counted.
    for (socket, garbage) in [
        ("control.sock", &b"\xff\xff\xff\xff"[..]),
        ("track.sock", &b"\x05\x00\x00\x00\x01\x00zzz"[..]),
    ] {
        let mut c =
            std::os::unix::net::UnixStream::connect(m.run_dir.join(socket)).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        c.write_all(garbage).expect("write");
        // mwand closes the connection once it has read the garbage.
        c.read_to_end(&mut Vec::new()).ok();
    }
    let s = m.status();
    assert_eq!(s["event_loop"]["dropped_control_peers"], 1, "{s:#}");
    assert_eq!(s["event_loop"]["dropped_tracker_peers"], 1, "{s:#}");
    assert_eq!(s["event_loop"]["refused_control_peers"], 0, "{s:#}");
    let text = String::from_utf8_lossy(&m.ctl(&["status"]).stdout).into_owned();
    assert!(
        text.contains("1 tracker connection(s) dropped, 1 control connection(s) dropped"),
        "{text}"
    );
}

/// `mwanctl pause|resume` (mwan3's `ifdown|ifup`): the WAN leaves every
/// policy and loses its tracker while its device stays up, and comes back.
#[test]
fn a_paused_wan_is_neither_tracked_nor_used_until_resumed() {
    let Some((_tb, m, s)) = two_wans_online() else {
        return;
    };
    assert!(active(&s, "balanced").contains(&"wan2".to_string()));
    let out = m.ctl(&["pause", "wan2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = m.status();
    assert_eq!(state(&s, "wan2"), "disabled", "{s:#}");
    assert_eq!(
        iface(&s, "wan2")["reason"],
        mwan_proto::control::PAUSED_REASON
    );
    assert_eq!(tracker_pid(&s, "wan2"), None, "tracker stopped: {s:#}");
    assert_eq!(active(&s, "balanced"), ["wan1"], "{s:#}");
    assert!(m.ctl(&["resume", "wan2"]).status.success());
    m.wait(20, "wan2 online again", |s| {
        state(s, "wan2") == "online" && active(s, "balanced").contains(&"wan2".to_string())
    });
    assert_eq!(m.ctl(&["pause", "nosuchwan"]).status.code(), Some(1));
}

/// A manual override is kept across kill -9 (the run dir's state file) and,
/// with --persistent, across a reboot (the config's globals `override`):
/// real LAN traffic leaves by the override's WAN after each restart.
#[test]
fn an_override_survives_kill_9_and_with_persistent_a_reboot() {
    let Some((tb, mut m, _)) = two_wans_online() else {
        return;
    };
    let via = |tb: &mwan_testbed::Testbed| {
        let answer = lan_http(tb, 5).expect("LAN fetch");
        wan_of_answer(tb, &answer).map(str::to_string)
    };
    assert_eq!(
        via(&tb).as_deref(),
        Some("wan1"),
        "failover policy: wan1 first"
    );
    assert!(m.ctl(&["override", "wan2"]).status.success());
    assert_eq!(via(&tb).as_deref(), Some("wan2"));
    let config_mode = 0o600;
    std::fs::set_permissions(
        &m.config,
        std::os::unix::fs::PermissionsExt::from_mode(config_mode),
    )
    .expect("chmod config");

    m.kill9();
    m.spawn(&tb);
    let s = m.status();
    assert_eq!(s["override"]["interface"], "wan2", "{s:#}");
    assert_eq!(
        via(&tb).as_deref(),
        Some("wan2"),
        "override lost by kill -9"
    );

    let out = m.ctl(&["override", "wan2", "--persistent"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = std::fs::read_to_string(&m.config).expect("config");
    assert!(config.contains("option override 'wan2'"), "{config}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&m.config).expect("config").permissions(),
    );
    assert_eq!(mode & 0o777, config_mode, "the config keeps its mode");
    // A reboot: mwand gone, the run dir (tmpfs) empty.
    m.kill9();
    std::fs::remove_file(m.run_dir.join("state")).expect("state file");
    m.spawn(&tb);
    assert_eq!(m.status()["override"]["interface"], "wan2");
    assert_eq!(
        via(&tb).as_deref(),
        Some("wan2"),
        "persistent override lost"
    );

    assert!(m.ctl(&["override", "--clear"]).status.success());
    let config = std::fs::read_to_string(&m.config).expect("config");
    assert!(!config.contains("option override"), "{config}");
    assert_eq!(via(&tb).as_deref(), Some("wan1"));
    m.kill9();
    m.spawn(&tb);
    assert!(
        m.status()["override"].is_null(),
        "a cleared override came back"
    );
}

/// Runs the package's /usr/libexec/luci-mwan3 on the router with netifd's
/// facts from a stand-in network.sh (`network_sh`: shell functions) and
/// the track IPs from a stand-in uci answering `track_ip`.
fn luci_mwan3(tb: &Testbed, m: &Mwand, network_sh: &str, track_ip: &str, args: &[&str]) -> String {
    let stub = m.dir.join("stub");
    std::fs::create_dir_all(&stub).expect("stub dir");
    std::fs::write(stub.join("network.sh"), network_sh).expect("network.sh");
    let uci = stub.join("uci");
    std::fs::write(&uci, format!("#!/bin/sh\necho {track_ip}\n")).expect("uci");
    std::fs::set_permissions(&uci, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../openwrt-package/files/luci-mwan3"
    );
    let path = format!(
        "PATH={}:{}",
        stub.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let network_sh = format!("NETWORK_SH={}", stub.join("network.sh").display());
    let mut argv = vec!["env", network_sh.as_str(), path.as_str(), "sh", script];
    argv.extend(args);
    let out = tb.exec(Role::Router, &argv).expect("luci-mwan3");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// luci-mwan3's four diagnostics for `wan`, with netifd's facts for it
/// from a stand-in network.sh (the interface has an address of one
/// family, `addr`, with `gateway`): its `from ADDR` and tracker rules, its
/// table's default route via `gateway`, pings to the gateway and to
/// `target` that all come back.
fn check_luci_diag(
    tb: &Testbed,
    m: &Mwand,
    wan: &str,
    addr: IpAddr,
    gateway: IpAddr,
    target: IpAddr,
) {
    let device = &tb.wan("wan1").expect("wan1").device;
    let (addr, gateway, target) = (addr.to_string(), gateway.to_string(), target.to_string());
    let (v4, v6) = if target.contains(':') {
        (["", ""], [addr.as_str(), gateway.as_str()])
    } else {
        ([addr.as_str(), gateway.as_str()], ["", ""])
    };
    let network_sh: String = [
        ("device", device.as_str()),
        ("ipaddr", v4[0]),
        ("gateway", v4[1]),
        ("ipaddr6", v6[0]),
        ("gateway6", v6[1]),
    ]
    .iter()
    .map(|(f, v)| format!("network_get_{f}() {{ eval \"$1={v}\"; }}\n"))
    .collect();
    let run = |args: &[&str]| luci_mwan3(tb, m, &network_sh, &target, args);
    let rules = run(&["diag", "rules", wan]);
    assert!(
        rules.contains(&format!("from {addr} lookup")) && rules.contains("fwmark"),
        "{rules}"
    );
    let routes = run(&["diag", "routes", wan]);
    assert!(
        routes.contains(&format!("default via {gateway}")),
        "{routes}"
    );
    let pings = run(&["diag", "gateway", wan]);
    assert!(pings.contains(" 0% packet loss"), "{pings}");
    let tracking = run(&["diag", "tracking", wan]);
    assert!(
        tracking.contains(&target) && tracking.contains(" 0% packet loss"),
        "{tracking}"
    );
    let bad = run(&["diag", "frob", wan]);
    assert!(bad.starts_with("Usage"), "{bad}");
}

/// The package's /usr/libexec/luci-mwan3 (luci-app-mwan3's diagnostics
/// page) answers from mwan's rules and tables.
#[test]
fn luci_mwan3_diagnostics_show_mwans_rules_routes_and_pings() {
    let Some((tb, m, _)) = two_wans_online() else {
        return;
    };
    let w1 = tb.wan("wan1").expect("wan1").clone();
    check_luci_diag(
        &tb,
        &m,
        "wan1",
        w1.router_v4.into(),
        w1.gateway_v4.into(),
        tb.targets().icmp_v4[0].into(),
    );
}

/// The same for an IPv6 interface (mwan3's `family ipv6`, netifd's wan6:
/// no IPv4 address): its `from` rule, its table's IPv6 routes, pings to
/// the IPv6 gateway and targets.
#[test]
fn luci_mwan3_diagnostics_answer_for_an_ipv6_interface() {
    if !mwan_testbed::require_netns() {
        return;
    }
    let tb = testbed(2, 1);
    let w1 = tb.wan("wan1").expect("wan1").clone();
    let target = tb.targets().icmp_v6[0];
    let wan6 = format!(
        "config interface 'wan6'\n\toption enabled '1'\n\toption family 'ipv6'\n\toption device '{}'\n\
         \tlist track_ip '{target}'\n\toption interval '0.2'\n\toption timeout '3'\n\toption up '10'\n\toption down '3'\n\n\
         config member 'wan6_m'\n\toption interface 'wan6'\n\n\
         config policy 'v6'\n\tlist use_member 'wan6_m'\n\n",
        w1.device
    );
    let m = Mwand::start(&tb, &(config(tb.wans(), &ours) + &wan6));
    m.wait(20, "wan6 online", |s| state(s, "wan6") == "online");
    check_luci_diag(
        &tb,
        &m,
        "wan6",
        w1.router_v6.into(),
        w1.gateway_v6.into(),
        target.into(),
    );
}

/// `mwanctl use wan2 -- CMD` on the router: CMD's connection leaves by
/// wan2 while the policy (failover: wan1 first) sends the router's other
/// traffic by wan1; `mwan3 use` is the same command.
#[test]
fn mwanctl_use_sends_one_commands_traffic_through_the_named_wan() {
    let Some((tb, m, _)) = two_wans_online() else {
        return;
    };
    let http = tb.targets().http[0];
    let fetch = format!(
        "exec 3<>/dev/tcp/{}/{} && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3",
        http.ip(),
        http.port()
    );
    let mwanctl = mwan_testbed::find_binary("mwanctl").expect("mwanctl");
    let mwanctl = mwanctl.to_str().expect("utf-8");
    let run_dir = path_str(&m.run_dir);
    let router_fetch = |prefix: &[&str]| {
        let mut argv: Vec<&str> = prefix.to_vec();
        argv.extend(["timeout", "5", "bash", "-c", &fetch]);
        let out = tb.exec(Role::Router, &argv).expect("fetch");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        wan_of_answer(&tb, &text)
            .map(str::to_string)
            .ok_or(format!("{text}{err}"))
    };
    assert_eq!(router_fetch(&[]).as_deref(), Ok("wan1"), "the policy's WAN");
    let via_use = router_fetch(&[mwanctl, "--run-dir", run_dir, "use", "wan2", "--"]);
    assert_eq!(via_use.as_deref(), Ok("wan2"), "{}", m.log_text());
    // Everyone else's traffic is unchanged.
    assert_eq!(router_fetch(&[]).as_deref(), Ok("wan1"));
    let bad = tb
        .exec(
            Role::Router,
            &[
                mwanctl,
                "--run-dir",
                run_dir,
                "use",
                "nosuchwan",
                "--",
                "true",
            ],
        )
        .expect("mwanctl");
    assert_eq!(bad.status.code(), Some(1));
}
