//! User hooks, mwan3-compatible: on each state change run `/etc/mwan.user`
//! and `/etc/mwan3.user` (when present) with ACTION, INTERFACE and DEVICE in
//! the environment. Started with fork/exec and reaped on SIGCHLD, never
//! waited for: a slow hook cannot stall the loop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// More hooks than this still running means they hang: new ones are skipped
/// (and logged) rather than piling up processes on a small router.
const MAX_RUNNING: usize = 16;

pub const DEFAULT_HOOKS: [&str; 2] = ["/etc/mwan.user", "/etc/mwan3.user"];

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

pub struct Hooks {
    paths: Vec<PathBuf>,
    running: Vec<Child>,
}

impl Hooks {
    pub fn new(paths: Vec<PathBuf>) -> Self {
        Self {
            paths,
            running: Vec::new(),
        }
    }

    pub fn run(&mut self, action: Action, interface: &str, device: Option<&str>) {
        for path in &self.paths {
            if !path.is_file() {
                continue;
            }
            if self.running.len() >= MAX_RUNNING {
                log::warn!(
                    "{} hooks still running; skipping {} {action:?} {interface}",
                    self.running.len(),
                    path.display()
                );
                continue;
            }
            // mwan3 sources its user file from a shell: run it through sh so
            // a file without the executable bit works as it did there.
            let spawned = Command::new("/bin/sh")
                .arg(path)
                .env("ACTION", action.as_str())
                .env("INTERFACE", interface)
                .env("DEVICE", device.unwrap_or(""))
                .stdin(Stdio::null())
                .spawn();
            match spawned {
                Ok(child) => {
                    log::debug!(
                        "hook {} {} {interface}: pid {}",
                        path.display(),
                        action.as_str(),
                        child.id()
                    );
                    self.running.push(child);
                }
                Err(e) => log::warn!("cannot run hook {}: {e}", path.display()),
            }
        }
    }

    /// Reaps finished hooks (SIGCHLD).
    pub fn reap(&mut self) {
        self.running.retain_mut(|c| match c.try_wait() {
            Ok(Some(status)) => {
                if !status.success() {
                    log::info!("hook pid {} exited with {status}", c.id());
                }
                false
            }
            Ok(None) => true,
            Err(e) => {
                log::warn!("cannot check hook pid {}: {e}", c.id());
                false
            }
        });
    }
}
