//! Embedded supervisor: one mwan-track per enabled interface, respawned with
//! backoff, each restartable alone, and trackers left running by a previous
//! mwand adopted instead of duplicated.
//!
//! Adoption (docs/mwand.md, "Restart and adoption"): at start mwand scans
//! /proc for `mwan-track` processes whose command line names this run dir's
//! tracker socket. Each is recorded as adopted with its pid and waits up to
//! [`ADOPTION_GRACE_MS`] for its Hello; no tracker is spawned for its
//! interface meanwhile. Interfaces without one get a tracker at once. An
//! adopted tracker whose command line differs from what the config now asks
//! for is restarted; one that stays silent past the grace period is killed
//! and replaced.

use mwan_core::Millis;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// How long an adopted tracker may take to reconnect (its reconnect backoff
/// is bounded well below this) before it is presumed stuck and replaced.
pub const ADOPTION_GRACE_MS: Millis = 6_000;
const BACKOFF_FIRST_MS: Millis = 500;
const BACKOFF_MAX_MS: Millis = 30_000;
/// A tracker that ran this long counts as healthy: its backoff starts over.
const STABLE_RUN_MS: Millis = 60_000;

/// What the supervisor wants the loop to do for a tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// Respawn at this time (after backoff).
    SpawnAt(String, Millis),
    /// Check that an adopted tracker has said Hello by this time.
    AdoptionDeadline(String, Millis),
}

#[derive(Debug)]
struct Tracker {
    argv: Vec<String>,
    pid: Option<u32>,
    /// Present when we spawned it (we reap it); None when adopted.
    child: Option<Child>,
    started_at: Option<Millis>,
    restarts: u32,
    backoff_ms: Millis,
    /// Adopted and not yet heard from.
    awaiting_hello: bool,
}

/// The unprivileged user trackers run as (docs/tracker.md, "Privileges").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackerUser {
    pub uid: u32,
    pub gid: u32,
}

const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;

/// Capabilities a tracker with this command line needs: CAP_NET_RAW for
/// its raw/packet sockets and SO_BINDTODEVICE, CAP_NET_ADMIN only for the
/// fwmark (`--mark`: SO_MARK takes CAP_NET_RAW only from Linux 5.17, and
/// OpenWrt 23.05 runs 5.15).
pub fn tracker_capabilities(argv: &[String]) -> &'static [u32] {
    if argv.iter().any(|a| a == "--mark") {
        &[CAP_NET_RAW, CAP_NET_ADMIN]
    } else {
        &[CAP_NET_RAW]
    }
}

/// The tracker user: `name` (`--tracker-user`), else `mwan` when that user
/// exists, else `nobody`. None when mwand is not root (it cannot switch)
/// or the name is `root` (no drop, as before).
pub fn resolve_tracker_user(name: Option<&str>) -> Result<Option<TrackerUser>, String> {
    // SAFETY: geteuid has no failure mode.
    if unsafe { libc::geteuid() } != 0 || name == Some("root") {
        return Ok(None);
    }
    let lookup = |n: &str| {
        let c = std::ffi::CString::new(n).ok()?;
        // SAFETY: getpwnam with a NUL-terminated name; mwand is one thread
        // and copies the fields out before any other passwd call.
        let pw = unsafe { libc::getpwnam(c.as_ptr()) };
        // SAFETY: a non-null result points at a valid passwd entry.
        (!pw.is_null()).then(|| unsafe {
            TrackerUser {
                uid: (*pw).pw_uid,
                gid: (*pw).pw_gid,
            }
        })
    };
    match name {
        Some(n) => lookup(n)
            .map(Some)
            .ok_or_else(|| format!("--tracker-user: no user '{n}' in the password database")),
        None => Ok(lookup("mwan").or_else(|| lookup("nobody"))),
    }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn check(rc: libc::c_long) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// In the child between fork and exec (async-signal-safe calls only, no
/// allocation): keep `caps` in the bounding set and nothing else, switch
/// to `user` with no supplementary groups, and carry `caps` across exec as
/// ambient capabilities (the tracker binary has no file capabilities).
fn become_tracker_user(user: TrackerUser, caps: &[u32]) -> io::Result<()> {
    let mask: u64 = caps.iter().fold(0, |m, &c| m | 1 << c);
    // SAFETY: prctl, setgroups, setres[ug]id and capset with plain integers
    // and pointers to locals; none allocates.
    unsafe {
        for cap in 0..64u32 {
            if mask & (1 << cap) == 0
                && libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) != 0
            {
                // EINVAL: past the kernel's last capability.
                break;
            }
        }
        // Permitted capabilities survive the uid change.
        check(libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0).into())?;
        check(libc::setgroups(0, std::ptr::null()).into())?;
        check(libc::setresgid(user.gid, user.gid, user.gid).into())?;
        check(libc::setresuid(user.uid, user.uid, user.uid).into())?;
        let header = CapHeader {
            version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
            pid: 0,
        };
        let low = mask as u32;
        let high = (mask >> 32) as u32;
        let data = [
            CapData {
                effective: low,
                permitted: low,
                inheritable: low,
            },
            CapData {
                effective: high,
                permitted: high,
                inheritable: high,
            },
        ];
        check(libc::syscall(libc::SYS_capset, &header, data.as_ptr()))?;
        for &cap in caps {
            check(
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE,
                    cap as libc::c_ulong,
                    0,
                    0,
                )
                .into(),
            )?;
        }
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0).into())?;
    }
    Ok(())
}

