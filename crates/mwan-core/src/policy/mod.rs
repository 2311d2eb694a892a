//! Policy resolution: which members carry each policy's traffic.
//!
//! Per policy and per address family (mwan3 builds separate IPv4 and IPv6
//! chains, so an IPv6 member never competes with an IPv4 one):
//! - a manual override (per policy, else global) wins until cleared;
//! - `Tiers` mode (mwan3): the usable members with the lowest metric, with
//!   their weights;
//! - `Score` mode: the single best-scoring usable member, switching only when
//!   a challenger is better by more than `hysteresis`, has been usable for
//!   `min_stable_ms` (no fail-back to a link that just came back) and the
//!   current choice has held for `min_stable_ms` (bounds the swap rate);
//!   losing the current link switches at once;
//! - quality ceilings (`max_latency`, `max_jitter`, `max_loss`): only
//!   members that meet them are candidates ([`ceilings`]); when no usable
//!   member does, the one closest to them (or, if so configured, the last
//!   resort);
//! - no usable member: the policy's `last_resort`.
//!
//! Resolution is a pure function of its inputs and the [`PolicyMemory`] the
//! caller passes back in, so it is deterministic.

//!
//! Modules: score mode (score.rs), quality ceilings (ceilings.rs), the
//! words of `mwanctl explain` (explain.rs).

mod ceilings;
mod explain;
mod moves;
mod score;

use ceilings::CeilingTrack;
pub use ceilings::{Exceeded, QualityReading};
pub use explain::{ceiling_reasons, explain};
pub use moves::{follows_quality, moved};

use std::collections::BTreeMap;

use score::{resolve_score, Damping};

use crate::config::{
    CeilingFallback, Config, Family, Interface, LastResort, Policy, PolicyMode, QualityCeilings,
};
use crate::health::{Health, LinkState};
use crate::quality::QualitySnapshot;
use crate::Millis;

/// What the resolver needs to know about one WAN.
#[derive(Debug, Clone, PartialEq)]
pub struct WanView {
    pub interface: String,
    pub state: LinkState,
    /// When `state` began.
    pub since: Millis,
    pub usable: bool,
    /// Since when `usable` has held without interruption.
    pub usable_since: Option<Millis>,
    /// Quality score, lower is better; None = no data yet or dead.
    pub score: Option<f64>,
    /// Measured quality, for policies' ceilings (None: not measured).
    pub quality: Option<QualityReading>,
}

impl WanView {
    pub fn new(interface: &str, health: &Health, quality: Option<&QualitySnapshot>) -> Self {
        WanView {
            interface: interface.to_string(),
            state: health.state(),
            since: health.since(),
            usable: health.usable(),
            usable_since: health.usable_since(),
            score: quality.and_then(|q| q.score),
            quality: quality.map(QualityReading::from_snapshot),
        }
    }
}

/// Manual overrides from `mwanctl use`: they win until cleared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// One WAN for every policy.
    pub global: Option<String>,
    /// Policy name -> WAN; beats `global`.
    pub per_policy: BTreeMap<String, String>,
}

/// A member carrying a policy's traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveMember {
    pub interface: String,
    /// Member section name (empty for an override).
    pub member: String,
    pub weight: u32,
    pub metric: u32,
    pub family: Family,
}

/// Why a decision came out as it did, for `mwanctl explain`.
#[derive(Debug, Clone, PartialEq)]
pub enum Why {
    Override {
        interface: String,
        per_policy: bool,
        /// Set when the forced interface cannot carry traffic.
        unusable: Option<Unusable>,
    },
    /// The override names an interface the config does not have.
    OverrideIgnored { interface: String },
    /// A member that is not usable and would otherwise be in or above the
    /// chosen tier (or any member, in score mode or when nothing is active).
    NotUsable {
        interface: String,
        metric: u32,
        cause: Unusable,
    },
    /// Usable but without a quality score (score mode).
    NoScore { interface: String },
    /// Tiers mode: usable members with a higher metric than the chosen
    /// tier (`waiting`, as (interface, metric) in metric order) and unusable
    /// ones there (`unavailable`), behind the chosen tier's `active`.
    Standby {
        family: Family,
        active: Vec<String>,
        waiting: Vec<(String, u32)>,
        unavailable: Vec<(String, u32, Unusable)>,
    },
    Tier {
        family: Family,
        metric: u32,
        interfaces: Vec<String>,
    },
    ScoreBest {
        family: Family,
        interface: String,
        score: f64,
    },
    /// Score mode: the other usable scored members, best first (the
    /// challenger of a `ScoreHeld` is not repeated here).
    ScoreStandby {
        family: Family,
        waiting: Vec<(String, f64)>,
    },
    /// Score mode kept `current` although `challenger` scores better.
    ScoreHeld {
        family: Family,
        current: String,
        challenger: String,
        current_score: f64,
        challenger_score: f64,
        hold: Hold,
    },
    LastResort {
        family: Option<Family>,
        last_resort: LastResort,
    },
    /// A usable member left out because it does not meet a quality ceiling.
    CeilingExceeded {
        interface: String,
        exceeded: Exceeded,
    },
    /// No usable member meets the ceilings: the closest one carries it.
    CeilingFallback { family: Family, interface: String },
}

