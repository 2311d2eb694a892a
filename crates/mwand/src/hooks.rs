//! User hooks, mwan3-compatible: on each state change run `/etc/mwan.user`
//! and `/etc/mwan3.user` (when present) with ACTION, INTERFACE and DEVICE in
//! the environment; for the tracker's four actions also
//! `/sbin/hotplug-call iface` with only those three, as mwan3track does, so
//! scripts in /etc/hotplug.d/iface see them (netifd sends ifup/ifdown there
//! itself). Started with fork/exec and reaped on SIGCHLD, never
//! waited for: a slow hook cannot stall the loop.
//!
//! Per interface, hooks run one at a time in the order of the changes
//! (`connecting` finishes before `connected` starts); different interfaces
//! run in parallel.

use mwan_core::tracker_control::LinkHook;
use std::collections::{BTreeMap, VecDeque};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Hooks waiting behind a running one, per interface. More means the
/// running one hangs: the oldest waiting is dropped (and logged) rather
/// than piling up work on a small router.
const MAX_WAITING: usize = 16;

/// A hook running longer than this is killed (its whole process group), so
/// one hung script cannot hold its interface's later hooks forever.
const HOOK_TIMEOUT: Duration = Duration::from_secs(60);

pub const DEFAULT_HOOKS: [&str; 2] = ["/etc/mwan.user", "/etc/mwan3.user"];
/// OpenWrt's runner of /etc/hotplug.d/<subsystem>/* scripts.
pub const HOTPLUG_CALL: &str = "/sbin/hotplug-call";

/// mwan3's hotplug ACTION values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Connected,
    Disconnected,
    Connecting,
    Disconnecting,
    Ifup,
    Ifdown,
}

impl From<LinkHook> for Action {
    fn from(hook: LinkHook) -> Self {
        match hook {
            LinkHook::Ifup => Action::Ifup,
            LinkHook::Ifdown => Action::Ifdown,
        }
    }
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Connected => "connected",
            Action::Disconnected => "disconnected",
            Action::Connecting => "connecting",
            Action::Disconnecting => "disconnecting",
            Action::Ifup => "ifup",
            Action::Ifdown => "ifdown",
        }
    }
}

/// One hook run to do: which script, for which change.
struct Job {
    path: PathBuf,
    /// hotplug-call: run `PATH iface` directly, in an empty environment.
    hotplug: bool,
    action: Action,
    device: String,
}

struct Running {
    child: Child,
    what: String,
    started: Instant,
    killed: bool,
}

/// One interface's hooks: the one running and those waiting, in order.
#[derive(Default)]
struct Lane {
    running: Option<Running>,
    waiting: VecDeque<Job>,
}

pub struct Hooks {
    paths: Vec<PathBuf>,
    hotplug_call: PathBuf,
    lanes: BTreeMap<String, Lane>,
    timeout: Duration,
}

impl Hooks {
    pub fn new(paths: Vec<PathBuf>, hotplug_call: PathBuf) -> Self {
        Self {
            paths,
            hotplug_call,
            lanes: BTreeMap::new(),
            timeout: HOOK_TIMEOUT,
        }
    }

    /// Queues the hooks for one change of `interface`; starts the first at
    /// once when none of that interface's is running.
    pub fn run(&mut self, action: Action, interface: &str, device: Option<&str>) {
        let lane = self.lanes.entry(interface.to_string()).or_default();
        let tracker_action = !matches!(action, Action::Ifup | Action::Ifdown);
        let hotplug = tracker_action.then_some(&self.hotplug_call);
        for (path, hotplug) in self
            .paths
            .iter()
            .map(|p| (p, false))
            .chain(hotplug.map(|p| (p, true)))
        {
            if !path.is_file() {
                continue;
            }
            if lane.waiting.len() >= MAX_WAITING {
                if let Some(old) = lane.waiting.pop_front() {
                    log::warn!(
                        "{MAX_WAITING} hooks of {interface} waiting (one hangs?): dropping {} {}",
                        old.path.display(),
                        old.action.as_str()
                    );
                }
            }
            lane.waiting.push_back(Job {
                path: path.clone(),
                hotplug,
                action,
                device: device.unwrap_or("").to_string(),
            });
        }
        start_next(interface, lane);
    }

