//! Plans applied to a real kernel in a throwaway namespace, read back with
//! our dumps and with `ip -j`, failover, reconcile after a link goes down,
//! adoption of a crashed run's leftovers, and a clean stop.

mod common;

use std::collections::BTreeMap;

use common::{require_netns, Netns};
use mwan_core::config::{
    Config, Family, Interface, Member, Policy, PolicyTarget, PortRange, Proto, Rule,
};
use mwan_core::plan::{
    build, diff, Allocation, NetworkPlan, Nexthop, Op, PlanInput, PlanSettings, PolicyRoutes,
    Route, RouteKind, WanInput, DEFAULT_PROTOCOL,
};
use mwan_netlink::{in_netns, link::Snapshot, sysctl, Event, Events, Rtnl};

fn config() -> Config {
    let mut c = Config {
        source: "apply-test".into(),
        globals: Default::default(),
        interfaces: vec![],
        members: vec![],
        policies: vec![],
        rules: vec![],
    };
    for (name, family) in [
        ("wan1", Family::Ipv4),
        ("wan2", Family::Ipv4),
        ("wan1_6", Family::Ipv6),
        ("wan2_6", Family::Ipv6),
    ] {
        c.interfaces.push(Interface {
            enabled: true,
            family,
            ..Interface::new(name)
        });
    }
    for (m, i, w) in [
        ("m1", "wan1", 3),
        ("m2", "wan2", 1),
        ("m16", "wan1_6", 3),
        ("m26", "wan2_6", 1),
    ] {
        c.members.push(Member {
            weight: w,
            ..Member::new(m, i)
        });
    }
    let mut balanced = Policy::new("balanced");
    balanced.use_member = vec!["m1".into(), "m2".into(), "m16".into(), "m26".into()];
    let mut only2 = Policy::new("wan2_only");
    only2.use_member = vec!["m2".into(), "m26".into()];
    c.policies = vec![balanced, only2];
    let mut https = Rule::new("https", PolicyTarget::Named("wan2_only".into()));
    https.proto = Proto::Tcp;
    https.dest_port = vec![PortRange {
        first: 443,
        last: 443,
    }];
    let mut sticky = Rule::new("sticky", PolicyTarget::Named("balanced".into()));
    sticky.sticky = true;
    c.rules = vec![
        https,
        sticky,
        Rule::new("default_rule", PolicyTarget::Named("balanced".into())),
    ];
    c
}

struct World {
    config: Config,
    usable: BTreeMap<String, bool>,
}

impl World {
    fn new() -> Self {
        let config = config();
        let usable = config
            .interfaces
            .iter()
            .map(|i| (i.name.clone(), true))
            .collect();
        World { config, usable }
    }

    fn plan(&self, snap: &Snapshot, previous: &Allocation) -> NetworkPlan {
        let devices = [("wan1", "d0", "192.0.2.1"), ("wan2", "d1", "198.51.100.1")];
        let mut wans = Vec::new();
        for (name, dev, gw) in devices {
            let mut facts = snap.wan_facts(dev);
            facts.gateway_v4 = Some(gw.parse().unwrap());
            wans.push(WanInput {
                interface: name.into(),
                family: Family::Ipv4,
                facts: facts.clone(),
                usable: self.usable[name],
            });
            facts.gateway_v6 = Some("fe80::1".parse().unwrap());
            let name6 = format!("{name}_6");
            wans.push(WanInput {
                usable: self.usable[&name6],
                interface: name6,
                family: Family::Ipv6,
                facts,
            });
        }
        let decisions = PolicyRoutes::all_members(&self.config, |i| self.usable[i]);
        build(&PlanInput {
            config: &self.config,
            settings: PlanSettings::from_config(&self.config),
            wans: &wans,
            policies: &decisions,
            devices: &BTreeMap::new(),
            main_defaults: &[],
            previous,
        })
        .expect("plan")
    }
}

/// Everything `stop` must leave as it found.
fn kernel_state(ns: &Netns) -> String {
    let mut s = String::new();
    for args in [
        "-4 rule",
        "-6 rule",
        "-4 route show table all",
        "-6 route show table all",
    ] {
        s += &ns.ip(args);
    }
    for path in [
        sysctl::HASH_POLICY_V4,
        sysctl::HASH_POLICY_V6,
        sysctl::SRC_VALID_MARK,
    ] {
        s += &String::from_utf8_lossy(&ns.exec(&["cat", path]).stdout);
    }
    s
}

