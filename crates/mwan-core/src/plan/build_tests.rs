//! One test per step of [`build`](super::build); the whole plan is tested in
//! plan/tests.rs.

use super::*;
use crate::config::{PolicyTarget, Proto};
use crate::plan::tests::{rule, World};

static NO_PREVIOUS: Allocation = Allocation {
    wans: BTreeMap::new(),
    targets: BTreeMap::new(),
};

fn input<'a>(w: &'a World, decisions: &'a [PolicyRoutes]) -> PlanInput<'a> {
    PlanInput {
        config: &w.config,
        settings: PlanSettings::from_config(&w.config),
        wans: &w.wans,
        policies: decisions,
        devices: &w.devices,
        main_defaults: &[],
        previous: &NO_PREVIOUS,
    }
}

fn layout() -> MarkLayout {
    MarkLayout::new(0x3F00).unwrap()
}

/// World's rules plus a sticky one (needs nft), one on an unknown device
/// and one naming no policy.
fn world_with_odd_rules() -> World {
    let mut w = World::new();
    let mut sticky = rule("sticky", "wan1_only");
    sticky.sticky = true;
    let mut guest = rule("guest", "balanced");
    guest.src_iface = Some("guest".into());
    w.config
        .rules
        .extend([sticky, guest, rule("gone", "nosuch")]);
    w
}

#[test]
fn select_rules_skips_unknown_devices_and_policies_with_typed_warnings() {
    let w = world_with_odd_rules();
    let mut warnings = Vec::new();
    let selected = select_rules(&input(&w, &[]), &mut warnings);
    assert_eq!(selected.len(), 5);
    assert!(
        matches!(&selected[0], Some((TargetKey::Policy(p), Ok(fib))) if p == "wan2_only" && !fib.is_empty())
    );
    assert!(matches!(&selected[2], Some((_, Err(reasons))) if reasons == &["sticky"]));
    assert!(selected[3].is_none() && selected[4].is_none());
    assert_eq!(
        warnings,
        [
            PlanWarning::SrcIfaceWithoutDevice {
                rule: "guest".into(),
                src_iface: "guest".into()
            },
            PlanWarning::PolicyMissing {
                rule: "gone".into(),
                policy: "nosuch".into()
            }
        ]
    );
    assert_eq!(warnings[1].code(), "policy-missing");
    assert_eq!(
        warnings[1].to_string(),
        "rule 'gone': policy 'nosuch' does not exist; rule skipped"
    );
}

#[test]
fn nft_mark_targets_lists_each_marked_target_once_in_first_use_order() {
    let err = |t: TargetKey| Some((t, Err(vec!["sticky"])));
    let selected: Vec<SelectedRule> = vec![
        Some((TargetKey::Main, Ok(vec![]))),
        err(TargetKey::Blackhole),
        None,
        err(TargetKey::Policy("p".into())),
        err(TargetKey::Blackhole),
    ];
    assert_eq!(
        nft_mark_targets(&selected),
        [TargetKey::Blackhole, TargetKey::Policy("p".into())]
    );
}

#[test]
fn enabled_wans_and_target_keys_follow_config_order() {
    let mut w = World::new();
    w.config.interfaces[1].enabled = false;
    assert_eq!(enabled_wans(&w.config), ["wan1", "wan1_6"]);
    let keys = target_keys(
        &w.config,
        &[TargetKey::Blackhole, TargetKey::Policy("balanced".into())],
    );
    let names: Vec<String> = keys.iter().map(ToString::to_string).collect();
    assert_eq!(
        names,
        [
            "policy 'balanced'",
            "policy 'wan1_only'",
            "policy 'wan2_only'",
            "blackhole"
        ]
    );
}

#[test]
fn connected_rules_come_per_family_with_each_lookup_table() {
    let mut w = World::new();
    w.config.globals.rt_table_lookup = vec![100, 200];
    let text: Vec<String> = connected_rules(&w.config, 1000)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        text,
        [
            "-4 pref 1300 lookup 254 suppress_prefixlength 0",
            "-4 pref 1301 lookup 100 suppress_prefixlength 0",
            "-4 pref 1302 lookup 200 suppress_prefixlength 0",
            "-6 pref 1300 lookup 254 suppress_prefixlength 0",
            "-6 pref 1301 lookup 100 suppress_prefixlength 0",
            "-6 pref 1302 lookup 200 suppress_prefixlength 0",
        ]
    );
}

