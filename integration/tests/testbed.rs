//! The testbed itself, on the real kernel: connectivity through NAT (v4 and
//! v6), the internet services, silent cuts, carrier loss, delay and loss of
//! the impairment hop, the ISPs' source filter, and complete teardown.
//!
//! Needs root and `cargo build -p mwan-testbed --bins` first (the harness
//! starts the `mwan-testbed` binary for hops and servers).

use mwan_testbed::{netns, require_netns, Impairment, Role, Testbed, TestbedOptions, WanInfo};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

fn up(wans: usize) -> Testbed {
    Testbed::up(TestbedOptions {
        wans,
        ..Default::default()
    })
    .expect("testbed up")
}

/// Ping summary: (transmitted, received, rtt min ms).
fn ping(tb: &Testbed, role: Role, args: &[&str]) -> (u32, u32, Option<f64>) {
    let mut argv = vec!["ping", "-n", "-q"];
    argv.extend_from_slice(args);
    let out = tb.exec(role, &argv).expect("run ping");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |suffix: &str| -> u32 {
        text.split(',')
            .find_map(|part| {
                part.trim()
                    .strip_suffix(suffix)?
                    .split_whitespace()
                    .last()?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no '{suffix}' in ping output:\n{text}"))
    };
    let min = text
        .lines()
        .find(|l| l.starts_with("rtt"))
        .and_then(|l| l.split('=').nth(1)?.trim().split('/').next()?.parse().ok());
    (field("packets transmitted"), field("received"), min)
}

/// An HTTP GET of `/` to `addr`, made from inside namespace `ns`.
fn http_get(ns: &str, addr: SocketAddr) -> String {
    netns::in_netns(ns, move || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
        let mut reply = String::new();
        s.read_to_string(&mut reply)?;
        Ok(reply)
    })
    .expect("http get")
}

/// The HTTP server answers with the source it saw: a LAN client's fetch
/// (v4 and v6) must arrive from `wan`'s router address, i.e. masqueraded.
fn assert_lan_seen_as(tb: &Testbed, wan: &WanInfo) {
    let http = &tb.targets().http;
    for (addr, expected) in [
        (http[0], wan.router_v4.to_string()),
        (http[1], wan.router_v6.to_string()),
    ] {
        let body = http_get(tb.lan_ns(), addr);
        assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
        assert!(
            body.ends_with(&format!("\n{expected}\n")),
            "{addr} did not see the LAN client as {} ({expected}): {body}",
            wan.name
        );
    }
}

#[test]
fn lan_client_reaches_internet_through_nat_on_v4_and_v6() {
    if !require_netns() {
        return;
    }
    let tb = up(2);
    let t = tb.targets().clone();
    let wan1 = tb.wans()[0].clone();
    for target in [t.icmp_v4[0].to_string(), t.icmp_v6[0].to_string()] {
        let (_, received, _) = ping(
            &tb,
            Role::Lan,
            &["-c", "3", "-i", "0.1", "-W", "2", &target],
        );
        assert!(received > 0, "LAN client cannot ping {target}");
    }
    // The HTTP server answers with the source it saw: the router's WAN
    // address, so the LAN address was masqueraded.
    assert_lan_seen_as(&tb, &wan1);
}

/// A DNS AAAA query for `name` to `server` (UDP), sent from the current
/// namespace; the raw reply.
fn dns_aaaa(server: SocketAddr, name: &str, timeout: Duration) -> std::io::Result<Vec<u8>> {
    let bind = if server.is_ipv6() {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    };
    let u = UdpSocket::bind(bind)?;
    u.set_read_timeout(Some(timeout))?;
    let mut q = vec![0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 28, 0, 1]);
    u.send_to(&q, server)?;
    let mut r = [0u8; 512];
    let n = u.recv(&mut r)?;
    Ok(r[..n].to_vec())
}

/// Sends `msg` to a TCP echo service and reads it back.
fn tcp_echo(addr: SocketAddr, msg: &[u8], timeout: Duration) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.write_all(msg)?;
    let mut buf = vec![0u8; msg.len()];
    s.read_exact(&mut buf)?;
    Ok(buf)
}

