//! Golden bytes: what iproute2 sends for a command (captured with
//! `strace -e write=3` inside a throwaway namespace, since this kernel has no
//! nlmon) against what our encoder builds for the same object. Sequence
//! number and port id are masked out.

mod common;

use std::net::IpAddr;

use common::{require_netns, Netns};
use mwan_core::config::{Family, IpNet, PortRange};
use mwan_core::plan::{FibRule, Nexthop, Route, RouteKind, RuleAction};
use mwan_netlink::{route, rule};

const PROTO: u8 = 77;

/// The netlink messages `ip <args>` sent on its rtnetlink socket (fd 3).
fn capture(ns: &Netns, args: &str) -> Vec<Vec<u8>> {
    let mut argv = vec![
        "strace",
        "-qq",
        "-e",
        "trace=sendmsg",
        "-e",
        "write=3",
        "-e",
        "signal=none",
        "ip",
    ];
    argv.extend(args.split_whitespace());
    let out = ns.exec(&argv);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "ip {args} failed (is strace installed?): {err}"
    );
    let mut msgs: Vec<Vec<u8>> = Vec::new();
    for line in err.lines() {
        if line.starts_with("sendmsg(3,") {
            msgs.push(Vec::new());
        } else if let Some(rest) = line.strip_prefix(" | ") {
            // " | 00000  44 00 00 00 ...  ascii |": hex between offset and ascii.
            let hex = &rest[7..rest.len().min(7 + 50)];
            let cur = msgs.last_mut().expect("dump after a sendmsg line");
            cur.extend(
                hex.split_whitespace()
                    .map(|h| u8::from_str_radix(h, 16).expect("hex byte")),
            );
        }
    }
    msgs.into_iter()
        .filter(|m| !m.is_empty())
        .map(masked)
        .collect()
}

fn masked(mut m: Vec<u8>) -> Vec<u8> {
    m[8..16].fill(0);
    m
}

fn ours(msg: &mwan_netlink::socket::MsgBuilder) -> Vec<u8> {
    masked(msg.request_bytes(0))
}

