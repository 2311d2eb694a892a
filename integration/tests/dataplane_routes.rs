//! The route/rule half of the data plane on the testbed, with real TCP flows
//! from the LAN client through the router's NAT (strict rp_filter on):
//! weighted balancing, failover rewriting only the affected routes, rules
//! steering by source, destination, protocol and port (IPv4 and IPv6),
//! adoption without a flap, crash leftovers removed, and a stop that leaves
//! no trace.
//!
//! mwand is not involved: the test plays its part (plan, diff, apply) so the
//! routing layer is checked on its own. The nft table (pinning, sticky) is
//! tested with it elsewhere.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use mwan_core::config::{
    Config, Family, Interface, IpNet, Member, Policy, PolicyTarget, PortRange, Proto, Rule,
};
use mwan_core::plan::{
    build, diff, Allocation, NetworkPlan, Op, PlanInput, PlanSettings, PolicyRoutes, RouteKind,
    WanInput, DEFAULT_PROTOCOL,
};
use mwan_netlink::{in_netns, link::Snapshot, sysctl, Rtnl};
use mwan_testbed::{require_netns, Role, Testbed, TestbedOptions};

mod dataplane_common;
use dataplane_common::router_state;

/// wanN (IPv4) and wanN_6 (IPv6) per testbed WAN; members mN/mN_6 with the
/// given weights; one policy per WAN (`only_wanN`) and `balanced`.
fn config(weights: &[u32], rules: Vec<Rule>) -> Config {
    let mut c = Config {
        source: "dataplane_routes".into(),
        globals: Default::default(),
        interfaces: vec![],
        members: vec![],
        policies: vec![],
        rules,
    };
    let mut balanced = Policy::new("balanced");
    for (i, w) in weights.iter().enumerate() {
        let n = i + 1;
        let mut only = Policy::new(&format!("only_wan{n}"));
        for (suffix, family) in [("", Family::Ipv4), ("_6", Family::Ipv6)] {
            let iface = format!("wan{n}{suffix}");
            let member = format!("m{n}{suffix}");
            c.interfaces.push(Interface {
                enabled: true,
                family,
                ..Interface::new(&iface)
            });
            c.members.push(Member {
                weight: *w,
                ..Member::new(&member, &iface)
            });
            balanced.use_member.push(member.clone());
            only.use_member.push(member);
        }
        c.policies.push(only);
    }
    c.policies.push(balanced);
    c
}

fn to(policy: &str) -> PolicyTarget {
    PolicyTarget::Named(policy.into())
}

/// The test's stand-in for mwand: facts from the kernel, decisions from
/// which WANs are usable, the plan, and the allocation kept across replans.
struct Driver<'a> {
    tb: &'a Testbed,
    config: Config,
    usable: BTreeMap<String, bool>,
    allocation: Allocation,
}

impl<'a> Driver<'a> {
    fn new(tb: &'a Testbed, config: Config) -> Self {
        let usable = config
            .interfaces
            .iter()
            .map(|i| (i.name.clone(), true))
            .collect();
        Driver {
            tb,
            config,
            usable,
            allocation: Allocation::default(),
        }
    }

    fn plan(&mut self, rtnl: &mut Rtnl) -> NetworkPlan {
        let snap = Snapshot::take(rtnl.socket(), DEFAULT_PROTOCOL).expect("snapshot");
        let mut wans = Vec::new();
        for w in self.tb.wans() {
            let facts = snap.wan_facts(&w.device);
            assert!(
                facts.gateway_v4.is_some() && facts.gateway_v6.is_some(),
                "{facts:?}"
            );
            for (suffix, family) in [("", Family::Ipv4), ("_6", Family::Ipv6)] {
                let interface = format!("{}{suffix}", w.name);
                let usable = self.usable[&interface];
                wans.push(WanInput {
                    interface,
                    family,
                    facts: facts.clone(),
                    usable,
                });
            }
        }
        let decisions = PolicyRoutes::all_members(&self.config, |i| self.usable[i]);
        let plan = build(&PlanInput {
            config: &self.config,
            settings: PlanSettings::from_config(&self.config),
            wans: &wans,
            policies: &decisions,
            devices: &BTreeMap::from([("lan".to_string(), self.tb.lan().router_device.clone())]),
            main_defaults: &[],
            previous: &self.allocation,
        })
        .expect("plan builds");
        self.allocation = plan.allocation.clone();
        plan
    }

