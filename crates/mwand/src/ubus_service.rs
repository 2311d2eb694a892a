//! mwand's ubus side (docs/ubus.md, "Wiring into mwand"): one
//! [`Agent`] in the event loop serving the `mwan` and `mwan3` objects,
//! announcing `mwan.interface` events, following netifd and, in procd mode,
//! keeping procd's `mwan-track` service equal to the wanted trackers.
//!
//! The daemon matches on the returned [`AgentEvent`]s: `Call` goes through
//! `handle_request` and back with [`UbusService::answer`]; `Mwan3Status`
//! with [`UbusService::answer_mwan3`]; the rest are facts.

use crate::daemon::tokens::UBUS;
use mio::Registry;
use mwan_core::config::Config;
use mwan_core::health::Mwan3Track;
use mwan_proto::control::{InterfaceStatus, Response, Status};
use mwan_ubus::agent::{self, Agent, AgentEvent, PendingCall};
use mwan_ubus::luci::{self, InterfaceExtra};
use mwan_ubus::netifd::InterfaceState;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a clean shutdown waits for procd to acknowledge the removal
/// of the trackers.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

pub struct UbusService {
    agent: Agent,
    socket: PathBuf,
    supervise: bool,
    /// Last announced state per interface, to send events on changes only.
    announced: BTreeMap<String, String>,
    /// netifd's latest view per interface (for mwan3's `up`/`uptime`),
    /// and when it came: its `uptime` grows from then on.
    netifd: BTreeMap<String, (InterfaceState, Instant)>,
}

impl UbusService {
    /// `supervise`: procd runs the trackers (mwand never spawns them).
    pub fn new(socket: &Path, supervise: bool) -> Result<UbusService, String> {
        let agent = Agent::new(socket, UBUS, supervise)
            .map_err(|e| format!("ubus {}: {e}", socket.display()))?;
        Ok(UbusService {
            agent,
            socket: socket.to_path_buf(),
            supervise,
            announced: BTreeMap::new(),
            netifd: BTreeMap::new(),
        })
    }

    pub fn supervises_trackers(&self) -> bool {
        self.supervise
    }

    pub fn is_connected(&self) -> bool {
        self.agent.is_connected()
    }

    /// netifd's latest status of `interface`, if it told us.
    pub fn netifd_state(&self, interface: &str) -> Option<&InterfaceState> {
        self.netifd.get(interface).map(|(st, _)| st)
    }

    /// Every interface netifd listed, as it last told us.
    pub fn netifd_states(&self) -> impl Iterator<Item = &InterfaceState> {
        self.netifd.values().map(|(st, _)| st)
    }

    /// Asks netifd for every interface's status again (answered later as
    /// `Interface` events, then `NetifdListed`).
    pub fn request_dump(&mut self, registry: &Registry) -> Vec<AgentEvent> {
        self.agent.request_dump();
        let events = self.agent.flush(registry, Instant::now());
        self.note(events)
    }

    fn note(&mut self, events: Vec<AgentEvent>) -> Vec<AgentEvent> {
        self.note_at(events, Instant::now())
    }

    fn note_at(&mut self, events: Vec<AgentEvent>, now: Instant) -> Vec<AgentEvent> {
        for (at, e) in events.iter().enumerate() {
            match e {
                AgentEvent::Interface(st) => {
                    self.netifd.insert(st.name.clone(), (st.clone(), now));
                }
                // The dump's own Interface events come just before: an
                // interface it does not list is gone (PPPoE's `wan_6`).
                AgentEvent::NetifdListed => {
                    let mut listed = BTreeMap::new();
                    for e in &events[..at] {
                        if let AgentEvent::Interface(st) = e {
                            listed.insert(st.name.clone(), (st.clone(), now));
                        }
                    }
                    self.netifd = listed;
                }
                // A new connection: announce every state afresh on the next pass.
                AgentEvent::Connected => self.announced.clear(),
                _ => {}
            }
        }
        events
    }