pub struct Supervisor {
    binary: PathBuf,
    /// Who spawned trackers run as; None: as mwand (not root, or `root`).
    user: Option<TrackerUser>,
    trackers: BTreeMap<String, Tracker>,
    /// Trackers sent SIGTERM, reaped on a later SIGCHLD.
    stopping: Vec<Child>,
    /// When false (procd mode) the supervisor records pids but never spawns.
    pub spawning: bool,
}

/// A tracker found running at start: its pid and command line.
#[derive(Debug, Clone)]
pub struct Found {
    pub pid: u32,
    pub argv: Vec<String>,
}

/// Every `mwan-track` process whose command line mentions `socket`.
pub fn scan_running(socket: &Path) -> Vec<Found> {
    let needle = socket.to_string_lossy().into_owned();
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let argv: Vec<String> = raw
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        let is_tracker = argv
            .first()
            .is_some_and(|a0| Path::new(a0).file_name().is_some_and(|n| n == "mwan-track"));
        if is_tracker && argv.iter().any(|a| a == &needle) && is_alive(pid) {
            found.push(Found { pid, argv });
        }
    }
    found
}

/// True while `pid` exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// `pid` as kill(2) takes it, when it names one process other than init:
/// 0 and negatives name process groups (-1 every process), 1 is init.
pub fn signal_target(pid: u32) -> Option<libc::pid_t> {
    libc::pid_t::try_from(pid).ok().filter(|&p| p > 1)
}

fn signal(pid: u32, sig: i32) {
    let Some(target) = signal_target(pid) else {
        log::warn!("not signalling pid {pid}: not a single process");
        return;
    };
    // SAFETY: kill with a pid above 1 only signals that process.
    if unsafe { libc::kill(target, sig) } != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            log::warn!("cannot signal tracker pid {pid}: {e}");
        }
    }
}

impl Supervisor {
    pub fn new(binary: PathBuf, spawning: bool) -> Self {
        Self {
            binary,
            user: None,
            trackers: BTreeMap::new(),
            stopping: Vec::new(),
            spawning,
        }
    }

    /// Trackers spawned from now on run as `user` with only the
    /// capabilities their command line needs.
    pub fn set_user(&mut self, user: Option<TrackerUser>) {
        self.user = user;
    }

    pub fn user(&self) -> Option<TrackerUser> {
        self.user
    }

    /// Records a tracker found running at start; it is given the grace period
    /// to say Hello. A command line that no longer matches is restarted.
    pub fn adopt(
        &mut self,
        interface: &str,
        found: Found,
        want_argv: Vec<String>,
        now: Millis,
    ) -> Vec<Wake> {
        let matches = found.argv[1..] == want_argv[..];
        log::info!(
            "{interface}: found tracker pid {} from a previous mwand{}",
            found.pid,
            if matches {
                "; adopting it"
            } else {
                " with an outdated command line; restarting it"
            }
        );
        self.trackers.insert(
            interface.to_string(),
            Tracker {
                argv: want_argv,
                pid: Some(found.pid),
                child: None,
                started_at: Some(now),
                restarts: 0,
                backoff_ms: BACKOFF_FIRST_MS,
                awaiting_hello: true,
            },
        );
        if matches {
            vec![Wake::AdoptionDeadline(
                interface.to_string(),
                now + ADOPTION_GRACE_MS,
            )]
        } else {
            self.restart(interface, now)
        }
    }