    /// Plan, diff against the kernel, apply; returns the ops applied.
    fn sync(&mut self, rtnl: &mut Rtnl) -> Vec<Op> {
        let plan = self.plan(rtnl);
        let observed = rtnl.observe().expect("observe");
        let ops = diff(&plan.objects, &observed);
        let report = rtnl.apply(&ops).expect("apply");
        assert!(
            report.failed.is_empty(),
            "kernel refused: {:#?}",
            report.failed
        );
        let after = rtnl.observe().expect("observe");
        assert_eq!(
            diff(&plan.objects, &after),
            vec![],
            "kernel differs from the plan"
        );
        ops
    }
}

fn router<T: Send>(tb: &Testbed, f: impl FnOnce(&mut Rtnl) -> T + Send) -> T {
    in_netns(tb.router_ns(), || {
        let mut rtnl = Rtnl::open(DEFAULT_PROTOCOL).expect("rtnetlink in router ns");
        f(&mut rtnl)
    })
    .expect("enter router ns")
}

/// `count` new TCP connections from the LAN client to the HTTP target of a
/// family; returns how many the server saw from each address (one per WAN,
/// after NAT). Every connection has a fresh source port.
fn flows(tb: &Testbed, family: Family, count: usize) -> BTreeMap<IpAddr, usize> {
    let target: SocketAddr = *tb
        .targets()
        .http
        .iter()
        .find(|a| {
            matches!(
                (family, a),
                (Family::Ipv4, SocketAddr::V4(_)) | (Family::Ipv6, SocketAddr::V6(_))
            )
        })
        .expect("http target of the family");
    in_netns(tb.lan_ns(), || {
        let mut seen = BTreeMap::new();
        for _ in 0..count {
            let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(3))
                .unwrap_or_else(|e| panic!("connect {target} from the LAN: {e}"));
            s.set_read_timeout(Some(Duration::from_secs(3)))
                .expect("timeout");
            s.write_all(b"GET / HTTP/1.0\r\n\r\n")
                .expect("send request");
            let mut body = String::new();
            s.read_to_string(&mut body).expect("read answer");
            let addr: IpAddr = body
                .lines()
                .last()
                .and_then(|l| l.trim().parse().ok())
                .unwrap_or_else(|| panic!("no address in answer {body:?}"));
            *seen.entry(addr).or_insert(0) += 1;
        }
        seen
    })
    .expect("enter LAN ns")
}

fn wan_addr(tb: &Testbed, n: usize, family: Family) -> IpAddr {
    let w = &tb.wans()[n - 1];
    match family {
        Family::Ipv4 => IpAddr::V4(w.router_v4),
        Family::Ipv6 => IpAddr::V6(w.router_v6),
    }
}

/// The WAN (1-based) every one of `count` flows left by; panics if they split.
fn only_wan(tb: &Testbed, family: Family, count: usize) -> usize {
    let seen = flows(tb, family, count);
    assert_eq!(seen.len(), 1, "{family:?} flows split: {seen:?}");
    let addr = *seen.keys().next().expect("one address");
    (1..=tb.wans().len())
        .find(|n| wan_addr(tb, *n, family) == addr)
        .unwrap_or_else(|| panic!("{addr} is no WAN address"))
}

/// A two-WAN testbed, or None when namespaces are not available (outside CI).
fn testbed() -> Option<Testbed> {
    if !require_netns() {
        return None;
    }
    Some(
        Testbed::up(TestbedOptions {
            wans: 2,
            ..Default::default()
        })
        .expect("testbed"),
    )
}

