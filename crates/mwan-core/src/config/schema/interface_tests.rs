//! One test per step of [`interface`]; whole sections are tested in
//! tests/config_*.rs.

use super::*;
use crate::config::schema::checker::run_step;

fn wan(options: &str) -> String {
    format!("config interface 'wan'\n{options}")
}

#[test]
fn track_targets_keep_addresses_and_names_and_check_the_family() {
    let (targets, problems) = run_step(
        &wan("\tlist track_ip '192.0.2.1 dns.example'\n\tlist track_ip '0.0.0.0'\n\tlist track_ip '2001:db8::1'\n\tlist track_ip 'bad/x'\n"),
        |c, s| track_targets(c, s, Family::Ipv4),
    );
    // The other family is an error (the config is rejected) but listed;
    // what is no target at all is not.
    assert_eq!(
        targets,
        ["192.0.2.1", "dns.example", "0.0.0.0", "2001:db8::1"]
    );
    let kinds: Vec<&str> = problems
        .iter()
        .map(|p| p.split(':').next().unwrap())
        .collect();
    assert_eq!(kinds, ["useless-tracking", "invalid", "invalid"]);
}

#[test]
fn reliability_above_the_targets_is_a_warning() {
    let (_, problems) = run_step(&wan("\toption reliability '3'\n"), |c, s| {
        check_reliability(c, s, 3, 2)
    });
    assert_eq!(problems.len(), 1);
    assert!(problems[0]
        .starts_with("useless-tracking: 3 targets must answer but only 2 track_ip are configured"));
    let (_, none) = run_step(&wan(""), |c, s| check_reliability(c, s, 3, 0));
    assert!(none.is_empty(), "no targets: no tracking at all");
}

#[test]
fn device_and_gateway_are_checked() {
    let (dev, problems) = run_step(&wan("\toption device 'eth1'\n"), device_name);
    assert_eq!((dev.as_deref(), problems.len()), (Some("eth1"), 0));
    let (dev, problems) = run_step(&wan("\toption device 'a/b'\n"), device_name);
    assert_eq!((dev, problems.len()), (None, 1));
    let (gw, problems) = run_step(&wan("\toption gateway 'fe80::1'\n"), |c, s| {
        gateway(c, s, Family::Ipv4)
    });
    assert_eq!(gw, None);
    assert!(problems[0].contains("does not match the interface's family ipv4"));
}

#[test]
fn quality_settings_and_one_probe_budget() {
    let d = Interface::new("wan").quality;
    let (q, problems) = run_step(&wan("\toption quality_bias '-5'\n"), |c, s| {
        quality_settings(c, s, &d)
    });
    assert_eq!((q.bias_ms, q.loss_divisor), (-5.0, d.loss_divisor));
    assert!(problems.is_empty());
    let (b, _) = run_step(
        &wan("\toption probe_budget_per_minute '30'\n"),
        probe_budget,
    );
    assert_eq!(b, Some(ProbeBudget::ProbesPerMinute(30)));
    let (b, problems) = run_step(
        &wan("\toption probe_budget_per_minute '30'\n\toption probe_budget_bytes_per_day '1000'\n"),
        probe_budget,
    );
    assert_eq!(b, None);
    assert!(problems[0].starts_with("invalid: both probe_budget_per_minute"));
}

#[test]
fn httping_ssl_and_threshold_order_warn() {
    let mut i = Interface::new("wan");
    i.httping_ssl = true;
    i.track_method = TrackMethod::Httping;
    i.check_quality = true;
    i.recovery_latency_ms = i.failure_latency_ms + 1;
    i.recovery_loss_pct = i.failure_loss_pct + 1;
    let (_, problems) = run_step(&wan(""), |c, s| {
        check_httping_ssl(c, s, &i);
        check_thresholds(c, s, &i);
    });
    let kinds: Vec<&str> = problems
        .iter()
        .map(|p| p.split(':').next().unwrap())
        .collect();
    assert_eq!(kinds, ["unsupported", "threshold-order", "threshold-order"]);
    i.check_quality = false;
    let (_, problems) = run_step(&wan(""), |c, s| check_thresholds(c, s, &i));
    assert!(problems.is_empty());
}
