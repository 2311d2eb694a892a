//! A WAN's last verdict across a controller restart or a reload (issue 13,
//! attack 6): an offline WAN stays offline until its tracker says
//! otherwise, instead of starting over from `initial_state` and taking
//! traffic for the `down` rounds it takes to fail again.

use super::{Health, HealthSettings, LinkState, Phase};
use crate::Millis;

/// Which side of mwan3's counter the last decided round left a WAN on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Online or disconnecting: usable.
    Online,
    /// Offline or connecting: not usable.
    Offline,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Online => "online",
            Verdict::Offline => "offline",
        }
    }

    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "online" => Some(Verdict::Online),
            "offline" => Some(Verdict::Offline),
            _ => None,
        }
    }
}

/// A verdict as a previous controller saved it: since when it held and
/// when it was last known to hold (the save).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedVerdict {
    pub verdict: Verdict,
    pub since: Millis,
    pub saved_at: Millis,
}

/// A saved verdict is trusted for this many times the WAN's own time to
/// detect an outage (`down` rounds of `interval`) after its save, and at
/// least [`MIN_VERDICT_LIFETIME_MS`]: past that the link may have changed
/// more than its tracker would notice at its usual pace, and the WAN starts
/// from `initial_state`. A restored offline verdict that is wrong costs
/// only `up` rounds; a discarded right one sends traffic to a dead WAN.
pub const VERDICT_LIFETIME_FACTOR: u64 = 10;
pub const MIN_VERDICT_LIFETIME_MS: Millis = 60_000;

/// How long after its save a verdict is still taken back.
pub fn verdict_lifetime(settings: &HealthSettings) -> Millis {
    (u64::from(settings.down) * settings.interval * VERDICT_LIFETIME_FACTOR)
        .max(MIN_VERDICT_LIFETIME_MS)
}

/// Whether a saved verdict is taken back at `now`: saved no longer ago
/// than its lifetime, and not "after now" (another boot's clock).
pub fn saved_verdict_holds(saved: &SavedVerdict, settings: &HealthSettings, now: Millis) -> bool {
    saved.since <= saved.saved_at
        && saved.saved_at <= now
        && now - saved.saved_at <= verdict_lifetime(settings)
}

impl Health {
    /// The last verdict, if one was decided (rounds, a restored verdict, a
    /// tracker never heard from) since the start or the last link event.
    /// A tracker that went silent keeps it.
    pub fn verdict(&self) -> Option<Verdict> {
        if !self.verdict_known || self.link_down {
            return None;
        }
        Some(match self.phase {
            Phase::Up { .. } => Verdict::Online,
            Phase::Down { .. } => Verdict::Offline,
        })
    }

    /// Takes back a verdict a previous controller (or the machine before a
    /// reload) decided: the state is that verdict's since `since`, and the
    /// next rounds continue from it. No transition: the hooks ran then.
    pub fn resume(&mut self, verdict: Verdict, since: Millis, now: Millis) {
        if self.link_down || !self.settings.enabled || self.settings.targets == 0 {
            return;
        }
        self.phase = match verdict {
            Verdict::Online => Phase::Up { failed: 0 },
            Verdict::Offline => Phase::Down { succeeded: 0 },
        };
        self.verdict_known = true;
        self.awaiting_round = false;
        self.state = self.derived_state();
        self.since = since.min(now);
        self.usable_since = self.usable().then_some(self.since);
    }

    /// A reload gave new tracking settings: `next`, a fresh machine for
    /// them, takes this one's verdict when there is one (else it starts
    /// from `initial_state`). Returns what was kept (None: a reset, which
    /// the caller logs).
    pub fn carry_verdict_to(&self, next: &mut Health, now: Millis) -> Option<Verdict> {
        let kept = self.verdict()?;
        // A state that is the verdict itself keeps its age.
        let same = matches!(
            (self.state, kept),
            (LinkState::Online, Verdict::Online) | (LinkState::Offline, Verdict::Offline)
        );
        next.resume(kept, if same { self.since } else { now }, now);
        next.verdict().map(|_| kept)
    }
}
