//! The impairment model, pure: given a frame's arrival time and length,
//! decide whether it is dropped or when it leaves. The hop applies one
//! `Shaper` per direction.
//!
//! Configured figures are what a ROUND TRIP sees, so `ping` shows them:
//! each direction adds `delay/2` plus a normal sample with standard deviation
//! `jitter/sqrt(2)` (the sum of both directions then has mean `delay` and
//! standard deviation `jitter`, which is what ping's mdev reports), and drops
//! with probability `1 - sqrt(1 - loss)` (so a round trip is lost with
//! probability `loss`). Jittered frames may overtake each other, as with
//! netem. The rate cap is per direction: frames are serialised at
//! `rate_kbit` behind a FIFO holding at most `queue_ms` worth of bytes
//! (tail drop), before the delay; a saturated cap therefore shows bufferbloat
//! of up to `queue_ms`.

use serde::{Deserialize, Serialize};

/// Per-WAN impairment settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Impairment {
    /// Mean round-trip delay added, in ms.
    pub delay_ms: f64,
    /// Standard deviation of the round-trip delay, in ms.
    pub jitter_ms: f64,
    /// Round-trip loss in percent (0..=100).
    pub loss_pct: f64,
    /// Bandwidth cap per direction in kbit/s; 0 = no cap.
    pub rate_kbit: u64,
    /// Longest queueing delay the cap's buffer holds, in ms.
    #[serde(default = "default_queue_ms")]
    pub queue_ms: u64,
}

fn default_queue_ms() -> u64 {
    1000
}

impl Default for Impairment {
    fn default() -> Self {
        Impairment {
            delay_ms: 0.0,
            jitter_ms: 0.0,
            loss_pct: 0.0,
            rate_kbit: 0,
            queue_ms: default_queue_ms(),
        }
    }
}

impl Impairment {
    /// Checks ranges; the error names the field and what was expected.
    pub fn validate(&self) -> Result<(), String> {
        let finite_nonneg = |v: f64| v.is_finite() && v >= 0.0;
        if !finite_nonneg(self.delay_ms) || self.delay_ms > 60_000.0 {
            return Err(format!("delay {} ms: expected 0 to 60000", self.delay_ms));
        }
        if !finite_nonneg(self.jitter_ms) || self.jitter_ms > 60_000.0 {
            return Err(format!("jitter {} ms: expected 0 to 60000", self.jitter_ms));
        }
        if !finite_nonneg(self.loss_pct) || self.loss_pct > 100.0 {
            return Err(format!("loss {} %: expected 0 to 100", self.loss_pct));
        }
        if self.rate_kbit > 0 && (self.queue_ms == 0 || self.queue_ms > 60_000) {
            return Err(format!("queue {} ms: expected 1 to 60000", self.queue_ms));
        }
        Ok(())
    }

    /// True when frames can pass straight through.
    pub fn is_clear(&self) -> bool {
        self.delay_ms == 0.0 && self.jitter_ms == 0.0 && self.loss_pct == 0.0 && self.rate_kbit == 0
    }
}

/// Small seeded generator (splitmix64): reproducible runs, no crate needed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// What happens to one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Leave at this time (ns on the hop's clock).
    Deliver(u64),
    /// Random loss.
    Lost,
    /// The cap's queue is full.
    QueueFull,
}

/// One direction of an impaired link.
#[derive(Clone, Debug)]
pub struct Shaper {
    rng: Rng,
    /// When the serialiser is free again (ns).
    busy_until: u64,
    loss_prob: f64,
    mean_ns: f64,
    sd_ns: f64,
    ns_per_byte: f64,
    queue_ns: u64,
}

impl Shaper {
    pub fn new(seed: u64, imp: &Impairment) -> Self {
        let mut s = Shaper {
            rng: Rng::new(seed),
            busy_until: 0,
            loss_prob: 0.0,
            mean_ns: 0.0,
            sd_ns: 0.0,
            ns_per_byte: 0.0,
            queue_ns: 0,
        };
        s.configure(imp);
        s
    }

