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

use std::collections::BTreeMap;

mod ceilings;

use ceilings::CeilingTrack;
pub use ceilings::{Exceeded, QualityReading};

use crate::config::{CeilingFallback, Config, Family, LastResort, PolicyMode};
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
    let mut decisions = Vec::with_capacity(config.policies.len());
    for policy in &config.policies {
        let mut why = Vec::new();
        let mut active = Vec::new();
        let override_iface = overrides
            .per_policy
            .get(&policy.name)
            .map(|w| (w, true))
            .or(overrides.global.as_ref().map(|w| (w, false)));
        let mut overridden_family = None;
        if let Some((iface_name, per_policy)) = override_iface {
            match config.interfaces.iter().find(|i| &i.name == iface_name) {
                Some(iface) => {
                    overridden_family = Some(iface.family);
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
                }
                None => why.push(Why::OverrideIgnored {
                    interface: iface_name.clone(),
                }),
            }
        }
        // Members by family, deduplicated by interface (first mention wins).
        let mut by_family: [Vec<Candidate>; 2] = [Vec::new(), Vec::new()];
        for member_name in &policy.use_member {
            let Some(member) = config.members.iter().find(|m| &m.name == member_name) else {
                continue;
            };
            let Some(iface) = config
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
        if policy.ceilings.any() {
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
        decisions.push(PolicyDecision {
            policy: policy.name.clone(),
            active,
            last_resort,
            configured_last_resort: policy.last_resort,
            why,
        });
    }
    decisions
}

/// No usable member meets the ceilings: the healthy one closest to them
/// (ties: lower metric, then config order) carries the policy alone.
fn fall_back_to_closest(
    family: Family,
    candidates: &[Candidate],
    ceilings: &crate::config::QualityCeilings,
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
    behind.sort_by_key(|c| c.metric);
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

#[derive(Debug, Clone, Copy)]
struct Damping {
    hysteresis: f64,
    min_stable_ms: Millis,
    now: Millis,
}

fn resolve_score(
    family: Family,
    candidates: &[Candidate],
    damping: Damping,
    slot: &mut Option<Choice>,
    active: &mut Vec<ActiveMember>,
    why: &mut Vec<Why>,
) {
    let Damping {
        hysteresis,
        min_stable_ms,
        now,
    } = damping;
    for c in candidates
        .iter()
        .filter(|c| c.usable() && c.score().is_none())
    {
        why.push(Why::NoScore {
            interface: c.interface.to_string(),
        });
    }
    // (index into candidates, score) of usable members with a score.
    let scored: Vec<(usize, f64)> = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.usable())
        .filter_map(|(i, c)| c.score().map(|s| (i, s)))
        .collect();
    // When a member will have been usable for min_stable (None: unknown).
    let stable_at = |i: usize| {
        candidates[i]
            .view
            .and_then(|v| v.usable_since)
            .map(|t| t + min_stable_ms)
    };
    let is_stable = |i: usize| stable_at(i).is_some_and(|t| t <= now);
    // Lowest score; ties go to the lower metric, then to config order.
    let best_of = |pool: &mut dyn Iterator<Item = (usize, f64)>| {
        pool.fold(None::<(usize, f64)>, |best, (i, s)| match best {
            Some((bi, bs))
                if bs < s || (bs == s && candidates[bi].metric <= candidates[i].metric) =>
            {
                best
            }
            _ => Some((i, s)),
        })
    };
    let current = slot.as_ref().and_then(|choice| {
        scored
            .iter()
            .find(|(i, _)| candidates[*i].interface == choice.interface)
            .map(|&(i, s)| (i, s, choice.since))
    });
    let chosen: Option<(usize, f64)> = match current {
        None => {
            // First choice, or the current link was lost: prefer links that
            // have been usable for min_stable, else take any usable one.
            let stable = best_of(&mut scored.iter().copied().filter(|&(i, _)| is_stable(i)));
            let pick = stable.or_else(|| best_of(&mut scored.iter().copied()));
            *slot = pick.map(|(i, _)| Choice {
                interface: candidates[i].interface.to_string(),
                since: now,
            });
            pick
        }
        Some((cur, cur_score, since)) => match best_of(&mut scored.iter().copied()) {
            Some((bi, bs)) if bi != cur && bs < cur_score => {
                let hold = if bs + hysteresis >= cur_score {
                    Some(Hold::Hysteresis { hysteresis })
                } else if !is_stable(bi) {
                    let until = stable_at(bi).unwrap_or(now + min_stable_ms);
                    Some(Hold::ChallengerNotStable { until })
                } else if since + min_stable_ms > now {
                    Some(Hold::Dwell {
                        until: since + min_stable_ms,
                    })
                } else {
                    None
                };
                match hold {
                    Some(hold) => {
                        why.push(Why::ScoreHeld {
                            family,
                            current: candidates[cur].interface.to_string(),
                            challenger: candidates[bi].interface.to_string(),
                            current_score: cur_score,
                            challenger_score: bs,
                            hold,
                        });
                        Some((cur, cur_score))
                    }
                    None => {
                        *slot = Some(Choice {
                            interface: candidates[bi].interface.to_string(),
                            since: now,
                        });
                        Some((bi, bs))
                    }
                }
            }
            _ => Some((cur, cur_score)),
        },
    };
    if let Some((i, s)) = chosen {
        why.push(Why::ScoreBest {
            family,
            interface: candidates[i].interface.to_string(),
            score: s,
        });
        active.push(candidates[i].active(family));
        let held: Vec<&str> = why
            .iter()
            .filter_map(|w| match w {
                Why::ScoreHeld {
                    family: f,
                    challenger,
                    ..
                } if *f == family => Some(challenger.as_str()),
                _ => None,
            })
            .collect();
        let mut waiting: Vec<(String, f64)> = scored
            .iter()
            .filter(|&&(j, _)| j != i && !held.contains(&candidates[j].interface))
            .map(|&(j, s)| (candidates[j].interface.to_string(), s))
            .collect();
        waiting.sort_by(|a, b| a.1.total_cmp(&b.1));
        if !waiting.is_empty() {
            why.push(Why::ScoreStandby { family, waiting });
        }
    }
}

fn family_name(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "IPv4",
        Family::Ipv6 => "IPv6",
    }
}

