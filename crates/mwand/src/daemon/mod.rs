//! The controller's event loop: start-up, dispatch on the tokens of
//! `tokens.rs`, accepting and serving connections (`serve.rs`;
//! `peers.rs` keeps their bookkeeping). Every
//! handler reads until WouldBlock and never blocks; time-driven work
//! (respawns, adoption deadlines, tracker silence) sits in one timer map
//! (`links.rs`). Decisions are mwan-core's; the handlers perform them.

mod automatic;
mod control;
mod error;
mod guard;
mod history;
mod limits;
mod links;
mod peers;
mod rundir;
mod saved;
mod serve;
pub(crate) mod tokens;
mod trackers;
mod ubus;
/// The dashboard's own HTTP listener; the router build has none (cargo
/// feature `http`; on OpenWrt the dashboard is luci-app-mwan over ubus).
#[cfg(feature = "http")]
mod web;

pub use error::{report, DaemonError};

use crate::clock::{now_ms, Timers};
use crate::dataplane::Dataplane;
use crate::engine::Engine;
use crate::hooks::{Hooks, DEFAULT_HOOKS};
use crate::signals::{Signal, Signals};
use crate::supervisor::Supervisor;
use crate::ubus_service::UbusService;
use crate::wan::Wan;
use crate::{Options, SupervisorMode};
use mio::net::UnixListener;
use mio::{Events, Interest, Poll, Token};
use mwan_core::config::{self, Config};
use mwan_core::startup::{self, FirstApply, Netifd, FACTS_WAIT_MS};
use mwan_core::Millis;
use mwan_proto::control::EventLoopCounters;
use mwan_ubus::agent::AgentEvent;
use peers::Peers;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use tokens::{ConnTokens, Source, CONTROL, NETLINK, NFT_EVENTS, SIGNALS, TRACK};

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
    /// The bounded wait for netifd's facts before the first write is over.
    FirstApply,
    /// The state file's verdicts are renewed (saved.rs).
    SaveState,
}

