//! Attacks on mwand's sockets, config and run dir that once froze or
//! misled it (issue 13): each test replays one and checks that mwand keeps
//! deciding, answers, and harms nobody.
//!
//! Needs root and `cargo build --workspace --bins` first.

mod mwand_harness;

use mwan_proto::frame;
use mwan_proto::track::TrackerMessage;
use mwan_testbed::{find_binary, Role};
use mwand_harness::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Lines of mwand's log that contain `needle`.
fn log_lines(m: &Mwand, needle: &str) -> usize {
    m.log_text().lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn a_client_streaming_requests_without_reading_stalls_neither_failover_nor_status() {
    let Some((tb, m, _)) = two_wans_online() else {
        return;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let sock = m.run_dir.join("control.sock");
    let flooder = {
        let stop = stop.clone();
        std::thread::spawn(move || flood(&sock, &stop))
    };
    // Let the flood build up before the cut.
    std::thread::sleep(Duration::from_secs(3));
    tb.cut("wan1").expect("cut");
    let s = m.wait(30, "wan1 offline during the flood", |s| {
        state(s, "wan1") == "offline"
    });
    assert_eq!(active(&s, "failover"), ["wan2"], "no failover: {s:#}");
    stop.store(true, Ordering::Relaxed);
    let sent = flooder.join().expect("flood thread");
    assert!(sent > 1000, "the flood sent only {sent} requests");
    // Nothing is said per request of a client that does not listen.
    assert!(
        log_lines(&m, "control reply") < 10 && log_lines(&m, "WARN") < 200,
        "log grew per request: {} lines",
        m.log_text().lines().count()
    );
}

/// Sends one tracker message on a new connection to mwand's tracker socket
/// and returns whether mwand closed that connection within 10 s.
fn tracker_hello_is_refused(m: &Mwand, interface: &str, pid: u32) -> bool {
    let mut c = UnixStream::connect(m.run_dir.join("track.sock")).expect("connect");
    let hello = TrackerMessage::Hello {
        interface: interface.to_string(),
        pid,
        started_at_us: mwan_testbed::monotonic_us(),
        dropped_samples: 0,
    };
    c.write_all(&frame::encode(&hello).expect("encode"))
        .expect("write");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut sink = Vec::new();
    c.read_to_end(&mut sink).is_ok()
}

#[test]
fn a_tracker_hello_names_no_process_for_mwand_to_signal() {
    let Some((_tb, m, s)) = two_wans_online() else {
        return;
    };
    let mut bystander = Command::new("sleep")
        .arg("600")
        .spawn()
        .expect("spawn sleep");
    let real = tracker_pid(&s, "wan1").expect("wan1 tracker") as u32;
    for (interface, pid) in [
        ("nosuchwan", bystander.id()),
        ("wan1", bystander.id()),
        // The real tracker's pid, claimed by another process.
        ("wan1", real),
    ] {
        assert!(
            tracker_hello_is_refused(&m, interface, pid),
            "a Hello for {interface} naming pid {pid} from another process was taken:\n{}",
            m.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            matches!(bystander.try_wait(), Ok(None)),
            "mwand signalled pid {pid} named in a Hello for {interface}:\n{}",
            m.log_text()
        );
    }
    // pid 0 would be mwand's own process group, 2^32-1 kill(-1).
    for pid in [0, 1, u32::MAX, 1 << 31] {
        assert!(tracker_hello_is_refused(&m, "nosuchwan", pid));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(matches!(bystander.try_wait(), Ok(None)));
    bystander.kill().ok();
    bystander.wait().ok();
    let s = m.status();
    assert!(all_online(&s), "{s:#}");
    assert_eq!(
        tracker_pid(&s, "wan1"),
        Some(real as u64),
        "the real tracker was replaced: {s:#}"
    );
}

/// mwand on `config` and `run_dir` in the router namespace, without a
/// data plane, its output piped.
fn spawn_mwand(tb: &mwan_testbed::Testbed, config: &Path, run_dir: &Path) -> std::process::Child {
    let mwand = find_binary("mwand").expect("mwand built");
    tb.command(
        Role::Router,
        &[
            path_str(&mwand),
            "--config",
            path_str(config),
            "--run-dir",
            path_str(run_dir),
            "--supervisor",
            "embedded",
            "--no-dataplane",
        ],
    )
    .expect("command")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn mwand")
}

/// Runs mwand (see [`spawn_mwand`]); returns its exit code and output if
/// it exits within 20 s, None (after killing it) if it did not.
fn mwand_exit(tb: &mwan_testbed::Testbed, config: &Path, run_dir: &Path) -> Option<(i32, String)> {
    let mut child = spawn_mwand(tb, config, run_dir);
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if let Ok(Some(st)) = child.try_wait() {
            let out = child.wait_with_output().expect("output");
            let text = String::from_utf8_lossy(&out.stderr).into_owned()
                + &String::from_utf8_lossy(&out.stdout);
            return Some((st.code().unwrap_or(-1), text));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().ok();
    child.wait().ok();
    None
}

/// Runs mwand (see [`spawn_mwand`]) until both its sockets exist (at most
/// 20 s), then kills it; returns whether they did with mwand still running.
fn starts_and_listens(tb: &mwan_testbed::Testbed, config: &Path, run_dir: &Path) -> bool {
    let mut child = spawn_mwand(tb, config, run_dir);
    let listening = || {
        ["control.sock", "track.sock"]
            .iter()
            .all(|s| run_dir.join(s).exists())
    };
    let end = Instant::now() + Duration::from_secs(20);
    while !listening() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = child.try_wait().expect("try_wait").is_none() && listening();
    child.kill().ok();
    child.wait().ok();
    started
}

fn scratch_dir(what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mwand-attack-{what}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

#[test]
fn a_fifo_as_the_config_is_refused_at_start_and_on_reload() {
    if !mwan_testbed::require_netns() {
        return;
    }
    let tb = testbed(1, 31);
    let dir = scratch_dir("fifo");
    let fifo = dir.join("mwan");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let exit = mwand_exit(&tb, &fifo, &dir.join("run"));
    let (code, text) = exit.expect("mwand blocked reading a FIFO as its config");
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("not a regular file"), "{text}");

    let m = Mwand::start(&tb, "config globals 'globals'\n");
    std::fs::remove_file(&m.config).expect("rm config");
    let made = Command::new("mkfifo")
        .arg(&m.config)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let out = m.ctl(&["reload"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not a regular file"), "{stderr}");
    assert!(m.ctl(&["status"]).status.success());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_run_dir_others_can_write_is_refused() {
    if !mwan_testbed::require_netns() {
        return;
    }
    let tb = testbed(1, 32);
    let dir = scratch_dir("rundir");
    let config = dir.join("mwan");
    std::fs::write(&config, "config globals 'globals'\n").expect("config");
    let run = dir.join("run");
    std::fs::create_dir_all(&run).expect("run dir");
    // An ordinary user's directory, writable by all.
    std::os::unix::fs::chown(&run, Some(65534), Some(65534)).expect("chown");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let (code, text) = mwand_exit(&tb, &config, &run).expect("mwand ran on a run dir others own");
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains(path_str(&run)) && text.contains("uid 65534"),
        "{text}"
    );

    // One it creates itself is root's and closed to others (its group is
    // the unprivileged trackers', which may pass: 0710).
    let fresh = dir.join("fresh");
    assert!(
        starts_and_listens(&tb, &config, &fresh),
        "mwand did not start"
    );
    let meta = std::fs::metadata(&fresh).expect("mwand made its run dir");
    assert_eq!(meta.permissions().mode() & 0o707, 0o700);
    std::fs::remove_dir_all(&dir).ok();
}

/// A run dir below a directory the unprivileged trackers cannot pass
/// (mktemp -d makes 0700) once started fine, and every WAN went offline at
/// its silence limit with its tracker never connecting. mwand now refuses
/// to start and names the directory.
#[test]
fn a_run_dir_the_tracker_user_cannot_reach_is_refused_naming_the_directory() {
    if !mwan_testbed::require_netns() {
        return;
    }
    let tb = testbed(1, 33);
    let dir = scratch_dir("unreachable");
    let config = dir.join("mwan");
    std::fs::write(&config, "config globals 'globals'\n").expect("config");
    let closed = dir.join("closed");
    std::fs::create_dir_all(&closed).expect("dir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let run = closed.join("run");
    let (code, text) = mwand_exit(&tb, &config, &run).expect("mwand ran with unreachable trackers");
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!("{} (mode 700", closed.display()))
            && text.contains("does not let the tracker user"),
        "{text}"
    );
    // Opened to others, the same path starts.
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o711)).expect("chmod");
    assert!(
        starts_and_listens(&tb, &config, &run),
        "mwand did not start under a 0711 parent"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_removed_run_dir_is_made_again_and_trackers_reconnect() {
    let Some((_tb, m, s)) = two_wans_online() else {
        return;
    };
    std::fs::remove_dir_all(&m.run_dir).expect("rm run dir");
    let end = Instant::now() + Duration::from_secs(20);
    while !m.run_dir.join("control.sock").exists() {
        assert!(
            Instant::now() < end,
            "run dir not made again within 20 s:\n{}",
            m.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let old = tracker_pid(&s, "wan1").expect("pid");
    // A tracker started now must find the new socket.
    assert!(m.ctl(&["restart", "wan1"]).status.success());
    let s = m.wait(20, "a new wan1 tracker connected", |s| {
        tracker_pid(s, "wan1").is_some_and(|p| p != old) && tracker_connected(s, "wan1")
    });
    assert_eq!(state(&s, "wan1"), "online", "{s:#}");
}

#[test]
fn idle_clients_past_the_fd_limit_do_not_stop_status() {
    let Some((_tb, m, _)) = two_wans_online() else {
        return;
    };
    let limited = Command::new("prlimit")
        .arg(format!("--pid={}", m.pid()))
        .arg("--nofile=1024:1024")
        .status()
        .expect("prlimit (util-linux)");
    assert!(limited.success());
    let sock = m.run_dir.join("control.sock");
    let mut idle = Vec::new();
    for _ in 0..1100 {
        match UnixStream::connect(&sock) {
            Ok(c) => idle.push(c),
            Err(e) => panic!("connect {} failed: {e}", idle.len()),
        }
    }
    let out = m.ctl(&["status"]);
    assert!(
        out.status.success(),
        "status with {} idle clients: {}\n{}",
        idle.len(),
        String::from_utf8_lossy(&out.stderr),
        m.log_text()
    );
}

#[test]
fn a_refused_uid_connecting_in_a_loop_logs_a_few_lines_and_a_count() {
    if !mwan_testbed::require_netns() {
        return;
    }
    let tb = testbed(1, 33);
    let m = Mwand::start_with(
        &tb,
        "config globals 'globals'\n",
        &["--supervisor", "embedded", "--allow-uid", "65533"],
    );
    let mwanctl = find_binary("mwanctl").expect("mwanctl built");
    let attempts = 300;
    let script = format!(
        "for i in $(seq {attempts}); do {} --run-dir {} status 2>/dev/null; done; true",
        path_str(&mwanctl),
        path_str(&m.run_dir)
    );
    let refuse_loop = || {
        Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .args(["bash", "-c", &script])
            .status()
            .expect("setpriv (util-linux)")
    };
    assert!(refuse_loop().success());
    let logged = log_lines(&m, "uid 65534 is not allowed");
    assert!(
        (1..50).contains(&logged),
        "{attempts} refusals logged {logged} lines"
    );
    // Past the 10 s window the next refusal says how many were held back.
    std::thread::sleep(Duration::from_secs(11));
    let out = m.ctl(&["status"]);
    assert!(out.status.success());
    assert!(refuse_loop().success());
    assert!(
        m.log_text().contains("more suppressed)"),
        "{}",
        m.log_text()
    );
}

#[test]
fn a_client_that_says_nothing_is_closed_after_the_idle_timeout() {
    let Some((_tb, m, _)) = two_wans_online() else {
        return;
    };
    let sock = m.run_dir.join("control.sock");
    let mut silent = UnixStream::connect(&sock).expect("connect");
    // Half a request: the length of a frame that never comes.
    let mut partial = UnixStream::connect(&sock).expect("connect");
    partial.write_all(&64u32.to_le_bytes()).expect("write");
    for c in [&mut silent, &mut partial] {
        // The idle timeout is 30 s; mwand checks it every second.
        c.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let mut got = Vec::new();
        assert!(
            c.read_to_end(&mut got).is_ok(),
            "an idle client was kept past 60 s:\n{}",
            m.log_text()
        );
    }
    assert!(m.ctl(&["status"]).status.success());
}
