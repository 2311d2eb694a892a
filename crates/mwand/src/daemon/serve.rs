//! Accepting connections and serving them: control requests (answered by
//! `control.rs`) and tracker messages (samples, hellos, exits), each read
//! until WouldBlock within the per-turn limits of `limits.rs`.

use super::peers::Peer;
use super::{history, limits, refusal, Daemon};
use crate::clock::now_ms;
use crate::conn::{peer_pid, peer_uid, refuse, Conn, ReadOutcome};
use crate::wan::{coalesce_changes, to_wire, Change};
use mio::net::UnixStream;
use mio::{Interest, Token};
use mwan_core::Millis;
use mwan_proto::control::{Request, Response};
use mwan_proto::track::TrackerMessage;
use std::io;

impl Daemon {
    pub(super) fn accept(&mut self, control: bool) {
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
                self.loop_counters.refused_control_peers += 1;
                refuse(&mut stream, why);
                continue;
            }
            if control {
                self.make_room_for_control();
            }
            let token = self.conn_tokens.allocate();
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
                Peer::tracker(conn, now_ms())
            };
            self.conns.insert(token, peer);
            // Data may already be waiting (edge-triggered registration).
            self.on_conn(token);
        }
    }

    /// Why this control peer may not steer mwand, or None when it may.
    pub(super) fn peer_refusal(&mut self, stream: &UnixStream) -> Option<String> {
        let why = refusal(peer_uid(stream), &self.opts.allow_uids)?;
        self.peer_warn(format_args!("control socket: refusing a peer: {why}"));
        Some(why)
    }

    /// A readiness event for a token nothing owns: counted and logged, as
    /// firecracker's event handlers do, instead of silently ignored.
    pub(super) fn unexpected_event(&mut self, token: Token) {
        self.loop_counters.unexpected_events += 1;
        log::warn!(
            "event loop: readiness for token {} that nothing owns",
            token.0
        );
    }

    pub(super) fn on_conn(&mut self, token: Token) {
        let Some(mut peer) = self.conns.take(token) else {
            // Closed earlier in this batch of events.
            self.loop_counters.unexpected_events += 1;
            log::debug!("event for closed connection {}", token.0);
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
    pub(super) fn serve_control(&mut self, conn: &mut Conn) -> bool {
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
                    self.loop_counters.dropped_control_peers += 1;
                    break;
                }
            }
        }
        let alive = conn.flush(self.poll.registry());
        alive && !(conn.closing && conn.drained()) && !matches!(outcome, ReadOutcome::Gone)
    }

    pub(super) fn serve_tracker(
        &mut self,
        conn: &mut Conn,
        interface: &mut Option<String>,
        heard_at: &mut Millis,
    ) -> bool {
        let outcome = conn.fill();
        let now = now_ms();
        // Everything read at once (a replayed backlog spans many frames)
        // is one change of the WAN's state at most.
        let mut changes = Vec::new();
        let keep = loop {
            match conn.next::<TrackerMessage>() {
                Ok(Some(msg)) => {
                    *heard_at = now;
                    if !self.on_tracker_message(conn, interface, msg, &mut changes, now) {
                        self.loop_counters.dropped_tracker_peers += 1;
                        break false;
                    }
                }
                Ok(None) => break true,
                Err(e) => {
                    self.peer_warn(format_args!(
                        "tracker {}: {e}; dropping the connection (it reconnects)",
                        interface.as_deref().unwrap_or("?")
                    ));
                    self.loop_counters.dropped_tracker_peers += 1;
                    break false;
                }
            }
        };
        if let Some(name) = interface.as_deref() {
            self.on_state_changes(name, coalesce_changes(&changes), now);
        }
        keep && conn.flush(self.poll.registry()) && !matches!(outcome, ReadOutcome::Gone)
    }

    pub(super) fn on_tracker_message(
        &mut self,
        conn: &mut Conn,
        interface: &mut Option<String>,
        msg: TrackerMessage,
        changes: &mut Vec<Change>,
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
                self.drop_trackers_of(&name);
                log::info!(
                    "{name}: tracker pid {pid} connected (running {} s, {dropped_samples} sample(s) dropped while alone)",
                    (now * 1000).saturating_sub(started_at_us) / 1_000_000
                );
                let wan = self.wans.get_mut(&name).expect("checked above");
                wan.tracker_connected(started_at_us);
                for m in wan.tracker_settings().commands() {
                    if let Err(e) = conn.queue(&to_wire(m)) {
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
                    changes.extend(wan.on_samples(&samples, now));
                    for m in wan.tracker_settings().changes_since(&before) {
                        log::debug!("{name}: tracker now {m:?}");
                        if let Err(e) = conn.queue(&to_wire(m)) {
                            log::warn!("{name}: cannot queue tracker settings: {e}");
                        }
                    }
                    self.arm_health(&name);
                    // Quality ceilings follow every measurement.
                    if mwan_core::policy::follows_quality(&self.config)
                        && history::follow_measurement(
                            &mut self.engine,
                            &mut self.history,
                            &self.config,
                            &crate::engine::views(&self.wans),
                            now,
                        )
                    {
                        self.dirty = true;
                    }
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
}