#[test]
fn internet_services_answer() {
    if !require_netns() {
        return;
    }
    let tb = up(1);
    let t = tb.targets().clone();
    let (echo, dns, name, answer) = (
        t.tcp_echo[0],
        t.dns_server[1],
        t.dns_name.clone(),
        t.dns_answer_v6,
    );
    let (echoed, reply) = netns::in_netns(tb.router_ns(), move || {
        let echoed = tcp_echo(echo, b"hello mwan", Duration::from_secs(5))?;
        // AAAA query over IPv6.
        let reply = dns_aaaa(dns, &name, Duration::from_secs(5))?;
        Ok((echoed, reply))
    })
    .expect("talk to services");
    assert_eq!(&echoed, b"hello mwan");
    assert_eq!(&reply[0..2], &[0xab, 0xcd]);
    assert_eq!(&reply[reply.len() - 16..], &answer.octets());
}

/// What OpenWrt's firewall and defaults would set up in the router: strict
/// rp_filter on every interface, ICMP datagram sockets allowed, masquerade on
/// every WAN (checked by fetching through wan2, v4 and v6, with its replies
/// passing the strict rp_filter).
#[test]
fn router_has_strict_rp_filter_ping_sockets_and_masquerade_on_every_wan() {
    if !require_netns() {
        return;
    }
    let tb = up(2);
    let mut ifaces = vec!["all", "default", tb.lan().router_device.as_str()];
    ifaces.extend(tb.wans().iter().map(|w| w.device.as_str()));
    for i in ifaces {
        let key = format!("net.ipv4.conf.{i}.rp_filter");
        let v = tb
            .exec_ok(Role::Router, &["sysctl", "-n", &key])
            .expect("sysctl");
        assert_eq!(v.trim(), "1", "{key}");
    }
    let icmp_socket = netns::in_netns(tb.router_ns(), || {
        // SAFETY: plain socket(2); the fd is closed right away.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, libc::IPPROTO_ICMP) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by socket(2) and is ours.
        unsafe { libc::close(fd) };
        Ok(())
    });
    assert!(icmp_socket.is_ok(), "ICMP datagram socket: {icmp_socket:?}");

    // Send the HTTP server's addresses through wan2 only.
    let w2 = tb.wans()[1].clone();
    let t = tb.targets().clone();
    let (gw4, gw6) = (w2.gateway_v4.to_string(), w2.gateway_v6.to_string());
    let (http4, http6) = (
        format!("{}/32", t.http[0].ip()),
        format!("{}/128", t.http[1].ip()),
    );
    for argv in [
        [
            "ip", "-4", "route", "add", &http4, "via", &gw4, "dev", &w2.device,
        ],
        [
            "ip", "-6", "route", "add", &http6, "via", &gw6, "dev", &w2.device,
        ],
    ] {
        tb.exec_ok(Role::Router, &argv).expect("route via wan2");
    }
    assert_lan_seen_as(&tb, &w2);
}

