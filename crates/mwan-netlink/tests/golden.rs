//! Golden bytes: what iproute2 sends for a command against what our
//! encoder builds for the same object, in both directions and without
//! privileges: our encoding must equal the captured message, and parsing
//! the captured message must give the object back.
//!
//! `golden/rules.hex` and `golden/routes.hex` hold the captures (iproute2
//! 6.1 on x86_64, little-endian; sequence number and port id zeroed),
//! rewritten to this host's byte order when read (golden/host_order.rs).
//! The live capture (`strace -e sendmsg` inside a throwaway namespace,
//! since this kernel has no nlmon) is opt-in and rewrites the files:
//!
//! ```sh
//! cargo test -p mwan-netlink --test golden -- --ignored   # as root, with strace
//! ```

mod common;
#[path = "../golden/host_order.rs"]
mod host_order;

use std::net::IpAddr;
use std::path::PathBuf;

use common::{require_netns, Netns};
use mwan_core::config::{Family, IpNet, PortRange};
use mwan_core::plan::{FibRule, Nexthop, Route, RouteKind, RuleAction};
use mwan_netlink::socket::{split_messages, MsgBuilder};
use mwan_netlink::{route, rule};

const PROTO: u8 = 77;
/// Interface indexes of d0 and d1 in the capture namespace (as the kernel
/// numbers them there after lo and each veth peer).
const D0: u32 = 3;
const D1: u32 = 5;

/// One `ip` command, our message for it, and for an add or replace the
/// object that parsing the captured message must give back.
struct Case {
    args: &'static str,
    ours: Vec<u8>,
    parsed: Option<Parsed>,
}

#[derive(Debug, PartialEq)]
enum Parsed {
    Rule(FibRule),
    Route(Route),
}

fn masked(mut m: Vec<u8>) -> Vec<u8> {
    m[8..16].fill(0);
    m
}

fn ours(msg: &MsgBuilder) -> Vec<u8> {
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

fn rule_add(args: &'static str, r: &FibRule) -> Case {
    Case {
        args,
        ours: ours(&rule::add_msg(r, PROTO)),
        parsed: Some(Parsed::Rule(r.clone())),
    }
}

fn route_replace(args: &'static str, r: &Route) -> Case {
    Case {
        args,
        ours: ours(&route::replace_msg(r, PROTO)),
        parsed: Some(Parsed::Route(r.clone())),
    }
}

fn rule_cases() -> Vec<Case> {
    let lookup = |family, priority, table| {
        FibRule::new(
            family,
            priority,
            RuleAction::Lookup {
                table,
                suppress_prefixlen: None,
            },
        )
    };
    let mut tracker = lookup(Family::Ipv4, 1001, 1002);
    tracker.fwmark = Some((0x100, 0x3f00));
    let connected = FibRule::new(
        Family::Ipv6,
        1300,
        RuleAction::Lookup {
            table: 254,
            suppress_prefixlen: Some(0),
        },
    );
    let mut steer = lookup(Family::Ipv6, 3000, 1004);
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
    let mut unreachable = FibRule::new(Family::Ipv4, 1005, RuleAction::Unreachable);
    unreachable.fwmark = Some((0x500, 0x3f00));
    vec![
        rule_add(
            "rule add pref 1001 fwmark 0x100/0x3f00 lookup 1002 proto 77",
            &tracker,
        ),
        Case {
            args: "rule del pref 1001 fwmark 0x100/0x3f00 lookup 1002 proto 77",
            ours: ours(&rule::delete_msg(&tracker, PROTO)),
            parsed: None,
        },
        rule_add(
            "-6 rule add pref 1300 lookup main suppress_prefixlength 0 proto 77",
            &connected,
        ),
        rule_add(
            "-6 rule add pref 3000 from 2001:db8:5::/48 to 2001:db8:9::/64 iif d1 ipproto 6 sport 1000-2000 dport 443 lookup 1004 proto 77",
            &steer,
        ),
        rule_add(
            "rule add pref 1005 fwmark 0x500/0x3f00 unreachable proto 77",
            &unreachable,
        ),
    ]
}

fn route_cases() -> Vec<Case> {
    let single = Route {
        family: Family::Ipv4,
        table: 1002,
        dst: net("0.0.0.0", 0),
        metric: 0,
        kind: RouteKind::Unicast(vec![Nexthop {
            ifindex: D0,
            gateway: ip("192.0.2.1"),
            weight: 1,
        }]),
        prefsrc: None,
        scope_link: false,
    };
    let multipath = Route {
        table: 1003,
        kind: RouteKind::Unicast(vec![
            Nexthop {
                ifindex: D0,
                gateway: ip("192.0.2.1"),
                weight: 3,
            },
            Nexthop {
                ifindex: D1,
                gateway: ip("198.51.100.1"),
                weight: 1,
            },
        ]),
        ..single.clone()
    };
    let mirror = Route {
        dst: net("192.0.2.0", 30),
        kind: RouteKind::Unicast(vec![Nexthop {
            ifindex: D0,
            gateway: None,
            weight: 1,
        }]),
        prefsrc: ip("192.0.2.2"),
        scope_link: true,
        ..single.clone()
    };
    let v6 = Route {
        family: Family::Ipv6,
        dst: net("::", 0),
        metric: 1024,
        kind: RouteKind::Unicast(vec![Nexthop {
            ifindex: D0,
            gateway: ip("fe80::1"),
            weight: 1,
        }]),
        ..single.clone()
    };
    let unreachable = Route {
        table: 1004,
        kind: RouteKind::Unreachable,
        ..v6.clone()
    };
    vec![
        route_replace(
            "route replace default table 1002 metric 0 via 192.0.2.1 dev d0 proto 77",
            &single,
        ),
        Case {
            args: "route del default table 1002 metric 0 proto 77",
            ours: ours(&route::delete_msg(&single, PROTO)),
            parsed: None,
        },
        route_replace(
            "route replace default table 1003 metric 0 proto 77 nexthop via 192.0.2.1 dev d0 weight 3 nexthop via 198.51.100.1 dev d1 weight 1",
            &multipath,
        ),
        route_replace(
            "route replace 192.0.2.0/30 table 1002 metric 0 src 192.0.2.2 dev d0 proto 77 scope link",
            &mirror,
        ),
        route_replace(
            "-6 route replace default table 1002 metric 1024 via fe80::1 dev d0 proto 77",
            &v6,
        ),
        route_replace(
            "-6 route replace unreachable default table 1004 metric 1024 proto 77",
            &unreachable,
        ),
    ]
}

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(name)
}

