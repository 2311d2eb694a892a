//! Policy decisions and manual overrides: a thin holder around
//! `mwan_core::policy::resolve` (which decides) and its memory.

use crate::wan::Wan;
use mwan_core::config::{Config, LastResort};
use mwan_core::policy::{self, Overrides, PolicyDecision, PolicyMemory, WanView};
use mwan_core::Millis;
use mwan_proto::control::{ActiveMemberStatus, PolicyExplanation, PolicyStatus};
use std::collections::BTreeMap;

#[derive(Default)]
pub struct Engine {
    decisions: Vec<PolicyDecision>,
    /// Per decision: the quality ceilings that shaped it, in words.
    ceilings: Vec<Vec<String>>,
    overrides: Overrides,
    memory: PolicyMemory,
    /// A change not yet taken by [`Engine::take_changed`].
    changed: bool,
}

pub fn last_resort_name(l: LastResort) -> &'static str {
    match l {
        LastResort::Unreachable => "unreachable",
        LastResort::Blackhole => "blackhole",
        LastResort::Default => "default",
    }
}

pub fn views(wans: &BTreeMap<String, Wan>) -> Vec<WanView> {
    wans.values().map(Wan::view).collect()
}

impl Engine {
    pub fn decisions(&self) -> &[PolicyDecision] {
        &self.decisions
    }

    /// Recomputes every policy from the WANs' views ([`views`]); returns
    /// the policies that moved (their carriers, weights or last resort
    /// changed: `policy::moved`).
    pub fn resolve(&mut self, config: &Config, wans: &[WanView], now: Millis) -> Vec<String> {
        let next = policy::resolve(config, wans, &self.overrides, &mut self.memory, now);
        let moved = policy::moved(&self.decisions, &next);
        self.ceilings = next
            .iter()
            .map(|d| policy::ceiling_reasons(d, now))
            .collect();
        self.decisions = next;
        self.changed |= !moved.is_empty();
        moved
    }

    /// Whether any policy's active set changed since the last call.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    pub fn summary_lines(&self) -> Vec<String> {
        self.policy_status()
            .iter()
            .map(|p| {
                let what = if p.active.is_empty() {
                    format!("last resort {}", p.last_resort.as_deref().unwrap_or("?"))
                } else {
                    p.active
                        .iter()
                        .map(|m| format!("{} {:.0}%", m.interface, m.share_pct))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                if p.ceilings.is_empty() {
                    format!("{}: {what}", p.name)
                } else {
                    format!("{}: {what} ({})", p.name, p.ceilings.join("; "))
                }
            })
            .collect()
    }

    pub fn policy_status(&self) -> Vec<PolicyStatus> {
        self.decisions
            .iter()
            .zip(self.ceilings.iter().chain(std::iter::repeat(&Vec::new())))
            .map(|(d, ceilings)| {
                let total: u32 = d.active.iter().map(|m| m.weight).sum();
                PolicyStatus {
                    name: d.policy.clone(),
                    active: d
                        .active
                        .iter()
                        .map(|m| ActiveMemberStatus {
                            interface: m.interface.clone(),
                            weight: m.weight,
                            share_pct: if total == 0 {
                                0.0
                            } else {
                                f64::from(m.weight) * 100.0 / f64::from(total)
                            },
                        })
                        .collect(),
                    last_resort: d.last_resort.map(|l| last_resort_name(l).to_string()),
                    ceilings: ceilings.clone(),
                }
            })
            .collect()
    }

    pub fn set_override(
        &mut self,
        config: &Config,
        interface: String,
        policy: Option<String>,
    ) -> Result<String, String> {
        match policy {
            None => {
                let msg =
                    format!("every policy now uses {interface} until `mwanctl override --clear`");
                self.overrides.global = Some(interface);
                Ok(msg)
            }
            Some(p) => {
                if !config.policies.iter().any(|x| x.name == p) {
                    return Err(format!(
                        "unknown policy '{p}'; expected one of: {}",
                        config
                            .policies
                            .iter()
                            .map(|x| x.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                let msg = format!(
                    "policy {p} now uses {interface} until `mwanctl override --clear --policy {p}`"
                );
                self.overrides.per_policy.insert(p, interface);
                Ok(msg)
            }
        }
    }

    pub fn clear_override(&mut self, policy: Option<String>) -> String {
        match policy {
            None => {
                self.overrides = Overrides::default();
                "all overrides cleared".into()
            }
            Some(p) => {
                self.overrides.per_policy.remove(&p);
                format!("override of policy {p} cleared")
            }
        }
    }

    /// (interface, policy) of the override shown in status: the global one,
    /// else the first per-policy one.
    pub fn override_status(&self) -> Option<(String, Option<String>)> {
        if let Some(i) = &self.overrides.global {
            return Some((i.clone(), None));
        }
        self.overrides
            .per_policy
            .iter()
            .next()
            .map(|(p, i)| (i.clone(), Some(p.clone())))
    }

    /// Every override in force: (interface, policy), the global one first
    /// (policy None), then the per-policy ones by policy name.
    pub fn all_overrides(&self) -> Vec<(String, Option<String>)> {
        let global = self.overrides.global.iter().map(|i| (i.clone(), None));
        let per_policy = self
            .overrides
            .per_policy
            .iter()
            .map(|(p, i)| (i.clone(), Some(p.clone())));
        global.chain(per_policy).collect()
    }

    /// Drops overrides naming what a reload removed.
    pub fn retain_valid(&mut self, config: &Config) {
        let iface_ok = |i: &String| config.interfaces.iter().any(|x| &x.name == i && x.enabled);
        if self.overrides.global.as_ref().is_some_and(|i| !iface_ok(i)) {
            self.overrides.global = None;
        }
        self.overrides
            .per_policy
            .retain(|p, i| iface_ok(i) && config.policies.iter().any(|x| &x.name == p));
    }

    pub fn explain(
        &self,
        policy: Option<&str>,
        now: Millis,
    ) -> Result<Vec<PolicyExplanation>, String> {
        if let Some(p) = policy {
            if !self.decisions.iter().any(|d| d.policy == p) {
                return Err(format!(
                    "unknown policy '{p}'; expected one of: {}",
                    self.decisions
                        .iter()
                        .map(|d| d.policy.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        Ok(self
            .decisions
            .iter()
            .filter(|d| policy.is_none_or(|n| n == d.policy))
            .map(|d| PolicyExplanation {
                policy: d.policy.clone(),
                lines: policy::explain(d, now)
                    .lines()
                    .map(str::to_string)
                    .collect(),
            })
            .collect())
    }
}
