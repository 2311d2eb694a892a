use super::*;
use crate::config::{
    Globals, Interface, Member, Policy, PolicyMode, PolicyTarget, PortRange, Proto,
};
use proptest::prelude::*;

fn interface(name: &str, family: Family) -> Interface {
    Interface {
        enabled: true,
        family,
        ..Interface::new(name)
    }
}

pub(super) fn rule(name: &str, policy: &str) -> Rule {
    Rule::new(name, PolicyTarget::Named(policy.into()))
}

fn net(s: &str, len: u8) -> IpNet {
    IpNet {
        addr: s.parse().unwrap(),
        prefix_len: len,
    }
}

/// wan1/wan2 (IPv4), wan1_6 (IPv6); policies balanced (3:1), wan1_only,
/// wan2_only; rules https -> balanced, rest -> balanced.
fn config() -> Config {
    let mut c = Config {
        source: "test".into(),
        globals: Globals::default(),
        interfaces: vec![
            interface("wan1", Family::Ipv4),
            interface("wan2", Family::Ipv4),
            interface("wan1_6", Family::Ipv6),
        ],
        members: vec![],
        policies: vec![],
        rules: vec![],
    };
    for (m, i, w) in [("w1", "wan1", 3), ("w2", "wan2", 1), ("w16", "wan1_6", 1)] {
        c.members.push(Member {
            name: m.into(),
            interface: i.into(),
            metric: 1,
            weight: w,
        });
    }
    for (p, members) in [
        ("balanced", vec!["w1", "w2", "w16"]),
        ("wan1_only", vec!["w1"]),
        ("wan2_only", vec!["w2"]),
    ] {
        c.policies.push(Policy {
            name: p.into(),
            use_member: members.into_iter().map(String::from).collect(),
            last_resort: LastResort::Unreachable,
            mode: PolicyMode::Tiers,
            ceilings: Default::default(),
        });
    }
    let mut https = rule("https", "wan2_only");
    https.proto = Proto::Tcp;
    https.dest_port = vec![PortRange {
        first: 443,
        last: 443,
    }];
    c.rules.push(https);
    c.rules.push(rule("default_rule", "balanced"));
    c
}

fn facts(index: u32) -> WanFacts {
    WanFacts {
        device: format!("eth{index}"),
        ifindex: index + 10,
        up: true,
        carrier: true,
        addresses: vec![WanAddress {
            addr: format!("192.0.2.{}", index * 4 + 2).parse().unwrap(),
            prefix_len: 30,
            tentative: false,
        }],
        gateway_v4: Some(format!("192.0.2.{}", index * 4 + 1).parse().unwrap()),
        gateway_v6: None,
        main_routes: vec![Route {
            family: Family::Ipv4,
            table: MAIN_TABLE,
            dst: net(&format!("192.0.2.{}", index * 4), 30),
            metric: 0,
            kind: RouteKind::Unicast(vec![Nexthop {
                ifindex: index + 10,
                gateway: None,
                weight: 1,
            }]),
            prefsrc: Some(format!("192.0.2.{}", index * 4 + 2).parse().unwrap()),
            scope_link: true,
        }],
    }
}

fn facts6() -> WanFacts {
    WanFacts {
        device: "eth1".into(),
        ifindex: 11,
        up: true,
        carrier: true,
        addresses: vec![WanAddress {
            addr: "2001:db8:1::2".parse().unwrap(),
            prefix_len: 64,
            tentative: true,
        }],
        gateway_v4: None,
        gateway_v6: Some("fe80::1".parse().unwrap()),
        main_routes: vec![],
    }
}

pub(super) struct World {
    pub(super) config: Config,
    pub(super) wans: Vec<WanInput>,
    pub(super) devices: BTreeMap<String, String>,
}

impl World {
    pub(super) fn new() -> Self {
        let wans = vec![
            WanInput {
                interface: "wan1".into(),
                family: Family::Ipv4,
                facts: facts(1),
                usable: true,
            },
            WanInput {
                interface: "wan2".into(),
                family: Family::Ipv4,
                facts: facts(2),
                usable: true,
            },
            WanInput {
                interface: "wan1_6".into(),
                family: Family::Ipv6,
                facts: facts6(),
                usable: true,
            },
        ];
        World {
            config: config(),
            wans,
            devices: BTreeMap::from([("lan".to_string(), "br-lan".to_string())]),
        }
    }

