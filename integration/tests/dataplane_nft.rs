//! The nft half of the data plane (table `inet mwan`, conntrack) on the real
//! kernel: bytes equal to what `nft -f` sends, atomic replacement that keeps
//! set elements next to fw4's table, connection pinning (flows keep their
//! WAN when the nexthop set changes; a port forward and a router service on
//! wan2 answer through wan2 while policy prefers wan1), conntrack deletion by
//! mark, sticky sources.
//!
//! mwand is not involved: the test plays its part (plan, routes and rules via
//! the routing adapter, then the nft table) with strict rp_filter on. Tests
//! use `nft`, `strace` and `conntrack` to read state back (apt packages
//! nftables, strace, conntrack).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mwan_core::config::{Config, Family, PortRange};
use mwan_core::health::LinkState;
use mwan_core::plan::nft::{self as nftplan, NftTable};
use mwan_core::plan::{
    build, diff, Allocation, NetworkPlan, PlanInput, PlanSettings, PolicyRoutes, WanAddress,
    WanFacts, WanInput, DEFAULT_PROTOCOL,
};
use mwan_core::policy::{self, Overrides, PolicyMemory, WanView};
use mwan_netlink::conntrack::{Conntrack, FlushReport};
use mwan_netlink::nft::{self, Drift, Nft, NftWatch};
use mwan_netlink::{in_netns, link::Snapshot, sysctl, Rtnl};
use mwan_testbed::{require_netns, Role, Testbed, TestbedOptions};
use serde_json::Value;

mod dataplane_common;
use dataplane_common::{connect_from_internet, router_state, serve_echo};

const TIMEOUT: Duration = Duration::from_secs(3);

/// A config read by the real parser: wanN (IPv4) and wanN_6 (IPv6) per
/// weight, members mN/mN_6, policies only_wanN and balanced, then `rules`.
fn config(weights: &[u32], rules: &[String]) -> Config {
    let mut text = String::new();
    let mut balanced = String::new();
    for (i, w) in weights.iter().enumerate() {
        let n = i + 1;
        let mut only = format!("config policy 'only_wan{n}'\n");
        for (suffix, family) in [("", "ipv4"), ("_6", "ipv6")] {
            text += &format!(
                "config interface 'wan{n}{suffix}'\n\toption enabled '1'\n\toption family '{family}'\n\
                 config member 'm{n}{suffix}'\n\toption interface 'wan{n}{suffix}'\n\toption weight '{w}'\n"
            );
            let member = format!("\tlist use_member 'm{n}{suffix}'\n");
            only += &member;
            balanced += &member;
        }
        text += &only;
    }
    text += &format!("config policy 'balanced'\n{balanced}");
    for r in rules {
        text += r;
    }
    mwan_core::config::parse("dataplane_nft", &text)
        .unwrap_or_else(|e| panic!("test config: {:?}\n{text}", e.problems))
        .config
}

/// A `config rule` section sending matches to `policy`.
fn rule(name: &str, policy: &str, options: &[(&str, &str)]) -> String {
    let mut r = format!("config rule '{name}'\n\toption use_policy '{policy}'\n");
    for (k, v) in options {
        r += &format!("\toption {k} '{v}'\n");
    }
    r
}

/// The real resolver's decisions with each WAN up or down as `usable` says
/// (absent = up): lowest usable metric tier, weights, last resort.
fn decisions(config: &Config, usable: &BTreeMap<String, bool>) -> Vec<PolicyRoutes> {
    let views: Vec<WanView> = config
        .interfaces
        .iter()
        .map(|i| {
            let up = usable.get(&i.name).copied().unwrap_or(true);
            WanView {
                interface: i.name.clone(),
                state: if up {
                    LinkState::Online
                } else {
                    LinkState::Offline
                },
                since: 0,
                usable: up,
                usable_since: up.then_some(0),
                score: None,
                quality: None,
            }
        })
        .collect();
    let mut memory = PolicyMemory::default();
    policy::resolve(config, &views, &Overrides::default(), &mut memory, 0)
        .iter()
        .map(PolicyRoutes::from)
        .collect()
}

/// mwand's part: facts, plan, routes and rules, then the nft table.
struct Driver<'a> {
    tb: &'a Testbed,
    config: Config,
    usable: BTreeMap<String, bool>,
    allocation: Allocation,
    saved: sysctl::Saved,
}

impl<'a> Driver<'a> {
    fn new(tb: &'a Testbed, config: Config) -> Self {
        Driver {
            tb,
            config,
            usable: BTreeMap::new(),
            allocation: Allocation::default(),
            saved: sysctl::Saved::default(),
        }
    }

    /// Routes/rules synced and the nft table replaced (`with_nft`).
    fn sync(&mut self, with_nft: bool) -> (NetworkPlan, NftTable) {
        let tb = self.tb;
        in_netns(tb.router_ns(), || {
            if self.saved.is_empty() {
                self.saved.apply_dataplane_defaults().expect("sysctls");
            }
            let mut rtnl = Rtnl::open(DEFAULT_PROTOCOL).expect("rtnetlink");
            let snap = Snapshot::take(rtnl.socket(), DEFAULT_PROTOCOL).expect("snapshot");
            let mut wans = Vec::new();
            for w in tb.wans() {
                let facts = snap.wan_facts(&w.device);
                for (suffix, family) in [("", Family::Ipv4), ("_6", Family::Ipv6)] {
                    let interface = format!("{}{suffix}", w.name);
                    let usable = self.usable.get(&interface).copied().unwrap_or(true);
                    wans.push(WanInput {
                        interface,
                        family,
                        facts: facts.clone(),
                        usable,
                    });
                }
            }
            let devices = BTreeMap::new();
            let plan = build(&PlanInput {
                config: &self.config,
                settings: PlanSettings::from_config(&self.config),
                wans: &wans,
                policies: &decisions(&self.config, &self.usable),
                devices: &devices,
                main_defaults: &[],
                previous: &self.allocation,
            })
            .expect("plan builds");
            self.allocation = plan.allocation.clone();
            let observed = rtnl.observe().expect("observe");
            let report = rtnl
                .apply(&diff(&plan.objects, &observed))
                .expect("apply routes");
            assert!(report.failed.is_empty(), "{:#?}", report.failed);
            let table = nftplan::build(&plan, &self.config, &devices).expect("nft table");
            if with_nft {
                Nft::open()
                    .expect("nf_tables socket")
                    .replace(&table)
                    .expect("replace inet mwan");
            }
            (plan, table)
        })
        .expect("enter router ns")
    }

