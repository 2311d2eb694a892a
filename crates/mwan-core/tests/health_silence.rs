//! A tracker that reports every lost probe at the effective timeout (and
//! late answers up to the configured one), told so with
//! `Health::set_prompt_loss_reports(true)`: a silent link still produces
//! results at the usual pace and goes offline within its bound, while a
//! tracker that itself goes silent (hung, stopped, connection still open)
//! makes its WAN unknown with the last verdict kept, never offline.

#[path = "sim_common/mod.rs"]
mod sim_common;

use mwan_core::health::analysis::detection_bound;
use mwan_core::health::{HealthSettings, LinkState};
use mwan_core::Millis;
use sim_common::*;

const HEALTHY: Noisy = Noisy {
    loss: 0.05,
    base_ms: 20.0,
    jitter_ms: 5.0,
};

fn prompt_sim(seed: u64) -> Sim {
    let mut sim = Sim::new(&recommended_iface("wan"), seed);
    sim.health.set_prompt_loss_reports(true);
    sim
}

#[test]
fn a_silent_tracker_makes_its_wan_unknown_not_offline() {
    for seed in 0..20u64 {
        let mut sim = prompt_sim(seed);
        let mut link = HEALTHY;
        let hang = 30_000 + seed * 37 % 200;
        sim.run(&mut link, hang, u64::MAX);
        assert_eq!(sim.health.state(), LinkState::Online, "seed {seed}");
        let before = sim.health.mwan3_score();
        // The tracker hangs: nothing more arrives (what it had in flight is
        // lost with it); only time passes.
        let mut unknown_at = None;
        let mut t = hang;
        while t < hang + 10_000 {
            t += 10;
            for tr in sim.health.tick(t) {
                assert_ne!(tr.to, LinkState::Offline, "seed {seed}: {tr:?}");
                if tr.to == LinkState::Unknown {
                    unknown_at.get_or_insert(t);
                }
            }
            assert!(sim.health.usable(), "seed {seed}: unusable at {t}");
        }
        let took = unknown_at.expect("aged to unknown") - hang;
        // The expected round's deadline plus one round spacing: well under
        // the silence limit (3.9 s at these settings).
        assert!(took <= 1_200, "seed {seed}: unknown after {took} ms");
        assert!(sim.health.aged());
        assert!(sim.health.mwan3_score() + 2 >= before, "history kept");
    }
}

#[test]
fn a_silent_link_still_goes_offline_within_its_bound() {
    let settings = HealthSettings::from_interface(&recommended_iface("wan"));
    for seed in 0..20u64 {
        let mut sim = prompt_sim(seed);
        let mut link = HEALTHY;
        link.loss = 0.0;
        let cut = 30_000 + seed * 37 % 200;
        sim.run(&mut link, cut, u64::MAX);
        let timeout = sim.health.probe_timeout();
        let mut dead = |_: Millis, _: usize, _: &mut Rng| None;
        sim.run(&mut dead, cut + 5_000, u64::MAX);
        let after: Vec<_> = sim.transitions.iter().filter(|t| t.at >= cut).collect();
        let down = after
            .iter()
            .find(|t| t.to == LinkState::Offline)
            .expect("offline");
        assert!(
            !after
                .iter()
                .any(|t| t.to == LinkState::Unknown && t.at < down.at),
            "seed {seed}: a cut taken for tracker silence: {after:?}"
        );
        let took = down.at - cut;
        let bound = detection_bound(&settings, timeout);
        assert!(took <= bound, "seed {seed}: {took} ms > bound {bound} ms");
    }
}

#[test]
fn a_tracker_that_reports_again_continues_from_its_history() {
    let mut sim = prompt_sim(7);
    let mut link = HEALTHY;
    sim.run(&mut link, 20_000, u64::MAX);
    let mut t = 20_000;
    while !sim.health.aged() {
        t += 10;
        sim.health.tick(t);
        assert!(t < 25_000, "never aged");
    }
    // A new tracker (same machine, rounds start over) and a healthy link.
    sim.health.tracker_restarted();
    sim.now = t;
    sim.next_round_at = t;
    sim.round = 0;
    sim.run(&mut link, t + 1_000, u64::MAX);
    assert_eq!(sim.health.state(), LinkState::Online);
    assert!(
        !sim.transitions
            .iter()
            .any(|tr| tr.at >= 20_000 && tr.to == LinkState::Offline),
        "{:?}",
        sim.transitions
    );
}

/// Issue 14: a probe budget stretches the tracker's rounds (30 probes a
/// minute over 3 targets: one round every 6 s; 10 MB a day of 84-byte
/// ICMP echoes both ways: 41 probes a minute, one round every 4.39 s). The
/// core must expect rounds at that spacing, not at the configured interval,
/// or a healthy WAN reads unknown between rounds (it flipped every round).
#[test]
fn a_probe_budget_does_not_make_a_healthy_wan_unknown() {
    use mwan_core::config::ProbeBudget;
    for (budget, tracker_spacing) in [
        (ProbeBudget::ProbesPerMinute(30), 6_000),
        (ProbeBudget::BytesPerDay(10_000_000), 4_390),
        (ProbeBudget::ProbesPerMinute(600), 300),
    ] {
        for (prompt, seed) in [(true, 1), (false, 2), (true, 3)] {
            let mut i = recommended_iface("wan");
            i.probe_budget = Some(budget.clone());
            let mut sim = Sim::new(&i, seed);
            sim.health.set_prompt_loss_reports(prompt);
            sim.lost_at_cap = !prompt;
            sim.min_interval = tracker_spacing;
            let mut link = HEALTHY;
            sim.run(&mut link, 300_000, u64::MAX);
            let changes: Vec<_> = sim.transitions.iter().map(|t| (t.from, t.to)).collect();
            assert_eq!(
                changes,
                [(LinkState::Unknown, LinkState::Online)],
                "{budget:?}, prompt {prompt}: {:?}",
                sim.transitions
            );
        }
    }
}
