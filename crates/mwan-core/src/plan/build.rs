//! [`build`]: the whole plan from config, facts and decisions, as a short
//! list of named steps. Each step adds one kind of object; the kernel
//! objects are sorted at the end, so the steps' order only matters for
//! duplicate routes (the first one wins).

use std::collections::BTreeMap;

use super::routes::{
    host_len, lookup, mirrorable, policy_default_route, target_action, wan_default_route,
};
use super::selectors::fib_selectors;
use super::*;

/// A config rule that the plan installs: its target, and its FIB rule
/// selectors or the reasons it needs an nft mark instead. None: skipped.
pub(super) type SelectedRule = Option<(TargetKey, Result<Vec<FibRule>, Vec<&'static str>>)>;

/// Build the desired plan. Pure: same input, same plan.
pub fn build(input: &PlanInput<'_>) -> Result<NetworkPlan, PlanError> {
    let settings = input.settings;
    let layout = MarkLayout::new(settings.mmx_mask)?;
    let config = input.config;
    let mut warnings = Vec::new();
    let selected = select_rules(input, &mut warnings);
    let mark_targets = nft_mark_targets(&selected);
    let wan_names = enabled_wans(config);
    let allocation = allocate(
        &wan_names,
        &target_keys(config, &mark_targets),
        input.previous,
        layout,
    )?;
    let base = settings.rule_base;
    let mut routes = Vec::new();
    let mut rules = connected_rules(config, base);
    let wans = add_wan_tables(
        input,
        &wan_names,
        &allocation,
        layout,
        &mut routes,
        &mut rules,
    );
    let policy_tables = add_policy_tables(input, &wan_names, &allocation, &mut routes);
    let target_marks = add_policy_marks(
        &mark_targets,
        &allocation,
        layout,
        &policy_tables,
        base,
        &mut rules,
    );
    let rule_plans = add_config_rules(
        config,
        selected,
        &policy_tables,
        &target_marks,
        base,
        &mut rules,
    );
    Ok(NetworkPlan {
        settings,
        layout,
        allocation,
        wans,
        policy_tables,
        target_marks,
        rules: rule_plans,
        objects: KernelObjects::sorted(routes, rules),
        warnings,
        use_cgroups: Vec::new(),
    })
}

/// Step 1: per config rule (in order), whether it can be installed now and
/// how: skipped (with a warning) when its `src_iface` has no device yet or
/// its policy does not exist.
pub(super) fn select_rules(
    input: &PlanInput<'_>,
    warnings: &mut Vec<PlanWarning>,
) -> Vec<SelectedRule> {
    let config = input.config;
    let mut selected = Vec::with_capacity(config.rules.len());
    for rule in &config.rules {
        if let Some(iface) = &rule.src_iface {
            if !input.devices.contains_key(iface) {
                warnings.push(PlanWarning::SrcIfaceWithoutDevice {
                    rule: rule.name.clone(),
                    src_iface: iface.clone(),
                });
                selected.push(None);
                continue;
            }
        }
        let target = TargetKey::from_config(&rule.use_policy);
        if let TargetKey::Policy(p) = &target {
            if !config.policies.iter().any(|cp| &cp.name == p) {
                warnings.push(PlanWarning::PolicyMissing {
                    rule: rule.name.clone(),
                    policy: p.clone(),
                });
                selected.push(None);
                continue;
            }
        }
        selected.push(Some((target, fib_selectors(rule, input.devices))));
    }
    selected
}

/// Step 2: the targets some rule marks traffic for (rules FIB rules cannot
/// express), in first-use order.
pub(super) fn nft_mark_targets(selected: &[SelectedRule]) -> Vec<TargetKey> {
    let mut targets: Vec<TargetKey> = Vec::new();
    for (target, sel) in selected.iter().flatten() {
        if sel.is_err() && !targets.contains(target) {
            targets.push(target.clone());
        }
    }
    targets
}

/// Step 3: the enabled config interfaces, in config order.
pub(super) fn enabled_wans(config: &Config) -> Vec<&str> {
    config
        .interfaces
        .iter()
        .filter(|i| i.enabled)
        .map(|i| i.name.as_str())
        .collect()
}

/// Step 4: every target that gets a slot: each policy (its table), then the
/// other marked targets.
pub(super) fn target_keys(config: &Config, mark_targets: &[TargetKey]) -> Vec<TargetKey> {
    let mut keys: Vec<TargetKey> = config
        .policies
        .iter()
        .map(|p| TargetKey::Policy(p.name.clone()))
        .collect();
    for t in mark_targets {
        if !keys.contains(t) {
            keys.push(t.clone());
        }
    }
    keys
}

/// Step 5: connected networks (and `rt_table_lookup` tables) before any
/// policy, per family.
pub(super) fn connected_rules(config: &Config, base: u32) -> Vec<FibRule> {
    let mut rules = Vec::new();
    for family in FAMILIES {
        rules.push(FibRule::new(
            family,
            base + prio::CONNECTED,
            RuleAction::Lookup {
                table: MAIN_TABLE,
                suppress_prefixlen: Some(0),
            },
        ));
        for (i, table) in config.globals.rt_table_lookup.iter().enumerate() {
            rules.push(FibRule::new(
                family,
                base + prio::TABLE_LOOKUP + i as u32,
                RuleAction::Lookup {
                    table: *table,
                    suppress_prefixlen: Some(0),
                },
            ));
        }
    }
    rules
}

/// Step 6: each enabled WAN's table (default route, mirrored main routes)
/// and rules (tracker mark, pin mark while usable, its addresses).
pub(super) fn add_wan_tables(
    input: &PlanInput<'_>,
    wan_names: &[&str],
    allocation: &Allocation,
    layout: MarkLayout,
    routes: &mut Vec<Route>,
    rules: &mut Vec<FibRule>,
) -> Vec<WanPlan> {
    let settings = input.settings;
    let base = settings.rule_base;
    let mask = layout.mask;
    let mut wans = Vec::with_capacity(wan_names.len());
    for name in wan_names {
        let slots = allocation.wans[*name];
        let table = settings.table_base + slots.pin;
        let iface = input
            .config
            .interfaces
            .iter()
            .find(|i| i.name == *name)
            .expect("from config");
        let input_wan = input.wans.iter().find(|w| w.interface == *name);
        let (facts, usable) = match input_wan {
            Some(w) => (w.facts.clone(), w.usable),
            None => (WanFacts::default(), false),
        };
        let family = iface.family;
        let plan = WanPlan {
            interface: name.to_string(),
            family,
            device: facts.device.clone(),
            ifindex: facts.ifindex,
            table,
            slots,
            tracker_mark: layout.encode(slots.tracker),
            pin_mark: layout.encode(slots.pin),
            usable,
        };
        let mut tracker = FibRule::new(family, base + prio::TRACKER + slots.tracker, lookup(table));
        tracker.fwmark = Some((plan.tracker_mark, mask));
        rules.push(tracker);
        if usable {
            let mut pin = FibRule::new(family, base + prio::PIN + slots.pin, lookup(table));
            pin.fwmark = Some((plan.pin_mark, mask));
            rules.push(pin);
        }
        for a in facts
            .addresses
            .iter()
            .filter(|a| family_of(a.addr) == family && !a.tentative)
        {
            let mut from =
                FibRule::new(family, base + prio::FROM_ADDRESS + slots.pin, lookup(table));
            from.src = Some(IpNet {
                addr: a.addr,
                prefix_len: host_len(family),
            });
            rules.push(from);
        }
        if let Some(route) = wan_default_route(&facts, family, table) {
            routes.push(route);
        }
        if facts.routable(family) {
            for r in facts
                .main_routes
                .iter()
                .filter(|r| r.family == family && mirrorable(r))
            {
                let mut m = r.clone();
                m.table = table;
                m.dst = normalize(m.dst);
                routes.push(m);
            }
        }
        wans.push(plan);
    }
    wans
}

/// Step 7: each policy's table, with a terminal default route per family
/// (multipath over its usable active members, else its last resort).
/// Returns policy name -> table.
pub(super) fn add_policy_tables(
    input: &PlanInput<'_>,
    wan_names: &[&str],
    allocation: &Allocation,
    routes: &mut Vec<Route>,
) -> BTreeMap<String, u32> {
    let mut policy_tables = BTreeMap::new();
    for policy in &input.config.policies {
        let slot = allocation.targets[&TargetKey::Policy(policy.name.clone())];
        let table = input.settings.table_base + slot;
        policy_tables.insert(policy.name.clone(), table);
        let resolved = input.policies.iter().find(|p| p.policy == policy.name);
        let last_resort = resolved
            .map(|p| p.last_resort)
            .unwrap_or(policy.last_resort);
        for family in FAMILIES {
            let members = resolved
                .map(|r| policy_nexthops(input.wans, wan_names, r, family))
                .unwrap_or_default();
            routes.push(policy_default_route(
                family,
                table,
                &members,
                last_resort,
                input.main_defaults,
            ));
        }
    }
    policy_tables
}

/// The (nexthop, weight) of each active member of `resolved` of `family`
/// whose WAN is enabled, usable and can carry a default route.
fn policy_nexthops(
    wans: &[WanInput],
    wan_names: &[&str],
    resolved: &PolicyRoutes,
    family: Family,
) -> Vec<(Nexthop, u32)> {
    let mut members = Vec::new();
    for (iface, weight) in &resolved.active {
        let Some(w) = wans.iter().find(|w| &w.interface == iface) else {
            continue;
        };
        if w.family != family || !w.usable || !wan_names.contains(&iface.as_str()) {
            continue;
        }
        if let Some(RouteKind::Unicast(hops)) =
            wan_default_route(&w.facts, family, 0).map(|r| r.kind)
        {
            members.push((hops[0], *weight));
        }
    }
    members
}

/// Step 8: a `fwmark` rule per marked target and family, sending what the
/// nft table marked to the target. Returns target -> mark.
pub(super) fn add_policy_marks(
    mark_targets: &[TargetKey],
    allocation: &Allocation,
    layout: MarkLayout,
    policy_tables: &BTreeMap<String, u32>,
    base: u32,
    rules: &mut Vec<FibRule>,
) -> BTreeMap<TargetKey, u32> {
    let mut target_marks = BTreeMap::new();
    for t in mark_targets {
        let slot = allocation.targets[t];
        let mark = layout.encode(slot);
        target_marks.insert(t.clone(), mark);
        for family in FAMILIES {
            let mut r = FibRule::new(
                family,
                base + prio::POLICY_MARK + slot,
                target_action(t, policy_tables),
            );
            r.fwmark = Some((mark, layout.mask));
            rules.push(r);
        }
    }
    target_marks
}

/// Step 9: the config rules in order: FIB rules at their index's priority,
/// or an nft mark; skipped rules get no plan.
pub(super) fn add_config_rules(
    config: &Config,
    selected: Vec<SelectedRule>,
    policy_tables: &BTreeMap<String, u32>,
    target_marks: &BTreeMap<TargetKey, u32>,
    base: u32,
    rules: &mut Vec<FibRule>,
) -> Vec<RulePlan> {
    let mut rule_plans = Vec::new();
    for (index, (rule, sel)) in config.rules.iter().zip(selected).enumerate() {
        let Some((target, sel)) = sel else { continue };
        let steering = match sel {
            Ok(list) => {
                let action = target_action(&target, policy_tables);
                for mut r in list {
                    r.priority = base + prio::RULES + index as u32;
                    r.action = action;
                    rules.push(r);
                }
                Steering::Fib
            }
            Err(reasons) => Steering::NftMark {
                mark: target_marks[&target],
                reasons,
            },
        };
        rule_plans.push(RulePlan {
            index,
            rule: rule.clone(),
            target,
            steering,
            sticky_timeout: rule.sticky.then_some(rule.timeout),
        });
    }
    rule_plans
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
