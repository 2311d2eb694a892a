//! The dashboard against the real mwand on the testbed (docs/dashboard.md):
//! headless Chromium (Debian's chromium, driven by playwright-core through
//! integration/web/live.mjs) inside the router namespace, where mwand
//! listens with `--http`; and each HTTP refusal against the real listener
//! while `mwanctl status` keeps answering.
//!
//! Needs root, `make build` (mwand with cargo feature http: `cargo build
//! --workspace --bins --features mwan/http`), chromium and
//! `integration/web/node_modules` (`make deps` installs both).
//! Screenshots: target/screenshots/live-*.png.

mod mwand_harness;

use mwan_testbed::{Role, Testbed};
use mwand_harness::*;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::time::{Duration, Instant};

const PORT: u16 = 8080;

fn integration_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Chromium and playwright-core are there; otherwise skipped with a
/// reason, or a failure under CI=true.
fn browser_available() -> bool {
    let node_modules = integration_dir().join("web/node_modules/playwright-core");
    let missing = [
        (!Path::new("/usr/bin/chromium").exists()).then_some("/usr/bin/chromium"),
        (!node_modules.exists()).then_some("integration/web/node_modules (make deps)"),
    ];
    let missing: Vec<&str> = missing.into_iter().flatten().collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but the browser test cannot run: missing {missing:?}");
    }
    eprintln!("SKIPPED (not CI): browser test: missing {missing:?}");
    false
}

/// live.mjs running in the router namespace: one command, one answer.
struct Browser {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Browser {
    fn start(tb: &Testbed, url: &str) -> Browser {
        let shots = integration_dir().join("../target/screenshots");
        let script = integration_dir().join("web/live.mjs");
        let mut child = tb
            .command(
                Role::Router,
                &["node", path_str(&script), url, path_str(&shots)],
            )
            .expect("command")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start node live.mjs");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Browser {
            child,
            stdin,
            stdout,
        }
    }

