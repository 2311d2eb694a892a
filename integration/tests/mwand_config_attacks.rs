//! Issue 13, attacks #7 and #9, against a running mwand: a WAN whose
//! tracker never connects stops being used after a bounded time, and an
//! empty config is accepted loudly (check, log, status).

mod mwand_harness;

use mwand_harness::*;

#[test]
fn a_wan_whose_tracker_never_connects_goes_offline_and_out_of_policies() {
    if !mwan_testbed::require_netns() {
        return;
    }
    let tb = testbed(1, 41);
    // A tracker that exits at once, as one refusing its command line does
    // (the later --tracker-bin wins over the harness's).
    let m = Mwand::start_with(
        &tb,
        &config(tb.wans(), &ours),
        &["--supervisor", "embedded", "--tracker-bin", "/bin/false"],
    );
    let s = m.status();
    assert!(!tracker_connected(&s, "wan1"), "{s:#}");
    // Silence limit with our defaults: 2 x 0.2 s + 3 s + slack; 20 s is ample.
    let s = m.wait(20, "wan1 offline", |s| state(s, "wan1") == "offline");
    assert!(!tracker_connected(&s, "wan1"), "{s:#}");
    assert!(
        !active(&s, "failover").contains(&"wan1".to_string()),
        "a WAN nothing ever probed is still in a policy: {s:#}"
    );
}

#[test]
fn an_empty_config_is_accepted_and_said_in_check_log_and_status() {
    if !mwan_testbed::require_netns() {
        return;
    }
    let tb = testbed(1, 42);
    let m = Mwand::start(&tb, "");
    let s = m.status();
    let warning = s["config_warning"].as_str().unwrap_or_default();
    assert!(warning.contains("no interface section"), "{s:#}");
    assert!(
        m.log_text().contains("removes all multi-WAN routing"),
        "{}",
        m.log_text()
    );
    let out = m.ctl(&["check", "--config", path_str(&m.config)]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "check refused an empty config: {text}"
    );
    assert!(text.contains("removes all multi-WAN routing"), "{text}");
    // A config with interfaces clears it.
    std::fs::write(&m.config, config(tb.wans(), &ours)).expect("config");
    assert!(m.ctl(&["reload"]).status.success());
    assert!(m.status()["config_warning"].is_null());
}
