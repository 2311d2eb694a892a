//! Automatic mode on the testbed: mwand started with no config file at all
//! finds both WANs from the router's default routes (one per device, by
//! metric), tracks each gateway plus the targets it is given (the testbed's
//! own hosts: tests never probe public addresses), builds policy
//! `failover`, and fails over on a silent cut. `mwanctl status` says so and
//! `mwanctl config --write` prints UCI that `mwanctl check` accepts.
//!
//! Needs root and `cargo build --workspace --bins` first.

mod mwand_harness;

use mwand_harness::*;

#[test]
fn with_no_config_mwand_finds_both_wans_and_fails_over() {
    if !mwan_testbed::require_netns() {
        return;
    }
    let tb = testbed(2, 1);
    let mut args = vec!["--supervisor".to_string(), "embedded".to_string()];
    for t in &tb.targets().icmp_v4 {
        args.push("--auto-track-ip".into());
        args.push(t.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let m = Mwand::start_without_config(&tb, &args);
    assert!(
        !m.config.exists(),
        "the test must start without a config file"
    );
    let (first, second) = (&tb.wans()[0].device, &tb.wans()[1].device);

    let s = m.wait(30, "both WANs found and online", all_online);
    let names: Vec<&str> = s["interfaces"]
        .as_array()
        .expect("interfaces")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(names, [first.as_str(), second.as_str()], "{s:#}");
    assert!(
        s["config"]
            .as_str()
            .is_some_and(|c| c.starts_with("automatic mode")),
        "{s:#}"
    );
    m.wait(10, "failover on the first WAN", |s| {
        active(s, "failover") == [first.as_str()]
    });
    let answer = lan_http(&tb, 5).expect("LAN fetch");
    assert_eq!(wan_of_answer(&tb, &answer), Some("wan1"), "{answer}");

    let text = String::from_utf8(m.ctl(&["status"]).stdout).expect("utf-8");
    assert!(text.contains("config automatic mode"), "{text}");

    tb.cut("wan1").expect("cut");
    m.wait(60, "failover to the second WAN", |s| {
        active(s, "failover") == [second.as_str()]
    });
    let answer = lan_http(&tb, 5).expect("LAN fetch during the cut");
    assert_eq!(wan_of_answer(&tb, &answer), Some("wan2"), "{answer}");

    // The timeline has the cut with its reason, over the control socket.
    let history = String::from_utf8(m.ctl(&["history"]).stdout).expect("utf-8");
    assert!(
        history.contains(&format!("state {first}: online -> disconnecting")),
        "{history}"
    );
    assert!(history.contains("policy failover:"), "{history}");

    // The config it runs, written down, is a config mwanctl check accepts.
    let out = m.ctl(&["config", "--write"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let uci = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        uci.contains(&format!("config interface '{first}'")),
        "{uci}"
    );
    let target = tb.targets().icmp_v4[0].to_string();
    assert!(uci.contains(&format!("list track_ip '{target}'")), "{uci}");
    let written = m.dir.join("written");
    std::fs::write(&written, &uci).expect("write");
    let out = m.ctl(&["check", "--config", path_str(&written)]);
    assert!(
        out.status.success(),
        "{uci}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn an_empty_config_file_is_not_automatic_mode() {
    if !mwan_testbed::require_netns() {
        return;
    }
    let tb = testbed(1, 1);
    let m = Mwand::start(&tb, "");
    let s = m.status();
    assert_eq!(s["interfaces"].as_array().map(Vec::len), Some(0), "{s:#}");
    assert!(
        !s["config"].as_str().unwrap_or("").starts_with("automatic"),
        "{s:#}"
    );
    let out = m.ctl(&["config", "--write"]);
    assert!(
        !out.status.success(),
        "config --write without automatic mode"
    );
}
