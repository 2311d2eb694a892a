//! Everything mwand does on ubus, as one component for its mio loop:
//! serves the `mwan` and `mwan3` objects, announces `mwan.interface`
//! events, follows netifd (dump at connect, `network.interface` events,
//! `interface.update` notifications of each followed interface) and, in
//! procd mode, keeps procd's `mwan-track` service equal to the trackers
//! mwand wants. After a ubusd restart it reconnects and redoes all of it.
//!
//! The loop calls [`Agent::ready`] / [`Agent::on_timeout`] and acts on the
//! returned [`AgentEvent`]s; calls of the `mwan` object come out as
//! control [`Request`]s and go back with [`Agent::reply`]. See docs/ubus.md.

use crate::blobmsg::{Table, Value};
use crate::client::{Client, ClientError, Event, Invocation, Tag};
use crate::conn::Session;
use crate::message::status;
use crate::netifd::{self, InterfaceEvent, InterfaceState};
use crate::procd::{self, InstanceSpec, ProcdEvent, Respawn};
use crate::{luci, mwan_object};
use mio::{Registry, Token};
use mwan_proto::control::{InterfaceStatus, Request, Response};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A call of the `mwan` or `mwan3` object waiting for its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingCall(Invocation);

#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    Connected,
    Disconnected,
    /// Whether procd's `service` object is on the bus (for `--supervisor
    /// auto`). Sent once, after the first successful connection.
    ProcdPresent(bool),
    /// `ubus call mwan <method>`: answer with [`Agent::reply`].
    Call {
        call: PendingCall,
        request: Request,
    },
    /// `ubus call mwan3 status`: answer with [`Agent::reply_mwan3`]
    /// (build the body with [`crate::luci::status`]).
    Mwan3Status {
        call: PendingCall,
        section: Option<String>,
        interface: Option<String>,
    },
    /// netifd's view of one interface (dump at connect, or an update).
    Interface(InterfaceState),
    /// netifd's dump arrived (after its `Interface` events): netifd knows
    /// no other interface, so none other will be reported now.
    NetifdListed,
    /// netifd's `network.interface` event: ifup / ifdown.
    InterfaceAction(InterfaceEvent),
    /// procd started a tracker instance (pid follows in TrackerPid).
    TrackerStarted(String),
    TrackerStopped(String),
    /// A tracker's pid as procd lists it (None: not running).
    TrackerPid {
        wan: String,
        pid: Option<u32>,
    },
}

#[derive(Debug)]
enum Purpose {
    Dump,
    /// `network.interface.<name> status`, asked once subscribed to it.
    InterfaceStatus(String),
    TrackerList,
    ProcdProbe,
    /// Fire-and-forget; failures are logged with this description.
    Log(String),
}

/// How procd respawns a tracker: after 1 s, forever (retry 0).
pub const TRACKER_RESPAWN: Respawn = Respawn {
    threshold_s: 3600,
    timeout_s: 1,
    retry: 0,
};

/// Who procd runs trackers as (docs/tracker.md, "Who trackers run as").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerPrivileges {
    pub user: String,
    pub group: String,
    /// The capabilities JSON file (the OpenWrt package's
    /// /etc/capabilities/mwan-track.json).
    pub capabilities: Option<String>,
}

/// procd's instance definition for a tracker command line: respawned, its
/// output to syslog, 2 s between SIGTERM and SIGKILL; run as `privileges`
/// when given, with no_new_privs.
pub fn tracker_spec(argv: &[String], privileges: Option<&TrackerPrivileges>) -> InstanceSpec {
    InstanceSpec {
        command: argv.to_vec(),
        respawn: Some(TRACKER_RESPAWN),
        stdout: true,
        stderr: true,
        term_timeout_s: Some(2),
        user: privileges.map(|p| p.user.clone()),
        group: privileges.map(|p| p.group.clone()),
        capabilities: privileges.and_then(|p| p.capabilities.clone()),
        no_new_privs: privileges.is_some(),
        ..InstanceSpec::default()
    }
}

pub struct Agent {
    session: Session,
    supervise: bool,
    /// Trackers procd should run: wan -> command line.
    trackers: BTreeMap<String, InstanceSpec>,
    /// mwand said which trackers it wants ([`Agent::set_trackers`]): until
    /// then no instance procd runs is a leftover (a restarted mwand learns
    /// its WANs' devices from netifd a moment after connecting).
    trackers_known: bool,
    tracker_privileges: Option<TrackerPrivileges>,
    followed: Vec<String>,
    next_tag: Tag,
    purposes: HashMap<Tag, Purpose>,
    /// procd's presence is reported once, from the first connection: after
    /// a ubusd restart procd re-registers `service` a moment after we are
    /// back, and a "not present" then would be wrong.
    procd_probed: bool,
}