    /// Applies new settings; the generator's sequence carries on.
    pub fn configure(&mut self, imp: &Impairment) {
        self.loss_prob = 1.0 - (1.0 - imp.loss_pct / 100.0).max(0.0).sqrt();
        self.mean_ns = imp.delay_ms * 1e6 / 2.0;
        self.sd_ns = imp.jitter_ms * 1e6 / std::f64::consts::SQRT_2;
        self.ns_per_byte = if imp.rate_kbit == 0 {
            0.0
        } else {
            8e6 / imp.rate_kbit as f64
        };
        self.queue_ns = imp.queue_ms * 1_000_000;
    }

    /// Decides the fate of a frame of `len` bytes arriving at `now` (ns).
    pub fn admit(&mut self, now: u64, len: usize) -> Verdict {
        if self.loss_prob > 0.0 && self.rng.unit() < self.loss_prob {
            return Verdict::Lost;
        }
        let mut leave = now;
        if self.ns_per_byte > 0.0 {
            let start = self.busy_until.max(now);
            if start - now > self.queue_ns {
                return Verdict::QueueFull;
            }
            leave = start + (len as f64 * self.ns_per_byte) as u64;
            self.busy_until = leave;
        }
        let mut delay = self.mean_ns;
        if self.sd_ns > 0.0 {
            delay += self.sd_ns * self.rng.normal();
        }
        Verdict::Deliver(leave + delay.max(0.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips(imp: Impairment, n: usize) -> (Vec<f64>, usize) {
        let mut up = Shaper::new(1, &imp);
        let mut down = Shaper::new(2, &imp);
        let mut rtts = Vec::new();
        let mut lost = 0;
        for i in 0..n {
            let t = i as u64 * 10_000_000;
            match up.admit(t, 98) {
                Verdict::Deliver(a) => match down.admit(a, 98) {
                    Verdict::Deliver(b) => rtts.push((b - t) as f64 / 1e6),
                    _ => lost += 1,
                },
                _ => lost += 1,
            }
        }
        (rtts, lost)
    }

    #[test]
    fn round_trip_shows_configured_delay_jitter_and_loss() {
        let imp = Impairment {
            delay_ms: 50.0,
            jitter_ms: 10.0,
            loss_pct: 10.0,
            ..Impairment::default()
        };
        let n = 100_000;
        let (rtts, lost) = round_trips(imp, n);
        let mean = rtts.iter().sum::<f64>() / rtts.len() as f64;
        let var = rtts.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / rtts.len() as f64;
        assert!((mean - 50.0).abs() < 0.2, "mean {mean}");
        assert!((var.sqrt() - 10.0).abs() < 0.2, "sd {}", var.sqrt());
        let loss = lost as f64 * 100.0 / n as f64;
        assert!((loss - 10.0).abs() < 0.5, "loss {loss}");
    }

    #[test]
    fn clear_settings_pass_frames_unchanged() {
        let mut s = Shaper::new(7, &Impairment::default());
        assert_eq!(s.admit(123, 1500), Verdict::Deliver(123));
        assert!(Impairment::default().is_clear());
    }

    #[test]
    fn rate_cap_serialises_and_tail_drops() {
        let imp = Impairment {
            rate_kbit: 8_000, // 1 byte per microsecond
            queue_ms: 1,
            ..Impairment::default()
        };
        let mut s = Shaper::new(3, &imp);
        assert_eq!(s.admit(0, 1000), Verdict::Deliver(1_000_000));
        assert_eq!(s.admit(0, 1000), Verdict::Deliver(2_000_000));
        // The third waits behind 2 ms of backlog: over the 1 ms queue.
        assert_eq!(s.admit(0, 1000), Verdict::QueueFull);
        assert_eq!(s.admit(1_500_000, 1000), Verdict::Deliver(3_000_000));
    }

    #[test]
    fn validation_names_the_bad_field() {
        let bad = Impairment {
            loss_pct: 120.0,
            ..Impairment::default()
        };
        assert!(bad.validate().unwrap_err().contains("loss 120"));
    }
}
