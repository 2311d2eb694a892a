//! The controller's event loop: constant tokens for the listeners, the
//! signalfd and the netlink socket; one token per connection after those.
//! Every handler reads until WouldBlock and never blocks; time-driven work
//! (respawns, adoption deadlines, tracker silence) sits in one timer map.

mod control;
mod guard;
mod limits;
mod rundir;
mod ubus;

use crate::clock::{now_ms, Timers};
use crate::conn::{peer_pid, peer_uid, refuse, Conn, ReadOutcome};
use crate::dataplane::Dataplane;
use crate::engine::Engine;
use crate::hooks::{Action, Hooks, DEFAULT_HOOKS};
use crate::signals::{Signal, Signals};
use crate::supervisor::{self, Supervisor, Wake};
use crate::tracker_cmd::{self, TrackerFacts};
use crate::ubus_service::{UbusService, UBUS_TOKEN};
use crate::wan::Wan;
use crate::{Options, SupervisorMode};
use mio::net::{UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token};
use mwan_core::config::{self, Config, Rejected};
use mwan_core::Millis;
use mwan_proto::control::{Request, Response};
use mwan_proto::track::TrackerMessage;
use mwan_ubus::agent::AgentEvent;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

const SIGNALS: Token = Token(0);
const CONTROL: Token = Token(1);
const TRACK: Token = Token(2);
const NETLINK: Token = Token(3);
/// nf_tables notifications (someone else touched table `inet mwan`).
const NFT_EVENTS: Token = Token(5);
const FIRST_CONN: usize = 16;

/// Period of the housekeeping pass (tracker silence, adopted trackers'
/// liveness, data plane reconcile).
const HOUSEKEEPING_MS: Millis = 1_000;
/// A turn whose handlers took longer reads the trackers before its timers.
const LATE_TURN_MS: Millis = 250;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Housekeeping,
    Spawn(String),
    Adoption(String),
    /// A WAN's health machine has a round deadline or silence limit due.
    Health(String),
}

#[derive(Debug)]
pub enum DaemonError {
    Config(Rejected),
    RunDir(PathBuf, io::Error),
    AlreadyRunning(PathBuf),
    Io(&'static str, io::Error),
    Dataplane(String),
}

impl DaemonError {
    pub fn exit_code(&self) -> u8 {
        match self {
            DaemonError::Config(_) => 2,
            DaemonError::AlreadyRunning(_) => 3,
            _ => 1,
        }
    }
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaemonError::Config(r) => write!(f, "the config is invalid, not starting:\n{r}"),
            DaemonError::RunDir(p, e) => write!(f, "run dir {}: {e}", p.display()),
            DaemonError::AlreadyRunning(p) => write!(
                f,
                "another mwand answers on {}; stop it first or use another --run-dir",
                p.display()
            ),
            DaemonError::Io(what, e) => write!(f, "{what}: {e}"),
            DaemonError::Dataplane(e) => write!(f, "data plane: {e}"),
        }
    }
}

enum Peer {
    Control(Conn),
    Tracker {
        conn: Conn,
        interface: Option<String>,
        /// When it last sent anything (hung-tracker watchdog).
        heard_at: Millis,
    },
}

pub struct Daemon {
    opts: Options,
    poll: Poll,
    signals: Signals,
    control_listener: UnixListener,
    track_listener: UnixListener,
    track_path: PathBuf,
    conns: HashMap<Token, Peer>,
    next_token: usize,
    config_path: PathBuf,
    config: Config,
    wans: BTreeMap<String, Wan>,
    supervisor: Supervisor,
    hooks: Hooks,
    timers: Timers<Timer>,
    dataplane: Dataplane,
    engine: Engine,
    started_at: Millis,
    stop: bool,
    /// Something changed that may change policy decisions.
    dirty: bool,
    ubus: Option<UbusService>,
    /// ubus events produced while answering (handled at the loop's top).
    pending_ubus: Vec<AgentEvent>,
    /// Connections with work left after their turn's budget: served again
    /// next turn without waiting for an event.
    again: Vec<Token>,
    /// Per-peer warnings (refusals, malformed input): a flood logs a few.
    peer_log: limits::LogLimiter,
}

