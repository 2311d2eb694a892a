//! The `mwan3` applet: mwan3's command names for scripts and LuCI pages
//! written for mwan3 (the package PROVIDES mwan3). Maps them to mwanctl and
//! /etc/init.d/mwan, as the shell wrapper it replaces did (docs/openwrt.md,
//! "Coming from mwan3").

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

const SYNTAX: &str = "\
Syntax: mwan3 [command]   (mwan compatibility wrapper; see mwanctl --help)

\tstart | stop | restart   the mwan service (/etc/init.d/mwan)
\tifup <iface>             track and use the interface again (mwanctl resume)
\tifdown <iface>           stop tracking and using it (mwanctl pause)
\tinterfaces | policies | connected | rules | status
\tinternal <ipv4|ipv6>     addresses, routes, rules and mwan's nft table
\tuse <iface> <cmd...>     run cmd with all its traffic through iface
";

const INIT_SCRIPT: &str = "/etc/init.d/mwan";

/// What an mwan3 command line becomes.
#[derive(Debug, PartialEq)]
enum Compat {
    /// `/etc/init.d/mwan ACTION`.
    Init(String),
    /// mwanctl with these arguments.
    Mwanctl(Vec<String>),
    /// `internal`, IPv6 or not.
    Internal(bool),
    Usage,
}

fn translate(args: &[String]) -> Compat {
    let operand = args.get(1).filter(|a| !a.is_empty()).cloned();
    let words = |w: &[&str]| Compat::Mwanctl(w.iter().map(|w| w.to_string()).collect());
    match (args.first().map(String::as_str), operand) {
        (Some(action @ ("start" | "stop" | "restart")), _) => Compat::Init(action.into()),
        (Some("ifup"), Some(iface)) => words(&["resume", &iface]),
        (Some("ifdown"), Some(iface)) => words(&["pause", &iface]),
        (Some(cmd @ ("interfaces" | "policies" | "connected" | "rules" | "status")), _) => {
            words(&[cmd])
        }
        (Some("internal"), family) => Compat::Internal(family.as_deref() == Some("ipv6")),
        (Some("use"), Some(iface)) if args.len() > 2 => {
            let mut v = vec!["use".to_string(), iface, "--".into()];
            v.extend_from_slice(&args[2..]);
            Compat::Mwanctl(v)
        }
        _ => Compat::Usage,
    }
}

/// Runs mwan3 command `args` (the arguments after the program name).
pub fn mwan3_compat(args: impl IntoIterator<Item = String>) -> ExitCode {
    let args: Vec<String> = args.into_iter().collect();
    match translate(&args) {
        Compat::Init(action) => {
            let e = Command::new(INIT_SCRIPT).arg(action).exec();
            eprintln!("mwan3: {INIT_SCRIPT}: {e}");
            ExitCode::from(127)
        }
        Compat::Mwanctl(mwanctl_args) => crate::main(mwanctl_args),
        Compat::Internal(v6) => internal(v6),
        Compat::Usage => {
            print!("{SYNTAX}");
            ExitCode::FAILURE
        }
    }
}

/// `mwan3 internal`: what mwan3 prints for its diagnostics page, with
/// mwan's nft table in place of mwan3's iptables chains.
fn internal(v6: bool) -> ExitCode {
    let family = if v6 { "-6" } else { "-4" };
    let release = std::fs::read_to_string("/etc/openwrt_release").unwrap_or_default();
    let release = release
        .lines()
        .find_map(|l| l.strip_prefix("DISTRIB_RELEASE="))
        .map_or("unknown", |r| r.trim_matches(['\'', '"']));
    let dash = "-------------------------------------------------";
    println!(
        "Software-Version\n{dash}\nOpenWrt - {release}\nmwan {}\n",
        env!("CARGO_PKG_VERSION")
    );
    for argv in [
        &["ip", family, "a", "show"][..],
        &["ip", family, "route", "show"],
        &["ip", family, "rule", "show"],
        &["ip", family, "route", "show", "table", "all"],
        &["nft", "list", "table", "inet", "mwan"],
    ] {
        println!("Output of \"{}\"\n{dash}", argv.join(" "));
        // Straight to our stdout (LuCI reads it whole): nothing to buffer.
        let ran = Command::new(argv[0]).args(&argv[1..]).status();
        if !ran.is_ok_and(|s| s.success()) {
            println!("No data found");
        }
        println!();
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(words: &[&str]) -> Compat {
        translate(&words.iter().map(|w| w.to_string()).collect::<Vec<_>>())
    }

    fn ctl(words: &[&str]) -> Compat {
        Compat::Mwanctl(words.iter().map(|w| w.to_string()).collect())
    }

    #[test]
    fn mwan3_commands_become_mwanctl_and_init_script_calls() {
        assert_eq!(t(&["ifdown", "wan2"]), ctl(&["pause", "wan2"]));
        assert_eq!(t(&["ifup", "wan2"]), ctl(&["resume", "wan2"]));
        assert_eq!(t(&["status"]), ctl(&["status"]));
        assert_eq!(t(&["connected"]), ctl(&["connected"]));
        assert_eq!(t(&["restart"]), Compat::Init("restart".into()));
        assert_eq!(t(&["internal"]), Compat::Internal(false));
        assert_eq!(t(&["internal", "ipv6"]), Compat::Internal(true));
        assert_eq!(
            t(&["use", "wan2", "ping", "-c", "5", "192.0.2.1"]),
            ctl(&["use", "wan2", "--", "ping", "-c", "5", "192.0.2.1"])
        );
        assert_eq!(t(&["use", "wan2"]), Compat::Usage);
        assert_eq!(t(&["ifdown"]), Compat::Usage);
        assert_eq!(t(&["frobnicate"]), Compat::Usage);
    }
}
