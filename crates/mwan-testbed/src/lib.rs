//! Network testbed for mwan-rs: a router namespace with N uplinks, one ISP
//! namespace per uplink (with a userspace impairment hop), an internet
//! namespace with target services, and a LAN client. See docs/testbed.md.
//!
//! ```no_run
//! use mwan_testbed::{require_netns, Role, Testbed, TestbedOptions};
//! if !require_netns() { return; }
//! let tb = Testbed::up(TestbedOptions { wans: 2, ..Default::default() }).unwrap();
//! let out = tb.exec(Role::Router, &["ping", "-c1", "203.0.113.1"]).unwrap();
//! assert!(out.status.success());
//! ```

pub mod hop;
pub mod netns;
pub mod plan;
pub mod servers;
pub mod shaper;
pub mod topology;

pub use hop::{DirectionStats, EchoCount, HopStatus};
pub use plan::{LanInfo, Plan, Targets, WanInfo};
pub use shaper::Impairment;
pub use topology::State;

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Everything that can go wrong with a testbed, saying what was attempted.
#[derive(Debug)]
pub enum Error {
    /// The plan was refused (bad WAN count or name).
    Plan(plan::PlanError),
    /// Building, tearing down or running a command failed.
    Command(netns::CommandError),
    /// No such WAN or role.
    Unknown(String),
    /// A workspace binary is missing.
    Binary(String),
    /// A hop did not accept a request.
    Control { wan: String, error: io::Error },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Plan(e) => e.fmt(f),
            Error::Command(e) => e.fmt(f),
            Error::Unknown(s) | Error::Binary(s) => f.write_str(s),
            Error::Control { wan, error } => write!(f, "hop of {wan}: {error}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<plan::PlanError> for Error {
    fn from(e: plan::PlanError) -> Self {
        Error::Plan(e)
    }
}

impl From<netns::CommandError> for Error {
    fn from(e: netns::CommandError) -> Self {
        Error::Command(e)
    }
}

/// A namespace of a testbed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Router,
    Lan,
    Internet,
    /// ISP of WAN n (1-based).
    Isp(usize),
}

impl std::str::FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Role, Error> {
        match s {
            "router" => Ok(Role::Router),
            "lan" => Ok(Role::Lan),
            "internet" | "inet" => Ok(Role::Internet),
            _ => s
                .strip_prefix("isp")
                .and_then(|n| n.parse().ok())
                .filter(|&n| n > 0)
                .map(Role::Isp)
                .ok_or_else(|| {
                    Error::Unknown(format!(
                        "role '{s}': expected router, lan, internet or isp1..ispN"
                    ))
                }),
        }
    }
}

impl State {
    /// The WAN called `name` ("wan2"; a bare "2" works too).
    pub fn wan(&self, name: &str) -> Result<&WanInfo, Error> {
        let wanted = if name.bytes().all(|b| b.is_ascii_digit()) {
            format!("wan{name}")
        } else {
            name.to_string()
        };
        self.plan
            .wans
            .iter()
            .find(|w| w.name == wanted)
            .ok_or_else(|| {
                Error::Unknown(format!(
                    "WAN '{name}': expected one of wan1..wan{}",
                    self.plan.wans.len()
                ))
            })
    }

    /// Namespace name of `role`.
    pub fn namespace(&self, role: Role) -> Result<&str, Error> {
        Ok(match role {
            Role::Router => &self.plan.router_ns,
            Role::Lan => &self.plan.lan_ns,
            Role::Internet => &self.plan.internet_ns,
            Role::Isp(n) => &self.wan(&n.to_string())?.isp_ns,
        })
    }

