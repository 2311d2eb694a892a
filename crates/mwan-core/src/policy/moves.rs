//! Which policies moved between two rounds of decisions, and whether a
//! measurement alone can move one. mwand records each move in the history
//! whoever re-decided: a health change or a quality ceiling after samples.

use super::PolicyDecision;
use crate::config::Config;

/// Whether decisions follow every measurement (some policy has quality
/// ceilings), not only health changes: then mwand re-decides after each
/// tracker's samples.
pub fn follows_quality(config: &Config) -> bool {
    config.policies.iter().any(|p| p.ceilings.any())
}

/// Whether two decisions of one policy route alike: same carriers with the
/// same weights, same last resort. Ceiling reasons and metrics aside.
fn same_carriers(a: &PolicyDecision, b: &PolicyDecision) -> bool {
    a.last_resort == b.last_resort
        && a.active.len() == b.active.len()
        && a.active
            .iter()
            .zip(&b.active)
            .all(|(x, y)| x.interface == y.interface && x.weight == y.weight)
}

/// The policies of `after` whose carriers differ from `before` (a policy
/// new in `after` moved), in `after`'s order.
pub fn moved(before: &[PolicyDecision], after: &[PolicyDecision]) -> Vec<String> {
    after
        .iter()
        .filter(|a| {
            !before
                .iter()
                .any(|b| b.policy == a.policy && same_carriers(a, b))
        })
        .map(|a| a.policy.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Ceiling, Family, LastResort, Policy};
    use crate::policy::ActiveMember;

    fn decision(policy: &str, carriers: &[(&str, u32)]) -> PolicyDecision {
        PolicyDecision {
            policy: policy.into(),
            active: carriers
                .iter()
                .map(|(interface, weight)| ActiveMember {
                    interface: (*interface).into(),
                    member: format!("m_{interface}"),
                    weight: *weight,
                    metric: 1,
                    family: Family::Ipv4,
                })
                .collect(),
            last_resort: None,
            configured_last_resort: LastResort::Unreachable,
            why: Vec::new(),
        }
    }

    #[test]
    fn a_policy_moves_when_its_carriers_or_weights_or_last_resort_change() {
        let before = [decision("a", &[("wan1", 1)]), decision("b", &[("wan1", 1)])];
        let mut to_last_resort = decision("b", &[]);
        to_last_resort.last_resort = Some(LastResort::Unreachable);
        let cases: [(&str, Vec<PolicyDecision>, &[&str]); 6] = [
            ("nothing changed", before.to_vec(), &[]),
            (
                "another carrier",
                vec![decision("a", &[("wan2", 1)]), before[1].clone()],
                &["a"],
            ),
            (
                "another weight",
                vec![before[0].clone(), decision("b", &[("wan1", 3)])],
                &["b"],
            ),
            (
                "a second carrier",
                vec![
                    decision("a", &[("wan1", 1), ("wan2", 1)]),
                    before[1].clone(),
                ],
                &["a"],
            ),
            (
                "no carrier left: last resort",
                vec![before[0].clone(), to_last_resort],
                &["b"],
            ),
            (
                "a new policy",
                vec![before[0].clone(), before[1].clone(), decision("c", &[])],
                &["c"],
            ),
        ];
        for (what, after, want) in cases {
            assert_eq!(moved(&before, &after), want, "{what}");
        }
        // The first round: every policy moved.
        assert_eq!(moved(&[], &before), ["a", "b"]);
    }

    #[test]
    fn only_a_policy_with_a_ceiling_follows_quality() {
        let mut config = Config {
            source: "t".into(),
            globals: Default::default(),
            interfaces: vec![],
            members: vec![],
            policies: vec![Policy::new("plain")],
            rules: vec![],
        };
        assert!(!follows_quality(&config));
        let mut p = Policy::new("gaming");
        p.ceilings.latency = Some(Ceiling {
            limit: 80.0,
            hysteresis: 8.0,
            min_stable_ms: 0,
        });
        config.policies.push(p);
        assert!(follows_quality(&config));
    }
}
