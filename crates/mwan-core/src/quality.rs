//! Link quality: smoothed latency, jitter and loss, and the wanmon-style score
//! `latency + jitter + loss²/loss_divisor + bias` (lower is better), dead
//! beyond the hard loss limit.
//!
//! Smoothing is an exponentially weighted moving average per probe result
//! (weight `smoothing` for the new value): O(1) memory and work per sample,
//! no window to size per probe rate, and the `smoothing` option maps onto it
//! directly. Jitter is RFC 3550's interarrival jitter idea applied to RTTs:
//! the smoothed mean of |ΔRTT| between consecutive replies *from the same
//! target* (different targets have different base RTTs, so mixing them would
//! measure path spread, not jitter). Why: docs/decisions.md.

use crate::config::QualitySettings;
use crate::health::ProbeOutcome;

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

/// Per-WAN quality tracker.
#[derive(Debug, Clone)]
pub struct Quality {
    settings: QualitySettings,
    latency_ms: Option<f64>,
    jitter_ms: f64,
    loss_pct: f64,
    samples: u64,
    last_rtt_ms: Vec<Option<f64>>,
}

impl Quality {
    pub fn new(settings: &QualitySettings, targets: usize) -> Self {
        Quality {
            settings: settings.clone(),
            latency_ms: None,
            jitter_ms: 0.0,
            loss_pct: 0.0,
            samples: 0,
            last_rtt_ms: vec![None; targets],
        }
    }

    /// Feed one probe result. A late reply (already counted lost) still
    /// informs latency and jitter but not loss.
    pub fn on_probe(&mut self, target: usize, outcome: ProbeOutcome) {
        let a = self.alpha();
        let rtt_us = match outcome {
            ProbeOutcome::Lost => {
                self.loss_pct += a * (100.0 - self.loss_pct);
                self.samples += 1;
                return;
            }
            ProbeOutcome::Reply { rtt_us } => {
                self.loss_pct -= a * self.loss_pct;
                self.samples += 1;
                rtt_us
            }
            ProbeOutcome::LateReply { rtt_us } => rtt_us,
        };
        let rtt = f64::from(rtt_us) / 1000.0;
        self.latency_ms = Some(match self.latency_ms {
            None => rtt,
            Some(l) => l + a * (rtt - l),
        });
        if let Some(slot) = self.last_rtt_ms.get_mut(target) {
            if let Some(prev) = *slot {
                self.jitter_ms += a * ((rtt - prev).abs() - self.jitter_ms);
            }
            *slot = Some(rtt);
        }
    }

    fn alpha(&self) -> f64 {
        let a = self.settings.smoothing;
        if a.is_finite() && a > 0.0 {
            a.min(1.0)
        } else {
            1.0
        }
    }

    pub fn snapshot(&self) -> QualitySnapshot {
        let dead = self.samples > 0 && self.loss_pct > self.settings.loss_limit_pct;
        let score = match self.latency_ms {
            Some(latency) if !dead => Some(score(
                latency,
                self.jitter_ms,
                self.loss_pct,
                &self.settings,
            )),
            _ => None,
        };
        QualitySnapshot {
            latency_ms: self.latency_ms,
            jitter_ms: self.jitter_ms,
            loss_pct: self.loss_pct,
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

/// `latency + jitter + loss²/loss_divisor + bias` (ms and percent).
pub fn score(latency_ms: f64, jitter_ms: f64, loss_pct: f64, settings: &QualitySettings) -> f64 {
    let divisor = if settings.loss_divisor > 0.0 {
        settings.loss_divisor
    } else {
        1.0
    };
    latency_ms + jitter_ms + loss_pct * loss_pct / divisor + settings.bias_ms
}