    /// Stop: table, routes, rules, sysctls.
    fn stop(&mut self) {
        let saved = &mut self.saved;
        in_netns(self.tb.router_ns(), || {
            Nft::open().unwrap().delete_table().expect("delete table");
            let r = Rtnl::open(DEFAULT_PROTOCOL)
                .unwrap()
                .teardown()
                .expect("teardown");
            assert!(r.failed.is_empty(), "{:?}", r.failed);
            saved.restore().expect("restore sysctls");
        })
        .expect("enter router ns");
    }
}

fn nft_json(tb: &Testbed, args: &[&str]) -> Value {
    let mut argv = vec!["nft", "-j"];
    argv.extend_from_slice(args);
    let out = tb.exec_ok(Role::Router, &argv).expect("nft -j");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("nft -j {args:?}: {e}: {out}"))
}

/// Objects of one kind ("chain", "rule", "set", ...) in `nft -j list` output.
fn objects<'v>(v: &'v Value, kind: &str) -> Vec<&'v Value> {
    v["nftables"]
        .as_array()
        .expect("nftables array")
        .iter()
        .filter_map(|o| o.get(kind))
        .collect()
}

fn set_elements(tb: &Testbed, set: &str) -> Vec<String> {
    let v = nft_json(tb, &["list", "set", "inet", "mwan", set]);
    let sets = objects(&v, "set");
    let Some(elems) = sets[0].get("elem").and_then(|e| e.as_array()) else {
        return Vec::new();
    };
    elems
        .iter()
        .map(|e| match e {
            Value::String(s) => s.clone(),
            // {"elem": {"val": "...", "timeout": .., "expires": ..}} or a prefix
            other => other
                .pointer("/elem/val")
                .map(|v| v.to_string())
                .unwrap_or_else(|| other.to_string()),
        })
        .map(|s| s.trim_matches('"').to_string())
        .collect()
}

/// What dnsmasq's nftset or a sticky decision would do.
fn add_element(tb: &Testbed, set: &str, element: &str) {
    tb.exec_ok(
        Role::Router,
        &[
            "nft",
            "add",
            "element",
            "inet",
            "mwan",
            set,
            &format!("{{ {element} }}"),
        ],
    )
    .unwrap_or_else(|e| panic!("add {element} to {set}: {e}"));
}

fn wan_v4(tb: &Testbed, n: usize) -> IpAddr {
    IpAddr::V4(tb.wans()[n - 1].router_v4)
}

fn target(list: &[SocketAddr]) -> SocketAddr {
    *list.iter().find(|a| a.is_ipv4()).expect("IPv4 target")
}

/// One HTTP request from the LAN; the address the server saw.
fn http_from_lan(tb: &Testbed, count: usize) -> BTreeMap<IpAddr, usize> {
    http_from(tb, tb.lan_ns(), Family::Ipv4, count)
}

/// `count` HTTP requests from namespace `ns` to the target of `family`;
/// how often the server saw each client address (one per WAN after NAT).
fn http_from(tb: &Testbed, ns: &str, family: Family, count: usize) -> BTreeMap<IpAddr, usize> {
    let addr = *tb
        .targets()
        .http
        .iter()
        .find(|a| a.is_ipv4() == (family == Family::Ipv4))
        .expect("HTTP target of the family");
    in_netns(ns, || {
        let mut seen = BTreeMap::new();
        for _ in 0..count {
            let mut s = TcpStream::connect_timeout(&addr, TIMEOUT)
                .unwrap_or_else(|e| panic!("connect {addr} from {ns}: {e}"));
            s.set_read_timeout(Some(TIMEOUT)).unwrap();
            s.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("send");
            let mut body = String::new();
            s.read_to_string(&mut body).expect("read");
            let ip: IpAddr = body
                .lines()
                .last()
                .and_then(|l| l.trim().parse().ok())
                .unwrap_or_else(|| panic!("no address in {body:?}"));
            *seen.entry(ip).or_insert(0) += 1;
        }
        seen
    })
    .expect("enter namespace")
}

/// The only WAN (1-based) the server saw requests from.
fn only_wan(tb: &Testbed, seen: &BTreeMap<IpAddr, usize>) -> usize {
    assert_eq!(seen.len(), 1, "requests split over WANs: {seen:?}");
    let ip = *seen.keys().next().unwrap();
    (1..=tb.wans().len())
        .find(|n| {
            let w = &tb.wans()[n - 1];
            ip == IpAddr::V4(w.router_v4) || ip == IpAddr::V6(w.router_v6)
        })
        .unwrap_or_else(|| panic!("{ip} is no WAN address"))
}

/// `count` open connections from the LAN to the TCP echo service.
fn echo_connections(tb: &Testbed, count: usize) -> Vec<TcpStream> {
    let addr = target(&tb.targets().tcp_echo);
    in_netns(tb.lan_ns(), || {
        (0..count)
            .map(|i| {
                let mut s = TcpStream::connect_timeout(&addr, TIMEOUT)
                    .unwrap_or_else(|e| panic!("connect {addr} from the LAN: {e}"));
                s.set_read_timeout(Some(TIMEOUT)).unwrap();
                assert!(echo(&mut s, i), "fresh connection {i} echoes");
                s
            })
            .collect()
    })
    .expect("enter LAN ns")
}

/// Does the connection still carry data both ways?
fn echo(s: &mut TcpStream, i: usize) -> bool {
    let msg = format!("hello {i}\n");
    if s.write_all(msg.as_bytes()).is_err() {
        return false;
    }
    let mut buf = vec![0u8; msg.len()];
    s.read_exact(&mut buf).is_ok() && buf == msg.as_bytes()
}

fn ct_count(tb: &Testbed, mark: u32, mask: u32) -> usize {
    in_netns(tb.router_ns(), || {
        Conntrack::open()
            .expect("ctnetlink")
            .count_by_mark(mark, mask)
            .expect("count")
    })
    .expect("enter router ns")
}