impl Agent {
    /// `supervise`: manage the trackers through procd.
    pub fn new(
        socket: impl Into<PathBuf>,
        token: Token,
        supervise: bool,
    ) -> Result<Agent, ClientError> {
        let mut client = Client::new();
        client.add_object(mwan_object::MWAN_OBJECT, mwan_object::methods())?;
        client.add_object(luci::MWAN3_OBJECT, luci::methods())?;
        client.listen(netifd::INTERFACE_EVENT)?;
        if supervise {
            client.subscribe(procd::SERVICE_OBJECT)?;
        }
        Ok(Agent {
            session: Session::new(socket, token, client),
            supervise,
            trackers: BTreeMap::new(),
            trackers_known: false,
            tracker_privileges: None,
            followed: Vec::new(),
            next_tag: 1,
            purposes: HashMap::new(),
            procd_probed: false,
        })
    }

    pub fn token(&self) -> Token {
        self.session.token()
    }

    pub fn is_connected(&self) -> bool {
        self.session.is_connected()
    }

    pub fn start(&mut self, registry: &Registry, now: Instant) -> Vec<AgentEvent> {
        let events = self.session.start(registry, now);
        self.translate(events, registry, now)
    }

    pub fn ready(
        &mut self,
        registry: &Registry,
        event: &mio::event::Event,
        now: Instant,
    ) -> Vec<AgentEvent> {
        let events = self.session.ready(registry, event, now);
        self.translate(events, registry, now)
    }

    pub fn next_timeout(&self, now: Instant) -> Option<Duration> {
        self.session.next_timeout(now)
    }

    pub fn on_timeout(&mut self, registry: &Registry, now: Instant) -> Vec<AgentEvent> {
        let events = self.session.on_timeout(registry, now);
        self.translate(events, registry, now)
    }

    /// Sends what is queued; call after any request method below.
    pub fn flush(&mut self, registry: &Registry, now: Instant) -> Vec<AgentEvent> {
        let events = self.session.flush(registry, now);
        self.translate(events, registry, now)
    }

    fn tag(&mut self, purpose: Purpose) -> Tag {
        let t = self.next_tag;
        self.next_tag += 1;
        self.purposes.insert(t, purpose);
        t
    }

    fn call(&mut self, path: &str, method: &str, data: Table, purpose: Purpose) {
        let tag = self.tag(purpose);
        if let Err(e) = self.session.client().call(path, method, data, tag) {
            log::error!("ubus: {path} {method}: {e}");
            self.purposes.remove(&tag);
        }
    }

    // ---- The mwan / mwan3 objects.

    pub fn reply(
        &mut self,
        registry: &Registry,
        call: PendingCall,
        response: &Response,
        now: Instant,
    ) -> Vec<AgentEvent> {
        let (code, body) = mwan_object::reply(response);
        if let Err(e) = self.session.client().reply(&call.0, code, Some(body)) {
            log::error!("ubus: reply to mwan {}: {e}", call.0.method);
        }
        self.flush(registry, now)
    }

    pub fn reply_mwan3(
        &mut self,
        registry: &Registry,
        call: PendingCall,
        body: Table,
        now: Instant,
    ) -> Vec<AgentEvent> {
        let result = self.session.client().reply(&call.0, status::OK, Some(body));
        if let Err(e) = result {
            log::error!("ubus: reply to mwan3 status: {e}");
        }
        self.flush(registry, now)
    }

    /// The `mwan.interface` event for a state change.
    pub fn announce(&mut self, old_state: &str, now_status: &InterfaceStatus) {
        if !self.session.is_connected() {
            return;
        }
        let body = mwan_object::interface_event(old_state, now_status);
        if let Err(e) = self
            .session
            .client()
            .send_event(mwan_object::INTERFACE_EVENT, body)
        {
            log::error!("ubus: send {}: {e}", mwan_object::INTERFACE_EVENT);
        }
    }

    // ---- netifd.

