//! Route/rule data plane figures on the testbed (router namespace, real
//! kernel):
//! - one failover: from the decision (a WAN became unusable) to the kernel
//!   updated: plan, diff against the last applied objects, netlink batch
//!   with ACKs; median and p99 over many flips, and the netlink part alone;
//! - a full plan with 1,000 config rules (2,000 FIB rules, v4 and v6):
//!   build, apply from empty, dump back, stop;
//! - weights 3:1 over 2,000 new TCP flows from the LAN client through NAT:
//!   the share that left by the first WAN;
//! - the nft table `inet mwan`: create, replace (about 40 and 1,000 rules,
//!   dump + one transaction), `ensure` without drift;
//! - a whole failover with the table in place: routes + pin rule, the dead
//!   WAN's sticky sets flushed, its conntrack entries deleted by mark;
//! - conntrack delete by mark with 10,000 entries (5,000 per WAN; loaded
//!   with `conntrack -R`, apt package conntrack), and a count by mark.
//!
//! Every figure is printed as it is measured and again in one table at the
//! end. Run as root after `cargo build --release --workspace --bins`:
//! `target/release/bench-dataplane [--flips N] [--flows N] [--ct N]`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mwan_core::config::{
    Config, Family, Interface, Member, Policy, PolicyTarget, PortRange, Proto, Rule,
};
use mwan_core::plan::nft::{self as nftplan, NftTable};
use mwan_core::plan::{
    build, diff, teardown, Allocation, KernelObjects, NetworkPlan, PlanInput, PlanSettings,
    PolicyRoutes, WanInput, DEFAULT_PROTOCOL,
};
use mwan_netlink::conntrack::Conntrack;
use mwan_netlink::nft::Nft;
use mwan_netlink::{in_netns, link::Snapshot, sysctl, Rtnl};
use mwan_testbed::{require_netns, Role, Testbed, TestbedOptions};

/// (figure, value) rows for the closing table.
type Rows = Vec<(String, String)>;

fn row(rows: &mut Rows, figure: String, value: String) {
    println!("{figure}: {value}");
    rows.push((figure, value));
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Two IPv4 WANs weighted 3:1 in `balanced`, plus `extra_rules` port rules
/// (FIB rules).
fn config(extra_rules: usize) -> Config {
    config_with(extra_rules, 0)
}

/// [`config`] plus `nft_rules` port rules matching the `ipset` 'video', so
/// each becomes nft rules (one per family) in `policy_rules`, and one sticky
/// rule (sticky sets per WAN).
fn config_with(extra_rules: usize, nft_rules: usize) -> Config {
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
    for i in 0..nft_rules {
        let mut r = Rule::new(&format!("n{i}"), PolicyTarget::Named("balanced".into()));
        r.proto = Proto::Tcp;
        let port = 20_000 + i as u16;
        r.dest_port = vec![PortRange {
            first: port,
            last: port,
        }];
        r.ipset = Some("video".into());
        c.rules.push(r);
    }
    if nft_rules > 0 {
        let mut sticky = Rule::new("sticky", PolicyTarget::Named("balanced".into()));
        sticky.proto = Proto::Tcp;
        sticky.sticky = true;
        sticky.timeout = 600;
        c.rules.push(sticky);
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

fn bench_failover(tb: &Testbed, flips: usize, rows: &mut Rows) {
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
    row(
        rows,
        format!("failover routes+rules, decision -> kernel updated ({msgs} ACKed messages)"),
        format!(
            "median {:.3} ms, p99 {:.3} ms ({flips} flips)",
            percentile(&total, 0.5),
            percentile(&total, 0.99)
        ),
    );
    row(
        rows,
        "  of which diff + netlink round trip".into(),
        format!(
            "median {:.3} ms, p99 {:.3} ms",
            percentile(&netlink, 0.5),
            percentile(&netlink, 0.99)
        ),
    );
}

fn bench_full_plan(tb: &Testbed, rules: usize, rows: &mut Rows) {
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
        row(
            rows,
            format!(
                "full plan, {rules} config rules -> {} FIB rules + {} routes",
                p.objects.rules.len(),
                p.objects.routes.len()
            ),
            format!(
                "build {:.1} ms, apply {:.1} ms ({n} messages), dump back {:.1} ms, diff {:.1} ms, stop {:.1} ms",
                ms(t1 - t0),
                ms(t2 - t1),
                ms(t3 - t2),
                ms(t4 - t3),
                ms(t5 - t4),
            ),
        );
    })
    .expect("router ns");
}

fn bench_split(tb: &Testbed, flows: usize, rows: &mut Rows) {
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
    row(
        rows,
        format!("weights 3:1, {flows} new TCP flows from the LAN through NAT"),
        format!(
            "wan1 {wan1} ({:.1} %), wan2 {wan2} ({:.1} %), other {}; {:.0} flows/s",
            100.0 * wan1 as f64 / flows as f64,
            100.0 * wan2 as f64 / flows as f64,
            flows - wan1 - wan2,
            flows as f64 / elapsed.as_secs_f64()
        ),
    );
    in_netns(tb.router_ns(), || {
        let mut rtnl = Rtnl::open(DEFAULT_PROTOCOL).expect("rtnetlink");
        let report = rtnl.apply(&teardown(&applied)).expect("netlink");
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        saved.restore().expect("restore sysctls");
    })
    .expect("router ns");
}

/// Median and p99 of `f` over `n` runs, in ms.
fn timed(n: usize, mut f: impl FnMut()) -> (f64, f64) {
    let mut v: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            ms(t.elapsed())
        })
        .collect();
    v.sort_by(f64::total_cmp);
    (percentile(&v, 0.5), percentile(&v, 0.99))
}