    /// Decisions as the resolver would make them: usable members of each policy.
    pub(super) fn decisions(&self) -> Vec<PolicyRoutes> {
        PolicyRoutes::all_members(&self.config, |i| {
            self.wans.iter().any(|w| w.interface == i && w.usable)
        })
    }

    fn plan(&self, previous: &Allocation) -> NetworkPlan {
        let decisions = self.decisions();
        build(&PlanInput {
            config: &self.config,
            settings: PlanSettings::from_config(&self.config),
            wans: &self.wans,
            policies: &decisions,
            devices: &self.devices,
            main_defaults: &[],
            previous,
        })
        .expect("plan builds")
    }
}

#[test]
fn mark_layout_round_trips_and_spreads_over_the_mask() {
    let l = MarkLayout::new(0x3F00).unwrap();
    assert_eq!(l.capacity(), 63);
    assert_eq!(l.encode(1), 0x100);
    assert_eq!(l.encode(63), 0x3F00);
    let odd = MarkLayout::new(0x8001_0100).unwrap();
    assert_eq!(odd.capacity(), 7);
    assert_eq!(odd.encode(0b101), 0x8000_0100);
    for s in 0..=7 {
        assert_eq!(odd.decode(odd.encode(s)), s);
        assert_eq!(odd.encode(s) & !odd.mask, 0);
    }
    assert!(matches!(
        MarkLayout::new(0x100),
        Err(PlanError::MaskTooSmall { .. })
    ));
}

#[test]
fn allocation_keeps_previous_slots_and_fills_gaps() {
    let l = MarkLayout::new(0x3F00).unwrap();
    let first = allocate(
        &["a", "b"],
        &[TargetKey::Policy("p".into())],
        &Allocation::default(),
        l,
    )
    .unwrap();
    assert_eq!(first.wans["a"], WanSlots { tracker: 1, pin: 2 });
    assert_eq!(first.wans["b"], WanSlots { tracker: 3, pin: 4 });
    // "a" removed, "c" added, in front of "b" in config order: b keeps its slots.
    let second = allocate(&["c", "b"], &[TargetKey::Policy("p".into())], &first, l).unwrap();
    assert_eq!(second.wans["b"], first.wans["b"]);
    assert_eq!(second.targets, first.targets);
    assert_eq!(second.wans["c"], WanSlots { tracker: 1, pin: 2 });
    assert!(!second.wans.contains_key("a"));
}

#[test]
fn allocation_reports_exhaustion_with_the_numbers() {
    let l = MarkLayout::new(0x300).unwrap(); // 3 slots
    let err = allocate(&["a", "b"], &[], &Allocation::default(), l).unwrap_err();
    assert_eq!(
        err,
        PlanError::OutOfMarks {
            mask: 0x300,
            capacity: 3,
            needed: 4
        }
    );
    assert!(err.to_string().contains("widen mmx_mask"));
}

#[test]
fn weights_scale_exactly_when_they_fit_and_proportionally_otherwise() {
    assert_eq!(scale_weights(&[3, 1]), vec![3, 1]);
    assert_eq!(scale_weights(&[700, 300]), vec![7, 3]);
    assert_eq!(scale_weights(&[1000, 1]), vec![256, 1]);
    assert_eq!(scale_weights(&[1000, 999]), vec![256, 256]);
    assert_eq!(scale_weights(&[1000, 500, 3]), vec![256, 128, 1]);
    assert_eq!(scale_weights(&[200, 256]), vec![25, 32]);
}

