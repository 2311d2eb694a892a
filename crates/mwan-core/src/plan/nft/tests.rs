use super::expand::rule_families;
use super::*;
use crate::config::{parse, Proto, Rule, RuleFamily};
use crate::plan::{
    build as build_plan, family_of, Allocation, PlanInput, PlanSettings, PolicyRoutes, TargetKey,
    WanAddress, WanFacts, WanInput,
};
use std::collections::BTreeMap;
use std::net::IpAddr;

const CONFIG: &str = "
config globals 'globals'
	option mmx_mask '0x3F00'
config interface 'wan1'
	option enabled '1'
config interface 'wan2'
	option enabled '1'
config interface 'wan6'
	option enabled '1'
	option family 'ipv6'
config member 'm1'
	option interface 'wan1'
	option weight '3'
config member 'm2'
	option interface 'wan2'
	option weight '1'
config member 'm6'
	option interface 'wan6'
config policy 'balanced'
	list use_member 'm1'
	list use_member 'm2'
	list use_member 'm6'
config policy 'only2'
	list use_member 'm2'
config rule 'sticky_https'
	option proto 'tcp'
	option dest_port '443'
	option sticky '1'
	option timeout '300'
	option use_policy 'balanced'
config rule 'video'
	option ipset 'video'
	option use_policy 'only2'
config rule 'ports'
	option src_ip '192.168.1.0/24'
	option proto 'udp'
	option dest_port '5000:5010,6000'
	option use_policy 'only2'
config rule 'default_rule'
	option dest_ip '0.0.0.0/0'
	option use_policy 'balanced'
";

fn wan(name: &str, family: Family, dev: &str, index: u32) -> WanInput {
    WanInput {
        interface: name.into(),
        family,
        facts: WanFacts {
            device: dev.into(),
            ifindex: index,
            up: true,
            carrier: true,
            addresses: vec![WanAddress {
                addr: format!("192.0.2.{index}").parse().unwrap(),
                prefix_len: 24,
                tentative: false,
            }],
            gateway_v4: Some("192.0.2.254".parse().unwrap()),
            gateway_v6: None,
            main_routes: vec![],
        },
        usable: true,
    }
}

pub(super) fn fixture() -> (Config, NetworkPlan) {
    let config = parse("test", CONFIG).expect("config parses").config;
    let wans = vec![
        wan("wan1", Family::Ipv4, "eth1", 11),
        wan("wan2", Family::Ipv4, "eth2", 12),
        wan("wan6", Family::Ipv6, "eth1", 11),
    ];
    let policies: Vec<PolicyRoutes> = config
        .policies
        .iter()
        .map(|p| PolicyRoutes {
            policy: p.name.clone(),
            active: vec![],
            last_resort: p.last_resort,
        })
        .collect();
    let devices = BTreeMap::new();
    let plan = build_plan(&PlanInput {
        config: &config,
        settings: PlanSettings::from_config(&config),
        wans: &wans,
        policies: &policies,
        devices: &devices,
        main_defaults: &[],
        previous: &Allocation::default(),
    })
    .expect("plan builds");
    (config, plan)
}

fn table() -> (NetworkPlan, NftTable) {
    let (config, plan) = fixture();
    let t = build(&plan, &config, &BTreeMap::new()).expect("table builds");
    (plan, t)
}

#[test]
fn every_mark_write_keeps_bits_outside_the_mask() {
    let (plan, t) = table();
    let mask = plan.layout.mask;
    for c in &t.chains {
        for r in &c.rules {
            for a in &r.actions {
                if let Action::SetMetaMark { keep, value } | Action::SetCtMark { keep, value } = a {
                    assert_eq!(*keep, !mask, "{r}");
                    assert_eq!(value & !mask, 0, "{r}");
                    assert_ne!(*value, 0, "{r}");
                }
            }
        }
    }
}

