//! Time and the links: WAN state changes (logs, hooks, a new decision),
//! carrier and address events from rtnetlink, and the timers (housekeeping,
//! respawns, adoption deadlines, health deadlines).

use super::{Daemon, Timer, HOUSEKEEPING_MS};
use crate::clock::now_ms;
use crate::wan::{Change, Wan};
use mwan_core::tracker_control::carrier_hook;
use mwan_core::Millis;

impl Daemon {
    pub(super) fn on_state_changes(&mut self, name: &str, changes: Vec<Change>, now: Millis) {
        if changes.is_empty() {
            return;
        }
        let device = self
            .wans
            .get(name)
            .and_then(|w| w.device().map(str::to_string));
        for c in changes {
            log::info!("{name}: {} -> {}", c.from, c.to);
            self.record_state_change(name, &c, now);
            if let Some(action) = c.hook_action() {
                self.hooks.run(action, name, device.as_deref());
            }
        }
        self.dirty = true;
        // The new verdict survives a restart (saved.rs).
        self.save_state();
    }

    pub(super) fn on_netlink(&mut self) {
        let now = now_ms();
        let events = self.dataplane.read_events();
        for ev in events {
            let Some(wan) = self
                .wans
                .values_mut()
                .find(|w| w.device() == Some(ev.device.as_str()))
            else {
                continue;
            };
            let name = wan.config().name.clone();
            let mut changes = Vec::new();
            if let Some(up) = ev.carrier {
                if let Some(hook) = carrier_hook(wan.facts().carrier, up) {
                    self.hooks.run(hook.into(), &name, wan.device());
                }
                changes.extend(wan.on_carrier(up, now));
            }
            let facts_changed = wan.learn_facts(self.dataplane.facts(wan.device()));
            self.on_state_changes(&name, changes, now);
            if facts_changed {
                log::info!("{name}: addresses or gateway changed");
                self.dirty = true;
                self.sync_trackers(now);
            }
        }
    }

    /// Round deadlines decide a cut as soon as the probes are overdue, not
    /// at the next housekeeping pass.
    pub(super) fn arm_health(&mut self, name: &str) {
        let key = Timer::Health(name.to_string());
        match self.wans.get(name).and_then(Wan::next_deadline) {
            Some(at) => self.timers.arm(key, at),
            None => self.timers.cancel(&key),
        }
    }

    pub(super) fn on_timer(&mut self, t: Timer, now: Millis) {
        match t {
            Timer::Housekeeping => {
                self.timers.arm(Timer::Housekeeping, now + HOUSEKEEPING_MS);
                // Hook timeouts (a hung hook sends no SIGCHLD).
                self.hooks.reap();
                self.close_idle();
                self.restore_sockets_if_gone();
                self.replace_hung_trackers(now);
                let wakes = self.supervisor.check_adopted(now);
                self.arm_wakes(wakes);
                let names: Vec<String> = self.wans.keys().cloned().collect();
                for name in names {
                    let changes = match self.wans.get_mut(&name) {
                        Some(w) => w.tick(now),
                        None => continue,
                    };
                    self.on_state_changes(&name, changes, now);
                }
                self.record_history(now);
                self.dataplane.retry_flushes(now);
                if self.dataplane.needs_reconcile() {
                    self.dirty = true;
                }
            }
            Timer::Spawn(name) => {
                let wakes = self.supervisor.spawn_due(&name, now);
                self.arm_wakes(wakes);
            }
            Timer::Adoption(name) => {
                let wakes = self.supervisor.adoption_due(&name, now);
                self.arm_wakes(wakes);
            }
            Timer::FirstApply => {
                self.dirty = true;
                self.netifd_changed |= self.automatic_waits;
            }
            Timer::SaveState => self.save_state(),
            Timer::Health(name) => {
                let changes = match self.wans.get_mut(&name) {
                    Some(w) => w.tick(now),
                    None => return,
                };
                self.on_state_changes(&name, changes, now);
                self.arm_health(&name);
            }
        }
    }
}