#[test]
fn plan_has_tables_rules_and_weighted_multipath() {
    let w = World::new();
    let p = w.plan(&Allocation::default());
    let wan1 = p.wan("wan1").unwrap();
    let wan2 = p.wan("wan2").unwrap();
    assert_eq!(wan1.tracker_mark, 0x100);
    assert_eq!(wan1.pin_mark, 0x200);
    assert_eq!(wan1.table, DEFAULT_TABLE_BASE + 2);
    let balanced = p.policy_tables["balanced"];
    let route = p
        .objects
        .routes
        .iter()
        .find(|r| r.table == balanced && r.family == Family::Ipv4)
        .expect("balanced v4 default");
    let RouteKind::Unicast(hops) = &route.kind else {
        panic!("not unicast: {route}")
    };
    assert_eq!(hops.len(), 2);
    assert_eq!((hops[0].ifindex, hops[0].weight), (11, 3));
    assert_eq!((hops[1].ifindex, hops[1].weight), (12, 1));
    // IPv6 member with link-local gateway, single path, explicit metric.
    let v6 = p
        .objects
        .routes
        .iter()
        .find(|r| r.table == balanced && r.family == Family::Ipv6)
        .unwrap();
    assert_eq!(v6.metric, IPV6_DEFAULT_METRIC);
    assert_eq!(
        v6.kind,
        RouteKind::Unicast(vec![Nexthop {
            ifindex: 11,
            gateway: Some("fe80::1".parse().unwrap()),
            weight: 1
        }])
    );
    // The WAN table mirrors the connected subnet.
    assert!(p
        .objects
        .routes
        .iter()
        .any(|r| r.table == wan2.table && r.dst == net("192.0.2.8", 30)));
    let texts: Vec<String> = p.objects.rules.iter().map(|r| r.to_string()).collect();
    let has = |s: &str| {
        assert!(
            texts.iter().any(|t| t == s),
            "missing rule {s:?} in {texts:#?}"
        )
    };
    has("-4 pref 1001 fwmark 0x100/0x3f00 lookup 1002");
    has("-4 pref 1300 lookup 254 suppress_prefixlength 0");
    has("-6 pref 1300 lookup 254 suppress_prefixlength 0");
    has("-4 pref 2402 from 192.0.2.6/32 lookup 1002");
    has("-4 pref 1702 fwmark 0x200/0x3f00 lookup 1002");
    has(&format!(
        "-4 pref 3000 ipproto 6 dport 443-443 lookup {}",
        p.policy_tables["wan2_only"]
    ));
    has(&format!("-4 pref 3001 lookup {balanced}"));
    has(&format!("-6 pref 3001 lookup {balanced}"));
    // Tentative IPv6 address: no from rule yet.
    assert!(!texts.iter().any(|t| t.contains("from 2001:db8:1::2")));
    // Rules are in priority order.
    assert!(p
        .objects
        .rules
        .windows(2)
        .all(|w| w[0].priority <= w[1].priority));
    assert!(p.rules.iter().all(|r| r.steering == Steering::Fib));
}

#[test]
fn rules_fib_cannot_express_get_a_policy_mark() {
    let mut w = World::new();
    let mut sticky = rule("sticky", "balanced");
    sticky.sticky = true;
    sticky.timeout = 300;
    let mut set = rule("set", "wan1_only");
    set.ipset = Some("streaming".into());
    let mut bh = rule("bh", "x");
    bh.use_policy = PolicyTarget::Blackhole;
    bh.logging = true;
    w.config.rules.insert(0, sticky);
    w.config.rules.insert(1, set);
    w.config.rules.insert(2, bh);
    let p = w.plan(&Allocation::default());
    let Steering::NftMark { mark, reasons } = &p.rules[0].steering else {
        panic!()
    };
    assert_eq!(reasons, &vec!["sticky"]);
    assert_eq!(p.rules[0].sticky_timeout, Some(300));
    let slot = p.allocation.targets[&TargetKey::Policy("balanced".into())];
    assert_eq!(*mark, p.layout.encode(slot));
    let texts: Vec<String> = p.objects.rules.iter().map(|r| r.to_string()).collect();
    let bh_mark = p.target_marks[&TargetKey::Blackhole];
    assert!(texts.contains(&format!(
        "-4 pref {} fwmark {bh_mark:#x}/0x3f00 blackhole",
        DEFAULT_RULE_BASE + prio::POLICY_MARK + p.layout.decode(bh_mark)
    )));
    // The FIB rule of a later rule keeps its config index as priority.
    assert!(texts
        .iter()
        .any(|t| t.starts_with("-4 pref 3003 ipproto 6 dport 443-443")));
}

