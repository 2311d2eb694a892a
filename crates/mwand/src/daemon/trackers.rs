//! The trackers as processes: which WANs get one and with what command
//! line, adopting those a previous mwand left running, and replacing hung
//! ones (the core decides which are hung; this performs the remedy).

use super::{Daemon, Timer};
use crate::supervisor::{self, Wake};
use crate::tracker_cmd::{self, TrackerFacts};
use crate::wan::Wan;
use crate::Options;
use mwan_core::tracker_control::{hung_trackers, Remedy, Supervision};
use mwan_core::Millis;
use std::path::PathBuf;

pub(super) fn tracker_binary(opts: &Options) -> PathBuf {
    if let Some(p) = &opts.tracker_bin {
        return p.clone();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("mwan-track")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("mwan-track"))
}

impl Daemon {
    pub(super) fn tracker_argv(&self, wan: &Wan) -> Option<Vec<String>> {
        let facts = TrackerFacts {
            device: wan.device().map(str::to_string),
            mark: self.dataplane.tracker_mark(&wan.config().name),
            source: wan.source(),
            gateway: wan.gateway(),
        };
        let mut argv = tracker_cmd::argv(
            wan.config(),
            &facts,
            &self.track_path,
            wan.config().interval,
            wan.config().timeout,
        )?;
        // procd starts trackers as root: its `user` would drop every
        // capability (it applies `capabilities` only through ujail), so the
        // tracker switches user itself, keeping what it needs.
        if let Some(u) = self.supervisor.user().filter(|_| !self.supervisor.spawning) {
            argv.extend(["--user".into(), format!("{}:{}", u.uid, u.gid)]);
        }
        Some(argv)
    }

    pub(super) fn adopt_running_trackers(&mut self, now: Millis) {
        if !self.facts_ready {
            // Without its WAN's facts a tracker looks unwanted: adopted
            // once they are known (decide_and_apply).
            return;
        }
        for found in supervisor::scan_running(&self.track_path) {
            let name = found
                .argv
                .windows(2)
                .find(|w| w[0] == "--interface")
                .map(|w| w[1].clone());
            let want = name
                .as_ref()
                .and_then(|n| self.wans.get(n))
                .and_then(|w| self.tracker_argv(w));
            match (name, want) {
                (Some(name), Some(want)) if self.supervisor.pid(&name).is_none() => {
                    let wakes = self.supervisor.adopt(&name, found, want, now);
                    self.arm_wakes(wakes);
                }
                (name, _) => {
                    log::info!(
                        "stopping tracker pid {} ({}): not wanted by this config",
                        found.pid,
                        name.as_deref().unwrap_or("?")
                    );
                    supervisor::stop_stray(found.pid);
                }
            }
        }
    }

    /// Ensures each enabled, trackable WAN has its tracker with the right
    /// command line (same pid when nothing changed) and no other runs.
    pub(super) fn sync_trackers(&mut self, now: Millis) {
        if !self.facts_ready {
            return;
        }
        if !self.supervisor.spawning {
            self.sync_procd_trackers(now);
            return;
        }
        let mut wakes = Vec::new();
        for name in self.supervisor.supervised() {
            let wanted = self.wans.get(&name).and_then(|w| self.tracker_argv(w));
            if wanted.is_none() {
                self.supervisor.remove(&name);
            }
        }
        let names: Vec<String> = self.wans.keys().cloned().collect();
        for name in names {
            if let Some(argv) = self.wans.get(&name).and_then(|w| self.tracker_argv(w)) {
                wakes.extend(self.supervisor.ensure(&name, argv, now));
            }
        }
        self.arm_wakes(wakes);
    }

    pub(super) fn arm_wakes(&mut self, wakes: Vec<Wake>) {
        for w in wakes {
            match w {
                Wake::SpawnAt(name, at) => self.timers.arm(Timer::Spawn(name), at),
                Wake::AdoptionDeadline(name, at) => self.timers.arm(Timer::Adoption(name), at),
            }
        }
    }

    /// Replaces the trackers the core finds hung (silent past their WAN's
    /// silence limit, `mwan_core::tracker_control::hung_trackers`): their
    /// connection is dropped, their WAN told, then the remedy performed.
    ///
    /// A late loop (a long reload, thousands of WANs) must not pass for
    /// silent trackers: what they sent meanwhile is read before judging.
    pub(super) fn replace_hung_trackers(&mut self, now: Millis) {
        let supervision = if self.supervisor.spawning {
            Supervision::Embedded
        } else {
            Supervision::Procd
        };
        let hung_now = |d: &Self| {
            let contacts = d
                .conns
                .tracker_contacts(|name| d.wans.get(name).map(Wan::silence_limit));
            hung_trackers(&contacts, supervision, now)
        };
        if hung_now(self).is_empty() {
            return;
        }
        self.read_trackers();
        for hung in hung_now(self) {
            let name = hung.interface;
            log::warn!(
                "{name}: tracker silent past its silence limit ({} ms); replacing it",
                hung.silent_ms
            );
            self.drop_trackers_of(&name);
            if let Some(wan) = self.wans.get_mut(&name) {
                wan.tracker_disconnected();
            }
            match hung.remedy {
                Remedy::Respawn => {
                    let wakes = self.supervisor.replace_hung(&name, now);
                    self.arm_wakes(wakes);
                }
                Remedy::ProcdRestart => {
                    if let Some(u) = self.ubus.as_mut() {
                        u.restart_tracker(self.poll.registry(), &name);
                    }
                }
            }
        }
    }

    /// Drops every connection of `name`'s tracker (counted).
    pub(super) fn drop_trackers_of(&mut self, name: &str) {
        for mut conn in self.conns.remove_trackers_of(name) {
            self.loop_counters.dropped_tracker_peers += 1;
            if let Err(e) = self.poll.registry().deregister(&mut conn.stream) {
                log::debug!("deregister: {e}");
            }
        }
    }
}