/// A test that panics still leaves nothing behind: Drop tears down.
#[test]
fn a_panicking_test_still_tears_down() {
    if !require_netns() {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::panic::catch_unwind(move || {
        let tb = up(2);
        let mut pids: Vec<u32> = tb
            .wans()
            .iter()
            .map(|w| tb.hop_pid(&w.name).expect("hop pid"))
            .collect();
        pids.push(tb.state().server_pid);
        tx.send((tb.name().to_string(), tb.run_dir().to_path_buf(), pids))
            .expect("send");
        panic!("deliberate panic with a testbed up");
    });
    assert!(result.is_err(), "the closure was meant to panic");
    let (name, run_dir, pids) = rx.recv().expect("testbed facts");
    let left: Vec<String> = netns::list_namespaces()
        .into_iter()
        .filter(|n| n.contains(&format!("-{name}-")))
        .collect();
    assert!(left.is_empty(), "namespaces left after a panic: {left:?}");
    std::thread::sleep(Duration::from_millis(100));
    let alive_now: Vec<u32> = pids.into_iter().filter(|&p| alive(p)).collect();
    assert!(
        alive_now.is_empty(),
        "processes left after a panic: {alive_now:?}"
    );
    assert!(!run_dir.exists(), "run dir {} left", run_dir.display());
}

fn link_flags(tb: &Testbed, dev: &str) -> String {
    tb.exec_ok(Role::Router, &["ip", "-o", "link", "show", "dev", dev])
        .expect("ip link show")
}

#[test]
fn cut_loses_everything_while_link_stays_up_and_restore_brings_it_back() {
    if !require_netns() {
        return;
    }
    let tb = up(2);
    let target = tb.targets().icmp_v4[0].to_string();
    let gw = tb.wans()[0].gateway_v4.to_string();
    let (_, received, _) = ping(
        &tb,
        Role::Router,
        &["-c", "3", "-i", "0.1", "-W", "2", &target],
    );
    assert!(received > 0, "no connectivity before the cut");

    tb.cut("wan1").expect("cut");
    for dest in [&target, &gw] {
        let (sent, received, _) = ping(
            &tb,
            Role::Router,
            &["-c", "20", "-i", "0.05", "-W", "1", dest],
        );
        assert_eq!(
            (sent, received),
            (20, 0),
            "a cut WAN must lose 100 % (to {dest})"
        );
    }
    let flags = link_flags(&tb, "eth1");
    assert!(
        flags.contains("LOWER_UP") && flags.contains("state UP"),
        "link must stay up: {flags}"
    );
    // ICMPv6, TCP (v4 and v6) and UDP (DNS over v6) vanish too: the hop
    // drops every frame, not only ICMP.
    let target_v6 = tb.targets().icmp_v6[0].to_string();
    let (sent, received, _) = ping(
        &tb,
        Role::Router,
        &["-c", "10", "-i", "0.05", "-W", "1", &target_v6],
    );
    assert_eq!(
        (sent, received),
        (10, 0),
        "a cut WAN must lose 100 % (to {target_v6})"
    );
    let t = tb.targets().clone();
    let short = Duration::from_millis(700);
    let (tcp_v4, tcp_v6, udp_v6) = netns::in_netns(tb.router_ns(), move || {
        Ok((
            tcp_echo(t.tcp_echo[0], b"cut", short).is_ok(),
            tcp_echo(t.tcp_echo[1], b"cut", short).is_ok(),
            dns_aaaa(t.dns_server[1], &t.dns_name, short).is_ok(),
        ))
    })
    .expect("talk through the cut");
    assert_eq!(
        (tcp_v4, tcp_v6, udp_v6),
        (false, false, false),
        "TCP v4, TCP v6 and UDP must not get through a cut"
    );
    let status = tb.hop_status("wan1").expect("hop status");
    assert!(status.cut && status.upstream.cut >= 40, "{status:?}");

    tb.restore("wan1").expect("restore");
    let t = tb.targets().clone();
    let echoed = netns::in_netns(tb.router_ns(), move || {
        tcp_echo(t.tcp_echo[1], b"back", Duration::from_secs(5))
    })
    .expect("TCP v6 after restore");
    assert_eq!(echoed, b"back");
    let (_, received, _) = ping(
        &tb,
        Role::Router,
        &["-c", "5", "-i", "0.2", "-W", "2", &target],
    );
    assert!(
        received >= 3,
        "restore must bring the WAN back (got {received}/5)"
    );
}

#[test]
fn link_down_is_carrier_loss_on_the_router() {
    if !require_netns() {
        return;
    }
    let tb = up(2);
    tb.link("wan2", false).expect("link down");
    let flags = link_flags(&tb, "eth2");
    assert!(
        flags.contains("NO-CARRIER") && !flags.contains("LOWER_UP"),
        "{flags}"
    );
    tb.link("wan2", true).expect("link up");
    let flags = link_flags(&tb, "eth2");
    assert!(flags.contains("LOWER_UP"), "{flags}");
    let gw = tb.wans()[1].gateway_v4.to_string();
    let (_, received, _) = ping(&tb, Role::Router, &["-c", "3", "-i", "0.2", "-W", "2", &gw]);
    assert!(received > 0, "gateway of wan2 unreachable after link up");
}

#[test]
fn delay_is_at_least_configured_and_loss_follows_the_setting() {
    if !require_netns() {
        return;
    }
    let tb = up(1);
    let target = tb.targets().icmp_v6[1].to_string();
    tb.impair(
        "wan1",
        Impairment {
            delay_ms: 40.0,
            ..Default::default()
        },
    )
    .expect("impair");
    let (_, received, min) = ping(
        &tb,
        Role::Router,
        &["-c", "10", "-i", "0.05", "-W", "2", &target],
    );
    assert!(received >= 8, "delay alone must not lose ({received}/10)");
    let min = min.expect("rtt line");
    assert!(
        min >= 40.0,
        "measured RTT {min} ms below the configured 40 ms"
    );

    // 50 % loss over 200 probes: outside 25..75 % is > 7 standard deviations.
    tb.impair(
        "wan1",
        Impairment {
            loss_pct: 50.0,
            ..Default::default()
        },
    )
    .expect("impair");
    let (sent, received, _) = ping(
        &tb,
        Role::Router,
        &["-c", "200", "-i", "0.005", "-W", "1", &target],
    );
    let loss = 100.0 * f64::from(sent - received) / f64::from(sent);
    assert!((25.0..=75.0).contains(&loss), "loss {loss} % with 50 % set");

    tb.impair("wan1", Impairment::default()).expect("clear");
    let (sent, received, _) = ping(
        &tb,
        Role::Router,
        &["-c", "100", "-i", "0.005", "-W", "1", &target],
    );
    assert_eq!(received, sent, "loss must be gone once cleared");
}

fn nft_counter_packets(tb: &Testbed, wan: usize) -> u64 {
    let text = tb
        .exec_ok(
            Role::Isp(wan),
            &["nft", "list", "counter", "inet", "isp", "spoofed"],
        )
        .expect("list counter");
    text.split_whitespace()
        .skip_while(|w| *w != "packets")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no packet count in {text}"))
}

#[test]
fn isp_drops_sources_that_are_not_the_routers() {
    if !require_netns() {
        return;
    }
    let tb = up(1);
    let lan = tb.lan().clone();
    let t = tb.targets().clone();
    // NATed: the LAN source becomes the WAN address and gets through.
    for (src, dst) in [
        (lan.router_v4.to_string(), t.icmp_v4[1].to_string()),
        (lan.router_v6.to_string(), t.icmp_v6[1].to_string()),
    ] {
        let (_, received, _) = ping(
            &tb,
            Role::Router,
            &["-c", "2", "-i", "0.1", "-W", "2", "-I", &src, &dst],
        );
        assert!(received > 0, "masqueraded ping from {src} to {dst} failed");
    }
    // Not NATed (untracked): the ISP must drop the foreign source.
    let rules = format!(
        "table inet spooftest {{\n chain out {{\n type filter hook output priority raw;\n \
         ip daddr {} notrack\n ip6 daddr {} notrack\n }}\n}}\n",
        t.icmp_v4[2], t.icmp_v6[2]
    );
    netns::nft_load(tb.router_ns(), &rules).expect("load notrack rules");
    let before = nft_counter_packets(&tb, 1);
    for (src, dst) in [
        (lan.router_v4.to_string(), t.icmp_v4[2].to_string()),
        (lan.router_v6.to_string(), t.icmp_v6[2].to_string()),
    ] {
        let (sent, received, _) = ping(
            &tb,
            Role::Router,
            &["-c", "3", "-i", "0.1", "-W", "1", "-I", &src, &dst],
        );
        assert_eq!(
            (sent, received),
            (3, 0),
            "spoofed {src} -> {dst} got through"
        );
    }
    let dropped = nft_counter_packets(&tb, 1) - before;
    assert!(
        dropped >= 6,
        "ISP spoof counter rose by {dropped}, expected >= 6"
    );
}

#[test]
fn every_wan_of_eight_reaches_its_gateway_through_its_hop() {
    if !require_netns() {
        return;
    }
    let tb = up(8);
    for w in tb.wans() {
        for gw in [w.gateway_v4.to_string(), w.gateway_v6.to_string()] {
            let (_, received, _) =
                ping(&tb, Role::Router, &["-c", "2", "-i", "0.1", "-W", "2", &gw]);
            assert!(received > 0, "{}: gateway {gw} unreachable", w.name);
        }
        let status = tb.hop_status(&w.name).expect("hop status");
        assert!(
            status.upstream.forwarded > 0 && status.downstream.forwarded > 0,
            "{}: {status:?}",
            w.name
        );
    }
}

fn host_nft_tables() -> String {
    Command::new("nft")
        .args(["list", "tables"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// No host device names the testbed, and the host's nft tables are as before.
fn assert_host_untouched(name: &str, tables_before: &str) {
    let links = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip link");
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(
        !links.contains(name),
        "host devices refer to the testbed: {links}"
    );
    assert_eq!(host_nft_tables(), tables_before, "host nft tables changed");
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

#[test]
fn down_leaves_no_namespace_device_process_table_or_run_dir() {
    if !require_netns() {
        return;
    }
    let tables_before = host_nft_tables();
    let tb = up(3);
    let name = tb.name().to_string();
    let run_dir = tb.run_dir().to_path_buf();
    let mut pids: Vec<u32> = tb
        .wans()
        .iter()
        .map(|w| tb.hop_pid(&w.name).unwrap())
        .collect();
    pids.push(tb.state().server_pid);
    // A process a test started and forgot.
    let mut straggler = tb.spawn(Role::Router, &["sleep", "1000"]).expect("spawn");
    pids.push(straggler.id());
    assert!(pids.iter().all(|&p| alive(p)));
    let ours = |n: &String| n.contains(&format!("-{name}-"));
    assert!(netns::list_namespaces().iter().any(ours));

    let problems = tb.down();
    assert!(problems.is_empty(), "{problems:?}");
    straggler.wait().expect("reap straggler");
    let left: Vec<String> = netns::list_namespaces().into_iter().filter(ours).collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    let alive_now: Vec<u32> = pids.into_iter().filter(|&p| alive(p)).collect();
    assert!(alive_now.is_empty(), "processes left: {alive_now:?}");
    assert_host_untouched(&name, &tables_before);
    assert!(!run_dir.exists(), "run dir {} left", run_dir.display());
}

#[test]
fn cli_down_removes_a_crashed_run() {
    if !require_netns() {
        return;
    }
    let exe = mwan_testbed::find_binary("mwan-testbed").expect("mwan-testbed binary");
    let tables_before = host_nft_tables();
    let name = format!("crash{}", std::process::id());
    // A CLI testbed has no harness Drop: if an assertion below fails, this
    // still runs `down` (a second `down` after the test's own finds nothing).
    struct DownOnDrop(std::path::PathBuf, String);
    impl Drop for DownOnDrop {
        fn drop(&mut self) {
            let down = Command::new(&self.0)
                .args(["--name", &self.1, "down"])
                .status();
            if !down.as_ref().is_ok_and(|s| s.success()) {
                eprintln!("cleanup: mwan-testbed --name {} down: {down:?}", self.1);
            }
        }
    }
    let _cleanup = DownOnDrop(exe.clone(), name.clone());
    let cli = |args: &[&str]| {
        Command::new(&exe)
            .arg("--name")
            .arg(&name)
            .args(args)
            .output()
            .expect("run mwan-testbed")
    };
    let out = cli(&["up", "--wans", "2"]);
    assert!(
        out.status.success(),
        "up: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    let hop_pid = status["wans"][0]["hop_pid"].as_u64().expect("hop pid") as u32;
    let server_pid = status["server_pid"].as_u64().expect("server pid") as u32;
    // The crash: the servers killed with SIGKILL, state and sockets gone;
    // the hops and namespaces still there.
    // SAFETY: kill(2) on a pid this test just read from the testbed's state.
    assert_eq!(unsafe { libc::kill(server_pid as i32, libc::SIGKILL) }, 0);
    std::fs::remove_dir_all(format!("/run/mwan-testbed/{name}")).expect("remove run dir");
    assert!(alive(hop_pid));
    let out = cli(&["down"]);
    assert!(
        out.status.success(),
        "down: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left: Vec<String> = netns::list_namespaces()
        .into_iter()
        .filter(|n| n.contains(&format!("-{name}-")))
        .collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    // Killed; it was the CLI's child, so it may linger as a zombie of init's.
    std::thread::sleep(Duration::from_millis(100));
    assert!(!alive(hop_pid), "hop {hop_pid} survived down");
    assert!(!alive(server_pid), "server {server_pid} survived down");
    assert_host_untouched(&name, &tables_before);
}

#[test]
fn rate_cap_bounds_throughput() {
    if !require_netns() {
        return;
    }
    let tb = up(1);
    tb.impair(
        "wan1",
        Impairment {
            rate_kbit: 2_000,
            ..Default::default()
        },
    )
    .expect("impair");
    let source = tb.targets().tcp_source[0];
    let received = netns::in_netns(tb.router_ns(), move || {
        let mut s = TcpStream::connect_timeout(&source, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_millis(200)))?;
        let start = std::time::Instant::now();
        let mut total = 0usize;
        let mut buf = vec![0u8; 64 * 1024];
        while start.elapsed() < Duration::from_secs(2) {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => total += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    })
    .expect("download");
    // The serialiser lets through at most 2 Mbit/s = 250 kB/s of frames.
    assert!(
        received > 20_000,
        "only {received} bytes through a 2 Mbit/s cap"
    );
    assert!(
        received < 2 * 250_000 + 20_000,
        "{received} bytes in 2 s through a 2 Mbit/s cap"
    );
    let status = tb.hop_status("wan1").expect("status");
    assert!(
        status.downstream.forwarded_bytes > received as u64,
        "{status:?}"
    );
}
