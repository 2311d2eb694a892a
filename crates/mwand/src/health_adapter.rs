//! Adapter between tracker samples (mwan-proto) and the core's health and
//! quality machines (mwan-core). INTERIM: until the core's decision API
//! lands this holds a minimal mwan3-style round counter; it is replaced by
//! calls into `mwan_core::{health, quality}`.

use mwan_core::config::Interface;
use mwan_core::health::LinkState;
use mwan_core::Millis;
use mwan_proto::track::{ProbeOutcome, Sample};

/// Silence after which a WAN's state is no longer known: several rounds
/// without any sample, never less than 10 s (a tracker restart takes less).
fn silence_limit_ms(cfg: &Interface) -> Millis {
    (5 * (cfg.interval + cfg.timeout)).max(10_000)
}

pub struct Quality {
    alpha: f64,
    latency: Option<f64>,
    jitter: Option<f64>,
    loss: Option<f64>,
    last_rtt: Option<f64>,
}

impl Quality {
    pub fn new(cfg: &Interface) -> Self {
        Self {
            alpha: cfg.quality.smoothing,
            latency: None,
            jitter: None,
            loss: None,
            last_rtt: None,
        }
    }

    pub fn reconfigure(&mut self, cfg: &Interface) {
        self.alpha = cfg.quality.smoothing;
    }

    fn ewma(slot: &mut Option<f64>, v: f64, alpha: f64) {
        *slot = Some(match *slot {
            Some(old) => old + alpha * (v - old),
            None => v,
        });
    }

    pub fn observe(&mut self, s: &Sample) {
        match s.outcome {
            ProbeOutcome::Reply { rtt_us } => {
                let rtt = f64::from(rtt_us) / 1000.0;
                if let Some(prev) = self.last_rtt {
                    Self::ewma(&mut self.jitter, (rtt - prev).abs(), self.alpha);
                }
                self.last_rtt = Some(rtt);
                Self::ewma(&mut self.latency, rtt, self.alpha);
                Self::ewma(&mut self.loss, 0.0, self.alpha);
            }
            _ => Self::ewma(&mut self.loss, 100.0, self.alpha),
        }
    }

    pub fn latency_ms(&self) -> Option<f64> {
        self.latency
    }
    pub fn jitter_ms(&self) -> Option<f64> {
        self.jitter
    }
    pub fn loss_pct(&self) -> Option<f64> {
        self.loss
    }
    pub fn score(&self) -> Option<f64> {
        let l = self.latency?;
        Some(l + self.jitter.unwrap_or(0.0) + self.loss.unwrap_or(0.0).powi(2))
    }
}

pub struct Health {
    cfg: Interface,
    state: LinkState,
    round: Option<u64>,
    round_ok: u32,
    good: u32,
    bad: u32,
}

impl Health {
    pub fn new(cfg: &Interface, _now: Millis) -> Self {
        Self {
            cfg: cfg.clone(),
            state: LinkState::Unknown,
            round: None,
            round_ok: 0,
            good: 0,
            bad: 0,
        }
    }

    pub fn reconfigure(&mut self, cfg: &Interface, _now: Millis) {
        self.cfg = cfg.clone();
    }

    pub fn state(&self) -> LinkState {
        self.state
    }

    fn close_round(&mut self) {
        let ok = self.round_ok >= self.cfg.reliability.max(1);
        if ok {
            self.bad = 0;
            self.good += 1;
            self.state = match self.state {
                LinkState::Online | LinkState::Disconnecting | LinkState::Unknown => {
                    LinkState::Online
                }
                _ if self.good >= self.cfg.up => LinkState::Online,
                _ => LinkState::Connecting,
            };
        } else {
            self.good = 0;
            self.bad += 1;
            self.state = match self.state {
                LinkState::Offline | LinkState::Connecting | LinkState::Unknown => {
                    LinkState::Offline
                }
                _ if self.bad >= self.cfg.down => LinkState::Offline,
                _ => LinkState::Disconnecting,
            };
        }
        self.round_ok = 0;
    }

    pub fn observe(&mut self, s: &Sample, _q: &Quality, _now: Millis) {
        if self.round.is_some_and(|r| r != s.round) {
            self.close_round();
        }
        self.round = Some(s.round);
        if matches!(s.outcome, ProbeOutcome::Reply { .. }) {
            self.round_ok += 1;
        }
    }

    pub fn carrier(&mut self, up: bool, _now: Millis) {
        if !up {
            self.state = LinkState::Offline;
            self.good = 0;
        }
    }

    pub fn silence(&mut self, silent_ms: Millis, _now: Millis) {
        if silent_ms > silence_limit_ms(&self.cfg) {
            self.state = LinkState::Unknown;
        }
    }

    pub fn probe_timing(&self, _q: &Quality) -> (u64, u64) {
        let interval = match self.state {
            LinkState::Disconnecting | LinkState::Offline => self.cfg.failure_interval,
            LinkState::Connecting => self.cfg.recovery_interval,
            _ => self.cfg.interval,
        };
        (interval, self.cfg.timeout)
    }
}
