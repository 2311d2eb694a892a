//! Confirmation bursts (issue 14): the tracker saw a WAN's traffic stop
//! coming back and probed every target several times at once. How each
//! outcome changes the health machine, from every state it can meet.

use mwan_core::config::Interface;
use mwan_core::health::{Health, HealthSettings, LinkState, ProbeOutcome, ProbeResult};
use mwan_core::Millis;

/// Our recommended tracking: 3 targets, a round every 200 ms, down 3, up 10.
fn wan() -> Interface {
    let mut i = Interface::new("wan");
    i.enabled = true;
    i.track_ip = vec!["192.0.2.1".into(), "192.0.2.2".into(), "192.0.2.3".into()];
    i.interval = 200;
    i.failure_interval = 200;
    i.recovery_interval = 200;
    i.timeout = 3000;
    i.down = 3;
    i.up = 10;
    i
}

fn probe(round: u64, target: usize, answered: bool) -> ProbeResult {
    ProbeResult {
        target,
        round,
        sent_at: round * 200 + target as Millis * 67,
        outcome: if answered {
            ProbeOutcome::Reply { rtt_us: 5_000 }
        } else {
            ProbeOutcome::Lost
        },
        inbound_packets: (!answered).then_some(0),
    }
}

/// A machine fed `rounds` rounds (each `true`: answered by every target,
/// `false`: lost by every target), at the tracker's pace.
fn after(rounds: &[bool]) -> (Health, Millis) {
    let mut h = Health::new(HealthSettings::from_interface(&wan()), 0);
    h.set_prompt_loss_reports(true);
    let mut now = 0;
    for (r, &ok) in rounds.iter().enumerate() {
        for t in 0..3 {
            let p = probe(r as u64, t, ok);
            now = p.sent_at + if ok { 5 } else { 200 };
            h.on_probe(&p, now);
        }
    }
    (h, now)
}

#[test]
fn a_burst_outcome_changes_only_an_up_link_and_only_when_unanswered() {
    let online = [true; 12].to_vec();
    let disconnecting = [[true; 12].as_slice(), &[false]].concat();
    let offline = [[true; 12].as_slice(), &[false; 4]].concat();
    let connecting = [[true; 12].as_slice(), &[false; 4], &[true; 2]].concat();
    // (name, rounds before, burst answered, state after)
    let cases: Vec<(&str, Vec<bool>, bool, LinkState)> = vec![
        (
            "online, unanswered",
            online.clone(),
            false,
            LinkState::Offline,
        ),
        ("online, answered", online.clone(), true, LinkState::Online),
        (
            "disconnecting, unanswered",
            disconnecting.clone(),
            false,
            LinkState::Offline,
        ),
        (
            "disconnecting, answered: resets nothing",
            disconnecting.clone(),
            true,
            LinkState::Disconnecting,
        ),
        (
            "offline, unanswered",
            offline.clone(),
            false,
            LinkState::Offline,
        ),
        (
            "connecting, unanswered: recovery goes on",
            connecting.clone(),
            false,
            LinkState::Connecting,
        ),
        (
            "connecting, answered: counts no round",
            connecting.clone(),
            true,
            LinkState::Connecting,
        ),
    ];
    for (name, rounds, answered, want) in cases {
        let (mut h, now) = after(&rounds);
        let before = (h.state(), h.mwan3_score());
        let changes = h.on_confirmation(answered, Some(0), now, now + 150);
        assert_eq!(h.state(), want, "{name}: from {before:?}");
        assert_eq!(
            changes.len(),
            usize::from(before.0 != want),
            "{name}: {changes:?}"
        );
        if answered {
            assert_eq!(
                h.mwan3_score(),
                before.1,
                "{name}: an answer resets nothing"
            );
        }
    }
}

#[test]
fn an_unanswered_burst_while_traffic_arrived_changes_nothing() {
    // A full queue drops or delays the burst's probes but still delivers
    // other packets (late answers, the flow's own): not a dead link.
    for inbound in [Some(3), None] {
        let (mut h, now) = after(&[true; 12]);
        let changes = h.on_confirmation(false, inbound, now, now + 150);
        assert!(changes.is_empty(), "{inbound:?}: {changes:?}");
        assert_eq!(h.state(), LinkState::Online, "{inbound:?}");
        assert_eq!(h.counters().confirmations_failed, 0);
    }
}

#[test]
fn a_stale_burst_from_a_replayed_backlog_changes_nothing() {
    let (mut h, now) = after(&[true; 12]);
    let changes = h.on_confirmation(false, Some(0), now, now + 5_000);
    assert!(changes.is_empty(), "{changes:?}");
    assert_eq!(h.state(), LinkState::Online);
    assert_eq!(h.counters().confirmations_failed, 1);
}

#[test]
fn after_an_unanswered_burst_late_rounds_count_on_the_offline_side() {
    let (mut h, now) = after(&[true; 12]);
    h.on_confirmation(false, Some(0), now, now + 150);
    assert_eq!(h.state(), LinkState::Offline);
    // The rounds in flight at the cut report their losses: still offline,
    // at the failure interval.
    for t in 0..3 {
        h.on_probe(&probe(12, t, false), now + 300);
    }
    assert_eq!(h.state(), LinkState::Offline);
    // The link comes back: `up` answered rounds bring it online.
    let mut at = now + 400;
    for r in 13..23 {
        for t in 0..3 {
            at = r * 200 + t as Millis * 67 + 5;
            h.on_probe(&probe(r, t, true), at);
        }
    }
    assert_eq!(h.state(), LinkState::Online, "at {at}");
}