#[test]
fn weighted_balance_failover_adoption_and_clean_stop() {
    let Some(tb) = testbed() else { return };
    let before = router_state(&tb);
    let mut driver = Driver::new(&tb, config(&[3, 1], vec![Rule::new("all", to("balanced"))]));
    let mut saved = router(&tb, |rtnl| {
        let mut saved = sysctl::Saved::default();
        saved.apply_dataplane_defaults().expect("sysctls");
        driver.sync(rtnl);
        saved
    });

    // 3:1 over new flows, both families.
    for family in [Family::Ipv4, Family::Ipv6] {
        let seen = flows(&tb, family, 400);
        let on1 = seen.get(&wan_addr(&tb, 1, family)).copied().unwrap_or(0);
        let on2 = seen.get(&wan_addr(&tb, 2, family)).copied().unwrap_or(0);
        assert_eq!(
            on1 + on2,
            400,
            "{family:?} flows left by other addresses: {seen:?}"
        );
        assert!(
            on1 > 240 && on2 > 40,
            "{family:?} 3:1 split not visible: wan1 {on1}, wan2 {on2}"
        );
    }

    // wan1 fails: only the balanced and only_wan1 routes and wan1's pin rules change.
    let ops = router(&tb, |rtnl| {
        driver.usable.insert("wan1".into(), false);
        driver.usable.insert("wan1_6".into(), false);
        driver.sync(rtnl)
    });
    let plan = router(&tb, |rtnl| driver.plan(rtnl));
    let touched = [
        plan.policy_tables["balanced"],
        plan.policy_tables["only_wan1"],
    ];
    for op in &ops {
        match op {
            Op::AddRoute(r) => assert!(
                touched.contains(&r.table),
                "unrelated route rewritten: {op}"
            ),
            Op::DelRule(r) => assert!(r.fwmark.is_some() && r.priority >= 1700, "{op}"),
            _ => panic!("unexpected op on failover: {op}"),
        }
    }
    assert_eq!(
        ops.len(),
        6,
        "2 families x (2 policy routes + 1 pin rule): {ops:#?}"
    );
    assert_eq!(only_wan(&tb, Family::Ipv4, 40), 2);
    assert_eq!(only_wan(&tb, Family::Ipv6, 40), 2);

    // A restart (new socket, same plan) adopts everything: no op at all.
    let ops = router(&tb, |rtnl| driver.sync(rtnl));
    assert_eq!(ops, vec![], "restart caused a flap");

    // Leftovers of a crashed run with another config: only they go.
    let dev = tb.wans()[1].device.clone();
    let gw = tb.wans()[1].gateway_v4.to_string();
    for cmd in [
        "ip rule add pref 1999 fwmark 0x3f00/0x3f00 lookup 1060 proto 77".to_string(),
        format!("ip route add default via {gw} dev {dev} table 1060 proto 77"),
    ] {
        let argv: Vec<&str> = cmd.split_whitespace().collect();
        tb.exec_ok(Role::Router, &argv).expect("plant leftovers");
    }
    let ops = router(&tb, |rtnl| driver.sync(rtnl));
    assert_eq!(ops.len(), 2, "{ops:#?}");
    assert!(
        ops.iter()
            .all(|op| matches!(op, Op::DelRule(_) | Op::DelRoute(_))),
        "{ops:#?}"
    );

    // Stop: everything ours goes, sysctls come back.
    router(&tb, |rtnl| {
        let report = rtnl.teardown().expect("teardown");
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        saved.restore().expect("restore sysctls");
    });
    assert_eq!(router_state(&tb), before, "stop left a trace");
}

