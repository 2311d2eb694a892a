//! mwan-track on the real kernel, in a testbed: every probe method, silent
//! cuts, two trackers sharing a router, backlog replay to a controller that
//! restarts, SIGTERM, bad arguments, capabilities and the unprivileged
//! ping-socket path.
//!
//! Needs root and `cargo build -p mwan-track -p mwan-testbed --bins` first.
//! Like mwand's data plane, each test routes the tracker's fwmark through the
//! WAN's own table (`ip rule fwmark M lookup T` above everything else).

use mwan_integration::icmp_tracker_args;
use mwan_proto::frame::{self, FrameReader};
use mwan_proto::track::{ControllerMessage, ProbeOutcome, TrackerMessage};
use mwan_testbed::{find_binary, monotonic_us, require_netns, Role, Testbed, TestbedOptions};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

fn up(wans: usize) -> Testbed {
    Testbed::up(TestbedOptions {
        wans,
        ..Default::default()
    })
    .expect("testbed up")
}

/// A tracker started with --stdout; its samples arrive on a channel with
/// the CLOCK_MONOTONIC time they were read.
struct Tracker {
    child: Child,
    samples: Receiver<(u64, Value)>,
    stderr: std::thread::JoinHandle<String>,
}

impl Tracker {
    fn start<S: AsRef<str>>(tb: &Testbed, args: &[S]) -> Tracker {
        Self::start_as(tb, &[], args)
    }

