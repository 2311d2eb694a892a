//! Traffic never returns to a WAN known to be dead because mwand started
//! over (issue 13, attack 6): a kill -9 and restart, or a reload changing
//! a tracking option, while wan1 is cut once put new connections on wan1
//! for 0.5-1.4 s each (until its new tracker failed `down` rounds again).
//! mwand now keeps each WAN's last verdict in `<run-dir>/state` and across
//! a reload.
//!
//! Needs root and `cargo build --workspace --bins` first.

mod mwand_harness;

use mwan_testbed::{find_binary, Testbed};
use mwand_harness::*;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What happened while `during` ran: the policy `failover` as status
/// showed it (polled) and the LAN's connections (which WAN answered, or
/// failed), opened one after another.
struct Watched {
    policies: Vec<Vec<String>>,
    connections: Vec<Option<String>>,
}

fn watch(tb: &Testbed, run_dir: &Path, during: impl FnOnce()) -> Watched {
    let mwanctl = find_binary("mwanctl").expect("mwanctl built");
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let lan = scope.spawn(|| {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let answer = lan_http(tb, 2);
                seen.push(answer.and_then(|a| wan_of_answer(tb, &a).map(str::to_string)));
            }
            seen
        });
        let policies = scope.spawn(|| {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                // mwand may be between a kill and its restart.
                let out = Command::new(&mwanctl)
                    .arg("--run-dir")
                    .arg(run_dir)
                    .args(["status", "--json"])
                    .output()
                    .expect("run mwanctl");
                if let Ok(s) = serde_json::from_slice(&out.stdout) {
                    seen.push(active(&s, "failover"));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            seen
        });
        during();
        stop.store(true, Ordering::Relaxed);
        Watched {
            policies: policies.join().expect("status thread"),
            connections: lan.join().expect("LAN thread"),
        }
    })
}

fn assert_never_on_wan1(w: &Watched, m: &Mwand, what: &str) {
    let on_wan1 = w
        .policies
        .iter()
        .filter(|p| p.iter().any(|i| i == "wan1"))
        .count();
    let failed = w.connections.iter().filter(|c| c.is_none()).count();
    assert!(
        on_wan1 == 0 && failed == 0,
        "{what}: failover on wan1 in {on_wan1} of {} status answers; {failed} of {} LAN connections failed\nmwand log:\n{}",
        w.policies.len(),
        w.connections.len(),
        m.log_text()
    );
    assert!(
        w.connections.len() >= 5 && w.policies.len() >= 20,
        "{what}: too little observed: {} connections, {} status answers",
        w.connections.len(),
        w.policies.len()
    );
    assert!(
        w.connections.iter().all(|c| c.as_deref() == Some("wan2")),
        "{what}: {:?}",
        w.connections
    );
}

fn log_count(m: &Mwand, needle: &str) -> usize {
    m.log_text().lines().filter(|l| l.contains(needle)).count()
}

/// Both WANs online, then wan1 cut until mwand calls it offline.
fn wan1_cut() -> Option<(Testbed, Mwand)> {
    let (tb, m, _) = two_wans_online()?;
    tb.cut("wan1").expect("cut wan1");
    let s = m.wait(30, "wan1 offline", |s| state(s, "wan1") == "offline");
    assert_eq!(active(&s, "failover"), ["wan2"], "{s:#}");
    Some((tb, m))
}

#[test]
fn restarts_while_a_wan_is_down_put_no_connection_on_it() {
    let Some((tb, mut m)) = wan1_cut() else {
        return;
    };
    let run_dir = m.run_dir.clone();
    let w = watch(&tb, &run_dir, || {
        for _ in 0..3 {
            m.kill9();
            m.spawn(&tb);
            // The new mwand's trackers report before the next kill.
            std::thread::sleep(Duration::from_secs(3));
        }
    });
    assert_never_on_wan1(&w, &m, "3 restarts with wan1 cut");
    let resumed = log_count(&m, "wan1: offline verdict from before the restart");
    assert_eq!(resumed, 3, "each restart logs the resumed verdict");
    assert!(!m.log_text().contains("dropped: older"), "{}", m.log_text());
    assert_eq!(state(&m.status(), "wan1"), "offline");
    // Its tracker still decides: wan1 comes back when restored.
    tb.restore("wan1").expect("restore wan1");
    m.wait(30, "wan1 back online", |s| state(s, "wan1") == "online");
}

#[test]
fn a_reload_changing_tracking_while_a_wan_is_down_puts_no_connection_on_it() {
    let Some((tb, m)) = wan1_cut() else {
        return;
    };
    let original = std::fs::read_to_string(&m.config).expect("config");
    let w = watch(&tb, &m.run_dir, || {
        // wan1's timeout changes: its health machine is rebuilt.
        for timeout in ["2", "3", "2"] {
            let changed = original.replacen(
                "option timeout '3'",
                &format!("option timeout '{timeout}'"),
                1,
            );
            std::fs::write(&m.config, changed).expect("write config");
            let out = m.ctl(&["reload"]);
            assert!(out.status.success(), "reload: {out:?}");
            std::thread::sleep(Duration::from_secs(2));
        }
    });
    assert_never_on_wan1(&w, &m, "3 reloads changing wan1's timeout with wan1 cut");
    let kept = log_count(&m, "wan1: tracking changed; keeps its verdict");
    assert!(
        kept == 3,
        "each reload logs what it kept:\n{}",
        m.log_text()
    );
    tb.restore("wan1").expect("restore wan1");
    m.wait(30, "wan1 back online", |s| state(s, "wan1") == "online");
}
