//! The streaming design: results grouped into rounds, early decisions,
//! rounds failed at their deadline without waiting for stragglers, in-order
//! application, a silent tracker aging to Unknown with history kept.

#[path = "sim_common/mod.rs"]
mod sim_common;

use mwan_core::health::{Health, HealthSettings, LinkState, ROUND_GRACE_MS};
use sim_common::{iface, late, lost, lost_with_inbound, recommended_iface, reply};

#[test]
fn round_succeeds_as_soon_as_reliability_targets_answered() {
    let mut i = iface(3);
    i.reliability = 2;
    i.initial_state = mwan_core::config::InitialState::Offline;
    i.up = 1;
    let mut h = Health::new(HealthSettings::from_interface(&i), 0);
    h.on_probe(&reply(0, 0, 0, 20), 20);
    assert_eq!(h.state(), LinkState::Unknown, "one of two needed answers");
    h.on_probe(&reply(2, 0, 0, 30), 30);
    assert_eq!(
        h.state(),
        LinkState::Online,
        "decided without waiting for target 1"
    );
    assert_eq!(
        h.next_deadline().map(|d| d > 30),
        Some(true),
        "only the silence deadline is left"
    );
}

#[test]
fn round_fails_as_soon_as_reliability_is_out_of_reach() {
    let mut i = iface(3);
    i.reliability = 2;
    i.down = 1;
    let mut h = Health::new(HealthSettings::from_interface(&i), 0);
    h.on_probe(&lost(0, 0, 0), 5);
    assert_eq!(h.state(), LinkState::Unknown);
    h.on_probe(&lost(1, 0, 0), 6);
    assert_eq!(
        h.state(),
        LinkState::Offline,
        "two of three lost: two up is impossible"
    );
}

#[test]
fn round_past_its_timeout_fails_without_waiting_for_stragglers() {
    let mut i = iface(2);
    i.down = 1;
    i.timeout = 1000;
    i.interval = 1000;
    i.failure_interval = 1000;
    i.recovery_interval = 1000;
    let mut h = Health::new(HealthSettings::from_interface(&i), 0);
    // Warm the RTT estimator so the effective timeout is the 200 ms floor.
    for r in 0..20 {
        let t = r * 1000;
        h.on_probe(&reply(0, r, t, 20), t + 20);
    }
    assert_eq!(h.state(), LinkState::Online);
    assert_eq!(h.probe_timeout(), 200);
    // Round 20: target 0 lost, target 1 never reported (tracker slow).
    h.on_probe(&lost(0, 20, 20_000), 20_200);
    let deadline = h.next_deadline().expect("round deadline");
    // Two probes spread over the 1 s interval: the second leaves 500 ms
    // after the first, then its 200 ms timeout and the grace.
    assert_eq!(deadline, 20_000 + 500 + 200 + ROUND_GRACE_MS);
    assert!(h.tick(deadline - 1).is_empty());
    let t = h.tick(deadline);
    assert_eq!(t.len(), 1);
    // Failed at the adaptive timeout: the offline verdict waits until the
    // configured timeout has passed for the unreported probe (sent 500 ms
    // after the first, 1 s timeout, grace) in case it is only slow.
    assert_eq!(h.state(), LinkState::Disconnecting);
    assert_eq!(h.counters().rounds_expired, 1);
    let verdict = 20_000 + 500 + 1000 + ROUND_GRACE_MS;
    assert_eq!(h.next_deadline(), Some(verdict));
    let mut silent = h.clone();
    assert!(silent.tick(verdict - 1).is_empty());
    silent.tick(verdict);
    assert_eq!(silent.state(), LinkState::Offline);
    // The straggler answers within the configured timeout: mwan3 would
    // have counted it, so the failure is withdrawn.
    h.on_probe(&reply(1, 20, 20_500, 900), 21_400);
    assert_eq!(h.state(), LinkState::Online);
    h.tick(verdict);
    assert_eq!(h.state(), LinkState::Online);
}

/// One target, `down` and `timeout` as given, 20 rounds a second answered
/// in 20 ms (the effective timeout at its 200 ms floor).
fn one_target_after_20_rounds(down: u32, timeout: u64) -> Health {
    let mut i = iface(1);
    i.down = down;
    i.timeout = timeout;
    let mut h = Health::new(HealthSettings::from_interface(&i), 0);
    for r in 0..20 {
        h.on_probe(&reply(0, r, r * 1000, 20), r * 1000 + 20);
    }
    h
}

#[test]
fn reply_slower_than_the_configured_timeout_counts_as_lost() {
    let mut h = one_target_after_20_rounds(1, 1000);
    h.on_probe(&reply(0, 20, 20_000, 1200), 21_200);
    assert_eq!(h.state(), LinkState::Offline);
}