    /// Runs one command; panics with mwand's log when it fails.
    fn step(&mut self, m: &Mwand, command: &str) {
        writeln!(self.stdin, "{command}").expect("write to live.mjs");
        let mut answer = String::new();
        self.stdout.read_line(&mut answer).expect("read live.mjs");
        assert_eq!(
            answer.trim(),
            "ok",
            "browser step '{command}'\nmwand log:\n{}",
            m.log_text()
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        writeln!(self.stdin, "quit").ok();
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn failover_leaves_by(tb: &Testbed, wan: &str) {
    let answer = lan_http(tb, 5).unwrap_or_else(|| panic!("LAN fetch (expecting {wan})"));
    assert_eq!(wan_of_answer(tb, &answer), Some(wan), "{answer}");
}

#[test]
fn the_page_follows_a_cut_and_its_override_moves_lan_traffic() {
    if !mwan_testbed::require_netns() || !browser_available() {
        return;
    }
    let tb = testbed(2, 1);
    let listen = format!("127.0.0.1:{PORT}");
    let m = Mwand::start_with(
        &tb,
        &config(tb.wans(), &ours),
        &["--supervisor", "embedded", "--http", &listen],
    );
    m.wait(20, "both WANs online", all_online);
    let mut b = Browser::start(&tb, &format!("http://{listen}"));

    b.step(&m, "open");
    b.step(&m, "state wan1 online");
    b.step(&m, "state wan2 online");
    b.step(&m, "carries failover wan1");
    b.step(&m, "shot live-1-online");
    failover_leaves_by(&tb, "wan1");

    // A silent cut: the page follows within 3 s, without a reload.
    tb.cut("wan1").expect("cut");
    b.step(&m, "state wan1 offline");
    b.step(&m, "carries failover wan2");
    b.step(&m, "shot live-2-wan1-cut");
    failover_leaves_by(&tb, "wan2");

    tb.restore("wan1").expect("restore");
    m.wait(30, "fail-back to wan1", |s| {
        active(s, "failover") == ["wan1"]
    });
    b.step(&m, "state wan1 online");
    b.step(&m, "carries failover wan1");
    failover_leaves_by(&tb, "wan1");

    // The override button moves the LAN's traffic; clearing moves it back.
    b.step(&m, "force wan2");
    b.step(&m, "carries failover wan2");
    b.step(&m, "shot live-3-override-wan2");
    failover_leaves_by(&tb, "wan2");
    b.step(&m, "clear");
    b.step(&m, "carries failover wan1");
    b.step(&m, "shot live-4-override-cleared");
    failover_leaves_by(&tb, "wan1");

    b.step(&m, "console");
}

/// One HTTP exchange from `role` with bash's /dev/tcp: the raw request
/// out, whatever comes back until mwand closes (or 10 s).
fn exchange(tb: &Testbed, role: Role, host: &str, request: &str) -> String {
    let script =
        format!("exec 3<>/dev/tcp/{host}/{PORT} && printf '%s' \"$REQ\" >&3 && timeout 10 cat <&3");
    let out = tb
        .command(role, &["bash", "-c", &script])
        .expect("command")
        .env("REQ", request)
        .output()
        .expect("bash /dev/tcp");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A client that sends half a head and then nothing: returns it running.
fn slowloris(tb: &Testbed, host: &str) -> Child {
    let script = format!(
        "exec 3<>/dev/tcp/{host}/{PORT} && printf 'GET /api/status HTTP/1.1\\r\\nHost: x\\r\\n' >&3 && timeout 20 cat <&3"
    );
    tb.command(Role::Lan, &["bash", "-c", &script])
        .expect("command")
        .stdout(Stdio::piped())
        .spawn()
        .expect("slowloris")
}

fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or("")
}

#[test]
fn each_refusal_comes_from_the_real_listener_and_the_loop_keeps_serving() {
    if !mwan_testbed::require_netns() {
        return;
    }
    let tb = testbed(2, 1);
    let lan_addr = tb.lan().router_v4.to_string();
    let dir = PathBuf::from(format!("/tmp/mwand-http-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let token_file = dir.join("token");
    std::fs::write(&token_file, "s3cret\n").expect("token");
    let listen = format!("0.0.0.0:{PORT}");
    let m = Mwand::start_with(
        &tb,
        &config(tb.wans(), &ours),
        &[
            "--supervisor",
            "embedded",
            "--http",
            &listen,
            "--http-token-file",
            path_str(&token_file),
        ],
    );
    m.wait(20, "both WANs online", all_online);
    let host = format!("Host: {lan_addr}:{PORT}\r\n");
    let from_lan = |request: &str| exchange(&tb, Role::Lan, &lan_addr, request);
    let get_status = format!("GET /api/status HTTP/1.1\r\n{host}\r\n");
    let post = |path: &str, extra: &str, body: &str| {
        format!(
            "POST {path} HTTP/1.1\r\n{host}Content-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };

    // Reads are open; the page and its JSON come from mwand's state.
    let r = from_lan(&get_status);
    assert!(status_line(&r).contains(" 200 "), "{r}");
    assert!(r.contains("\"wan1\"") && r.contains("no-store"), "{r}");

    // /metrics counts the probes mwand got from each tracker.
    let r = exchange(
        &tb,
        Role::Lan,
        &lan_addr,
        &format!("GET /metrics HTTP/1.1\r\n{host}\r\n"),
    );
    let counter = |name: &str| -> u64 {
        let prefix = format!("{name}{{interface=\"wan1\"}} ");
        r.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in {r}"))
    };
    let (sent, lost) = (
        counter("mwan_interface_probes_sent_total"),
        counter("mwan_interface_probes_lost_total"),
    );
    assert!(sent > 0 && lost <= sent, "sent {sent}, lost {lost}: {r}");

    // No token from the LAN: 401; a wrong one: 403; the right one: 200.
    let r = from_lan(&post("/api/reload", "", "{}"));
    assert!(status_line(&r).contains(" 401 "), "{r}");
    let r = from_lan(&post("/api/reload", "X-Mwan-Token: guess\r\n", "{}"));
    assert!(status_line(&r).contains(" 403 "), "{r}");
    let r = from_lan(&post("/api/reload", "X-Mwan-Token: s3cret\r\n", "{}"));
    assert!(
        status_line(&r).contains(" 200 ") && r.contains("\"ok\":true"),
        "{r}"
    );

    // A GET never writes.
    let r = from_lan(&format!(
        "GET /api/override/clear HTTP/1.1\r\n{host}X-Mwan-Token: s3cret\r\n\r\n"
    ));
    assert!(status_line(&r).contains(" 405 "), "{r}");

    // An oversized body is refused from its header.
    let big = format!(
        "POST /api/override HTTP/1.1\r\n{host}Content-Type: application/json\r\nX-Mwan-Token: s3cret\r\nContent-Length: 100000\r\n\r\n"
    );
    let r = from_lan(&big);
    assert!(status_line(&r).contains(" 413 "), "{r}");

    // Slow clients take every slot: the ninth is closed at once, mwanctl
    // keeps answering, and each slow one is cut off with 408.
    let slow: Vec<Child> = (0..8).map(|_| slowloris(&tb, &lan_addr)).collect();
    std::thread::sleep(Duration::from_millis(500));
    let r = from_lan(&get_status);
    assert_eq!(r, "", "a ninth connection was served while 8 were held");
    for _ in 0..5 {
        let out = m.ctl(&["status"]);
        assert!(
            out.status.success(),
            "mwanctl status while slow clients hold the listener: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    for c in slow {
        let out = c.wait_with_output().expect("slowloris output");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            status_line(&text).contains(" 408 "),
            "slow client got: {text:?}"
        );
    }
    // The slots are free again.
    let r = from_lan(&get_status);
    assert!(status_line(&r).contains(" 200 "), "{r}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_listener_beyond_loopback_without_a_token_is_refused_at_start() {
    if !mwan_testbed::require_netns() {
        return;
    }
    let tb = testbed(1, 1);
    let mwand = mwan_testbed::find_binary("mwand").expect("mwand built");
    let dir = PathBuf::from(format!("/tmp/mwand-http-refused-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let cfg = dir.join("mwan");
    std::fs::write(&cfg, config(tb.wans(), &ours)).expect("config");
    let run = dir.join("run");
    let out = tb
        .exec(
            Role::Router,
            &[
                path_str(&mwand),
                "--config",
                path_str(&cfg),
                "--run-dir",
                path_str(&run),
                "--supervisor",
                "embedded",
                "--http",
                "0.0.0.0:8080",
            ],
        )
        .expect("run mwand");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("it needs --http-token-file"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