    pub fn start(&mut self, registry: &Registry) -> Vec<AgentEvent> {
        let events = self.agent.start(registry, Instant::now());
        self.note(events)
    }

    /// Readiness on [`UBUS`].
    pub fn ready(&mut self, registry: &Registry, event: &mio::event::Event) -> Vec<AgentEvent> {
        let events = self.agent.ready(registry, event, Instant::now());
        self.note(events)
    }

    /// When the loop must wake up for ubus (reconnect, request timeouts).
    pub fn timeout(&self) -> Option<Duration> {
        self.agent.next_timeout(Instant::now())
    }

    /// Call after every poll (cheap when nothing is due).
    pub fn on_timeout(&mut self, registry: &Registry) -> Vec<AgentEvent> {
        let events = self.agent.on_timeout(registry, Instant::now());
        self.note(events)
    }

    pub fn answer(
        &mut self,
        registry: &Registry,
        call: PendingCall,
        response: &Response,
    ) -> Vec<AgentEvent> {
        let events = self.agent.reply(registry, call, response, Instant::now());
        self.note(events)
    }

    /// Answers `mwan3 status` in mwan3's shape (docs/ubus.md).
    #[allow(clippy::too_many_arguments)]
    pub fn answer_mwan3(
        &mut self,
        registry: &Registry,
        call: PendingCall,
        section: Option<String>,
        interface: Option<String>,
        status: &Status,
        connected: &[String],
        config: &Config,
        track: &dyn Fn(&str) -> Mwan3Track,
    ) -> Vec<AgentEvent> {
        let mut extras = self.mwan3_extras(config, Instant::now());
        for (name, extra) in extras.iter_mut() {
            extra.track = track(name);
        }
        let body = luci::status(
            status,
            connected,
            &extras,
            section.as_deref(),
            interface.as_deref(),
        );
        let events = self.agent.reply_mwan3(registry, call, body, Instant::now());
        self.note(events)
    }

    /// What mwan3's object reports from the config and netifd. `uptime` is
    /// netifd's at the time it told us plus the time since (netifd counts
    /// from the same ifup, and mwan3's object asks netifd on every call).
    fn mwan3_extras(&self, config: &Config, now: Instant) -> BTreeMap<String, InterfaceExtra> {
        mwan_core::sort::btree_map(config.interfaces.iter().map(|i| {
            let netifd = self.netifd.get(&i.name);
            let extra = InterfaceExtra {
                enabled: Some(i.enabled),
                netifd_up: netifd.map(|(n, _)| n.up),
                netifd_uptime_s: netifd.and_then(|(n, seen)| {
                    let since = now.saturating_duration_since(*seen).as_secs();
                    n.uptime_s.map(|u| u64::from(u) + since)
                }),
                track_ips: i.track_ip.clone(),
                ..InterfaceExtra::default()
            };
            (i.name.clone(), extra)
        }))
    }

    /// Sends `mwan.interface` for every interface whose state differs from
    /// the last one announced (call after each decision pass).
    pub fn announce_changes(
        &mut self,
        registry: &Registry,
        interfaces: &[InterfaceStatus],
    ) -> Vec<AgentEvent> {
        if !self.agent.is_connected() {
            return Vec::new();
        }
        for i in interfaces {
            let old = self.announced.insert(i.name.clone(), i.state.clone());
            match old {
                Some(old) if old == i.state => {}
                // First sight after (re)connect: an event with old = new would
                // be noise for listeners; they get the state from `status`.
                None => {}
                Some(old) => self.agent.announce(&old, i),
            }
        }
        self.announced
            .retain(|name, _| interfaces.iter().any(|i| &i.name == name));
        let events = self.agent.flush(registry, Instant::now());
        self.note(events)
    }

    /// Follows netifd's `interface.update` for every configured interface.
    pub fn follow(&mut self, registry: &Registry, config: &Config) -> Vec<AgentEvent> {
        self.agent
            .follow_interfaces(config.interfaces.iter().map(|i| i.name.as_str()));
        let events = self.agent.flush(registry, Instant::now());
        self.note(events)
    }

