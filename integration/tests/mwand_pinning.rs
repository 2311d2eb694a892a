//! Connection pinning across a fail-back, with and without mwan3's
//! `flush_conntrack 'connected'` on a metered backup: without it a
//! connection opened during the outage stays on the backup (pinning holds);
//! with it, once the primary is back and policies moved off the backup, the
//! backup's pinned connections are deleted so their clients reconnect
//! through the primary.
//!
//! Needs root and `cargo build --workspace --bins` first.

mod mwand_harness;

use mwan_testbed::{require_netns, Role, Testbed};
use mwand_harness::*;
use std::process::Child;
use std::time::{Duration, Instant};

/// A LAN client holding one TCP connection to the echo service, checking it
/// every 300 ms; it exits (non-zero) as soon as an echo does not come back.
fn held_connection(tb: &Testbed) -> Child {
    let echo = tb
        .targets()
        .tcp_echo
        .iter()
        .find(|a| a.is_ipv4())
        .expect("echo");
    let script = format!(
        "exec 3<>/dev/tcp/{}/{} || exit 2; \
         while sleep 0.3; do echo ping >&3 || exit 3; read -r -t 2 line <&3 || exit 4; done",
        echo.ip(),
        echo.port()
    );
    tb.spawn(Role::Lan, &["bash", "-c", &script])
        .expect("client")
}

fn still_running(c: &mut Child, for_: Duration) -> bool {
    let end = Instant::now() + for_;
    while Instant::now() < end {
        if c.try_wait().expect("wait").is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

fn outage_then_failback(flush_on_connected: bool) -> (bool, String) {
    let tb = testbed(2, 1);
    let mut text = config(tb.wans(), &ours);
    if flush_on_connected {
        text = text.replacen(
            "config interface 'wan2'\n",
            "config interface 'wan2'\n\tlist flush_conntrack 'connected'\n",
            1,
        );
    }
    let m = Mwand::start(&tb, &text);
    m.wait(20, "both WANs online", all_online);
    tb.cut("wan1").expect("cut");
    m.wait(10, "failover to wan2", |s| {
        active(s, "failover") == ["wan2"]
    });

    let mut client = held_connection(&tb);
    assert!(
        still_running(&mut client, Duration::from_secs(2)),
        "the connection through wan2 did not work: {:?}",
        client.try_wait()
    );
    tb.restore("wan1").expect("restore");
    m.wait(30, "fail-back to wan1", |s| {
        active(s, "failover") == ["wan1"]
    });
    let survived = still_running(&mut client, Duration::from_secs(5));
    client.kill().ok();
    client.wait().ok();
    (survived, m.log_text())
}

#[test]
fn pinning_holds_across_failback_without_flush_conntrack() {
    if !require_netns() {
        return;
    }
    let (survived, log) = outage_then_failback(false);
    assert!(
        survived,
        "a connection on the backup broke at fail-back:\n{log}"
    );
    assert!(!log.contains("traffic moved off it"), "{log}");
}

#[test]
fn flush_conntrack_connected_moves_flows_off_a_metered_backup() {
    if !require_netns() {
        return;
    }
    let (survived, log) = outage_then_failback(true);
    assert!(
        log.contains("wan2: ") && log.contains("traffic moved off it"),
        "no flush of wan2's pinned connections:\n{log}"
    );
    assert!(
        !survived,
        "the backup's connection survived its flush:\n{log}"
    );
}

/// Connections from 192.0.2.50 pinned to wan1 (ct mark = its pin) in the
/// router (wan1's tracker's own probes are pinned to it too: not counted).
fn pinned_to_wan1(tb: &Testbed) -> usize {
    let out = tb
        .exec(
            Role::Router,
            &[
                "conntrack",
                "-L",
                "--mark",
                "0x200/0x3f00",
                "-s",
                "192.0.2.50",
            ],
        )
        .expect("conntrack -L");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("mark="))
        .count()
}

#[test]
fn a_dead_wans_connections_left_after_its_flush_are_flushed_again() {
    let Some((tb, m, _)) = two_wans_online() else {
        return;
    };
    // wan1's pin mark is slot 2 (0x200): its pin rule names wan1's table,
    // the one its address rule uses.
    let rules = tb
        .exec_ok(Role::Router, &["ip", "-4", "rule"])
        .expect("rules");
    let wan1_addr = tb.wans()[0].router_v4.to_string();
    let table = rules
        .lines()
        .find(|l| l.contains(&format!("from {wan1_addr} lookup")))
        .and_then(|l| l.split_whitespace().skip_while(|w| *w != "lookup").nth(1))
        .expect("wan1's address rule")
        .to_string();
    assert!(
        rules.contains(&format!("fwmark 0x200/0x3f00 lookup {table} ")),
        "{rules}"
    );

    tb.cut("wan1").expect("cut");
    m.wait(10, "failover, wan1's flush pending a recheck", |s| {
        active(s, "failover") == ["wan2"] && s["dataplane"]["conntrack_pending"][0] == "wan1"
    });
    // An entry the flush did not take (an offloaded flow on a kernel before
    // 6.4 looks like this to mwand: still there after the delete).
    tb.exec_ok(
        Role::Router,
        &[
            "conntrack",
            "-I",
            "-p",
            "tcp",
            "-s",
            "192.0.2.50",
            "-d",
            "203.0.113.5",
            "--sport",
            "40000",
            "--dport",
            "80",
            "--state",
            "ESTABLISHED",
            "-u",
            "SEEN_REPLY",
            "-t",
            "600",
            "--mark",
            "0x200/0xffffffff",
        ],
    )
    .expect("conntrack -I");
    assert_eq!(pinned_to_wan1(&tb), 1);
    let end = Instant::now() + Duration::from_secs(10);
    while pinned_to_wan1(&tb) > 0 {
        assert!(
            Instant::now() < end,
            "wan1's leftover connection not flushed within 10 s:\n{}",
            m.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    m.wait(20, "no flush pending", |s| {
        s["dataplane"]["conntrack_pending"] == serde_json::json!([])
    });
    assert!(m.log_text().contains("flushing again"), "{}", m.log_text());
}
