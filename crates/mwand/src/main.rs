//! mwand: the multi-WAN controller. One mio event loop over the trackers'
//! socket, the control socket, rtnetlink events, a signalfd and timers
//! (docs/mwand.md).

mod clock;
mod conn;
mod daemon;
mod dataplane;
mod engine;
mod hooks;
#[allow(dead_code)]
mod http;
mod signals;
mod supervisor;
mod tracker_cmd;
// The ubus glue offers more than mwand uses yet (is_connected, netifd_state).
#[allow(dead_code)]
mod ubus_service;
mod wan;

use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SupervisorMode {
    /// mwand starts and respawns one mwan-track per WAN itself.
    Embedded,
    /// procd runs the trackers (OpenWrt); mwand asks it over ubus.
    Procd,
    /// procd when ubus answers with procd's `service` object, else embedded.
    Auto,
}

#[derive(Parser, Debug)]
#[command(
    name = "mwand",
    version,
    about = "Multi-WAN controller: health, policies, routes"
)]
pub struct Options {
    /// Config file; default /etc/config/mwan if it exists, else /etc/config/mwan3.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Directory for mwand's sockets (control.sock, track.sock), nothing else.
    #[arg(long, default_value = "/var/run/mwan")]
    pub run_dir: PathBuf,
    /// Who runs the trackers.
    #[arg(long, value_enum, default_value_t = SupervisorMode::Auto)]
    pub supervisor: SupervisorMode,
    /// ubus socket (OpenWrt).
    #[arg(long, default_value = "/var/run/ubus/ubus.sock")]
    pub ubus_socket: PathBuf,
    /// mwan-track binary; default: next to mwand, else from PATH.
    #[arg(long)]
    pub tracker_bin: Option<PathBuf>,
    /// Also accept control requests from this uid (root always may). Repeatable.
    #[arg(long = "allow-uid", value_name = "UID")]
    pub allow_uids: Vec<u32>,
    /// User hook scripts run on state changes (repeatable); default
    /// /etc/mwan.user and /etc/mwan3.user.
    #[arg(long = "hook", value_name = "PATH")]
    pub hooks: Vec<PathBuf>,
    /// Decide and report, but never touch routes, rules, nft or conntrack
    /// (for trying a config on a live box).
    #[arg(long)]
    pub no_dataplane: bool,
    /// More logging (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less logging (-q warnings only, -qq errors only).
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,
}

fn main() -> ExitCode {
    let opts = Options::parse();
    let level = match (opts.verbose, opts.quiet) {
        (0, 0) => "info",
        (1, _) => "debug",
        (v, _) if v >= 2 => "trace",
        (_, 1) => "warn",
        _ => "error",
    };
    // env_logger is built without its timestamp feature (flash): stamp the
    // lines ourselves, wall clock UTC to the millisecond.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format(|buf, record| {
            use std::io::Write;
            writeln!(
                buf,
                "{} {:<5} {}: {}",
                wall_clock_utc(std::time::SystemTime::now()),
                record.level(),
                record.target(),
                record.args()
            )
        })
        .init();
    match daemon::run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{}", daemon::report(&e));
            ExitCode::from(e.exit_code())
        }
    }
}

/// `HH:MM:SS.mmm` of `t` in UTC (a router's logread adds the date).
fn wall_clock_utc(t: std::time::SystemTime) -> String {
    let since_epoch = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs_of_day = since_epoch.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60,
        since_epoch.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::wall_clock_utc;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn log_stamp_is_utc_time_of_day_in_millis() {
        // 2026-11-21 07:05:09.042 UTC
        let t = UNIX_EPOCH + Duration::from_millis(1_795_244_709_042);
        assert_eq!(wall_clock_utc(t), "07:05:09.042");
        assert_eq!(wall_clock_utc(UNIX_EPOCH), "00:00:00.000");
    }
}