fn last_resort_name(lr: LastResort) -> &'static str {
    match lr {
        LastResort::Unreachable => "unreachable",
        LastResort::Blackhole => "blackhole",
        LastResort::Default => "default (main table)",
    }
}

/// "for 12.3 s" style age.
fn age(since: Millis, now: Millis) -> String {
    let ms = now.saturating_sub(since);
    if ms < 10_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 120_000 {
        format!("{} s", ms / 1000)
    } else if ms < 7_200_000 {
        format!("{} min", ms / 60_000)
    } else {
        format!("{} h", ms / 3_600_000)
    }
}

/// "is offline (for 12 s)", "is disabled", "is not tracked".
fn unusable_text(cause: &Unusable, now: Millis) -> String {
    match cause {
        Unusable::State { state, since } => format!("is {state} (for {})", age(*since, now)),
        Unusable::Disabled => "is disabled".into(),
        Unusable::NotTracked => "is not tracked".into(),
    }
}

/// "a", "a and b", "a, b and c".
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The standby clause of a tier: who waits behind it, and who could not.
fn standby_text(
    active: &[String],
    waiting: &[(String, u32)],
    unavailable: &[(String, u32, Unusable)],
    now: Millis,
) -> String {
    let mut parts = Vec::new();
    if !waiting.is_empty() {
        let names: Vec<String> = waiting.iter().map(|(n, _)| n.clone()).collect();
        let mut metrics: Vec<String> = Vec::new();
        for (_, m) in waiting {
            if !metrics.contains(&m.to_string()) {
                metrics.push(m.to_string());
            }
        }
        let (verb, at) = if names.len() == 1 {
            ("waits", format!("metric {}", metrics[0]))
        } else if metrics.len() == 1 {
            ("wait", format!("metric {}", metrics[0]))
        } else {
            ("wait", format!("metrics {}", and_list(&metrics)))
        };
        let order = if metrics.len() > 1 {
            " in that order"
        } else {
            ""
        };
        parts.push(format!(
            "{} {verb} at {at} and would take over{order} if {} went down",
            and_list(&names),
            and_list(active)
        ));
    }
    for (name, metric, cause) in unavailable {
        parts.push(format!(
            "{name} (metric {metric}) could not take over: it {}",
            unusable_text(cause, now)
        ));
    }
    parts.join("; ")
}

/// The quality ceilings that shaped a decision, one sentence each ("wan1
/// jitter 48 ms > voice's 30 ms for 5.0 s"), for status and events.
pub fn ceiling_reasons(decision: &PolicyDecision, now: Millis) -> Vec<String> {
    decision
        .why
        .iter()
        .filter_map(|why| match why {
            Why::CeilingExceeded {
                interface,
                exceeded,
            } => Some(ceilings::exceeded_text(
                interface,
                &decision.policy,
                exceeded,
                now,
                age,
            )),
            Why::CeilingFallback { family, interface } => Some(format!(
                "no usable member meets {}'s quality ceilings for {}: the best available, {interface}, carries it",
                decision.policy,
                family_name(*family)
            )),
            _ => None,
        })
        .collect()
}

