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

/// Whether a saved verdict is taken back at `now`: Err says why not, for
/// the log (too old, or saved in the future: another boot's clock).
pub fn judge_saved(
    saved: &SavedVerdict,
    settings: &HealthSettings,
    now: Millis,
) -> Result<(), String> {
    if saved.saved_at > now || saved.since > saved.saved_at {
        return Err("saved at a time after now (another boot?)".into());
    }
    let age = now - saved.saved_at;
    let lifetime = verdict_lifetime(settings);
    if age > lifetime {
        return Err(format!(
            "saved {} s ago, more than its lifetime of {} s",
            age / 1000,
            lifetime / 1000
        ));
    }
    Ok(())
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

    /// The machine for new tracking settings (a reload): a fresh one that
    /// keeps this one's verdict when there is one, else starts from
    /// `initial_state`. The returned verdict is what was kept (None: a
    /// reset, which the caller logs).
    pub fn reconfigured(&self, settings: HealthSettings, now: Millis) -> (Health, Option<Verdict>) {
        let mut next = Health::new(settings, now);
        next.prompt_reports = self.prompt_reports;
        let kept = self.verdict();
        if let Some(v) = kept {
            // A state that is the verdict itself keeps its age.
            let same = matches!(
                (self.state, v),
                (LinkState::Online, Verdict::Online) | (LinkState::Offline, Verdict::Offline)
            );
            next.resume(v, if same { self.since } else { now }, now);
        }
        let kept = kept.filter(|_| next.verdict().is_some());
        (next, kept)
    }
}
