//! Steps of [`resolve`]: the override and the candidates; whole decisions
//! are tested in tests/policy_resolve.rs.

use super::*;
use crate::config::{Interface, Member};

fn config() -> Config {
    let mut c = Config {
        source: "t".into(),
        globals: Default::default(),
        interfaces: vec![
            Interface::new("wan1"),
            Interface {
                family: Family::Ipv6,
                ..Interface::new("wan6")
            },
        ],
        members: vec![
            Member::new("m1", "wan1"),
            Member::new("m1b", "wan1"),
            Member::new("m6", "wan6"),
            Member::new("gone", "wan9"),
        ],
        policies: vec![],
        rules: vec![],
    };
    let mut p = Policy::new("p");
    p.use_member = ["m1", "m1b", "m6", "gone", "nosuch"]
        .map(String::from)
        .to_vec();
    c.policies.push(p);
    c
}

#[test]
fn candidates_come_per_family_once_per_interface() {
    let c = config();
    let by_family = candidates_by_family(&c, &c.policies[0], &[]);
    let names =
        |f: Family| -> Vec<&str> { by_family[family_slot(f)].iter().map(|c| c.member).collect() };
    assert_eq!(names(Family::Ipv4), ["m1"]);
    assert_eq!(names(Family::Ipv6), ["m6"]);
    assert_eq!(
        by_family[0][0].unusable(),
        Some(Unusable::Disabled),
        "Interface::new is disabled, and has no view"
    );
}

#[test]
fn an_override_takes_its_family_and_a_bad_one_is_ignored() {
    let c = config();
    let p = &c.policies[0];
    let (mut active, mut why) = (Vec::new(), Vec::new());
    let global = Overrides {
        global: Some("wan6".into()),
        per_policy: Default::default(),
    };
    assert_eq!(
        apply_override(&c, p, &[], &global, &mut active, &mut why),
        Some(Family::Ipv6)
    );
    assert_eq!(active[0].interface, "wan6");
    assert!(matches!(
        &why[0],
        Why::Override {
            per_policy: false,
            ..
        }
    ));
    let per_policy = Overrides {
        global: Some("wan6".into()),
        per_policy: [("p".to_string(), "wan9".to_string())].into(),
    };
    let (mut active, mut why) = (Vec::new(), Vec::new());
    assert_eq!(
        apply_override(&c, p, &[], &per_policy, &mut active, &mut why),
        None
    );
    assert!(active.is_empty());
    assert_eq!(
        why,
        [Why::OverrideIgnored {
            interface: "wan9".into()
        }]
    );
    assert_eq!(
        apply_override(&c, p, &[], &Overrides::default(), &mut active, &mut why),
        None
    );
}

fn view(interface: &str, jitter_ms: f64) -> WanView {
    WanView {
        interface: interface.into(),
        state: LinkState::Online,
        since: 0,
        usable: true,
        usable_since: Some(0),
        score: None,
        quality: Some(QualityReading {
            latency_ms: Some(20.0),
            jitter_ms,
            loss_pct: 0.0,
        }),
    }
}

#[test]
fn a_candidate_over_a_ceiling_is_excluded_and_says_why() {
    let mut c = config();
    c.policies[0].ceilings.jitter = Some(crate::config::Ceiling {
        limit: 30.0,
        hysteresis: 3.0,
        min_stable_ms: 0,
    });
    let wans = [view("wan1", 48.0), view("wan6", 10.0)];
    let mut by_family = candidates_by_family(&c, &c.policies[0], &wans);
    let (mut memory, mut why) = (PolicyMemory::default(), Vec::new());
    check_ceilings(&c.policies[0], &mut by_family, &mut memory, 1_000, &mut why);
    assert!(by_family[0][0].excluded && !by_family[0][0].usable());
    assert!(by_family[1][0].usable(), "wan6 meets the ceiling");
    assert!(matches!(
        &why[..],
        [Why::CeilingExceeded { interface, exceeded }]
            if interface == "wan1" && exceeded.value == 48.0
    ));
    // Without ceilings nothing is checked or remembered.
    let plain = config();
    let mut by_family = candidates_by_family(&plain, &plain.policies[0], &wans);
    let mut memory = PolicyMemory::default();
    check_ceilings(
        &plain.policies[0],
        &mut by_family,
        &mut memory,
        1_000,
        &mut why,
    );
    assert!(memory.ceilings.is_empty() && by_family[0][0].usable());
}
