//! `mwanctl check`: every problem and every warning at once, text and JSON.

mod common;
use common::applet;

fn write_config(name: &str, text: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("mwanctl-check-{}-{name}", std::process::id()));
    std::fs::write(&p, text).expect("write config");
    p
}

const WARNING_AND_PROBLEM: &str = "config globals 'globals'\n\toption bogus '1'\n\n\
config interface 'wan'\n\toption enabled '1'\n\tlist track_ip '192.0.2.1'\n\toption interval 'nosuch'\n";

const WARNING_ONLY: &str = "config globals 'globals'\n\toption bogus '1'\n\n\
config interface 'wan'\n\toption enabled '1'\n\tlist track_ip '192.0.2.1'\n";

fn check(path: &std::path::Path, json: bool) -> std::process::Output {
    let mut c = applet("mwanctl");
    if json {
        c.arg("--json");
    }
    c.args(["check", "--config"])
        .arg(path)
        .output()
        .expect("run mwanctl")
}

#[test]
fn a_rejected_config_shows_its_warnings_too() {
    let path = write_config("rejected", WARNING_AND_PROBLEM);
    let out = check(&path, false);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'nosuch'"), "{err}");
    assert!(
        err.contains("warning: ") && err.contains("'bogus'"),
        "{err}"
    );
    assert!(err.contains("1 problem(s), 1 warning(s)"), "{err}");

    let out = check(&path, true);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(1), "{v}");
    assert!(v["warnings"][0].as_str().unwrap().contains("bogus"), "{v}");
    std::fs::remove_file(path).ok();
}

#[test]
fn an_accepted_config_ends_its_summary_with_a_newline() {
    let path = write_config("accepted", WARNING_ONLY);
    let out = check(&path, false);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.ends_with('\n') && text.contains("interface wan"),
        "{text:?}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: "));
    let out = check(&path, true);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["ok"], true);
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(1), "{v}");
    std::fs::remove_file(path).ok();
}
