//! Policy decisions and overrides, via mwan-core's resolver. INTERIM: until
//! `mwan_core::policy::resolve` lands this resolves mwan3's tiers itself.

use crate::wan::{state_name, Wan};
use mwan_core::config::{Config, LastResort};
use mwan_core::Millis;
use mwan_proto::control::{ActiveMemberStatus, PolicyExplanation, PolicyStatus};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub policy: String,
    pub active: Vec<(String, u32)>,
    pub last_resort: Option<LastResort>,
}

#[derive(Default)]
pub struct Engine {
    decisions: Vec<Decision>,
    /// Override for every policy.
    global_override: Option<String>,
    /// Per-policy overrides.
    overrides: BTreeMap<String, String>,
}

pub fn last_resort_name(l: LastResort) -> &'static str {
    match l {
        LastResort::Unreachable => "unreachable",
        LastResort::Blackhole => "blackhole",
        LastResort::Default => "default",
    }
}

impl Engine {
    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }

    /// Recomputes every policy; true if any decision changed.
    pub fn resolve(&mut self, config: &Config, wans: &BTreeMap<String, Wan>, _now: Millis) -> bool {
        let mut out = Vec::new();
        for p in &config.policies {
            let forced = self
                .overrides
                .get(&p.name)
                .or(self.global_override.as_ref());
            let members: Vec<_> = p
                .use_member
                .iter()
                .filter_map(|m| config.members.iter().find(|x| &x.name == m))
                .filter(|m| wans.get(&m.interface).is_some_and(|w| w.usable()))
                .collect();
            let active: Vec<(String, u32)> = if let Some(f) = forced {
                vec![(f.clone(), 1)]
            } else if let Some(best) = members.iter().map(|m| m.metric).min() {
                members
                    .iter()
                    .filter(|m| m.metric == best)
                    .map(|m| (m.interface.clone(), m.weight))
                    .collect()
            } else {
                Vec::new()
            };
            let last_resort = active.is_empty().then_some(p.last_resort);
            out.push(Decision {
                policy: p.name.clone(),
                active,
                last_resort,
            });
        }
        let changed = out != self.decisions;
        self.decisions = out;
        changed
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
                format!("{}: {what}", p.name)
            })
            .collect()
    }

    pub fn policy_status(&self) -> Vec<PolicyStatus> {
        self.decisions
            .iter()
            .map(|d| {
                let total: u32 = d.active.iter().map(|(_, w)| *w).sum();
                PolicyStatus {
                    name: d.policy.clone(),
                    active: d
                        .active
                        .iter()
                        .map(|(i, w)| ActiveMemberStatus {
                            interface: i.clone(),
                            weight: *w,
                            share_pct: if total == 0 {
                                0.0
                            } else {
                                f64::from(*w) * 100.0 / f64::from(total)
                            },
                        })
                        .collect(),
                    last_resort: d.last_resort.map(|l| last_resort_name(l).to_string()),
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
                self.global_override = Some(interface);
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
                self.overrides.insert(p, interface);
                Ok(msg)
            }
        }
    }

    pub fn clear_override(&mut self, policy: Option<String>) -> String {
        match policy {
            None => {
                self.global_override = None;
                self.overrides.clear();
                "all overrides cleared".into()
            }
            Some(p) => {
                self.overrides.remove(&p);
                format!("override of policy {p} cleared")
            }
        }
    }

    /// (interface, policy) of the override shown in status: the global one,
    /// else the first per-policy one.
    pub fn override_status(&self) -> Option<(String, Option<String>)> {
        if let Some(i) = &self.global_override {
            return Some((i.clone(), None));
        }
        self.overrides
            .iter()
            .next()
            .map(|(p, i)| (i.clone(), Some(p.clone())))
    }

    /// Drops overrides naming what a reload removed.
    pub fn retain_valid(&mut self, config: &Config) {
        let iface_ok = |i: &String| config.interfaces.iter().any(|x| &x.name == i && x.enabled);
        if self.global_override.as_ref().is_some_and(|i| !iface_ok(i)) {
            self.global_override = None;
        }
        self.overrides
            .retain(|p, i| iface_ok(i) && config.policies.iter().any(|x| &x.name == p));
    }

    pub fn explain(
        &self,
        config: &Config,
        wans: &BTreeMap<String, Wan>,
        policy: Option<&str>,
        _now: Millis,
    ) -> Result<Vec<PolicyExplanation>, String> {
        if let Some(p) = policy {
            if !config.policies.iter().any(|x| x.name == p) {
                return Err(format!("unknown policy '{p}'"));
            }
        }
        let mut out = Vec::new();
        for p in config
            .policies
            .iter()
            .filter(|p| policy.is_none_or(|n| n == p.name))
        {
            let mut lines = Vec::new();
            if let Some(i) = self
                .overrides
                .get(&p.name)
                .or(self.global_override.as_ref())
            {
                lines.push(format!(
                    "overridden by hand: everything goes to {i} (mwanctl override --clear to undo)"
                ));
            }
            for m in p
                .use_member
                .iter()
                .filter_map(|m| config.members.iter().find(|x| &x.name == m))
            {
                let why = match wans.get(&m.interface) {
                    None => "disabled in the config".to_string(),
                    Some(w) if w.usable() => format!("usable ({})", state_name(w.state())),
                    Some(w) => format!("not usable ({})", state_name(w.state())),
                };
                lines.push(format!(
                    "member {} -> {} metric {} weight {}: {why}",
                    m.name, m.interface, m.metric, m.weight
                ));
            }
            if let Some(d) = self.decisions.iter().find(|d| d.policy == p.name) {
                if d.active.is_empty() {
                    lines.push(format!(
                        "no member is usable, so traffic gets the last resort: {}",
                        last_resort_name(p.last_resort)
                    ));
                } else {
                    lines.push(format!(
                        "uses {}: the lowest metric among usable members, shared by weight",
                        d.active
                            .iter()
                            .map(|(i, w)| format!("{i} (weight {w})"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
            out.push(PolicyExplanation {
                policy: p.name.clone(),
                lines,
            });
        }
        Ok(out)
    }
}