/// The same count through conntrack-tools.
fn ct_count_tool(tb: &Testbed, mark: u32, mask: u32) -> usize {
    tb.exec_ok(
        Role::Router,
        &["conntrack", "-L", "--mark", &format!("{mark}/{mask}")],
    )
    .expect("conntrack -L")
    .lines()
    .filter(|l| l.contains("mark="))
    .count()
}

// ---------------------------------------------------------------- golden

static NS_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A bare network namespace, removed on drop (also on panic).
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let name = format!(
            "mwnft{}-{}",
            std::process::id(),
            NS_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "ip netns add {name}");
        Netns(name)
    }

    fn run(&self, argv: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(argv)
            .output()
            .unwrap_or_else(|e| panic!("run {argv:?}: {e}"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let ok = Command::new("ip")
            .args(["netns", "del", &self.0])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("could not remove netns {}", self.0);
        }
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A tool tests need: missing is a loud failure under CI, a skip otherwise.
fn need(tool: &str, package: &str) -> bool {
    if have(tool) {
        return true;
    }
    let msg = format!("`{tool}` missing: apt-get install -y {package}");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}");
    }
    eprintln!("SKIP: {msg}");
    false
}

/// The hex dump strace prints for data sent with sendmsg, per call.
fn strace_sendmsg_payloads(stderr: &str) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for line in stderr.lines() {
        if line.starts_with("sendmsg(") {
            out.push(Vec::new());
            continue;
        }
        // " | 00000  14 00 00 00 10 00 01 00  00 00 00 00 00 00 00 00  ................ |"
        let Some(rest) = line.trim_start().strip_prefix("| ") else {
            continue;
        };
        let Some(cur) = out.last_mut() else { continue };
        let hex = rest.get(7..56).unwrap_or("");
        for tok in hex.split_whitespace() {
            if let Ok(b) = u8::from_str_radix(tok, 16) {
                cur.push(b);
            }
        }
    }
    out
}

/// A table as the planner builds it for a config with every feature.
fn feature_table() -> NftTable {
    let rules = [
        rule(
            "sticky_web",
            "balanced",
            &[
                ("proto", "tcp"),
                ("dest_port", "80"),
                ("sticky", "1"),
                ("timeout", "120"),
            ],
        ),
        rule(
            "https",
            "only_wan2",
            &[("proto", "tcp"), ("dest_port", "443")],
        ),
        rule("video", "only_wan2", &[("ipset", "video")]),
        rule(
            "logged",
            "only_wan1",
            &[("src_ip", "192.0.2.0/25"), ("logging", "1")],
        ),
    ];
    let config = config(&[3, 1], &rules);
    let facts = |dev: &str, n: u8| WanFacts {
        device: dev.into(),
        ifindex: u32::from(n) + 1,
        up: true,
        carrier: true,
        addresses: vec![WanAddress {
            addr: format!("198.51.100.{}", 8 * (n - 1) + 2).parse().unwrap(),
            prefix_len: 29,
            tentative: false,
        }],
        gateway_v4: Some(format!("198.51.100.{}", 8 * (n - 1) + 1).parse().unwrap()),
        gateway_v6: Some("fe80::1".parse().unwrap()),
        main_routes: vec![],
    };
    let mut wans = Vec::new();
    for n in 1..=2u8 {
        for (suffix, family) in [("", Family::Ipv4), ("_6", Family::Ipv6)] {
            wans.push(WanInput {
                interface: format!("wan{n}{suffix}"),
                family,
                facts: facts(&format!("eth{n}"), n),
                usable: true,
            });
        }
    }
    let devices = BTreeMap::new();
    let plan = build(&PlanInput {
        config: &config,
        settings: PlanSettings::from_config(&config),
        wans: &wans,
        policies: &PolicyRoutes::all_members(&config, |_| true),
        devices: &devices,
        main_defaults: &[],
        previous: &Allocation::default(),
    })
    .expect("plan");
    nftplan::build(&plan, &config, &devices).expect("nft table")
}

