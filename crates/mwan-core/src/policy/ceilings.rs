//! Quality ceilings of a policy: which members measure well enough to carry
//! it. Each ceiling is a debounced comparator per (policy, member): the
//! member stops qualifying once its value has stayed above the limit for
//! the ceiling's minimum stable time, and qualifies again once the value
//! has stayed at or below `limit - hysteresis` as long. The state lives in
//! [`super::PolicyMemory`], so resolution stays a pure function.

use crate::config::{Ceiling, QualityCeilings, QualityKind};
use crate::quality::QualitySnapshot;
use crate::Millis;

/// A WAN's measured quality as ceilings read it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct QualityReading {
    /// None before the first answer.
    pub latency_ms: Option<f64>,
    pub jitter_ms: f64,
    pub loss_pct: f64,
}

impl QualityReading {
    pub fn from_snapshot(q: &QualitySnapshot) -> Self {
        QualityReading {
            latency_ms: q.latency_ms,
            jitter_ms: q.jitter_ms,
            loss_pct: q.loss_pct,
        }
    }

    pub fn value(&self, kind: QualityKind) -> Option<f64> {
        match kind {
            QualityKind::Latency => self.latency_ms,
            QualityKind::Jitter => Some(self.jitter_ms),
            QualityKind::Loss => Some(self.loss_pct),
        }
    }
}

/// One ceiling's verdict for one member, with its debounce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct CeilingTrack {
    exceeded: bool,
    /// Since when the value has been on the side that would flip the verdict.
    pending_since: Option<Millis>,
    /// Since when the value has been above the limit (None: at or below).
    above_since: Option<Millis>,
}

impl CeilingTrack {
    fn update(&mut self, value: Option<f64>, c: &Ceiling, now: Millis) {
        let Some(value) = value else {
            // No reading: nothing to compare, the verdict stands.
            self.pending_since = None;
            return;
        };
        let above = value > c.limit;
        self.above_since = if above {
            Some(self.above_since.unwrap_or(now))
        } else {
            None
        };
        let flipping = if self.exceeded {
            value <= c.limit - c.hysteresis
        } else {
            above
        };
        if !flipping {
            self.pending_since = None;
            return;
        }
        let since = *self.pending_since.get_or_insert(now);
        if now.saturating_sub(since) >= c.min_stable_ms {
            self.exceeded = !self.exceeded;
            self.pending_since = None;
        }
    }
}

/// A ceiling a member does not meet, for `explain`, status and events.
#[derive(Debug, Clone, PartialEq)]
pub struct Exceeded {
    pub kind: QualityKind,
    /// Its measured value now.
    pub value: f64,
    pub ceiling: Ceiling,
    /// Since when the value has been above the limit; None while it is at
    /// or below the limit but not yet back under `limit - hysteresis` for
    /// the minimum stable time.
    pub above_since: Option<Millis>,
}

/// Update one member's ceilings of one policy and return those it fails.
pub(super) fn check(
    tracks: &mut [CeilingTrack; 3],
    ceilings: &QualityCeilings,
    reading: Option<&QualityReading>,
    now: Millis,
) -> Vec<Exceeded> {
    let mut failed = Vec::new();
    for (track, kind) in tracks.iter_mut().zip(QualityKind::ALL) {
        let Some(c) = ceilings.get(kind) else {
            *track = CeilingTrack::default();
            continue;
        };
        let value = reading.and_then(|r| r.value(kind));
        track.update(value, &c, now);
        if track.exceeded {
            failed.push(Exceeded {
                kind,
                value: value.unwrap_or(f64::NAN),
                ceiling: c,
                above_since: track.above_since,
            });
        }
    }
    failed
}

/// How far a member is from meeting the ceilings: the sum of each
/// ceiling's excess relative to its limit (0 when it meets them all).
pub(super) fn excess(ceilings: &QualityCeilings, reading: Option<&QualityReading>) -> f64 {
    QualityKind::ALL
        .iter()
        .filter_map(|&kind| {
            let c = ceilings.get(kind)?;
            let v = reading.and_then(|r| r.value(kind))?;
            Some((v / c.limit - 1.0).max(0.0))
        })
        .sum()
}

/// "wan1 jitter 48 ms > voice's 30 ms for 5.0 s".
pub(super) fn exceeded_text(
    interface: &str,
    policy: &str,
    e: &Exceeded,
    now: Millis,
    age: impl Fn(Millis, Millis) -> String,
) -> String {
    let kind = e.kind.as_str();
    let unit = e.kind.unit();
    let limit = e.ceiling.limit;
    match e.above_since {
        Some(since) => format!(
            "{interface} {kind} {:.0}{unit} > {policy}'s {limit}{unit} for {}",
            e.value,
            age(since, now)
        ),
        None => format!(
            "{interface} {kind} {:.0}{unit} is not yet back under {policy}'s {limit}{unit} less its hysteresis {}{unit} for {}",
            e.value,
            e.ceiling.hysteresis,
            age(0, e.ceiling.min_stable_ms)
        ),
    }
}
