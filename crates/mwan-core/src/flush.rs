//! Which WANs' pinned connections to delete after a change (pure).
//!
//! Pinning keeps a connection on the WAN it started on; two events override
//! that on purpose. A WAN that becomes unusable loses its pins and sticky
//! entries, so its clients reconnect through a live WAN at once. And a WAN
//! whose `flush_conntrack` lists `connected` loses its pins when a policy
//! moves off it although it still works, because another WAN came (back)
//! online: the metered-backup case (docs/mwand.md). mwand performs what
//! [`flushes`] decides.
//!
//! A flush may leave entries behind (offloaded flows on older kernels,
//! connections opened in between), so each is checked again a moment later
//! and repeated a few times: [`PendingFlushes`] holds that retry policy and
//! answers with [`Retry`] actions for mwand to perform.

use crate::config::{Config, FlushEvent};
use crate::policy::PolicyDecision;
use crate::Millis;
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
            usable: crate::sort::btree_map(usable),
            active: crate::sort::btree_set(decisions.iter().flat_map(|d| {
                d.active
                    .iter()
                    .map(|m| (d.policy.clone(), m.interface.clone()))
            })),
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

/// A flush is checked this long after it was sent (the flowtable's GC
/// runs about every second) ...
pub const FLUSH_RECHECK_MS: Millis = 2_000;
/// ... and repeated at most this many times. The count cannot tell flows
/// that survived from new ones: the dead WAN's tracker keeps probing, and
/// its probes' conntrack entries get the WAN's pin too (harmless to
/// delete), so a flush usually runs all its attempts.
pub const FLUSH_ATTEMPTS: u32 = 3;

/// A WAN's pinned connections as a conntrack filter (mark under mask).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinFilter {
    pub mark: u32,
    pub mask: u32,
}

/// A flush to check again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PendingFlush {
    filter: PinFilter,
    reason: FlushReason,
    /// Flushes repeated so far.
    attempts: u32,
    next_at: Millis,
}

/// What to do with a pending flush once its remaining entries are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// None left: done.
    Done,
    /// Flush again (the filter), checked again at `next_at`.
    FlushAgain { filter: PinFilter, left: u64 },
    /// Entries remain but the attempts ran out: stop.
    GiveUp { left: u64 },
}

/// The WANs whose flush is checked again, in name order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingFlushes {
    pending: BTreeMap<String, PendingFlush>,
}

impl PendingFlushes {
    /// A flush was sent for `wan` at `now` (replaces one pending for it).
    pub fn sent(&mut self, wan: &str, filter: PinFilter, reason: FlushReason, now: Millis) {
        self.pending.insert(
            wan.to_string(),
            PendingFlush {
                filter,
                reason,
                attempts: 0,
                next_at: now + FLUSH_RECHECK_MS,
            },
        );
    }

    /// After a pass: a WAN usable again (failed before), or carrying a
    /// policy again (moved off before), keeps its new pins, so its pending
    /// flush is dropped; so is the flush of a WAN that is gone.
    pub fn settle(&mut self, after: &Carrying) {
        self.pending.retain(|name, p| {
            let usable = after.usable.get(name) == Some(&true);
            match p.reason {
                FlushReason::Unusable => !usable,
                FlushReason::MovedOff => usable && !after.carries(name),
            }
        });
    }

    /// The flushes whose check is due at `now`: mwand counts each one's
    /// remaining entries and reports with [`PendingFlushes::counted`].
    pub fn due(&self, now: Millis) -> Vec<(String, PinFilter)> {
        self.pending
            .iter()
            .filter(|(_, p)| now >= p.next_at)
            .map(|(name, p)| (name.clone(), p.filter))
            .collect()
    }

    /// `left` entries are still pinned to `wan`: what to do next. A
    /// `FlushAgain` stays pending (checked again later); `Done` and
    /// `GiveUp` end it.
    pub fn counted(&mut self, wan: &str, left: u64, now: Millis) -> Retry {
        let Some(p) = self.pending.get_mut(wan) else {
            return Retry::Done;
        };
        if left == 0 {
            self.pending.remove(wan);
            return Retry::Done;
        }
        p.attempts += 1;
        if p.attempts > FLUSH_ATTEMPTS {
            self.pending.remove(wan);
            return Retry::GiveUp { left };
        }
        p.next_at = now + FLUSH_RECHECK_MS;
        Retry::FlushAgain {
            filter: p.filter,
            left,
        }
    }