/// Why an interface cannot carry traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// Its health state (offline, connecting, ...) since `since`.
    State { state: LinkState, since: Millis },
    /// `enabled '0'` in the config.
    Disabled,
    /// Enabled but without a view: mwand does not track it (yet).
    NotTracked,
}

/// Which damping kept a score-mode choice.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Hold {
    Hysteresis {
        hysteresis: f64,
    },
    /// The challenger has not been usable long enough (fail-back damping).
    ChallengerNotStable {
        until: Millis,
    },
    /// The current choice is younger than the minimum stable time.
    Dwell {
        until: Millis,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDecision {
    pub policy: String,
    pub active: Vec<ActiveMember>,
    /// Some when `active` is empty.
    pub last_resort: Option<LastResort>,
    /// The policy's configured last_resort: a family with no member in
    /// `active` falls back to it (see [`PolicyDecision::last_resort_for`]).
    pub configured_last_resort: LastResort,
    pub why: Vec<Why>,
}

impl PolicyDecision {
    /// The last resort that applies to `family`, if no member of it is active.
    pub fn last_resort_for(&self, family: Family) -> Option<LastResort> {
        (!self.active.iter().any(|m| m.family == family)).then_some(self.configured_last_resort)
    }
}

/// Score-mode memory per policy and family, passed back in on every call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyMemory {
    choices: BTreeMap<String, [Option<Choice>; 2]>,
    /// Per (policy, interface): the verdict of each quality ceiling.
    ceilings: BTreeMap<(String, String), [CeilingTrack; 3]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Choice {
    interface: String,
    since: Millis,
}

fn family_slot(family: Family) -> usize {
    match family {
        Family::Ipv4 => 0,
        Family::Ipv6 => 1,
    }
}

const FAMILIES: [Family; 2] = [Family::Ipv4, Family::Ipv6];

/// A policy member joined with its interface and view.
struct Candidate<'a> {
    member: &'a str,
    enabled: bool,
    interface: &'a str,
    metric: u32,
    weight: u32,
    view: Option<&'a WanView>,
    /// Fails one of the policy's quality ceilings.
    excluded: bool,
}

impl Candidate<'_> {
    /// Healthy and within the policy's ceilings.
    fn usable(&self) -> bool {
        self.healthy() && !self.excluded
    }

    fn healthy(&self) -> bool {
        self.view.is_some_and(|v| v.usable)
    }

    /// Why it is not usable (None when it is).
    fn unusable(&self) -> Option<Unusable> {
        unusable_cause(self.enabled, self.view)
    }

    fn score(&self) -> Option<f64> {
        self.view.and_then(|v| v.score)
    }

    fn active(&self, family: Family) -> ActiveMember {
        ActiveMember {
            interface: self.interface.to_string(),
            member: self.member.to_string(),
            weight: self.weight,
            metric: self.metric,
            family,
        }
    }
}

fn unusable_cause(enabled: bool, view: Option<&WanView>) -> Option<Unusable> {
    match (enabled, view) {
        (_, Some(v)) if v.usable => None,
        (false, _) => Some(Unusable::Disabled),
        (true, Some(v)) => Some(Unusable::State {
            state: v.state,
            since: v.since,
        }),
        (true, None) => Some(Unusable::NotTracked),
    }
}

/// Resolve every policy of `config` (in config order).
pub fn resolve(
    config: &Config,
    wans: &[WanView],
    overrides: &Overrides,
    memory: &mut PolicyMemory,
    now: Millis,
) -> Vec<PolicyDecision> {
    config
        .policies
        .iter()
        .map(|policy| resolve_policy(config, policy, wans, overrides, memory, now))
        .collect()
}