    /// A command that runs `argv` inside `role`'s namespace.
    pub fn command(&self, role: Role, argv: &[&str]) -> Result<Command, Error> {
        if argv.is_empty() {
            return Err(Error::Unknown(
                "empty command: expected a program and its arguments".into(),
            ));
        }
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.namespace(role)?])
            .args(argv);
        Ok(cmd)
    }

    fn hop(&self, wan: &str, req: hop::HopRequest) -> Result<HopStatus, Error> {
        let w = self.wan(wan)?;
        hop::request(&self.hop_socket(&w.name), &req).map_err(|error| Error::Control {
            wan: w.name.clone(),
            error,
        })
    }

    /// Sets `wan`'s impairment (replacing the previous one).
    pub fn impair(&self, wan: &str, imp: Impairment) -> Result<HopStatus, Error> {
        self.hop(wan, hop::HopRequest::Impair(imp))
    }

    /// Silently drops everything on `wan`; its link stays up.
    pub fn cut(&self, wan: &str) -> Result<HopStatus, Error> {
        self.hop(wan, hop::HopRequest::Cut)
    }

    /// Ends a cut of `wan` (impairment stays as set).
    pub fn restore(&self, wan: &str) -> Result<HopStatus, Error> {
        self.hop(wan, hop::HopRequest::Restore)
    }

    /// Counters and settings of `wan`'s hop.
    pub fn hop_status(&self, wan: &str) -> Result<HopStatus, Error> {
        self.hop(wan, hop::HopRequest::Status)
    }

    /// Carrier of `wan` as the router sees it: the ISP's end goes up/down.
    pub fn link(&self, wan: &str, up: bool) -> Result<(), Error> {
        let w = self.wan(wan)?;
        netns::run(
            "ip",
            &[
                "-n",
                &w.isp_ns,
                "link",
                "set",
                plan::ISP_CUSTOMER_DEV,
                if up { "up" } else { "down" },
            ],
            None,
        )?;
        Ok(())
    }

    /// Pid of `wan`'s hop process.
    pub fn hop_pid(&self, wan: &str) -> Result<u32, Error> {
        let w = self.wan(wan)?;
        Ok(self.hop_pids[w.index - 1])
    }
}

/// Options of `Testbed::up`.
#[derive(Clone, Debug)]
pub struct TestbedOptions {
    /// Number of uplinks (1..=32).
    pub wans: usize,
    /// Seed of the hops' random generators.
    pub seed: u64,
}

