//! mwand: the multi-WAN controller. One mio event loop over the trackers'
//! socket, the control socket, rtnetlink events, a signalfd and timers
//! (docs/mwand.md). A library: the `mwand` applet of the one executable
//! (crates/mwan) calls [`main`].

mod clock;
mod conn;
mod daemon;
mod dataplane;
mod engine;
mod hooks;
#[cfg(feature = "http")]
mod http;
mod logger;
mod signals;
mod supervisor;
mod tracker_cmd;
// The ubus glue offers more than mwand uses yet (is_connected).
#[allow(dead_code)]
mod ubus_service;
mod wan;

/// The HTTP request reader, for the fuzz targets only (docs/fuzzing.md).
#[cfg(all(fuzzing, feature = "http"))]
pub mod fuzzing {
    pub use crate::http::*;
}

use mwan_proto::cli::{self, Arg, Lexer, Usage};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupervisorMode {
    /// mwand starts and respawns one mwan-track per WAN itself.
    Embedded,
    /// procd runs the trackers (OpenWrt); mwand asks it over ubus.
    Procd,
    /// procd when ubus answers with procd's `service` object, else embedded.
    Auto,
}

/// `--help`'s lines for `--http`: what the router build (no cargo feature
/// `http`) says instead of offering a listener it does not have.
#[cfg(feature = "http")]
macro_rules! http_help {
    () => {
        "      --http ADDR:PORT     serve the dashboard and its JSON API there (off by
                           default; docs/dashboard.md)
      --http-token-file PATH  token for writes over HTTP; required when --http
                           is not a loopback address
"
    };
}
#[cfg(not(feature = "http"))]
macro_rules! http_help {
    () => {
        "      --http ADDR:PORT     not in this build (cargo feature http): ignored with
                           a warning; on OpenWrt the dashboard is luci-app-mwan
      --http-token-file PATH  not in this build either
"
    };
}

/// What `--http` says in a build without the listener: a warning, not an
/// exit, so a router whose globals ask for the dashboard keeps routing.
#[cfg(not(feature = "http"))]
const NO_HTTP: &str = "this mwand is built without its HTTP listener (cargo feature http), so --http and --http-token-file are ignored; on OpenWrt the dashboard is luci-app-mwan";

const HELP: &str = concat!(
    "\
mwand: multi-WAN controller: health, policies, routes (docs/mwand.md)

Usage: mwand [OPTIONS]

Options:
      --config PATH        config file; default /etc/config/mwan if it exists,
                           else /etc/config/mwan3
      --run-dir DIR        directory for mwand's sockets [default: /var/run/mwan]
      --supervisor MODE    who runs the trackers: embedded, procd or auto
                           [default: auto]
      --ubus-socket PATH   ubus socket (OpenWrt) [default: /var/run/ubus/ubus.sock]
      --tracker-bin PATH   mwan-track binary; default: next to mwand, else PATH
      --allow-uid UID      also accept control requests from UID (repeatable)
      --tracker-user NAME  user trackers run as (under procd they switch
                           themselves), with only CAP_NET_RAW (+CAP_NET_ADMIN
                           for the fwmark)
                           [default: mwan if it exists, else nobody; root: no drop]
      --hook PATH          user hook script run on state changes (repeatable);
                           default /etc/mwan.user and /etc/mwan3.user
      --hotplug-call PATH  run as 'PATH iface' on tracker state changes, when
                           it exists [default: /sbin/hotplug-call]
      --no-dataplane       decide and report, never touch routes, rules, nft
                           or conntrack
",
    http_help!(),
    "      --auto-track-ip IP   in automatic mode (no config file), probe IP besides
                           each gateway (repeatable) [default: 1.1.1.1 8.8.8.8 9.9.9.9
                           and for IPv6 WANs 2606:4700:4700::1111
                           2001:4860:4860::8888 2620:fe::fe]
  -v, --verbose            more logging (-v debug, -vv trace); RUST_LOG overrides
  -q, --quiet              less logging (-q warnings only, -qq errors only)
  -h, --help               print this help
  -V, --version            print the version
"
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Config file; default /etc/config/mwan if it exists, else /etc/config/mwan3.
    pub config: Option<PathBuf>,
    /// Directory for mwand's sockets (control.sock, track.sock), nothing else.
    pub run_dir: PathBuf,
    /// Who runs the trackers.
    pub supervisor: SupervisorMode,
    /// ubus socket (OpenWrt).
    pub ubus_socket: PathBuf,
    /// mwan-track binary; default: next to mwand, else from PATH.
    pub tracker_bin: Option<PathBuf>,
    /// Also accept control requests from these uids (root always may).
    pub allow_uids: Vec<u32>,
    /// User trackers run as (the embedded supervisor switches them, under
    /// procd `--user` makes them switch); default `mwan` if it exists,
    /// else `nobody`; `root` keeps them root.
    pub tracker_user: Option<String>,
    /// User hook scripts run on state changes; default /etc/mwan.user and
    /// /etc/mwan3.user.
    pub hooks: Vec<PathBuf>,
    /// OpenWrt's hotplug runner, told of tracker state changes as mwan3track does.
    pub hotplug_call: PathBuf,
    /// Decide and report, but never touch routes, rules, nft or conntrack
    /// (for trying a config on a live box).
    pub no_dataplane: bool,
    /// Where the dashboard listens; None: no HTTP listener.
    pub http: Option<std::net::SocketAddr>,
    /// File holding the token HTTP writes must carry (first line).
    pub http_token_file: Option<PathBuf>,
    /// Automatic mode's targets besides each gateway; empty: the defaults.
    pub auto_track_ip: Vec<std::net::IpAddr>,
    /// -v count.
    pub verbose: u8,
    /// -q count.
    pub quiet: u8,
}