    /// `prefix` wraps the tracker (e.g. setpriv to drop privileges).
    fn start_as<S: AsRef<str>>(tb: &Testbed, prefix: &[&str], args: &[S]) -> Tracker {
        let bin = find_binary("mwan-track").expect("mwan-track built (cargo build -p mwan-track)");
        let bin = bin.to_str().expect("utf-8 path");
        let mut argv: Vec<&str> = prefix.to_vec();
        argv.push(bin);
        argv.extend(args.iter().map(AsRef::as_ref));
        argv.push("--stdout");
        let mut child = tb
            .command(Role::Router, &argv)
            .expect("command")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mwan-track");
        let out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let (tx, samples) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"));
                if tx.send((monotonic_us(), v)).is_err() {
                    return;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            if let Err(e) = err.read_to_string(&mut s) {
                s.push_str(&format!("(reading stderr failed: {e})"));
            }
            s
        });
        Tracker {
            child,
            samples,
            stderr,
        }
    }

    /// Samples read within `d`.
    fn collect(&self, d: Duration) -> Vec<(u64, Value)> {
        let end = Instant::now() + d;
        let mut v = Vec::new();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.samples.recv_timeout(left) {
                Ok(s) => v.push(s),
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => return v,
            }
        }
    }

    /// The first sample matching `pred` within `d`.
    fn wait_for(&self, d: Duration, pred: impl Fn(&Value) -> bool) -> Option<(u64, Value)> {
        let end = Instant::now() + d;
        loop {
            let left = end.checked_duration_since(Instant::now())?;
            match self.samples.recv_timeout(left) {
                Ok((t, v)) if pred(&v) => return Some((t, v)),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGTERM, then the exit code and stderr.
    fn stop(mut self) -> (Option<i32>, String) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(5);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if Instant::now() > end {
                if let Err(e) = self.child.kill() {
                    eprintln!("kill mwan-track: {e}");
                }
                panic!("mwan-track did not exit within 5 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (status.code(), self.stderr.join().unwrap_or_default())
    }
}

/// The debug build's count of heap allocations after its first two rounds,
/// printed at exit.
fn allocations_after_warmup(stderr: &str) -> Option<u64> {
    let line = stderr
        .lines()
        .find(|l| l.contains("heap allocations after warm-up"))?;
    line.rsplit(": ").next()?.trim().parse().ok()
}

fn outcome(v: &Value) -> &str {
    v["outcome"].as_str().unwrap_or("?")
}

fn count(samples: &[(u64, Value)], target: &str, what: &str) -> usize {
    samples
        .iter()
        .filter(|(_, v)| v["target"] == target && outcome(v) == what)
        .count()
}

fn summary(samples: &[(u64, Value)]) -> String {
    samples
        .iter()
        .map(|(_, v)| v.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_method_gets_answers_through_its_wan_and_stops_on_sigterm() {
    if !require_netns() {
        return;
    }
    let tb = up(2);
    // wan2: the main table prefers wan1, so wan2's probes only get through
    // its own table by the tracker mark.
    let mark = tb.route_tracker_mark(2).expect("tracker mark route");
    let w = tb.wans()[1].clone();
    let t = tb.targets().clone();
    // (method, target, more arguments, outcome wanted); targets v4 and v6.
    let mut runs: Vec<(&str, String, String, &str)> = vec![(
        "arping",
        "gateway".into(),
        format!("--gateway {}", w.gateway_v4),
        "reply",
    )];
    for i in 0..2 {
        let icmp = if i == 0 {
            t.icmp_v4[0].to_string()
        } else {
            t.icmp_v6[0].to_string()
        };
        let host = if i == 0 {
            t.icmp_v4[0].to_string()
        } else {
            format!("[{}]", t.icmp_v6[0])
        };
        let answer = if i == 0 {
            t.dns_answer_v4.to_string()
        } else {
            t.dns_answer_v6.to_string()
        };
        runs.extend([
            ("ping", icmp, String::new(), "reply"),
            (
                "nping-tcp",
                t.tcp_echo[i].to_string(),
                String::new(),
                "reply",
            ),
            // nothing listens there: the host answers port unreachable
            (
                "nping-udp",
                format!("{host}:40125"),
                String::new(),
                "refused",
            ),
            (
                "nslookup",
                t.dns_server[i].to_string(),
                format!("--dns-name {} --dns-expect {answer}", t.dns_name),
                "reply",
            ),
            (
                "httping",
                format!("http://{}/", t.http[i]),
                String::new(),
                "reply",
            ),
        ]);
    }
    let common = format!(
        "--interface wan2 --device {} --mark {mark} --interval 200ms --timeout 1s",
        w.device
    );
    let trackers: Vec<Tracker> = runs
        .iter()
        .map(|(method, target, extra, _)| {
            let mut args: Vec<&str> = common.split(' ').collect();
            args.extend_from_slice(&["--method", method, "--target", target]);
            args.extend(extra.split(' ').filter(|s| !s.is_empty()));
            Tracker::start(&tb, &args)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let caps =
        std::fs::read_to_string(format!("/proc/{}/status", trackers[1].pid())).expect("status");
    let cap_eff = caps
        .lines()
        .find(|l| l.starts_with("CapEff:"))
        .expect("CapEff")
        .to_string();
    let cap_bnd = caps
        .lines()
        .find(|l| l.starts_with("CapBnd:"))
        .expect("CapBnd")
        .to_string();
    let collected: Vec<_> = trackers
        .iter()
        .map(|t| t.collect(Duration::from_millis(1700)))
        .collect();
    for (((method, target, _, want), tracker), samples) in runs.iter().zip(trackers).zip(collected)
    {
        let (code, stderr) = tracker.stop();
        assert_eq!(
            code,
            Some(0),
            "{method}: exit status after SIGTERM; stderr:\n{stderr}"
        );
        assert_eq!(
            allocations_after_warmup(&stderr),
            Some(0),
            "{method} {target}: no heap allocation per probe once running:\n{stderr}"
        );
        let good = count(&samples, target, want);
        assert!(good >= 4, "{method} {target}: want >= 4 '{want}' samples in 2 s, got {good}:\n{}\nstderr:\n{stderr}", summary(&samples));
        if *want == "reply" {
            let bad = samples
                .iter()
                .filter(|(_, v)| outcome(v) != "reply")
                .count();
            assert!(
                bad <= 1,
                "{method}: unexpected failures:\n{}",
                summary(&samples)
            );
            let rtt = samples[0].1["rtt_us"].as_u64().expect("rtt_us");
            assert!(
                rtt < 1_000_000,
                "{method}: rtt {rtt} us on an unimpaired link"
            );
        }
    }
    // ICMP with a mark keeps exactly CAP_NET_ADMIN and CAP_NET_RAW.
    assert!(cap_eff.ends_with("0000000000003000"), "{cap_eff}");
    assert!(cap_bnd.ends_with("0000000000003000"), "{cap_bnd}");
}

#[test]
fn silent_cut_shows_as_lost_probes_within_one_timeout_and_other_wan_unaffected() {
    if !require_netns() {
        return;
    }
    let tb = up(2);
    let t = tb.targets().clone();
    let target = t.icmp_v4[0].to_string();
    let mut trackers = Vec::new();
    for wan in [1, 2] {
        let mark = tb.route_tracker_mark(wan).expect("tracker mark route");
        let w = tb.wans()[wan - 1].clone();
        trackers.push(Tracker::start(
            &tb,
            &icmp_tracker_args(&w, Some(&mark), &[&target], "100ms", "500ms"),
        ));
    }
    for tr in &trackers {
        assert!(
            tr.wait_for(Duration::from_secs(3), |v| outcome(v) == "reply")
                .is_some(),
            "no reply before the cut"
        );
    }
    let cut_at = monotonic_us();
    tb.cut("wan1").expect("cut wan1");
    let lost = trackers[0].wait_for(Duration::from_secs(5), |v| outcome(v) == "timeout");
    let (seen_at, v) = lost.expect("wan1's tracker reports a lost probe after the cut");
    let after_ms = (seen_at - cut_at) / 1000;
    // Outcome limit only; the figure is printed by bench-track.
    assert!(
        after_ms < 2000,
        "first lost probe reported {after_ms} ms after the cut (timeout 500 ms): {v}"
    );
    let during = trackers[1].collect(Duration::from_secs(1));
    let replies = count(&during, &target, "reply");
    assert!(
        replies >= 6 && replies == during.len(),
        "wan2 must be unaffected by wan1's cut:\n{}",
        summary(&during)
    );
    let still = trackers[0].collect(Duration::from_millis(800));
    assert!(
        still.iter().all(|(_, v)| outcome(v) == "timeout"),
        "cut wan1 must not see replies:\n{}",
        summary(&still)
    );
    tb.restore("wan1").expect("restore");
    assert!(
        trackers[0]
            .wait_for(Duration::from_secs(3), |v| outcome(v) == "reply")
            .is_some(),
        "replies come back after restore"
    );
    for tr in trackers {
        assert_eq!(tr.stop().0, Some(0));
    }
}

#[test]
fn two_trackers_on_one_router_never_take_each_others_replies() {
    if !require_netns() {
        return;
    }
    let tb = up(1);
    let mark = tb.route_tracker_mark(1).expect("tracker mark route");
    let w = tb.wans()[0].clone();
    let t = tb.targets().clone();
    let (a, b) = (t.icmp_v4[0].to_string(), t.icmp_v6[0].to_string());
    // Same device, same targets, fast: every reply reaches both raw sockets.
    let args = icmp_tracker_args(&w, Some(&mark), &[&a, &b], "50ms", "1s");
    let t1 = Tracker::start(&tb, &args);
    let t2 = Tracker::start(&tb, &args);
    let s1 = t1.collect(Duration::from_secs(2));
    let s2 = t2.collect(Duration::from_secs(2));
    for s in [&s1, &s2] {
        let replies = s.iter().filter(|(_, v)| outcome(v) == "reply").count();
        assert!(
            replies >= 40,
            "want >= 40 replies each, got {replies}:\n{}",
            summary(s)
        );
        assert_eq!(
            replies,
            s.len(),
            "no probe may be lost or mismatched:\n{}",
            summary(s)
        );
        let rounds: BTreeSet<(u64, String)> = s
            .iter()
            .map(|(_, v)| (v["round"].as_u64().unwrap(), v["target"].to_string()))
            .collect();
        assert_eq!(
            rounds.len(),
            s.len(),
            "each (round, target) answered exactly once"
        );
    }
    for t in [t1, t2] {
        let (code, stderr) = t.stop();
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(allocations_after_warmup(&stderr), Some(0), "{stderr}");
    }
}

fn read_messages(
    stream: &mut UnixStream,
    reader: &mut FrameReader,
    until: Instant,
    out: &mut Vec<TrackerMessage>,
) {
    let mut buf = [0u8; 4096];
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    while Instant::now() < until {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                reader.extend(&buf[..n]);
                while let Some(m) = reader.next::<TrackerMessage>().expect("well-formed frames") {
                    out.push(m);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("read from tracker: {e}"),
        }
    }
}

fn sample_seqs(msgs: &[TrackerMessage]) -> Vec<(u64, u64)> {
    msgs.iter()
        .filter_map(|m| match m {
            TrackerMessage::Samples(s) => {
                Some(s.iter().map(|s| (s.seq, s.sent_at_us)).collect::<Vec<_>>())
            }
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn backlog_is_replayed_to_a_restarted_controller_and_intervals_are_obeyed() {
    if !require_netns() {
        return;
    }
    let tb = up(1);
    let mark = tb.route_tracker_mark(1).expect("tracker mark route");
    let w = tb.wans()[0].clone();
    let target = tb.targets().icmp_v4[0].to_string();
    let sock = tb
        .run_dir()
        .join(format!("track-test-{}.sock", std::process::id()));
    let sock_s = sock.to_str().unwrap().to_string();
    let listener = UnixListener::bind(&sock).expect("bind controller socket");
    let mut args = icmp_tracker_args(&w, Some(&mark), &[&target], "100ms", "1s");
    args.extend(["--controller".to_string(), sock_s.clone()]);
    let tr = Tracker::start(&tb, &args);
    listener.set_nonblocking(false).unwrap();
    let (mut conn, _) = listener.accept().expect("tracker connects");
    let mut reader = FrameReader::new();
    let mut first = Vec::new();
    read_messages(
        &mut conn,
        &mut reader,
        Instant::now() + Duration::from_millis(800),
        &mut first,
    );
    assert!(
        matches!(&first[0], TrackerMessage::Hello { interface, dropped_samples: 0, .. } if interface == "wan1"),
        "first message is Hello: {:?}",
        first.first()
    );
    let before = sample_seqs(&first);
    assert!(
        before.len() >= 4,
        "samples flow to the controller: {first:?}"
    );
    // Controller "restarts": gone for 2 s.
    drop(conn);
    drop(listener);
    std::fs::remove_file(&sock).expect("remove socket");
    let gone_at = monotonic_us();
    std::thread::sleep(Duration::from_millis(2000));
    let back_at = monotonic_us();
    let listener = UnixListener::bind(&sock).expect("re-bind controller socket");
    let (mut conn, _) = listener.accept().expect("tracker reconnects");
    let mut reader = FrameReader::new();
    let mut second = Vec::new();
    read_messages(
        &mut conn,
        &mut reader,
        Instant::now() + Duration::from_millis(600),
        &mut second,
    );
    assert!(
        matches!(
            second[0],
            TrackerMessage::Hello {
                dropped_samples: 0,
                ..
            }
        ),
        "Hello again, nothing dropped: {:?}",
        second[0]
    );
    let after = sample_seqs(&second);
    let during = after
        .iter()
        .filter(|(_, sent)| *sent > gone_at + 200_000 && *sent < back_at - 200_000)
        .count();
    assert!(
        during >= 10,
        "samples from the outage are replayed: {during} of {after:?}"
    );
    let seqs: Vec<u64> = after.iter().map(|(s, _)| *s).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "replayed samples are contiguous: {seqs:?}"
    );
    let last_before = before.last().unwrap().0;
    assert!(
        seqs[0] <= last_before + 3,
        "little or nothing lost across the restart: last before {last_before}, first after {}",
        seqs[0]
    );

    // The controller slows the tracker down to 500 ms and a 2 s timeout.
    let mut out = Vec::new();
    frame::encode_into(
        &ControllerMessage::SetInterval { interval_ms: 500 },
        &mut out,
    )
    .unwrap();
    frame::encode_into(
        &ControllerMessage::SetTimeout { timeout_ms: 2000 },
        &mut out,
    )
    .unwrap();
    conn.write_all(&out).expect("send to tracker");
    let mut third = Vec::new();
    read_messages(
        &mut conn,
        &mut reader,
        Instant::now() + Duration::from_millis(4100),
        &mut third,
    );
    // The schedule from the tracker's own send times and round numbers,
    // not single gaps: one send delayed on a loaded machine shortens the
    // next gap and lengthens its own, but the tracker keeps a grid, so the
    // spacing over several rounds is the interval. The first two rounds
    // may still use the old interval (a longer one applies next round).
    let sends: Vec<(u64, u64)> = third
        .iter()
        .filter_map(|m| match m {
            TrackerMessage::Samples(s) => Some(s.iter().map(|s| (s.round, s.sent_at_us))),
            _ => None,
        })
        .flatten()
        .skip(2)
        .collect();
    assert!(sends.len() >= 4, "rounds after SetInterval: {sends:?}");
    let (first, last) = (sends[0], sends[sends.len() - 1]);
    assert!(
        sends.windows(2).all(|w| w[1].0 == w[0].0 + 1),
        "one probe per round, rounds consecutive: {sends:?}"
    );
    let spacing_ms = (last.1 - first.1) / (last.0 - first.0) / 1000;
    assert!(
        (450..=550).contains(&spacing_ms),
        "rounds 500 ms apart after SetInterval, by the tracker's send times: {spacing_ms} ms over {sends:?}"
    );
    let ok = third.iter().all(|m| match m {
        TrackerMessage::Samples(s) => s
            .iter()
            .all(|s| matches!(s.outcome, ProbeOutcome::Reply { .. })),
        _ => true,
    });
    assert!(ok, "all replies: {third:?}");
    assert_eq!(tr.stop().0, Some(0));
}

#[test]
fn unprivileged_tracker_uses_ping_sockets() {
    if !require_netns() {
        return;
    }
    let tb = up(1);
    let w = tb.wans()[0].clone();
    let t = tb.targets().clone();
    let (a, b) = (t.icmp_v4[0].to_string(), t.icmp_v6[0].to_string());
    tb.exec_ok(
        Role::Router,
        &["sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"],
    )
    .expect("sysctl");
    // As nobody, without capabilities and so without --mark: wan1 is the
    // main table's default anyway.
    let tr = Tracker::start_as(
        &tb,
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ],
        &icmp_tracker_args(&w, None, &[&a, &b], "100ms", "1s"),
    );
    let s = tr.collect(Duration::from_millis(1500));
    let (code, stderr) = tr.stop();
    assert!(
        stderr.contains("icmp sockets v4 datagram v6 datagram"),
        "{stderr}"
    );
    for target in [&a, &b] {
        assert!(
            count(&s, target, "reply") >= 5,
            "{target}:\n{}\n{stderr}",
            summary(&s)
        );
    }
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn icmp_errors_carry_type_and_code_on_raw_ping_and_udp_sockets() {
    if !require_netns() {
        return;
    }
    let tb = up(1);
    let w = tb.wans()[0].clone();
    let t = tb.targets().clone();
    let (a, b) = (t.icmp_v4[0].to_string(), t.icmp_v6[0].to_string());
    let udp = format!("{}:40125", t.icmp_v4[0]);
    tb.exec_ok(
        Role::Router,
        &["sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"],
    )
    .expect("sysctl");
    // A hop limit of 1 expires at the ISP's gateway: time exceeded (v4 11/0, v6 3/0).
    let mut raw_args = icmp_tracker_args(&w, None, &[&a, &b], "100ms", "1s");
    raw_args.extend(["--max-ttl".to_string(), "1".to_string()]);
    let raw = Tracker::start(&tb, &raw_args);
    let ping = Tracker::start_as(
        &tb,
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ],
        &raw_args,
    );
    let udp_tr = Tracker::start(
        &tb,
        &[
            "--interface",
            "wan1",
            "--device",
            &w.device,
            "--method",
            "nping-udp",
            "--target",
            &udp,
            "--interval",
            "100ms",
            "--max-ttl",
            "1",
        ],
    );
    std::thread::sleep(Duration::from_millis(1200));
    for (name, tr, target, want) in [
        ("raw", raw, &a, (11, 0)),
        ("ping socket", ping, &b, (3, 0)),
        ("udp", udp_tr, &udp, (11, 0)),
    ] {
        let s = tr.collect(Duration::from_millis(100));
        let (code, stderr) = tr.stop();
        // Routers rate-limit ICMP errors (Linux: a burst of 6, then 1/s per
        // peer), so only a few are asked for.
        let hits = s
            .iter()
            .filter(|(_, v)| v["target"] == target.as_str() && outcome(v) == "unreachable")
            .filter(|(_, v)| {
                (v["icmp_type"].as_u64(), v["icmp_code"].as_u64()) == (Some(want.0), Some(want.1))
            })
            .count();
        assert!(
            hits >= 2,
            "{name} {target}: want time exceeded {want:?}:\n{}\n{stderr}",
            summary(&s)
        );
        assert_eq!(code, Some(0), "{stderr}");
    }
}

#[test]
fn follows_the_wan_address_away_and_back() {
    if !require_netns() {
        return;
    }
    let tb = up(1);
    let mark = tb.route_tracker_mark(1).expect("tracker mark route");
    let w = tb.wans()[0].clone();
    let target = tb.targets().icmp_v4[0].to_string();
    let tr = Tracker::start(
        &tb,
        &icmp_tracker_args(&w, Some(&mark), &[&target], "100ms", "500ms"),
    );
    let first = tr.wait_for(Duration::from_secs(3), |v| outcome(v) == "reply");
    assert!(first.is_some(), "replies at first");
    let addr = format!("{}/{}", w.router_v4, w.v4_prefix);
    tb.exec_ok(
        Role::Router,
        &["ip", "addr", "del", &addr, "dev", &w.device],
    )
    .expect("del address");
    let failed = tr.wait_for(Duration::from_secs(3), |v| outcome(v) == "send_error");
    assert!(
        failed.is_some(),
        "probes fail while the device has no address"
    );
    // Long enough for the tracker to look (200 ms after a failed send).
    std::thread::sleep(Duration::from_millis(600));
    tb.exec_ok(
        Role::Router,
        &["ip", "addr", "add", &addr, "dev", &w.device],
    )
    .expect("add address");
    // The kernel dropped the routes through the device with its address;
    // put back what netifd and the data plane would.
    let gw = w.gateway_v4.to_string();
    for table in ["main", "901"] {
        let route = [
            "ip", "route", "replace", "default", "via", &gw, "dev", &w.device, "table", table,
        ];
        tb.exec_ok(Role::Router, &route).expect("restore routes");
    }
    // The tracker re-reads the device every 5 s at the latest.
    let back = tr.wait_for(Duration::from_secs(8), |v| outcome(v) == "reply");
    let (code, stderr) = tr.stop();
    assert!(
        back.is_some(),
        "replies again once the address is back:\n{stderr}"
    );
    assert!(
        stderr.contains("no IPv4 address"),
        "the trouble is logged:\n{stderr}"
    );
    assert_eq!(code, Some(0));
}

#[test]
fn bad_arguments_exit_2_with_a_clear_message() {
    let bin = find_binary("mwan-track").expect("mwan-track built (cargo build -p mwan-track)");
    let base = "--interface wan --device eth1";
    let cases = [
        ("--method ping --stdout", "--target"),
        ("--method smoke --target 192.0.2.1 --stdout", "--method"),
        (
            "--method httping --target https://192.0.2.1/ --stdout",
            "TLS",
        ),
        (
            "--method ping --target 192.0.2.1 --interval soon --stdout",
            "--interval",
        ),
        (
            "--method ping --target 192.0.2.1 --frobnicate",
            "--frobnicate",
        ),
    ];
    for (rest, needle) in cases {
        let args: Vec<&str> = base.split(' ').chain(rest.split(' ')).collect();
        let out = Command::new(&bin)
            .args(&args)
            .output()
            .expect("run mwan-track");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(needle) && err.contains("error"),
            "{args:?}: message should name {needle}: {err}"
        );
    }
}

#[test]
fn a_probe_reported_lost_at_the_controllers_timeout_still_reports_its_late_answer() {
    if !require_netns() {
        return;
    }
    let tb = up(1);
    // Every answer takes about 300 ms.
    tb.impair(
        "wan1",
        mwan_testbed::Impairment {
            delay_ms: 300.0,
            jitter_ms: 0.0,
            loss_pct: 0.0,
            rate_kbit: 0,
            queue_ms: 1000,
        },
    )
    .expect("impair");
    let mark = tb.route_tracker_mark(1).expect("tracker mark route");
    let w = tb.wans()[0].clone();
    let target = tb.targets().icmp_v4[0].to_string();
    let sock = tb
        .run_dir()
        .join(format!("track-late-{}.sock", std::process::id()));
    let listener = UnixListener::bind(&sock).expect("bind controller socket");
    // --timeout 1s is the cap: how long a slot stays open for an answer.
    let mut args = icmp_tracker_args(&w, Some(&mark), &[&target], "200ms", "1s");
    args.extend(["--controller".to_string(), sock.display().to_string()]);
    let tr = Tracker::start(&tb, &args);
    let (mut conn, _) = listener.accept().expect("tracker connects");
    // The controller's (adaptive) timeout: report losses after 100 ms.
    let mut out = Vec::new();
    frame::encode_into(&ControllerMessage::SetTimeout { timeout_ms: 100 }, &mut out).unwrap();
    conn.write_all(&out).expect("send to tracker");
    let mut reader = FrameReader::new();
    let mut msgs = Vec::new();
    read_messages(
        &mut conn,
        &mut reader,
        Instant::now() + Duration::from_millis(2500),
        &mut msgs,
    );
    let samples: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m {
            TrackerMessage::Samples(s) => Some(s.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    // Probes sent after SetTimeout arrived: each one is first a timeout,
    // then a reply of about 300 ms for the same round.
    let late: Vec<_> = samples
        .windows(2)
        .filter(|p| {
            matches!(p[0].outcome, ProbeOutcome::Timeout)
                && matches!(p[1].outcome, ProbeOutcome::Reply { rtt_us } if rtt_us >= 250_000)
        })
        .collect();
    let replies_after_timeouts = samples
        .iter()
        .filter(|s| matches!(s.outcome, ProbeOutcome::Reply { .. }))
        .filter(|r| {
            samples.iter().any(|t| {
                matches!(t.outcome, ProbeOutcome::Timeout)
                    && t.round == r.round
                    && t.sent_at_us == r.sent_at_us
                    && t.seq < r.seq
            })
        })
        .count();
    assert!(
        replies_after_timeouts >= 5,
        "late answers reported after the timeout ({} adjacent pairs): {samples:?}",
        late.len()
    );
    assert!(
        samples
            .iter()
            .filter(|s| matches!(s.outcome, ProbeOutcome::Timeout))
            .count()
            <= samples.len() / 2 + 3,
        "every timeout should be followed by its late reply: {samples:?}"
    );
    assert_eq!(tr.stop().0, Some(0));
}
