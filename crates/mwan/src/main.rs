//! mwan: one executable for every program of mwan-rs, busybox style.
//!
//! The program is chosen by the basename of argv[0]: `mwand`, `mwan-track`,
//! `mwanctl` and `mwan3` are links to this file. `mwan APPLET ARGS...` runs
//! an applet by name. One executable instead of three saves a copy of std,
//! of the protocol and of the ubus code on the router's flash, and the
//! trackers share its pages (figures in docs/footprint.md).

use std::process::ExitCode;

/// Every applet, with what `mwan --help` says of it.
const APPLETS: [(&str, &str); 4] = [
    ("mwand", "the controller (docs/mwand.md)"),
    (
        "mwan-track",
        "one WAN's prober, started by mwand or procd (docs/tracker.md)",
    ),
    ("mwanctl", "the command line (docs/mwanctl.md)"),
    (
        "mwan3",
        "mwan3's command names, for scripts written for mwan3",
    ),
];

fn main() -> ExitCode {
    let mut args = std::env::args();
    let argv0 = args.next().unwrap_or_default();
    let name = argv0.rsplit('/').next().unwrap_or_default().to_string();
    run(&name, args)
}

fn run(applet: &str, mut args: impl Iterator<Item = String>) -> ExitCode {
    match applet {
        "mwand" => mwand::main(args),
        "mwan-track" => mwan_track::main(args),
        "mwanctl" => mwanctl::main(args),
        "mwan3" => mwanctl::mwan3_compat(args),
        "mwan" => match args.next() {
            Some(name) if APPLETS.iter().any(|(a, _)| *a == name) => run(&name, args),
            Some(flag) if flag == "-h" || flag == "--help" => {
                print!("{}", help());
                ExitCode::SUCCESS
            }
            Some(flag) if flag == "-V" || flag == "--version" => {
                println!("mwan {}", env!("CARGO_PKG_VERSION"));
                ExitCode::SUCCESS
            }
            other => {
                let what = other.map_or("no applet given".to_string(), |o| {
                    format!("unknown applet '{o}'")
                });
                eprint!("mwan: error: {what}\n\n{}", help());
                ExitCode::from(2)
            }
        },
        other => {
            eprint!(
                "mwan: error: called as '{other}', which is no applet\n\n{}",
                help()
            );
            ExitCode::from(2)
        }
    }
}

fn help() -> String {
    let mut text = String::from(
        "Usage: mwan APPLET [ARGS]...   or through a link named after the applet\n\nApplets:\n",
    );
    for (name, what) in APPLETS {
        text.push_str(&format!("  {name:<11} {what}\n"));
    }
    text
}