/// The plan and nft table for `config` with both WANs as `usable` says.
fn plan_and_table(
    tb: &Testbed,
    snap: &Snapshot,
    config: &Config,
    usable: &[bool],
    prev: &Allocation,
) -> (NetworkPlan, NftTable) {
    let p = plan(tb, snap, config, usable, prev);
    let table = nftplan::build(&p, config, &BTreeMap::new()).expect("nft table");
    (p, table)
}

fn bench_nft(tb: &Testbed, rows: &mut Rows) {
    in_netns(tb.router_ns(), || {
        let mut rtnl = Rtnl::open(DEFAULT_PROTOCOL).expect("rtnetlink");
        let snap = Snapshot::take(rtnl.socket(), DEFAULT_PROTOCOL).expect("snapshot");
        for nft_rules in [9, 500] {
            let config = config_with(0, nft_rules);
            let (_, table) = plan_and_table(tb, &snap, &config, &[true, true], &Allocation::default());
            let mut nft = Nft::open().expect("nf_tables");
            let t = Instant::now();
            nft.replace(&table).expect("create inet mwan");
            let create = ms(t.elapsed());
            let (replace, replace99) = timed(20, || {
                nft.replace(&table).expect("replace inet mwan");
            });
            let (ensure, _) = timed(20, || {
                assert!(nft.ensure(&table).expect("ensure").is_none(), "drift");
            });
            row(
                rows,
                format!(
                    "nft table, {} rules, {} sets: create / replace (dump + 1 transaction) / ensure, no drift",
                    table.rule_count(),
                    table.sets.len()
                ),
                format!(
                    "{create:.2} ms / median {replace:.2} ms, p99 {replace99:.2} ms / {ensure:.2} ms"
                ),
            );
            nft.delete_table().expect("delete table");
        }
    })
    .expect("router ns");
}

/// A whole failover with the table in place: routes and pin rule (no dump),
/// the dead WAN's sticky sets flushed, its conntrack entries deleted by
/// mark (one message each; the namespace holds only the testbed's entries).
fn bench_failover_with_nft(tb: &Testbed, flips: usize, rows: &mut Rows) {
    let config = config_with(0, 9);
    let samples = in_netns(tb.router_ns(), || {
        let mut rtnl = Rtnl::open(DEFAULT_PROTOCOL).expect("rtnetlink");
        let mut nft = Nft::open().expect("nf_tables");
        let mut ct = Conntrack::open().expect("ctnetlink");
        let snap = Snapshot::take(rtnl.socket(), DEFAULT_PROTOCOL).expect("snapshot");
        let (mut current, table) =
            plan_and_table(tb, &snap, &config, &[true, true], &Allocation::default());
        rtnl.sync(&current.objects, true).expect("netlink");
        nft.replace(&table).expect("table");
        let mut samples = Vec::new();
        for i in 0..flips {
            let wan1_up = i % 2 == 1;
            let t0 = Instant::now();
            let next = plan(tb, &snap, &config, &[wan1_up, true], &current.allocation);
            let (_, report) = rtnl.sync(&next.objects, false).expect("netlink");
            assert!(report.failed.is_empty(), "{:?}", report.failed);
            if !wan1_up {
                nft.flush_sets(&table.sticky_sets_of("wan1"))
                    .expect("flush sticky sets");
                let pin = next.wan("wan1").expect("wan1").pin_mark;
                ct.delete_by_mark_uncounted(pin, next.layout.mask)
                    .expect("conntrack delete");
                samples.push(ms(t0.elapsed()));
            }
            current = next;
        }
        nft.delete_table().expect("delete table");
        rtnl.teardown().expect("teardown");
        samples
    })
    .expect("router ns");
    let mut samples = samples;
    samples.sort_by(f64::total_cmp);
    row(
        rows,
        "failover complete, decision -> routes + pin rule + sticky sets + conntrack delete (few entries)".into(),
        format!(
            "median {:.3} ms, p99 {:.3} ms ({} failovers)",
            percentile(&samples, 0.5),
            percentile(&samples, 0.99),
            samples.len()
        ),
    );
}