impl Default for TestbedOptions {
    fn default() -> Self {
        TestbedOptions { wans: 2, seed: 1 }
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A running testbed; dropping it removes everything it created, also when
/// the test panics.
pub struct Testbed {
    state: State,
    children: Vec<Child>,
}

impl Testbed {
    /// Builds a testbed with a name unique to this process and call
    /// (`t<pid>-<n>`), after removing leftovers of test processes that died.
    pub fn up(opts: TestbedOptions) -> Result<Testbed, Error> {
        remove_stale();
        let name = format!(
            "t{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let plan = plan::plan(&name, opts.wans)?;
        let exe = find_binary("mwan-testbed")?;
        let built = topology::build(plan, &exe, opts.seed)?;
        Ok(Testbed {
            state: built.state,
            children: built.children,
        })
    }

    /// The testbed's name (part of every namespace name).
    pub fn name(&self) -> &str {
        &self.state.plan.name
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn plan(&self) -> &Plan {
        &self.state.plan
    }

    pub fn wans(&self) -> &[WanInfo] {
        &self.state.plan.wans
    }

    pub fn wan(&self, name: &str) -> Result<&WanInfo, Error> {
        self.state.wan(name)
    }

    pub fn router_ns(&self) -> &str {
        &self.state.plan.router_ns
    }

    pub fn lan_ns(&self) -> &str {
        &self.state.plan.lan_ns
    }

    pub fn internet_ns(&self) -> &str {
        &self.state.plan.internet_ns
    }

    pub fn lan(&self) -> &LanInfo {
        &self.state.plan.lan
    }

    pub fn targets(&self) -> &Targets {
        &self.state.plan.targets
    }

    /// Run dir: state.json, hop control sockets, daemon logs.
    pub fn run_dir(&self) -> &Path {
        &self.state.run_dir
    }

    /// Runs `argv` in `role`'s namespace and waits for it.
    pub fn exec(&self, role: Role, argv: &[&str]) -> Result<Output, Error> {
        let mut cmd = self.state.command(role, argv)?;
        cmd.output().map_err(|e| {
            Error::Command(netns::CommandError {
                what: format!("run {} in {role:?}", argv.join(" ")),
                detail: e.to_string(),
            })
        })
    }

    /// Like `exec`, but fails unless the command exits 0; returns stdout.
    pub fn exec_ok(&self, role: Role, argv: &[&str]) -> Result<String, Error> {
        let out = self.exec(role, argv)?;
        if !out.status.success() {
            return Err(Error::Command(netns::CommandError {
                what: format!("run {} in {role:?}", argv.join(" ")),
                detail: format!(
                    "{}: {}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            }));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Routes WAN `wan`'s (1-based) tracker fwmark `0x3e00 + wan` through a
    /// table of its own (`900 + wan`, v4 and v6 defaults via the WAN's
    /// gateway), as mwand's data plane does, for tests that run mwan-track
    /// without mwand. Also `from <WAN address> lookup <table>`, as the data
    /// plane installs it: the reverse-path check of a reply carries no
    /// mark, so this rule is what lets strict rp_filter accept replies on a
    /// WAN that is not the main table's default. Returns the mark (`0x..`).
    pub fn route_tracker_mark(&self, wan: usize) -> Result<String, Error> {
        let w = &self.wans()[wan - 1];
        let mark = format!("{:#x}", 0x3e00 + wan);
        let table = (900 + wan).to_string();
        let (v4, v6) = (w.router_v4.to_string(), w.router_v6.to_string());
        for (fam, gw, addr) in [
            ("-4", w.gateway_v4.to_string(), v4),
            ("-6", w.gateway_v6.to_string(), v6),
        ] {
            let rules: [&[&str]; 3] = [
                &[
                    "ip", fam, "rule", "add", "fwmark", &mark, "lookup", &table, "pref", "50",
                ],
                &[
                    "ip", fam, "rule", "add", "from", &addr, "lookup", &table, "pref", "51",
                ],
                &[
                    "ip", fam, "route", "add", "default", "via", &gw, "dev", &w.device, "table",
                    &table,
                ],
            ];
            for argv in rules {
                self.exec_ok(Role::Router, argv)?;
            }
        }
        Ok(mark)
    }

    /// A command for `argv` in `role`'s namespace, to configure before
    /// spawning (stdio, env). Processes left running are killed on drop.
    pub fn command(&self, role: Role, argv: &[&str]) -> Result<Command, Error> {
        self.state.command(role, argv)
    }

    /// Starts `argv` in `role`'s namespace without waiting for it to end,
    /// but returns only once it runs inside that namespace: `ip netns exec`
    /// enters it after the fork, and a teardown that listed the
    /// namespace's processes in between would miss it for good.
    pub fn spawn(&self, role: Role, argv: &[&str]) -> Result<Child, Error> {
        let mut child = self.command(role, argv)?.spawn().map_err(|e| {
            Error::Command(netns::CommandError {
                what: format!("start {} in {role:?}", argv.join(" ")),
                detail: e.to_string(),
            })
        })?;
        netns::wait_entered(&mut child, self.state.namespace(role)?);
        Ok(child)
    }

    pub fn impair(&self, wan: &str, imp: Impairment) -> Result<HopStatus, Error> {
        self.state.impair(wan, imp)
    }

    pub fn cut(&self, wan: &str) -> Result<HopStatus, Error> {
        self.state.cut(wan)
    }

    pub fn restore(&self, wan: &str) -> Result<HopStatus, Error> {
        self.state.restore(wan)
    }

    pub fn link(&self, wan: &str, up: bool) -> Result<(), Error> {
        self.state.link(wan, up)
    }

    pub fn hop_status(&self, wan: &str) -> Result<HopStatus, Error> {
        self.state.hop_status(wan)
    }

    pub fn hop_pid(&self, wan: &str) -> Result<u32, Error> {
        self.state.hop_pid(wan)
    }

    /// Tears down now and reports what could not be removed (empty = all gone).
    pub fn down(mut self) -> Vec<String> {
        let problems = topology::teardown(&self.state.plan.name.clone(), &mut self.children);
        self.children.clear();
        // Already torn down: make Drop's second teardown a no-op.
        self.state.plan.name.clear();
        problems
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if self.state.plan.name.is_empty() {
            return;
        }
        for problem in topology::teardown(&self.state.plan.name, &mut self.children) {
            eprintln!(
                "mwan-testbed: teardown of {}: {problem}",
                self.state.plan.name
            );
        }
    }
}

/// Removes testbeds of test processes that no longer exist (`t<pid>-<n>`).
pub fn remove_stale() {
    for name in topology::all_testbeds() {
        let Some(pid) = name
            .strip_prefix('t')
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, n)| n.parse::<u32>().ok().and(pid.parse::<u32>().ok()))
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            for problem in topology::teardown(&name, &mut []) {
                eprintln!("mwan-testbed: stale testbed {name}: {problem}");
            }
        }
    }
}

/// Why namespaces cannot be used here, if they cannot.
pub fn netns_unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root (network namespaces, veth, nftables)".into());
    }
    for tool in ["ip", "nft"] {
        if which(tool).is_none() {
            return Some(format!(
                "`{tool}` not found in PATH (install iproute2 and nftables)"
            ));
        }
    }
    let probe = std::thread::spawn(|| {
        // SAFETY: unshare on this short-lived thread only.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0 {
            None
        } else {
            Some(format!(
                "cannot create a network namespace: {}",
                io::Error::last_os_error()
            ))
        }
    });
    probe
        .join()
        .unwrap_or_else(|_| Some("namespace probe panicked".into()))
}

/// True when namespace tests can run. Otherwise: under `CI=true` panics
/// (a missing capability must fail loudly there); elsewhere prints why the
/// test is skipped and returns false.
pub fn require_netns() -> bool {
    match netns_unavailable() {
        None => true,
        Some(reason) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but network namespace tests cannot run: {reason}");
            }
            // Straight to fd 2, not eprintln!: the test harness captures
            // eprintln! of a passing test, and a skip must not look like a
            // silent pass. A failed write to stderr leaves nothing to tell.
            let line = format!("SKIPPED (not CI): network namespace test: {reason}\n");
            io::Write::write_all(&mut io::stderr(), line.as_bytes()).ok();
            false
        }
    }
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].iter().map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// CLOCK_MONOTONIC in microseconds: the clock mwan-track stamps its
/// samples with, so tests and benchmarks can compare times with them.
pub fn monotonic_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// Locates a workspace binary (`mwand`, `mwan-track`, `mwan-testbed`, ...):
/// `$MWAN_BIN_DIR`, then next to the running executable and its parent
/// (a test runs from `<target>/<profile>/deps/`). Build them first with
/// `cargo build --workspace --bins`.
pub fn find_binary(name: &str) -> Result<PathBuf, Error> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("MWAN_BIN_DIR") {
        dirs.push(PathBuf::from(dir));
    }
    if let Ok(exe) = std::env::current_exe() {
        let mut dir = exe.parent().map(Path::to_path_buf);
        for _ in 0..2 {
            if let Some(d) = dir {
                dirs.push(d.clone());
                dir = d.parent().map(Path::to_path_buf);
            }
        }
    }
    dirs.iter()
        .find_map(|d| applet_link(d, name).or_else(|| Some(d.join(name)).filter(|p| p.is_file())))
        .ok_or_else(|| {
            Error::Binary(format!(
                "binary '{name}' not found in {}: run `cargo build --workspace --bins` \
                 (same profile and target dir as the tests) or set MWAN_BIN_DIR",
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// The programs that are applets of the one `mwan` executable.
pub const APPLETS: [&str; 4] = ["mwand", "mwan-track", "mwanctl", "mwan3"];

/// `dir/name` as a link to `dir/mwan` when `name` is an applet and `dir`
/// holds `mwan` (cargo builds `mwan` only; `make build` makes the links,
/// this covers a plain `cargo test`). A stale `name` from the days of one
/// executable per program is replaced; the rename makes this safe with
/// tests running side by side.
fn applet_link(dir: &Path, name: &str) -> Option<PathBuf> {
    if !APPLETS.contains(&name) || !dir.join("mwan").is_file() {
        return None;
    }
    let link = dir.join(name);
    if std::fs::read_link(&link).is_ok_and(|target| target == Path::new("mwan")) {
        return Some(link);
    }
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    std::fs::remove_file(&tmp).ok();
    std::os::unix::fs::symlink("mwan", &tmp).ok()?;
    std::fs::rename(&tmp, &link).ok()?;
    Some(link)
}
