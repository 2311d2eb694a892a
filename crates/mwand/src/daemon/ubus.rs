//! The daemon's ubus side: the procd supervisor mode and the events of the
//! ubus agent (calls of the `mwan`/`mwan3` objects, netifd, procd).

use super::Daemon;
use crate::clock::now_ms;
use crate::hooks::Action;
use mwan_core::Millis;
use mwan_ubus::agent::AgentEvent;
use std::collections::BTreeMap;

impl Daemon {
    /// procd mode: procd runs exactly the wanted trackers (same argv as the
    /// embedded supervisor, program first); unchanged ones keep their pid.
    pub(super) fn sync_procd_trackers(&mut self, now: Millis) {
        if !self.facts_ready {
            // Wanting none now would stop the trackers procd kept running.
            return;
        }
        let mut wanted = BTreeMap::new();
        for name in self.supervisor.supervised() {
            if self
                .wans
                .get(&name)
                .and_then(|w| self.tracker_argv(w))
                .is_none()
            {
                self.supervisor.remove(&name);
            }
        }
        let names: Vec<String> = self.wans.keys().cloned().collect();
        for name in names {
            if let Some(argv) = self.wans.get(&name).and_then(|w| self.tracker_argv(w)) {
                let wakes = self.supervisor.ensure(&name, argv.clone(), now);
                self.arm_wakes(wakes);
                let mut full = vec![self.supervisor.binary().display().to_string()];
                full.extend(argv);
                wanted.insert(name, full);
            }
        }
        if let Some(u) = self.ubus.as_mut() {
            let evs = u.set_trackers(self.poll.registry(), &wanted);
            self.on_ubus_events(evs);
        }
    }

    pub(super) fn on_ubus(&mut self, event: &mio::event::Event) {
        let Some(u) = self.ubus.as_mut() else { return };
        let evs = u.ready(self.poll.registry(), event);
        self.on_ubus_events(evs);
    }

    pub(super) fn on_ubus_events(&mut self, events: Vec<AgentEvent>) {
        let now = now_ms();
        for ev in events {
            match ev {
                AgentEvent::Call { call, request } => {
                    let response = self.handle_request(request);
                    if let Some(u) = self.ubus.as_mut() {
                        let evs = u.answer(self.poll.registry(), call, &response);
                        self.pending_ubus.extend(evs);
                    }
                }
                AgentEvent::Mwan3Status {
                    call,
                    section,
                    interface,
                } => {
                    let status = self.status(now);
                    let connected = self.dataplane.connected();
                    let wans = &self.wans;
                    let track = |name: &str| {
                        wans.get(name)
                            .map_or(Default::default(), |w: &crate::wan::Wan| w.mwan3_track(now))
                    };
                    if let Some(u) = self.ubus.as_mut() {
                        let evs = u.answer_mwan3(
                            self.poll.registry(),
                            call,
                            section,
                            interface,
                            &status,
                            &connected,
                            &self.config,
                            &track,
                        );
                        self.pending_ubus.extend(evs);
                    }
                }
                AgentEvent::Interface(state) => {
                    self.netifd_changed |= self.automatic_uci.is_some();
                    let Some(wan) = self.wans.get_mut(&state.name) else {
                        continue;
                    };
                    let moved = wan.set_netifd(&state);
                    // The first plan may have been waiting for this.
                    self.dirty |= !self.facts_ready;
                    self.dataplane.refresh();
                    let facts = self.dataplane.facts(wan.device());
                    if wan.learn_facts(facts) || moved {
                        log::info!(
                            "{}: netifd reports new device, addresses or routes",
                            state.name
                        );
                        self.dirty = true;
                        self.sync_trackers(now);
                    }
                }
                AgentEvent::InterfaceAction(ev) => {
                    let Some(wan) = self.wans.get_mut(&ev.interface) else {
                        // Not a WAN (yet): automatic mode reads netifd's
                        // list again, without waiting for its answer.
                        if let Some(u) = self.ubus.as_mut().filter(|_| self.automatic_uci.is_some())
                        {
                            let evs = u.request_dump(self.poll.registry());
                            self.pending_ubus.extend(evs);
                        }
                        continue;
                    };
                    let action = if ev.up { Action::Ifup } else { Action::Ifdown };
                    let device = wan.device().map(str::to_string);
                    let changes = wan.on_carrier(ev.up, now);
                    self.hooks.run(action, &ev.interface, device.as_deref());
                    self.on_state_changes(&ev.interface, changes, now);
                }
                AgentEvent::TrackerPid { wan, pid } => self.supervisor.record_pid(&wan, pid, now),
                AgentEvent::TrackerStarted(wan) => log::info!("{wan}: procd started its tracker"),
                AgentEvent::TrackerStopped(wan) => {
                    log::info!("{wan}: procd reports its tracker stopped")
                }
                AgentEvent::ProcdPresent(false) if !self.supervisor.spawning => {
                    log::warn!("procd's service object is not on ubus: running the trackers here (embedded)");
                    self.supervisor.spawning = true;
                    self.adopt_running_trackers(now);
                    self.sync_trackers(now);
                }
                AgentEvent::Connected => {
                    log::info!("ubus connected");
                    if !self.supervisor.spawning {
                        self.sync_procd_trackers(now);
                    }
                }
                AgentEvent::Disconnected => log::warn!("ubus connection lost; reconnecting"),
                AgentEvent::ProcdPresent(_) => {}
                AgentEvent::NetifdListed => {
                    self.netifd_listed = true;
                    self.dirty |= !self.facts_ready;
                    self.netifd_changed |= self.automatic_uci.is_some();
                }
            }
        }
    }
}
