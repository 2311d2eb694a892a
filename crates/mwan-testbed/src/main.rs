//! `mwan-testbed`: bring simulated WANs up and down, impair them, look at
//! them, run commands inside them. See docs/testbed.md.

use clap::{Parser, Subcommand};
use mwan_testbed::{netns_unavailable, plan, topology, Error, Impairment, Role, State};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "mwan-testbed",
    about = "Simulated WANs in network namespaces for mwan-rs"
)]
struct Cli {
    /// Testbed name (several can run at once).
    #[arg(long, global = true, default_value = "default")]
    name: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the namespaces, links, hops and servers.
    Up {
        /// Number of uplinks.
        #[arg(long, default_value_t = 2)]
        wans: usize,
        /// Seed of the hops' random generators.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Remove the testbed, including leftovers of a crashed run.
    Down {
        /// Remove every testbed on this host (also other users' test runs!).
        #[arg(long)]
        all: bool,
        /// Remove testbeds of test processes that no longer exist.
        #[arg(long)]
        stale: bool,
    },
    /// Set delay, jitter, loss and rate cap of a WAN (round-trip figures).
    Impair {
        wan: String,
        /// Mean round-trip delay added, ms.
        #[arg(long, default_value_t = 0.0)]
        delay: f64,
        /// Standard deviation of the round-trip delay, ms.
        #[arg(long, default_value_t = 0.0)]
        jitter: f64,
        /// Round-trip loss, percent.
        #[arg(long, default_value_t = 0.0)]
        loss: f64,
        /// Bandwidth cap per direction, kbit/s (0 = none).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Longest queueing delay the cap's buffer holds, ms.
        #[arg(long, default_value_t = 1000)]
        queue: u64,
    },
    /// Silently drop everything on a WAN (link stays up).
    Cut { wan: String },
    /// End a cut.
    Restore { wan: String },
    /// Carrier of a WAN as the router sees it.
    Link {
        wan: String,
        #[arg(value_parser = ["up", "down"])]
        state: String,
    },
    /// Devices, subnets, gateways and impairment per WAN.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Run a command in a namespace: router, lan, internet, isp1..ispN.
    Exec {
        role: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        argv: Vec<String>,
    },
    #[command(hide = true)]
    Hop {
        #[arg(long)]
        socket: PathBuf,
        #[arg(long)]
        seed: u64,
        #[arg(long)]
        customer: String,
        #[arg(long)]
        provider: String,
    },
    #[command(hide = true)]
    Serve {
        #[arg(long)]
        ready: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.cmd, Cmd::Hop { .. } | Cmd::Serve { .. }) {
        // Like other command-line tools: `status | head` ends quietly. The
        // daemons keep Rust's SIGPIPE-ignored default (a control client
        // that hangs up must not kill a hop).
        // SAFETY: setting a signal disposition before any thread exists.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mwan-testbed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn needs_root() -> Result<(), Box<dyn std::error::Error>> {
    match netns_unavailable() {
        None => Ok(()),
        Some(reason) => Err(format!("cannot run here: {reason}").into()),
    }
}

fn run(cli: Cli) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let name = cli.name;
    match cli.cmd {
        Cmd::Hop {
            socket,
            seed,
            customer,
            provider,
        } => {
            mwan_testbed::hop::run(&customer, &provider, &socket, seed)?;
        }
        Cmd::Serve { ready } => mwan_testbed::servers::run(&plan::targets(), &ready)?,
        Cmd::Up { wans, seed } => {
            needs_root()?;
            let plan = plan::plan(&name, wans)?;
            let exe = std::env::current_exe()?;
            let built = topology::build(plan, &exe, seed).map_err(Error::from)?;
            print_status(&built.state, false)?;
            println!(
                "testbed '{name}' is up; run dir {}",
                built.state.run_dir.display()
            );
        }
        Cmd::Down { all, stale } => {
            needs_root()?;
            let names = if all {
                topology::all_testbeds()
            } else if stale {
                mwan_testbed::remove_stale();
                Vec::new()
            } else {
                vec![name]
            };
            let mut failed = false;
            for n in names {
                for problem in topology::teardown(&n, &mut []) {
                    eprintln!("mwan-testbed: down {n}: {problem}");
                    failed = true;
                }
            }
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
        Cmd::Impair {
            wan,
            delay,
            jitter,
            loss,
            rate,
            queue,
        } => {
            let imp = Impairment {
                delay_ms: delay,
                jitter_ms: jitter,
                loss_pct: loss,
                rate_kbit: rate,
                queue_ms: queue,
            };
            imp.validate()?;
            topology::load_state(&name)?.impair(&wan, imp)?;
        }
        Cmd::Cut { wan } => {
            topology::load_state(&name)?.cut(&wan)?;
        }
        Cmd::Restore { wan } => {
            topology::load_state(&name)?.restore(&wan)?;
        }
        Cmd::Link { wan, state } => {
            topology::load_state(&name)?.link(&wan, state == "up")?;
        }
        Cmd::Status { json } => print_status(&topology::load_state(&name)?, json)?,
        Cmd::Exec { role, argv } => {
            let state = topology::load_state(&name)?;
            let role: Role = role.parse()?;
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            let err = state.command(role, &argv)?.exec();
            return Err(format!("exec {}: {err}", argv.join(" ")).into());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_status(state: &State, json: bool) -> Result<(), Box<dyn std::error::Error>> {
    let plan = &state.plan;
    let hops: Vec<_> = plan
        .wans
        .iter()
        .map(|w| state.hop_status(&w.name).map_err(|e| e.to_string()))
        .collect();
    if json {
        let wans: Vec<serde_json::Value> = plan
            .wans
            .iter()
            .zip(&hops)
            .map(|(w, hop)| {
                serde_json::json!({
                    "wan": w,
                    "subnet_v4": w.subnet_v4(),
                    "subnet_v6": w.subnet_v6(),
                    "hop_pid": state.hop_pid(&w.name).ok(),
                    "hop": hop.as_ref().ok(),
                    "hop_error": hop.as_ref().err(),
                })
            })
            .collect();
        let doc = serde_json::json!({
            "name": plan.name,
            "run_dir": state.run_dir,
            "server_pid": state.server_pid,
            "router_ns": plan.router_ns,
            "lan_ns": plan.lan_ns,
            "internet_ns": plan.internet_ns,
            "lan": plan.lan,
            "targets": plan.targets,
            "wans": wans,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!(
        "testbed {}: router {}, lan {}, internet {}",
        plan.name, plan.router_ns, plan.lan_ns, plan.internet_ns
    );
    println!(
        "{:<6} {:<5} {:<18} {:<14} {:<22} {:<16} {:<7} impairment",
        "wan", "dev", "subnet v4", "gateway v4", "subnet v6", "gateway v6", "metric"
    );
    for (w, hop) in plan.wans.iter().zip(&hops) {
        let imp = match hop {
            Ok(h) if h.cut => "CUT".to_string(),
            Ok(h) if h.impairment.is_clear() => "none".to_string(),
            Ok(h) => {
                let i = h.impairment;
                let mut s = format!(
                    "delay {} ms jitter {} ms loss {} %",
                    i.delay_ms, i.jitter_ms, i.loss_pct
                );
                if i.rate_kbit > 0 {
                    s.push_str(&format!(
                        " rate {} kbit/s queue {} ms",
                        i.rate_kbit, i.queue_ms
                    ));
                }
                s
            }
            Err(e) => format!("hop unreachable: {e}"),
        };
        println!(
            "{:<6} {:<5} {:<18} {:<14} {:<22} {:<16} {:<7} {imp}",
            w.name,
            w.device,
            w.subnet_v4(),
            w.gateway_v4.to_string(),
            w.subnet_v6(),
            w.gateway_v6.to_string(),
            w.metric
        );
    }
    let lan = &plan.lan;
    println!(
        "lan: router {} {}/{} {}/{}, client {}/{} {}/{}",
        lan.router_device,
        lan.router_v4,
        lan.v4_prefix,
        lan.router_v6,
        lan.v6_prefix,
        lan.client_v4,
        lan.v4_prefix,
        lan.client_v6,
        lan.v6_prefix
    );
    let t = &plan.targets;
    println!(
        "targets: icmp {:?} {:?}; http {:?}; dns {:?} answers {} = {} / {}",
        t.icmp_v4, t.icmp_v6, t.http, t.dns_server, t.dns_name, t.dns_answer_v4, t.dns_answer_v6
    );
    Ok(())
}