#[test]
fn rules_steer_by_source_destination_protocol_and_port() {
    let Some(tb) = testbed() else { return };
    let lan = tb.lan().clone();
    let http: Vec<SocketAddr> = tb.targets().http.clone();
    let host = |a: &SocketAddr| IpNet {
        addr: a.ip(),
        prefix_len: if a.is_ipv4() { 32 } else { 128 },
    };
    let default_wan1 = || Rule::new("rest", to("only_wan1"));
    let mut cases: Vec<(&str, Rule, usize)> = Vec::new();
    let mut port = Rule::new("http_port", to("only_wan2"));
    port.proto = Proto::Tcp;
    port.dest_port = vec![PortRange {
        first: 79,
        last: 81,
    }];
    cases.push(("tcp dport 79-81", port, 2));
    let mut udp = Rule::new("udp_only", to("only_wan2"));
    udp.proto = Proto::Udp;
    cases.push(("proto udp (HTTP is tcp)", udp, 1));
    let mut src = Rule::new("client", to("only_wan2"));
    src.src_ip = vec![
        IpNet {
            addr: IpAddr::V4(lan.client_v4),
            prefix_len: 32,
        },
        IpNet {
            addr: IpAddr::V6(lan.client_v6),
            prefix_len: 128,
        },
    ];
    cases.push(("src_ip client", src, 2));
    let mut dst = Rule::new("server", to("only_wan2"));
    dst.dest_ip = http.iter().map(host).collect();
    cases.push(("dest_ip server", dst, 2));
    let mut sport = Rule::new("ephemeral_sport", to("only_wan2"));
    sport.proto = Proto::Tcp;
    sport.src_port = vec![PortRange {
        first: 1024,
        last: 65534,
    }];
    cases.push(("tcp sport 1024-65534", sport, 2));
    // The kernel refuses FIB port ranges ending at 65535; every port is no
    // port match at all (1024:65535 goes to nft: dataplane_nft).
    let mut any_sport = Rule::new("any_sport", to("only_wan2"));
    any_sport.proto = Proto::Tcp;
    any_sport.src_port = vec![PortRange {
        first: 1,
        last: 65535,
    }];
    cases.push(("tcp sport 1-65535", any_sport, 2));
    let mut low_sport = Rule::new("low_sport", to("only_wan2"));
    low_sport.proto = Proto::Tcp;
    low_sport.src_port = vec![PortRange {
        first: 1,
        last: 1023,
    }];
    cases.push((
        "tcp sport 1-1023 (clients use ephemeral ports)",
        low_sport,
        1,
    ));
    let mut iface = Rule::new("from_lan", to("only_wan2"));
    iface.src_iface = Some("lan".into());
    cases.push(("src_iface lan", iface, 2));
    let mut other_port = Rule::new("https", to("only_wan2"));
    other_port.proto = Proto::Tcp;
    other_port.dest_port = vec![PortRange {
        first: 443,
        last: 443,
    }];
    cases.push(("tcp dport 443 (HTTP is 80)", other_port, 1));

    let mut driver = Driver::new(&tb, config(&[1, 1], vec![]));
    for (what, rule, wan) in cases {
        driver.config.rules = vec![rule, default_wan1()];
        router(&tb, |rtnl| driver.sync(rtnl));
        for family in [Family::Ipv4, Family::Ipv6] {
            assert_eq!(only_wan(&tb, family, 10), wan, "rule {what}, {family:?}");
        }
    }
    router(&tb, |rtnl| rtnl.teardown().expect("teardown"));
}

/// HTTP GET from the router itself, with a socket mark and/or bound to a
/// source address; returns the address the server saw.
fn router_get(tb: &Testbed, mark: Option<u32>, bind: Option<IpAddr>) -> IpAddr {
    let target: SocketAddr = *tb
        .targets()
        .http
        .iter()
        .find(|a| a.is_ipv4())
        .expect("v4 http");
    in_netns(tb.router_ns(), || {
        use std::os::fd::AsRawFd;
        // std has no connect-from-bound-socket; do it with libc.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let stream = unsafe { <TcpStream as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        if let Some(m) = mark {
            let rc = unsafe {
                libc::setsockopt(
                    stream.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_MARK,
                    (&m as *const u32).cast(),
                    4,
                )
            };
            assert_eq!(rc, 0, "SO_MARK: {}", std::io::Error::last_os_error());
        }
        let sockaddr = |a: SocketAddr| {
            let SocketAddr::V4(a) = a else {
                panic!("v4 only")
            };
            libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            }
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if let Some(src) = bind {
            let sa = sockaddr(SocketAddr::new(src, 0));
            let rc = unsafe {
                libc::bind(
                    stream.as_raw_fd(),
                    (&sa as *const libc::sockaddr_in).cast(),
                    len,
                )
            };
            assert_eq!(rc, 0, "bind {src}: {}", std::io::Error::last_os_error());
        }
        let sa = sockaddr(target);
        let rc = unsafe {
            libc::connect(
                stream.as_raw_fd(),
                (&sa as *const libc::sockaddr_in).cast(),
                len,
            )
        };
        assert_eq!(
            rc,
            0,
            "connect {target}: {}",
            std::io::Error::last_os_error()
        );
        let mut stream = stream;
        stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        stream
            .write_all(b"GET / HTTP/1.0\r\n\r\n")
            .expect("request");
        let mut body = String::new();
        stream.read_to_string(&mut body).expect("answer");
        body.lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .expect("address in answer")
    })
    .expect("router ns")
}