pub fn run(opts: Options) -> Result<(), DaemonError> {
    let mut d = Daemon::start(opts)?;
    d.event_loop()?;
    d.shutdown();
    Ok(())
}

fn bind_socket(path: &Path) -> Result<UnixListener, DaemonError> {
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(DaemonError::AlreadyRunning(path.to_path_buf()));
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(DaemonError::RunDir(path.to_path_buf(), e)),
    }
    // SAFETY: umask only changes this process's file creation mask; the
    // socket is created 0600 with no window where others could connect.
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    bound.map_err(|e| DaemonError::RunDir(path.to_path_buf(), e))
}

fn procd_needs_ubus(socket: &Path, e: io::Error) -> io::Error {
    io::Error::other(format!(
        "--supervisor procd needs ubus at {}: {e}; use --supervisor embedded or auto",
        socket.display()
    ))
}

/// `--supervisor auto`: a ubus socket file nobody listens on (stale) means
/// embedded, said once, rather than trackers waiting for a procd that is not there.
fn ubus_answers(socket: &Path) -> bool {
    match std::os::unix::net::UnixStream::connect(socket) {
        Ok(_) => true,
        Err(e) => {
            log::warn!(
                "ubus at {}: {e}: running the trackers here (embedded)",
                socket.display()
            );
            false
        }
    }
}