/// One policy: its override, then per family (but an overridden one) its
/// tiers or best score, else its last resort.
fn resolve_policy(
    config: &Config,
    policy: &Policy,
    wans: &[WanView],
    overrides: &Overrides,
    memory: &mut PolicyMemory,
    now: Millis,
) -> PolicyDecision {
    let mut why = Vec::new();
    let mut active = Vec::new();
    let overridden_family = apply_override(config, policy, wans, overrides, &mut active, &mut why);
    let mut by_family = candidates_by_family(config, policy, wans);
    check_ceilings(policy, &mut by_family, memory, now, &mut why);
    let choices = memory.choices.entry(policy.name.clone()).or_default();
    for family in FAMILIES {
        let candidates = &by_family[family_slot(family)];
        if overridden_family == Some(family) {
            continue;
        }
        if candidates.is_empty() {
            choices[family_slot(family)] = None;
            continue;
        }
        let before = active.len();
        let none_qualifies = policy.ceilings.any() && !candidates.iter().any(|c| c.usable());
        match policy.mode {
            _ if none_qualifies => {
                not_usable(candidates, None, &mut why);
                if policy.ceilings.fallback == CeilingFallback::Best {
                    fall_back_to_closest(
                        family,
                        candidates,
                        &policy.ceilings,
                        &mut active,
                        &mut why,
                    );
                }
            }
            PolicyMode::Tiers => resolve_tiers(family, candidates, &mut active, &mut why),
            PolicyMode::Score {
                hysteresis,
                min_stable_ms,
            } => {
                not_usable(candidates, None, &mut why);
                let slot = &mut choices[family_slot(family)];
                let damping = Damping {
                    hysteresis,
                    min_stable_ms,
                    now,
                };
                resolve_score(family, candidates, damping, slot, &mut active, &mut why);
            }
        }
        if active.len() == before {
            why.push(Why::LastResort {
                family: Some(family),
                last_resort: policy.last_resort,
            });
        }
    }
    let last_resort = active.is_empty().then_some(policy.last_resort);
    if last_resort.is_some() && policy.use_member.is_empty() {
        why.push(Why::LastResort {
            family: None,
            last_resort: policy.last_resort,
        });
    }
    PolicyDecision {
        policy: policy.name.clone(),
        active,
        last_resort,
        configured_last_resort: policy.last_resort,
        why,
    }
}

/// A manual override (per policy, else global) makes its interface the
/// only active member of its family. Returns that family; an override
/// naming no configured interface is a reason and changes nothing.
fn apply_override(
    config: &Config,
    policy: &Policy,
    wans: &[WanView],
    overrides: &Overrides,
    active: &mut Vec<ActiveMember>,
    why: &mut Vec<Why>,
) -> Option<Family> {
    let (iface_name, per_policy) = overrides
        .per_policy
        .get(&policy.name)
        .map(|w| (w, true))
        .or(overrides.global.as_ref().map(|w| (w, false)))?;
    let Some(iface) = config.interfaces.iter().find(|i| &i.name == iface_name) else {
        why.push(Why::OverrideIgnored {
            interface: iface_name.clone(),
        });
        return None;
    };
    let view = wans.iter().find(|w| &w.interface == iface_name);
    why.push(Why::Override {
        interface: iface_name.clone(),
        per_policy,
        // Without a view usability is unknown: no warning.
        unusable: match unusable_cause(iface.enabled, view) {
            Some(Unusable::NotTracked) => None,
            other => other,
        },
    });
    active.push(ActiveMember {
        interface: iface_name.clone(),
        member: String::new(),
        weight: 1,
        metric: 0,
        family: iface.family,
    });
    Some(iface.family)
}