#[test]
fn pins_restore_and_save_for_every_wan() {
    let (plan, t) = table();
    let pre = t.chain(CHAIN_PREROUTING).unwrap();
    let out = t.chain(CHAIN_OUTPUT).unwrap();
    assert_eq!(out.base.unwrap().kind, ChainKind::Route);
    assert_eq!(pre.rules[0].to_string(), "meta mark & 0x3f00 != 0x0 return");
    for w in &plan.wans {
        let restore = format!(
            "ct mark & 0x3f00 == {:#x} meta mark set meta mark & 0xffffc0ff | {:#x} return",
            w.pin_mark, w.pin_mark
        );
        assert!(pre.rules.iter().any(|r| r.to_string() == restore));
        assert!(out.rules.iter().any(|r| r.to_string() == restore));
        let nfproto = if w.family == Family::Ipv4 {
            "ipv4"
        } else {
            "ipv6"
        };
        let inbound = format!(
            "meta nfproto {nfproto} iifname \"{}\" ct mark set",
            w.device
        );
        assert!(pre
            .rules
            .iter()
            .any(|r| r.to_string().starts_with(&inbound)));
        let post = t.chain(CHAIN_POSTROUTING).unwrap();
        let save = format!(
            "meta nfproto {nfproto} oifname \"{}\" ct mark & 0x3f00 == 0x0 ct mark set ct mark & 0xffffc0ff | {:#x} return",
            w.device, w.pin_mark
        );
        assert!(post.rules.iter().any(|r| r.to_string() == save), "{save}");
    }
    // Restores come before the inbound pin, which comes before the walk.
    assert_eq!(
        pre.rules.last().unwrap().verdict,
        Some(Verdict::Jump(CHAIN_RULES.into()))
    );
}

#[test]
fn rules_walk_in_config_order_and_fib_rules_end_it_unmarked() {
    let (plan, t) = table();
    let rules = t.chain(CHAIN_RULES).unwrap();
    let text: Vec<String> = rules.rules.iter().map(|r| r.to_string()).collect();
    let only2 = plan.target_marks[&TargetKey::Policy("only2".into())];
    // sticky_https: tcp 443, both families, goto its sticky chain.
    assert_eq!(
        text[0],
        "meta nfproto ipv4 meta l4proto 6 th dport 443 goto sticky_r0"
    );
    assert_eq!(
        text[1],
        "meta nfproto ipv6 meta l4proto 6 th dport 443 goto sticky_r0"
    );
    // video: per family set, marked for only2.
    assert_eq!(
        text[2],
        format!("meta nfproto ipv4 ip daddr @video meta mark set meta mark & 0xffffc0ff | {only2:#x} return")
    );
    assert!(text[3].starts_with("meta nfproto ipv6 ip6 daddr @video_v6 "));
    // ports: FIB-steered, one nft rule per (proto, port) ending the walk.
    let ports: Vec<&String> = text
        .iter()
        .filter(|t| t.contains("ip saddr 192.168.1.0/24"))
        .collect();
    assert_eq!(ports.len(), 2, "{ports:?}");
    assert!(ports
        .iter()
        .all(|t| t.ends_with(" return") && !t.contains("mark set")));
    assert!(text.contains(
        &"meta nfproto ipv4 ip saddr 192.168.1.0/24 meta l4proto 17 th dport 5000-5010 return"
            .to_string()
    ));
    // default_rule: 0.0.0.0/0 means every IPv4 packet.
    assert_eq!(text.last().unwrap(), "meta nfproto ipv4 return");
}

#[test]
fn sticky_sets_per_member_wan_and_chain_checks_them_first() {
    let (plan, t) = table();
    let names: Vec<&str> = t.sets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "sticky_balanced_wan1",
            "sticky_balanced_wan2",
            "sticky_balanced_wan6",
            "video",
            "video_v6"
        ]
    );
    assert_eq!(t.set("sticky_balanced_wan6").unwrap().family, Family::Ipv6);
    assert_eq!(
        t.set("sticky_balanced_wan1").unwrap().kind,
        SetKind::Sticky { timeout_s: 300 }
    );
    assert_eq!(t.sticky_sets_of("wan1"), ["sticky_balanced_wan1"]);
    let chain = t.chain("sticky_r0").unwrap();
    let wan1 = plan.wan("wan1").unwrap().pin_mark;
    let balanced = plan.target_marks[&TargetKey::Policy("balanced".into())];
    assert_eq!(
        chain.rules[0].to_string(),
        format!("meta nfproto ipv4 ip saddr @sticky_balanced_wan1 update @sticky_balanced_wan1 {{ ip saddr }} meta mark set meta mark & 0xffffc0ff | {wan1:#x} return")
    );
    assert_eq!(
        chain.rules.last().unwrap().to_string(),
        format!("meta mark set meta mark & 0xffffc0ff | {balanced:#x} ct mark set ct mark & 0xffffc0ff | {balanced:#x}")
    );
    // postrouting records the choice before the plain pin.
    let post = t.chain(CHAIN_POSTROUTING).unwrap();
    assert_eq!(
        post.rules[0].to_string(),
        format!("ct mark & 0x3f00 == {balanced:#x} meta nfproto ipv4 oifname \"eth1\" update @sticky_balanced_wan1 {{ ip saddr }} ct mark set ct mark & 0xffffc0ff | {wan1:#x} return")
    );
}