#[test]
fn wan_tables_hold_tracker_pin_and_from_rules_and_default_plus_mirrors() {
    let mut w = World::new();
    w.wans[1].usable = false;
    let names = enabled_wans(&w.config);
    let alloc = allocate(&names, &[], &Allocation::default(), layout()).unwrap();
    let (mut routes, mut rules) = (Vec::new(), Vec::new());
    let wans = add_wan_tables(
        &input(&w, &[]),
        &names,
        &alloc,
        layout(),
        &mut routes,
        &mut rules,
    );
    assert_eq!(wans.len(), 3);
    let wan2 = &wans[1];
    assert!(!wan2.usable);
    assert_eq!(wan2.table, 1000 + wan2.slots.pin);
    let of = |table: u32| -> Vec<String> {
        rules
            .iter()
            .filter(|r| matches!(r.action, RuleAction::Lookup { table: t, .. } if t == table))
            .map(ToString::to_string)
            .collect()
    };
    // wan1: tracker, pin, from its address; wan2 (unusable): no pin rule.
    assert_eq!(of(wans[0].table).len(), 3);
    assert_eq!(
        of(wan2.table),
        [
            format!(
                "-4 pref {} fwmark {:#x}/0x3f00 lookup {}",
                1000 + wan2.slots.tracker,
                wan2.tracker_mark,
                wan2.table
            ),
            format!(
                "-4 pref {} from 192.0.2.10/32 lookup {}",
                2400 + wan2.slots.pin,
                wan2.table
            ),
        ]
    );
    // The IPv6 address is tentative: no from rule.
    assert_eq!(of(wans[2].table).len(), 2);
    // Default + mirrored connected route per IPv4 WAN, default for IPv6.
    assert_eq!(routes.len(), 5);
    assert!(routes
        .iter()
        .any(|r| r.table == wan2.table && r.dst.prefix_len == 30));
}

#[test]
fn policy_tables_route_over_usable_members_or_their_last_resort() {
    let mut w = World::new();
    w.wans[1].usable = false;
    let decisions = w.decisions();
    let names = enabled_wans(&w.config);
    let keys = target_keys(&w.config, &[]);
    let alloc = allocate(&names, &keys, &Allocation::default(), layout()).unwrap();
    let mut routes = Vec::new();
    let tables = add_policy_tables(&input(&w, &decisions), &names, &alloc, &mut routes);
    assert_eq!(tables.len(), 3);
    // A default route per policy and family.
    assert_eq!(routes.len(), 6);
    let route = |policy: &str, family: Family| {
        routes
            .iter()
            .find(|r| r.table == tables[policy] && r.family == family)
            .unwrap()
            .to_string()
    };
    assert_eq!(
        route("wan2_only", Family::Ipv4),
        format!(
            "-4 unreachable 0.0.0.0/0 table {} metric 0",
            tables["wan2_only"]
        )
    );
    assert_eq!(
        route("balanced", Family::Ipv4),
        format!(
            "-4 0.0.0.0/0 table {} metric 0 via 192.0.2.5 ifindex 11",
            tables["balanced"]
        )
    );
    assert!(route("balanced", Family::Ipv6).contains("via fe80::1 ifindex 11"));
}

#[test]
fn policy_marks_send_marked_traffic_to_each_target() {
    let targets = [TargetKey::Policy("p".into()), TargetKey::Blackhole];
    let alloc = allocate(&[], &targets, &Allocation::default(), layout()).unwrap();
    let tables = BTreeMap::from([("p".to_string(), 1001)]);
    let mut rules = Vec::new();
    let marks = add_policy_marks(&targets, &alloc, layout(), &tables, 1000, &mut rules);
    assert_eq!(marks[&TargetKey::Policy("p".into())], 0x100);
    assert_eq!(marks[&TargetKey::Blackhole], 0x200);
    let text: Vec<String> = rules.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "-4 pref 2001 fwmark 0x100/0x3f00 lookup 1001",
            "-6 pref 2001 fwmark 0x100/0x3f00 lookup 1001",
            "-4 pref 2002 fwmark 0x200/0x3f00 blackhole",
            "-6 pref 2002 fwmark 0x200/0x3f00 blackhole",
        ]
    );
}

#[test]
fn config_rules_become_fib_rules_at_their_index_or_an_nft_mark() {
    let mut config = World::new().config;
    let mut udp = rule("udp", "p");
    udp.proto = Proto::Udp;
    config.rules = vec![udp, rule("skipped", "p"), rule("sticky", "p")];
    config.rules[2].use_policy = PolicyTarget::Blackhole;
    let selected: Vec<SelectedRule> = vec![
        Some((
            TargetKey::Policy("p".into()),
            Ok(vec![FibRule::new(Family::Ipv4, 0, RuleAction::Blackhole)]),
        )),
        None,
        Some((TargetKey::Blackhole, Err(vec!["sticky"]))),
    ];
    let tables = BTreeMap::from([("p".to_string(), 1001)]);
    let marks = BTreeMap::from([(TargetKey::Blackhole, 0x300)]);
    let mut rules = Vec::new();
    let plans = add_config_rules(&config, selected, &tables, &marks, 1000, &mut rules);
    assert_eq!(
        rules.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["-4 pref 3000 lookup 1001"]
    );
    assert_eq!(plans.len(), 2);
    assert_eq!((plans[0].index, &plans[0].steering), (0, &Steering::Fib));
    assert_eq!(plans[1].index, 2);
    assert_eq!(
        plans[1].steering,
        Steering::NftMark {
            mark: 0x300,
            reasons: vec!["sticky"]
        }
    );
}