impl Options {
    /// Parses the arguments after the program name.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, Usage> {
        let mut o = Options {
            config: None,
            run_dir: PathBuf::from("/var/run/mwan"),
            supervisor: SupervisorMode::Auto,
            ubus_socket: PathBuf::from("/var/run/ubus/ubus.sock"),
            tracker_bin: None,
            allow_uids: Vec::new(),
            tracker_user: None,
            hooks: Vec::new(),
            hotplug_call: PathBuf::from(hooks::HOTPLUG_CALL),
            no_dataplane: false,
            http: None,
            http_token_file: None,
            auto_track_ip: Vec::new(),
            verbose: 0,
            quiet: 0,
        };
        let mut lexer = Lexer::new(args);
        while let Some(arg) = lexer.next() {
            match &arg {
                Arg::Long(name, inline) => {
                    let inline = inline.clone();
                    match name.as_str() {
                        "config" => o.config = Some(lexer.value(name, inline)?.into()),
                        "run-dir" => o.run_dir = lexer.value(name, inline)?.into(),
                        "supervisor" => {
                            o.supervisor = match lexer.value(name, inline)?.as_str() {
                                "embedded" => SupervisorMode::Embedded,
                                "procd" => SupervisorMode::Procd,
                                "auto" => SupervisorMode::Auto,
                                other => {
                                    return Err(Usage::Error(format!(
                                        "--supervisor: '{other}' is not embedded, procd or auto"
                                    )))
                                }
                            }
                        }
                        "ubus-socket" => o.ubus_socket = lexer.value(name, inline)?.into(),
                        "tracker-bin" => o.tracker_bin = Some(lexer.value(name, inline)?.into()),
                        "allow-uid" => o.allow_uids.push(lexer.parsed(name, inline, "a uid")?),
                        "tracker-user" => o.tracker_user = Some(lexer.value(name, inline)?),
                        "hook" => o.hooks.push(lexer.value(name, inline)?.into()),
                        "hotplug-call" => o.hotplug_call = lexer.value(name, inline)?.into(),
                        "no-dataplane" => o.no_dataplane = true,
                        "http" => o.http = Some(lexer.parsed(name, inline, "an ADDR:PORT")?),
                        "auto-track-ip" => {
                            o.auto_track_ip
                                .push(lexer.parsed(name, inline, "an IP address")?)
                        }
                        "http-token-file" => {
                            o.http_token_file = Some(lexer.value(name, inline)?.into())
                        }
                        "verbose" => o.verbose = o.verbose.saturating_add(1),
                        "quiet" => o.quiet = o.quiet.saturating_add(1),
                        "help" => return Err(Usage::Help),
                        "version" => return Err(Usage::Version),
                        _ => return Err(cli::unknown(&arg)),
                    }
                }
                Arg::Short('v') => o.verbose = o.verbose.saturating_add(1),
                Arg::Short('q') => o.quiet = o.quiet.saturating_add(1),
                Arg::Short('h') => return Err(Usage::Help),
                Arg::Short('V') => return Err(Usage::Version),
                _ => return Err(cli::unknown(&arg)),
            }
        }
        if o.verbose > 0 && o.quiet > 0 {
            return Err(Usage::Error(
                "--verbose and --quiet exclude each other".into(),
            ));
        }
        Ok(o)
    }

    /// The warning a build without the listener logs for `--http`.
    fn http_warning(&self) -> Option<&'static str> {
        #[cfg(not(feature = "http"))]
        if self.http.is_some() || self.http_token_file.is_some() {
            return Some(NO_HTTP);
        }
        None
    }

    /// The log level the flags ask for (RUST_LOG overrides it).
    fn log_level(&self) -> log::LevelFilter {
        match (self.verbose, self.quiet) {
            (0, 0) => log::LevelFilter::Info,
            (1, _) => log::LevelFilter::Debug,
            (v, _) if v >= 2 => log::LevelFilter::Trace,
            (_, 1) => log::LevelFilter::Warn,
            _ => log::LevelFilter::Error,
        }
    }
}

