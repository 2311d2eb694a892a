//! Running mwand on a testbed, for the mwand_* tests and bench-failover:
//! start it in the router namespace with the embedded supervisor, talk to
//! it with mwanctl, read the kernel back, and leave nothing running (Drop
//! stops mwand and any tracker naming its socket, also after kill -9).
#![allow(dead_code)] // each test file uses a different part

use mwan_testbed::{find_binary, Role, Testbed, WanInfo};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Tracking settings of a WAN in the generated config.
#[derive(Debug, Clone)]
pub struct Tracking {
    pub interval: &'static str,
    pub timeout: &'static str,
    pub down: u32,
    pub up: u32,
    pub count: u32,
    pub reliability: u32,
}

/// Our defaults (mwan_core::health::RECOMMENDED_TRACKING, docs/mwand.md).
pub const OURS: Tracking = Tracking {
    interval: "0.2",
    timeout: "3",
    down: 3,
    up: 10,
    count: 1,
    reliability: 1,
};

/// mwan3's defaults (interval 10 s, timeout 4 s, down 5, up 5), as an
/// unchanged mwan3 config would have them.
pub const MWAN3: Tracking = Tracking {
    interval: "10",
    timeout: "4",
    down: 5,
    up: 5,
    count: 1,
    reliability: 1,
};

/// A config for the testbed: every WAN tracked against the three ICMP
/// targets; policy `failover` (wan1 metric 1, the others metric 2..),
/// policy `balanced` (all metric 1), every IPv4 destination to `failover`.
pub fn config(wans: &[WanInfo], per_wan: &dyn Fn(&WanInfo) -> Tracking) -> String {
    let mut c = String::from("config globals 'globals'\n\toption mmx_mask '0x3F00'\n\n");
    for w in wans {
        let t = per_wan(w);
        c += &format!(
            "config interface '{name}'\n\toption enabled '1'\n\toption device '{dev}'\n\
             \tlist track_ip '203.0.113.1'\n\tlist track_ip '203.0.113.2'\n\tlist track_ip '203.0.113.3'\n\
             \toption reliability '{rel}'\n\toption count '{count}'\n\toption interval '{iv}'\n\
             \toption failure_interval '{iv}'\n\toption recovery_interval '{iv}'\n\
             \toption timeout '{to}'\n\toption down '{down}'\n\toption up '{up}'\n\n",
            name = w.name,
            dev = w.device,
            rel = t.reliability,
            count = t.count,
            iv = t.interval,
            to = t.timeout,
            down = t.down,
            up = t.up
        );
    }
    for (i, w) in wans.iter().enumerate() {
        c += &format!(
            "config member '{n}_f'\n\toption interface '{n}'\n\toption metric '{m}'\n\n\
             config member '{n}_b'\n\toption interface '{n}'\n\toption metric '1'\n\n",
            n = w.name,
            m = if i == 0 { 1 } else { 2 }
        );
    }
    c += "config policy 'failover'\n";
    for w in wans {
        c += &format!("\tlist use_member '{}_f'\n", w.name);
    }
    c += "\toption last_resort 'unreachable'\n\nconfig policy 'balanced'\n";
    for w in wans {
        c += &format!("\tlist use_member '{}_b'\n", w.name);
    }
    c += "\nconfig rule 'everything'\n\toption dest_ip '0.0.0.0/0'\n\toption use_policy 'failover'\n";
    c
}

/// A testbed with `wans` uplinks (hop seed `seed`).
pub fn testbed(wans: usize, seed: u64) -> Testbed {
    Testbed::up(mwan_testbed::TestbedOptions { wans, seed }).expect("testbed up")
}

/// The usual start of a test: a two-WAN testbed, mwand with our defaults,
/// both WANs online. None when namespaces are unavailable outside CI (the
/// test is then skipped with a printed reason; under CI it panics).
pub fn two_wans_online() -> Option<(Testbed, Mwand, Value)> {
    if !mwan_testbed::require_netns() {
        return None;
    }
    let tb = testbed(2, 1);
    let m = Mwand::start(&tb, &config(tb.wans(), &ours));
    let s = m.wait(20, "both WANs online", all_online);
    Some((tb, m, s))
}

pub fn ours(_: &WanInfo) -> Tracking {
    OURS
}

/// One mwand on a testbed's router.
/// What [`Mwand::watch_keeps_policy`] saw of one WAN: the states it was
/// in and its highest smoothed latency.
#[derive(Debug, Default)]
pub struct Watched {
    pub states: std::collections::BTreeSet<String>,
    pub max_latency_ms: f64,
}