#[test]
fn tracker_marks_and_bound_sources_follow_their_wan_whatever_the_policy() {
    let Some(tb) = testbed() else { return };
    let mut driver = Driver::new(
        &tb,
        config(&[1, 1], vec![Rule::new("all", to("only_wan1"))]),
    );
    // wan2 is down for traffic: its tracker and source rules must still work.
    driver.usable.insert("wan2".into(), false);
    let plan = router(&tb, |rtnl| {
        driver.sync(rtnl);
        driver.plan(rtnl)
    });
    let wan2 = plan.wan("wan2").expect("wan2 planned");
    let (a1, a2) = (
        wan_addr(&tb, 1, Family::Ipv4),
        wan_addr(&tb, 2, Family::Ipv4),
    );
    assert_eq!(
        router_get(&tb, None, None),
        a1,
        "router traffic follows the policy"
    );
    assert_eq!(
        router_get(&tb, Some(wan2.tracker_mark), None),
        a2,
        "tracker mark ignored"
    );
    // A mark with foreign bits outside mmx_mask still matches.
    assert_eq!(
        router_get(&tb, Some(wan2.tracker_mark | 0x1), None),
        a2,
        "foreign mark bits"
    );
    assert_eq!(
        router_get(&tb, None, Some(a2)),
        a2,
        "bound to wan2's address"
    );
    // Pin mark of an unusable WAN: rule withdrawn, the policy decides.
    assert_eq!(
        router_get(&tb, Some(wan2.pin_mark), None),
        a1,
        "withdrawn pin still routes"
    );
    router(&tb, |rtnl| rtnl.teardown().expect("teardown"));
}

/// netifd installs an IPv6 WAN's default route source-specific (`from` the
/// WAN's prefix) and usually via the ISP router's link-local address. The
/// snapshot must read that gateway, and policy routes through it must carry
/// real traffic (NDP resolves the link-local next hop).
#[test]
fn ipv6_source_specific_default_via_link_local_gateway_as_netifd_installs_it() {
    let Some(tb) = testbed() else { return };
    let w2 = tb.wans()[1].clone();
    // The ISP's link-local address on its link to the router.
    let isp = Role::Isp(2);
    let gw = format!("{}/128", w2.gateway_v6);
    let line = tb
        .exec_ok(isp, &["ip", "-6", "-o", "addr", "show", "to", &gw])
        .expect("ISP address");
    let isp_dev = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no ISP device with {gw}: {line:?}"))
        .to_string();
    let ll = tb
        .exec_ok(
            isp,
            &[
                "ip", "-6", "-o", "addr", "show", "dev", &isp_dev, "scope", "link",
            ],
        )
        .expect("ISP link-local");
    let ll: std::net::Ipv6Addr = ll
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no link-local address on the ISP side: {ll:?}"));
    let metric = (w2.metric + 1024).to_string();
    for cmd in [
        format!("ip -6 route del default dev {}", w2.device),
        format!(
            "ip -6 route add default from {} via {ll} dev {} metric {metric}",
            w2.subnet_v6(),
            w2.device
        ),
    ] {
        let argv: Vec<&str> = cmd.split_whitespace().collect();
        tb.exec_ok(Role::Router, &argv)
            .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    }
    let facts = router(&tb, |rtnl| {
        Snapshot::take(rtnl.socket(), DEFAULT_PROTOCOL)
            .expect("snapshot")
            .wan_facts(&w2.device)
    });
    assert_eq!(facts.gateway_v6, Some(ll), "{facts:?}");

    let mut driver = Driver::new(
        &tb,
        config(&[1, 1], vec![Rule::new("all", to("only_wan2"))]),
    );
    let plan = router(&tb, |rtnl| {
        driver.sync(rtnl);
        driver.plan(rtnl)
    });
    let table = plan.policy_tables["only_wan2"].to_string();
    let shown = tb
        .exec_ok(
            Role::Router,
            &["ip", "-6", "route", "show", "table", &table],
        )
        .expect("policy table");
    assert!(
        shown.contains(&format!("via {ll} dev {}", w2.device)),
        "{shown}"
    );
    assert_eq!(
        only_wan(&tb, Family::Ipv6, 10),
        2,
        "IPv6 via the link-local gateway"
    );
    router(&tb, |rtnl| rtnl.teardown().expect("teardown"));
}