fn tracker_binary(opts: &Options) -> PathBuf {
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
    fn start(opts: Options) -> Result<Self, DaemonError> {
        let now = now_ms();
        let config_path = opts.config.clone().unwrap_or_else(config::default_path);
        let loaded = config::load(&config_path).map_err(DaemonError::Config)?;
        for w in &loaded.warnings {
            log::warn!("{w}");
        }
        if opts.supervisor == SupervisorMode::Procd {
            // Without ubus procd cannot run the trackers: every WAN would
            // stay `unknown` and policies would route blind. Refuse instead.
            std::os::unix::net::UnixStream::connect(&opts.ubus_socket)
                .map_err(|e| DaemonError::Io("ubus", procd_needs_ubus(&opts.ubus_socket, e)))?;
        }
        let signals = Signals::new().map_err(|e| DaemonError::Io("signalfd", e))?;
        let poll = Poll::new().map_err(|e| DaemonError::Io("epoll", e))?;
        let track_path = opts.run_dir.join("track.sock");
        let (mut control_listener, mut track_listener) = rundir::bind_listeners(&opts)?;
        let registry = poll.registry();
        signals
            .register(registry, SIGNALS)
            .map_err(|e| DaemonError::Io("register signalfd", e))?;
        registry
            .register(&mut control_listener, CONTROL, Interest::READABLE)
            .map_err(|e| DaemonError::Io("register control socket", e))?;
        registry
            .register(&mut track_listener, TRACK, Interest::READABLE)
            .map_err(|e| DaemonError::Io("register tracker socket", e))?;

        // ubus when the bus is there (OpenWrt): the `mwan`/`mwan3` objects,
        // netifd, and procd for the trackers in procd mode. `auto` means
        // procd whenever ubus is there; if procd turns out to be absent the
        // embedded supervisor takes over (see on_ubus_events).
        let procd = match opts.supervisor {
            SupervisorMode::Embedded => false,
            SupervisorMode::Procd => true,
            SupervisorMode::Auto => opts.ubus_socket.exists() && ubus_answers(&opts.ubus_socket),
        };
        let mut ubus = if procd || opts.ubus_socket.exists() {
            match UbusService::new(&opts.ubus_socket, procd) {
                Ok(u) => Some(u),
                Err(e) if procd => return Err(DaemonError::Io("ubus", io::Error::other(e))),
                Err(e) => {
                    log::warn!("{e}; running without ubus");
                    None
                }
            }
        } else {
            None
        };
        let ubus_events = ubus.as_mut().map(|u| u.start(registry)).unwrap_or_default();
        let supervisor = Supervisor::new(tracker_binary(&opts), !procd);
        let hook_paths = if opts.hooks.is_empty() {
            DEFAULT_HOOKS.iter().map(PathBuf::from).collect()
        } else {
            opts.hooks.clone()
        };
        let dataplane =
            Dataplane::new(!opts.no_dataplane, &loaded.config).map_err(DaemonError::Dataplane)?;
        if let Some(fd) = dataplane.event_fd() {
            registry
                .register(&mut mio::unix::SourceFd(&fd), NETLINK, Interest::READABLE)
                .map_err(|e| DaemonError::Io("register netlink socket", e))?;
        }
        if let Some(fd) = dataplane.nft_event_fd() {
            registry
                .register(
                    &mut mio::unix::SourceFd(&fd),
                    NFT_EVENTS,
                    Interest::READABLE,
                )
                .map_err(|e| DaemonError::Io("register nf_tables event socket", e))?;
        }
        let mut d = Daemon {
            poll,
            signals,
            control_listener,
            track_listener,
            track_path,
            conns: HashMap::new(),
            next_token: FIRST_CONN,
            config_path,
            config: loaded.config,
            wans: BTreeMap::new(),
            supervisor,
            hooks: Hooks::new(hook_paths),
            timers: Timers::default(),
            dataplane,
            engine: Engine::default(),
            started_at: now,
            stop: false,
            dirty: true,
            ubus,
            pending_ubus: Vec::new(),
            again: Vec::new(),
            peer_log: limits::LogLimiter::new(10, 10_000),
            opts,
        };
        log::info!(
            "mwand started: config {}, run dir {}, {} interface(s)",
            d.config_path.display(),
            d.opts.run_dir.display(),
            d.config.interfaces.iter().filter(|i| i.enabled).count()
        );
        d.on_ubus_events(ubus_events);
        if let Some(u) = d.ubus.as_mut() {
            let evs = u.follow(d.poll.registry(), &d.config);
            d.on_ubus_events(evs);
        }
        d.sync_wans(now);
        // The first plan adopts what a previous mwand left in the kernel and
        // gives the tracker marks the trackers' command lines carry.
        d.decide_and_apply(now);
        if d.supervisor.spawning {
            d.adopt_running_trackers(now);
        }
        d.sync_trackers(now);
        d.timers.arm(Timer::Housekeeping, now + HOUSEKEEPING_MS);
        Ok(d)
    }

    /// Creates, updates or removes the per-WAN state to match the config.
    /// An unchanged interface keeps its health; a changed one keeps its
    /// current state and gets the new settings.
    fn sync_wans(&mut self, now: Millis) {
        let enabled: Vec<_> = self
            .config
            .interfaces
            .iter()
            .filter(|i| i.enabled)
            .cloned()
            .collect();
        self.wans
            .retain(|name, _| enabled.iter().any(|i| &i.name == name));
        for iface in enabled {
            match self.wans.get_mut(&iface.name) {
                Some(wan) => wan.reconfigure(iface, now),
                None => {
                    let mut wan = Wan::new(iface, now);
                    wan.learn_facts(self.dataplane.facts(wan.device()));
                    // A WAN whose device is missing or without carrier at
                    // start is down now, not after its probes fail.
                    if wan.device().is_some() && !wan.facts().carrier {
                        log::info!("{}: no carrier on its device at start", wan.config().name);
                        wan.on_carrier(false, now);
                    }
                    self.wans.insert(wan.config().name.clone(), wan);
                }
            }
        }
    }

    fn tracker_argv(&self, wan: &Wan) -> Option<Vec<String>> {
        let facts = TrackerFacts {
            device: wan.device().map(str::to_string),
            mark: self.dataplane.tracker_mark(&wan.config().name),
            source: wan.source(),
            gateway: wan.gateway(),
        };
        tracker_cmd::argv(
            wan.config(),
            &facts,
            &self.track_path,
            wan.config().interval,
            wan.config().timeout,
        )
    }

    fn adopt_running_trackers(&mut self, now: Millis) {
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
    fn sync_trackers(&mut self, now: Millis) {
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

    /// Round deadlines decide a cut as soon as the probes are overdue, not
    /// at the next housekeeping pass.
    fn arm_health(&mut self, name: &str) {
        let key = Timer::Health(name.to_string());
        match self.wans.get(name).and_then(Wan::next_deadline) {
            Some(at) => self.timers.arm(key, at),
            None => self.timers.cancel(&key),
        }
    }

    fn arm_wakes(&mut self, wakes: Vec<Wake>) {
        for w in wakes {
            match w {
                Wake::SpawnAt(name, at) => self.timers.arm(Timer::Spawn(name), at),
                Wake::AdoptionDeadline(name, at) => self.timers.arm(Timer::Adoption(name), at),
            }
        }
    }

    fn event_loop(&mut self) -> Result<(), DaemonError> {
        let mut events = Events::with_capacity(64);
        while !self.stop {
            // Our objects changed under us, or links moved: one pass
            // re-reads the kernel and puts back what is missing, now rather
            // than at the next housekeeping pass.
            if self.dataplane.take_reconcile_now() {
                self.dirty = true;
            }
            if self.dirty {
                self.dirty = false;
                self.decide_and_apply(now_ms());
            }
            let pending = std::mem::take(&mut self.pending_ubus);
            self.on_ubus_events(pending);
            let mut timeout = self
                .timers
                .next_deadline()
                .map(|at| std::time::Duration::from_millis(at.saturating_sub(now_ms())));
            if let Some(u) = self.ubus.as_ref().and_then(UbusService::timeout) {
                timeout = Some(timeout.map_or(u, |t| t.min(u)));
            }
            let again = std::mem::take(&mut self.again);
            if !again.is_empty() {
                timeout = Some(std::time::Duration::ZERO);
            }
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(DaemonError::Io("epoll_wait", e));
            }
            let woke = now_ms();
            for ev in events.iter() {
                match ev.token() {
                    SIGNALS => self.on_signals(),
                    CONTROL => self.accept(true),
                    TRACK => self.accept(false),
                    NETLINK => self.on_netlink(),
                    NFT_EVENTS => {
                        if self.dataplane.read_nft_events() {
                            self.dirty = true;
                        }
                    }
                    UBUS_TOKEN => self.on_ubus(ev),
                    token => self.on_conn(token),
                }
            }
            for token in again {
                self.on_conn(token);
            }
            if now_ms().saturating_sub(woke) > LATE_TURN_MS {
                // This turn's handlers ran long: what trackers sent
                // meanwhile is read before deadlines judge their WANs.
                self.read_trackers();
            }
            let now = now_ms();
            for t in self.timers.expired(now) {
                self.on_timer(t, now);
            }
            if let Some(u) = self.ubus.as_mut() {
                let evs = u.on_timeout(self.poll.registry());
                self.on_ubus_events(evs);
            }
        }
        Ok(())
    }

    fn on_signals(&mut self) {
        let signals = match self.signals.drain() {
            Ok(s) => s,
            Err(e) => {
                log::error!("reading signals: {e}");
                return;
            }
        };
        for s in signals {
            match s {
                Signal::Stop => {
                    log::info!("stopping on signal");
                    self.stop = true;
                }
                Signal::Reload => match self.reload() {
                    Ok(msg) => log::info!("SIGHUP: {msg}"),
                    Err(msg) => log::error!("SIGHUP: {msg}"),
                },
                Signal::Child => {
                    let now = now_ms();
                    let wakes = self.supervisor.reap(now);
                    self.arm_wakes(wakes);
                    self.hooks.reap();
                }
            }
        }
    }

    fn accept(&mut self, control: bool) {
        loop {
            let listener = if control {
                &self.control_listener
            } else {
                &self.track_listener
            };
            let (mut stream, _) = match listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.peer_warn(format_args!("accept: {e}"));
                    return;
                }
            };
            if let Some(why) = control.then(|| self.peer_refusal(&stream)).flatten() {
                // The peer is told why, then closed; it never gets a Conn.
                refuse(&mut stream, why);
                continue;
            }
            if control {
                self.make_room_for_control();
            }
            let token = Token(self.next_token);
            self.next_token += 1;
            if let Err(e) = self
                .poll
                .registry()
                .register(&mut stream, token, Interest::READABLE)
            {
                log::warn!("cannot register connection: {e}");
                continue;
            }
            let conn = Conn::new(stream, token);
            let peer = if control {
                Peer::Control(conn)
            } else {
                Peer::Tracker {
                    conn,
                    interface: None,
                    heard_at: now_ms(),
                }
            };
            self.conns.insert(token, peer);
            // Data may already be waiting (edge-triggered registration).
            self.on_conn(token);
        }
    }

    /// Why this control peer may not steer mwand, or None when it may.
    fn peer_refusal(&mut self, stream: &UnixStream) -> Option<String> {
        let why = match peer_uid(stream) {
            Ok(0) => return None,
            Ok(uid) if self.opts.allow_uids.contains(&uid) => return None,
            Ok(uid) => format!(
                "uid {uid} is not allowed: only root and uids given to mwand with --allow-uid may use the control socket"
            ),
            Err(e) => format!("cannot read the caller's credentials: {e}"),
        };
        self.peer_warn(format_args!("control socket: refusing a peer: {why}"));
        Some(why)
    }

    fn on_conn(&mut self, token: Token) {
        let Some(mut peer) = self.conns.remove(&token) else {
            return;
        };
        let keep = match &mut peer {
            Peer::Control(conn) => self.serve_control(conn),
            Peer::Tracker {
                conn,
                interface,
                heard_at,
            } => self.serve_tracker(conn, interface, heard_at),
        };
        if keep {
            if peer.conn().has_work() && !self.again.contains(&token) {
                self.again.push(token);
            }
            self.conns.insert(token, peer);
        } else {
            self.drop_peer(peer);
        }
    }

    /// Returns false when the connection is done.
    fn serve_control(&mut self, conn: &mut Conn) -> bool {
        let outcome = conn.fill();
        for _ in 0..limits::REQUESTS_PER_TURN {
            match conn.next::<Request>() {
                Ok(Some(req)) => {
                    let resp = self.handle_request(req);
                    if let Err(e) = conn.queue(&resp) {
                        self.peer_warn(format_args!(
                            "control socket: a client does not read its replies ({e}); cutting it off"
                        ));
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    self.peer_warn(format_args!("control socket: {e}; closing that connection"));
                    let reply = Response::Error {
                        message: format!("mwand cannot read this request ({e}); are mwanctl and mwand from the same build?"),
                    };
                    if let Err(e) = conn.queue(&reply) {
                        log::debug!("cannot queue error reply: {e}");
                    }
                    conn.closing = true;
                    break;
                }
            }
        }
        let alive = conn.flush(self.poll.registry());
        alive && !(conn.closing && conn.drained()) && !matches!(outcome, ReadOutcome::Gone)
    }

    fn serve_tracker(
        &mut self,
        conn: &mut Conn,
        interface: &mut Option<String>,
        heard_at: &mut Millis,
    ) -> bool {
        let outcome = conn.fill();
        let now = now_ms();
        loop {
            match conn.next::<TrackerMessage>() {
                Ok(Some(msg)) => {
                    *heard_at = now;
                    if !self.on_tracker_message(conn, interface, msg, now) {
                        return false;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    self.peer_warn(format_args!(
                        "tracker {}: {e}; dropping the connection (it reconnects)",
                        interface.as_deref().unwrap_or("?")
                    ));
                    return false;
                }
            }
        }
        conn.flush(self.poll.registry()) && !matches!(outcome, ReadOutcome::Gone)
    }

    fn on_tracker_message(
        &mut self,
        conn: &mut Conn,
        interface: &mut Option<String>,
        msg: TrackerMessage,
        now: Millis,
    ) -> bool {
        match (msg, interface.as_ref()) {
            (
                TrackerMessage::Hello {
                    interface: name,
                    pid,
                    started_at_us,
                    dropped_samples,
                },
                None,
            ) => {
                // Who connected is the kernel's word (SO_PEERCRED), never
                // the Hello's: a refused peer is dropped, nobody signalled.
                let peer = peer_pid(&conn.stream).unwrap_or(None);
                let started_at = (started_at_us / 1000).min(now);
                let taken = if self.wans.contains_key(&name) {
                    self.supervisor.hello(&name, peer, pid, started_at)
                } else {
                    Err(format!("'{name}' is not an enabled interface"))
                };
                if let Err(why) = taken {
                    self.peer_warn(format_args!(
                        "refusing a tracker Hello for '{name}' (pid {}): {why}",
                        peer.map_or("unknown".into(), |p| p.to_string())
                    ));
                    return false;
                }
                // A second connection of the same tracker replaces the first.
                let old: Vec<Token> = self
                    .conns
                    .iter()
                    .filter(|(_, p)| matches!(p, Peer::Tracker { interface: Some(n), .. } if *n == name))
                    .map(|(t, _)| *t)
                    .collect();
                for t in old {
                    if let Some(Peer::Tracker { mut conn, .. }) = self.conns.remove(&t) {
                        if let Err(e) = self.poll.registry().deregister(&mut conn.stream) {
                            log::debug!("deregister: {e}");
                        }
                    }
                }
                log::info!(
                    "{name}: tracker pid {pid} connected (running {} s, {dropped_samples} sample(s) dropped while alone)",
                    (now * 1000).saturating_sub(started_at_us) / 1_000_000
                );
                let wan = self.wans.get_mut(&name).expect("checked above");
                wan.tracker_connected(started_at_us);
                for m in wan.tracker_settings() {
                    if let Err(e) = conn.queue(&m) {
                        log::warn!("{name}: cannot queue tracker settings: {e}");
                    }
                }
                *interface = Some(name);
                true
            }
            (TrackerMessage::Hello { .. }, Some(name)) => {
                let name = name.clone();
                self.peer_warn(format_args!(
                    "{name}: second Hello on one connection; dropping it"
                ));
                false
            }
            (_, None) => {
                self.peer_warn(format_args!(
                    "tracker sent data before Hello; dropping the connection"
                ));
                false
            }
            (TrackerMessage::Samples(samples), Some(name)) => {
                let name = name.clone();
                if let Some(wan) = self.wans.get_mut(&name) {
                    let before = wan.tracker_settings();
                    let changes = wan.on_samples(&samples, now);
                    let after = wan.tracker_settings();
                    if before != after {
                        for m in after.into_iter().filter(|m| !before.contains(m)) {
                            log::debug!("{name}: tracker now {m:?}");
                            if let Err(e) = conn.queue(&m) {
                                log::warn!("{name}: cannot queue tracker settings: {e}");
                            }
                        }
                    }
                    self.on_state_changes(&name, changes, now);
                    self.arm_health(&name);
                }
                true
            }
            (TrackerMessage::Trouble { message }, Some(name)) => {
                // Its rounds fail on their own; the reason goes to the log.
                log::warn!("{name}: tracker reports: {message}");
                true
            }
        }
    }

    fn on_state_changes(&mut self, name: &str, changes: Vec<crate::wan::Change>, _now: Millis) {
        if changes.is_empty() {
            return;
        }
        let device = self
            .wans
            .get(name)
            .and_then(|w| w.device().map(str::to_string));
        for c in changes {
            log::info!("{name}: {} -> {}", c.from, c.to);
            if let Some(action) = c.hook_action() {
                self.hooks.run(action, name, device.as_deref());
            }
        }
        self.dirty = true;
    }

    fn on_netlink(&mut self) {
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
                if wan.facts().carrier != up {
                    let action = if up { Action::Ifup } else { Action::Ifdown };
                    self.hooks.run(action, &name, wan.device());
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

    fn on_timer(&mut self, t: Timer, now: Millis) {
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

    /// A connected tracker reports every probe within its timeout, lost or
    /// not; one that has said nothing for longer than its WAN's silence
    /// limit is hung (stopped, stuck): it is replaced. Its WAN's rounds
    /// failed meanwhile, as for a silent cut: from mwand's side the two
    /// look alike until the tracker's timeout has passed.
    ///
    /// A late loop (a long reload, thousands of WANs) must not pass for
    /// silent trackers: what they sent meanwhile is read before judging.
    fn replace_hung_trackers(&mut self, now: Millis) {
        for (token, _) in self.silent_trackers(now) {
            self.on_conn(token);
        }
        let hung: Vec<String> = self
            .silent_trackers(now)
            .into_iter()
            .map(|(_, name)| name)
            .collect();
        for name in hung {
            log::warn!("{name}: tracker silent past its silence limit; replacing it");
            self.conns.retain(
                |_, p| !matches!(p, Peer::Tracker { interface: Some(n), .. } if *n == name),
            );
            if let Some(wan) = self.wans.get_mut(&name) {
                wan.tracker_disconnected();
            }
            if self.supervisor.spawning {
                let wakes = self.supervisor.replace_hung(&name, now);
                self.arm_wakes(wakes);
            } else if let Some(u) = self.ubus.as_mut() {
                u.restart_tracker(self.poll.registry(), &name);
            }
        }
    }

    /// Connected trackers heard from longer ago than their silence limit.
    fn silent_trackers(&self, now: Millis) -> Vec<(Token, String)> {
        self.conns
            .iter()
            .filter_map(|(token, p)| match p {
                Peer::Tracker {
                    interface: Some(name),
                    heard_at,
                    ..
                } => {
                    let limit = self.wans.get(name)?.silence_limit();
                    (now.saturating_sub(*heard_at) > limit).then(|| (*token, name.clone()))
                }
                _ => None,
            })
            .collect()
    }

    fn decide_and_apply(&mut self, now: Millis) {
        let changed = self.engine.resolve(&self.config, &self.wans, now);
        if changed {
            for line in self.engine.summary_lines() {
                log::info!("policy {line}");
            }
        }
        self.dataplane
            .apply(&self.config, &self.engine, &self.wans, now);
        if self.ubus.is_some() {
            let interfaces = self.interfaces(now);
            if let Some(u) = self.ubus.as_mut() {
                let evs = u.announce_changes(self.poll.registry(), &interfaces);
                self.pending_ubus.extend(evs);
            }
        }
    }

    fn shutdown(&mut self) {
        if self.opts.no_dataplane {
            log::info!("stopping trackers (--no-dataplane: nothing to remove from the kernel)");
        } else {
            log::info!("stopping trackers and removing our routes, rules and nft table");
        }
        if self.supervisor.spawning {
            self.supervisor.stop_all();
        } else if let Some(u) = self.ubus.as_mut() {
            u.shutdown();
        }
        self.dataplane.stop();
        for path in [
            self.opts.run_dir.join("control.sock"),
            self.track_path.clone(),
        ] {
            if let Err(e) = std::fs::remove_file(&path) {
                log::debug!("remove {}: {e}", path.display());
            }
        }
    }
}
