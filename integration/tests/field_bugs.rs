//! Bugs that hit users of other multi-WAN managers (mwan3's issue tracker,
//! the changelog of the nftables port dl12345/mwan3), replayed against
//! mwand on the testbed (issue 13). Each test names the bug it replays.
//!
//! Not here: software flow offloading. This kernel has no flowtable
//! (`nft add flowtable` gives ENOENT; /proc/config.gz: `CONFIG_NF_FLOW_TABLE
//! is not set`), so an offloaded flow cannot be made; docs/dataplane-nft.md
//! says how offloaded entries are deleted on kernels that have it.
//!
//! Needs root and `cargo build --workspace --bins` first.

mod dataplane_common;
mod mwand_harness;

use dataplane_common::{connect_from_internet, serve_echo};
use mwan_testbed::{Role, Testbed};
use mwand_harness::*;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

/// Port forward WAN:8080 -> LAN client:8080 on every WAN, as fw4 sets one
/// up, with an echo server on the LAN client.
fn port_forward_on_every_wan(tb: &Testbed) {
    let devices: Vec<String> = tb
        .wans()
        .iter()
        .map(|w| format!("\"{}\"", w.device))
        .collect();
    let dnat = format!(
        "iifname {{ {} }} tcp dport 8080 dnat to {}:8080",
        devices.join(", "),
        tb.lan().client_v4
    );
    for cmd in [
        "add table ip pf",
        "add chain ip pf dstnat { type nat hook prerouting priority dstnat; }",
        &format!("add rule ip pf dstnat {dnat}"),
        "insert rule inet fw4 forward ct status dnat accept",
    ] {
        let argv: Vec<&str> = std::iter::once("nft").chain([cmd]).collect();
        tb.exec_ok(Role::Router, &argv).expect("nft");
    }
    let lan = mwan_testbed::netns::in_netns(tb.lan_ns(), || TcpListener::bind("0.0.0.0:8080"))
        .expect("bind on the LAN client");
    serve_echo(lan);
}

/// Which WANs' port forwards answer from the internet.
fn forwards_answering(tb: &Testbed) -> Vec<String> {
    tb.wans()
        .iter()
        .filter(|w| {
            let addr = SocketAddr::new(IpAddr::V4(w.router_v4), 8080);
            connect_from_internet(tb, addr).as_deref() == Ok("ping\n")
        })
        .map(|w| w.name.clone())
        .collect()
}

/// Reported for mwan3 and the nftables port: the reply of a port forward
/// left by the policy's WAN, not the one the connection came in on, and
/// was dropped upstream; for every WAN, also after a reload and a failover.
#[test]
fn port_forward_replies_leave_by_the_wan_they_came_in_on_through_reload_override_and_failover() {
    let Some((tb, m, _)) = two_wans_online() else {
        return;
    };
    port_forward_on_every_wan(&tb);
    assert_eq!(
        forwards_answering(&tb),
        ["wan1", "wan2"],
        "policy failover on wan1"
    );

    // A reload that changes the plan (a new rule) keeps the pins.
    let text = std::fs::read_to_string(&m.config).expect("config");
    let extra =
        "\nconfig rule 'dns'\n\toption dest_ip '203.0.113.53'\n\toption use_policy 'balanced'\n";
    std::fs::write(
        &m.config,
        text.replacen(
            "\nconfig rule 'everything'",
            &format!("{extra}\nconfig rule 'everything'"),
            1,
        ),
    )
    .expect("config");
    assert!(m.ctl(&["reload"]).status.success());
    assert_eq!(forwards_answering(&tb), ["wan1", "wan2"], "after a reload");

    // Every policy on wan2: wan1's port forward still answers by wan1.
    assert!(m.ctl(&["override", "wan2"]).status.success());
    m.wait(10, "override in force", |s| {
        active(s, "failover") == ["wan2"]
    });
    assert_eq!(
        forwards_answering(&tb),
        ["wan1", "wan2"],
        "override on wan2"
    );
    assert!(m.ctl(&["override", "--clear"]).status.success());

    // wan1 fails: wan2's forward answers (wan1's cannot: it is cut).
    tb.cut("wan1").expect("cut");
    m.wait(30, "wan1 offline", |s| state(s, "wan1") == "offline");
    assert_eq!(forwards_answering(&tb), ["wan2"], "wan1 cut");
    tb.restore("wan1").expect("restore");
    m.wait(30, "wan1 back", |s| state(s, "wan1") == "online");
    assert_eq!(forwards_answering(&tb), ["wan1", "wan2"], "wan1 back");
}