/// The adaptive timeout fails a round early; an answer that still comes
/// within the configured timeout withdraws that failure while the link is up.
#[test]
fn late_answer_within_configured_timeout_withdraws_the_failure() {
    let mut h = one_target_after_20_rounds(3, 2000);
    assert_eq!(h.probe_timeout(), 200);
    h.on_probe(&lost(0, 20, 20_000), 20_200);
    assert_eq!(h.state(), LinkState::Disconnecting);
    let t = h.on_probe(&late(0, 20, 20_000, 900), 20_900);
    assert_eq!(t.len(), 1);
    assert_eq!(h.state(), LinkState::Online);
    assert_eq!(h.counters().rounds_withdrawn, 1);
    assert!(
        h.probe_timeout() > 900,
        "the late RTT taught the estimator: {}",
        h.probe_timeout()
    );
    // Past the configured timeout nothing is withdrawn.
    h.on_probe(&lost(0, 21, 21_000), 23_000);
    h.on_probe(&late(0, 21, 21_000, 2_500), 23_500);
    assert_eq!(h.state(), LinkState::Disconnecting);
}

#[test]
fn overlapping_rounds_apply_in_round_order() {
    let mut i = iface(1);
    i.down = 2;
    i.timeout = 1000;
    let mut h = Health::new(HealthSettings::from_interface(&i), 0);
    h.on_probe(&reply(0, 0, 0, 20), 20);
    // Round 2's reply arrives before round 1's loss report.
    h.on_probe(&reply(0, 2, 400, 20), 420);
    assert_eq!(h.state(), LinkState::Online);
    h.on_probe(&lost(0, 1, 200), 1200);
    // Round 1 failed, then round 2 succeeded: disconnecting then online again.
    assert_eq!(h.state(), LinkState::Online);
    assert_eq!(h.counters().rounds_failed, 1);
    assert_eq!(h.counters().rounds_ok, 2);
    // Rounds 3 and 4 fail: offline.
    h.on_probe(&lost(0, 3, 600), 1600);
    h.on_probe(&lost(0, 4, 800), 1800);
    assert_eq!(h.state(), LinkState::Offline);
}

#[test]
fn silent_tracker_ages_to_unknown_and_history_continues() {
    let mut i = iface(1);
    i.down = 3;
    i.up = 3;
    let settings = HealthSettings::from_interface(&i);
    let limit = settings.silence_limit;
    let mut h = Health::new(settings, 0);
    h.on_probe(&reply(0, 0, 0, 20), 20);
    h.on_probe(&lost(0, 1, 10_000), 14_000);
    assert_eq!(h.state(), LinkState::Disconnecting);
    // The tracker's connection drops and nothing more arrives.
    h.tracker_lost();
    let deadline = h.next_deadline().expect("silence deadline");
    assert_eq!(deadline, 14_000 + limit);
    let t = h.tick(deadline);
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].from, t[0].to),
        (LinkState::Disconnecting, LinkState::Unknown)
    );
    assert!(h.aged());
    assert!(h.usable(), "silence is not evidence of a dead link");
    assert_eq!(h.next_deadline(), None);
    // Samples resume: the counter remembers one failure, so two more fail it.
    h.on_probe(&lost(0, 2, 60_000), 64_000);
    assert_eq!(h.state(), LinkState::Disconnecting);
    assert!(!h.aged());
    h.on_probe(&lost(0, 3, 70_000), 74_000);
    assert_eq!(h.state(), LinkState::Offline);
}

#[test]
fn tracker_restart_restarts_round_numbers_but_keeps_history() {
    let mut i = iface(1);
    i.down = 2;
    let mut h = Health::new(HealthSettings::from_interface(&i), 0);
    h.on_probe(&reply(0, 0, 0, 20), 20);
    h.on_probe(&reply(0, 1, 1000, 20), 1020);
    h.on_probe(&lost(0, 2, 2000), 2500);
    assert_eq!(h.state(), LinkState::Disconnecting);
    h.tracker_restarted();
    h.on_probe(&lost(0, 0, 3000), 3500);
    assert_eq!(
        h.state(),
        LinkState::Offline,
        "round 0 again is a new round"
    );
}