/// A refused op is reported with the object, errno and meaning; the policy
/// it concerns keeps its previous route (routes are replaced in one message,
/// multipath included), and the next sync dumps again instead of trusting
/// its cache, so it also puts back what vanished meanwhile.
#[test]
fn a_refused_op_is_named_leaves_the_policy_whole_and_the_next_sync_repairs() {
    let Some(tb) = testbed() else { return };
    let mut driver = Driver::new(&tb, config(&[1, 1], vec![Rule::new("all", to("balanced"))]));
    let plan = router(&tb, |rtnl| {
        driver.sync(rtnl);
        driver.plan(rtnl)
    });
    let balanced = plan.policy_tables["balanced"];
    let show = || {
        tb.exec_ok(
            Role::Router,
            &["ip", "-4", "route", "show", "table", &balanced.to_string()],
        )
        .expect("policy table")
    };
    let before = show();
    assert!(before.contains("nexthop"), "multipath expected: {before}");
    // wan2 "fails" in a plan whose wan1 route names a gateway that is on no
    // connected network: the kernel refuses that one message.
    let mut bad = plan.objects.clone();
    for r in bad.routes.iter_mut().filter(|r| r.table == balanced) {
        if let RouteKind::Unicast(hops) = &mut r.kind {
            if r.family == Family::Ipv4 {
                hops.truncate(1);
                hops[0].gateway = Some("203.0.113.254".parse().unwrap());
                hops[0].weight = 1;
            }
        }
    }
    let failed = router(&tb, |rtnl| {
        rtnl.sync(&plan.objects, true).expect("sync");
        let (_, report) = rtnl.sync(&bad, false).expect("sync");
        report.failed
    });
    assert_eq!(failed.len(), 1, "{failed:?}");
    let text = failed[0].to_string();
    assert!(
        text.contains(&format!("table {balanced}")) && text.contains("errno"),
        "error names object and errno: {text}"
    );
    assert_eq!(show(), before, "policy half-changed");
    // Meanwhile someone deletes one of our rules; the next sync without a
    // reconcile request still finds it, because the failure dropped the cache.
    tb.exec_ok(Role::Router, &["ip", "-4", "rule", "del", "pref", "1300"])
        .expect("delete our rule");
    let ops = router(&tb, |rtnl| {
        let (ops, report) = rtnl.sync(&plan.objects, false).expect("sync");
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        assert_eq!(
            diff(&plan.objects, &rtnl.observe().expect("observe")),
            vec![]
        );
        ops
    });
    assert!(
        ops.iter()
            .any(|op| matches!(op, Op::AddRule(r) if r.priority == 1300)),
        "deleted rule not restored: {ops:#?}"
    );
    router(&tb, |rtnl| rtnl.teardown().expect("teardown"));
}