pub struct Mwand {
    pub dir: PathBuf,
    pub run_dir: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
    router_ns: String,
    /// How trackers are run: `--supervisor embedded` unless a test says.
    supervisor_args: Vec<String>,
}

impl Mwand {
    /// Writes `config_text` and starts mwand; returns once its control
    /// socket answers.
    pub fn start(tb: &Testbed, config_text: &str) -> Mwand {
        Self::start_with(tb, config_text, &["--supervisor", "embedded"])
    }

    /// Like [`Mwand::start`] with other supervisor flags (e.g. procd mode:
    /// `--supervisor procd --ubus-socket PATH`).
    pub fn start_with(tb: &Testbed, config_text: &str, supervisor_args: &[&str]) -> Mwand {
        Self::start_maybe_config(tb, Some(config_text), supervisor_args, &[])
    }

    /// Like [`Mwand::start_with`], with `--config` naming a file that does
    /// not exist (automatic mode).
    pub fn start_without_config(tb: &Testbed, args: &[&str]) -> Mwand {
        Self::start_maybe_config(tb, None, args, &[])
    }

    /// Like [`Mwand::start_without_config`], with `files` (name, text)
    /// written next to the missing config first, as /etc/config/firewall
    /// sits next to /etc/config/mwan.
    pub fn start_without_config_beside(
        tb: &Testbed,
        args: &[&str],
        files: &[(&str, &str)],
    ) -> Mwand {
        Self::start_maybe_config(tb, None, args, files)
    }

    fn start_maybe_config(
        tb: &Testbed,
        config_text: Option<&str>,
        supervisor_args: &[&str],
        files: &[(&str, &str)],
    ) -> Mwand {
        let dir = PathBuf::from(format!(
            "/tmp/mwand-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("test dir");
        let config = dir.join("mwan");
        if let Some(text) = config_text {
            std::fs::write(&config, text).expect("write config");
        }
        for (name, text) in files {
            std::fs::write(dir.join(name), text).expect("write a file beside the config");
        }
        let mut m = Mwand {
            run_dir: dir.join("run"),
            log: dir.join("mwand.log"),
            config,
            dir,
            child: None,
            router_ns: tb.router_ns().to_string(),
            supervisor_args: supervisor_args.iter().map(|a| a.to_string()).collect(),
        };
        m.spawn(tb);
        m
    }

    /// Starts (again) a mwand on the same config and run dir.
    pub fn spawn(&mut self, tb: &Testbed) {
        let mwand = find_binary("mwand").expect("mwand built (cargo build --workspace --bins)");
        let track = find_binary("mwan-track").expect("mwan-track built");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let hook = self.dir.join("hook.sh");
        std::fs::write(
            &hook,
            format!(
                "echo \"$ACTION $INTERFACE $DEVICE\" >> {}\n",
                self.dir.join("hooks.log").display()
            ),
        )
        .expect("hook");
        let argv: Vec<String> = vec![
            mwand.display().to_string(),
            "--config".into(),
            self.config.display().to_string(),
            "--run-dir".into(),
            self.run_dir.display().to_string(),
            "--tracker-bin".into(),
            track.display().to_string(),
            "--hook".into(),
            hook.display().to_string(),
            "-v".into(),
        ];
        let argv: Vec<&str> = argv
            .iter()
            .chain(&self.supervisor_args)
            .map(String::as_str)
            .collect();
        let child = tb
            .command(Role::Router, &argv)
            .expect("command")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start mwand");
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if self.ctl(&["status"]).status.success() {
                return;
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("mwand exited at start ({st}):\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "mwand's control socket did not answer within 20 s:\n{}",
            self.log_text()
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn hooks_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("hooks.log")).unwrap_or_default()
    }

    /// Runs mwanctl against this mwand.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let bin = find_binary("mwanctl").expect("mwanctl built");
        std::process::Command::new(bin)
            .arg("--run-dir")
            .arg(&self.run_dir)
            .args(args)
            .output()
            .expect("run mwanctl")
    }

    pub fn status(&self) -> Value {
        let out = self.ctl(&["status", "--json"]);
        assert!(
            out.status.success(),
            "mwanctl status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status JSON")
    }

    /// Polls status every 50 ms until `pred` holds; panics with the log
    /// after `secs`.
    pub fn wait(&self, secs: u64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + Duration::from_secs(secs);
        let mut last = Value::Null;
        while Instant::now() < end {
            last = self.status();
            if pred(&last) {
                return last;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "waited {secs} s for {what}; last status:\n{last:#}\nmwand log:\n{}",
            self.log_text()
        );
    }

    /// Polls status every `poll` for `duration` while `wan` is under load,
    /// asserting each time that it keeps `policy` (`context` names the load
    /// in the failure): what the watch saw of `wan`.
    pub fn watch_keeps_policy(
        &self,
        wan: &str,
        policy: &str,
        duration: Duration,
        poll: Duration,
        context: &str,
    ) -> Watched {
        let end = Instant::now() + duration;
        let mut seen = Watched::default();
        while Instant::now() < end {
            let s = self.status();
            seen.states.insert(state(&s, wan));
            let latency = iface(&s, wan)["latency_ms"].as_f64().unwrap_or(0.0);
            seen.max_latency_ms = seen.max_latency_ms.max(latency);
            assert_eq!(
                active(&s, policy),
                [wan],
                "{context}: {wan} lost policy {policy}: {s:#}\n{}",
                self.log_text()
            );
            std::thread::sleep(poll);
        }
        seen
    }

    /// SIGKILL mwand (its trackers keep running).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill -9 mwand");
            c.wait().expect("reap mwand");
        }
    }

    /// SIGTERM and wait; returns whether it exited within 10 s.
    pub fn stop(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        // SAFETY: signalling our own child.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = c.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        c.kill().ok();
        c.wait().ok();
        false
    }

    /// Trackers running for this mwand (by their --controller argument).
    pub fn tracker_pids(&self) -> Vec<u32> {
        let sock = self.run_dir.join("track.sock").display().to_string();
        let mut pids = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<&[u8]> = cmd.split(|&b| b == 0).collect();
            if args.first().is_some_and(|a| a.ends_with(b"mwan-track"))
                && args.contains(&sock.as_bytes())
            {
                pids.push(pid);
            }
        }
        pids
    }