fn net(s: &str, len: u8) -> IpNet {
    IpNet {
        addr: s.parse().unwrap(),
        prefix_len: len,
    }
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

fn rule_base(family: Family, priority: u32, action: RuleAction) -> FibRule {
    FibRule::new(family, priority, action)
}

fn assert_same(ns: &Netns, args: &str, mine: Vec<u8>) {
    let theirs = capture(ns, args);
    assert!(
        theirs.contains(&mine),
        "ip {args}\n iproute2: {:02x?}\n ours:     {mine:02x?}",
        theirs
    );
}

#[test]
fn rule_messages_match_iproute2() {
    if !require_netns() {
        return;
    }
    let ns = Netns::new("gr").with_two_links();
    let mut tracker = rule_base(
        Family::Ipv4,
        1001,
        RuleAction::Lookup {
            table: 1002,
            suppress_prefixlen: None,
        },
    );
    tracker.fwmark = Some((0x100, 0x3f00));
    assert_same(
        &ns,
        "rule add pref 1001 fwmark 0x100/0x3f00 lookup 1002 proto 77",
        ours(&rule::add_msg(&tracker, PROTO)),
    );
    assert_same(
        &ns,
        "rule del pref 1001 fwmark 0x100/0x3f00 lookup 1002 proto 77",
        ours(&rule::delete_msg(&tracker, PROTO)),
    );

    let connected = rule_base(
        Family::Ipv6,
        1300,
        RuleAction::Lookup {
            table: 254,
            suppress_prefixlen: Some(0),
        },
    );
    assert_same(
        &ns,
        "-6 rule add pref 1300 lookup main suppress_prefixlength 0 proto 77",
        ours(&rule::add_msg(&connected, PROTO)),
    );

    let mut steer = rule_base(
        Family::Ipv6,
        3000,
        RuleAction::Lookup {
            table: 1004,
            suppress_prefixlen: None,
        },
    );
    steer.src = Some(net("2001:db8:5::", 48));
    steer.dst = Some(net("2001:db8:9::", 64));
    steer.iif = Some("d1".into());
    steer.ipproto = Some(6);
    steer.sport = Some(PortRange {
        first: 1000,
        last: 2000,
    });
    steer.dport = Some(PortRange {
        first: 443,
        last: 443,
    });
    assert_same(
        &ns,
        "-6 rule add pref 3000 from 2001:db8:5::/48 to 2001:db8:9::/64 iif d1 ipproto 6 sport 1000-2000 dport 443 lookup 1004 proto 77",
        ours(&rule::add_msg(&steer, PROTO)),
    );

    let mut bh = rule_base(Family::Ipv4, 1005, RuleAction::Unreachable);
    bh.fwmark = Some((0x500, 0x3f00));
    assert_same(
        &ns,
        "rule add pref 1005 fwmark 0x500/0x3f00 unreachable proto 77",
        ours(&rule::add_msg(&bh, PROTO)),
    );
}

#[test]
fn route_messages_match_iproute2() {
    if !require_netns() {
        return;
    }
    let ns = Netns::new("gt").with_two_links();
    let (d0, d1) = (ns.ifindex("d0"), ns.ifindex("d1"));
    let default4 = net("0.0.0.0", 0);
    let single = Route {
        family: Family::Ipv4,
        table: 1002,
        dst: default4,
        metric: 0,
        kind: RouteKind::Unicast(vec![Nexthop {
            ifindex: d0,
            gateway: ip("192.0.2.1"),
            weight: 1,
        }]),
        prefsrc: None,
        scope_link: false,
    };
    assert_same(
        &ns,
        "route replace default table 1002 metric 0 via 192.0.2.1 dev d0 proto 77",
        ours(&route::replace_msg(&single, PROTO)),
    );
    assert_same(
        &ns,
        "route del default table 1002 metric 0 proto 77",
        ours(&route::delete_msg(&single, PROTO)),
    );

    let multipath = Route {
        table: 1003,
        kind: RouteKind::Unicast(vec![
            Nexthop {
                ifindex: d0,
                gateway: ip("192.0.2.1"),
                weight: 3,
            },
            Nexthop {
                ifindex: d1,
                gateway: ip("198.51.100.1"),
                weight: 1,
            },
        ]),
        ..single.clone()
    };
    assert_same(
        &ns,
        "route replace default table 1003 metric 0 proto 77 nexthop via 192.0.2.1 dev d0 weight 3 nexthop via 198.51.100.1 dev d1 weight 1",
        ours(&route::replace_msg(&multipath, PROTO)),
    );

    let mirror = Route {
        dst: net("192.0.2.0", 30),
        kind: RouteKind::Unicast(vec![Nexthop {
            ifindex: d0,
            gateway: None,
            weight: 1,
        }]),
        prefsrc: ip("192.0.2.2"),
        scope_link: true,
        ..single.clone()
    };
    assert_same(
        &ns,
        "route replace 192.0.2.0/30 table 1002 metric 0 src 192.0.2.2 dev d0 proto 77 scope link",
        ours(&route::replace_msg(&mirror, PROTO)),
    );

    let v6 = Route {
        family: Family::Ipv6,
        dst: net("::", 0),
        metric: 1024,
        kind: RouteKind::Unicast(vec![Nexthop {
            ifindex: d0,
            gateway: ip("fe80::1"),
            weight: 1,
        }]),
        ..single.clone()
    };
    assert_same(
        &ns,
        "-6 route replace default table 1002 metric 1024 via fe80::1 dev d0 proto 77",
        ours(&route::replace_msg(&v6, PROTO)),
    );
    let unreachable = Route {
        table: 1004,
        kind: RouteKind::Unreachable,
        ..v6.clone()
    };
    assert_same(
        &ns,
        "-6 route replace unreachable default table 1004 metric 1024 proto 77",
        ours(&route::replace_msg(&unreachable, PROTO)),
    );
}
