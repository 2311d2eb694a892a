//! [`build`]: the nft table from the plan, as a short list of named steps.

use std::collections::{BTreeMap, BTreeSet};

use super::expand::rule_families;
use super::*;
use crate::plan::{Steering, TargetKey};

/// A sticky policy's mark and the longest timeout of the sticky rules
/// that use it, by policy name.
pub(super) type StickyPolicies = BTreeMap<String, (u32, u32)>;

/// Build the table. Pure: the same plan gives the same table.
///
/// `devices` maps logical interface names to kernel devices for `src_iface`
/// (the plan already skipped rules whose device is unknown).
pub fn build(
    plan: &NetworkPlan,
    config: &Config,
    devices: &BTreeMap<String, String>,
) -> Result<NftTable, NftPlanError> {
    let sticky = sticky_policies(plan);
    let mut sets = sticky_sets(plan, config, &sticky);
    sets.extend(ipset_sets(plan));
    let (rules_chain, sticky_chains) = policy_rules(plan, config, devices);
    let mut chains = vec![
        base_chain(
            CHAIN_PREROUTING,
            ChainKind::Filter,
            Hook::Prerouting,
            prerouting_rules(plan),
        ),
        base_chain(
            CHAIN_OUTPUT,
            ChainKind::Route,
            Hook::Output,
            output_rules(plan),
        ),
        base_chain(
            CHAIN_POSTROUTING,
            ChainKind::Filter,
            Hook::Postrouting,
            postrouting_rules(plan, config, &sticky),
        ),
        NftChain {
            name: CHAIN_RULES.into(),
            base: None,
            rules: rules_chain,
        },
    ];
    chains.extend(sticky_chains);
    let table = NftTable { sets, chains };
    check_names(&table)?;
    Ok(table)
}

/// Step 1: the policies of nft-steered sticky rules.
pub(super) fn sticky_policies(plan: &NetworkPlan) -> StickyPolicies {
    let mut sticky = StickyPolicies::new();
    for r in &plan.rules {
        if let (Some(timeout), TargetKey::Policy(p), Steering::NftMark { mark, .. }) =
            (r.sticky_timeout, &r.target, &r.steering)
        {
            let e = sticky.entry(p.clone()).or_insert((*mark, timeout));
            e.1 = e.1.max(timeout);
        }
    }
    sticky
}

/// Step 2: a sticky set per sticky policy and member WAN.
pub(super) fn sticky_sets(
    plan: &NetworkPlan,
    config: &Config,
    sticky: &StickyPolicies,
) -> Vec<NftSet> {
    let mut sets = Vec::new();
    for (policy, (_, timeout)) in sticky {
        for w in policy_wans(config, plan, policy) {
            sets.push(NftSet {
                name: sticky_set_name(policy, &w.interface),
                family: w.family,
                kind: SetKind::Sticky {
                    timeout_s: *timeout,
                },
            });
        }
    }
    sets
}

/// Step 3: a user set per `ipset` name and family of nft-steered rules,
/// each once.
pub(super) fn ipset_sets(plan: &NetworkPlan) -> Vec<NftSet> {
    let mut sets = Vec::new();
    let mut seen: BTreeSet<(String, u8)> = BTreeSet::new();
    for r in &plan.rules {
        if let (Some(ipset), Steering::NftMark { .. }) = (&r.rule.ipset, &r.steering) {
            for family in rule_families(&r.rule) {
                let name = ipset_set_name(ipset, family);
                if seen.insert((name.clone(), family_order(family))) {
                    sets.push(NftSet {
                        name,
                        family,
                        kind: SetKind::User,
                    });
                }
            }
        }
    }
    sets
}

/// Packets that already carry a mark of ours are left alone.
fn skip_marked(mask: u32) -> NftRule {
    let no_mark_of_ours = Match::MetaMark {
        mask,
        value: 0,
        equal: false,
    };
    rule(vec![no_mark_of_ours], vec![], Some(Verdict::Return))
}