    /// Reaps finished hooks and starts each interface's next one (SIGCHLD);
    /// kills hooks past their time (housekeeping calls this too).
    pub fn reap(&mut self) {
        let timeout = self.timeout;
        for (interface, lane) in &mut self.lanes {
            if let Some(r) = &mut lane.running {
                match r.child.try_wait() {
                    Ok(Some(status)) => {
                        if !status.success() {
                            log::info!("hook {} exited with {status}", r.what);
                        }
                        lane.running = None;
                    }
                    Ok(None) => {
                        if !r.killed && r.started.elapsed() > timeout {
                            log::warn!(
                                "hook {} still running after {} s: killing it",
                                r.what,
                                timeout.as_secs_f32()
                            );
                            kill_group(&r.child);
                            r.killed = true;
                        }
                    }
                    Err(e) => {
                        log::warn!("cannot check hook {}: {e}", r.what);
                        lane.running = None;
                    }
                }
            }
            start_next(interface, lane);
        }
        self.lanes
            .retain(|_, lane| lane.running.is_some() || !lane.waiting.is_empty());
    }
}

/// Starts the lane's next hook unless one is running.
fn start_next(interface: &str, lane: &mut Lane) {
    while lane.running.is_none() {
        let Some(job) = lane.waiting.pop_front() else {
            return;
        };
        let what = format!("{} {} {interface}", job.path.display(), job.action.as_str());
        // mwan3 sources its user file from a shell: run it through sh so a
        // file without the executable bit works as it did there. Its own
        // process group, so a timeout kills what it started too.
        let mut cmd = if job.hotplug {
            let mut cmd = Command::new(&job.path);
            cmd.arg("iface").env_clear();
            cmd
        } else {
            let mut cmd = Command::new("/bin/sh");
            cmd.arg(&job.path);
            cmd
        };
        let spawned = cmd
            .env("ACTION", job.action.as_str())
            .env("INTERFACE", interface)
            .env("DEVICE", &job.device)
            .stdin(Stdio::null())
            .process_group(0)
            .spawn();
        match spawned {
            Ok(child) => {
                log::debug!("hook {what}: pid {}", child.id());
                lane.running = Some(Running {
                    child,
                    what,
                    started: Instant::now(),
                    killed: false,
                });
            }
            Err(e) => log::warn!("cannot run hook {what}: {e}"),
        }
    }
}

