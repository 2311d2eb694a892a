//! A tracker that never reports (it refuses its command line, cannot open
//! its socket, never connects) must not leave its WAN usable forever on
//! the strength of `initial_state online` (issue 13, attack #7): after the
//! silence limit the WAN is offline, and probes bring it back as usual.

use mwan_core::config::Interface;
use mwan_core::health::{Health, HealthSettings, LinkState, ProbeOutcome, ProbeResult};

fn wan() -> Interface {
    let mut i = Interface::new("wan");
    i.enabled = true;
    i.track_ip = vec!["192.0.2.1".into()];
    i
}

#[test]
fn a_tracker_never_heard_from_makes_its_wan_offline_after_the_silence_limit() {
    let settings = HealthSettings::from_interface(&wan());
    let limit = settings.silence_limit;
    let mut h = Health::new(settings, 0);
    h.set_prompt_loss_reports(true);
    assert!(h.usable(), "initial_state online: usable at first");
    assert_eq!(
        h.next_deadline(),
        Some(limit),
        "the bound is a deadline mwand waits for"
    );
    assert!(h.tick(limit - 1).is_empty());
    assert!(h.usable(), "within the bound");
    let t = h.tick(limit);
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(
        (t[0].from, t[0].to),
        (LinkState::Unknown, LinkState::Offline)
    );
    assert!(!h.usable());
    assert_eq!(h.next_deadline(), None, "nothing more to wait for");
}

#[test]
fn a_tracker_heard_once_ages_to_unknown_instead() {
    let settings = HealthSettings::from_interface(&wan());
    let limit = settings.silence_limit;
    let mut h = Health::new(settings, 0);
    h.set_prompt_loss_reports(true);
    let reply = ProbeResult {
        target: 0,
        round: 0,
        sent_at: 100,
        outcome: ProbeOutcome::Reply { rtt_us: 10_000 },
        inbound_packets: None,
    };
    h.on_probe(&reply, 200);
    for t in h.tick(limit + 1) {
        assert_ne!(
            t.to,
            LinkState::Offline,
            "silence after a reply is not an outage"
        );
    }
}
