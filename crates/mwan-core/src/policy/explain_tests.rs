//! One test per clause of [`explain`]; whole sentences are tested in
//! tests/policy_resolve.rs.

use super::*;
use crate::health::LinkState;
use crate::policy::ActiveMember;

fn decision(why: Vec<Why>, active: Vec<ActiveMember>) -> PolicyDecision {
    PolicyDecision {
        policy: "p".into(),
        active,
        last_resort: None,
        configured_last_resort: LastResort::Unreachable,
        why,
    }
}

fn member(interface: &str, weight: u32, family: Family) -> ActiveMember {
    ActiveMember {
        interface: interface.into(),
        member: String::new(),
        weight,
        metric: 1,
        family,
    }
}

#[test]
fn clauses_gather_reasons_uses_and_standby_in_order() {
    let d = decision(
        vec![
            Why::NoScore {
                interface: "w3".into(),
            },
            Why::ScoreBest {
                family: Family::Ipv4,
                interface: "w1".into(),
                score: 12.34,
            },
            Why::ScoreStandby {
                family: Family::Ipv4,
                waiting: vec![("w2".into(), 20.0)],
            },
        ],
        vec![],
    );
    let mut c = Clauses::default();
    for w in &d.why {
        c.add(w, &d, 0);
    }
    assert_eq!(c.reasons, ["w3 has no quality score yet"]);
    assert_eq!(c.uses, ["w1 for IPv4 (score 12.3, lower is better)"]);
    assert_eq!(c.standby, ["w2 (score 20.0) stands by"]);
    assert_eq!(
        c.sentence("p"),
        "w3 has no quality score yet, so policy p uses w1 for IPv4 (score 12.3, lower is better); w2 (score 20.0) stands by"
    );
    assert_eq!(Clauses::default().sentence("q"), "policy q uses nothing");
}

#[test]
fn a_forced_override_replaces_the_uses() {
    let cause = Unusable::State {
        state: LinkState::Offline,
        since: 0,
    };
    let forced = forced_text("wan1", true, &cause, 3_000);
    assert_eq!(
        forced,
        "is forced onto wan1 by a manual override (for this policy) although wan1 is offline (for 3.0 s): traffic through this policy is likely lost"
    );
    let c = Clauses {
        forced: Some(forced),
        uses: vec!["x".into()],
        ..Clauses::default()
    };
    assert!(c
        .sentence("p")
        .ends_with("traffic through this policy is likely lost; for the other family it uses x"));
}

#[test]
fn a_tier_names_its_active_members_of_its_family_with_weights() {
    let d = decision(
        vec![],
        vec![
            member("wan1", 3, Family::Ipv4),
            member("wan2", 1, Family::Ipv4),
            member("wan6", 1, Family::Ipv6),
        ],
    );
    let tier = ["wan1".to_string(), "wan2".to_string(), "wan6".to_string()];
    assert_eq!(
        tier_text(&d, Family::Ipv4, 2, &tier),
        "wan1 (weight 3) and wan2 (weight 1) for IPv4 (metric 2)"
    );
}

#[test]
fn standby_and_hold_texts() {
    assert_eq!(
        score_standby_text(&[("a".into(), 1.0), ("b".into(), 2.0)]),
        "a (score 1.0) and b (score 2.0) stand by"
    );
    assert_eq!(
        hold_text(&Hold::Hysteresis { hysteresis: 5.0 }, "a", "b", 0),
        "not better by more than the hysteresis 5.0"
    );
    assert_eq!(
        hold_text(&Hold::ChallengerNotStable { until: 12_000 }, "a", "b", 0),
        "b must stay usable 12 s more before fail-back"
    );
    assert_eq!(
        hold_text(&Hold::Dwell { until: 1_500 }, "a", "b", 0),
        "a was chosen recently; next switch allowed in 1.5 s"
    );
}
