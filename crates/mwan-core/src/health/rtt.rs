//! The round-trip time estimator behind the adaptive probe timeout.

use crate::Millis;

/// RFC 6298 estimator in integer microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RttEstimator {
    pub(super) srtt_us: i64,
    pub(super) rttvar_us: i64,
    pub(super) samples: u64,
    /// Doubling after rounds that got no reply at all while down (RFC 6298 5.5).
    pub(super) backoff_shift: u32,
}

impl RttEstimator {
    pub(super) fn sample(&mut self, rtt_us: u32) {
        let r = i64::from(rtt_us);
        if self.samples == 0 {
            self.srtt_us = r;
            self.rttvar_us = r / 2;
        } else {
            self.rttvar_us += ((self.srtt_us - r).abs() - self.rttvar_us) / 4;
            self.srtt_us += (r - self.srtt_us) / 8;
        }
        self.samples += 1;
        self.backoff_shift = 0;
    }

    pub(super) fn timeout(&self, floor: Millis, cap: Millis) -> Millis {
        if self.samples == 0 {
            return cap;
        }
        let rto_us = self.srtt_us + (4 * self.rttvar_us).max(1000);
        let rto_ms = (rto_us.max(0) as u64).div_ceil(1000);
        let backed_off = rto_ms.max(floor).saturating_mul(1 << self.backoff_shift);
        backed_off.min(cap)
    }
}