/// Rounds the tracker should have sent but of which nothing came back fail
/// at their expected deadline: a cut is detected at the effective timeout
/// even when the tracker reports losses only at the configured one.
#[test]
fn expected_rounds_fail_when_nothing_comes_back() {
    let mut i = iface(1);
    i.down = 3;
    i.interval = 200;
    i.failure_interval = 200;
    i.recovery_interval = 200;
    i.timeout = 3000;
    let mut h = Health::new(HealthSettings::from_interface(&i), 0);
    for r in 0..50 {
        h.on_probe(&reply(0, r, r * 200, 20), r * 200 + 20);
    }
    assert_eq!(h.probe_timeout(), 200);
    // Round 49 was sent at 9800; 50 is expected at 10000 and fails at
    // 10000 + 200 + grace + slack (200/8).
    let first = 10_000 + 200 + ROUND_GRACE_MS + 25;
    assert_eq!(h.next_deadline(), Some(first));
    assert!(h.tick(first - 1).is_empty());
    h.tick(first);
    assert_eq!(h.state(), LinkState::Disconnecting);
    h.tick(first + 200);
    h.tick(first + 400);
    assert_eq!(h.counters().rounds_expired, 3);
    // Three failures, but found at the adaptive timeout: the verdict waits
    // for the configured one (an answer until then would withdraw them).
    assert_eq!(h.state(), LinkState::Disconnecting);
    let verdict = first + 400 + 3000 - 200;
    let mut reported = h.clone();
    h.tick(verdict - 1);
    assert_eq!(h.state(), LinkState::Disconnecting);
    h.tick(verdict);
    assert_eq!(h.state(), LinkState::Offline);
    // The tracker's own loss reports (at the configured timeout) close the
    // probes: once all three rounds are reported the verdict is final.
    reported.on_probe(&lost(0, 50, 10_000), 13_000);
    reported.on_probe(&lost(0, 51, 10_200), 13_200);
    assert_eq!(reported.state(), LinkState::Disconnecting);
    reported.on_probe(&lost(0, 52, 10_400), 13_400);
    assert_eq!(reported.state(), LinkState::Offline);
}

/// Whether failures found at the adaptive timeout wait for the configured
/// one depends on what arrived on the WAN's device while the lost probes
/// waited (docs/decisions.md, rule 6). Recommended settings (3 targets, down
/// 3, 200 ms rounds, 3 s cap), timeout at its 200 ms floor, mwand's prompt
/// reports; then three rounds lost, each probe reported with these counts.
#[test]
fn inbound_traffic_decides_whether_early_failures_wait() {
    let cases: [([Option<u32>; 3], bool, &str); 5] = [
        ([Some(0); 3], true, "idle link cut: nothing arrives"),
        (
            [Some(4), Some(2), Some(0)],
            false,
            "one window in a lull of a busy link",
        ),
        (
            [Some(4), Some(2), Some(7)],
            false,
            "ACKs kept arriving: a queue",
        ),
        (
            [None; 3],
            false,
            "not counted: wait for the configured timeout",
        ),
        ([None, Some(0), None], false, "partly counted: wait"),
    ];
    for (inbound, at_once, what) in cases {
        let mut h = Health::new(HealthSettings::from_interface(&recommended_iface("wan")), 0);
        h.set_prompt_loss_reports(true);
        let sent = |round: u64, target: usize| round * 200 + target as u64 * 67;
        for r in 0..20 {
            for t in 0..3 {
                h.on_probe(&reply(t, r, sent(r, t), 20), sent(r, t) + 20);
            }
        }
        assert_eq!(h.probe_timeout(), 200, "{what}");
        for r in 20..23 {
            for (t, n) in inbound.iter().enumerate() {
                let probe = match n {
                    Some(n) => lost_with_inbound(t, r, sent(r, t), *n),
                    None => lost(t, r, sent(r, t)),
                };
                h.on_probe(&probe, sent(r, t) + 200);
            }
        }
        if at_once {
            assert_eq!(h.state(), LinkState::Offline, "{what}");
            continue;
        }
        assert_eq!(h.state(), LinkState::Disconnecting, "{what}");
        // The queue delivers the answers within the configured timeout:
        // every failure is withdrawn.
        for r in 20..23 {
            h.on_probe(&late(0, r, sent(r, 0), 1000), sent(r, 0) + 1000);
        }
        assert_eq!(h.state(), LinkState::Online, "{what}");
        assert_eq!(h.counters().rounds_withdrawn, 3, "{what}");
    }
}

/// A withdrawn failure is a success in mwan3's counter: the failures
/// before it no longer count, so failures that were never `down` in a row
/// (a queue that drops some rounds' probes and delays the others') do not
/// add up to an offline verdict.
#[test]
fn a_withdrawn_failure_resets_the_failures_before_it() {
    let mut h = one_target_after_20_rounds(3, 2000);
    h.on_probe(&lost(0, 20, 20_000), 20_200);
    h.on_probe(&lost(0, 21, 21_000), 21_200);
    assert_eq!(h.state(), LinkState::Disconnecting);
    // Round 21 answered late: 20's failure is before a success.
    h.on_probe(&late(0, 21, 21_000, 900), 21_900);
    assert_eq!(h.state(), LinkState::Online);
    h.on_probe(&lost(0, 22, 22_000), 22_200);
    h.on_probe(&lost(0, 23, 23_000), 23_200);
    // Two in a row since the success, not three.
    assert_eq!(h.state(), LinkState::Disconnecting);
    h.on_probe(&lost(0, 24, 24_000), 24_200);
    assert_eq!(h.state(), LinkState::Offline);
}
