//! Automatic mode on the testbed: mwand started with no config file at all
//! finds both WANs from the router's default routes (one per device, by
//! metric), tracks each gateway plus the targets it is given (the testbed's
//! own hosts: tests never probe public addresses), builds policy
//! `failover`, and fails over on a silent cut. `mwanctl status` says so and
//! `mwanctl config --write` prints UCI that `mwanctl check` accepts.
//!
//! Needs root and `cargo build --workspace --bins` first.

mod mwand_harness;

use mwand_harness::*;

/// The interfaces `mwanctl status --json` lists, in its order.
fn interface_names(status: &serde_json::Value) -> Vec<&str> {
    status["interfaces"]
        .as_array()
        .expect("interfaces")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect()
}

#[test]
fn with_no_config_mwand_finds_both_wans_and_fails_over() {
    if !mwan_testbed::require_netns() {
        return;
    }
    let tb = testbed(2, 1);
    let mut args = vec!["--supervisor".to_string(), "embedded".to_string()];
    for t in &tb.targets().icmp_v4 {
        args.push("--auto-track-ip".into());
        args.push(t.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let m = Mwand::start_without_config(&tb, &args);
    assert!(
        !m.config.exists(),
        "the test must start without a config file"
    );
    let (first, second) = (&tb.wans()[0].device, &tb.wans()[1].device);

    let s = m.wait(30, "both WANs found and online", all_online);
    let names = interface_names(&s);
    assert_eq!(names, [first.as_str(), second.as_str()], "{s:#}");
    assert!(
        s["config"]
            .as_str()
            .is_some_and(|c| c.starts_with("automatic mode")),
        "{s:#}"
    );
    m.wait(10, "failover on the first WAN", |s| {
        active(s, "failover") == [first.as_str()]
    });
    let answer = lan_http(&tb, 5).expect("LAN fetch");
    assert_eq!(wan_of_answer(&tb, &answer), Some("wan1"), "{answer}");

    let text = String::from_utf8(m.ctl(&["status"]).stdout).expect("utf-8");
    assert!(text.contains("config automatic mode"), "{text}");

    tb.cut("wan1").expect("cut");
    m.wait(60, "failover to the second WAN", |s| {
        active(s, "failover") == [second.as_str()]
    });
    let answer = lan_http(&tb, 5).expect("LAN fetch during the cut");
    assert_eq!(wan_of_answer(&tb, &answer), Some("wan2"), "{answer}");

    // The timeline has the cut with its reason, over the control socket.
    let history = String::from_utf8(m.ctl(&["history"]).stdout).expect("utf-8");
    assert!(
        history.contains(&format!("state {first}: online -> disconnecting")),
        "{history}"
    );
    assert!(history.contains("policy failover:"), "{history}");

    // The config it runs, written down, is a config mwanctl check accepts.
    let out = m.ctl(&["config", "--write"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let uci = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        uci.contains(&format!("config interface '{first}'")),
        "{uci}"
    );
    let target = tb.targets().icmp_v4[0].to_string();
    assert!(uci.contains(&format!("list track_ip '{target}'")), "{uci}");
    let written = m.dir.join("written");
    std::fs::write(&written, &uci).expect("write");
    let out = m.ctl(&["check", "--config", path_str(&written)]);
    assert!(
        out.status.success(),
        "{uci}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn an_empty_config_file_is_not_automatic_mode() {
    if !mwan_testbed::require_netns() {
        return;
    }
    let tb = testbed(1, 1);
    let m = Mwand::start(&tb, "");
    let s = m.status();
    assert_eq!(s["interfaces"].as_array().map(Vec::len), Some(0), "{s:#}");
    assert!(
        !s["config"].as_str().unwrap_or("").starts_with("automatic"),
        "{s:#}"
    );
    let out = m.ctl(&["config", "--write"]);
    assert!(
        !out.status.success(),
        "config --write without automatic mode"
    );
}

/// fw4's zones as OpenWrt writes them: `vpn` has a default route but sits
/// in the lan zone; `wan2_6` is not listed, it is in the wan zone by
/// netifd's `data.zone` (as PPPoE's dynamic `wan_6` is).
const FIREWALL: &str = "\
config defaults
\toption input 'REJECT'

config zone
\toption name 'lan'
\tlist network 'lan'
\tlist network 'vpn'

config zone
\toption name 'wan'
\tlist network 'wan1'
\tlist network 'wan1_6'
\tlist network 'wan2'
\tlist network 'wwan'
\toption masq '1'
";

/// netifd's dump for automatic mode: per testbed WAN an IPv4 interface
/// (`wan1`) and an IPv6 one on the same device (`wan1_6`), as OpenWrt's
/// wan/wan6; `lan` without a default route; `vpn` with one, outside the
/// wan zone; `wwan`, in the wan zone and down (as at boot, before DHCP).
fn dual_stack_dump(tb: &mwan_testbed::Testbed) -> String {
    let mut interfaces = Vec::new();
    for (i, w) in tb.wans().iter().enumerate() {
        let up = |name: String, address: String, mask: u8, route: serde_json::Value, data| {
            serde_json::json!({
                "interface": name, "up": true, "pending": false, "available": true,
                "autostart": true, "dynamic": false, "uptime": 100, "proto": "static",
                "device": w.device, "l3_device": w.device, "metric": w.metric,
                (if address.contains(':') { "ipv6-address" } else { "ipv4-address" }):
                    [{"address": address, "mask": mask}],
                "route": [route], "data": data
            })
        };
        interfaces.push(up(
            w.name.clone(),
            w.router_v4.to_string(),
            w.v4_prefix,
            serde_json::json!({"target": "0.0.0.0", "mask": 0, "nexthop": w.gateway_v4.to_string(), "metric": w.metric}),
            serde_json::json!({}),
        ));
        let data = if i == 1 {
            serde_json::json!({"zone": "wan"})
        } else {
            serde_json::json!({})
        };
        interfaces.push(up(
            format!("{}_6", w.name),
            w.router_v6.to_string(),
            w.v6_prefix,
            serde_json::json!({"target": "::", "mask": 0, "nexthop": w.gateway_v6.to_string(), "metric": w.metric}),
            data,
        ));
    }
    let lan = tb.lan();
    interfaces.push(serde_json::json!({
        "interface": "lan", "up": true, "proto": "static", "device": lan.router_device,
        "l3_device": lan.router_device,
        "ipv4-address": [{"address": lan.router_v4.to_string(), "mask": 24}], "route": [], "data": {}
    }));
    interfaces.push(serde_json::json!({
        "interface": "wwan", "up": false, "pending": true, "available": true, "proto": "dhcp", "metric": 100,
        "device": "wlan-none", "data": {}
    }));
    interfaces.push(serde_json::json!({
        "interface": "vpn", "up": true, "proto": "wireguard", "device": lan.router_device,
        "l3_device": lan.router_device, "metric": 0,
        "route": [{"target": "0.0.0.0", "mask": 0, "nexthop": "0.0.0.0"}], "data": {}
    }));
    serde_json::json!({ "interface": interfaces }).to_string()
}

/// mwand in automatic mode with the double playing netifd, `firewall`
/// beside its (absent) config, tracking the testbed's first IPv4 and IPv6
/// targets.
fn automatic_on_netifd(tb: &mwan_testbed::Testbed, netifd: &WithNetifd, firewall: &str) -> Mwand {
    let mut args = vec![
        "--supervisor".to_string(),
        "embedded".into(),
        "--ubus-socket".into(),
        path_str(&netifd.double.socket).into(),
    ];
    let targets = tb.targets();
    for t in [
        targets.icmp_v4[0].to_string(),
        targets.icmp_v6[0].to_string(),
    ] {
        args.extend(["--auto-track-ip".into(), t]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Mwand::start_without_config_beside(tb, &args, &[("firewall", firewall)])
}

/// fw4's wan zone listing the testbed's two WANs.
const WAN_ZONE: &str = "\
config zone
\toption name 'wan'
\tlist network 'wan1'
\tlist network 'wan2'
";

/// Two testbed WANs in fw4's wan zone, the first `listed` of them in
/// netifd's dump; mwand in automatic mode once every WAN it found is
/// online. None without netns.
fn automatic_in_wan_zone(
    listed: usize,
) -> Option<(mwan_testbed::Testbed, WithNetifd, Mwand, serde_json::Value)> {
    if !mwan_testbed::require_netns() {
        return None;
    }
    let tb = testbed(2, 1);
    let netifd = WithNetifd::start(&tb, &[]);
    std::fs::write(&netifd.netifd, netifd_dump(&tb.wans()[..listed], &[])).expect("netifd dump");
    let m = automatic_on_netifd(&tb, &netifd, WAN_ZONE);
    let s = m.wait(30, "the WANs netifd lists found and online", |s| {
        interface_names(s).len() == listed && all_online(s)
    });
    Some((tb, netifd, m, s))
}

/// The double (ubusd and netifd) stopped with SIGSTOP until dropped: it
/// answers nothing, as a hung netifd or ubusd would.
struct Stopped<'a>(&'a Double);

impl Stopped<'_> {
    fn new(double: &Double) -> Stopped<'_> {
        double.signal(libc::SIGSTOP);
        Stopped(double)
    }
}

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        self.0.signal(libc::SIGCONT);
    }
}

/// Issue 13's rule: nothing blocks mwand's loop. A reload in automatic
/// mode uses the netifd facts mwand holds: with ubusd and netifd hung it
/// still answers, keeps netifd's WANs (it used to call netifd, give up
/// after 2 s and fall back to the kernel's routes, renaming every WAN
/// after its device) and status keeps answering.
#[test]
fn an_automatic_reload_with_netifd_hung_answers_from_the_facts_held() {
    let Some((_tb, netifd, m, s)) = automatic_in_wan_zone(2) else {
        return;
    };
    assert_eq!(interface_names(&s), ["wan1", "wan2"], "{s:#}");

    let hung = Stopped::new(&netifd.double);
    let reload = m.ctl(&["reload"]);
    let answer = String::from_utf8_lossy(&reload.stdout).into_owned()
        + &String::from_utf8_lossy(&reload.stderr);
    assert!(reload.status.success(), "reload: {answer}");
    assert!(answer.contains("unchanged"), "reload: {answer}");
    for _ in 0..3 {
        let s = m.status();
        assert_eq!(interface_names(&s), ["wan1", "wan2"], "{s:#}");
        assert!(all_online(&s), "{s:#}");
    }
    drop(hung);
    let log = m.log_text();
    assert!(!log.contains("no netifd"), "{log}");
}

/// A WAN-zone interface netifd brings up after mwand started (a USB
/// modem, PPPoE's `wan_6`) becomes a WAN without a reload: netifd's ifup
/// of an interface that is not a WAN makes mwand read netifd's list again.
#[test]
fn an_interface_netifd_brings_up_later_in_the_wan_zone_becomes_a_wan() {
    let Some((tb, netifd, m, s)) = automatic_in_wan_zone(1) else {
        return;
    };
    assert_eq!(interface_names(&s), ["wan1"], "{s:#}");

    // netifd creates wan2's object, then publishes ifup.
    std::fs::write(&netifd.netifd, netifd_dump(tb.wans(), &[])).expect("netifd dump");
    netifd.double.signal(libc::SIGUSR1);
    std::thread::sleep(std::time::Duration::from_millis(300));
    netifd.double.signal(libc::SIGUSR2);
    let s = m.wait(30, "wan2 a WAN, online and tracked", |s| {
        interface_names(s).contains(&"wan2")
            && state(s, "wan2") == "online"
            && tracker_connected(s, "wan2")
    });
    assert_eq!(interface_names(&s), ["wan1", "wan2"], "{s:#}");
    let uci = String::from_utf8(m.ctl(&["config", "--write"]).stdout).expect("utf-8");
    assert!(uci.contains("config interface 'wan2'"), "{uci}");
    assert!(uci.contains("list use_member 'wan2_m'"), "{uci}");
    assert_eq!(state(&s, "wan1"), "online", "wan1 kept: {s:#}");
}

#[test]
fn on_openwrt_the_wans_are_netifds_wan_zone_interfaces_ipv4_and_ipv6() {
    if !mwan_testbed::require_netns() {
        return;
    }
    let tb = testbed(2, 1);
    // The double reads its dump file at every call: ours replaces the
    // harness's before mwand asks.
    let netifd = WithNetifd::start(&tb, &[]);
    std::fs::write(&netifd.netifd, dual_stack_dump(&tb)).expect("netifd dump");
    let m = automatic_on_netifd(&tb, &netifd, FIREWALL);
    let targets = tb.targets();

    let up = ["wan1", "wan2", "wan1_6", "wan2_6"];
    let s = m.wait(30, "four WANs found and online", |s| {
        up.iter()
            .all(|w| state(s, w) == "online" && tracker_connected(s, w))
    });
    // wwan is down: a WAN all the same, taken for IPv4 by its protocol.
    let names = interface_names(&s);
    assert_eq!(names, ["wan1", "wan2", "wwan", "wan1_6", "wan2_6"], "{s:#}");

    let uci = String::from_utf8(m.ctl(&["config", "--write"]).stdout).expect("utf-8");
    let wan1_6 = &tb.wans()[0].gateway_v6;
    assert!(
        uci.contains(&format!(
            "config interface 'wan1_6'\n\toption enabled '1'\n\toption family 'ipv6'\n\tlist track_ip '{wan1_6}'\n\tlist track_ip '{}'",
            targets.icmp_v6[0]
        )),
        "{uci}"
    );
    assert!(!uci.contains("'vpn'") && !uci.contains("'lan'"), "{uci}");
    assert!(
        uci.contains(&format!(
            "config interface 'wwan'\n\toption enabled '1'\n\toption family 'ipv4'\n\tlist track_ip '{}'\n",
            targets.icmp_v4[0]
        )),
        "{uci}"
    );
    assert!(
        !uci.contains("option device"),
        "netifd names the devices: {uci}"
    );

    m.wait(10, "failover on wan1 and wan1_6", |s| {
        active(s, "failover") == ["wan1", "wan1_6"]
    });
    for ipv6 in [false, true] {
        let answer = lan_http_over(&tb, ipv6, 5).expect("LAN fetch");
        assert_eq!(wan_of_answer(&tb, &answer), Some("wan1"), "{answer}");
    }

    tb.cut("wan1").expect("cut");
    m.wait(60, "failover to wan2 and wan2_6", |s| {
        active(s, "failover") == ["wan2", "wan2_6"]
    });
    for ipv6 in [false, true] {
        let answer = lan_http_over(&tb, ipv6, 5).expect("LAN fetch during the cut");
        assert_eq!(
            wan_of_answer(&tb, &answer),
            Some("wan2"),
            "ipv6 {ipv6}: {answer}"
        );
    }
}