/// The policy's members joined with their interface and view, by family
/// (index [`family_slot`]), deduplicated by interface (first mention
/// wins). Members naming nothing are left out.
fn candidates_by_family<'a>(
    config: &'a Config,
    policy: &'a Policy,
    wans: &'a [WanView],
) -> [Vec<Candidate<'a>>; 2] {
    let mut by_family: [Vec<Candidate>; 2] = [Vec::new(), Vec::new()];
    for member_name in &policy.use_member {
        let Some(member) = config.members.iter().find(|m| &m.name == member_name) else {
            continue;
        };
        let Some(iface): Option<&Interface> = config
            .interfaces
            .iter()
            .find(|i| i.name == member.interface)
        else {
            continue;
        };
        let slot = &mut by_family[family_slot(iface.family)];
        if slot.iter().any(|c| c.interface == member.interface) {
            continue;
        }
        slot.push(Candidate {
            member: &member.name,
            enabled: iface.enabled,
            interface: &member.interface,
            metric: member.metric,
            weight: member.weight,
            view: wans.iter().find(|w| w.interface == member.interface),
            excluded: false,
        });
    }
    by_family
}

/// The policy's quality ceilings, per candidate (debounced in `memory`):
/// a candidate failing one is excluded, and a healthy one says why.
fn check_ceilings(
    policy: &Policy,
    by_family: &mut [Vec<Candidate>; 2],
    memory: &mut PolicyMemory,
    now: Millis,
    why: &mut Vec<Why>,
) {
    if !policy.ceilings.any() {
        return;
    }
    for c in by_family.iter_mut().flatten() {
        let key = (policy.name.clone(), c.interface.to_string());
        let tracks = memory.ceilings.entry(key).or_default();
        let reading = c.view.and_then(|v| v.quality.as_ref());
        let failed = ceilings::check(tracks, &policy.ceilings, reading, now);
        c.excluded = !failed.is_empty();
        if c.healthy() {
            why.extend(failed.into_iter().map(|exceeded| Why::CeilingExceeded {
                interface: c.interface.to_string(),
                exceeded,
            }));
        }
    }
}

/// No usable member meets the ceilings: the healthy one closest to them
/// (ties: lower metric, then config order) carries the policy alone.
fn fall_back_to_closest(
    family: Family,
    candidates: &[Candidate],
    ceilings: &QualityCeilings,
    active: &mut Vec<ActiveMember>,
    why: &mut Vec<Why>,
) {
    let closest = candidates
        .iter()
        .filter(|c| c.healthy())
        .map(|c| {
            (
                c,
                ceilings::excess(ceilings, c.view.and_then(|v| v.quality.as_ref())),
            )
        })
        .fold(None::<(&Candidate, f64)>, |best, (c, e)| match best {
            Some((b, be)) if be < e || (be == e && b.metric <= c.metric) => best,
            _ => Some((c, e)),
        });
    if let Some((c, _)) = closest {
        why.push(Why::CeilingFallback {
            family,
            interface: c.interface.to_string(),
        });
        active.push(c.active(family));
    }
}

fn resolve_tiers(
    family: Family,
    candidates: &[Candidate],
    active: &mut Vec<ActiveMember>,
    why: &mut Vec<Why>,
) {
    let chosen = candidates
        .iter()
        .filter(|c| c.usable())
        .map(|c| c.metric)
        .min();
    not_usable(candidates, chosen, why);
    let Some(metric) = chosen else {
        return;
    };
    let tier: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.usable() && c.metric == metric)
        .collect();
    let interfaces: Vec<String> = tier.iter().map(|c| c.interface.to_string()).collect();
    let mut behind: Vec<&Candidate> = candidates.iter().filter(|c| c.metric > metric).collect();
    // Stable: equal metrics keep config order.
    crate::sort::sort_by_key(&mut behind, |c| c.metric);
    if !behind.is_empty() {
        why.push(Why::Standby {
            family,
            active: interfaces.clone(),
            waiting: behind
                .iter()
                .filter(|c| c.usable())
                .map(|c| (c.interface.to_string(), c.metric))
                .collect(),
            unavailable: behind
                .iter()
                .filter_map(|c| c.unusable().map(|u| (c.interface.to_string(), c.metric, u)))
                .collect(),
        });
    }
    why.push(Why::Tier {
        family,
        metric,
        interfaces,
    });
    active.extend(tier.iter().map(|c| c.active(family)));
}

/// Reasons for the unusable members that would otherwise compete with the
/// chosen tier (`chosen` metric; None: all of them).
fn not_usable(candidates: &[Candidate], chosen: Option<u32>, why: &mut Vec<Why>) {
    for c in candidates {
        if chosen.is_some_and(|m| c.metric > m) {
            continue;
        }
        if let Some(cause) = c.unusable() {
            why.push(Why::NotUsable {
                interface: c.interface.to_string(),
                metric: c.metric,
                cause,
            });
        }
    }
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
