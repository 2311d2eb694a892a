//! mwanctl: the command line for mwand.
//!
//! `check` validates a config without a daemon; every other command talks to
//! a running mwand over its control socket (`<run-dir>/control.sock`).
//! Exit codes (docs/mwanctl.md): 0 success, 1 the request failed or the
//! config has problems, 2 usage error, 3 mwand cannot be reached.

mod check;
mod client;
mod render;

use clap::{Parser, Subcommand};
use mwan_proto::control::{Request, Response};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code when the command ran and the answer is "no" (config problems,
/// daemon refused the request).
const EXIT_FAILED: u8 = 1;
/// Exit code when mwand cannot be reached or answers garbage.
const EXIT_UNREACHABLE: u8 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "mwanctl",
    version,
    about = "Show and steer mwand, the multi-WAN manager"
)]
struct Cli {
    /// Directory holding mwand's sockets (mwand --run-dir).
    #[arg(long, global = true, default_value = "/var/run/mwan")]
    run_dir: PathBuf,
    /// ubus socket, used when the control socket does not answer (OpenWrt).
    #[arg(long, global = true, default_value = "/var/run/ubus/ubus.sock")]
    ubus_socket: PathBuf,
    /// Print the reply as JSON (every command; schema in docs/status-json.md,
    /// docs/mwanctl.md); a refusal prints {"ok": false, "error": ...}.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate a config file and print its resolved summary (no daemon needed).
    Check {
        /// Config file; default /etc/config/mwan, else /etc/config/mwan3.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Interfaces, policies and override at a glance.
    Status,
    /// Per-interface health and tracker.
    Interfaces,
    /// Per-policy active members and shares.
    Policies,
    /// Rules in match order with their policy.
    Rules,
    /// Networks treated as connected (never sent to a WAN by a policy).
    Connected,
    /// Restart one interface's tracker; others keep running untouched.
    Restart {
        /// Interface name as in the config (e.g. wan2).
        interface: String,
    },
    /// Reload the config: validated first, then only what changed is applied.
    Reload,
    /// Force traffic onto one interface (all policies, or one), or clear it.
    Override {
        /// Interface to force; omit with --clear.
        #[arg(required_unless_present = "clear", conflicts_with = "clear")]
        interface: Option<String>,
        /// Only this policy (default: every policy).
        #[arg(long)]
        policy: Option<String>,
        /// Remove the override (of --policy, or all overrides).
        #[arg(long)]
        clear: bool,
    },
    /// Explain in words why each policy uses what it uses.
    Explain {
        /// Only this policy.
        policy: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let request = match cli.command {
        Command::Check { config } => return check(config, cli.json),
        Command::Status => Request::Status,
        Command::Interfaces => Request::Interfaces,
        Command::Policies => Request::Policies,
        Command::Rules => Request::Rules,
        Command::Connected => Request::Connected,
        Command::Restart { interface } => Request::Restart { interface },
        Command::Reload => Request::Reload,
        Command::Override {
            interface,
            policy,
            clear,
        } => match (clear, interface) {
            (true, _) => Request::ClearOverride { policy },
            (false, Some(interface)) => Request::Override { interface, policy },
            (false, None) => unreachable!("clap requires an interface without --clear"),
        },
        Command::Explain { policy } => Request::Explain { policy },
    };
    let socket = cli.run_dir.join("control.sock");
    let response = match client::call(&socket, &request) {
        Ok(r) => r,
        // No control socket, but a bus: mwand may be reached through ubus.
        Err(e @ client::ClientError::Connect { .. }) if cli.ubus_socket.exists() => {
            match client::call_ubus(&cli.ubus_socket, &request) {
                Ok(r) => r,
                Err(ue) => {
                    eprintln!("mwanctl: {e}; {ue}");
                    return ExitCode::from(EXIT_UNREACHABLE);
                }
            }
        }
        Err(e) => {
            eprintln!("mwanctl: {e}");
            return ExitCode::from(EXIT_UNREACHABLE);
        }
    };
    match response {
        Response::Error { message } => {
            // Scripts reading --json get an answer on stdout too, shaped
            // like the success reply of restart/reload/override.
            if cli.json {
                println!("{}", serde_json::json!({ "ok": false, "error": message }));
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