pub struct Daemon {
    opts: Options,
    poll: Poll,
    signals: Signals,
    control_listener: UnixListener,
    track_listener: UnixListener,
    track_path: PathBuf,
    conns: Peers,
    conn_tokens: ConnTokens,
    /// Unexpected events and dropped peers, for status.
    loop_counters: EventLoopCounters,
    config_path: PathBuf,
    config: Config,
    wans: BTreeMap<String, Wan>,
    supervisor: Supervisor,
    hooks: Hooks,
    timers: Timers<Timer>,
    dataplane: Dataplane,
    engine: Engine,
    /// WANs stopped by `mwanctl pause` / `mwan3 ifdown`: neither tracked nor used.
    paused: BTreeSet<String>,
    started_at: Millis,
    stop: bool,
    /// Something changed that may change policy decisions.
    dirty: bool,
    /// Every WAN's facts were known (or the wait for them ended) and the
    /// first plan was written: until then nothing is written to the kernel
    /// and no tracker is started or stopped (`mwan_core::startup`).
    facts_ready: bool,
    /// netifd listed its interfaces (its dump answered).
    netifd_listed: bool,
    ubus: Option<UbusService>,
    /// ubus events produced while answering (handled at the loop's top).
    pending_ubus: Vec<AgentEvent>,
    /// Connections with work left after their turn's budget: served again
    /// next turn without waiting for an event.
    again: Vec<Token>,
    /// Per-peer warnings (refusals, malformed input): a flood logs a few.
    peer_log: mwan_core::log_limit::LogLimiter,
    /// The dashboard's listener (`--http`), when asked for.
    #[cfg(feature = "http")]
    http: Option<web::HttpSide>,
    /// The last hour per WAN and the event timeline (`mwanctl history`,
    /// ubus `mwan history`, the dashboard): kept in every build.
    history: mwan_core::history::History,
    /// Automatic mode: the UCI text of the config it built (None: a file).
    automatic_uci: Option<String>,
    /// Automatic mode waits for netifd's list of interfaces (at most
    /// FACTS_WAIT_MS): no WAN yet, and nothing written.
    automatic_waits: bool,
    /// Automatic mode: netifd's interfaces changed (or the wait for them
    /// ended); the WANs are built again at the loop's top.
    netifd_changed: bool,
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

/// Why a control peer with this uid (or this failure to read it) may not
/// steer mwand; None when it may: root and the `--allow-uid` uids.
fn refusal(uid: io::Result<u32>, allowed: &[u32]) -> Option<String> {
    match uid {
        Ok(0) => None,
        Ok(uid) if allowed.contains(&uid) => None,
        Ok(uid) => Some(format!(
            "uid {uid} is not allowed: only root and uids given to mwand with --allow-uid may use the control socket"
        )),
        Err(e) => Some(format!("cannot read the caller's credentials: {e}")),
    }
}

impl Daemon {
    fn start(opts: Options) -> Result<Self, DaemonError> {
        let now = now_ms();
        let config_path = opts.config.clone().unwrap_or_else(config::default_path);
        // Automatic mode starts with no WAN: the loop's first turn builds
        // them (`netifd_changed`), from the kernel's routes or once netifd
        // lists its interfaces.
        let (loaded, automatic_uci) = match automatic::choose(&config_path)? {
            automatic::Chosen::File(loaded) => (loaded, None),
            automatic::Chosen::Automatic(globals) => (
                config::Loaded {
                    config: automatic::waiting(globals),
                    warnings: Vec::new(),
                },
                Some(automatic::WAITING_UCI.to_owned()),
            ),
        };
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
        // The embedded supervisor switches to this user itself; procd is
        // asked to (procd.rs). Either way the tracker socket admits its group.
        let tracker_user = crate::supervisor::resolve_tracker_user(opts.tracker_user.as_deref())
            .map_err(|e| DaemonError::Io("tracker user", std::io::Error::other(e)))?;
        let (mut control_listener, mut track_listener) =
            rundir::bind_listeners(&opts, tracker_user)?;
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
        #[cfg(feature = "http")]
        let http = web::bind(&opts, registry, tokens::HTTP)?;
        let ubus_events = ubus.as_mut().map(|u| u.start(registry)).unwrap_or_default();
        let mut supervisor = Supervisor::new(trackers::tracker_binary(&opts), !procd);
        supervisor.set_user(tracker_user);
        if let Some(u) = tracker_user {
            log::info!("trackers run as uid {} gid {} with CAP_NET_RAW (and CAP_NET_ADMIN for the fwmark) only", u.uid, u.gid);
        }
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
            conns: Peers::default(),
            conn_tokens: ConnTokens::default(),
            loop_counters: EventLoopCounters::default(),
            config_path,
            config: loaded.config,
            wans: BTreeMap::new(),
            supervisor,
            hooks: Hooks::new(hook_paths, opts.hotplug_call.clone()),
            timers: Timers::default(),
            dataplane,
            engine: Engine::default(),
            paused: BTreeSet::new(),
            started_at: now,
            stop: false,
            dirty: true,
            facts_ready: false,
            netifd_listed: false,
            ubus,
            pending_ubus: Vec::new(),
            again: Vec::new(),
            peer_log: mwan_core::log_limit::LogLimiter::new(10, 10_000),
            #[cfg(feature = "http")]
            http,
            history: mwan_core::history::History::new(),
            automatic_waits: automatic_uci.is_some(),
            // Automatic mode's WANs are built at the loop's top, from the
            // kernel or (once it lists them) netifd's interfaces.
            netifd_changed: automatic_uci.is_some(),
            automatic_uci,
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
        // The WANs first (restore_state resumes their verdicts), then
        // again without the paused ones it restored.
        d.sync_wans(now);
        d.restore_state(now);
        d.sync_wans(now);
        // The first plan adopts what a previous mwand left in the kernel and
        // gives the tracker marks the trackers' command lines carry; it
        // waits for the WANs' facts (netifd's a moment after connecting).
        d.decide_and_apply(now);
        if !d.facts_ready {
            log::info!("waiting for netifd's facts of every WAN (at most {} s) before touching routes, rules, nft or trackers", FACTS_WAIT_MS / 1000);
        }
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
            .filter(|i| i.enabled && !self.paused.contains(&i.name))
            .cloned()
            .collect();
        self.wans
            .retain(|name, _| enabled.iter().any(|i| &i.name == name));
        for iface in enabled {
            match self.wans.get_mut(&iface.name) {
                Some(wan) => wan.reconfigure(iface, now),
                None => {
                    let mut wan = Wan::new(iface, now);
                    // netifd reported it before (at start, before a pause,
                    // or before automatic mode made it a WAN): it sends nothing new while nothing changes.
                    if let Some(state) = self
                        .ubus
                        .as_ref()
                        .and_then(|u| u.netifd_state(&wan.config().name))
                    {
                        wan.set_netifd(state);
                    }
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
        self.sync_history();
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
            if std::mem::take(&mut self.netifd_changed) {
                self.follow_netifd(now_ms());
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
            #[cfg(feature = "http")]
            if let Some(at) = self.http_deadline() {
                let h = std::time::Duration::from_millis(at.saturating_sub(now_ms()));
                timeout = Some(timeout.map_or(h, |t| t.min(h)));
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
                match tokens::source(ev.token()) {
                    Source::Signals => self.on_signals(),
                    Source::ControlListener => self.accept(true),
                    Source::TrackListener => self.accept(false),
                    Source::Netlink => self.on_netlink(),
                    Source::NftEvents => {
                        if self.dataplane.read_nft_events() {
                            self.dirty = true;
                        }
                    }
                    Source::Ubus => self.on_ubus(ev),
                    #[cfg(feature = "http")]
                    Source::Http(token) => self.on_http(token),
                    Source::Conn(token) => self.on_conn(token),
                    Source::Unknown(token) => self.unexpected_event(token),
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
            #[cfg(feature = "http")]
            self.http_tick(now);
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

    /// What mwand knows of netifd.
    fn netifd(&self) -> Netifd {
        match (&self.ubus, self.netifd_listed) {
            (None, _) => Netifd::Absent,
            (Some(_), true) => Netifd::Listed,
            (Some(_), false) => Netifd::Pending,
        }
    }

    /// Whether the first plan may be written (the core's
    /// `startup::first_apply`); arms the end of the wait when not.
    fn facts_known(&mut self, now: Millis) -> bool {
        let netifd = self.netifd();
        let wans = self
            .wans
            .values()
            .map(|w| (w.config().name.as_str(), w.facts_source()));
        match startup::first_apply(wans, netifd, self.started_at, now) {
            FirstApply::Apply => true,
            FirstApply::Wait { missing, until } => {
                log::debug!(
                    "first plan waits for netifd's facts of {}",
                    missing.join(", ")
                );
                self.timers.arm(Timer::FirstApply, until);
                false
            }
            FirstApply::GiveUp { missing } => {
                log::warn!(
                    "netifd reported nothing of {} within {} s: writing the plan without it",
                    missing.join(", "),
                    FACTS_WAIT_MS / 1000
                );
                true
            }
        }
    }

    /// The policies decided and the plan applied. The first time only once
    /// every WAN's facts are known (see `facts_known`): then the previous
    /// mwand's trackers are adopted and the wanted ones started.
    fn decide_and_apply(&mut self, now: Millis) {
        if !self.facts_ready {
            if self.automatic_waits || !self.facts_known(now) {
                return;
            }
            self.facts_ready = true;
            self.timers.cancel(&Timer::FirstApply);
            self.resolve_and_apply(now);
            if self.supervisor.spawning {
                self.adopt_running_trackers(now);
            }
            self.sync_trackers(now);
            return;
        }
        self.resolve_and_apply(now);
    }

    fn resolve_and_apply(&mut self, now: Millis) {
        history::decide(
            &mut self.engine,
            &mut self.history,
            &self.config,
            &crate::engine::views(&self.wans),
            now,
        );
        if self.engine.take_changed() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_root_and_allowed_uids_may_steer() {
        assert_eq!(refusal(Ok(0), &[]), None);
        assert_eq!(refusal(Ok(1000), &[1000]), None);
        let why = refusal(Ok(1001), &[1000]).expect("refused");
        assert!(why.starts_with("uid 1001 is not allowed"), "{why}");
        let why = refusal(Err(io::Error::other("EBADF")), &[0]).expect("refused");
        assert_eq!(why, "cannot read the caller's credentials: EBADF");
    }

    #[test]
    fn a_live_socket_is_already_running_and_a_stale_file_is_replaced() {
        let dir = std::env::temp_dir().join(format!("mwand-bind-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("control.sock");
        // A stale socket file (nobody listens): bound over.
        drop(std::os::unix::net::UnixListener::bind(&path).expect("stale"));
        let live = bind_socket(&path).expect("stale file replaced");
        match bind_socket(&path) {
            Err(e @ DaemonError::AlreadyRunning(_)) => assert_eq!(e.exit_code(), 3),
            other => panic!("second bind: {:?}", other.map(|_| ())),
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("socket")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
        drop(live);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