/// Explain a decision in words, e.g. "wan1 is offline (for 12.3 s), so
/// policy balanced uses wan2 (weight 1) for IPv4 (metric 2)". Only reasons
/// that shaped the outcome are given; members waiting behind the chosen tier
/// are named after it.
pub fn explain(decision: &PolicyDecision, now: Millis) -> String {
    let mut reasons = Vec::new();
    let mut uses = Vec::new();
    let mut standby = Vec::new();
    let mut forced = None;
    for why in &decision.why {
        match why {
            Why::Override {
                interface,
                per_policy,
                unusable,
            } => {
                let scope = if *per_policy {
                    "for this policy"
                } else {
                    "for all policies"
                };
                match unusable {
                    Some(cause) => forced = Some(format!(
                        "is forced onto {interface} by a manual override ({scope}) although {interface} {}: traffic through this policy is likely lost",
                        unusable_text(cause, now)
                    )),
                    None => uses.push(format!(
                        "{interface} because of a manual override ({scope})"
                    )),
                }
            }
            Why::OverrideIgnored { interface } => reasons.push(format!(
                "the override names {interface}, which is not a configured interface"
            )),
            Why::NotUsable {
                interface, cause, ..
            } => reasons.push(format!("{interface} {}", unusable_text(cause, now))),
            Why::NoScore { interface } => {
                reasons.push(format!("{interface} has no quality score yet"))
            }
            Why::Standby {
                active,
                waiting,
                unavailable,
                ..
            } => standby.push(standby_text(active, waiting, unavailable, now)),
            Why::Tier {
                family,
                metric,
                interfaces,
            } => {
                let members: Vec<String> = decision
                    .active
                    .iter()
                    .filter(|m| m.family == *family && interfaces.contains(&m.interface))
                    .map(|m| format!("{} (weight {})", m.interface, m.weight))
                    .collect();
                uses.push(format!(
                    "{} for {} (metric {metric})",
                    members.join(" and "),
                    family_name(*family)
                ));
            }
            Why::ScoreStandby { waiting, .. } => {
                let names: Vec<String> = waiting
                    .iter()
                    .map(|(n, s)| format!("{n} (score {s:.1})"))
                    .collect();
                standby.push(format!(
                    "{} {} by",
                    and_list(&names),
                    if names.len() == 1 { "stands" } else { "stand" }
                ));
            }
            Why::ScoreBest {
                family,
                interface,
                score,
            } => uses.push(format!(
                "{interface} for {} (score {score:.1}, lower is better)",
                family_name(*family)
            )),
            Why::ScoreHeld {
                current,
                challenger,
                current_score,
                challenger_score,
                hold,
                ..
            } => {
                let because = match hold {
                    Hold::Hysteresis { hysteresis } => {
                        format!("not better by more than the hysteresis {hysteresis:.1}")
                    }
                    Hold::ChallengerNotStable { until } => {
                        format!(
                            "{challenger} must stay usable {} more before fail-back",
                            age(now, *until)
                        )
                    }
                    Hold::Dwell { until } => {
                        format!(
                            "{current} was chosen recently; next switch allowed in {}",
                            age(now, *until)
                        )
                    }
                };
                reasons.push(format!(
                    "{challenger} scores {challenger_score:.1} against {current}'s {current_score:.1}, {because}"
                ));
            }
            Why::CeilingExceeded {
                interface,
                exceeded,
            } => reasons.push(ceilings::exceeded_text(
                interface,
                &decision.policy,
                exceeded,
                now,
                age,
            )),
            Why::CeilingFallback { family, interface } => {
                reasons.push(format!(
                    "no usable member meets its quality ceilings for {}",
                    family_name(*family)
                ));
                uses.push(format!(
                    "the best available, {interface}, for {}",
                    family_name(*family)
                ));
            }
            Why::LastResort {
                family,
                last_resort,
            } => {
                let scope = family
                    .map(|f| format!(" for {}", family_name(f)))
                    .unwrap_or_default();
                uses.push(format!(
                    "its last resort{scope}: {}",
                    last_resort_name(*last_resort)
                ));
            }
        }
    }
    let mut text = String::new();
    if !reasons.is_empty() {
        text.push_str(&reasons.join("; "));
        text.push_str(", so ");
    }
    text.push_str(&format!("policy {} ", decision.policy));
    match forced {
        Some(forced) => {
            text.push_str(&forced);
            if !uses.is_empty() {
                text.push_str("; for the other family it uses ");
                text.push_str(&uses.join(", and "));
            }
        }
        None if uses.is_empty() => text.push_str("uses nothing"),
        None => {
            text.push_str("uses ");
            text.push_str(&uses.join(", and "));
        }
    }
    for clause in standby {
        text.push_str("; ");
        text.push_str(&clause);
    }
    text
}
