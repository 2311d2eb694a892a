//! The `mwan3` applet: mwan3's command names for scripts and LuCI pages
//! written for mwan3 (the package PROVIDES mwan3). Maps them to mwanctl and
//! /etc/init.d/mwan, as the shell wrapper it replaces did.

use std::process::ExitCode;

const SYNTAX: &str = "\
Syntax: mwan3 [command]   (mwan compatibility wrapper; see mwanctl --help)

\tstart | stop | restart   the mwan service (/etc/init.d/mwan)
\tifup <iface>             restart the interface's tracker (mwanctl restart)
\tinterfaces | policies | connected | rules | status
\tuse <iface> <cmd...>     not supported by mwan (use mwanctl override)
";

const INIT_SCRIPT: &str = "/etc/init.d/mwan";

/// Runs mwan3 command `args` (the arguments after the program name).
pub fn mwan3_compat(args: impl IntoIterator<Item = String>) -> ExitCode {
    let args: Vec<String> = args.into_iter().collect();
    // One call of mwanctl's main below: each call site would inline a copy.
    let mwanctl_args: Vec<String> = match args.first().map(String::as_str) {
        Some(action @ ("start" | "stop" | "restart")) => {
            use std::os::unix::process::CommandExt;
            let e = std::process::Command::new(INIT_SCRIPT).arg(action).exec();
            eprintln!("mwan3: {INIT_SCRIPT}: {e}");
            return ExitCode::from(127);
        }
        Some("ifup") => match args.get(1) {
            Some(iface) if !iface.is_empty() => vec!["restart".to_string(), iface.clone()],
            _ => return usage(),
        },
        Some("ifdown") => {
            let iface = args.get(1).map_or("", String::as_str);
            eprintln!("mwan follows netifd: use 'ifdown {iface}' for the interface itself");
            return ExitCode::FAILURE;
        }
        Some(cmd @ ("interfaces" | "policies" | "connected" | "rules" | "status")) => {
            vec![cmd.to_string()]
        }
        Some("use") => {
            eprintln!("mwan3 use is not supported: see 'mwanctl override --help'");
            return ExitCode::FAILURE;
        }
        _ => return usage(),
    };
    crate::main(mwanctl_args)
}

fn usage() -> ExitCode {
    print!("{SYNTAX}");
    ExitCode::FAILURE
}