fn kill_group(child: &Child) {
    let Ok(pid) = libc::pid_t::try_from(child.id()) else {
        return;
    };
    // SAFETY: plain kill(2) on the process group the hook leads.
    if unsafe { libc::kill(-pid, libc::SIGKILL) } != 0 {
        log::warn!(
            "cannot kill hook group {pid}: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static COUNTER: AtomicUsize = AtomicUsize::new(0);

    #[test]
    fn the_cores_link_hooks_are_mwan3s_ifup_and_ifdown() {
        assert_eq!(Action::from(LinkHook::Ifup).as_str(), "ifup");
        assert_eq!(Action::from(LinkHook::Ifdown).as_str(), "ifdown");
    }

    /// A hook script in its own dir: `slow` actions run `slow_cmd` first;
    /// every run appends "ACTION INTERFACE" to the log.
    struct Script {
        dir: PathBuf,
        log: PathBuf,
    }

    impl Script {
        fn new(slow: &str, slow_cmd: &str) -> Script {
            let dir = std::env::temp_dir().join(format!(
                "mwand-hooks-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let log = dir.join("log");
            std::fs::write(
                dir.join("hook"),
                format!(
                    "[ \"$ACTION\" = {slow} ] && {slow_cmd}\necho \"$ACTION $INTERFACE\" >> {}\n",
                    log.display()
                ),
            )
            .unwrap();
            Script { dir, log }
        }

        fn hooks(&self) -> Hooks {
            Hooks::new(
                vec![self.dir.join("hook")],
                self.dir.join("no-hotplug-call"),
            )
        }

        fn lines(&self) -> Vec<String> {
            std::fs::read_to_string(&self.log)
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect()
        }
    }

    impl Drop for Script {
        fn drop(&mut self) {
            if let Err(e) = std::fs::remove_dir_all(&self.dir) {
                eprintln!("cannot remove {}: {e}", self.dir.display());
            }
        }
    }

    /// Reaps as SIGCHLD would until every hook is done.
    fn run_out(h: &mut Hooks) {
        let end = Instant::now() + Duration::from_secs(20);
        while !h.lanes.is_empty() {
            assert!(Instant::now() < end, "hooks still running after 20 s");
            std::thread::sleep(Duration::from_millis(10));
            h.reap();
        }
    }

    #[test]
    fn one_interface_runs_its_hooks_in_order_others_in_parallel() {
        let s = Script::new("connecting", "sleep 0.5");
        let mut h = s.hooks();
        h.run(Action::Connecting, "wan1", Some("eth1"));
        h.run(Action::Connected, "wan1", Some("eth1"));
        h.run(Action::Disconnected, "wan2", Some("eth2"));
        run_out(&mut h);
        assert_eq!(
            s.lines(),
            ["disconnected wan2", "connecting wan1", "connected wan1"],
            "wan1 out of order, or wan2 waited for wan1"
        );
    }

    #[test]
    fn a_hung_hook_is_killed_and_the_next_one_runs() {
        let s = Script::new("connecting", "sleep 30");
        let mut h = s.hooks();
        h.timeout = Duration::from_millis(300);
        let started = Instant::now();
        h.run(Action::Connecting, "wan1", None);
        h.run(Action::Connected, "wan1", None);
        run_out(&mut h);
        assert_eq!(s.lines(), ["connected wan1"]);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn waiting_hooks_are_bounded_oldest_dropped() {
        let s = Script::new("connecting", "sleep 30");
        let mut h = s.hooks();
        h.run(Action::Connecting, "wan1", None);
        h.run(Action::Ifdown, "wan1", None);
        for _ in 0..MAX_WAITING {
            h.run(Action::Ifup, "wan1", None);
        }
        let lane = &h.lanes["wan1"];
        assert_eq!(lane.waiting.len(), MAX_WAITING);
        assert!(lane.waiting.iter().all(|j| j.action == Action::Ifup));
        // Long enough for each quick ifup hook even on a loaded machine
        // (zero killed some of them too), short against the sleep 30.
        h.timeout = Duration::from_secs(2);
        run_out(&mut h);
        assert_eq!(s.lines(), vec!["ifup wan1"; MAX_WAITING]);
    }

    /// A stand-in hotplug-call gets `iface` and only ACTION, INTERFACE and
    /// DEVICE, for the tracker's actions; ifup/ifdown are netifd's to send.
    #[test]
    fn hotplug_call_gets_the_trackers_actions_in_a_clean_environment() {
        let s = Script::new("none", "true");
        let hotplug = s.dir.join("hotplug-call");
        std::fs::write(
            &hotplug,
            format!(
                "#!/bin/sh\necho \"hotplug $1 $ACTION $INTERFACE $DEVICE ${{HOME:-nohome}}\" >> {}\n",
                s.log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(
            &hotplug,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let mut h = Hooks::new(vec![s.dir.join("hook")], hotplug);
        h.run(Action::Disconnecting, "wan1", Some("eth1"));
        h.run(Action::Ifdown, "wan1", Some("eth1"));
        run_out(&mut h);
        assert_eq!(
            s.lines(),
            [
                "disconnecting wan1",
                "hotplug iface disconnecting wan1 eth1 nohome",
                "ifdown wan1"
            ]
        );
    }
}