#[test]
fn expansion_covers_families_protocols_and_ports() {
    let mut w = World::new();
    let mut r = rule("mixed", "balanced");
    r.src_ip = vec![net("198.51.100.7", 24), net("2001:db8:5::", 48)];
    r.proto = Proto::Tcp;
    r.extra_protos = vec![Proto::Udp];
    r.dest_port = vec![
        PortRange {
            first: 53,
            last: 53,
        },
        PortRange {
            first: 1000,
            last: 2000,
        },
    ];
    r.src_iface = Some("lan".into());
    w.config.rules = vec![r];
    let p = w.plan(&Allocation::default());
    let ours: Vec<&FibRule> = p
        .objects
        .rules
        .iter()
        .filter(|r| r.priority == DEFAULT_RULE_BASE + prio::RULES)
        .collect();
    assert_eq!(ours.len(), 2 * 2 * 2);
    assert!(ours.iter().all(|r| r.iif.as_deref() == Some("br-lan")));
    // Host bits are cleared like the kernel stores them.
    assert!(ours
        .iter()
        .any(|r| r.src == Some(net("198.51.100.0", 24)) && r.family == Family::Ipv4));
    assert!(ours
        .iter()
        .any(|r| r.src == Some(net("2001:db8:5::", 48)) && r.ipproto == Some(17)));
}

#[test]
fn zero_length_prefixes_select_the_family_only() {
    let mut w = World::new();
    let mut r = rule("v4_default", "balanced");
    r.dest_ip = vec![net("0.0.0.0", 0), net("198.51.100.0", 24)];
    w.config.rules = vec![r];
    let p = w.plan(&Allocation::default());
    let ours: Vec<&FibRule> = p
        .objects
        .rules
        .iter()
        .filter(|r| r.priority == DEFAULT_RULE_BASE + prio::RULES)
        .collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!((ours[0].family, ours[0].dst), (Family::Ipv4, None));
}

#[test]
fn unknown_src_iface_is_skipped_with_a_warning() {
    let mut w = World::new();
    let mut r = rule("guest", "balanced");
    r.src_iface = Some("guest".into());
    w.config.rules = vec![r];
    let p = w.plan(&Allocation::default());
    assert!(p.rules.is_empty());
    assert!(
        p.warnings[0].to_string().contains("src_iface 'guest'"),
        "{:?}",
        p.warnings
    );
}

#[test]
fn diff_against_itself_is_empty_and_against_nothing_adds_all() {
    let w = World::new();
    let p = w.plan(&Allocation::default());
    assert!(diff(&p.objects, &p.objects).is_empty());
    let adds = diff(&p.objects, &KernelObjects::default());
    assert_eq!(adds.len(), p.objects.routes.len() + p.objects.rules.len());
    // Routes come before rules.
    let first_rule = adds
        .iter()
        .position(|o| matches!(o, Op::AddRule(_)))
        .unwrap();
    assert!(adds[..first_rule]
        .iter()
        .all(|o| matches!(o, Op::AddRoute(_))));
    let down = teardown(&p.objects);
    assert_eq!(down.len(), adds.len());
    let last_rule = down
        .iter()
        .rposition(|o| matches!(o, Op::DelRule(_)))
        .unwrap();
    assert!(down[last_rule + 1..]
        .iter()
        .all(|o| matches!(o, Op::DelRoute(_))));
}

#[test]
fn failover_rewrites_only_affected_policy_routes_and_the_pin_rule() {
    let mut w = World::new();
    let before = w.plan(&Allocation::default());
    w.wans[1].usable = false; // wan2 fails
    let after = w.plan(&before.allocation);
    let ops = diff(&after.objects, &before.objects);
    let affected = [
        after.policy_tables["balanced"],
        after.policy_tables["wan2_only"],
    ];
    let wan2 = after.wan("wan2").unwrap();
    for op in &ops {
        match op {
            Op::AddRoute(r) => assert!(affected.contains(&r.table), "{op}"),
            Op::DelRule(r) => assert_eq!(r.fwmark, Some((wan2.pin_mark, 0x3F00)), "{op}"),
            _ => panic!("unexpected {op}"),
        }
    }
    assert_eq!(ops.len(), 3, "{ops:#?}");
    // wan2_only now has nothing: unreachable.
    let w2 = after
        .objects
        .routes
        .iter()
        .find(|r| r.table == affected[1] && r.family == Family::Ipv4)
        .unwrap();
    assert_eq!(w2.kind, RouteKind::Unreachable);
}