/// A connection pinned to a WAN (its pin mark in the ct mark) gets the pin
/// in the packet mark, per WAN.
fn restore_pins(plan: &NetworkPlan) -> impl Iterator<Item = NftRule> + '_ {
    let mask = plan.layout.mask;
    plan.wans.iter().map(move |w| {
        rule(
            vec![Match::CtMark {
                mask,
                value: w.pin_mark,
                equal: true,
            }],
            vec![mark_rule(mask, w.pin_mark)],
            Some(Verdict::Return),
        )
    })
}

/// WANs whose device is known: a WAN without one has no device rules (an
/// empty name would never match anyway); its restore rule stays.
fn wans_with_device(plan: &NetworkPlan) -> impl Iterator<Item = &WanPlan> {
    plan.wans.iter().filter(|w| !w.device.is_empty())
}

fn jump_to_policy_rules() -> NftRule {
    rule(vec![], vec![], Some(Verdict::Jump(CHAIN_RULES.into())))
}

/// Step 4: `prerouting`: skip marked, restore pins, pin a connection's
/// first packet in from a WAN device to that WAN, walk the rules.
pub(super) fn prerouting_rules(plan: &NetworkPlan) -> Vec<NftRule> {
    let mask = plan.layout.mask;
    let mut rules = vec![skip_marked(mask)];
    rules.extend(restore_pins(plan));
    for w in wans_with_device(plan) {
        rules.push(rule(
            vec![Match::NfProto(w.family), Match::IifName(w.device.clone())],
            vec![ct_mark_rule(mask, w.pin_mark), mark_rule(mask, w.pin_mark)],
            Some(Verdict::Return),
        ));
    }
    rules.push(jump_to_policy_rules());
    rules
}

/// Step 5: `output` (router traffic): skip marked, send the sockets of
/// `mwanctl use` cgroups to their WAN, restore pins, walk the rules.
pub(super) fn output_rules(plan: &NetworkPlan) -> Vec<NftRule> {
    let mut rules = vec![skip_marked(plan.layout.mask)];
    rules.extend(use_cgroup_rules(plan));
    rules.extend(restore_pins(plan));
    rules.push(jump_to_policy_rules());
    rules
}

/// Step 5a: a socket made in a WAN's `use` cgroup gets the WAN's tracker
/// mark, whose FIB rule sends it to the WAN's table whatever the policies
/// and the WAN's health say (as mwan3's `use`). Before the pin restore: a
/// pin of the same WAN is withdrawn when the WAN fails.
pub(super) fn use_cgroup_rules(plan: &NetworkPlan) -> impl Iterator<Item = NftRule> + '_ {
    let mask = plan.layout.mask;
    plan.use_cgroups.iter().filter_map(move |c| {
        let w = plan.wans.iter().find(|w| w.interface == c.wan)?;
        Some(rule(
            vec![Match::SocketCgroupV2 {
                level: c.level,
                path: c.path.clone(),
                id: c.id,
            }],
            vec![mark_rule(mask, w.tracker_mark)],
            Some(Verdict::Return),
        ))
    })
}

/// Step 6: `postrouting`: record sticky choices in the sets of the WAN a
/// connection left through, then pin unpinned connections to that WAN.
pub(super) fn postrouting_rules(
    plan: &NetworkPlan,
    config: &Config,
    sticky: &StickyPolicies,
) -> Vec<NftRule> {
    let mask = plan.layout.mask;
    let mut rules = Vec::new();
    for (policy, (policy_mark, _)) in sticky {
        for w in policy_wans(config, plan, policy)
            .into_iter()
            .filter(|w| !w.device.is_empty())
        {
            rules.push(rule(
                vec![
                    Match::CtMark {
                        mask,
                        value: *policy_mark,
                        equal: true,
                    },
                    Match::NfProto(w.family),
                    Match::OifName(w.device.clone()),
                ],
                vec![
                    Action::UpdateSetSource {
                        family: w.family,
                        set: sticky_set_name(policy, &w.interface),
                    },
                    ct_mark_rule(mask, w.pin_mark),
                ],
                Some(Verdict::Return),
            ));
        }
    }
    // A pending sticky mark (the connection left through a WAN that is not a
    // member) counts as no pin: values 0 and each sticky policy mark.
    let unpinned: Vec<u32> = std::iter::once(0)
        .chain(sticky.values().map(|(m, _)| *m))
        .collect();
    for w in wans_with_device(plan) {
        for value in &unpinned {
            rules.push(rule(
                vec![
                    Match::NfProto(w.family),
                    Match::OifName(w.device.clone()),
                    Match::CtMark {
                        mask,
                        value: *value,
                        equal: true,
                    },
                ],
                vec![ct_mark_rule(mask, w.pin_mark)],
                Some(Verdict::Return),
            ));
        }
    }
    rules
}

