//! What a WAN's health machine is configured with (from its interface's
//! options), its limits, and our recommended tracking defaults.

use crate::config::{InitialState, Interface, ProbeBudget, TrackMethod};
use crate::Millis;

/// mwan3's `check_quality` thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QualityThresholds {
    pub failure_latency_ms: u32,
    pub recovery_latency_ms: u32,
    pub failure_loss_pct: u32,
    pub recovery_loss_pct: u32,
}

/// Everything the health machine needs from one `interface` section.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSettings {
    pub enabled: bool,
    /// Number of `track_ip` entries; 0 means "assumed online".
    pub targets: usize,
    pub reliability: u32,
    pub count: u32,
    pub interval: Millis,
    pub failure_interval: Millis,
    pub recovery_interval: Millis,
    pub keep_failure_interval: bool,
    pub down: u32,
    pub up: u32,
    pub initial_state: InitialState,
    /// `Some` when `check_quality` is on.
    pub quality_check: Option<QualityThresholds>,
    /// Configured `timeout`: the upper bound of the effective probe timeout.
    pub timeout: Millis,
    /// Lower bound of the effective probe timeout.
    pub timeout_floor: Millis,
    /// Silence after which the tracker is presumed stuck and the state Unknown.
    pub silence_limit: Millis,
    /// Shortest round spacing the tracker keeps whatever interval it is
    /// told: its probe budget's (0 without a budget).
    pub min_round_spacing: Millis,
}

/// Lower bound of the adaptive probe timeout (Linux's TCP_RTO_MIN).
pub const DEFAULT_TIMEOUT_FLOOR_MS: Millis = 200;
/// Slack on top of the longest legitimate silence before a tracker counts as stuck.
const SILENCE_SLACK_MS: Millis = 500;
/// How long past a probe's timeout the core waits for the tracker to report it.
pub const ROUND_GRACE_MS: Millis = 50;
/// Larger jumps in round numbers are taken as a tracker restart, not as lost rounds.
pub(super) const MAX_ROUND_GAP: u64 = 64;
/// At most 2^MAX_BACKOFF_SHIFT times the RTO after rounds without any reply.
pub(super) const MAX_BACKOFF_SHIFT: u32 = 6;

impl HealthSettings {
    /// The settings an interface section implies (mwan3 defaults already
    /// resolved by the config layer).
    pub fn from_interface(iface: &Interface) -> Self {
        let targets = iface.track_ip.len();
        let quality_check = iface.check_quality.then_some(QualityThresholds {
            failure_latency_ms: iface.failure_latency_ms,
            recovery_latency_ms: iface.recovery_latency_ms,
            failure_loss_pct: iface.failure_loss_pct,
            recovery_loss_pct: iface.recovery_loss_pct,
        });
        let min_round_spacing = budget_round_spacing(iface);
        let longest_interval = iface
            .interval
            .max(iface.failure_interval)
            .max(iface.recovery_interval)
            .max(min_round_spacing);
        HealthSettings {
            enabled: iface.enabled,
            targets,
            reliability: iface.reliability,
            count: iface.count.max(1),
            interval: iface.interval,
            failure_interval: iface.failure_interval,
            recovery_interval: iface.recovery_interval,
            keep_failure_interval: iface.keep_failure_interval,
            down: iface.down.max(1),
            up: iface.up.max(1),
            initial_state: iface.initial_state,
            quality_check,
            timeout: iface.timeout,
            timeout_floor: DEFAULT_TIMEOUT_FLOOR_MS,
            silence_limit: 2 * longest_interval + iface.timeout + SILENCE_SLACK_MS,
            min_round_spacing,
        }
    }
}

/// The spacing of rounds a probe budget forces on the tracker (0 if none),
/// computed as mwan-track does (`budgeted_interval_us` and
/// `bytes_per_probe` in crates/mwan-track/src/tracker/mod.rs: whole probes
/// per minute, bytes per probe by method and family), rounded up to a ms.
fn budget_round_spacing(iface: &Interface) -> Millis {
    let probes_per_round = (iface.track_ip.len() as u64).max(1) * u64::from(iface.count.max(1));
    let per_minute = match iface.probe_budget {
        Some(ProbeBudget::ProbesPerMinute(n)) => u64::from(n),
        Some(ProbeBudget::BytesPerDay(bytes)) => (bytes / (bytes_per_probe(iface) * 1440)).max(1),
        None => return 0,
    };
    (probes_per_round * 60_000_000 / per_minute.max(1)).div_ceil(1000)
}

/// Bytes on the wire per probe, both directions, headers included (the
/// tracker's estimate for `--budget-bytes-day`).
fn bytes_per_probe(iface: &Interface) -> u64 {
    let v6 = iface.track_ip.iter().any(|t| t.contains(':'));
    let ip = if v6 { 40 } else { 20 };
    // The tracker sends at least its 8-byte cookie (10 for UDP).
    let size = u64::from(iface.size);
    match iface.track_method {
        TrackMethod::Ping | TrackMethod::NpingIcmp => 2 * (ip + 8 + size.max(8)),
        TrackMethod::Arping | TrackMethod::NpingArp => 2 * 60,
        TrackMethod::NpingTcp => 4 * (ip + 40),
        TrackMethod::NpingUdp => 2 * (ip + 8 + size.max(10)),
        TrackMethod::Nslookup => 2 * (ip + 8 + 40) + 64,
        TrackMethod::Httping => 10 * (ip + 32) + 600,
    }
}

/// Our own defaults for new `/etc/config/mwan` files (not mwan3's): detect a
/// silent cut within about a second without false failovers at 5 % loss and
/// 30 ms jitter. The numbers are justified in docs/decisions.md.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecommendedTracking {
    /// Number of `track_ip` targets to configure (independent hosts).
    pub targets: u32,
    pub reliability: u32,
    pub count: u32,
    pub interval_ms: Millis,
    pub failure_interval_ms: Millis,
    pub recovery_interval_ms: Millis,
    pub keep_failure_interval: bool,
    /// Configured timeout: the cap of the adaptive timeout (tolerates 1-2 s bufferbloat).
    pub timeout_ms: Millis,
    pub timeout_floor_ms: Millis,
    pub down: u32,
    pub up: u32,
    /// Quality scoring (wanmon-style) defaults.
    pub smoothing: f64,
    pub loss_divisor: f64,
    pub loss_limit_pct: f64,
    pub bias_ms: f64,
    /// Score-mode policy defaults.
    pub hysteresis: f64,
    pub min_stable_ms: Millis,
}

/// See [`RecommendedTracking`].
pub const RECOMMENDED_TRACKING: RecommendedTracking = RecommendedTracking {
    targets: 3,
    reliability: 1,
    count: 1,
    interval_ms: 200,
    failure_interval_ms: 200,
    recovery_interval_ms: 200,
    keep_failure_interval: false,
    timeout_ms: 3000,
    timeout_floor_ms: DEFAULT_TIMEOUT_FLOOR_MS,
    down: 3,
    up: 10,
    smoothing: 0.0095,
    loss_divisor: 10.0,
    loss_limit_pct: 50.0,
    bias_ms: 0.0,
    hysteresis: 30.0,
    min_stable_ms: 30_000,
};

/// Same as [`RECOMMENDED_TRACKING`], for callers that prefer a function.
pub fn recommended_defaults() -> RecommendedTracking {
    RECOMMENDED_TRACKING
}
