//! mwand refuses to start in ways that would leave it running blind.

use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;
use common::applet;

#[test]
fn procd_mode_without_ubus_refuses_to_start() {
    let dir = std::env::temp_dir().join(format!("mwand-startup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("mwan");
    std::fs::write(
        &config,
        "config interface 'wan1'\n\toption enabled '1'\n\toption device 'eth9'\n\tlist track_ip '192.0.2.1'\n",
    )
    .expect("write config");
    let mut child = applet("mwand")
        .arg("--config")
        .arg(&config)
        .arg("--run-dir")
        .arg(dir.join("run"))
        .args([
            "--supervisor",
            "procd",
            "--ubus-socket",
            "/nonexistent/ubus.sock",
            "--no-dataplane",
            "--hook",
            "/nonexistent/hook",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mwand");
    // A regression would leave mwand running: stop it rather than hang.
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if child.try_wait().expect("wait").is_none() {
        child.kill().expect("kill mwand");
    }
    let out = child.wait_with_output().expect("mwand output");
    let err = String::from_utf8_lossy(&out.stderr);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--supervisor procd needs ubus at /nonexistent/ubus.sock")
            && err.contains("use --supervisor embedded or auto"),
        "{err}"
    );
}