    /// Follows `interface.update` of these interfaces (idempotent; the
    /// subscriptions survive reconnects and netifd restarts).
    pub fn follow_interfaces<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        for name in names {
            if self.followed.iter().any(|n| n == name) {
                continue;
            }
            self.followed.push(name.to_owned());
            if let Err(e) = self
                .session
                .client()
                .subscribe(&netifd::interface_object(name))
            {
                log::error!("ubus: subscribe to {name}: {e}");
            }
        }
    }

    /// Asks netifd for every interface's status (answered as `Interface` events).
    pub fn request_dump(&mut self) {
        self.call(
            netifd::INTERFACE_OBJECT,
            "dump",
            Table::new(),
            Purpose::Dump,
        );
    }

    // ---- Trackers under procd.

    /// Trackers defined from now on run as `privileges` (None: as root).
    pub fn set_tracker_privileges(&mut self, privileges: Option<TrackerPrivileges>) {
        self.tracker_privileges = privileges;
    }

    /// Makes procd's `mwan-track` service run exactly these trackers
    /// (wan -> command line). Unchanged ones keep their process; changed or
    /// new ones are (re)started by one `service add`; others are deleted.
    pub fn set_trackers(&mut self, wanted: &BTreeMap<String, Vec<String>>) {
        let wanted: BTreeMap<String, InstanceSpec> =
            mwan_core::sort::btree_map(wanted.iter().map(|(w, argv)| {
                (
                    w.clone(),
                    tracker_spec(argv, self.tracker_privileges.as_ref()),
                )
            }));
        let gone: Vec<String> = self
            .trackers
            .keys()
            .filter(|w| !wanted.contains_key(*w))
            .cloned()
            .collect();
        let changed: Vec<(String, InstanceSpec)> = wanted
            .iter()
            .filter(|(w, spec)| self.trackers.get(*w) != Some(spec))
            .map(|(w, spec)| (procd::tracker_instance(w), spec.clone()))
            .collect();
        self.trackers = wanted;
        let first = !std::mem::replace(&mut self.trackers_known, true);
        if !self.supervise || !self.session.is_connected() {
            // Sent in full after the next HELLO.
            return;
        }
        if first {
            // Instances procd kept for WANs this config no longer has.
            self.refresh_tracker_pids();
        }
        for wan in gone {
            let data = procd::delete(procd::TRACKER_SERVICE, Some(&procd::tracker_instance(&wan)));
            self.call(
                procd::SERVICE_OBJECT,
                "delete",
                data,
                Purpose::Log(format!("stop tracker {wan}")),
            );
        }
        if !changed.is_empty() {
            let data = procd::add(procd::TRACKER_SERVICE, &changed);
            self.call(
                procd::SERVICE_OBJECT,
                "add",
                data,
                Purpose::Log("start trackers".into()),
            );
        }
    }

    /// Restarts one tracker with an unchanged command line (procd ignores an
    /// identical `add`, so: delete that instance, then add it).
    pub fn restart_tracker(&mut self, wan: &str) -> bool {
        let Some(spec) = self.trackers.get(wan).cloned() else {
            return false;
        };
        for (method, data) in
            procd::restart_instance(procd::TRACKER_SERVICE, &procd::tracker_instance(wan), &spec)
        {
            self.call(
                procd::SERVICE_OBJECT,
                method,
                data,
                Purpose::Log(format!("restart tracker {wan}: {method}")),
            );
        }
        true
    }

    /// Asks procd for the trackers' pids (answered as `TrackerPid` events).
    pub fn refresh_tracker_pids(&mut self) {
        self.call(
            procd::SERVICE_OBJECT,
            "list",
            procd::list(Some(procd::TRACKER_SERVICE)),
            Purpose::TrackerList,
        );
    }

    /// Clean stop: removes the trackers' service (queued; flush, or use
    /// [`stop_trackers_blocking`] when the loop is ending).
    pub fn stop_trackers(&mut self) {
        self.trackers.clear();
        self.call(
            procd::SERVICE_OBJECT,
            "delete",
            procd::delete(procd::TRACKER_SERVICE, None),
            Purpose::Log("remove trackers".into()),
        );
    }

    // ---- Incoming.

    fn on_connected(&mut self) {
        if !self.procd_probed {
            self.call(
                procd::SERVICE_OBJECT,
                "list",
                procd::list(Some("")),
                Purpose::ProcdProbe,
            );
        }
        self.request_dump();
        // Trackers are synced once procd's `service` object is subscribed
        // (see translate): right after connecting, or when procd comes back
        // after a ubusd restart.
    }

    /// Asks procd for every wanted tracker (idempotent: unchanged ones keep
    /// their process) and lists them for the pids and leftovers.
    fn sync_all_trackers(&mut self) {
        let all: Vec<(String, InstanceSpec)> = self
            .trackers
            .iter()
            .map(|(w, s)| (procd::tracker_instance(w), s.clone()))
            .collect();
        if !all.is_empty() {
            let data = procd::add(procd::TRACKER_SERVICE, &all);
            self.call(
                procd::SERVICE_OBJECT,
                "add",
                data,
                Purpose::Log("start trackers".into()),
            );
        }
        // Leftover instances (a WAN removed while mwand was down) go in the list reply.
        self.refresh_tracker_pids();
    }

    fn translate(
        &mut self,
        events: Vec<Event>,
        registry: &Registry,
        now: Instant,
    ) -> Vec<AgentEvent> {
        let mut out = Vec::new();
        for e in events {
            match e {
                Event::Connected { client_id } => {
                    log::info!("ubus: connected as {client_id:08x}");
                    out.push(AgentEvent::Connected);
                    self.on_connected();
                }
                Event::Disconnected => {
                    log::warn!(
                        "ubus: connection lost ({}); reconnecting",
                        self.session.last_error.as_deref().unwrap_or("?")
                    );
                    self.purposes.clear();
                    out.push(AgentEvent::Disconnected);
                }
                Event::Invoke(inv) => self.on_invoke(inv, &mut out),
                Event::Reply {
                    tag,
                    status: code,
                    data,
                } => self.on_reply(tag, code, data, &mut out),
                Event::Event { name, data } if name == netifd::INTERFACE_EVENT => {
                    if let Some(ev) = InterfaceEvent::parse(&data) {
                        out.push(AgentEvent::InterfaceAction(ev));
                    }
                }
                Event::Notification { path, method, data } => {
                    if path == procd::SERVICE_OBJECT {
                        self.on_procd(&method, &data, &mut out);
                    } else if let Some(st) = netifd::parse_notification(&method, &data) {
                        out.push(AgentEvent::Interface(st));
                    }
                }
                Event::RegistrationFailed { what, status: code } => {
                    log::error!("ubus: {what} refused: {}", status::name(code));
                }
                Event::Unexpected(what) => log::debug!("ubus: {what}"),
                Event::ObjectRegistered { path, .. } => {
                    log::debug!("ubus: object {path} registered")
                }
                Event::Subscribed { path, .. } => {
                    log::debug!("ubus: following {path}");
                    if self.supervise && path == procd::SERVICE_OBJECT {
                        self.sync_all_trackers();
                    }
                    if let Some(name) = netifd::interface_of_object(&path) {
                        // The dump at connect misses an interface whose object
                        // appears later (netifd starting after mwand, or back
                        // after a ubusd restart), and an update published
                        // before the subscription took: read it now, once
                        // nothing can be missed any more.
                        let name = name.to_owned();
                        self.call(
                            &path,
                            "status",
                            Table::new(),
                            Purpose::InterfaceStatus(name),
                        );
                    }
                }
                Event::SubscriptionLost { path } => {
                    log::info!("ubus: {path} went away; waiting for it")
                }
                Event::Event { .. } | Event::Lookup { .. } | Event::SubscribersChanged { .. } => {}
            }
        }
        // Requests made while translating (on connect, list after start).
        out.extend(self.flush_inner(registry, now));
        out
    }

    fn flush_inner(&mut self, registry: &Registry, now: Instant) -> Vec<AgentEvent> {
        let events = self.session.flush(registry, now);
        if events.is_empty() {
            Vec::new()
        } else {
            self.translate(events, registry, now)
        }
    }

    fn on_invoke(&mut self, inv: Invocation, out: &mut Vec<AgentEvent>) {
        if inv.path == luci::MWAN3_OBJECT {
            let section = inv.data.get_str("section").map(str::to_owned);
            let interface = inv.data.get_str("interface").map(str::to_owned);
            out.push(AgentEvent::Mwan3Status {
                call: PendingCall(inv),
                section,
                interface,
            });
            return;
        }
        match mwan_object::request(&inv.method, &inv.data) {
            Ok(request) => out.push(AgentEvent::Call {
                call: PendingCall(inv),
                request,
            }),
            Err(bad) => {
                log::info!("ubus: mwan {}: {}", inv.method, bad.message);
                let body = Table::new()
                    .with("ok", Value::bool(false))
                    .with("error", Value::string(bad.message));
                if let Err(e) = self.session.client().reply(&inv, bad.status, Some(body)) {
                    log::error!("ubus: reply: {e}");
                }
            }
        }
    }

    fn on_reply(&mut self, tag: Tag, code: u32, data: Vec<Table>, out: &mut Vec<AgentEvent>) {
        let Some(purpose) = self.purposes.remove(&tag) else {
            return;
        };
        let body = data.into_iter().next().unwrap_or_default();
        match purpose {
            Purpose::ProcdProbe => {
                self.procd_probed = true;
                out.push(AgentEvent::ProcdPresent(code == status::OK));
            }
            Purpose::Dump if code == status::OK => {
                out.extend(
                    netifd::parse_dump(&body)
                        .into_iter()
                        .map(AgentEvent::Interface),
                );
                out.push(AgentEvent::NetifdListed);
            }
            Purpose::InterfaceStatus(name) if code == status::OK => {
                out.extend(InterfaceState::parse(Some(&name), &body).map(AgentEvent::Interface));
            }
            Purpose::InterfaceStatus(name) => {
                log::debug!("ubus: {name} status: {}", status::name(code))
            }
            Purpose::Dump => log::info!(
                "ubus: no netifd ({}); interface facts from the kernel only",
                status::name(code)
            ),
            Purpose::TrackerList if code == status::OK => {
                let listed = procd::parse_list(&body);
                let instances = listed.into_iter().flat_map(|s| s.instances);
                let mut seen = Vec::new();
                for inst in instances {
                    let Some(wan) = procd::wan_of_instance(&inst.name).map(str::to_owned) else {
                        continue;
                    };
                    if !self.trackers_known {
                        continue;
                    }
                    if !self.trackers.contains_key(&wan) {
                        let data = procd::delete(procd::TRACKER_SERVICE, Some(&inst.name));
                        self.call(
                            procd::SERVICE_OBJECT,
                            "delete",
                            data,
                            Purpose::Log(format!("stop leftover tracker {wan}")),
                        );
                        continue;
                    }
                    seen.push(wan.clone());
                    out.push(AgentEvent::TrackerPid {
                        wan,
                        pid: inst.pid.filter(|_| inst.running),
                    });
                }
                for wan in self.trackers.keys().filter(|w| !seen.contains(w)) {
                    out.push(AgentEvent::TrackerPid {
                        wan: wan.clone(),
                        pid: None,
                    });
                }
            }
            // procd's object is not there (ubusd restarted, procd not back
            // yet): say nothing; the sync runs again when it reappears.
            Purpose::TrackerList => log::debug!("ubus: service list: {}", status::name(code)),
            Purpose::Log(what) if code != status::OK => {
                log::warn!("ubus: {what}: {}", status::name(code));
            }
            Purpose::Log(_) => {}
        }
    }

    fn on_procd(&mut self, method: &str, data: &Table, out: &mut Vec<AgentEvent>) {
        let tracker = |service: &str, instance: &str| {
            (service == procd::TRACKER_SERVICE)
                .then(|| procd::wan_of_instance(instance).map(str::to_owned))
                .flatten()
        };
        match ProcdEvent::parse(method, data) {
            Some(ProcdEvent::InstanceStart { service, instance }) => {
                if let Some(wan) = tracker(&service, &instance) {
                    out.push(AgentEvent::TrackerStarted(wan));
                    self.refresh_tracker_pids();
                }
            }
            Some(ProcdEvent::InstanceStop { service, instance }) => {
                if let Some(wan) = tracker(&service, &instance) {
                    out.push(AgentEvent::TrackerStopped(wan));
                }
            }
            Some(ProcdEvent::InstanceRespawn {
                service,
                instance,
                exit_code,
                ..
            }) => {
                if let Some(wan) = tracker(&service, &instance) {
                    log::warn!("tracker {wan} exited (code {exit_code:?}); procd restarts it");
                }
            }
            _ => {}
        }
    }
}

/// Removes the trackers' service over a fresh connection, waiting for the
/// answer: for mwand's clean shutdown, when its loop no longer runs.
pub fn stop_trackers_blocking(
    socket: &std::path::Path,
    timeout: Duration,
) -> Result<(), crate::blocking::CallError> {
    match crate::blocking::call(
        socket,
        procd::SERVICE_OBJECT,
        "delete",
        procd::delete(procd::TRACKER_SERVICE, None),
        timeout,
    ) {
        Ok(_) | Err(crate::blocking::CallError::Status(status::NOT_FOUND)) => Ok(()),
        Err(e) => Err(e),
    }
}