#[test]
fn encoder_sends_what_nft_sends_and_the_kernel_lists_the_same_table() {
    if !require_netns() || !need("nft", "nftables") || !need("strace", "strace") {
        return;
    }
    let table = feature_table();
    let text = table.to_string();
    let dir = std::env::temp_dir().join(format!("mwan-nft-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("table.nft");
    std::fs::write(&file, &text).unwrap();

    // nft -f in one namespace, captured.
    let by_nft = Netns::new();
    let out = by_nft.run(&[
        "strace",
        "-s0",
        "-e",
        "trace=sendmsg",
        "-e",
        "write=all",
        "nft",
        "-f",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "nft -f failed: {out:?}\n{text}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let batch = strace_sendmsg_payloads(&stderr)
        .into_iter()
        .find(|p| p.len() > 20 && p[4] == 0x10)
        .expect("a batch in nft's sendmsg calls");
    let ours = nft::transaction_bytes(&nft::create_requests(&table));
    let split = |b: &[u8]| mwan_netlink::socket::split_messages(b).expect("parses");
    let (a, b) = (split(&ours), split(&batch));
    assert_eq!(a.len(), b.len(), "message count");
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x, y, "message {i} differs from nft's");
    }

    // Our encoder through our socket in another namespace: `nft list` of
    // both tables is the same text.
    let by_us = Netns::new();
    in_netns(&by_us.0, || {
        Nft::open().unwrap().replace(&table).expect("replace");
    })
    .unwrap();
    let list = |ns: &Netns| {
        let o = ns.run(&["nft", "list", "table", "inet", "mwan"]);
        assert!(o.status.success(), "{o:?}");
        String::from_utf8(o.stdout).unwrap()
    };
    let listed = list(&by_us);
    assert_eq!(listed, list(&by_nft));
    for chain in ["prerouting", "output", "postrouting", "policy_rules"] {
        assert!(listed.contains(&format!("chain {chain} {{")), "{listed}");
    }
    assert!(
        listed.contains("type route hook output priority mangle"),
        "{listed}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

// ---------------------------------------------------------------- testbed

fn testbed(wans: usize) -> Testbed {
    Testbed::up(TestbedOptions {
        wans,
        ..Default::default()
    })
    .expect("testbed")
}

#[test]
fn replacement_is_atomic_keeps_set_elements_and_coexists_with_fw4() {
    if !require_netns() || !need("nft", "nftables") {
        return;
    }
    let tb = testbed(2);
    let tables_before = tb
        .exec_ok(Role::Router, &["nft", "list", "tables"])
        .unwrap();
    let fw4_before = tb
        .exec_ok(Role::Router, &["nft", "list", "table", "inet", "fw4"])
        .unwrap();
    let sticky = rule(
        "sticky_web",
        "balanced",
        &[("proto", "tcp"), ("sticky", "1")],
    );
    let video = rule("video", "only_wan2", &[("ipset", "video")]);
    let mut driver = Driver::new(&tb, config(&[1, 1], &[video.clone(), sticky.clone()]));
    let (_, table) = driver.sync(true);

    // Read back: every chain with its hook and rule count, every set.
    let v = nft_json(&tb, &["list", "table", "inet", "mwan"]);
    let chains = objects(&v, "chain");
    assert_eq!(chains.len(), table.chains.len());
    for c in &table.chains {
        let k = chains
            .iter()
            .find(|k| k["name"] == c.name.as_str())
            .unwrap_or_else(|| panic!("chain {} not listed", c.name));
        if let Some(b) = &c.base {
            assert_eq!(k["prio"], b.priority, "{k}");
        }
        let rules = objects(&v, "rule")
            .into_iter()
            .filter(|r| r["chain"] == c.name.as_str())
            .count();
        assert_eq!(rules, c.rules.len(), "rules of {}", c.name);
    }
    let output = chains.iter().find(|k| k["name"] == "output").unwrap();
    assert_eq!(output["type"], "route");
    let set_names: BTreeSet<String> = objects(&v, "set")
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    let want: BTreeSet<String> = table.sets.iter().map(|s| s.name.clone()).collect();
    assert_eq!(set_names, want);

    // Fill the sets as dnsmasq and traffic would.
    add_element(&tb, "video", "203.0.113.80");
    add_element(&tb, "video_v6", "2001:db8:f::80");
    add_element(&tb, "sticky_balanced_wan1", "192.0.2.2");

    // Config change: weights and rule order change, chains are replaced.
    driver.config = config(&[3, 1], &[sticky, rule("rest", "only_wan1", &[]), video]);
    let (_, table2) = driver.sync(true);
    assert_ne!(table.chain("policy_rules"), table2.chain("policy_rules"));
    let v = nft_json(&tb, &["list", "table", "inet", "mwan"]);
    let rules = objects(&v, "rule")
        .into_iter()
        .filter(|r| r["chain"] == "policy_rules")
        .count();
    assert_eq!(rules, table2.chain("policy_rules").unwrap().rules.len());
    assert_eq!(set_elements(&tb, "video"), ["203.0.113.80"]);
    assert_eq!(set_elements(&tb, "video_v6"), ["2001:db8:f::80"]);
    assert_eq!(set_elements(&tb, "sticky_balanced_wan1"), ["192.0.2.2"]);
    assert_eq!(
        tb.exec_ok(Role::Router, &["nft", "list", "table", "inet", "fw4"])
            .unwrap(),
        fw4_before,
        "fw4's table changed"
    );

    // A dead WAN's sticky sets are flushed; the others keep their entries.
    add_element(&tb, "sticky_balanced_wan2", "192.0.2.3");
    in_netns(tb.router_ns(), || {
        Nft::open()
            .unwrap()
            .flush_sets(&table2.sticky_sets_of("wan1"))
            .expect("flush sets")
    })
    .unwrap();
    assert!(set_elements(&tb, "sticky_balanced_wan1").is_empty());
    assert_eq!(set_elements(&tb, "sticky_balanced_wan2"), ["192.0.2.3"]);

    // Reconcile: someone deletes or empties our table; the watch says so at
    // once (but not for our own changes) and ensure() restores it.
    let (mut nft, mut watch) = in_netns(tb.router_ns(), || {
        (Nft::open().unwrap(), NftWatch::subscribe().unwrap())
    })
    .unwrap();
    watch.ignore_changes_by(nft.pid());
    assert!(
        nft.ensure(&table2).unwrap().is_some(),
        "a new socket installs once"
    );
    assert_eq!(nft.ensure(&table2).unwrap(), None, "no drift, no batch");
    assert!(!watch.read().unwrap(), "our own replacement is not news");
    tb.exec_ok(Role::Router, &["nft", "add", "table", "inet", "other"])
        .unwrap();
    assert!(!watch.read().unwrap(), "another table is not ours");
    tb.exec_ok(
        Role::Router,
        &["nft", "flush", "chain", "inet", "mwan", "prerouting"],
    )
    .unwrap();
    assert!(watch.read().unwrap(), "flush of our chain noticed");
    assert!(matches!(
        nft::drift(&table2, nft.observe().unwrap().as_ref()),
        Drift::Changed(_)
    ));
    assert!(
        nft.ensure(&table2).unwrap().is_some(),
        "emptied chain restored"
    );
    tb.exec_ok(Role::Router, &["nft", "delete", "table", "inet", "mwan"])
        .unwrap();
    assert!(watch.read().unwrap(), "deleted table noticed");
    tb.exec_ok(Role::Router, &["nft", "delete", "table", "inet", "other"])
        .unwrap();
    assert!(
        nft.ensure(&table2).unwrap().is_some(),
        "deleted table restored"
    );
    assert_eq!(nft.ensure(&table2).unwrap(), None);
    // A config change of the same shape (same chains, sets, rule counts) is
    // still applied: ensure() compares with what it installed.
    let mut table3 = table2.clone();
    for c in &mut table3.chains {
        for r in &mut c.rules {
            for m in &mut r.matches {
                if *m == nftplan::Match::L4Proto(6) {
                    *m = nftplan::Match::L4Proto(17);
                }
            }
        }
    }
    assert_ne!(table3, table2);
    assert_eq!(
        nft::drift(&table3, nft.observe().unwrap().as_ref()),
        Drift::None
    );
    assert!(
        nft.ensure(&table3).unwrap().is_some(),
        "same-shape change applied"
    );
    let listed = tb
        .exec_ok(
            Role::Router,
            &["nft", "list", "chain", "inet", "mwan", "policy_rules"],
        )
        .unwrap();
    assert!(
        listed.contains("udp") && !listed.contains("tcp"),
        "{listed}"
    );
    drop(nft);

    // A restarted mwand (a new socket) adopts the table it finds when the
    // rules carry the wanted content's tag: no batch, sticky elements kept.
    add_element(&tb, "sticky_balanced_wan2", "192.0.2.4");
    let mut restarted = in_netns(tb.router_ns(), || Nft::open().unwrap()).unwrap();
    assert_eq!(
        restarted.ensure(&table3).unwrap(),
        None,
        "a restart rewrote an unchanged table"
    );
    assert_eq!(set_elements(&tb, "sticky_balanced_wan2"), ["192.0.2.4"]);
    drop(restarted);
    // Same shape, other content (config edited while mwand was down): the
    // tag differs, so the table is replaced even though drift() sees none.
    assert_eq!(
        nft::drift(
            &table2,
            in_netns(tb.router_ns(), || Nft::open().unwrap().observe().unwrap())
                .unwrap()
                .as_ref()
        ),
        Drift::None
    );
    let mut edited = in_netns(tb.router_ns(), || Nft::open().unwrap()).unwrap();
    assert!(
        edited.ensure(&table2).unwrap().is_some(),
        "a restart adopted a table of other content"
    );
    drop(edited);

    // Stop leaves the tables as they were.
    driver.stop();
    assert_eq!(
        tb.exec_ok(Role::Router, &["nft", "list", "tables"])
            .unwrap(),
        tables_before
    );
}

#[test]
fn pinned_flows_keep_their_wan_and_flush_by_mark_is_per_wan() {
    if !require_netns() || !need("nft", "nftables") || !need("conntrack", "conntrack") {
        return;
    }
    let tb = testbed(2);
    let mut driver = Driver::new(&tb, config(&[1, 1], &[rule("all", "balanced", &[])]));
    // wan2 down: every connection starts on wan1.
    driver.usable.insert("wan2".into(), false);
    let (plan, _) = driver.sync(true);
    let mask = plan.layout.mask;
    let pin1 = plan.wan("wan1").unwrap().pin_mark;
    let pin2 = plan.wan("wan2").unwrap().pin_mark;
    let mut old = echo_connections(&tb, 20);
    assert!(
        ct_count(&tb, pin1, mask) >= 20,
        "connections pinned to wan1"
    );
    assert_eq!(ct_count(&tb, pin2, mask), 0);

    // wan2 comes back: the balanced route becomes multipath (L4 hash). Without
    // pins about half of the flows would now hash to wan2, where the ISP
    // drops their wan1-NATed packets. With pins all keep working.
    driver.usable.insert("wan2".into(), true);
    driver.sync(true);
    let broken: Vec<usize> = old
        .iter_mut()
        .enumerate()
        .filter_map(|(i, s)| (!echo(s, i)).then_some(i))
        .collect();
    assert!(
        broken.is_empty(),
        "pinned flows broke after wan2 returned: {broken:?}"
    );

    // New flows spread over both WANs and are pinned to the one they use.
    let new = echo_connections(&tb, 30);
    let on1 = ct_count(&tb, pin1, mask);
    let on2 = ct_count(&tb, pin2, mask);
    assert!(on2 > 0, "no new flow took wan2 (wan1 {on1})");
    assert!(on1 >= 20, "wan1 lost pins: {on1}");
    assert_eq!(
        ct_count_tool(&tb, pin2, mask),
        on2,
        "conntrack -L --mark agrees"
    );
    assert_eq!(
        ct_count_tool(&tb, pin1, mask),
        on1,
        "conntrack -L --mark agrees"
    );

    // wan2 fails: its pins go, wan1's stay.
    let report = in_netns(tb.router_ns(), || {
        Conntrack::open()
            .unwrap()
            .delete_by_mark(pin2, mask)
            .expect("delete by mark")
    })
    .unwrap();
    assert_eq!(report.before, on2);
    assert_eq!(report.remaining, 0);
    assert_eq!(ct_count(&tb, pin2, mask), 0);
    assert_eq!(ct_count_tool(&tb, pin2, mask), 0);
    assert_eq!(
        ct_count(&tb, pin1, mask),
        on1,
        "other WAN's entries untouched"
    );
    drop(new);
    drop(old);

    // Control: routes and rules alone (no table), the same change breaks
    // flows, so the assertion above could fail.
    in_netns(tb.router_ns(), || {
        Nft::open().unwrap().delete_table().unwrap()
    })
    .unwrap();
    driver.usable.insert("wan2".into(), false);
    driver.sync(false);
    let mut control = echo_connections(&tb, 20);
    driver.usable.insert("wan2".into(), true);
    driver.sync(false);
    let broken = control
        .iter_mut()
        .enumerate()
        .filter_map(|(i, s)| {
            s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            (!echo(s, i)).then_some(i)
        })
        .count();
    assert!(
        broken > 0,
        "no flow moved without pins: the test proves nothing"
    );
    driver.stop();
}

/// Which of `conns` still carry data both ways (1 s per dead one).
fn working(conns: &mut [TcpStream]) -> usize {
    let mut alive = 0;
    for (i, s) in conns.iter_mut().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        if echo(s, i) {
            alive += 1;
        }
    }
    alive
}

/// A failover policy (wan1 metric 1, wan2 metric 2, both families) and a
/// rule sending everything to `policy`.
fn failover_config(policy: &str) -> Config {
    let mut sections = String::new();
    for (n, metric) in [(1, 1), (2, 2)] {
        for suffix in ["", "_6"] {
            sections += &format!(
                "config member 'f{n}{suffix}'\n\toption interface 'wan{n}{suffix}'\n\toption metric '{metric}'\n"
            );
        }
    }
    sections += "config policy 'failover'\n";
    for m in ["f1", "f1_6", "f2", "f2_6"] {
        sections += &format!("\tlist use_member '{m}'\n");
    }
    config(&[1, 1], &[sections, rule("all", policy, &[])])
}

/// mwand's order when a WAN (here both wanN and wanN_6 on one device)
/// becomes unusable: routes and its pin rules (sync), its sticky sets, then
/// its conntrack entries, per interface. Reports (IPv4, IPv6).
fn wan_fails(driver: &mut Driver, n: usize) -> (NetworkPlan, [FlushReport; 2]) {
    let names = [format!("wan{n}"), format!("wan{n}_6")];
    for name in &names {
        driver.usable.insert(name.clone(), false);
    }
    let (plan, table) = driver.sync(true);
    let mask = plan.layout.mask;
    let reports = in_netns(driver.tb.router_ns(), || {
        names.each_ref().map(|name| {
            let sets = table.sticky_sets_of(name);
            if !sets.is_empty() {
                Nft::open()
                    .unwrap()
                    .flush_sets(&sets)
                    .expect("flush sticky sets");
            }
            Conntrack::open()
                .unwrap()
                .delete_by_mark(plan.wan(name).unwrap().pin_mark, mask)
                .expect("delete by mark")
        })
    })
    .unwrap();
    (plan, reports)
}

#[test]
fn wan_down_flushes_only_its_pins_and_fail_back_keeps_backup_flows_then_no_trace() {
    if !require_netns() || !need("nft", "nftables") || !need("conntrack", "conntrack") {
        return;
    }
    let tb = testbed(2);
    let before = router_state(&tb);

    // A WAN goes down (balanced 1:1): new flows use the other at once, its
    // pinned entries are deleted, the other's are untouched.
    let mut driver = Driver::new(&tb, failover_config("balanced"));
    let (plan, _) = driver.sync(true);
    let mask = plan.layout.mask;
    let pin1 = plan.wan("wan1").unwrap().pin_mark;
    let pin2 = plan.wan("wan2").unwrap().pin_mark;
    let mut conns = echo_connections(&tb, 20);
    let (on1, on2) = (ct_count(&tb, pin1, mask), ct_count(&tb, pin2, mask));
    assert_eq!(
        on1 + on2,
        20,
        "every connection pinned: wan1 {on1}, wan2 {on2}"
    );
    assert!(
        on1 > 0 && on2 > 0,
        "1:1 did not spread: wan1 {on1}, wan2 {on2}"
    );
    // IPv6 flows too (their entries linger in TIME_WAIT with their pin).
    let lan = tb.lan_ns().to_string();
    http_from(&tb, &lan, Family::Ipv6, 20);
    let pin6 = |n: usize| plan.wan(&format!("wan{n}_6")).unwrap().pin_mark;
    let (on1_6, on2_6) = (ct_count(&tb, pin6(1), mask), ct_count(&tb, pin6(2), mask));
    assert!(
        on1_6 > 0 && on2_6 > 0,
        "IPv6 1:1 did not spread: {on1_6}, {on2_6}"
    );
    tb.cut("wan2").expect("cut wan2");
    let (_, [report, report6]) = wan_fails(&mut driver, 2);
    assert_eq!((report.before, report.remaining), (on2, 0), "{report:?}");
    assert_eq!(
        (report6.before, report6.remaining),
        (on2_6, 0),
        "{report6:?}"
    );
    assert_eq!(
        ct_count(&tb, pin6(1), mask),
        on1_6,
        "wan1_6's entries untouched"
    );
    assert_eq!(
        ct_count_tool(&tb, pin2, mask),
        0,
        "conntrack -L --mark agrees"
    );
    assert_eq!(ct_count(&tb, pin1, mask), on1, "wan1's entries untouched");
    assert_eq!(working(&mut conns), on1, "wan1's connections keep working");
    assert_eq!(
        only_wan(&tb, &http_from_lan(&tb, 20)),
        1,
        "new flows avoid wan2"
    );
    assert_eq!(
        only_wan(&tb, &http_from(&tb, &lan, Family::Ipv6, 10)),
        1,
        "new IPv6 flows avoid wan2"
    );
    drop(conns);
    tb.restore("wan2").expect("restore wan2");

    // Fail-back with a failover policy: connections opened while the
    // primary was cut stay on the backup after it returns; new ones take
    // the primary.
    driver.usable.clear();
    driver.config = failover_config("failover");
    driver.sync(true);
    assert_eq!(only_wan(&tb, &http_from_lan(&tb, 5)), 1, "primary first");
    tb.cut("wan1").expect("cut wan1");
    let (_, reports) = wan_fails(&mut driver, 1);
    assert!(reports.iter().all(|r| r.remaining == 0), "{reports:?}");
    let on2_before = ct_count(&tb, pin2, mask);
    let mut backup = echo_connections(&tb, 20);
    assert_eq!(
        ct_count(&tb, pin2, mask),
        on2_before + 20,
        "opened on the backup"
    );
    assert_eq!(ct_count(&tb, pin1, mask), 0);
    tb.restore("wan1").expect("restore wan1");
    driver.usable.clear();
    driver.sync(true);
    assert_eq!(working(&mut backup), 20, "backup flows broke on fail-back");
    assert_eq!(
        ct_count(&tb, pin2, mask),
        on2_before + 20,
        "still on the backup"
    );
    assert_eq!(
        only_wan(&tb, &http_from_lan(&tb, 10)),
        1,
        "new flows take the primary"
    );
    drop(backup);

    // Control: without the table the same fail-back breaks them, so the
    // assertion above could fail.
    in_netns(tb.router_ns(), || {
        Nft::open().unwrap().delete_table().unwrap()
    })
    .unwrap();
    driver.usable.insert("wan1".into(), false);
    driver.sync(false);
    let mut control = echo_connections(&tb, 5);
    driver.usable.clear();
    driver.sync(false);
    assert!(
        working(&mut control) < 5,
        "fail-back without pins kept flows: proves nothing"
    );
    drop(control);

    // Stop: routes, rules, every table of every routing family, the
    // sysctls and the nft ruleset are as before.
    driver.stop();
    assert_eq!(router_state(&tb), before, "stop left a trace");
}

/// qosify, pbr and others own the mark bits outside mmx_mask: what they set
/// there, in packet and conntrack marks, survives our table's writes.
#[test]
fn foreign_mark_bits_survive_our_table() {
    if !require_netns() || !need("nft", "nftables") {
        return;
    }
    let tb = testbed(2);
    // Another tool sets bit 0x1 before us (after conntrack, so the ct mark
    // sticks) and counts after us.
    for cmd in [
        "add table inet qos",
        "add chain inet qos pre { type filter hook prerouting priority -180; }",
        "add rule inet qos pre meta mark set meta mark | 0x1 ct mark set ct mark | 0x1",
        "add chain inet qos post { type filter hook postrouting priority 300; }",
        "add counter inet qos both",
        "add rule inet qos post meta mark & 0x1 == 0x1 meta mark & 0x3f00 != 0x0 counter name both",
    ] {
        tb.exec_ok(Role::Router, &["nft", cmd])
            .unwrap_or_else(|e| panic!("nft {cmd}: {e}"));
    }
    let mut driver = Driver::new(&tb, config(&[1, 1], &[rule("all", "balanced", &[])]));
    let (plan, _) = driver.sync(true);
    let seen = http_from_lan(&tb, 20);
    assert_eq!(seen.values().sum::<usize>(), 20);
    let v = nft_json(&tb, &["list", "counter", "inet", "qos", "both"]);
    let packets = objects(&v, "counter")[0]["packets"]
        .as_u64()
        .expect("packets");
    assert!(
        packets > 0,
        "no packet carried both its foreign bit and our pin"
    );
    let mask = plan.layout.mask;
    for w in ["wan1", "wan2"] {
        let pin = plan.wan(w).unwrap().pin_mark;
        let ours = ct_count(&tb, pin, mask);
        let both = ct_count(&tb, pin | 0x1, mask | 0x1);
        assert!(ours > 0, "{w}: no pinned entries");
        assert_eq!(both, ours, "{w}: our ct mark write cleared the foreign bit");
    }
    driver.stop();
    tb.exec_ok(Role::Router, &["nft", "delete", "table", "inet", "qos"])
        .expect("delete qos table");
}

/// Accept connections on `listener` and echo, until the test ends.
#[test]
fn port_forward_and_router_service_on_wan2_answer_through_wan2() {
    if !require_netns() || !need("nft", "nftables") {
        return;
    }
    let tb = testbed(2);
    let lan = tb.lan().clone();
    let wan2 = tb.wans()[1].clone();
    // Port forward wan2:8080 -> LAN client:8080, as fw4 would set it up.
    let dnat = format!(
        "iifname \"{}\" tcp dport 8080 dnat to {}:8080",
        wan2.device, lan.client_v4
    );
    for cmd in [
        "add table ip pf",
        "add chain ip pf dstnat { type nat hook prerouting priority dstnat; }",
        &format!("add rule ip pf dstnat {dnat}"),
    ] {
        tb.exec_ok(Role::Router, &["nft", cmd]).unwrap();
    }
    tb.exec_ok(
        Role::Router,
        &[
            "nft", "insert", "rule", "inet", "fw4", "forward", "ct", "status", "dnat", "accept",
        ],
    )
    .unwrap();
    serve_echo(
        in_netns(tb.lan_ns(), || {
            TcpListener::bind("0.0.0.0:8080").expect("bind LAN")
        })
        .unwrap(),
    );
    serve_echo(
        in_netns(tb.router_ns(), || {
            TcpListener::bind("0.0.0.0:2222").expect("bind router")
        })
        .unwrap(),
    );
    let forward = SocketAddr::new(IpAddr::V4(wan2.router_v4), 8080);
    let service = SocketAddr::new(IpAddr::V4(wan2.router_v4), 2222);

    // Policy: everything through wan1.
    let mut driver = Driver::new(&tb, config(&[1, 1], &[rule("all", "only_wan1", &[])]));
    // Control: routes and rules alone cannot do it (strict rp_filter drops
    // wan2's inbound, or the answer leaves by wan1).
    driver.sync(false);
    assert!(
        connect_from_internet(&tb, forward).is_err(),
        "port forward worked without pinning: the test proves nothing"
    );
    let (plan, _) = driver.sync(true);
    assert_eq!(connect_from_internet(&tb, forward).as_deref(), Ok("ping\n"));
    assert_eq!(connect_from_internet(&tb, service).as_deref(), Ok("ping\n"));
    let pin2 = plan.wan("wan2").unwrap().pin_mark;
    assert!(
        ct_count(&tb, pin2, plan.layout.mask) >= 2,
        "inbound pinned to wan2"
    );
    // And LAN traffic still follows the policy.
    let seen = http_from_lan(&tb, 5);
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        [&wan_v4(&tb, 1)],
        "{seen:?}"
    );
    driver.stop();
}

#[test]
fn sticky_keeps_a_client_on_one_wan_and_non_sticky_spreads() {
    if !require_netns() || !need("nft", "nftables") {
        return;
    }
    let tb = testbed(2);
    let web = |sticky: &str| {
        rule(
            "web",
            "balanced",
            &[
                ("proto", "tcp"),
                ("dest_port", "80"),
                ("sticky", sticky),
                ("timeout", "300"),
            ],
        )
    };
    let mut driver = Driver::new(&tb, config(&[1, 1], &[web("1")]));
    driver.sync(true);
    let seen = http_from_lan(&tb, 50);
    assert_eq!(seen.len(), 1, "sticky client split over WANs: {seen:?}");
    let wan = (1..=2)
        .find(|n| seen.contains_key(&wan_v4(&tb, *n)))
        .unwrap();
    let client = tb.lan().client_v4.to_string();
    assert_eq!(
        set_elements(&tb, &format!("sticky_balanced_wan{wan}")),
        [client]
    );

    // The WAN it stuck to dies (its pin rule and sticky set go): the client
    // moves, and sticks to the other one.
    driver.usable.insert(format!("wan{wan}"), false);
    let (_, table) = driver.sync(true);
    in_netns(tb.router_ns(), || {
        Nft::open()
            .unwrap()
            .flush_sets(&table.sticky_sets_of(&format!("wan{wan}")))
            .unwrap()
    })
    .unwrap();
    let other = 3 - wan;
    let seen = http_from_lan(&tb, 10);
    assert_eq!(seen.keys().collect::<Vec<_>>(), [&wan_v4(&tb, other)]);
    driver.usable.insert(format!("wan{wan}"), true);
    driver.sync(true);
    let seen = http_from_lan(&tb, 20);
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        [&wan_v4(&tb, other)],
        "stuck after return"
    );

    // IPv6 has its own sticky sets (sticky_balanced_wanN_6).
    let lan = tb.lan_ns().to_string();
    let wan6 = only_wan(&tb, &http_from(&tb, &lan, Family::Ipv6, 50));
    assert_eq!(
        set_elements(&tb, &format!("sticky_balanced_wan{wan6}_6")),
        [tb.lan().client_v6.to_string()]
    );

    // Not sticky: 50 connections spread over both, in both families.
    driver.config = config(&[1, 1], &[web("0")]);
    driver.sync(true);
    let seen = http_from_lan(&tb, 50);
    assert_eq!(seen.len(), 2, "non-sticky did not spread: {seen:?}");
    let seen = http_from(&tb, &lan, Family::Ipv6, 50);
    assert_eq!(seen.len(), 2, "non-sticky IPv6 did not spread: {seen:?}");
    driver.stop();
}

/// `n` rules in policy_rules (a big config), plus what `table` has.
fn with_many_rules(table: &NftTable, n: usize) -> NftTable {
    let mut t = table.clone();
    let rules = &mut t
        .chains
        .iter_mut()
        .find(|c| c.name == nftplan::CHAIN_RULES)
        .expect("policy_rules")
        .rules;
    for i in 0..n {
        let mut r = rules[0].clone();
        r.matches.push(nftplan::Match::Port {
            dir: nftplan::Dir::Src,
            range: PortRange {
                first: 1000 + i as u16,
                last: 1000 + i as u16,
            },
        });
        rules.push(r);
    }
    t
}

#[test]
fn big_tables_apply_in_one_batch_and_a_refused_batch_changes_nothing() {
    if !require_netns() || !need("nft", "nftables") {
        return;
    }
    let ns = Netns::new();
    let small = feature_table();
    let big = with_many_rules(&small, 1000);
    let count_rules = || {
        let o = ns.run(&["nft", "-j", "list", "table", "inet", "mwan"]);
        assert!(o.status.success(), "{o:?}");
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        objects(&v, "rule").len()
    };
    in_netns(&ns.0, || {
        let mut nft = Nft::open().unwrap();
        nft.replace(&small).expect("small table");
        let report = nft.replace(&big).expect("1000 more rules in one batch");
        assert_eq!(report.rules, big.rule_count());
    })
    .unwrap();
    assert_eq!(count_rules(), big.rule_count());

    // A batch the kernel refuses half way (a jump to a chain that does not
    // exist) leaves the table exactly as it was, and says which rule.
    let mut broken = small.clone();
    broken.chains[0].rules.push(nftplan::NftRule {
        matches: vec![],
        actions: vec![],
        verdict: Some(nftplan::Verdict::Jump("no_such_chain".into())),
    });
    let err = in_netns(&ns.0, || Nft::open().unwrap().replace(&broken).unwrap_err()).unwrap();
    let text = err.to_string();
    assert!(text.contains("jump no_such_chain"), "{text}");
    assert_eq!(
        count_rules(),
        big.rule_count(),
        "refused batch changed the table"
    );
}

/// Routes and rules for an ipset rule (nft policy mark) to wan2 before a
/// FIB rule to wan1; the HTTP targets start outside the set.
fn ipset_driver(tb: &Testbed) -> Driver<'_> {
    let rules = [
        rule("video", "only_wan2", &[("ipset", "video")]),
        rule("rest", "only_wan1", &[]),
    ];
    let mut driver = Driver::new(tb, config(&[1, 1], &rules));
    driver.sync(true);
    driver
}