    /// procd mode: the trackers procd should run, wan -> command line (the
    /// same argv as the embedded supervisor). Unchanged ones keep running.
    pub fn set_trackers(
        &mut self,
        registry: &Registry,
        wanted: &BTreeMap<String, Vec<String>>,
    ) -> Vec<AgentEvent> {
        self.agent.set_trackers(wanted);
        let events = self.agent.flush(registry, Instant::now());
        self.note(events)
    }

    /// procd mode: restart one tracker alone (delete + add). False if it is not wanted.
    pub fn restart_tracker(&mut self, registry: &Registry, wan: &str) -> bool {
        let known = self.agent.restart_tracker(wan);
        let events = self.agent.flush(registry, Instant::now());
        // Logged by count only: formatting the events would link Debug
        // code for every type they carry (docs/footprint.md).
        if !events.is_empty() {
            log::debug!("ubus during restart: {} event(s) not handled", events.len());
        }
        known
    }

    /// Clean stop (SIGTERM): in procd mode, removes the trackers' service,
    /// waiting briefly for procd. The init script's stop does the same, so
    /// a failure here is logged, not fatal.
    pub fn shutdown(&mut self) {
        if !self.supervise {
            return;
        }
        if let Err(e) = agent::stop_trackers_blocking(&self.socket, SHUTDOWN_TIMEOUT) {
            log::warn!("could not remove the trackers' procd service: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bug 3 (issue 12): the uptime stayed what netifd said last.
    #[test]
    fn mwan3_uptime_grows_after_netifd_reported_it() {
        let config = mwan_core::config::parse(
            "test",
            "config interface 'wan'\n\toption enabled '1'\n\tlist track_ip '192.0.2.1'\n",
        )
        .unwrap()
        .config;
        let mut ubus = UbusService::new(Path::new("/nonexistent/ubus.sock"), false).unwrap();
        let seen = Instant::now();
        let wan = InterfaceState {
            name: "wan".into(),
            up: true,
            uptime_s: Some(30),
            ..InterfaceState::default()
        };
        ubus.note_at(vec![AgentEvent::Interface(wan)], seen);
        let later = ubus.mwan3_extras(&config, seen + Duration::from_secs(5));
        assert_eq!(later["wan"].netifd_uptime_s, Some(35));
        assert_eq!(later["wan"].netifd_up, Some(true));
        // Down: netifd sends no uptime, nor do we.
        let down = InterfaceState {
            name: "wan".into(),
            ..InterfaceState::default()
        };
        ubus.note_at(vec![AgentEvent::Interface(down)], seen);
        let later = ubus.mwan3_extras(&config, seen + Duration::from_secs(5));
        assert_eq!(later["wan"].netifd_uptime_s, None);
    }

    /// Automatic mode builds its WANs from what is held: an interface a
    /// later dump no longer lists (PPPoE's dynamic `wan_6`) is dropped.
    #[test]
    fn a_dump_replaces_the_interfaces_held() {
        let mut ubus = UbusService::new(Path::new("/nonexistent/ubus.sock"), false).unwrap();
        let state = |name: &str| {
            AgentEvent::Interface(InterfaceState {
                name: name.into(),
                ..InterfaceState::default()
            })
        };
        let names = |u: &UbusService| {
            u.netifd_states()
                .map(|s| s.name.clone())
                .collect::<Vec<_>>()
        };
        let now = Instant::now();
        ubus.note_at(
            vec![state("wan"), state("wan_6"), AgentEvent::NetifdListed],
            now,
        );
        assert_eq!(names(&ubus), ["wan", "wan_6"]);
        ubus.note_at(vec![state("lan")], now);
        assert_eq!(names(&ubus), ["lan", "wan", "wan_6"], "an update adds");
        ubus.note_at(vec![state("wan"), AgentEvent::NetifdListed], now);
        assert_eq!(names(&ubus), ["wan"], "the dump's list is all there is");
    }
}