/// A minimal DNS query (the testbed's server answers any name), standing
/// in for a WireGuard keepalive: one UDP flow, fixed ports both sides.
fn keepalive_query(id: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend([1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    q.extend(b"\x09keepalive\x00\x00\x01\x00\x01");
    q
}

/// From the nftables port's changelog: a WireGuard peer with persistent
/// keepalive through a WAN that died stayed on it forever (its conntrack
/// entry was kept, or re-created with the dead WAN's mark). The wireguard
/// module is not in this kernel (`ip link add wg0 type wireguard`:
/// "Unknown device type"): a UDP socket on the router with WireGuard's
/// port sends every 100 ms to a fixed endpoint, as its keepalive does.
#[test]
fn a_keepalive_udp_flow_of_the_router_moves_off_a_dead_wan_and_stays_off() {
    let Some((tb, m, _)) = two_wans_online() else {
        return;
    };
    let server = tb
        .targets()
        .dns_server
        .iter()
        .find(|a| a.is_ipv4())
        .copied()
        .expect("DNS v4");
    let socket = mwan_testbed::netns::in_netns(tb.router_ns(), || {
        let s = UdpSocket::bind("0.0.0.0:51820")?;
        s.set_read_timeout(Some(Duration::from_millis(100)))?;
        Ok(s)
    })
    .expect("UDP socket in the router");
    // Sends for `secs`, one query per 100 ms; returns (sent, answered) per
    // second.
    let run = |secs: u64| -> Vec<(u32, u32)> {
        let mut per_second = Vec::new();
        let mut id = 0u16;
        for _ in 0..secs {
            let (mut sent, mut answered) = (0, 0);
            let end = Instant::now() + Duration::from_secs(1);
            while Instant::now() < end {
                id = id.wrapping_add(1);
                if socket.send_to(&keepalive_query(id), server).is_ok() {
                    sent += 1;
                }
                let mut buf = [0u8; 512];
                if socket.recv_from(&mut buf).is_ok() {
                    answered += 1;
                }
            }
            per_second.push((sent, answered));
        }
        per_second
    };
    let before = run(2);
    assert!(
        before.iter().all(|&(_, a)| a > 0),
        "no answers with both WANs up: {before:?}"
    );
    tb.cut("wan1").expect("cut");
    m.wait(30, "wan1 offline", |s| state(s, "wan1") == "offline");
    // Its entries are deleted when wan1 goes offline; the flow's next
    // packet follows the policy (wan2) and must stay there.
    let after = run(6);
    let steady = &after[1..];
    assert!(
        steady.iter().all(|&(_, a)| a >= 5),
        "the keepalive flow is not answered through wan2 after wan1 went offline: {after:?}\n{}",
        m.log_text()
    );
    let entries = tb
        .exec_ok(
            Role::Router,
            &["conntrack", "-L", "-p", "udp", "--sport", "51820"],
        )
        .unwrap_or_default();
    let wan2 = tb.wans()[1].router_v4.to_string();
    assert!(
        entries.contains(&wan2),
        "the flow's entry is not on wan2: {entries}"
    );
    tb.restore("wan1").expect("restore");
}

/// mwan3: IPv6 rules stayed behind (`ip -6 rule` full of mwan3's after
/// stop), and an IPv6 WAN's rules were not withdrawn when it went down.
#[test]
fn ipv6_rules_follow_their_wan_and_nothing_of_ours_remains_after_stop() {
    if !mwan_testbed::require_netns() {
        return;
    }
    let tb = testbed(2, 41);
    let v6_rules = || {
        tb.exec_ok(Role::Router, &["ip", "-6", "rule"])
            .expect("ip -6 rule")
    };
    let v6_routes = || {
        tb.exec_ok(
            Role::Router,
            &["ip", "-6", "route", "show", "table", "all", "proto", "77"],
        )
        .expect("ip -6 route")
    };
    let rules_before = v6_rules();
    let mut text = config(tb.wans(), &ours);
    for w in tb.wans() {
        text += &format!(
            "\nconfig interface '{n}_6'\n\toption enabled '1'\n\toption family 'ipv6'\n\toption device '{d}'\n\
             \tlist track_ip '2001:db8:f::1'\n\tlist track_ip '2001:db8:f::2'\n\toption reliability '1'\n\
             \toption interval '0.2'\n\toption failure_interval '0.2'\n\toption recovery_interval '0.2'\n\
             \toption timeout '3'\n\toption down '3'\n\toption up '10'\n\n\
             config member '{n}_6_f'\n\toption interface '{n}_6'\n\toption metric '{m}'\n",
            n = w.name,
            d = w.device,
            m = w.index
        );
    }
    text += "\nconfig policy 'failover6'\n\tlist use_member 'wan1_6_f'\n\tlist use_member 'wan2_6_f'\n\n\
             config rule 'everything6'\n\toption family 'ipv6'\n\toption dest_ip '::/0'\n\toption use_policy 'failover6'\n";
    let mut m = Mwand::start(&tb, &text);
    m.wait(30, "all four WANs online", |s| {
        ["wan1", "wan2", "wan1_6", "wan2_6"]
            .iter()
            .all(|w| state(s, w) == "online")
    });
    // Pin rules (priority 1700 + slot) exist per usable WAN and family.
    let pins = |dump: &str| dump.lines().filter(|l| l.starts_with("17")).count();
    let (pins4, pins6) = (
        pins(
            &tb.exec_ok(Role::Router, &["ip", "-4", "rule"])
                .expect("rules"),
        ),
        pins(&v6_rules()),
    );
    assert!(
        pins4 >= 2 && pins6 >= 2,
        "pins: {pins4} v4, {pins6} v6\n{}",
        v6_rules()
    );
    assert!(!v6_routes().is_empty(), "no IPv6 routes of ours");
    tb.cut("wan1").expect("cut");
    m.wait(30, "wan1 and wan1_6 offline", |s| {
        state(s, "wan1") == "offline" && state(s, "wan1_6") == "offline"
    });
    let (down4, down6) = (
        pins(
            &tb.exec_ok(Role::Router, &["ip", "-4", "rule"])
                .expect("rules"),
        ),
        pins(&v6_rules()),
    );
    assert_eq!(
        (down4, down6),
        (pins4 - 1, pins6 - 1),
        "a withdrawn pin per family\n{}",
        v6_rules()
    );
    assert!(m.stop(), "mwand did not stop");
    assert_eq!(
        v6_rules(),
        rules_before,
        "IPv6 rules of ours left after stop"
    );
    assert_eq!(v6_routes(), "", "IPv6 routes of ours left after stop");
    tb.restore("wan1").expect("restore");
}

/// Reported for mwan3's scripts: `wan` matched `wan2` (and `wwan` `wwan6`)
/// where names were grepped: a cut of one showed, hooked or restarted the
/// other.
#[test]
fn interface_names_that_are_prefixes_of_others_never_match_each_other() {
    if !mwan_testbed::require_netns() {
        return;
    }
    let tb = testbed(2, 42);
    let text = config(tb.wans(), &ours).replace("wan1", "wan");
    let m = Mwand::start(&tb, &text);
    let s = m.wait(20, "wan and wan2 online", |s| {
        state(s, "wan") == "online" && state(s, "wan2") == "online"
    });
    let count = s["interfaces"].as_array().map(Vec::len);
    assert_eq!(count, Some(2), "{s:#}");
    assert_eq!(iface(&s, "wan")["device"], "eth1", "{s:#}");
    assert_eq!(iface(&s, "wan2")["device"], "eth2", "{s:#}");
    // Restarting `wan`'s tracker leaves wan2's alone.
    let wan2_pid = tracker_pid(&s, "wan2");
    assert!(m.ctl(&["restart", "wan"]).status.success());
    let s = m.wait(20, "wan's tracker back", |s| tracker_connected(s, "wan"));
    assert_eq!(
        tracker_pid(&s, "wan2"),
        wan2_pid,
        "restart wan touched wan2's tracker"
    );
    // A cut of `wan` is `wan`'s alone: state, hook, policy.
    tb.cut("wan1").expect("cut");
    let s = m.wait(30, "wan offline", |s| state(s, "wan") == "offline");
    assert_eq!(state(&s, "wan2"), "online");
    assert_eq!(active(&s, "failover"), ["wan2"]);
    let hooks = m.hooks_text();
    assert!(
        hooks.lines().any(|l| l == "disconnected wan eth1"),
        "{hooks}"
    );
    assert!(
        !hooks.lines().any(|l| l.starts_with("disconnected wan2")),
        "{hooks}"
    );
    // Each name has its own marks and rules: wan2's pin rule stays, wan's goes.
    let rules = tb
        .exec_ok(Role::Router, &["ip", "-4", "rule"])
        .expect("rules");
    assert_eq!(
        rules.lines().filter(|l| l.starts_with("17")).count(),
        1,
        "{rules}"
    );
    assert_eq!(
        lan_http(&tb, 5)
            .as_deref()
            .and_then(|a| wan_of_answer(&tb, a)),
        Some("wan2")
    );
    tb.restore("wan1").expect("restore");
}

/// fw4 reload (`nft flush ruleset` and fw4's table loaded again) and an
/// `ip rule flush` once left mwan3 without its rules until its next
/// ifup; mwand puts back its table and rules by itself. The time it took
/// is printed (a figure, not asserted: benchmarks give timings).
#[test]
fn a_flushed_ruleset_and_flushed_rules_are_put_back() {
    let Some((tb, m, _)) = two_wans_online() else {
        return;
    };
    std::thread::sleep(Duration::from_millis(500));
    let ours = || {
        tb.exec_ok(Role::Router, &["nft", "list", "table", "inet", "mwan"])
            .unwrap_or_default()
    };
    let rules = || {
        tb.exec_ok(Role::Router, &["ip", "-4", "rule"])
            .expect("rules")
    };
    let (table_before, rules_before) = (ours(), rules());
    let fw4 = tb
        .exec_ok(Role::Router, &["nft", "list", "table", "inet", "fw4"])
        .expect("fw4");
    // fw4 reload: the whole ruleset flushed, fw4's own table loaded again.
    let flushed = Instant::now();
    tb.exec_ok(Role::Router, &["nft", "flush", "ruleset"])
        .expect("flush");
    let fw4_file = m.dir.join("fw4.nft");
    std::fs::write(&fw4_file, &fw4).expect("fw4 file");
    tb.exec_ok(Role::Router, &["nft", "-f", path_str(&fw4_file)])
        .expect("fw4 back");
    let back = wait_until(10, || ours() == table_before);
    assert!(
        back.is_some(),
        "table inet mwan not put back:\n{}\n{}",
        ours(),
        m.log_text()
    );
    println!(
        "nft flush ruleset: table back {} ms after the flush",
        back.unwrap().duration_since(flushed).as_millis()
    );
    let flushed = Instant::now();
    tb.exec_ok(Role::Router, &["ip", "-4", "rule", "flush"])
        .expect("rule flush");
    let back = wait_until(10, || {
        let now = rules();
        rules_before
            .lines()
            .filter(|l| !l.starts_with("0:") && !l.starts_with("3276"))
            .all(|l| now.contains(l))
    });
    assert!(
        back.is_some(),
        "rules not put back:\n{}\nbefore:\n{rules_before}",
        rules()
    );
    println!(
        "ip rule flush: rules back {} ms after the flush",
        back.unwrap().duration_since(flushed).as_millis()
    );
    assert_eq!(
        lan_http(&tb, 5)
            .as_deref()
            .and_then(|a| wan_of_answer(&tb, a)),
        Some("wan1")
    );
    let s = m.status();
    assert!(s["dataplane"]["nft_installs"].as_u64() >= Some(2), "{s:#}");
}

/// Polls `done` every 20 ms for at most `secs`; the moment it held.
fn wait_until(secs: u64, done: impl Fn() -> bool) -> Option<Instant> {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if done() {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// mwan3 and its nftables port: a WAN with no gateway (PPP, WireGuard,
/// a tunnel: point-to-point, default route on-link) got no route in its
/// table and was never used. Here a veth with /32 addresses and a peer
/// route stands in for one (this kernel has no ipip, gre or wireguard; a
/// tun device would need a userspace relay): router `ptp3`
/// 198.51.100.250 peer .249, straight into the internet namespace, whose
/// loopback hosts answer ARP on it as a PPP peer answers on its link.
#[test]
fn a_point_to_point_wan_without_gateway_is_tracked_and_used() {
    if !mwan_testbed::require_netns() {
        return;
    }
    let tb = testbed(2, 43);
    let (router, inet) = (tb.router_ns().to_string(), tb.internet_ns().to_string());
    let ip = |ns: &str, args: &str| {
        let mut argv = vec!["ip", "-n", ns];
        argv.extend(args.split_whitespace());
        let out = std::process::Command::new("ip")
            .args(&argv[1..])
            .output()
            .expect("ip");
        assert!(
            out.status.success(),
            "ip {args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ip(
        &router,
        &format!("link add ptp3 type veth peer name ptp3 netns {inet}"),
    );
    ip(
        &router,
        "addr add 198.51.100.250/32 peer 198.51.100.249 dev ptp3",
    );
    ip(
        &inet,
        "addr add 198.51.100.249/32 peer 198.51.100.250 dev ptp3",
    );
    ip(&router, "link set ptp3 up");
    ip(&inet, "link set ptp3 up");
    // As netifd installs a PPP default: on-link, no `via`.
    ip(&router, "route add default dev ptp3 metric 10");
    for rule in [
        "add rule inet fw4 srcnat oifname \"ptp3\" masquerade",
        "insert rule inet fw4 forward iifname \"eth0\" oifname \"ptp3\" accept",
    ] {
        tb.exec_ok(Role::Router, &["nft", rule])
            .expect("fw4 rule for ptp3");
    }
    let ptp = "\nconfig interface 'wan3'\n\toption enabled '1'\n\toption device 'ptp3'\n\
               \tlist track_ip '203.0.113.1'\n\tlist track_ip '203.0.113.2'\n\toption reliability '1'\n\
               \toption interval '0.2'\n\toption failure_interval '0.2'\n\toption recovery_interval '0.2'\n\
               \toption timeout '3'\n\toption down '3'\n\toption up '10'\n\n\
               config member 'wan3_p'\n\toption interface 'wan3'\n\toption metric '1'\n\n\
               config member 'wan2_p'\n\toption interface 'wan2'\n\toption metric '2'\n\n\
               config policy 'ptp'\n\tlist use_member 'wan3_p'\n\tlist use_member 'wan2_p'\n\n\
               config rule 'web'\n\toption dest_ip '203.0.113.80'\n\toption use_policy 'ptp'\n";
    let text = config(tb.wans(), &ours).replacen(
        "\nconfig rule 'everything'",
        &format!("{ptp}\nconfig rule 'everything'"),
        1,
    );
    let m = Mwand::start(&tb, &text);
    let s = m.wait(30, "wan3 online", |s| state(s, "wan3") == "online");
    assert_eq!(active(&s, "ptp"), ["wan3"], "{s:#}");
    let routes = tb
        .exec_ok(
            Role::Router,
            &["ip", "-4", "route", "show", "table", "all", "proto", "77"],
        )
        .expect("routes");
    assert!(
        routes
            .lines()
            .any(|l| l.starts_with("default dev ptp3 table") && !l.contains("via")),
        "no on-link default route of wan3:\n{routes}"
    );
    let answer = lan_http(&tb, 5).unwrap_or_default();
    assert!(
        answer.contains("198.51.100.250"),
        "the web rule did not use wan3: {answer}"
    );
    // A silent cut of the point-to-point link: wan3 fails like any WAN.
    for cmd in [
        "add table inet cut",
        "add chain inet cut c { type filter hook prerouting priority -300; }",
        "add rule inet cut c iifname \"ptp3\" drop",
    ] {
        tb.exec_ok(Role::Internet, &["nft", cmd]).expect("cut ptp3");
    }
    let s = m.wait(30, "wan3 offline", |s| state(s, "wan3") == "offline");
    assert_eq!(active(&s, "ptp"), ["wan2"], "{s:#}");
    let answer = lan_http(&tb, 5).unwrap_or_default();
    assert_eq!(wan_of_answer(&tb, &answer), Some("wan2"), "{answer}");
}
