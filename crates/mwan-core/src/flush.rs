//! Which WANs' pinned connections to delete after a change (pure).
//!
//! Pinning keeps a connection on the WAN it started on; two events override
//! that on purpose. A WAN that becomes unusable loses its pins and sticky
//! entries, so its clients reconnect through a live WAN at once. And a WAN
//! whose `flush_conntrack` lists `connected` loses its pins when a policy
//! moves off it although it still works, because another WAN came (back)
//! online: the metered-backup case (docs/mwand.md). mwand performs what
//! [`flushes`] decides.

use crate::config::{Config, FlushEvent};
use crate::policy::PolicyDecision;
use std::collections::{BTreeMap, BTreeSet};

/// What carried traffic at one moment: per WAN whether it was usable, and
/// which (policy, WAN) pairs were active.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Carrying {
    pub usable: BTreeMap<String, bool>,
    pub active: BTreeSet<(String, String)>,
}

impl Carrying {
    pub fn new(
        usable: impl IntoIterator<Item = (String, bool)>,
        decisions: &[PolicyDecision],
    ) -> Self {
        Carrying {
            usable: usable.into_iter().collect(),
            active: decisions
                .iter()
                .flat_map(|d| {
                    d.active
                        .iter()
                        .map(|m| (d.policy.clone(), m.interface.clone()))
                })
                .collect(),
        }
    }

    /// Whether some policy sends traffic through `wan`.
    pub fn carries(&self, wan: &str) -> bool {
        self.active.iter().any(|(_, w)| w == wan)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushReason {
    /// The WAN was usable and no longer is.
    Unusable,
    /// `flush_conntrack 'connected'`: a policy moved off this WAN while it
    /// is still usable.
    MovedOff,
}

/// The WANs of `after` whose pinned connections must go, in name order. A
/// WAN seen for the first time is never flushed: nothing was pinned to it
/// by us yet.
pub fn flushes(config: &Config, before: &Carrying, after: &Carrying) -> Vec<(String, FlushReason)> {
    after
        .usable
        .iter()
        .filter_map(|(name, &usable)| {
            if before.usable.get(name) == Some(&true) && !usable {
                return Some((name.clone(), FlushReason::Unusable));
            }
            let wants_flush_on_move = config
                .interface(name)
                .is_some_and(|i| i.flush_conntrack.contains(&FlushEvent::Connected));
            let moved_off = before
                .active
                .iter()
                .any(|pw| &pw.1 == name && !after.active.contains(pw));
            (wants_flush_on_move && usable && moved_off)
                .then(|| (name.clone(), FlushReason::MovedOff))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(connected_on: &[&str]) -> Config {
        let text: String = ["wan1", "wan2"]
            .iter()
            .map(|n| {
                let flush = if connected_on.contains(n) {
                    "\tlist flush_conntrack 'connected'\n"
                } else {
                    ""
                };
                format!("config interface '{n}'\n\toption enabled '1'\n{flush}")
            })
            .collect();
        crate::config::parse("test", &text).expect("valid").config
    }

    fn carrying(usable: &[(&str, bool)], active: &[(&str, &str)]) -> Carrying {
        Carrying {
            usable: usable.iter().map(|(n, u)| (n.to_string(), *u)).collect(),
            active: active
                .iter()
                .map(|(p, w)| (p.to_string(), w.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_wan_that_becomes_unusable_is_flushed_whatever_its_options() {
        let before = carrying(&[("wan1", true), ("wan2", true)], &[("p", "wan1")]);
        let after = carrying(&[("wan1", false), ("wan2", true)], &[("p", "wan2")]);
        assert_eq!(
            flushes(&config(&[]), &before, &after),
            [("wan1".to_string(), FlushReason::Unusable)]
        );
    }

    #[test]
    fn pins_hold_on_fail_back_unless_the_backup_asks_for_connected() {
        // wan1 returns; the failover policy moves back from wan2 to wan1.
        let before = carrying(&[("wan1", false), ("wan2", true)], &[("failover", "wan2")]);
        let after = carrying(&[("wan1", true), ("wan2", true)], &[("failover", "wan1")]);
        assert!(
            flushes(&config(&[]), &before, &after).is_empty(),
            "pinning holds"
        );
        assert_eq!(
            flushes(&config(&["wan2"]), &before, &after),
            [("wan2".to_string(), FlushReason::MovedOff)]
        );
        // Only the WAN a policy left: wan1 asking for it changes nothing.
        assert!(flushes(&config(&["wan1"]), &before, &after).is_empty());
    }

    #[test]
    fn a_wan_still_carrying_the_policy_or_seen_first_is_left_alone() {
        let before = carrying(
            &[("wan1", true), ("wan2", true)],
            &[("p", "wan1"), ("p", "wan2")],
        );
        let same = before.clone();
        assert!(flushes(&config(&["wan1", "wan2"]), &before, &same).is_empty());
        let first = carrying(&[("wan1", false)], &[]);
        assert!(flushes(&config(&[]), &Carrying::default(), &first).is_empty());
    }
}
