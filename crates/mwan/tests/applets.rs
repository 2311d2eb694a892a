//! One executable, chosen by argv[0] or by `mwan APPLET`.

mod common;
use common::applet;

fn run(c: &mut std::process::Command) -> (Option<i32>, String, String) {
    let out = c.output().expect("run mwan");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn each_link_name_runs_its_applet() {
    for (name, says) in [
        ("mwand", "mwand 0."),
        ("mwanctl", "mwanctl 0."),
        ("/usr/sbin/mwan-track", "mwan-track 0."),
    ] {
        let (code, out, err) = run(applet(name).arg("--version"));
        assert_eq!(code, Some(0), "{name}: {err}");
        assert!(out.starts_with(says), "{name}: {out}");
    }
}

#[test]
fn mwan_applet_args_runs_the_named_applet() {
    let (code, out, _) = run(applet("mwan").args(["mwanctl", "--help"]));
    assert_eq!(code, Some(0));
    assert!(out.contains("Usage: mwanctl"), "{out}");
    let (code, out, _) = run(applet("mwan").arg("--help"));
    assert_eq!(code, Some(0));
    for name in ["mwand", "mwan-track", "mwanctl", "mwan3"] {
        assert!(out.contains(name), "help lists {name}: {out}");
    }
}

#[test]
fn an_unknown_applet_or_flag_is_a_usage_error() {
    let (code, _, err) = run(applet("mwan").arg("nosuch"));
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown applet 'nosuch'"), "{err}");
    let (code, _, err) = run(&mut applet("mwan-other"));
    assert_eq!(code, Some(2));
    assert!(err.contains("'mwan-other'"), "{err}");
    for name in ["mwand", "mwanctl"] {
        let (code, _, err) = run(applet(name).arg("--bogus"));
        assert_eq!(code, Some(2), "{name}");
        assert!(err.contains("unknown option --bogus"), "{name}: {err}");
    }
}

/// The router build (default features) has no HTTP listener: `--http`
/// (which the init script passes when globals set `http`) is taken with a
/// warning that says where the dashboard is instead, and mwand runs on:
/// here it gets past its options and stops at the config it cannot read.
#[cfg(not(feature = "http"))]
#[test]
fn the_router_build_warns_about_http_and_runs_on() {
    let (_, _, err) = run(applet("mwand").args([
        "--http",
        "127.0.0.1:0",
        "--config",
        "/dev/null/mwan",
        "--run-dir",
        "/dev/null/run",
    ]));
    assert!(err.contains("built without its HTTP listener"), "{err}");
    assert!(err.contains("luci-app-mwan"), "{err}");
    assert!(
        err.contains("/dev/null/mwan") && err.contains("cannot read"),
        "it ran on to the config: {err}"
    );
    let (_, out, _) = run(applet("mwand").arg("--help"));
    assert!(
        out.contains("not in this build (cargo feature http)"),
        "{out}"
    );
}

/// With `--features http`, --help offers the listener.
#[cfg(feature = "http")]
#[test]
fn the_full_build_offers_http() {
    let (code, out, _) = run(applet("mwand").arg("--help"));
    assert_eq!(code, Some(0));
    assert!(out.contains("serve the dashboard"), "{out}");
}

#[test]
fn mwan3_maps_mwan3_commands_and_refuses_the_rest() {
    let (code, out, _) = run(&mut applet("mwan3"));
    assert_eq!(code, Some(1));
    assert!(out.contains("Syntax: mwan3"), "{out}");
    // use and ifdown are mwanctl's use and pause: mwand must answer (the
    // run dir here has none: exit 3), or it names what it refused (1).
    for args in [&["use", "wan", "ping"][..], &["ifdown", "wan"]] {
        let (code, _, err) = run(applet("mwan3").args(args));
        assert!(
            matches!(code, Some(1 | 3)) && err.starts_with("mwanctl: "),
            "{args:?}: {code:?} {err}"
        );
    }
    let (code, out, _) = run(applet("mwan3").arg("ifup"));
    assert_eq!(code, Some(1));
    assert!(out.contains("Syntax: mwan3"), "{out}");
    // Status is mwanctl's: its reply, or its own error when no mwand runs.
    let (code, out, err) = run(applet("mwan3").arg("status"));
    match code {
        Some(0) => assert!(out.contains("INTERFACE"), "{out}"),
        _ => assert!(
            code == Some(3) && err.starts_with("mwanctl: "),
            "{code:?} {err}"
        ),
    }
}