    pub fn router_ns(&self) -> &str {
        &self.router_ns
    }
}

impl Drop for Mwand {
    fn drop(&mut self) {
        self.stop();
        for pid in self.tracker_pids() {
            // SAFETY: a tracker of this test's mwand, by pid.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        if !std::thread::panicking() {
            std::fs::remove_dir_all(&self.dir).ok();
        } else {
            eprintln!("mwand test files kept in {}", self.dir.display());
        }
    }
}

pub fn iface<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["interfaces"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["name"] == name))
        .unwrap_or_else(|| panic!("no interface {name} in {status:#}"))
}

pub fn state(status: &Value, name: &str) -> String {
    iface(status, name)["state"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

pub fn tracker_pid(status: &Value, name: &str) -> Option<u64> {
    iface(status, name)["tracker"]["pid"].as_u64()
}

pub fn tracker_connected(status: &Value, name: &str) -> bool {
    iface(status, name)["tracker"]["connected"] == true
}

/// Interfaces a policy uses now.
pub fn active(status: &Value, policy: &str) -> Vec<String> {
    status["policies"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == policy))
        .and_then(|p| p["active"].as_array())
        .map(|a| {
            a.iter()
                .filter_map(|m| m["interface"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn all_online(status: &Value) -> bool {
    status["interfaces"].as_array().is_some_and(|a| {
        a.iter()
            .all(|i| i["state"] == "online" && i["tracker"]["connected"] == true)
    })
}

/// `ip -4/-6 rule` and our routes in the router, for before/after checks.
pub fn kernel_dump(tb: &Testbed) -> String {
    let mut s = String::new();
    for argv in [
        &["ip", "-4", "rule"][..],
        &["ip", "-6", "rule"],
        &["ip", "-4", "route", "show", "table", "all", "proto", "77"],
        &["ip", "-6", "route", "show", "table", "all", "proto", "77"],
    ] {
        s += &tb.exec_ok(Role::Router, argv).expect("dump");
    }
    s
}

/// One HTTP GET from the LAN client to the internet's HTTP server, with a
/// short timeout; the body names the address the server saw (so which WAN
/// the flow left by), None when the connection failed.
pub fn lan_http(tb: &Testbed, timeout_s: u32) -> Option<String> {
    lan_http_over(tb, false, timeout_s)
}

/// [`lan_http`] to the HTTP server's IPv6 address when `ipv6`.
pub fn lan_http_over(tb: &Testbed, ipv6: bool, timeout_s: u32) -> Option<String> {
    let http = tb.targets().http.iter().find(|a| a.is_ipv6() == ipv6)?;
    let script = format!(
        "exec 3<>/dev/tcp/{}/{} && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3",
        http.ip(),
        http.port()
    );
    let out = tb
        .exec(
            Role::Lan,
            &["timeout", &timeout_s.to_string(), "bash", "-c", &script],
        )
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success() && text.contains("200")).then_some(text)
}

/// Which WAN's subnet an address-bearing HTTP answer names.
pub fn wan_of_answer<'a>(tb: &'a Testbed, answer: &str) -> Option<&'a str> {
    tb.wans()
        .iter()
        .find(|w| {
            answer.contains(&w.router_v4.to_string()) || answer.contains(&w.router_v6.to_string())
        })
        .map(|w| w.name.as_str())
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A control client that writes status requests as fast as the socket
/// takes them and never reads a reply; it reconnects when cut off. Runs
/// until `stop` is set; returns how many requests went out.
pub fn flood(sock: &Path, stop: &std::sync::atomic::AtomicBool) -> u64 {
    use std::io::Write;
    let request = mwan_proto::frame::encode(&mwan_proto::control::Request::Status).expect("encode");
    let burst: Vec<u8> = request.repeat(256);
    let mut sent = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut c) = std::os::unix::net::UnixStream::connect(sock) else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        c.set_write_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        while !stop.load(Ordering::Relaxed) {
            match c.write(&burst) {
                Ok(n) => sent += (n / request.len()) as u64,
                // Blocked: mwand reads no faster than it answers.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
    }
    sent
}

/// ubusd + procd double (`mwan-ubus-double`) in the router namespace,
/// playing netifd too when given a netifd dump file; stopped on drop (its
/// instances die with it).
pub struct Double {
    pub child: Child,
    pub socket: PathBuf,
}

impl Double {
    pub fn start(tb: &Testbed, netifd: Option<&Path>) -> Double {
        let dir = PathBuf::from(format!(
            "/tmp/mwand-procd-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let socket = dir.join("ubus.sock");
        let bin = find_binary("mwan-ubus-double").expect("mwan-ubus-double built");
        let mut argv = vec![path_str(&bin), "--socket", path_str(&socket)];
        if let Some(file) = netifd {
            argv.extend(["--netifd", path_str(file)]);
        }
        let child = tb
            .spawn(Role::Router, &argv)
            .expect("start the ubus double");
        let end = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(
                Instant::now() < end,
                "the ubus double did not create its socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Double { child, socket }
    }

    /// Sends the double a signal (SIGUSR1: netifd restarts; SIGUSR2:
    /// netifd publishes every interface's state).
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }
}

impl Drop for Double {
    fn drop(&mut self) {
        self.signal(libc::SIGTERM);
        self.child.wait().ok();
        if let Some(dir) = self.socket.parent() {
            std::fs::remove_dir_all(dir).ok();
        }
    }
}

/// netifd's dump for the testbed's WANs as the real one lists them: up
/// (l3_device, addresses, default routes), or down for those in `down`;
/// what `mwan-ubus-double --netifd` answers from.
pub fn netifd_dump(wans: &[WanInfo], down: &[&str]) -> String {
    let interfaces: Vec<Value> = wans
        .iter()
        .map(|w| {
            if down.contains(&w.name.as_str()) {
                return serde_json::json!({
                    "interface": w.name, "up": false, "pending": false, "available": true,
                    "autostart": true, "dynamic": false, "proto": "static",
                    "device": w.device, "data": {}
                });
            }
            serde_json::json!({
                "interface": w.name, "up": true, "pending": false, "available": true,
                "autostart": true, "dynamic": false, "uptime": 100, "proto": "static",
                "device": w.device, "l3_device": w.device, "metric": w.metric,
                "ipv4-address": [{"address": w.router_v4.to_string(), "mask": w.v4_prefix}],
                "ipv6-address": [{"address": w.router_v6.to_string(), "mask": w.v6_prefix}],
                "route": [
                    {"target": "0.0.0.0", "mask": 0, "nexthop": w.gateway_v4.to_string(), "source": "0.0.0.0/0"},
                    {"target": "::", "mask": 0, "nexthop": w.gateway_v6.to_string(), "source": "::/0"}
                ],
                "data": {}
            })
        })
        .collect();
    serde_json::json!({ "interface": interfaces }).to_string()
}

/// A config as on a router: interfaces named as in /etc/config/network,
/// no `device` (netifd tells it).
pub fn config_without_devices(wans: &[WanInfo]) -> String {
    config(wans, &ours)
        .lines()
        .filter(|l| !l.contains("option device"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// State changes mwand logged (`wan1: unknown -> online`), per WAN.
pub fn transitions(log: &str, wan: &str) -> Vec<String> {
    let prefix = format!("{wan}: ");
    log.lines()
        .filter_map(|l| l.split_once(&prefix).map(|(_, rest)| rest))
        .filter(|rest| {
            let words: Vec<&str> = rest.split_whitespace().collect();
            words.len() == 3 && words[1] == "->"
        })
        .map(str::to_string)
        .collect()
}

/// Everything a restart must leave as it was: rules, every route of every
/// table, the whole nft ruleset. Table `local` is left out: the kernel
/// adds IPv6 link-local entries there whenever the testbed's links finish
/// DAD, and nobody else writes it.
pub fn full_kernel_dump(tb: &Testbed) -> String {
    let mut s = String::new();
    for argv in [
        &["ip", "-4", "rule"][..],
        &["ip", "-6", "rule"],
        &["ip", "-4", "route", "show", "table", "all"],
        &["ip", "-6", "route", "show", "table", "all"],
        &["nft", "list", "ruleset"],
    ] {
        s += &format!("# {}\n", argv.join(" "));
        let out = tb.exec_ok(Role::Router, argv).expect("dump");
        for line in out.lines().filter(|l| !l.contains(" table local ")) {
            s += line;
            s.push('\n');
        }
    }
    s
}

/// Panics, naming the lines that differ, when two kernel dumps differ.
pub fn assert_same_dump(after: &str, before: &str, what: &str, log: &str) {
    if after == before {
        return;
    }
    let gone: Vec<&str> = before
        .lines()
        .filter(|l| !after.lines().any(|a| a == *l))
        .collect();
    let new: Vec<&str> = after
        .lines()
        .filter(|l| !before.lines().any(|b| b == *l))
        .collect();
    panic!("{what}: lines gone {gone:#?}, lines new {new:#?}\nmwand log:\n{log}");
}

/// `ip monitor ARGS...` in the router namespace, from now until `finish`.
pub struct Monitor(Child);

impl Monitor {
    pub fn start(tb: &Testbed, args: &[&str]) -> Monitor {
        let argv: Vec<&str> = ["ip"].iter().chain(args).copied().collect();
        let child = tb
            .command(Role::Router, &argv)
            .expect("monitor")
            .stdout(Stdio::piped())
            .spawn()
            .expect("ip monitor");
        // ip subscribes to its groups after it starts.
        std::thread::sleep(Duration::from_millis(200));
        Monitor(child)
    }

    /// Stops it; what it printed.
    pub fn finish(mut self) -> String {
        use std::io::Read;
        self.0.kill().expect("stop monitor");
        self.0.wait().expect("reap monitor");
        let mut events = String::new();
        self.0
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut events)
            .expect("monitor output");
        events
    }
}

/// A testbed's router under procd semantics with netifd's facts: the ubus
/// double playing procd and netifd (its dump in `netifd`, written with the
/// WANs in `down` down) and mwand on a config without devices.
pub struct WithNetifd {
    pub dir: PathBuf,
    pub netifd: PathBuf,
    pub double: Double,
}

impl WithNetifd {
    pub fn start(tb: &Testbed, down: &[&str]) -> WithNetifd {
        let dir = PathBuf::from(format!(
            "/tmp/mwand-netifd-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let netifd = dir.join("netifd.json");
        std::fs::write(&netifd, netifd_dump(tb.wans(), down)).expect("netifd dump");
        let double = Double::start(tb, Some(&netifd));
        WithNetifd {
            dir,
            netifd,
            double,
        }
    }

    /// mwand with procd running the trackers.
    pub fn mwand(&self, tb: &Testbed) -> Mwand {
        self.mwand_with(tb, "procd")
    }

    /// mwand with `--supervisor SUPERVISOR` (netifd's facts either way).
    pub fn mwand_with(&self, tb: &Testbed, supervisor: &str) -> Mwand {
        Mwand::start_with(
            tb,
            &config_without_devices(tb.wans()),
            &[
                "--supervisor",
                supervisor,
                "--ubus-socket",
                path_str(&self.double.socket),
            ],
        )
    }
}

impl Drop for WithNetifd {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}
