//! Keeping peers from costing the loop more than their share: the control
//! connection limit, the idle timeout, rate-limited per-peer warnings, and
//! dropping a connection.

use super::limits;
use super::peers::Peer;
use super::Daemon;
use crate::clock::now_ms;
use crate::conn::Conn;
use mwan_core::log_limit::with_suppressed;
use std::fmt;

impl Peer {
    pub(super) fn conn(&self) -> &Conn {
        match self {
            Peer::Control(c) | Peer::Tracker { conn: c, .. } => c,
        }
    }

    /// Idle-timeout applies: control clients, and trackers before Hello
    /// (a tracker that said Hello is watched by its silence limit).
    fn may_idle_out(&self) -> bool {
        matches!(
            self,
            Peer::Control(_)
                | Peer::Tracker {
                    interface: None,
                    ..
                }
        )
    }
}

impl Daemon {
    /// A warning about one peer's misbehaviour; a flood of them logs a few
    /// and says how many it held back.
    pub(super) fn peer_warn(&mut self, line: fmt::Arguments) {
        if let Some(suppressed) = self.peer_log.allow(now_ms()) {
            log::warn!("{}", with_suppressed(line, suppressed));
        }
    }

    /// At the control connection limit the connection idle longest is
    /// closed, so a new request always finds a slot.
    pub(super) fn make_room_for_control(&mut self) {
        let control = self
            .conns
            .iter()
            .filter(|(_, p)| matches!(p, Peer::Control(_)));
        if control.clone().count() < limits::MAX_CONTROL_CONNS {
            return;
        }
        let idlest = limits::idlest(control.map(|(t, p)| (*t, p.conn().last_active)));
        if let Some(peer) = idlest.and_then(|t| self.conns.take(t)) {
            self.peer_warn(format_args!(
                "control socket: {} clients connected; closing the one idle longest",
                limits::MAX_CONTROL_CONNS
            ));
            self.drop_peer(peer);
        }
    }

    /// Closes connections that moved no byte within the idle timeout.
    pub(super) fn close_idle(&mut self) {
        let now = now_ms();
        let idle: Vec<_> = self
            .conns
            .iter()
            .filter(|(_, p)| {
                p.may_idle_out()
                    && now.saturating_sub(p.conn().last_active) > limits::IDLE_TIMEOUT_MS
            })
            .map(|(t, _)| *t)
            .collect();
        for token in idle {
            if let Some(peer) = self.conns.take(token) {
                log::debug!(
                    "closing a connection idle past {} ms",
                    limits::IDLE_TIMEOUT_MS
                );
                self.drop_peer(peer);
            }
        }
    }

    /// Serves every tracker connection (after the loop was late).
    pub(super) fn read_trackers(&mut self) {
        let trackers: Vec<_> = self
            .conns
            .iter()
            .filter(|(_, p)| matches!(p, Peer::Tracker { .. }))
            .map(|(t, _)| *t)
            .collect();
        for token in trackers {
            self.on_conn(token);
        }
    }

    /// Forgets a connection taken out of `conns`; a tracker's WAN learns
    /// that its tracker is gone.
    pub(super) fn drop_peer(&mut self, peer: Peer) {
        let (mut conn, iface) = peer.into_parts();
        if let Err(e) = self.poll.registry().deregister(&mut conn.stream) {
            log::debug!("deregister: {e}");
        }
        if let Some(name) = iface {
            log::info!("{name}: tracker disconnected");
            if let Some(wan) = self.wans.get_mut(&name) {
                wan.tracker_disconnected();
            }
        }
    }
}