fn apply_all(rtnl: &mut Rtnl, ops: &[Op]) {
    let report = rtnl.apply(ops).expect("netlink works");
    assert!(
        report.failed.is_empty(),
        "kernel refused: {:#?}",
        report.failed
    );
}

#[test]
fn plan_applies_reads_back_fails_over_and_stops_without_trace() {
    if !require_netns() {
        return;
    }
    let ns = Netns::new("ap").with_two_links();
    let before = kernel_state(&ns);
    let mut world = World::new();
    let (plan, balanced) = in_netns(&ns.name, || {
        let mut rtnl = Rtnl::open(DEFAULT_PROTOCOL).unwrap();
        let mut saved = sysctl::Saved::default();
        saved.apply_dataplane_defaults().unwrap();
        assert_eq!(sysctl::read(sysctl::HASH_POLICY_V4).unwrap(), "1");
        let snap = Snapshot::take(rtnl.socket(), DEFAULT_PROTOCOL).unwrap();
        let plan = world.plan(&snap, &Allocation::default());
        assert!(rtnl.observe().unwrap().routes.is_empty());
        let observed = rtnl.observe().unwrap();
        apply_all(&mut rtnl, &diff(&plan.objects, &observed));
        // Our dump parses back into exactly the plan.
        let observed = rtnl.observe().unwrap();
        assert_eq!(
            diff(&plan.objects, &observed),
            vec![],
            "observed {observed:#?}"
        );
        let balanced = plan.policy_tables["balanced"];
        let shown = ns.ip(&format!("-j route show table {balanced}"));
        assert!(
            shown.contains("\"weight\":3") && shown.contains("\"weight\":1"),
            "{shown}"
        );
        let rules = ns.ip("rule");
        assert!(
            rules.contains("fwmark 0x100/0x3f00 lookup 1002 proto 77"),
            "{rules}"
        );
        assert!(
            rules.contains("lookup main suppress_prefixlength 0 proto 77"),
            "{rules}"
        );
        assert!(rules.contains("ipproto tcp dport 443 lookup"), "{rules}");
        let rules6 = ns.ip("-6 rule");
        assert!(
            rules6.contains("lookup main suppress_prefixlength 0 proto 77"),
            "{rules6}"
        );

        // wan2 fails: a handful of messages, only its policies and its pin rule.
        world.usable.insert("wan2".into(), false);
        let after = world.plan(&snap, &plan.allocation);
        let ops = diff(&after.objects, &observed);
        assert_eq!(ops.len(), 3, "{ops:#?}");
        apply_all(&mut rtnl, &ops);
        let shown = ns.ip(&format!("-4 route show table {balanced}"));
        assert!(
            shown.contains("via 192.0.2.1 dev d0") && !shown.contains("d1"),
            "{shown}"
        );
        let w2 = ns.ip(&format!(
            "-4 route show table {}",
            after.policy_tables["wan2_only"]
        ));
        assert!(w2.starts_with("unreachable default"), "{w2}");
        assert_eq!(diff(&after.objects, &rtnl.observe().unwrap()), vec![]);

        let report = rtnl.teardown().unwrap();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        saved.restore().unwrap();
        (plan, balanced)
    })
    .unwrap();
    assert!(
        plan.objects.rules.len() > 10,
        "plan too small to mean anything"
    );
    assert!(balanced > 0);
    assert_eq!(kernel_state(&ns), before, "stop left a trace");
}