/// The fixture's captures by command, in this host's byte order. Format:
/// `#` comments, then for each command a line `ip <args>` and a line of hex.
fn read_fixture(name: &str) -> Vec<(String, Vec<u8>)> {
    let path = fixture_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty());
    let mut out = Vec::new();
    while let Some(cmd) = lines.next() {
        let args = cmd.strip_prefix("ip ").expect("a line 'ip <args>'");
        let hex = lines.next().expect("a hex line after each command");
        out.push((args.to_string(), host_order::from_le_capture(&unhex(hex))));
    }
    out
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Both directions for every case, against the fixture.
fn check_against_fixture(name: &str, cases: Vec<Case>) {
    let captured = read_fixture(name);
    assert_eq!(
        captured.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
        cases.iter().map(|c| c.args).collect::<Vec<_>>(),
        "{name}: the captured commands"
    );
    for (case, (_, theirs)) in cases.into_iter().zip(captured) {
        assert_eq!(
            case.ours, theirs,
            "ip {}: our encoding (left) differs from iproute2's (right)",
            case.args
        );
        let Some(want) = case.parsed else { continue };
        let msgs = split_messages(&theirs).expect("the capture parses");
        assert_eq!(msgs.len(), 1, "ip {}: one message", case.args);
        let got = match want {
            Parsed::Rule(_) => rule::parse_rule(&msgs[0]).map(|(r, proto)| {
                assert_eq!(proto, PROTO, "ip {}: protocol", case.args);
                Parsed::Rule(r)
            }),
            Parsed::Route(_) => route::parse_route(&msgs[0]).map(|d| {
                assert_eq!(d.protocol, PROTO, "ip {}: protocol", case.args);
                Parsed::Route(d.route)
            }),
        };
        assert_eq!(got, Some(want), "ip {}: parsed capture", case.args);
    }
}

#[test]
fn rule_messages_match_iproute2_capture() {
    check_against_fixture("rules.hex", rule_cases());
}

#[test]
fn route_messages_match_iproute2_capture() {
    check_against_fixture("routes.hex", route_cases());
}

/// The rtnetlink request (of `types`) that `ip <args>` sent on its socket
/// (fd 3), seq and pid zeroed, as little-endian hex as captured on x86_64.
fn capture(ns: &Netns, args: &str, types: [u16; 2]) -> Vec<u8> {
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
    let mut wanted = msgs
        .into_iter()
        .filter(|m| m.len() >= 16 && types.contains(&u16::from_le_bytes([m[4], m[5]])));
    let msg = wanted
        .next()
        .unwrap_or_else(|| panic!("ip {args}: no request captured"));
    assert!(wanted.next().is_none(), "ip {args}: more than one request");
    masked(msg)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Captures every case live and rewrites the fixture.
fn recapture(name: &str, tag: &str, cases: &[Case], types: [u16; 2]) {
    if cfg!(target_endian = "big") {
        panic!("captures are stored little-endian: recapture on a little-endian host");
    }
    let ns = Netns::new(tag).with_two_links();
    assert_eq!(
        (ns.ifindex("d0"), ns.ifindex("d1")),
        (D0, D1),
        "interface indexes in the capture namespace"
    );
    let ip_version = std::process::Command::new("ip")
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let mut text = format!(
        "# What iproute2 sent for each command (strace -e sendmsg in a throwaway\n\
         # netns; seq and pid zeroed), on little-endian x86_64.\n\
         # {ip_version}. Rewrite: cargo test -p mwan-netlink --test golden -- --ignored\n"
    );
    for case in cases {
        text.push_str(&format!(
            "ip {}\n{}\n",
            case.args,
            hex(&capture(&ns, case.args, types))
        ));
    }
    std::fs::write(fixture_path(name), text).unwrap();
}

#[test]
#[ignore = "live capture: root, netns and strace; rewrites golden/rules.hex and routes.hex"]
fn recapture_iproute2_messages() {
    if !require_netns() {
        return;
    }
    recapture("rules.hex", "gr", &rule_cases(), [32, 33]); // RTM_NEWRULE, RTM_DELRULE
    recapture("routes.hex", "gt", &route_cases(), [24, 25]); // RTM_NEWROUTE, RTM_DELROUTE
    check_against_fixture("rules.hex", rule_cases());
    check_against_fixture("routes.hex", route_cases());
}