#[test]
fn last_resort_default_copies_mains_best_default() {
    let mut w = World::new();
    w.config.policies[2].last_resort = LastResort::Default;
    w.wans[1].usable = false;
    let main_default = Route {
        family: Family::Ipv4,
        table: MAIN_TABLE,
        dst: default_net(Family::Ipv4),
        metric: 10,
        kind: RouteKind::Unicast(vec![Nexthop {
            ifindex: 11,
            gateway: Some("192.0.2.5".parse().unwrap()),
            weight: 1,
        }]),
        prefsrc: None,
        scope_link: false,
    };
    let decisions = w.decisions();
    let p = build(&PlanInput {
        config: &w.config,
        settings: PlanSettings::from_config(&w.config),
        wans: &w.wans,
        policies: &decisions,
        devices: &w.devices,
        main_defaults: std::slice::from_ref(&main_default),
        previous: &Allocation::default(),
    })
    .unwrap();
    let t = p.policy_tables["wan2_only"];
    let r = p
        .objects
        .routes
        .iter()
        .find(|r| r.table == t && r.family == Family::Ipv4)
        .unwrap();
    assert_eq!(r.kind, main_default.kind);
    assert_eq!(r.metric, 0);
}

#[test]
fn wan_without_address_or_device_gets_no_default_route() {
    let mut w = World::new();
    w.wans[0].facts.addresses.clear();
    w.wans[1].facts.ifindex = 0;
    let p = w.plan(&Allocation::default());
    for name in ["wan1", "wan2"] {
        let t = p.wan(name).unwrap().table;
        assert!(
            !p.objects.routes.iter().any(|r| r.table == t),
            "{name} has routes"
        );
    }
}

proptest! {
    #[test]
    fn health_changes_touch_only_affected_policies(
        usable in proptest::collection::vec(any::<bool>(), 3),
        flip in 0usize..3,
        weights in proptest::collection::vec(1u32..=1000, 3),
        extra_policies in proptest::collection::vec(proptest::collection::vec(0usize..3, 1..3), 0..4),
    ) {
        let mut w = World::new();
        for (m, weight) in w.config.members.iter_mut().zip(&weights) {
            m.weight = *weight;
        }
        for (i, members) in extra_policies.iter().enumerate() {
            let names = ["w1", "w2", "w16"];
            w.config.policies.push(Policy {
                name: format!("extra{i}"),
                use_member: members.iter().map(|m| names[*m].to_string()).collect(),
                last_resort: LastResort::Blackhole,
                mode: PolicyMode::Tiers,
                ceilings: Default::default(),
            });
        }
        for (wan, u) in w.wans.iter_mut().zip(&usable) {
            wan.usable = *u;
        }
        let before = w.plan(&Allocation::default());
        prop_assert!(diff(&before.objects, &before.objects).is_empty());
        w.wans[flip].usable = !w.wans[flip].usable;
        let flipped = w.wans[flip].interface.clone();
        let after = w.plan(&before.allocation);
        prop_assert_eq!(&after.allocation, &before.allocation);
        let member = w.config.members.iter().find(|m| m.interface == flipped).unwrap().name.clone();
        let affected: Vec<u32> = w
            .config
            .policies
            .iter()
            .filter(|p| p.use_member.contains(&member))
            .map(|p| after.policy_tables[&p.name])
            .collect();
        let pin = after.wan(&flipped).unwrap().pin_mark;
        let ops = diff(&after.objects, &before.objects);
        prop_assert!(!ops.is_empty());
        for op in &ops {
            match op {
                Op::AddRoute(r) => prop_assert!(affected.contains(&r.table), "{}", op),
                Op::AddRule(r) | Op::DelRule(r) => prop_assert_eq!(r.fwmark, Some((pin, 0x3F00))),
                Op::DelRoute(_) => prop_assert!(false, "route deleted: {}", op),
            }
        }
        // Applying the ops to `before` yields `after`.
        prop_assert!(diff(&after.objects, &apply(&before.objects, &ops)).is_empty());
    }
}