    /// Ensures a tracker runs for `interface` with `argv`: starts one if
    /// there is none, restarts it if its command line changed, leaves it
    /// alone (same pid) otherwise.
    pub fn ensure(&mut self, interface: &str, argv: Vec<String>, now: Millis) -> Vec<Wake> {
        match self.trackers.get_mut(interface) {
            Some(t) if t.argv == argv => Vec::new(),
            Some(t) => {
                t.argv = argv;
                log::info!("{interface}: tracker settings changed; restarting it");
                self.restart(interface, now)
            }
            None => {
                self.trackers.insert(
                    interface.to_string(),
                    Tracker {
                        argv,
                        pid: None,
                        child: None,
                        started_at: None,
                        restarts: 0,
                        backoff_ms: BACKOFF_FIRST_MS,
                        awaiting_hello: false,
                    },
                );
                self.spawn(interface, now)
            }
        }
    }

    fn spawn(&mut self, interface: &str, now: Millis) -> Vec<Wake> {
        let Some(t) = self.trackers.get_mut(interface) else {
            return Vec::new();
        };
        if !self.spawning || t.pid.is_some() {
            return Vec::new();
        }
        let mut cmd = Command::new(&self.binary);
        cmd.args(&t.argv).stdin(Stdio::null());
        // Own process group: a Ctrl-C aimed at mwand's terminal must not
        // take the trackers down with it; they outlive a crashed mwand.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        if let Some(user) = self.user {
            let caps = tracker_capabilities(&t.argv);
            // SAFETY: the closure makes only async-signal-safe syscalls.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                    become_tracker_user(user, caps)
                });
            }
        }
        match cmd.spawn() {
            Ok(child) => {
                log::info!("{interface}: started tracker pid {}", child.id());
                t.pid = Some(child.id());
                t.child = Some(child);
                t.started_at = Some(now);
                t.awaiting_hello = false;
                Vec::new()
            }
            Err(e) => {
                log::error!(
                    "{interface}: cannot start {}: {e}; retrying in {} ms",
                    self.binary.display(),
                    t.backoff_ms
                );
                let at = now + t.backoff_ms;
                t.backoff_ms = (t.backoff_ms * 2).min(BACKOFF_MAX_MS);
                vec![Wake::SpawnAt(interface.to_string(), at)]
            }
        }
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Stops and immediately starts one tracker (mwanctl restart WAN).
    pub fn restart(&mut self, interface: &str, now: Millis) -> Vec<Wake> {
        self.restart_with(interface, libc::SIGTERM, now)
    }

    /// Replaces a hung tracker: SIGKILL, which also ends a stopped process.
    pub fn replace_hung(&mut self, interface: &str, now: Millis) -> Vec<Wake> {
        self.restart_with(interface, libc::SIGKILL, now)
    }

    fn restart_with(&mut self, interface: &str, sig: i32, now: Millis) -> Vec<Wake> {
        if let Some(t) = self.trackers.get_mut(interface) {
            Self::terminate(t, &mut self.stopping, self.spawning, sig);
            t.restarts += 1;
            t.backoff_ms = BACKOFF_FIRST_MS;
        }
        self.spawn(interface, now)
    }

    /// Sends SIGTERM; the child, if ours, is kept to be reaped on SIGCHLD
    /// rather than waited for here. Under procd nothing is signalled here:
    /// procd stops its instances when told through ubus.
    fn terminate(t: &mut Tracker, stopping: &mut Vec<Child>, spawning: bool, sig: i32) {
        if let Some(pid) = t.pid.take() {
            if spawning {
                signal(pid, sig);
            }
        }
        if let Some(child) = t.child.take() {
            stopping.push(child);
        }
        t.awaiting_hello = false;
    }

    /// Stops and forgets a tracker (interface removed or disabled).
    pub fn remove(&mut self, interface: &str) {
        if let Some(mut t) = self.trackers.remove(interface) {
            log::info!("{interface}: stopping its tracker");
            Self::terminate(&mut t, &mut self.stopping, self.spawning, libc::SIGTERM);
        }
    }

    /// Stops every tracker (clean stop of mwand).
    pub fn stop_all(&mut self) {
        let names: Vec<String> = self.trackers.keys().cloned().collect();
        for n in names {
            self.remove(&n);
        }
    }

    /// Reaps exited trackers (SIGCHLD); each is respawned after its backoff.
    pub fn reap(&mut self, now: Millis) -> Vec<Wake> {
        self.stopping
            .retain_mut(|c| matches!(c.try_wait(), Ok(None)));
        let mut wakes = Vec::new();
        for (name, t) in self.trackers.iter_mut() {
            let Some(child) = t.child.as_mut() else {
                continue;
            };
            match child.try_wait() {
                Ok(Some(status)) => {
                    log::warn!("{name}: tracker pid {} exited ({status})", child.id());
                    wakes.extend(Self::schedule_respawn(name, t, now));
                }
                Ok(None) => {}
                Err(e) => log::warn!("{name}: cannot check tracker: {e}"),
            }
        }
        wakes
    }

    fn schedule_respawn(name: &str, t: &mut Tracker, now: Millis) -> Vec<Wake> {
        if t.started_at
            .is_some_and(|s| now.saturating_sub(s) >= STABLE_RUN_MS)
        {
            t.backoff_ms = BACKOFF_FIRST_MS;
        }
        t.pid = None;
        t.child = None;
        t.restarts += 1;
        let at = now + t.backoff_ms;
        t.backoff_ms = (t.backoff_ms * 2).min(BACKOFF_MAX_MS);
        vec![Wake::SpawnAt(name.to_string(), at)]
    }

    /// Adopted trackers are not our children: SIGCHLD never tells of their
    /// death, so the loop checks them on its housekeeping tick.
    pub fn check_adopted(&mut self, now: Millis) -> Vec<Wake> {
        let mut wakes = Vec::new();
        for (name, t) in self.trackers.iter_mut() {
            if t.child.is_none() {
                if let Some(pid) = t.pid {
                    if !is_alive(pid) {
                        log::warn!("{name}: adopted tracker pid {pid} is gone");
                        wakes.extend(Self::schedule_respawn(name, t, now));
                    }
                }
            }
        }
        wakes
    }

    /// A timer from [`Wake::SpawnAt`] fired.
    pub fn spawn_due(&mut self, interface: &str, now: Millis) -> Vec<Wake> {
        self.spawn(interface, now)
    }

    /// A timer from [`Wake::AdoptionDeadline`] fired.
    pub fn adoption_due(&mut self, interface: &str, now: Millis) -> Vec<Wake> {
        match self.trackers.get(interface) {
            Some(t) if t.awaiting_hello => {
                log::warn!("{interface}: adopted tracker stayed silent; replacing it");
                self.restart(interface, now)
            }
            _ => Vec::new(),
        }
    }

    /// A tracker said Hello. `peer` is the pid the kernel gives for the
    /// connection (SO_PEERCRED), `claimed` the one the Hello names. Taken
    /// only from the process we run for that interface (spawned, adopted or,
    /// under procd, reported by procd); under procd a new pid is taken
    /// while the recorded one is gone or unknown (procd restarted it), and
    /// counted as a restart. Refused: the reason, for the log; nobody is
    /// signalled for a refused Hello.
    ///
    /// `started_at` is the tracker's own start time (its Hello, same
    /// monotonic clock): an adopted tracker's uptime counts from there.
    pub fn hello(
        &mut self,
        interface: &str,
        peer: Option<u32>,
        claimed: u32,
        started_at: Millis,
    ) -> Result<(), String> {
        let Some(pid) = peer else {
            return Err("its pid is unknown (another pid namespace?)".into());
        };
        if pid != claimed {
            return Err(format!("it claims pid {claimed}"));
        }
        let spawning = self.spawning;
        let Some(t) = self.trackers.get_mut(interface) else {
            return Err("no tracker runs for that interface".into());
        };
        match t.pid {
            Some(p) if p == pid => {
                t.awaiting_hello = false;
                t.started_at = Some(started_at);
                Ok(())
            }
            Some(p) if !spawning && is_alive(p) => Err(format!("procd runs pid {p} for it")),
            _ if !spawning => {
                Self::record(t, Some(pid), started_at);
                Ok(())
            }
            Some(p) => Err(format!("mwand runs pid {p} for it")),
            None => Err("mwand runs no tracker for it now".into()),
        }
    }

    fn record(t: &mut Tracker, pid: Option<u32>, now: Millis) {
        if pid.is_some() && pid != t.pid {
            if t.pid.is_some() || t.started_at.is_some() {
                t.restarts += 1;
            }
            t.started_at = Some(now);
        }
        t.pid = pid;
        t.awaiting_hello = false;
    }

    /// procd reported the pid of a tracker it runs (None: not running).
    pub fn record_pid(&mut self, interface: &str, pid: Option<u32>, now: Millis) {
        if let Some(t) = self.trackers.get_mut(interface) {
            if t.pid != pid {
                Self::record(t, pid, now);
            }
        }
    }

    pub fn pid(&self, interface: &str) -> Option<u32> {
        self.trackers.get(interface).and_then(|t| t.pid)
    }

    pub fn restarts(&self, interface: &str) -> u32 {
        self.trackers.get(interface).map_or(0, |t| t.restarts)
    }

    pub fn started_at(&self, interface: &str) -> Option<Millis> {
        self.trackers
            .get(interface)
            .filter(|t| t.pid.is_some())
            .and_then(|t| t.started_at)
    }

    pub fn supervised(&self) -> Vec<String> {
        self.trackers.keys().cloned().collect()
    }
}

