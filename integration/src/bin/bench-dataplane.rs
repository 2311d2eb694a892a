//! Route/rule data plane figures on the testbed (router namespace, real
//! kernel):
//! - one failover: from the decision (a WAN became unusable) to the kernel
//!   updated: plan, diff against the last applied objects, netlink batch
//!   with ACKs; median and p99 over many flips, and the netlink part alone;
//! - a full plan with 1,000 config rules (2,000 FIB rules, v4 and v6):
//!   build, apply from empty, dump back, stop;
//! - weights 3:1 over 2,000 new TCP flows from the LAN client through NAT:
//!   the share that left by the first WAN.
//!
//! Run as root after `cargo build --release --workspace --bins`:
//! `target/release/bench-dataplane [--flips N] [--flows N]`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mwan_core::config::{
    Config, Family, Interface, Member, Policy, PolicyTarget, PortRange, Proto, Rule,
};
use mwan_core::plan::{
    build, diff, teardown, Allocation, KernelObjects, NetworkPlan, PlanInput, PlanSettings,
    PolicyRoutes, WanInput, DEFAULT_PROTOCOL,
};
use mwan_netlink::{in_netns, link::Snapshot, sysctl, Rtnl};
use mwan_testbed::{require_netns, Testbed, TestbedOptions};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Two IPv4 WANs weighted 3:1 in `balanced`, plus `extra_rules` port rules.
fn config(extra_rules: usize) -> Config {
    let mut c = Config {
        source: "bench".into(),
        globals: Default::default(),
        interfaces: vec![],
        members: vec![],
        policies: vec![],
        rules: vec![],
    };
    let mut balanced = Policy::new("balanced");
    for (n, weight) in [(1, 3), (2, 1)] {
        let iface = format!("wan{n}");
        c.interfaces.push(Interface {
            enabled: true,
            ..Interface::new(&iface)
        });
        c.members.push(Member {
            weight,
            ..Member::new(&format!("m{n}"), &iface)
        });
        balanced.use_member.push(format!("m{n}"));
    }
    c.policies.push(balanced);
    for i in 0..extra_rules {
        let mut r = Rule::new(&format!("r{i}"), PolicyTarget::Named("balanced".into()));
        r.proto = Proto::Tcp;
        let port = 10_000 + i as u16;
        r.dest_port = vec![PortRange {
            first: port,
            last: port,
        }];
        c.rules.push(r);
    }
    c.rules
        .push(Rule::new("all", PolicyTarget::Named("balanced".into())));
    c
}