#[test]
fn leftovers_are_adopted_and_link_loss_is_reconciled() {
    if !require_netns() {
        return;
    }
    let ns = Netns::new("ad").with_two_links();
    let world = World::new();
    in_netns(&ns.name, || {
        let mut rtnl = Rtnl::open(DEFAULT_PROTOCOL).unwrap();
        let snap = Snapshot::take(rtnl.socket(), DEFAULT_PROTOCOL).unwrap();
        let plan = world.plan(&snap, &Allocation::default());
        let observed = rtnl.observe().unwrap();
        apply_all(&mut rtnl, &diff(&plan.objects, &observed));
    })
    .unwrap();
    // The "crashed" run also left objects the new plan does not have, and an
    // admin added a rule of their own.
    ns.ip("rule add pref 1999 fwmark 0x3f00/0x3f00 lookup 1050 proto 77");
    ns.ip("route add default via 192.0.2.1 dev d0 table 1050 proto 77");
    ns.ip("rule add pref 1500 lookup 100");
    in_netns(&ns.name, || {
        let mut events = Events::subscribe(DEFAULT_PROTOCOL).unwrap();
        let mut rtnl = Rtnl::open(DEFAULT_PROTOCOL).unwrap();
        let snap = Snapshot::take(rtnl.socket(), DEFAULT_PROTOCOL).unwrap();
        let plan = world.plan(&snap, &Allocation::default());
        let ops = diff(&plan.objects, &rtnl.observe().unwrap());
        // Adopted: nothing of the plan is rewritten, only the stale pair goes.
        assert_eq!(ops.len(), 2, "{ops:#?}");
        assert!(matches!(&ops[0], Op::DelRule(r) if r.priority == 1999));
        assert!(matches!(&ops[1], Op::DelRoute(r) if r.table == 1050));
        apply_all(&mut rtnl, &ops);

        // d1 loses its link: the kernel silently drops IPv4 routes through it.
        common::run(&["ip", "link", "set", "d1", "down"]);
        let mut seen = Vec::new();
        for _ in 0..50 {
            seen.extend(events.read().unwrap());
            if seen
                .iter()
                .any(|e| matches!(e, Event::Link { link, .. } if link.name == "d1" && !link.up))
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(
            seen.iter()
                .any(|e| matches!(e, Event::Link { link, .. } if link.name == "d1" && !link.up)),
            "no link event: {seen:?}"
        );
        let snap = Snapshot::take(rtnl.socket(), DEFAULT_PROTOCOL).unwrap();
        assert!(!snap.wan_facts("d1").up);
        let replan = world.plan(&snap, &plan.allocation);
        let tables: Vec<u32> = replan.owned_tables().into_iter().collect();
        let observed = rtnl.observe_tables(Some(&tables)).unwrap();
        apply_all(&mut rtnl, &diff(&replan.objects, &observed));
        assert_eq!(diff(&replan.objects, &rtnl.observe().unwrap()), vec![]);
        let balanced = ns_route(&ns, replan.policy_tables["balanced"]);
        assert!(!balanced.contains("d1"), "{balanced}");
        rtnl.teardown().unwrap();
    })
    .unwrap();
    let rules = ns.ip("rule");
    assert!(
        rules.contains("1500:\tfrom all lookup 100"),
        "admin rule removed: {rules}"
    );
    assert!(!rules.contains("proto 77"), "{rules}");
}

fn world_with_wan2_down(world: &World) -> World {
    let mut usable = world.usable.clone();
    usable.insert("wan2".into(), false);
    World {
        config: world.config.clone(),
        usable,
    }
}

fn ns_route(ns: &Netns, table: u32) -> String {
    ns.ip(&format!("-4 route show table {table}"))
}

#[test]
fn kernel_errors_name_the_object_and_do_not_stop_the_batch() {
    if !require_netns() {
        return;
    }
    let ns = Netns::new("er").with_two_links();
    let d0 = ns.ifindex("d0");
    in_netns(&ns.name, || {
        let mut rtnl = Rtnl::open(DEFAULT_PROTOCOL).unwrap();
        let route = |table: u32, ifindex: u32| Route {
            family: Family::Ipv4,
            table,
            dst: mwan_core::plan::default_net(Family::Ipv4),
            metric: 0,
            kind: RouteKind::Unicast(vec![Nexthop {
                ifindex,
                gateway: Some("192.0.2.1".parse().unwrap()),
                weight: 1,
            }]),
            prefsrc: None,
            scope_link: false,
        };
        let bad = route(1100, 9999);
        let good = route(1101, d0);
        let report = rtnl
            .apply(&[
                Op::AddRoute(bad),
                Op::AddRoute(good.clone()),
                Op::DelRoute(route(1102, d0)),
            ])
            .unwrap();
        assert_eq!(report.applied, 2, "good add and tolerated delete");
        assert_eq!(report.failed.len(), 1);
        let msg = report.failed[0].to_string();
        assert!(
            msg.contains("table 1100") && msg.contains("errno 101"),
            "{msg}"
        );
        assert!(
            msg.contains("kernel says: Nexthop has invalid gateway"),
            "{msg}"
        );
        assert_eq!(rtnl.observe().unwrap().routes, vec![good]);
        rtnl.teardown().unwrap();
    })
    .unwrap();
}

#[test]
fn objects_deleted_by_someone_else_are_announced_and_restored() {
    if !require_netns() {
        return;
    }
    let ns = Netns::new("rs").with_two_links();
    // An address still in duplicate address detection (no nodad).
    ns.ip("-6 addr add 2001:db8:7::2/64 dev d1");
    let world = World::new();
    in_netns(&ns.name, || {
        let mut rtnl = Rtnl::open(DEFAULT_PROTOCOL).unwrap();
        let mut events = Events::subscribe(DEFAULT_PROTOCOL).unwrap();
        let snap = Snapshot::take(rtnl.socket(), DEFAULT_PROTOCOL).unwrap();
        let tentative = snap
            .wan_facts("d1")
            .addresses
            .into_iter()
            .find(|a| a.addr == "2001:db8:7::2".parse::<std::net::IpAddr>().unwrap())
            .expect("address listed");
        assert!(tentative.tentative, "DAD flag not seen");
        let plan = world.plan(&snap, &Allocation::default());
        let observed = rtnl.observe().unwrap();
        apply_all(&mut rtnl, &diff(&plan.objects, &observed));
        events.ignore_changes_by(rtnl.pid());
        let observed = rtnl.observe().unwrap();
        let (ops, _) = rtnl.sync(&plan.objects, true).unwrap();
        assert!(ops.is_empty(), "already applied");
        // Our own changes (a failover) do not come back as events.
        let failed_over = world_with_wan2_down(&world).plan(&snap, &plan.allocation);
        rtnl.sync(&failed_over.objects, false).unwrap();
        rtnl.sync(&plan.objects, false).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let echoes: Vec<Event> = events
            .read()
            .unwrap()
            .into_iter()
            .filter(|e| matches!(e, Event::Route { .. } | Event::Rule { .. }))
            .collect();
        assert!(echoes.is_empty(), "own changes echoed: {echoes:?}");
        assert_eq!(diff(&plan.objects, &observed), vec![]);

        // An admin (or a firewall reload) removes a rule and a route of ours.
        common::run(&[
            "ip", "netns", "exec", &ns.name, "ip", "rule", "del", "pref", "1300",
        ]);
        let table = plan.policy_tables["balanced"];
        common::run(&[
            "ip", "netns", "exec", &ns.name, "ip", "-6", "route", "flush", "table", &table.to_string(),
        ]);
        let mut seen = Vec::new();
        for _ in 0..50 {
            seen.extend(events.read().unwrap());
            let rule_gone = seen.iter().any(|e| matches!(e, Event::Rule { ours: true, removed: true, .. }));
            let route_gone = seen.iter().any(|e| matches!(e, Event::Route { ours: true, removed: true, table: t, .. } if *t == table));
            if rule_gone && route_gone {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(seen.iter().any(|e| matches!(e, Event::Rule { ours: true, removed: true, .. })), "{seen:?}");
        assert!(seen.iter().any(|e| matches!(e, Event::Route { ours: true, removed: true, .. })), "{seen:?}");
        // A sync from the cache does not see it; the reconcile the events ask for does.
        let (ops, _) = rtnl.sync(&plan.objects, true).unwrap();
        assert_eq!(ops.len(), 2, "exactly the two missing objects: {ops:#?}");
        assert_eq!(diff(&plan.objects, &rtnl.observe().unwrap()), vec![]);
        let (ops, _) = rtnl.sync(&plan.objects, false).unwrap();
        assert!(ops.is_empty());
        rtnl.teardown().unwrap();
    })
    .unwrap();
}