/// Conntrack delete by mark in a table of `per_wan` entries per WAN.
fn bench_conntrack(tb: &Testbed, per_wan: usize, rows: &mut Rows) {
    let config = config(0);
    let (mark1, mark2, mask) = in_netns(tb.router_ns(), || {
        let mut rtnl = Rtnl::open(DEFAULT_PROTOCOL).expect("rtnetlink");
        let snap = Snapshot::take(rtnl.socket(), DEFAULT_PROTOCOL).expect("snapshot");
        let p = plan(tb, &snap, &config, &[true, true], &Allocation::default());
        let pin = |w: &str| p.wan(w).expect("wan planned").pin_mark;
        (pin("wan1"), pin("wan2"), p.layout.mask)
    })
    .expect("router ns");
    // Entries like a LAN's NATed TCP flows, half pinned to each WAN.
    let file = std::env::temp_dir().join(format!("bench-dataplane-ct-{}", std::process::id()));
    let mut text = String::new();
    for i in 0..2 * per_wan {
        let mark = if i % 2 == 0 { mark1 } else { mark2 };
        text += &format!(
            "-I -p tcp -s 192.168.{}.{} -d 203.0.113.{} --sport {} --dport 443 --state ESTABLISHED -t 600 -m {mark:#x}\n",
            i / 250 % 250,
            i % 250 + 1,
            i % 200 + 1,
            1024 + i % 60000
        );
    }
    std::fs::write(&file, text).expect("write conntrack load file");
    let loaded = tb.exec_ok(Role::Router, &["conntrack", "-R", &file.to_string_lossy()]);
    std::fs::remove_file(&file).ok();
    if let Err(e) = loaded {
        eprintln!("bench-dataplane: conntrack -R failed (apt-get install -y conntrack): {e}");
        return;
    }
    let (count_ms, before, delete_ms, after1, after2) = in_netns(tb.router_ns(), || {
        let mut ct = Conntrack::open().expect("ctnetlink");
        let t = Instant::now();
        let before = ct.count_by_mark(mark2, mask).expect("count");
        let count_ms = ms(t.elapsed());
        let t = Instant::now();
        ct.delete_by_mark_uncounted(mark2, mask).expect("delete");
        let delete_ms = ms(t.elapsed());
        let after1 = ct.count_by_mark(mark1, mask).expect("count");
        let after2 = ct.count_by_mark(mark2, mask).expect("count");
        ct.delete_by_mark_uncounted(mark1, mask).expect("delete");
        (count_ms, before, delete_ms, after1, after2)
    })
    .expect("router ns");
    assert_eq!(after2, 0, "entries left with wan2's mark");
    assert!(after1 >= per_wan, "wan1's entries touched: {after1}");
    row(
        rows,
        format!(
            "conntrack delete by mark, {} entries ({per_wan} per WAN), one WAN's {before} deleted",
            2 * per_wan
        ),
        format!("{delete_ms:.2} ms (other WAN's {after1} kept); count by mark {count_ms:.2} ms"),
    );
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
    let mut rows = Rows::new();
    bench_failover(&tb, arg("--flips", 500), &mut rows);
    bench_failover_with_nft(&tb, arg("--flips", 500), &mut rows);
    bench_full_plan(&tb, 1000, &mut rows);
    bench_nft(&tb, &mut rows);
    bench_conntrack(&tb, arg("--ct", 5000), &mut rows);
    bench_split(&tb, arg("--flows", 2000), &mut rows);
    let width = rows.iter().map(|(f, _)| f.len()).max().unwrap_or(0);
    println!("\nbench-dataplane figures");
    for (figure, value) in &rows {
        println!("  {figure:<width$}  {value}");
    }
    ExitCode::SUCCESS
}