/// Stops a process that claims to be a tracker but is not the one we run.
pub fn stop_stray(pid: u32) {
    signal(pid, libc::SIGTERM);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_is_alive_and_a_free_pid_is_not() {
        assert!(is_alive(std::process::id()));
        assert!(!is_alive(u32::MAX / 2));
    }

    #[test]
    fn procd_mode_takes_any_tracker_of_a_wanted_interface_and_counts_restarts() {
        let mut s = Supervisor::new(PathBuf::from("/nonexistent/mwan-track"), false);
        assert!(s
            .ensure("wan1", vec!["--interface".into(), "wan1".into()], 0)
            .is_empty());
        assert_eq!(s.pid("wan1"), None, "procd mode never spawns");
        // Pids no process has: procd's earlier instance is gone.
        let (first, second) = (u32::MAX / 2 - 1, u32::MAX / 2 - 2);
        assert!(s.hello("wan1", Some(first), first, 10).is_ok());
        assert_eq!((s.pid("wan1"), s.restarts("wan1")), (Some(first), 0));
        assert!(
            s.hello("wan1", Some(second), second, 20).is_ok(),
            "procd restarted it"
        );
        assert_eq!((s.pid("wan1"), s.restarts("wan1")), (Some(second), 1));
        assert!(
            s.hello("wan9", Some(300), 300, 30).is_err(),
            "not a wanted interface"
        );
    }

    #[test]
    fn embedded_mode_refuses_a_second_tracker_and_backs_off_failed_spawns() {
        let mut s = Supervisor::new(PathBuf::from("/nonexistent/mwan-track"), true);
        let wakes = s.ensure("wan1", vec![], 1_000);
        assert_eq!(wakes, vec![Wake::SpawnAt("wan1".into(), 1_500)]);
        let wakes = s.spawn_due("wan1", 1_500);
        assert_eq!(
            wakes,
            vec![Wake::SpawnAt("wan1".into(), 2_500)],
            "backoff doubles"
        );
        assert!(
            s.hello("wan1", Some(4242), 4242, 2_000).is_err(),
            "not the process we run"
        );
    }

    #[test]
    fn a_hello_is_judged_by_the_connecting_pid_not_the_claimed_one() {
        let mut s = Supervisor::new(PathBuf::from("/nonexistent/mwan-track"), false);
        s.ensure("wan1", vec![], 0);
        let me = std::process::id();
        s.record_pid("wan1", Some(me), 0);
        // Another process claiming the live tracker's pid.
        let err = s.hello("wan1", Some(me + 1), me, 10).unwrap_err();
        assert!(err.contains(&format!("claims pid {me}")), "{err}");
        // Honest about its own pid, but procd runs another, live one.
        assert!(s.hello("wan1", Some(me + 1), me + 1, 10).is_err());
        assert!(s.hello("wan1", None, me, 10).is_err());
        assert!(s.hello("wan1", Some(me), me, 10).is_ok());
        assert_eq!(s.pid("wan1"), Some(me));
    }

    #[test]
    fn only_single_processes_other_than_init_are_signalled() {
        for pid in [0, 1, 1 << 31, u32::MAX] {
            assert_eq!(signal_target(pid), None, "pid {pid}");
        }
        assert_eq!(signal_target(2), Some(2));
        assert_eq!(signal_target(i32::MAX as u32), Some(i32::MAX));
    }

    #[test]
    fn scan_finds_nothing_for_a_socket_nobody_uses() {
        assert!(scan_running(Path::new("/nonexistent/run/track.sock")).is_empty());
    }
}