#[test]
fn a_wan_without_device_gets_no_device_rules() {
    let (config, mut plan) = fixture();
    plan.wans[1].device.clear();
    let t = build(&plan, &config, &BTreeMap::new()).unwrap();
    let text = t.to_string();
    assert!(!text.contains("ifname \"\""), "{text}");
    let restore = format!("ct mark & 0x3f00 == {:#x}", plan.wans[1].pin_mark);
    assert!(text.contains(&restore), "restore rule kept");
}

/// Failovers never replace the table: health changes the routes and
/// pin rules of the plan, not one byte of the nft table.
#[test]
fn health_changes_leave_the_table_unchanged() {
    let config = parse("test", CONFIG).expect("config parses").config;
    let tables: Vec<NftTable> = [[true, true], [false, true], [true, false]]
        .iter()
        .map(|usable| {
            let mut wans = vec![
                wan("wan1", Family::Ipv4, "eth1", 11),
                wan("wan2", Family::Ipv4, "eth2", 12),
                wan("wan6", Family::Ipv6, "eth1", 11),
            ];
            wans[0].usable = usable[0];
            wans[1].usable = usable[1];
            let policies = PolicyRoutes::all_members(&config, |i| {
                wans.iter().any(|w| w.interface == i && w.usable)
            });
            let plan = build_plan(&PlanInput {
                config: &config,
                settings: PlanSettings::from_config(&config),
                wans: &wans,
                policies: &policies,
                devices: &BTreeMap::new(),
                main_defaults: &[],
                previous: &Allocation::default(),
            })
            .expect("plan builds");
            build(&plan, &config, &BTreeMap::new()).expect("table builds")
        })
        .collect();
    assert_eq!(tables[0], tables[1]);
    assert_eq!(tables[0], tables[2]);
}