/// Put the HTTP targets into the rule's sets, as dnsmasq's nftset would.
fn targets_into_sets(tb: &Testbed) {
    for a in tb.targets().http.clone() {
        let set = if a.is_ipv4() { "video" } else { "video_v6" };
        add_element(tb, set, &a.ip().to_string());
    }
}

#[test]
fn nft_marked_rules_steer_lan_traffic_ipv4_and_ipv6() {
    if !require_netns() || !need("nft", "nftables") {
        return;
    }
    let tb = testbed(2);
    let mut driver = ipset_driver(&tb);
    let lan = tb.lan_ns().to_string();
    for family in [Family::Ipv4, Family::Ipv6] {
        assert_eq!(
            only_wan(&tb, &http_from(&tb, &lan, family, 5)),
            1,
            "{family:?}"
        );
    }
    targets_into_sets(&tb);
    for family in [Family::Ipv4, Family::Ipv6] {
        assert_eq!(
            only_wan(&tb, &http_from(&tb, &lan, family, 5)),
            2,
            "{family:?}"
        );
    }
    driver.stop();
}

/// mwan3 configs write "all high ports" as `1024:65535`, a range the
/// kernel's FIB rules refuse (EINVAL): the rule is steered by an nft mark
/// and still sends the LAN's connections (ephemeral source ports) to wan2.
#[test]
fn port_range_up_to_65535_steers_through_nft() {
    if !require_netns() || !need("nft", "nftables") {
        return;
    }
    let tb = testbed(2);
    let rules = [
        rule(
            "high",
            "only_wan2",
            &[("proto", "tcp"), ("src_port", "1024:65535")],
        ),
        rule("rest", "only_wan1", &[]),
    ];
    let mut driver = Driver::new(&tb, config(&[1, 1], &rules));
    let (plan, _) = driver.sync(true);
    assert!(
        matches!(
            plan.rules[0].steering,
            mwan_core::plan::Steering::NftMark { .. }
        ),
        "{:?}",
        plan.rules[0].steering
    );
    let lan = tb.lan_ns().to_string();
    for family in [Family::Ipv4, Family::Ipv6] {
        assert_eq!(
            only_wan(&tb, &http_from(&tb, &lan, family, 5)),
            2,
            "{family:?}"
        );
    }
    driver.stop();
}

/// The router's own connections are marked in the `type route` output
/// chain and rerouted; the first route lookup already picked wan1's address
/// as source, so this holds only because the FIB `from <WAN address>` rules
/// sit below the policy-mark rules (plan::prio::FROM_ADDRESS).
#[test]
fn nft_marked_rules_steer_router_traffic_ipv4_and_ipv6() {
    if !require_netns() || !need("nft", "nftables") {
        return;
    }
    let tb = testbed(2);
    let mut driver = ipset_driver(&tb);
    let router = tb.router_ns().to_string();
    targets_into_sets(&tb);
    for family in [Family::Ipv4, Family::Ipv6] {
        assert_eq!(
            only_wan(&tb, &http_from(&tb, &router, family, 5)),
            2,
            "{family:?}"
        );
    }
    driver.stop();
}