fn plan(
    tb: &Testbed,
    snap: &Snapshot,
    config: &Config,
    usable: &[bool],
    prev: &Allocation,
) -> NetworkPlan {
    let wans: Vec<WanInput> = tb
        .wans()
        .iter()
        .zip(usable)
        .map(|(w, u)| WanInput {
            interface: w.name.clone(),
            family: Family::Ipv4,
            facts: snap.wan_facts(&w.device),
            usable: *u,
        })
        .collect();
    let decisions = PolicyRoutes::all_members(config, |i| {
        wans.iter().any(|w| w.interface == i && w.usable)
    });
    build(&PlanInput {
        config,
        settings: PlanSettings::from_config(config),
        wans: &wans,
        policies: &decisions,
        devices: &BTreeMap::new(),
        main_defaults: &[],
        previous: prev,
    })
    .expect("plan builds")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn must_apply(rtnl: &mut Rtnl, desired: &KernelObjects, applied: &KernelObjects) -> usize {
    let ops = diff(desired, applied);
    let report = rtnl.apply(&ops).expect("netlink");
    assert!(
        report.failed.is_empty(),
        "kernel refused: {:?}",
        report.failed
    );
    ops.len()
}

fn bench_failover(tb: &Testbed, flips: usize) {
    let config = config(0);
    let (total, netlink, msgs) = in_netns(tb.router_ns(), || {
        let mut rtnl = Rtnl::open(DEFAULT_PROTOCOL).expect("rtnetlink");
        let snap = Snapshot::take(rtnl.socket(), DEFAULT_PROTOCOL).expect("snapshot");
        let mut current = plan(tb, &snap, &config, &[true, true], &Allocation::default());
        rtnl.sync(&current.objects, true).expect("netlink");
        let (mut total, mut netlink, mut msgs) = (Vec::new(), Vec::new(), 0);
        for i in 0..flips {
            let usable = [i % 2 == 1, true];
            let t0 = Instant::now();
            let next = plan(tb, &snap, &config, &usable, &current.allocation);
            let t1 = Instant::now();
            // What mwand does on a health change: diff against the last
            // sync's state (no dump) and send the ops.
            let (ops, report) = rtnl.sync(&next.objects, false).expect("netlink");
            let t2 = Instant::now();
            assert!(report.failed.is_empty(), "{:?}", report.failed);
            total.push(ms(t2 - t0));
            netlink.push(ms(t2 - t1));
            msgs = ops.len();
            current = next;
        }
        rtnl.teardown().expect("teardown");
        (total, netlink, msgs)
    })
    .expect("router ns");
    let (mut total, mut netlink) = (total, netlink);
    total.sort_by(f64::total_cmp);
    netlink.sort_by(f64::total_cmp);
    println!(
        "failover, decision -> kernel updated ({msgs} netlink messages, ACKed): median {:.3} ms, p99 {:.3} ms over {flips} flips",
        percentile(&total, 0.5),
        percentile(&total, 0.99)
    );
    println!(
        "  of which diff + netlink round trip: median {:.3} ms, p99 {:.3} ms",
        percentile(&netlink, 0.5),
        percentile(&netlink, 0.99)
    );
}

fn bench_full_plan(tb: &Testbed, rules: usize) {
    let config = config(rules);
    in_netns(tb.router_ns(), || {
        let mut rtnl = Rtnl::open(DEFAULT_PROTOCOL).expect("rtnetlink");
        let snap = Snapshot::take(rtnl.socket(), DEFAULT_PROTOCOL).expect("snapshot");
        let t0 = Instant::now();
        let p = plan(tb, &snap, &config, &[true, true], &Allocation::default());
        let t1 = Instant::now();
        let n = must_apply(&mut rtnl, &p.objects, &KernelObjects::default());
        let t2 = Instant::now();
        let observed = rtnl.observe().expect("observe");
        let t3 = Instant::now();
        assert!(diff(&p.objects, &observed).is_empty(), "kernel differs from plan");
        let t4 = Instant::now();
        let report = rtnl.apply(&teardown(&observed)).expect("netlink");
        let t5 = Instant::now();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        println!(
            "full plan, {rules} config rules -> {} FIB rules + {} routes: build {:.1} ms, apply {:.1} ms ({n} messages), \
             dump back {:.1} ms, diff {:.1} ms, stop {:.1} ms",
            p.objects.rules.len(),
            p.objects.routes.len(),
            ms(t1 - t0),
            ms(t2 - t1),
            ms(t3 - t2),
            ms(t4 - t3),
            ms(t5 - t4),
        );
    })
    .expect("router ns");
}

fn bench_split(tb: &Testbed, flows: usize) {
    let config = config(0);
    let mut saved = sysctl::Saved::default();
    let applied = in_netns(tb.router_ns(), || {
        saved.apply_dataplane_defaults().expect("sysctls");
        let mut rtnl = Rtnl::open(DEFAULT_PROTOCOL).expect("rtnetlink");
        let snap = Snapshot::take(rtnl.socket(), DEFAULT_PROTOCOL).expect("snapshot");
        let p = plan(tb, &snap, &config, &[true, true], &Allocation::default());
        must_apply(&mut rtnl, &p.objects, &KernelObjects::default());
        p.objects
    })
    .expect("router ns");
    let target: SocketAddr = *tb
        .targets()
        .http
        .iter()
        .find(|a| a.is_ipv4())
        .expect("v4 http");
    let t0 = Instant::now();
    let seen = in_netns(tb.lan_ns(), || {
        let mut seen: BTreeMap<IpAddr, usize> = BTreeMap::new();
        for _ in 0..flows {
            let mut s =
                TcpStream::connect_timeout(&target, Duration::from_secs(3)).expect("connect");
            s.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("request");
            let mut body = String::new();
            s.read_to_string(&mut body).expect("answer");
            if let Some(addr) = body.lines().last().and_then(|l| l.trim().parse().ok()) {
                *seen.entry(addr).or_default() += 1;
            }
        }
        seen
    })
    .expect("lan ns");
    let elapsed = t0.elapsed();
    let wan1 = seen
        .get(&IpAddr::V4(tb.wans()[0].router_v4))
        .copied()
        .unwrap_or(0);
    let wan2 = seen
        .get(&IpAddr::V4(tb.wans()[1].router_v4))
        .copied()
        .unwrap_or(0);
    println!(
        "weights 3:1, {flows} new TCP flows from the LAN through NAT: wan1 {wan1} ({:.1} %), wan2 {wan2} ({:.1} %), \
         other {} ; {:.0} flows/s",
        100.0 * wan1 as f64 / flows as f64,
        100.0 * wan2 as f64 / flows as f64,
        flows - wan1 - wan2,
        flows as f64 / elapsed.as_secs_f64()
    );
    in_netns(tb.router_ns(), || {
        let mut rtnl = Rtnl::open(DEFAULT_PROTOCOL).expect("rtnetlink");
        let report = rtnl.apply(&teardown(&applied)).expect("netlink");
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        saved.restore().expect("restore sysctls");
    })
    .expect("router ns");
}

fn main() -> ExitCode {
    if !require_netns() {
        return ExitCode::SUCCESS;
    }
    let tb = match Testbed::up(TestbedOptions {
        wans: 2,
        ..Default::default()
    }) {
        Ok(tb) => tb,
        Err(e) => {
            eprintln!("bench-dataplane: testbed: {e}");
            return ExitCode::FAILURE;
        }
    };
    bench_failover(&tb, arg("--flips", 500));
    bench_full_plan(&tb, 1000);
    bench_split(&tb, arg("--flows", 2000));
    ExitCode::SUCCESS
}