#[test]
fn same_plan_same_table_and_names_are_checked() {
    let (config, plan) = fixture();
    let a = build(&plan, &config, &BTreeMap::new()).unwrap();
    let b = build(&plan, &config, &BTreeMap::new()).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.to_string(), b.to_string());
    assert_eq!(log_prefix("r1"), "mwan(r1) ");
    let long = log_prefix(&"é".repeat(100));
    assert!(
        long.len() <= MAX_LOG_PREFIX && long.ends_with(") "),
        "{long}"
    );
    assert!(matches!(
        check_name(&"x".repeat(300), "set"),
        Err(NftPlanError::NameTooLong { .. })
    ));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn net() -> impl Strategy<Value = IpNet> {
        prop_oneof![
            (any::<u32>(), 0u8..=32).prop_map(|(a, l)| IpNet {
                addr: IpAddr::V4(a.into()),
                prefix_len: l
            }),
            (any::<u128>(), 0u8..=128).prop_map(|(a, l)| IpNet {
                addr: IpAddr::V6(a.into()),
                prefix_len: l
            }),
        ]
    }

    fn ports() -> impl Strategy<Value = Vec<PortRange>> {
        prop::collection::vec(
            (1u16..=65535, 0u16..100).prop_map(|(f, d)| PortRange {
                first: f,
                last: f.saturating_add(d),
            }),
            0..3,
        )
    }

    fn proto() -> impl Strategy<Value = Proto> {
        prop_oneof![
            Just(Proto::All),
            Just(Proto::Tcp),
            Just(Proto::Udp),
            Just(Proto::Icmp),
            (0u8..=255).prop_map(Proto::Number),
        ]
    }

    fn a_rule() -> impl Strategy<Value = Rule> {
        (
            prop::collection::vec(net(), 0..3),
            prop::collection::vec(net(), 0..3),
            proto(),
            ports(),
            ports(),
            prop_oneof![
                Just(RuleFamily::Any),
                Just(RuleFamily::Ipv4),
                Just(RuleFamily::Ipv6)
            ],
        )
            .prop_map(|(src, dst, proto, sp, dp, family)| {
                let mut r = Rule::new("r", crate::config::PolicyTarget::Default);
                r.src_ip = src;
                r.dest_ip = dst;
                r.proto = proto;
                r.src_port = sp;
                r.dest_port = dp;
                r.family = family;
                r
            })
    }

    proptest! {
        /// Every alternative is well formed: family first, addresses of
        /// that family, ports only after a transport protocol, and the
        /// count is the cross product of the rule's lists.
        #[test]
        fn expansion_is_well_formed(r in a_rule()) {
            let alternatives = expand(&r, &BTreeMap::new());
            let mut expected = 0usize;
            for family in rule_families(&r) {
                let of = |l: &[IpNet]| {
                    let n = l.iter().filter(|n| family_of(n.addr) == family).count();
                    if l.is_empty() { 1 } else { n }
                };
                let protos = if r.proto == Proto::All
                    && (!r.src_port.is_empty() || !r.dest_port.is_empty())
                {
                    2
                } else {
                    1
                };
                expected += of(&r.src_ip)
                    * of(&r.dest_ip)
                    * protos
                    * r.src_port.len().max(1)
                    * r.dest_port.len().max(1);
            }
            prop_assert_eq!(alternatives.len(), expected);
            for m in &alternatives {
                let Some(Match::NfProto(family)) = m.first() else {
                    return Err(TestCaseError::fail(format!("no family first: {m:?}")));
                };
                let mut l4 = false;
                for x in m {
                    match x {
                        Match::Prefix { net, .. } => {
                            prop_assert_eq!(family_of(net.addr), *family);
                            prop_assert!(net.prefix_len > 0);
                        }
                        Match::L4Proto(_) => l4 = true,
                        Match::Port { .. } => prop_assert!(l4, "port before protocol: {:?}", m),
                        _ => {}
                    }
                }
            }
        }

        /// Whatever the mask (at least 2 bits), the built table only
        /// ever writes bits inside it and keeps the others.
        #[test]
        fn marks_stay_inside_any_mask(mask in any::<u32>().prop_filter("2+ bits", |m| m.count_ones() >= 2)) {
            let (mut config, _) = fixture();
            config.globals.mmx_mask = mask;
            let wans = vec![
                wan("wan1", Family::Ipv4, "eth1", 11),
                wan("wan2", Family::Ipv4, "eth2", 12),
                wan("wan6", Family::Ipv6, "eth1", 11),
            ];
            let Ok(plan) = build_plan(&PlanInput {
                config: &config,
                settings: PlanSettings::from_config(&config),
                wans: &wans,
                policies: &[],
                devices: &BTreeMap::new(),
                main_defaults: &[],
                previous: &Allocation::default(),
            }) else {
                // Too few mark values for this config: a config error.
                return Ok(());
            };
            let t = build(&plan, &config, &BTreeMap::new()).unwrap();
            for c in &t.chains {
                for r in &c.rules {
                    for a in &r.actions {
                        if let Action::SetMetaMark { keep, value } | Action::SetCtMark { keep, value } = a {
                            prop_assert_eq!(*keep, !mask);
                            prop_assert_eq!(value & !mask, 0);
                        }
                    }
                    for m in &r.matches {
                        if let Match::MetaMark { mask: k, value, .. } | Match::CtMark { mask: k, value, .. } = m {
                            prop_assert_eq!(*k, mask);
                            prop_assert_eq!(value & !mask, 0);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn masked_addresses_and_src_iface() {
    let mut r = Rule::new("odd", crate::config::PolicyTarget::Default);
    r.src_ip_masked = vec![MaskedIp {
        addr: "0.0.0.1".parse().unwrap(),
        mask: "0.0.0.1".parse().unwrap(),
    }];
    r.src_iface = Some("lan".into());
    let devices = BTreeMap::from([("lan".to_string(), "br-lan".to_string())]);
    let m = expand(&r, &devices);
    assert_eq!(m.len(), 1, "IPv4 only: the masked address is IPv4");
    let text = m[0]
        .iter()
        .map(|m| m.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(
        text,
        "meta nfproto ipv4 ip saddr & 0.0.0.1 == 0.0.0.1 iifname \"br-lan\""
    );
}