/// The `mwand` applet: `args` are the arguments after the program name.
pub fn main(args: impl IntoIterator<Item = String>) -> ExitCode {
    let opts = match Options::parse(args) {
        Ok(o) => o,
        Err(usage) => return cli::finish(usage, "mwand", HELP),
    };
    logger::init(opts.log_level(), std::env::var("RUST_LOG").ok().as_deref());
    if let Some(warning) = opts.http_warning() {
        log::warn!("{warning}");
    }
    match daemon::run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{}", daemon::report(&e));
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<Options, Usage> {
        Options::parse(words.iter().map(|w| w.to_string()))
    }

    #[test]
    fn every_flag_parses_and_defaults_hold() {
        let o = parse(&[]).unwrap();
        assert_eq!(o.run_dir, PathBuf::from("/var/run/mwan"));
        assert_eq!(o.supervisor, SupervisorMode::Auto);
        assert_eq!(o.log_level(), log::LevelFilter::Info);
        let o = parse(&[
            "--config",
            "/c",
            "--run-dir=/r",
            "--supervisor",
            "procd",
            "--ubus-socket",
            "/u",
            "--tracker-bin",
            "/t",
            "--allow-uid",
            "5",
            "--allow-uid=6",
            "--hook",
            "/h1",
            "--hook",
            "/h2",
            "--no-dataplane",
            "--auto-track-ip",
            "192.0.2.7",
            "-vv",
        ])
        .unwrap();
        assert_eq!(o.config, Some(PathBuf::from("/c")));
        assert_eq!(o.run_dir, PathBuf::from("/r"));
        assert_eq!(o.supervisor, SupervisorMode::Procd);
        assert_eq!(o.ubus_socket, PathBuf::from("/u"));
        assert_eq!(o.tracker_bin, Some(PathBuf::from("/t")));
        assert_eq!(o.allow_uids, [5, 6]);
        assert_eq!(o.hooks, [PathBuf::from("/h1"), PathBuf::from("/h2")]);
        assert!(o.no_dataplane);
        assert_eq!(
            o.auto_track_ip,
            ["192.0.2.7".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(o.log_level(), log::LevelFilter::Trace);
        assert_eq!(
            parse(&["-qq"]).unwrap().log_level(),
            log::LevelFilter::Error
        );
    }

    #[cfg(feature = "http")]
    #[test]
    fn the_http_flags_parse_with_the_listener_built_in() {
        let o = parse(&["--http", "127.0.0.1:8080", "--http-token-file=/tok"]).unwrap();
        assert_eq!(o.http, Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(o.http_token_file, Some(PathBuf::from("/tok")));
        assert_eq!(o.http_warning(), None);
        assert!(HELP.contains("serve the dashboard"));
    }

    /// The init script passes globals' `http` whatever the build: the
    /// router build takes the flags and warns instead of exiting.
    #[cfg(not(feature = "http"))]
    #[test]
    fn the_router_build_takes_the_http_flags_and_warns_why_it_ignores_them() {
        for words in [
            &["--http", "127.0.0.1:8080"][..],
            &["--http-token-file", "/tok"],
        ] {
            let o = parse(words).unwrap_or_else(|e| panic!("{words:?}: {e:?}"));
            let e = o.http_warning().expect("a warning");
            assert!(e.contains("cargo feature http"), "{words:?}: {e}");
            assert!(e.contains("ignored"), "{words:?}: {e}");
            assert!(e.contains("luci-app-mwan"), "{words:?}: {e}");
        }
        assert_eq!(parse(&[]).unwrap().http_warning(), None);
        assert!(HELP.contains("not in this build (cargo feature http)"));
        assert!(!HELP.contains("serve the dashboard"));
    }

    #[test]
    fn usage_errors_name_the_flag() {
        for (words, wanted) in [
            (&["--supervisor", "cron"][..], "--supervisor: 'cron'"),
            (&["--allow-uid", "root"], "--allow-uid: 'root'"),
            (&["--http", "8080"], "--http: '8080'"),
            (&["--config"], "--config needs a value"),
            (&["--bogus"], "unknown option --bogus"),
            (&["-v", "-q"], "exclude each other"),
            (&["stray"], "unexpected argument 'stray'"),
        ] {
            match parse(words) {
                Err(Usage::Error(e)) => assert!(e.contains(wanted), "{words:?}: {e}"),
                other => panic!("{words:?}: {other:?}"),
            }
        }
        assert_eq!(parse(&["--help"]), Err(Usage::Help));
        assert_eq!(parse(&["-V"]), Err(Usage::Version));
    }
}
