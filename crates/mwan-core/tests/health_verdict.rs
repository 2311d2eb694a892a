//! A WAN's last verdict survives a controller restart (saved, judged by
//! age, resumed) and a reload that changes its tracking (issue 13,
//! attack 6): traffic never returns to a WAN known to be dead because the
//! controller started over.

use mwan_core::config::{InitialState, Interface};
use mwan_core::health::{
    saved_verdict_holds, verdict_lifetime, Health, HealthSettings, LinkState, ProbeOutcome,
    ProbeResult, SavedVerdict, Verdict, MIN_VERDICT_LIFETIME_MS,
};

fn wan() -> Interface {
    let mut i = Interface::new("wan");
    i.enabled = true;
    i.track_ip = vec!["192.0.2.1".into()];
    i
}

fn machine(iface: &Interface) -> Health {
    let mut h = Health::new(HealthSettings::from_interface(iface), 0);
    h.set_prompt_loss_reports(true);
    h
}

/// What a reload to `changed` makes of `h`, as mwand does it.
fn reconfigured(h: &Health, changed: &Interface, now: u64) -> (Health, Option<Verdict>) {
    let mut next = Health::new(HealthSettings::from_interface(changed), now);
    next.set_prompt_loss_reports(true);
    let kept = h.carry_verdict_to(&mut next, now);
    (next, kept)
}

/// Feeds `rounds` decided rounds (all answered or all lost) from round
/// `first` on; returns the time after the last.
fn feed(h: &mut Health, first: u64, rounds: u64, ok: bool) -> u64 {
    let spacing = h.settings().interval;
    let mut now = 0;
    for round in first..first + rounds {
        let sent_at = 1_000 + round * spacing;
        now = sent_at + 100;
        let outcome = if ok {
            ProbeOutcome::Reply { rtt_us: 10_000 }
        } else {
            ProbeOutcome::Lost
        };
        let p = ProbeResult {
            target: 0,
            round,
            sent_at,
            outcome,
            inbound_packets: Some(0),
        };
        h.on_probe(&p, now);
        h.tick(now);
    }
    now
}

/// The machine in each state the table needs, with the time reached.
fn in_state(state: &str) -> (Health, u64) {
    let mut h = machine(&wan());
    let (up, down) = (u64::from(h.settings().up), u64::from(h.settings().down));
    let now = match state {
        "fresh" => 0,
        "online" => feed(&mut h, 0, 1, true),
        "disconnecting" => {
            feed(&mut h, 0, 1, true);
            feed(&mut h, 1, down - 1, false)
        }
        "offline" => feed(&mut h, 0, down, false),
        "connecting" => {
            feed(&mut h, 0, down, false);
            feed(&mut h, down, up - 1, true)
        }
        "silent after offline" => {
            let t = feed(&mut h, 0, down, false);
            let later = t + h.settings().silence_limit + 1;
            h.tick(later);
            later
        }
        _ => unreachable!(),
    };
    (h, now)
}

#[test]
fn the_verdict_of_each_state_is_what_a_restart_or_reload_keeps() {
    // (state reached, its LinkState, verdict kept, usable after a reload)
    let table = [
        ("fresh", LinkState::Unknown, None, true),
        ("online", LinkState::Online, Some(Verdict::Online), true),
        (
            "disconnecting",
            LinkState::Disconnecting,
            Some(Verdict::Online),
            true,
        ),
        ("offline", LinkState::Offline, Some(Verdict::Offline), false),
        (
            "connecting",
            LinkState::Connecting,
            Some(Verdict::Offline),
            false,
        ),
        (
            "silent after offline",
            LinkState::Unknown,
            Some(Verdict::Offline),
            false,
        ),
    ];
    for (name, state, verdict, usable) in table {
        let (h, now) = in_state(name);
        assert_eq!(h.state(), state, "{name}");
        assert_eq!(h.verdict(), verdict, "{name}");
        // A reload that changes a tracking option (the interval here).
        let mut changed = wan();
        changed.interval = h.settings().interval * 2;
        let (next, kept) = reconfigured(&h, &changed, now);
        assert_eq!(kept, verdict, "{name}: the reload keeps the verdict");
        assert_eq!(next.usable(), usable, "{name}: usable after the reload");
        assert_eq!(next.settings().interval, changed.interval, "{name}");
        if let Some(v) = verdict {
            assert_eq!(next.state().as_str(), v.as_str(), "{name}");
        }
    }
}

#[test]
fn an_offline_verdict_outlives_a_reload_that_flips_initial_state_and_recovers_by_probes() {
    let (h, now) = in_state("offline");
    let mut changed = wan();
    changed.initial_state = InitialState::Online;
    changed.count = 2;
    let (mut next, kept) = reconfigured(&h, &changed, now);
    assert_eq!(kept, Some(Verdict::Offline));
    assert!(!next.usable());
    assert_eq!(next.since(), h.since(), "offline keeps its age");
    // Its tracker says otherwise: `up` good rounds bring it back.
    let up = u64::from(next.settings().up);
    let spacing = next.settings().interval;
    for round in 0..up {
        for _ in 0..2 {
            let sent_at = now + 1_000 + round * spacing;
            let p = ProbeResult {
                target: 0,
                round,
                sent_at,
                outcome: ProbeOutcome::Reply { rtt_us: 10_000 },
                inbound_packets: None,
            };
            next.on_probe(&p, sent_at + 20);
        }
    }
    assert_eq!(next.state(), LinkState::Online);
}

#[test]
fn a_restart_resumes_a_saved_verdict_within_its_lifetime_only() {
    let settings = HealthSettings::from_interface(&wan());
    let lifetime = verdict_lifetime(&settings);
    assert!(lifetime >= MIN_VERDICT_LIFETIME_MS);
    let saved = |since, saved_at| SavedVerdict {
        verdict: Verdict::Offline,
        since,
        saved_at,
    };
    // (saved verdict, now, taken back)
    let table = [
        (saved(1_000, 5_000), 5_000, true),
        (saved(1_000, 5_000), 5_000 + lifetime, true),
        (saved(1_000, 5_000), 5_001 + lifetime, false),
        (saved(1_000, 9_000), 8_000, false),
        (saved(6_000, 5_000), 9_000, false),
    ];
    for (s, now, taken) in table {
        assert_eq!(
            saved_verdict_holds(&s, &settings, now),
            taken,
            "{s:?} at {now}"
        );
    }
    let mut h = machine(&wan());
    assert!(h.usable(), "initial_state online");
    h.resume(Verdict::Offline, 1_000, 5_000);
    assert_eq!(h.state(), LinkState::Offline);
    assert!(!h.usable());
    assert_eq!(h.since(), 1_000);
    assert_eq!(
        h.verdict(),
        Some(Verdict::Offline),
        "a second restart keeps it too"
    );
    // Failed rounds after the restart change nothing (no second hook).
    assert!(h
        .on_probe(
            &ProbeResult {
                target: 0,
                round: 0,
                sent_at: 6_000,
                outcome: ProbeOutcome::Lost,
                inbound_packets: Some(0),
            },
            6_100,
        )
        .is_empty());
    // A link event starts judging over (mwan3's ifup): nothing to keep.
    h.link_event(false, 7_000);
    assert_eq!(h.verdict(), None);
}