/// What the kernel would hold after `ops` (REPLACE semantics for routes).
fn apply(objects: &KernelObjects, ops: &[Op]) -> KernelObjects {
    let mut routes = objects.routes.clone();
    let mut rules = objects.rules.clone();
    for op in ops {
        match op {
            Op::AddRoute(r) => {
                routes.retain(|o| o.key() != r.key());
                routes.push(r.clone());
            }
            Op::DelRoute(r) => routes.retain(|o| o.key() != r.key()),
            Op::AddRule(r) => rules.push(r.clone()),
            Op::DelRule(r) => rules.retain(|o| o != r),
        }
    }
    KernelObjects::sorted(routes, rules)
}

proptest! {
    #[test]
    fn scaled_weights_fit_the_kernel_and_keep_ratios(
        weights in proptest::collection::vec(1u32..=1000, 1..8),
    ) {
        let scaled = scale_weights(&weights);
        prop_assert_eq!(scaled.len(), weights.len());
        prop_assert!(scaled.iter().all(|w| (1..=KERNEL_MAX_WEIGHT).contains(w)));
        let max_in = *weights.iter().max().unwrap() as f64;
        let max_out = *scaled.iter().max().unwrap() as f64;
        for (w, s) in weights.iter().zip(&scaled) {
            let want = *w as f64 / max_in;
            let got = *s as f64 / max_out;
            // Exact when the reduced weights fit; otherwise half a step in
            // 256, or the floor of 1 for members below one step.
            prop_assert!(
                (got - want).abs() <= 0.5 / 256.0 + 1e-9 || *s == 1,
                "{:?} -> {:?}", weights, scaled
            );
        }
    }
}

fn arb_route() -> impl Strategy<Value = Route> {
    (0u32..3, 0u8..3, 0u32..2, 0u8..4, 1u32..4).prop_map(|(table, dst, metric, kind, weight)| {
        Route {
            family: Family::Ipv4,
            table: 1000 + table,
            dst: net(
                &format!("198.51.100.{}", dst * 64),
                if dst == 0 { 0 } else { 26 },
            ),
            metric,
            kind: match kind {
                0 => RouteKind::Unreachable,
                1 => RouteKind::Blackhole,
                2 => RouteKind::Unicast(vec![Nexthop {
                    ifindex: 3,
                    gateway: None,
                    weight: 1,
                }]),
                _ => RouteKind::Unicast(vec![
                    Nexthop {
                        ifindex: 3,
                        gateway: Some("192.0.2.1".parse().unwrap()),
                        weight,
                    },
                    Nexthop {
                        ifindex: 4,
                        gateway: Some("192.0.2.5".parse().unwrap()),
                        weight: 1,
                    },
                ]),
            },
            prefsrc: None,
            scope_link: kind == 2,
        }
    })
}

fn arb_rule() -> impl Strategy<Value = FibRule> {
    (0u32..4, 0u32..3, any::<bool>()).prop_map(|(prio, mark, v6)| {
        let family = if v6 { Family::Ipv6 } else { Family::Ipv4 };
        let mut r = FibRule::new(
            family,
            1000 + prio,
            RuleAction::Lookup {
                table: 1000 + mark,
                suppress_prefixlen: None,
            },
        );
        if mark > 0 {
            r.fwmark = Some((mark << 8, 0x3F00));
        }
        r
    })
}