    /// Counting or flushing `wan` failed: it is no longer retried (the
    /// error goes to the data plane's status).
    pub fn failed(&mut self, wan: &str) {
        self.pending.remove(wan);
    }

    /// The WANs pending, for status.
    pub fn names(&self) -> Vec<String> {
        self.pending.keys().cloned().collect()
    }
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

    const PIN: PinFilter = PinFilter {
        mark: 0x100,
        mask: 0xff00,
    };

    fn pending_wan1(reason: FlushReason) -> PendingFlushes {
        let mut p = PendingFlushes::default();
        p.sent("wan1", PIN, reason, 1_000);
        p
    }

    #[test]
    fn a_flush_is_checked_after_the_recheck_delay_and_repeated_at_most_its_attempts() {
        let mut p = pending_wan1(FlushReason::Unusable);
        assert_eq!(p.due(2_999), []);
        let mut now = 1_000 + FLUSH_RECHECK_MS;
        assert_eq!(p.due(now), [("wan1".to_string(), PIN)]);
        for _ in 0..FLUSH_ATTEMPTS {
            assert_eq!(
                p.counted("wan1", 7, now),
                Retry::FlushAgain {
                    filter: PIN,
                    left: 7
                }
            );
            assert_eq!(p.due(now), [], "not before the next recheck");
            now += FLUSH_RECHECK_MS;
            assert_eq!(p.due(now).len(), 1);
        }
        assert_eq!(p.counted("wan1", 2, now), Retry::GiveUp { left: 2 });
        assert_eq!(p.names(), Vec::<String>::new());
    }

    #[test]
    fn a_flush_with_nothing_left_is_done_and_an_error_ends_it() {
        let mut p = pending_wan1(FlushReason::Unusable);
        assert_eq!(p.counted("wan1", 0, 3_000), Retry::Done);
        assert!(p.names().is_empty());
        let mut p = pending_wan1(FlushReason::Unusable);
        p.failed("wan1");
        assert!(p.names().is_empty());
        assert_eq!(p.counted("wan1", 5, 3_000), Retry::Done, "unknown WAN");
    }

    /// (reason, usable after, carrying a policy after, still pending)
    #[test]
    fn which_pending_flushes_survive_a_pass() {
        let cases = [
            // Fail-back during a pending flush: wan1 is usable again before
            // the check, so its new pins stay.
            (FlushReason::Unusable, Some(true), true, false),
            (FlushReason::Unusable, Some(true), false, false),
            (FlushReason::Unusable, Some(false), false, true),
            // Gone from the config: nothing to check any more ... for a
            // moved-off WAN; a failed one that is gone stays until counted.
            (FlushReason::Unusable, None, false, true),
            (FlushReason::MovedOff, None, false, false),
            // Moved off and still not carrying: keep checking.
            (FlushReason::MovedOff, Some(true), false, true),
            // A policy came back to it, or it failed after all (a new
            // Unusable flush replaces this one).
            (FlushReason::MovedOff, Some(true), true, false),
            (FlushReason::MovedOff, Some(false), false, false),
        ];
        for (reason, usable, carrying, survives) in cases {
            let mut p = pending_wan1(reason);
            let after = Carrying {
                usable: usable
                    .map(|u| ("wan1".to_string(), u))
                    .into_iter()
                    .collect(),
                active: carrying
                    .then(|| ("p".to_string(), "wan1".to_string()))
                    .into_iter()
                    .collect(),
            };
            p.settle(&after);
            assert_eq!(
                p.names() == ["wan1"],
                survives,
                "{reason:?} usable {usable:?} carrying {carrying}"
            );
        }
    }

    #[test]
    fn fail_back_between_the_flush_and_its_check_cancels_the_retry() {
        let cfg = config(&[]);
        let up = carrying(&[("wan1", true), ("wan2", true)], &[("p", "wan1")]);
        let down = carrying(&[("wan1", false), ("wan2", true)], &[("p", "wan2")]);
        let mut pending = PendingFlushes::default();
        for (name, reason) in flushes(&cfg, &up, &down) {
            pending.sent(&name, PIN, reason, 0);
        }
        pending.settle(&down);
        assert_eq!(pending.names(), ["wan1"]);
        // wan1 is back before the recheck: nothing is flushed again.
        assert!(flushes(&cfg, &down, &up).is_empty());
        pending.settle(&up);
        assert_eq!(pending.due(FLUSH_RECHECK_MS), []);
    }
}
