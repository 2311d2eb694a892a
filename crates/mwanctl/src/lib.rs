//! mwanctl: the command line for mwand.
//!
//! `check` validates a config without a daemon; every other command talks to
//! a running mwand over its control socket (`<run-dir>/control.sock`).
//! Exit codes (docs/mwanctl.md): 0 success, 1 the request failed or the
//! config has problems, 2 usage error, 3 mwand cannot be reached.

mod check;
mod client;
mod compat;
mod render;

pub use compat::mwan3_compat;

use mwan_proto::cli::{self, Arg, Lexer, Usage};
use mwan_proto::control::{Request, Response};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code when the command ran and the answer is "no" (config problems,
/// daemon refused the request).
const EXIT_FAILED: u8 = 1;
/// Exit code when mwand cannot be reached or answers garbage.
const EXIT_UNREACHABLE: u8 = 3;

const HELP: &str = "\
mwanctl: show and steer mwand, the multi-WAN manager (docs/mwanctl.md)

Usage: mwanctl [OPTIONS] <COMMAND>

Commands:
  check [--config PATH]   validate a config file and print its resolved summary
                          (no daemon needed; default /etc/config/mwan, else
                          /etc/config/mwan3)
  status                  interfaces, policies and override at a glance
  interfaces              per-interface health and tracker
  policies                per-policy active members and shares
  rules                   rules in match order with their policy
  connected               networks treated as connected (never sent to a WAN)
  restart WAN             restart one interface's tracker; others keep running
  pause WAN               stop tracking and using WAN (netifd keeps it up)
  resume WAN              track and use WAN again
  reload                  reload the config: validated first, then only what
                          changed is applied
  override WAN [--policy P | --persistent]
                          force traffic onto WAN (all policies, or P); kept
                          across mwand restarts, and with --persistent across
                          reboots (globals option 'override' in the config)
  override --clear [--policy P]
                          remove the override (of P, or all)
  explain [POLICY]        why each policy uses what it uses, in words
  use WAN -- CMD [ARG...] run CMD with all its traffic through WAN (its
                          own and its children's sockets; root only)
  config --write          print the config mwand runs as UCI (automatic mode)
  history [--since N]     the last hour per WAN and the event timeline (from
                          second N of mwand's clock; --json: all figures)

Options (anywhere on the line):
      --run-dir DIR       directory holding mwand's sockets [default: /var/run/mwan]
      --ubus-socket PATH  ubus socket, used when the control socket does not
                          answer (OpenWrt) [default: /var/run/ubus/ubus.sock]
      --json              print the reply as JSON (docs/status-json.md)
  -h, --help              print this help
  -V, --version           print the version

Exit status: 0 done, 1 refused or failed, 2 usage error, 3 mwand unreachable.
";

/// A parsed command line.
#[derive(Debug, PartialEq)]
struct Cli {
    run_dir: PathBuf,
    ubus_socket: PathBuf,
    json: bool,
    command: Command,
}

#[derive(Debug, PartialEq)]
enum Command {
    /// Validate a config file (no daemon needed).
    Check { config: Option<PathBuf> },
    /// Run a command through one WAN (the command follows `--`).
    Use { wan: String },
    /// Everything else is one request to mwand.
    Daemon(Request),
}

impl Cli {
    /// Parses the arguments after the program name. Options may come
    /// before or after the command, as with the clap parser this replaced.
    fn parse(args: impl IntoIterator<Item = String>) -> Result<Cli, Usage> {
        let mut run_dir = PathBuf::from("/var/run/mwan");
        let mut ubus_socket = PathBuf::from("/var/run/ubus/ubus.sock");
        let mut json = false;
        let (mut config, mut policy, mut clear, mut persistent) = (None, None, false, false);
        let mut since = None;
        let mut write = false;
        let mut words: Vec<String> = Vec::new();
        let mut lexer = Lexer::new(args);
        while let Some(arg) = lexer.next() {
            match &arg {
                Arg::Operand(w) => words.push(w.clone()),
                Arg::Long(name, inline) => {
                    let inline = inline.clone();
                    match name.as_str() {
                        "run-dir" => run_dir = lexer.value(name, inline)?.into(),
                        "ubus-socket" => ubus_socket = lexer.value(name, inline)?.into(),
                        "json" => json = true,
                        "config" => config = Some(PathBuf::from(lexer.value(name, inline)?)),
                        "policy" => policy = Some(lexer.value(name, inline)?),
                        "clear" => clear = true,
                        "persistent" => persistent = true,
                        "write" => write = true,
                        "since" => since = Some(lexer.parsed(name, inline, "a second")?),
                        "help" => return Err(Usage::Help),
                        "version" => return Err(Usage::Version),
                        _ => return Err(cli::unknown(&arg)),
                    }
                }
                Arg::Short('h') => return Err(Usage::Help),
                Arg::Short('V') => return Err(Usage::Version),
                Arg::Short(_) => return Err(cli::unknown(&arg)),
            }
        }
        let mut words = words.into_iter();
        let Some(name) = words.next() else {
            return Err(Usage::Error("a command is required (see --help)".into()));
        };
        let operand = words.next();
        if let Some(extra) = words.next() {
            return Err(Usage::Error(format!("unexpected argument '{extra}'")));
        }
        let flag_misplaced =
            |flag: &str| Usage::Error(format!("{flag} does not apply to '{name}'"));
        if config.is_some() && name != "check" {
            return Err(flag_misplaced("--config"));
        }
        if write != (name == "config") {
            return Err(if write {
                flag_misplaced("--write")
            } else {
                Usage::Error("config needs --write (it prints the config mwand runs)".into())
            });
        }
        if since.is_some() && name != "history" {
            return Err(flag_misplaced("--since"));
        }
        if (policy.is_some() || clear || persistent) && name != "override" {
            return Err(flag_misplaced(if clear {
                "--clear"
            } else if persistent {
                "--persistent"
            } else {
                "--policy"
            }));
        }
        if persistent && (clear || policy.is_some()) {
            return Err(Usage::Error(
                "--persistent keeps an override of every policy: not with --clear or --policy (--clear removes it too)".into(),
            ));
        }
        let no_operand = |request: Request| match &operand {
            Some(w) => Err(Usage::Error(format!("unexpected argument '{w}'"))),
            None => Ok(Command::Daemon(request)),
        };
        let command = match name.as_str() {
            "check" => match &operand {
                Some(w) => return Err(Usage::Error(format!("unexpected argument '{w}'"))),
                None => Command::Check { config },
            },
            "status" => no_operand(Request::Status)?,
            "interfaces" => no_operand(Request::Interfaces)?,
            "policies" => no_operand(Request::Policies)?,
            "rules" => no_operand(Request::Rules)?,
            "connected" => no_operand(Request::Connected)?,
            "reload" => no_operand(Request::Reload)?,
            "restart" | "pause" | "resume" => {
                let Some(interface) = operand else {
                    return Err(Usage::Error(format!("{name} needs an interface")));
                };
                Command::Daemon(match name.as_str() {
                    "restart" => Request::Restart { interface },
                    "pause" => Request::Pause { interface },
                    _ => Request::Resume { interface },
                })
            }
            "override" => Command::Daemon(match (clear, operand) {
                (true, None) => Request::ClearOverride { policy },
                (true, Some(_)) => {
                    return Err(Usage::Error(
                        "override takes an interface or --clear, not both".into(),
                    ))
                }
                (false, Some(interface)) => Request::Override {
                    interface,
                    policy,
                    persistent,
                },
                (false, None) => {
                    return Err(Usage::Error(
                        "override needs an interface, or --clear".into(),
                    ))
                }
            }),
            "explain" => Command::Daemon(Request::Explain { policy: operand }),
            "use" => match operand {
                Some(wan) => Command::Use { wan },
                None => return Err(Usage::Error("use needs a WAN: use WAN -- CMD".into())),
            },
            "config" => no_operand(Request::ConfigText)?,
            "history" => no_operand(Request::History {
                since: since.unwrap_or(0),
            })?,
            other => return Err(Usage::Error(format!("unknown command '{other}'"))),
        };
        Ok(Cli {
            run_dir,
            ubus_socket,
            json,
            command,
        })
    }
}

/// The `mwanctl` applet: `args` are the arguments after the program name.
pub fn main(args: impl IntoIterator<Item = String>) -> ExitCode {
    let mut args: Vec<String> = args.into_iter().collect();
    // `use WAN -- CMD...`: what follows `--` is the command, not ours.
    let command_line = match args.iter().position(|a| a == "--") {
        Some(at) => args.split_off(at).split_off(1),
        None => Vec::new(),
    };
    let cli = match Cli::parse(args) {
        Ok(cli) => cli,
        Err(usage) => return cli::finish(usage, "mwanctl", HELP),
    };
    let request = match &cli.command {
        Command::Check { config } => return check(config.clone(), cli.json),
        Command::Use { wan } => return run_through(&cli, wan, &command_line),
        Command::Daemon(request) => request.clone(),
    };
    match ask(&cli, &request) {
        Ok(response) => print_response(&cli, response),
        Err(code) => code,
    }
}

/// One request to mwand: over its control socket, else over ubus.
fn ask(cli: &Cli, request: &Request) -> Result<Response, ExitCode> {
    let socket = cli.run_dir.join("control.sock");
    Ok(match client::call(&socket, request) {
        Ok(r) => r,
        // No control socket, but a bus: mwand may be reached through ubus.
        Err(e @ client::ClientError::Connect { .. }) if cli.ubus_socket.exists() => {
            match client::call_ubus(&cli.ubus_socket, request) {
                Ok(r) => r,
                Err(ue) => {
                    eprintln!("mwanctl: {e}; {ue}");
                    return Err(ExitCode::from(EXIT_UNREACHABLE));
                }
            }
        }
        Err(e) => {
            eprintln!("mwanctl: {e}");
            return Err(ExitCode::from(EXIT_UNREACHABLE));
        }
    })
}

/// `use WAN -- CMD`: into WAN's cgroup (mwand made it and sends its
/// sockets to WAN), then exec CMD, which inherits the cgroup.
fn run_through(cli: &Cli, wan: &str, command_line: &[String]) -> ExitCode {
    use std::os::unix::process::CommandExt;
    let Some((program, args)) = command_line.split_first() else {
        return cli::finish(
            Usage::Error("use needs a command: use WAN -- CMD [ARG...]".into()),
            "mwanctl",
            HELP,
        );
    };
    let interfaces = match ask(cli, &Request::Interfaces) {
        Ok(Response::Interfaces(v)) => v,
        Ok(other) => {
            eprintln!(
                "mwanctl: unexpected reply to the interface list: {}",
                render::json(&other)
            );
            return ExitCode::from(EXIT_FAILED);
        }
        Err(code) => return code,
    };
    match interfaces.iter().find(|i| i.name == wan) {
        Some(i) if i.state != "disabled" => {}
        found => {
            let why = found.map_or("not configured", |_| "disabled or paused");
            eprintln!("mwanctl: {wan} is {why}: mwand routes nothing through it");
            return ExitCode::from(EXIT_FAILED);
        }
    }
    let entered = mwan_proto::cgroup::root().and_then(|root| {
        let procs = root
            .join(mwan_proto::cgroup::use_path(wan))
            .join("cgroup.procs");
        std::fs::write(&procs, std::process::id().to_string())
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", procs.display())))
    });
    if let Err(e) = entered {
        eprintln!("mwanctl: cannot enter {wan}'s cgroup: {e}");
        return ExitCode::from(EXIT_FAILED);
    }
    let e = std::process::Command::new(program).args(args).exec();
    eprintln!("mwanctl: {program}: {e}");
    ExitCode::from(127)
}

fn print_response(cli: &Cli, response: Response) -> ExitCode {
    match response {
        Response::Error { message } => {
            // Scripts reading --json get an answer on stdout too, shaped
            // like the success reply of restart/reload/override.
            if cli.json {
                let reply = mwan_ubus::blobmsg::Table::new()
                    .with("ok", mwan_ubus::blobmsg::Value::bool(false))
                    .with("error", mwan_ubus::blobmsg::Value::string(&message));
                println!("{}", reply.to_json_text());
            }
            eprintln!("mwanctl: {message}");
            ExitCode::from(EXIT_FAILED)
        }
        other => {
            let text = if cli.json {
                render::json(&other)
            } else {
                render::text(&other)
            };
            print!("{text}");
            ExitCode::SUCCESS
        }
    }
}

fn check(path: Option<PathBuf>, json: bool) -> ExitCode {
    if check::run(path, json) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<Cli, Usage> {
        Cli::parse(words.iter().map(|w| w.to_string()))
    }

    fn request(words: &[&str]) -> Request {
        match parse(words).map(|c| c.command) {
            Ok(Command::Daemon(r)) => r,
            other => panic!("{words:?}: {other:?}"),
        }
    }

    #[test]
    fn commands_and_options_in_any_order() {
        let c = parse(&["interfaces", "--json", "--run-dir=/r"]).unwrap();
        assert!(c.json);
        assert_eq!(c.run_dir, PathBuf::from("/r"));
        assert_eq!(c.command, Command::Daemon(Request::Interfaces));
        assert_eq!(
            parse(&["--json", "check", "--config", "/c"])
                .unwrap()
                .command,
            Command::Check {
                config: Some(PathBuf::from("/c"))
            }
        );
        assert_eq!(
            request(&["override", "wan1", "--policy", "balanced"]),
            Request::Override {
                interface: "wan1".into(),
                policy: Some("balanced".into()),
                persistent: false,
            }
        );
        assert_eq!(
            request(&["override", "--clear"]),
            Request::ClearOverride { policy: None }
        );
        assert_eq!(
            request(&["restart", "wan2"]),
            Request::Restart {
                interface: "wan2".into()
            }
        );
        assert_eq!(request(&["explain"]), Request::Explain { policy: None });
        assert_eq!(
            request(&["override", "wan2", "--persistent"]),
            Request::Override {
                interface: "wan2".into(),
                policy: None,
                persistent: true,
            }
        );
        assert_eq!(
            request(&["pause", "wan2"]),
            Request::Pause {
                interface: "wan2".into()
            }
        );
        assert_eq!(
            request(&["resume", "wan2"]),
            Request::Resume {
                interface: "wan2".into()
            }
        );
        assert_eq!(request(&["history"]), Request::History { since: 0 });
        assert_eq!(request(&["config", "--write"]), Request::ConfigText);
        assert!(parse(&["config"]).is_err());
        assert!(parse(&["status", "--write"]).is_err());
        assert_eq!(
            request(&["history", "--since", "17"]),
            Request::History { since: 17 }
        );
        assert!(parse(&["status", "--since", "1"]).is_err());
        assert!(parse(&["history", "--since", "soon"]).is_err());
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        for (words, wanted) in [
            (&[][..], "a command is required"),
            (&["frobnicate"], "unknown command 'frobnicate'"),
            (&["restart"], "restart needs an interface"),
            (&["use"], "use needs a WAN"),
            (&["override"], "needs an interface, or --clear"),
            (&["override", "wan1", "--clear"], "not both"),
            (&["status", "extra"], "unexpected argument 'extra'"),
            (
                &["status", "--policy", "p"],
                "--policy does not apply to 'status'",
            ),
            (&["status", "--bogus"], "unknown option --bogus"),
            (&["status", "--run-dir"], "--run-dir needs a value"),
        ] {
            match parse(words) {
                Err(Usage::Error(e)) => assert!(e.contains(wanted), "{words:?}: {e}"),
                other => panic!("{words:?}: {other:?}"),
            }
        }
        assert_eq!(parse(&["status", "--help"]), Err(Usage::Help));
    }
}