/// Step 7: `policy_rules` (the config rules in order, each expanded into
/// its match lists) and the `sticky_r<N>` chains its sticky rules go to.
pub(super) fn policy_rules(
    plan: &NetworkPlan,
    config: &Config,
    devices: &BTreeMap<String, String>,
) -> (Vec<NftRule>, Vec<NftChain>) {
    let mask = plan.layout.mask;
    let mut rules_chain = Vec::new();
    let mut sticky_chains = Vec::new();
    for r in &plan.rules {
        let mut actions = Vec::new();
        if r.rule.logging {
            actions.push(Action::Log {
                prefix: log_prefix(&r.rule.name),
            });
        }
        let verdict = match (&r.steering, r.sticky_timeout, &r.target) {
            (Steering::Fib, _, _) => Verdict::Return,
            (Steering::NftMark { mark, .. }, Some(_), TargetKey::Policy(policy)) => {
                let chain = sticky_chain(plan, config, r.index, policy, *mark);
                let name = chain.name.clone();
                sticky_chains.push(chain);
                Verdict::Goto(name)
            }
            (Steering::NftMark { mark, .. }, _, _) => {
                actions.push(mark_rule(mask, *mark));
                Verdict::Return
            }
        };
        for matches in expand(&r.rule, devices) {
            rules_chain.push(rule(matches, actions.clone(), Some(verdict.clone())));
        }
    }
    (rules_chain, sticky_chains)
}

/// The chain of sticky rule `index`: a source in a member WAN's sticky set
/// goes (and refreshes) there; any other gets the policy's mark, in the
/// packet and the connection, for postrouting to record.
pub(super) fn sticky_chain(
    plan: &NetworkPlan,
    config: &Config,
    index: usize,
    policy: &str,
    mark: u32,
) -> NftChain {
    let mask = plan.layout.mask;
    let mut body = Vec::new();
    for w in policy_wans(config, plan, policy) {
        let set = sticky_set_name(policy, &w.interface);
        body.push(rule(
            vec![
                Match::NfProto(w.family),
                Match::InSet {
                    family: w.family,
                    dir: Dir::Src,
                    set: set.clone(),
                },
            ],
            vec![
                Action::UpdateSetSource {
                    family: w.family,
                    set,
                },
                mark_rule(mask, w.pin_mark),
            ],
            Some(Verdict::Return),
        ));
    }
    body.push(rule(
        vec![],
        vec![mark_rule(mask, mark), ct_mark_rule(mask, mark)],
        None,
    ));
    NftChain {
        name: sticky_chain_name(index),
        base: None,
        rules: body,
    }
}

/// A base chain at the mangle priority.
fn base_chain(name: &str, kind: ChainKind, hook: Hook, rules: Vec<NftRule>) -> NftChain {
    NftChain {
        name: name.into(),
        base: Some(BaseChain {
            kind,
            hook,
            priority: MANGLE_PRIORITY,
        }),
        rules,
    }
}

/// Step 8: every set and chain name fits the kernel's limit.
pub(super) fn check_names(table: &NftTable) -> Result<(), NftPlanError> {
    for s in &table.sets {
        check_name(&s.name, "set")?;
    }
    for c in &table.chains {
        check_name(&c.name, "chain")?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