proptest! {
    #[test]
    fn diff_reaches_the_desired_state_and_leaves_equal_objects_alone(
        desired_routes in proptest::collection::vec(arb_route(), 0..6),
        observed_routes in proptest::collection::vec(arb_route(), 0..6),
        desired_rules in proptest::collection::vec(arb_rule(), 0..6),
        observed_rules in proptest::collection::vec(arb_rule(), 0..6),
    ) {
        let desired = KernelObjects::sorted(desired_routes, desired_rules);
        let observed = KernelObjects::sorted(observed_routes, observed_rules);
        let ops = diff(&desired, &observed);
        prop_assert_eq!(apply(&observed, &ops), desired.clone());
        for op in &ops {
            match op {
                Op::AddRoute(r) => prop_assert!(!observed.routes.contains(r), "{} already there", op),
                Op::AddRule(r) => prop_assert!(!observed.rules.contains(r), "{} already there", op),
                Op::DelRoute(r) => prop_assert!(!desired.routes.iter().any(|d| d.key() == r.key()), "{}", op),
                Op::DelRule(r) => prop_assert!(!desired.rules.contains(r), "{}", op),
            }
        }
    }
}

/// mwan3's `rt_table_lookup`: each listed table is consulted like main
/// (without its default routes), after main and above pins and policies,
/// in both families.
#[test]
fn rt_table_lookup_tables_come_right_after_main() {
    let mut w = World::new();
    w.config.globals.rt_table_lookup = vec![100, 200];
    let p = w.plan(&Allocation::default());
    let texts: Vec<String> = p.objects.rules.iter().map(|r| r.to_string()).collect();
    for family in ["-4", "-6"] {
        for (pref, table) in [(1301, 100), (1302, 200)] {
            let want = format!("{family} pref {pref} lookup {table} suppress_prefixlength 0");
            assert!(texts.contains(&want), "missing {want:?} in {texts:#?}");
        }
    }
    let lookup_prefs: Vec<u32> = p
        .objects
        .rules
        .iter()
        .filter(|r| {
            matches!(r.action, RuleAction::Lookup { table, suppress_prefixlen: Some(0) } if table != MAIN_TABLE)
        })
        .map(|r| r.priority)
        .collect();
    let pins: Vec<&FibRule> = p
        .objects
        .rules
        .iter()
        .filter(|r| {
            r.fwmark
                .is_some_and(|(m, _)| p.wans.iter().any(|w| w.pin_mark == m))
        })
        .collect();
    assert!(!pins.is_empty(), "no pin rules planned");
    for pin in pins {
        assert!(lookup_prefs.iter().all(|l| *l < pin.priority), "{pin}");
    }
}

/// The kernel refuses FIB port ranges ending at 65535 (EINVAL "Invalid
/// sport range"), which mwan3 configs write as `1024:65535`: such a rule is
/// steered by an nft mark; a range covering every port needs no port match.
#[test]
fn port_ranges_the_kernel_refuses_go_to_nft_and_all_ports_is_no_match() {
    let mut w = World::new();
    let ports = |first, last| vec![PortRange { first, last }];
    let mut high = rule("high", "balanced");
    high.proto = Proto::Tcp;
    high.src_port = ports(1024, 65535);
    let mut any = rule("any", "balanced");
    any.proto = Proto::Udp;
    any.dest_port = ports(1, 65535);
    let mut ok = rule("ok", "balanced");
    ok.proto = Proto::Tcp;
    ok.dest_port = ports(1024, 65534);
    w.config.rules = vec![high, any, ok];
    let p = w.plan(&Allocation::default());
    let Steering::NftMark { reasons, .. } = &p.rules[0].steering else {
        panic!("1024:65535 as a FIB rule: {:?}", p.rules[0].steering)
    };
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("65535"), "{reasons:?}");
    assert_eq!(p.rules[1].steering, Steering::Fib);
    assert_eq!(p.rules[2].steering, Steering::Fib);
    let config_rules: Vec<&FibRule> = p
        .objects
        .rules
        .iter()
        .filter(|r| r.priority >= DEFAULT_RULE_BASE + prio::RULES)
        .collect();
    assert!(config_rules
        .iter()
        .all(|r| r.sport.is_none_or(|s| s.last < 65535) && r.dport.is_none_or(|d| d.last < 65535)));
    assert!(config_rules
        .iter()
        .any(|r| r.priority == DEFAULT_RULE_BASE + prio::RULES + 1
            && r.ipproto == Some(17)
            && r.dport.is_none()));
}
