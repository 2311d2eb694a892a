//! One test per step of score mode; whole decisions are tested in
//! tests/policy_resolve.rs and the sims.

use super::*;
use crate::health::LinkState;
use crate::policy::WanView;

fn view(name: &str, score: Option<f64>, usable_since: Option<Millis>) -> WanView {
    WanView {
        interface: name.into(),
        state: LinkState::Online,
        since: 0,
        usable: usable_since.is_some(),
        usable_since,
        score,
        quality: None,
    }
}

fn candidate<'a>(view: &'a WanView, metric: u32) -> Candidate<'a> {
    Candidate {
        member: &view.interface,
        enabled: true,
        interface: &view.interface,
        metric,
        weight: 1,
        view: Some(view),
        excluded: false,
    }
}

const DAMPING: Damping = Damping {
    hysteresis: 5.0,
    min_stable_ms: 10_000,
    now: 100_000,
};

/// a (score 50, stable), b (score 40, usable only since 95 s), c (usable,
/// no score), d (down).
fn views() -> Vec<WanView> {
    vec![
        view("a", Some(50.0), Some(0)),
        view("b", Some(40.0), Some(95_000)),
        view("c", None, Some(0)),
        view("d", Some(1.0), None),
    ]
}

#[test]
fn no_score_reasons_name_usable_members_without_a_score() {
    let v = views();
    let c: Vec<Candidate> = v.iter().map(|v| candidate(v, 1)).collect();
    let mut why = Vec::new();
    no_score_reasons(&c, &mut why);
    assert_eq!(
        why,
        [Why::NoScore {
            interface: "c".into()
        }]
    );
    assert_eq!(scored_members(&c), [(0, 50.0), (1, 40.0)]);
}

#[test]
fn best_of_takes_the_lowest_score_then_the_lower_metric_then_the_first() {
    let v = views();
    let c = [
        candidate(&v[0], 2),
        candidate(&v[1], 1),
        candidate(&v[2], 1),
    ];
    assert_eq!(
        best_of(&c, [(0, 10.0), (1, 20.0)].into_iter()),
        Some((0, 10.0))
    );
    assert_eq!(
        best_of(&c, [(0, 10.0), (1, 10.0)].into_iter()),
        Some((1, 10.0))
    );
    assert_eq!(
        best_of(&c, [(1, 10.0), (2, 10.0)].into_iter()),
        Some((1, 10.0))
    );
    assert_eq!(best_of(&c, std::iter::empty()), None);
}

#[test]
fn a_first_choice_prefers_stable_links_and_is_remembered() {
    let v = views();
    let c: Vec<Candidate> = v.iter().map(|v| candidate(v, 1)).collect();
    let mut slot = None;
    // b scores better but has been usable for 5 s only.
    assert_eq!(
        first_choice(&c, &scored_members(&c), DAMPING, &mut slot),
        Some((0, 50.0))
    );
    assert_eq!(
        slot,
        Some(Choice {
            interface: "a".into(),
            since: 100_000
        })
    );
    // Nothing stable: the best of the rest.
    assert_eq!(
        first_choice(&c[1..2], &[(0, 40.0)], DAMPING, &mut slot),
        Some((0, 40.0))
    );
}

#[test]
fn hold_checks_hysteresis_then_fail_back_then_dwell() {
    let v = views();
    let stable = candidate(&v[0], 1);
    let fresh = candidate(&v[1], 1);
    assert_eq!(
        hold(DAMPING, &stable, 46.0, 50.0, 0),
        Some(Hold::Hysteresis { hysteresis: 5.0 })
    );
    assert_eq!(
        hold(DAMPING, &fresh, 10.0, 50.0, 0),
        Some(Hold::ChallengerNotStable { until: 105_000 })
    );
    assert_eq!(
        hold(DAMPING, &stable, 10.0, 50.0, 95_000),
        Some(Hold::Dwell { until: 105_000 })
    );
    assert_eq!(hold(DAMPING, &stable, 10.0, 50.0, 0), None);
}

#[test]
fn a_held_challenge_keeps_the_choice_and_is_not_listed_as_standby() {
    let v = views();
    let c: Vec<Candidate> = v.iter().map(|v| candidate(v, 1)).collect();
    let mut slot = Some(Choice {
        interface: "a".into(),
        since: 0,
    });
    let (mut active, mut why) = (Vec::new(), Vec::new());
    resolve_score(Family::Ipv4, &c, DAMPING, &mut slot, &mut active, &mut why);
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].interface, "a");
    assert!(matches!(
        &why[1],
        Why::ScoreHeld { challenger, hold: Hold::ChallengerNotStable { .. }, .. } if challenger == "b"
    ));
    assert!(matches!(&why[2], Why::ScoreBest { interface, .. } if interface == "a"));
    // b is named by the hold, so nobody else stands by.
    assert_eq!(why.len(), 3);
}

#[test]
fn record_choice_lists_the_others_best_first() {
    let v = [
        view("a", Some(50.0), Some(0)),
        view("b", Some(70.0), Some(0)),
        view("c", Some(60.0), Some(0)),
    ];
    let c: Vec<Candidate> = v.iter().map(|v| candidate(v, 1)).collect();
    let (mut active, mut why) = (Vec::new(), Vec::new());
    record_choice(
        Family::Ipv6,
        &c,
        &scored_members(&c),
        (0, 50.0),
        &mut active,
        &mut why,
    );
    assert_eq!(active[0].family, Family::Ipv6);
    assert_eq!(
        why[1],
        Why::ScoreStandby {
            family: Family::Ipv6,
            waiting: vec![("c".into(), 60.0), ("b".into(), 70.0)]
        }
    );
}
