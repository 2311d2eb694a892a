//! Link quality: smoothed latency, jitter and loss, and the wanmon-style score
//! `latency + jitter + loss²/loss_divisor + bias` (lower is better), dead
//! beyond the hard loss limit.
//!
//! Smoothing is in time, not per probe: every value is an exponentially
//! weighted average whose weights decay as `exp(-age/τ)` with the time
//! constant τ (`quality_time_constant`), age measured from the samples' own
//! send times (never a clock). So a reading is as stale at mwan3's one probe
//! per 10 s as at our 15 probes per second. It is kept as a mean and a
//! decayed weight mass, which makes it
//! - the EWMA with weight `1 - exp(-Δt/τ)` for evenly spaced samples,
//! - independent of arrival order (a loss reported after later replies gets
//!   the weight it would have had on time) and fair to samples sent at the
//!   same instant (each counts once),
//! - bias-corrected at start: the n-th sample gets weight about 1/n until
//!   the mass reaches its steady state, so the first reading is not dragged
//!   towards a made-up initial value.
//!
//! Warm-up: the first answer often includes neighbour (ARP/NDP) resolution
//! and reads about twice the real RTT. Latency therefore reads the (lower)
//! median of the first [`WARMUP_REPLIES`] answers and then continues from
//! that median; jitter ignores each target's first answer (its difference to
//! the next one would carry the same error); loss starts from one
//! pseudo-answer, so a single early loss reads 50 %, not 100 % (dead).
//!
//! Jitter is RFC 3550's interarrival jitter idea applied to RTTs: the smoothed
//! mean of |ΔRTT| between consecutive replies *from the same target*
//! (different targets have different base RTTs, so mixing them would measure
//! path spread, not jitter). Why: docs/decisions.md.

use crate::config::{DurationMs, QualitySettings};
use crate::health::ProbeOutcome;
use crate::Millis;

/// Our default time constant: ~100 probes at 3 targets × 5 probes/s, long
/// enough that two equally noisy links do not swap in score mode
/// (docs/decisions.md, `tests/sim_swaps.rs`).
pub const DEFAULT_TIME_CONSTANT_MS: DurationMs = 7_000;

/// Probe spacings a default time constant spans at least: a slowly probed
/// link needs several samples per τ, or one lost probe reads as ~76 % loss
/// (dead) at mwan3's one probe per 10 s.
pub const MIN_SAMPLES_PER_TIME_CONSTANT: f64 = 10.0;

/// The default time constant for an interface probed once every
/// `spacing_ms` (interval / (targets × count)): [`DEFAULT_TIME_CONSTANT_MS`],
/// or [`MIN_SAMPLES_PER_TIME_CONSTANT`] spacings if that is longer (100 s at
/// mwan3's timing with one target).
pub fn default_time_constant(spacing_ms: f64) -> DurationMs {
    let floor = (MIN_SAMPLES_PER_TIME_CONSTANT * spacing_ms).round();
    if floor.is_finite() && floor > DEFAULT_TIME_CONSTANT_MS as f64 {
        (floor as DurationMs).min(86_400_000)
    } else {
        DEFAULT_TIME_CONSTANT_MS
    }
}

/// Answers whose median seeds the latency average.
pub const WARMUP_REPLIES: usize = 5;

/// Weight of the 0 % pseudo-sample loss starts from.
const LOSS_PRIOR_WEIGHT: f64 = 1.0;

/// Spacing assumed by the time-less [`Quality::on_probe`]: our default pace
/// (3 targets every 0.2 s).
const LEGACY_SPACING_MS: Millis = 67;

/// The time constant equivalent to the old per-probe weight `smoothing` at
/// one sample every `spacing_ms`: `τ = -spacing / ln(1 - smoothing)`, so an
/// old config keeps its behaviour at its own probe rate. 1 (no smoothing)
/// gives 0.
pub fn time_constant_from_smoothing(smoothing: f64, spacing_ms: f64) -> DurationMs {
    if !(smoothing.is_finite() && smoothing > 0.0 && smoothing < 1.0) {
        return 0;
    }
    let tau = -spacing_ms.max(0.0) / (1.0 - smoothing).ln();
    tau.round().clamp(0.0, 86_400_000.0) as DurationMs
}

/// The per-sample weight of an EWMA with time constant `tau_ms` at one sample
/// every `spacing_ms`: `1 - exp(-spacing/τ)`.
pub fn per_sample_weight(tau_ms: DurationMs, spacing_ms: f64) -> f64 {
    if tau_ms == 0 {
        1.0
    } else {
        1.0 - (-spacing_ms / tau_ms as f64).exp()
    }
}

/// A quality reading for status, policy and explanations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualitySnapshot {
    /// Smoothed RTT in ms (None before the first reply).
    pub latency_ms: Option<f64>,
    pub jitter_ms: f64,
    /// Smoothed loss in percent (0..=100).
    pub loss_pct: f64,
    /// Lower is better; None when there is no data yet or the link is dead.
    pub score: Option<f64>,
    /// Loss beyond the hard limit.
    pub dead: bool,
    pub samples: u64,
}

/// An exponentially time-weighted mean: mean, decayed weight mass, and the
/// time the mass refers to (the latest sample time seen).
#[derive(Debug, Clone, Copy, Default)]
struct TimeAverage {
    mean: f64,
    mass: f64,
    at: Option<Millis>,
}

impl TimeAverage {
    fn decay(age_ms: Millis, tau_ms: DurationMs) -> f64 {
        match (age_ms, tau_ms) {
            (0, _) => 1.0,
            (_, 0) => 0.0,
            (age, tau) => (-(age as f64) / tau as f64).exp(),
        }
    }

