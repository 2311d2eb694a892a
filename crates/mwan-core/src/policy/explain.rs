//! [`explain`]: a decision in words, for `mwanctl explain`.

use super::{ceilings, Hold, PolicyDecision, Unusable, Why};
use crate::config::{Family, LastResort};
use crate::Millis;

pub(super) fn family_name(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "IPv4",
        Family::Ipv6 => "IPv6",
    }
}

pub(super) fn last_resort_name(lr: LastResort) -> &'static str {
    match lr {
        LastResort::Unreachable => "unreachable",
        LastResort::Blackhole => "blackhole",
        LastResort::Default => "default (main table)",
    }
}

/// "for 12.3 s" style age.
pub(super) fn age(since: Millis, now: Millis) -> String {
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
pub(super) fn unusable_text(cause: &Unusable, now: Millis) -> String {
    match cause {
        Unusable::State { state, since } => format!("is {state} (for {})", age(*since, now)),
        Unusable::Disabled => "is disabled".into(),
        Unusable::NotTracked => "is not tracked".into(),
    }
}

/// "a", "a and b", "a, b and c".
pub(super) fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The standby clause of a tier: who waits behind it, and who could not.
pub(super) fn standby_text(
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
    let mut clauses = Clauses::default();
    for why in &decision.why {
        clauses.add(why, decision, now);
    }
    clauses.sentence(&decision.policy)
}

/// The parts of the sentence, gathered from the reasons in order.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Clauses {
    /// Before "so": what shaped the outcome.
    pub(super) reasons: Vec<String>,
    /// After "uses": what carries the traffic.
    pub(super) uses: Vec<String>,
    /// After the uses: who waits.
    pub(super) standby: Vec<String>,
    /// An override onto an unusable interface replaces "uses ...".
    pub(super) forced: Option<String>,
}

impl Clauses {
    pub(super) fn add(&mut self, why: &Why, decision: &PolicyDecision, now: Millis) {
        match why {
            Why::Override {
                interface,
                per_policy,
                unusable,
            } => match unusable {
                Some(cause) => {
                    self.forced = Some(forced_text(interface, *per_policy, cause, now));
                }
                None => self.uses.push(format!(
                    "{interface} because of a manual override ({})",
                    override_scope(*per_policy)
                )),
            },
            Why::OverrideIgnored { interface } => self.reasons.push(format!(
                "the override names {interface}, which is not a configured interface"
            )),
            Why::NotUsable {
                interface, cause, ..
            } => self
                .reasons
                .push(format!("{interface} {}", unusable_text(cause, now))),
            Why::NoScore { interface } => self
                .reasons
                .push(format!("{interface} has no quality score yet")),
            Why::Standby {
                active,
                waiting,
                unavailable,
                ..
            } => self
                .standby
                .push(standby_text(active, waiting, unavailable, now)),
            Why::Tier {
                family,
                metric,
                interfaces,
            } => self
                .uses
                .push(tier_text(decision, *family, *metric, interfaces)),
            Why::ScoreStandby { waiting, .. } => self.standby.push(score_standby_text(waiting)),
            Why::ScoreBest {
                family,
                interface,
                score,
            } => self.uses.push(format!(
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
            } => self.reasons.push(format!(
                "{challenger} scores {challenger_score:.1} against {current}'s {current_score:.1}, {}",
                hold_text(hold, current, challenger, now)
            )),
            Why::CeilingExceeded {
                interface,
                exceeded,
            } => self.reasons.push(ceilings::exceeded_text(
                interface,
                &decision.policy,
                exceeded,
                now,
                age,
            )),
            Why::CeilingFallback { family, interface } => {
                self.reasons.push(format!(
                    "no usable member meets its quality ceilings for {}",
                    family_name(*family)
                ));
                self.uses.push(format!(
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
                self.uses.push(format!(
                    "its last resort{scope}: {}",
                    last_resort_name(*last_resort)
                ));
            }
        }
    }

    /// "REASONS, so policy P uses USES; STANDBY".
    pub(super) fn sentence(self, policy: &str) -> String {
        let mut text = String::new();
        if !self.reasons.is_empty() {
            text.push_str(&self.reasons.join("; "));
            text.push_str(", so ");
        }
        text.push_str(&format!("policy {policy} "));
        match self.forced {
            Some(forced) => {
                text.push_str(&forced);
                if !self.uses.is_empty() {
                    text.push_str("; for the other family it uses ");
                    text.push_str(&self.uses.join(", and "));
                }
            }
            None if self.uses.is_empty() => text.push_str("uses nothing"),
            None => {
                text.push_str("uses ");
                text.push_str(&self.uses.join(", and "));
            }
        }
        for clause in self.standby {
            text.push_str("; ");
            text.push_str(&clause);
        }
        text
    }
}

fn override_scope(per_policy: bool) -> &'static str {
    if per_policy {
        "for this policy"
    } else {
        "for all policies"
    }
}

/// An override onto an interface that cannot carry traffic.
pub(super) fn forced_text(
    interface: &str,
    per_policy: bool,
    cause: &Unusable,
    now: Millis,
) -> String {
    format!(
        "is forced onto {interface} by a manual override ({}) although {interface} {}: traffic through this policy is likely lost",
        override_scope(per_policy),
        unusable_text(cause, now)
    )
}

/// "wan1 (weight 3) and wan2 (weight 1) for IPv4 (metric 1)".
pub(super) fn tier_text(
    decision: &PolicyDecision,
    family: Family,
    metric: u32,
    interfaces: &[String],
) -> String {
    let members: Vec<String> = decision
        .active
        .iter()
        .filter(|m| m.family == family && interfaces.contains(&m.interface))
        .map(|m| format!("{} (weight {})", m.interface, m.weight))
        .collect();
    format!(
        "{} for {} (metric {metric})",
        members.join(" and "),
        family_name(family)
    )
}

/// "wan2 (score 80.0) stands by".
pub(super) fn score_standby_text(waiting: &[(String, f64)]) -> String {
    let names: Vec<String> = waiting
        .iter()
        .map(|(n, s)| format!("{n} (score {s:.1})"))
        .collect();
    format!(
        "{} {} by",
        and_list(&names),
        if names.len() == 1 { "stands" } else { "stand" }
    )
}

/// Why a better-scoring challenger did not take over.
pub(super) fn hold_text(hold: &Hold, current: &str, challenger: &str, now: Millis) -> String {
    match hold {
        Hold::Hysteresis { hysteresis } => {
            format!("not better by more than the hysteresis {hysteresis:.1}")
        }
        Hold::ChallengerNotStable { until } => format!(
            "{challenger} must stay usable {} more before fail-back",
            age(now, *until)
        ),
        Hold::Dwell { until } => format!(
            "{current} was chosen recently; next switch allowed in {}",
            age(now, *until)
        ),
    }
}

#[cfg(test)]
#[path = "explain_tests.rs"]
mod tests;