    fn add(&mut self, value: f64, weight: f64, at: Millis, tau_ms: DurationMs) {
        let w = match self.at {
            Some(latest) if at < latest => weight * Self::decay(latest - at, tau_ms),
            Some(latest) => {
                self.mass *= Self::decay(at - latest, tau_ms);
                self.at = Some(at);
                weight
            }
            None => {
                self.at = Some(at);
                weight
            }
        };
        if w <= 0.0 {
            return;
        }
        self.mass += w;
        self.mean += w / self.mass * (value - self.mean);
    }
}

/// Per-WAN quality tracker.
#[derive(Debug, Clone)]
pub struct Quality {
    settings: QualitySettings,
    latency: TimeAverage,
    /// The first answers' RTTs (ms), until the median seeds `latency`.
    warmup: Vec<f64>,
    replies: u64,
    jitter: Option<TimeAverage>,
    loss: Option<TimeAverage>,
    samples: u64,
    /// Per target: last RTT and whether it was the target's first answer.
    last_rtt_ms: Vec<Option<(f64, bool)>>,
    /// Latest sample time seen (for the time-less `on_probe`).
    latest_at: Option<Millis>,
}

impl Quality {
    pub fn new(settings: &QualitySettings, targets: usize) -> Self {
        Quality {
            settings: settings.clone(),
            latency: TimeAverage::default(),
            warmup: Vec::with_capacity(WARMUP_REPLIES),
            replies: 0,
            jitter: None,
            loss: None,
            samples: 0,
            last_rtt_ms: vec![None; targets],
            latest_at: None,
        }
    }

    /// Feed one probe result without its time: it is taken as sent one
    /// default spacing (67 ms) after the latest sample. Kept for callers
    /// that have no send time; prefer [`Quality::on_probe_at`].
    pub fn on_probe(&mut self, target: usize, outcome: ProbeOutcome) {
        let at = self.latest_at.map_or(0, |t| t + LEGACY_SPACING_MS);
        self.on_probe_at(target, outcome, at);
    }

    /// Feed one probe result, with the time its probe was sent
    /// (`ProbeResult::sent_at`; any monotonic ms clock, the same for all
    /// samples of this WAN). Results may arrive in any order. A late reply
    /// (already counted lost) still informs latency and jitter but not loss.
    pub fn on_probe_at(&mut self, target: usize, outcome: ProbeOutcome, sent_at: Millis) {
        self.latest_at = Some(self.latest_at.map_or(sent_at, |t| t.max(sent_at)));
        let tau = self.settings.time_constant_ms;
        let rtt_us = match outcome {
            ProbeOutcome::Lost => {
                self.loss_average(sent_at).add(100.0, 1.0, sent_at, tau);
                self.samples += 1;
                return;
            }
            ProbeOutcome::Reply { rtt_us } => {
                self.loss_average(sent_at).add(0.0, 1.0, sent_at, tau);
                self.samples += 1;
                rtt_us
            }
            ProbeOutcome::LateReply { rtt_us } => rtt_us,
        };
        let rtt = f64::from(rtt_us) / 1000.0;
        self.latency.add(rtt, 1.0, sent_at, tau);
        self.replies += 1;
        if self.warmup.len() < WARMUP_REPLIES {
            self.warmup.push(rtt);
            if self.warmup.len() == WARMUP_REPLIES {
                self.latency.mean = lower_median(&self.warmup);
            }
        }
        if let Some(slot) = self.last_rtt_ms.get_mut(target) {
            if let Some((prev, false)) = *slot {
                self.jitter.get_or_insert_with(TimeAverage::default).add(
                    (rtt - prev).abs(),
                    1.0,
                    sent_at,
                    tau,
                );
            }
            *slot = Some((rtt, slot.is_none()));
        }
    }

    fn loss_average(&mut self, at: Millis) -> &mut TimeAverage {
        self.loss.get_or_insert(TimeAverage {
            mean: 0.0,
            mass: LOSS_PRIOR_WEIGHT,
            at: Some(at),
        })
    }

    fn latency_ms(&self) -> Option<f64> {
        if self.replies == 0 {
            None
        } else if self.warmup.len() < WARMUP_REPLIES {
            Some(lower_median(&self.warmup))
        } else {
            Some(self.latency.mean)
        }
    }

    pub fn snapshot(&self) -> QualitySnapshot {
        let loss_pct = self.loss.map_or(0.0, |l| l.mean);
        let jitter_ms = self.jitter.map_or(0.0, |j| j.mean);
        let latency_ms = self.latency_ms();
        let dead = self.samples > 0 && loss_pct > self.settings.loss_limit_pct;
        let score = match latency_ms {
            Some(latency) if !dead => Some(score(latency, jitter_ms, loss_pct, &self.settings)),
            _ => None,
        };
        QualitySnapshot {
            latency_ms,
            jitter_ms,
            loss_pct,
            score,
            dead,
            samples: self.samples,
        }
    }

    /// Shorthand for `snapshot().score`.
    pub fn score(&self) -> Option<f64> {
        self.snapshot().score
    }
}

/// The lower median (of an even count, the lower middle value): the first
/// answers' outliers are slow ones, never fast ones.
fn lower_median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    crate::sort::sort_by(&mut sorted, f64::total_cmp);
    sorted
        .get(sorted.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0.0)
}

/// `latency + jitter + loss²/loss_divisor + bias` (ms and percent).
pub fn score(latency_ms: f64, jitter_ms: f64, loss_pct: f64, settings: &QualitySettings) -> f64 {
    let divisor = if settings.loss_divisor > 0.0 {
        settings.loss_divisor
    } else {
        1.0
    };
    latency_ms + jitter_ms + loss_pct * loss_pct / divisor + settings.bias_ms
}
