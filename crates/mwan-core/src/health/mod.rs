//! Per-WAN health with mwan3's semantics (probe rounds, reliability, up/down
//! counters, failure/recovery intervals, check_quality), fed one probe result
//! at a time.
//!
//! mwan3track runs a round every interval: each `track_ip` is probed `count`
//! times, a target is up when it answered (with `check_quality`, when loss and
//! latency are within the thresholds), and the round succeeds when at least
//! `reliability` targets are up. `down` failed rounds in a row take an online
//! link offline; `up` successful rounds in a row bring it back.
//!
//! Our tracker streams individual results instead of a per-round verdict, so
//! [`Health`] groups them by their `round` number, decides a round as soon as
//! its outcome is certain (enough targets up, or too many down), and fails a
//! round whose probes are past their timeout without waiting for stragglers.
//! Rounds are applied to the counter in round order. A tracker that goes
//! silent makes the state [`LinkState::Unknown`] (not offline) while the
//! counter keeps its history, and the next round continues from it.
//!
//! The per-probe timeout follows the measured round-trip time like TCP's RTO
//! (RFC 6298: SRTT + 4·RTTVAR), bounded below by a floor and above by the
//! configured `timeout`. Differences from mwan3 are listed in
//! docs/decisions.md.

use std::collections::VecDeque;

pub mod analysis;

use serde::{Deserialize, Serialize};

use crate::config::{InitialState, Interface, ProbeBudget};
use crate::Millis;

/// A WAN's tracking state, as mwan3 names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LinkState {
    /// No samples yet (or tracker silent too long).
    Unknown,
    Online,
    /// Failing rounds seen, not yet `down` of them.
    Disconnecting,
    Offline,
    /// Successful rounds seen, not yet `up` of them.
    Connecting,
    Disabled,
}

impl LinkState {
    /// mwan3's spelling (`/var/run/mwan3track/*/STATUS`).
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Unknown => "unknown",
            LinkState::Online => "online",
            LinkState::Disconnecting => "disconnecting",
            LinkState::Offline => "offline",
            LinkState::Connecting => "connecting",
            LinkState::Disabled => "disabled",
        }
    }
}

impl std::fmt::Display for LinkState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of one probe (the core's own view; mwand maps the wire type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// Answered after `rtt_us` microseconds.
    Reply { rtt_us: u32 },
    /// No (usable) answer: timeout, unreachable, refused, wrong answer, send error.
    Lost,
    /// An answer to a probe already reported [`ProbeOutcome::Lost`] (a tracker
    /// that keeps listening past the effective timeout). It no longer counts
    /// for its round but its RTT teaches the timeout estimator.
    LateReply { rtt_us: u32 },
}

/// One probe's result as the core consumes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeResult {
    /// Index of the target in the interface's `track_ip` list.
    pub target: usize,
    /// Round number from the tracker (all targets × count of one interval).
    pub round: u64,
    /// When the probe was sent (same clock as `now`).
    pub sent_at: Millis,
    pub outcome: ProbeOutcome,
}

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
}

/// Lower bound of the adaptive probe timeout (Linux's TCP_RTO_MIN).
pub const DEFAULT_TIMEOUT_FLOOR_MS: Millis = 200;
/// Slack on top of the longest legitimate silence before a tracker counts as stuck.
const SILENCE_SLACK_MS: Millis = 500;
/// How long past a probe's timeout the core waits for the tracker to report it.
pub const ROUND_GRACE_MS: Millis = 50;
/// Larger jumps in round numbers are taken as a tracker restart, not as lost rounds.
const MAX_ROUND_GAP: u64 = 64;
/// At most 2^MAX_BACKOFF_SHIFT times the RTO after rounds without any reply.
const MAX_BACKOFF_SHIFT: u32 = 6;

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
        let longest_interval = iface
            .interval
            .max(iface.failure_interval)
            .max(iface.recovery_interval)
            .max(budget_round_spacing(iface));
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
        }
    }
}

/// The spacing of rounds a probe budget forces on the tracker (0 if none).
fn budget_round_spacing(iface: &Interface) -> Millis {
    let probes_per_round = (iface.track_ip.len() as u64).max(1) * u64::from(iface.count.max(1));
    match iface.probe_budget {
        Some(ProbeBudget::ProbesPerMinute(n)) if n > 0 => probes_per_round * 60_000 / u64::from(n),
        Some(ProbeBudget::BytesPerDay(bytes)) if bytes > 0 => {
            // Request and reply, IP + ICMP headers on top of the payload.
            let per_probe = 2 * (u64::from(iface.size) + 28);
            probes_per_round * per_probe * 86_400_000 / bytes
        }
        _ => 0,
    }
}

/// A state change, as an event for logs, hotplug and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: LinkState,
    pub to: LinkState,
    pub at: Millis,
}

/// Which of mwan3's intervals is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IntervalKind {
    Normal,
    Failure,
    Recovery,
}

/// What the tracker should be told to use now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackerTiming {
    pub interval_kind: IntervalKind,
    pub interval: Millis,
    /// Effective per-probe timeout (adaptive, within floor..=configured).
    pub timeout: Millis,
}

/// Counters for status and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HealthCounters {
    pub rounds_ok: u64,
    pub rounds_failed: u64,
    /// Rounds failed because their deadline passed with probes unreported.
    pub rounds_expired: u64,
    /// Results ignored because their round was already decided or unknown.
    pub stale_results: u64,
    /// Failed rounds withdrawn because an answer came within the configured timeout.
    pub rounds_withdrawn: u64,
}

/// mwan3's score counter, split in its two halves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Online side: consecutive failed rounds so far (< down).
    Up { failed: u32 },
    /// Offline side: consecutive successful rounds so far (< up).
    Down { succeeded: u32 },
}

/// Whether the last applied round moved the counter across a boundary
/// (mwan3 uses failure/recovery_interval for the round after such a move).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crossed {
    No,
    WentDown,
    WentUp,
}

#[derive(Debug, Clone, Copy, Default)]
struct TargetTally {
    results: u32,
    replies: u32,
    rtt_sum_us: u64,
}

#[derive(Debug, Clone)]
struct OpenRound {
    round: u64,
    /// Timeout in force when the round was first seen.
    timeout: Millis,
    deadline: Millis,
    tally: Vec<TargetTally>,
    /// Without check_quality: Some(success) once certain.
    verdict: Option<bool>,
    /// All probes reported, or the deadline passed.
    complete: bool,
    expired: bool,
}

/// A round the tracker is expected to send at `sent_at` (its schedule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Expectation {
    round: u64,
    sent_at: Millis,
}

/// Slack on the tracker's schedule before an expected round counts as
/// missing: timer and scheduling delays, an eighth of the spacing. A round
/// failed too early by a late tracker is withdrawn when its answers arrive
/// (while the link is up), so the slack can be small.
pub fn schedule_slack(spacing: Millis) -> Millis {
    spacing / 8
}

/// How long after a round's first probe its last one may be sent: the
/// tracker spreads a round's `targets × count` probes evenly over the
/// interval (docs/tracker.md), so the last leaves (n-1)/n of it later.
pub fn round_span(spacing: Millis, probes_per_round: u64) -> Millis {
    let n = probes_per_round.max(1);
    spacing * (n - 1) / n
}

/// RFC 6298 estimator in integer microseconds.
#[derive(Debug, Clone, Copy, Default)]
struct RttEstimator {
    srtt_us: i64,
    rttvar_us: i64,
    samples: u64,
    /// Doubling after rounds that got no reply at all while down (RFC 6298 5.5).
    backoff_shift: u32,
}

impl RttEstimator {
    fn sample(&mut self, rtt_us: u32) {
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

    fn timeout(&self, floor: Millis, cap: Millis) -> Millis {
        if self.samples == 0 {
            return cap;
        }
        let rto_us = self.srtt_us + (4 * self.rttvar_us).max(1000);
        let rto_ms = (rto_us.max(0) as u64).div_ceil(1000);
        let backed_off = rto_ms.max(floor).saturating_mul(1 << self.backoff_shift);
        backed_off.min(cap)
    }
}

/// One WAN's health machine.
#[derive(Debug, Clone)]
pub struct Health {
    settings: HealthSettings,
    phase: Phase,
    crossed: Crossed,
    /// The state last reported (transitions are diffs against it).
    state: LinkState,
    since: Millis,
    /// netifd says the interface is down (mwan3: ifdown -> disabled).
    link_down: bool,
    /// No round applied since start, ifup or aging.
    awaiting_round: bool,
    aged: bool,
    usable_since: Option<Millis>,
    rounds: VecDeque<OpenRound>,
    last_applied: Option<u64>,
    highest_seen: Option<u64>,
    /// Rounds of the current run of failures while up (withdrawable).
    failed_run: Vec<OpenRound>,
    /// The next round the tracker should be sending, and when.
    expect: Option<Expectation>,
    /// Interval in force before the last applied round (the tracker may
    /// still be sleeping it when the interval changes).
    prev_interval: Millis,
    last_heard: Option<Millis>,
    rtt: RttEstimator,
    counters: HealthCounters,
    spare_tallies: Vec<Vec<TargetTally>>,
    /// The tracker reports every lost probe at the effective timeout (and
    /// late answers up to the configured one): see
    /// [`Health::set_prompt_loss_reports`].
    prompt_reports: bool,
}

impl Health {
    pub fn new(settings: HealthSettings, now: Millis) -> Self {
        let phase = initial_phase(settings.initial_state);
        let mut health = Health {
            settings,
            phase,
            crossed: Crossed::No,
            state: LinkState::Unknown,
            since: now,
            link_down: false,
            awaiting_round: true,
            aged: false,
            usable_since: None,
            rounds: VecDeque::new(),
            last_applied: None,
            highest_seen: None,
            failed_run: Vec::new(),
            expect: None,
            prev_interval: 0,
            last_heard: None,
            rtt: RttEstimator::default(),
            counters: HealthCounters::default(),
            spare_tallies: Vec::new(),
            prompt_reports: false,
        };
        health.state = health.derived_state();
        if health.usable() {
            health.usable_since = Some(now);
        }
        health
    }

    pub fn settings(&self) -> &HealthSettings {
        &self.settings
    }

    /// Tell the machine how its tracker reports. With `true` the tracker
    /// reports each lost probe as soon as the effective timeout
    /// ([`Health::tracker_timing`]) has passed, and answers that come later
    /// (up to the configured timeout) as replies; so a link that goes
    /// silent still produces results at the usual pace, and a round of
    /// which nothing at all arrives, one round spacing past its deadline,
    /// means the tracker itself went silent (hung, stopped): the state
    /// becomes [`LinkState::Unknown`] with the last verdict and history
    /// kept, as for a tracker that is gone, instead of failing the round.
    /// With `false` (a tracker that reports losses only at the configured
    /// timeout) such rounds fail on time, which is the only way to detect
    /// a silent cut quickly, and a hung tracker looks like a cut.
    pub fn set_prompt_loss_reports(&mut self, prompt: bool) {
        self.prompt_reports = prompt;
    }

    pub fn state(&self) -> LinkState {
        self.state
    }

    /// When the current state began.
    pub fn since(&self) -> Millis {
        self.since
    }

    /// Whether traffic may use this WAN: online or disconnecting (mwan3 keeps
    /// routes until `disconnected`). Unknown keeps the last known verdict
    /// (initially `initial_state`): a silent tracker is not evidence of a dead
    /// link.
    pub fn usable(&self) -> bool {
        match self.state {
            LinkState::Online | LinkState::Disconnecting => true,
            LinkState::Offline | LinkState::Connecting | LinkState::Disabled => false,
            LinkState::Unknown => matches!(self.phase, Phase::Up { .. }),
        }
    }

    /// Since when [`Health::usable`] has been true without interruption.
    pub fn usable_since(&self) -> Option<Millis> {
        self.usable_since
    }

    /// True while the state is Unknown because the tracker went silent.
    pub fn aged(&self) -> bool {
        self.aged
    }

    /// mwan3's score counter (`/var/run/mwan3track/<iface>/SCORE`):
    /// `down + up` when online, counting down while disconnecting, 0 when
    /// offline, counting up while connecting.
    pub fn mwan3_score(&self) -> u32 {
        let s = &self.settings;
        match self.phase {
            Phase::Up { failed } => (s.down + s.up).saturating_sub(failed),
            Phase::Down { succeeded } => succeeded,
        }
    }

    pub fn counters(&self) -> HealthCounters {
        self.counters
    }

    /// Smoothed RTT in ms, once a reply has been seen.
    pub fn srtt_ms(&self) -> Option<f64> {
        (self.rtt.samples > 0).then(|| self.rtt.srtt_us as f64 / 1000.0)
    }

    /// Interval and timeout the tracker should use now.
    pub fn tracker_timing(&self) -> TrackerTiming {
        let (interval_kind, interval) = self.interval();
        TrackerTiming {
            interval_kind,
            interval,
            timeout: self.probe_timeout(),
        }
    }

    /// mwan3's choice of sleep after the last round.
    pub fn interval(&self) -> (IntervalKind, Millis) {
        let s = &self.settings;
        let kind = if self.awaiting_round {
            IntervalKind::Normal
        } else {
            match (self.phase, self.crossed) {
                (Phase::Up { failed: 0 }, Crossed::WentUp) => IntervalKind::Recovery,
                (Phase::Up { failed: 0 }, _) => IntervalKind::Normal,
                (Phase::Up { .. }, _) => IntervalKind::Failure,
                (Phase::Down { succeeded: 0 }, Crossed::WentDown) => IntervalKind::Failure,
                (Phase::Down { succeeded: 0 }, _) if s.keep_failure_interval => {
                    IntervalKind::Failure
                }
                (Phase::Down { succeeded: 0 }, _) => IntervalKind::Normal,
                (Phase::Down { .. }, _) => IntervalKind::Recovery,
            }
        };
        let ms = match kind {
            IntervalKind::Normal => s.interval,
            IntervalKind::Failure => s.failure_interval,
            IntervalKind::Recovery => s.recovery_interval,
        };
        (kind, ms)
    }

    /// Effective per-probe timeout: SRTT + 4·RTTVAR, doubled after rounds
    /// without any reply, within `timeout_floor..=timeout` (the configured
    /// timeout wins when it is below the floor).
    pub fn probe_timeout(&self) -> Millis {
        let floor = self.settings.timeout_floor.min(self.settings.timeout);
        self.rtt.timeout(floor, self.settings.timeout)
    }

    /// The next time [`Health::tick`] has something to do (round deadline or
    /// tracker silence), for the event loop's timer.
    pub fn next_deadline(&self) -> Option<Millis> {
        let round = self
            .rounds
            .iter()
            .filter(|r| !r.complete)
            .map(|r| r.deadline)
            .min();
        let silence = match (self.aged, self.last_heard) {
            (false, Some(heard)) if self.tracking() => Some(heard + self.settings.silence_limit),
            _ => None,
        };
        let expected = self.expect.map(|e| self.expectation_deadline(e));
        [round, silence, expected].into_iter().flatten().min()
    }

    /// Spacing of the tracker's rounds: the interval in force, or the one
    /// before it if longer (a tracker may still be sleeping the old one).
    fn round_spacing(&self) -> Millis {
        self.interval().1.max(self.prev_interval).max(1)
    }

    fn expectation_deadline(&self, e: Expectation) -> Millis {
        let spacing = self.round_spacing();
        let deadline = e.sent_at
            + self.span()
            + self.probe_timeout()
            + ROUND_GRACE_MS
            + schedule_slack(spacing);
        // A prompt tracker has reported this round's first probe by now; a
        // round spacing more tells a slow tracker from a silent one.
        if self.prompt_reports {
            deadline + spacing
        } else {
            deadline
        }
    }

    /// [`round_span`] at the current spacing.
    fn span(&self) -> Millis {
        let probes = self.settings.targets as u64 * u64::from(self.settings.count);
        round_span(self.round_spacing(), probes)
    }

    /// Feed one probe result received at `now`.
    pub fn on_probe(&mut self, probe: &ProbeResult, now: Millis) -> Vec<Transition> {
        let mut out = Vec::new();
        if !self.tracking() {
            return out;
        }
        self.expire_rounds(now, &mut out);
        self.expire_expected(now, &mut out);
        self.last_heard = Some(now);
        // The timeout this probe was sent under, before it teaches the estimator.
        let timeout = self.probe_timeout();
        match probe.outcome {
            ProbeOutcome::Reply { rtt_us } | ProbeOutcome::LateReply { rtt_us } => {
                self.rtt.sample(rtt_us)
            }
            ProbeOutcome::Lost => {}
        }
        // A reply within the configured timeout is what mwan3 counts as an
        // answer; the adaptive timeout only lets a round fail earlier.
        let answered = match probe.outcome {
            ProbeOutcome::Reply { rtt_us } | ProbeOutcome::LateReply { rtt_us }
                if u64::from(rtt_us) <= self.settings.timeout * 1000 =>
            {
                Some(rtt_us)
            }
            _ => None,
        };
        if probe.target >= self.settings.targets {
            self.counters.stale_results += 1;
            return out;
        }
        if self.last_applied.is_some_and(|last| probe.round <= last) {
            match answered {
                Some(rtt_us) => self.withdraw_failure(probe, rtt_us, now, &mut out),
                None => self.counters.stale_results += 1,
            }
            return out;
        }
        let index = self.open_round(probe, timeout, now);
        let span = self.span();
        let count = self.settings.count;
        let recovering = matches!(self.phase, Phase::Down { .. });
        let round = &mut self.rounds[index];
        round.deadline = round
            .deadline
            .min(probe.sent_at + span + round.timeout + ROUND_GRACE_MS);
        if !record(
            &mut round.tally[probe.target],
            count,
            probe.outcome,
            answered,
        ) {
            self.counters.stale_results += 1;
            return out;
        }
        if round.complete {
            // Decided but queued behind an earlier round: a late answer can
            // still turn a failure into a success.
            if round.verdict == Some(false) && answered.is_some() {
                round.verdict = Some(round_succeeds(&self.settings, recovering, round));
            }
        } else {
            self.settle(index);
        }
        self.release_rounds(now, &mut out);
        out
    }

    /// An answer within the configured timeout for a round already counted
    /// as failed while the link is still up: if the round now succeeds, the
    /// failure is withdrawn (mwan3, waiting the full timeout, would have
    /// counted it as a success). Once the link went down it is too late.
    fn withdraw_failure(
        &mut self,
        probe: &ProbeResult,
        rtt_us: u32,
        now: Millis,
        out: &mut Vec<Transition>,
    ) {
        let Some(pos) = self.failed_run.iter().position(|r| r.round == probe.round) else {
            self.counters.stale_results += 1;
            return;
        };
        let count = self.settings.count;
        let round = &mut self.failed_run[pos];
        let outcome = ProbeOutcome::LateReply { rtt_us };
        if !record(&mut round.tally[probe.target], count, outcome, Some(rtt_us))
            || !round_succeeds(&self.settings, false, round)
        {
            return;
        }
        let round = self.failed_run.swap_remove(pos);
        self.spare_tallies.push(round.tally);
        if let Phase::Up { failed } = self.phase {
            self.phase = Phase::Up {
                failed: failed.saturating_sub(1),
            };
        }
        self.counters.rounds_withdrawn += 1;
        self.update_state(now, out);
    }

    /// Advance time: fail rounds past their deadline, age a silent tracker.
    pub fn tick(&mut self, now: Millis) -> Vec<Transition> {
        let mut out = Vec::new();
        if !self.tracking() {
            return out;
        }
        self.expire_rounds(now, &mut out);
        self.expire_expected(now, &mut out);
        if let Some(heard) = self.last_heard {
            if !self.aged && now >= heard + self.settings.silence_limit {
                self.go_silent(now, &mut out);
            }
        }
        out
    }

    /// The tracker went silent: Unknown (aged) with the counter's history
    /// and the last verdict kept; the next decided round continues.
    fn go_silent(&mut self, now: Millis, out: &mut Vec<Transition>) {
        self.aged = true;
        self.awaiting_round = true;
        self.recycle_rounds();
        // Rounds missed while silent are not failures.
        self.highest_seen = None;
        self.expect = None;
        self.update_state(now, out);
    }

    /// Rounds the tracker should have sent by now but of which nothing
    /// arrived: a silent cut sends nothing back, and a tracker that reports
    /// losses only at the configured timeout would otherwise hold the
    /// decision back by that long. They fail at `sent + effective timeout +
    /// grace + schedule slack`. (A tracker that is gone is reported with
    /// [`Health::tracker_lost`] and then ages to Unknown instead.)
    fn expire_expected(&mut self, now: Millis, out: &mut Vec<Transition>) {
        let mut budget = MAX_ROUND_GAP;
        while let Some(e) = self.expect {
            if now < self.expectation_deadline(e) {
                break;
            }
            if budget == 0 {
                self.expect = None;
                break;
            }
            budget -= 1;
            let known = self.last_applied.is_some_and(|last| e.round <= last)
                || self.rounds.iter().any(|r| r.round == e.round);
            if !known && self.prompt_reports {
                // Nothing at all of a round a prompt tracker must have
                // reported: the tracker is silent, not the link.
                self.go_silent(now, out);
                return;
            }
            if !known {
                let timeout = self.probe_timeout();
                let index = self.insert_round(e.round, timeout, now);
                self.rounds[index].expired = true;
                self.counters.rounds_expired += 1;
                self.settle(index);
                self.highest_seen = Some(self.highest_seen.map_or(e.round, |h| h.max(e.round)));
            }
            let spacing = self.round_spacing();
            self.expect = Some(Expectation {
                round: e.round + 1,
                sent_at: e.sent_at + spacing,
            });
            self.release_rounds(now, out);
        }
    }

    /// The tracker's connection is gone (crash, restart): stop expecting its
    /// rounds and drop the open ones without failing them. The state ages to
    /// Unknown if it stays silent; history is kept.
    pub fn tracker_lost(&mut self) {
        self.recycle_rounds();
        self.highest_seen = None;
        self.expect = None;
    }

    /// netifd ifup/ifdown (mwan3: ifdown -> disconnected + disabled; ifup ->
    /// firstconnect, which starts again from `initial_state`).
    pub fn link_event(&mut self, up: bool, now: Millis) -> Vec<Transition> {
        let mut out = Vec::new();
        if up != self.link_down {
            return out;
        }
        self.link_down = !up;
        self.recycle_rounds();
        self.expect = None;
        self.last_applied = None;
        self.highest_seen = None;
        self.last_heard = None;
        self.aged = false;
        self.awaiting_round = true;
        self.crossed = Crossed::No;
        self.phase = if up {
            initial_phase(self.settings.initial_state)
        } else {
            Phase::Down { succeeded: 0 }
        };
        self.update_state(now, &mut out);
        out
    }

    /// The tracker restarted: its round numbers start again. History stays.
    pub fn tracker_restarted(&mut self) {
        self.tracker_lost();
        self.last_applied = None;
    }

    fn tracking(&self) -> bool {
        self.settings.enabled && !self.link_down && self.settings.targets > 0
    }

    fn derived_state(&self) -> LinkState {
        if !self.settings.enabled || self.link_down {
            return LinkState::Disabled;
        }
        if self.settings.targets == 0 {
            return LinkState::Online;
        }
        if self.awaiting_round {
            return LinkState::Unknown;
        }
        match self.phase {
            Phase::Up { failed: 0 } => LinkState::Online,
            Phase::Up { .. } => LinkState::Disconnecting,
            Phase::Down { succeeded: 0 } => LinkState::Offline,
            Phase::Down { .. } => LinkState::Connecting,
        }
    }

    fn update_state(&mut self, now: Millis, out: &mut Vec<Transition>) {
        let was_usable = self.usable();
        let new = self.derived_state();
        if new != self.state {
            out.push(Transition {
                from: self.state,
                to: new,
                at: now,
            });
            self.state = new;
            self.since = now;
        }
        match (was_usable, self.usable()) {
            (false, true) => self.usable_since = Some(now),
            (true, false) => self.usable_since = None,
            _ => {}
        }
    }

    /// Index of the open round for this result, creating it in round order.
    /// Round numbers count up by one per round, so a gap means rounds whose
    /// results are still on their way (a reply of round n+1 often overtakes
    /// the loss report of round n): they are opened too, and fail at their
    /// deadline if nothing arrives.
    fn open_round(&mut self, probe: &ProbeResult, timeout: Millis, now: Millis) -> usize {
        let spacing = self.round_spacing();
        if let Some(e) = self.expect.as_mut() {
            // An earlier-sent probe of the newest round anchors its successor better.
            if e.round == probe.round + 1 {
                e.sent_at = e.sent_at.min(probe.sent_at + spacing);
            }
        }
        if let Some(i) = self.rounds.iter().position(|r| r.round == probe.round) {
            return i;
        }
        let deadline = probe.sent_at.min(now) + self.span() + timeout + ROUND_GRACE_MS;
        let first = match self.highest_seen {
            Some(h) if probe.round > h + 1 && probe.round - h - 1 <= MAX_ROUND_GAP => h + 1,
            _ => probe.round,
        };
        for round in first..=probe.round {
            self.insert_round(round, timeout, deadline);
        }
        let newest = match self.highest_seen {
            None => true,
            Some(h) => probe.round > h,
        };
        if newest {
            self.highest_seen = Some(probe.round);
            let spacing = self.round_spacing();
            self.expect = Some(Expectation {
                round: probe.round + 1,
                sent_at: probe.sent_at + spacing,
            });
        }
        self.rounds
            .iter()
            .position(|r| r.round == probe.round)
            .unwrap_or(0)
    }

    /// Open a round (in round order) and return its index.
    fn insert_round(&mut self, round: u64, timeout: Millis, deadline: Millis) -> usize {
        let mut tally = self.spare_tallies.pop().unwrap_or_default();
        tally.clear();
        tally.resize(self.settings.targets, TargetTally::default());
        let open = OpenRound {
            round,
            timeout,
            deadline,
            tally,
            verdict: None,
            complete: false,
            expired: false,
        };
        let at = self
            .rounds
            .iter()
            .position(|r| r.round > round)
            .unwrap_or(self.rounds.len());
        self.rounds.insert(at, open);
        at
    }

    /// Decide what can be decided about one round from its tally.
    fn settle(&mut self, index: usize) {
        let s = &self.settings;
        let round = &mut self.rounds[index];
        let all_in = round.expired || round.tally.iter().all(|t| t.results >= s.count);
        if s.quality_check.is_some() {
            // Loss and mean latency need every probe of the round.
            round.complete = all_in;
            return;
        }
        let mut up = 0u32;
        let mut down = 0u32;
        for t in &round.tally {
            if t.replies > 0 {
                up += 1;
            } else if t.results >= s.count || round.expired {
                down += 1;
            }
        }
        let targets = s.targets as u32;
        if up >= s.reliability {
            round.verdict = Some(true);
        } else if down > targets.saturating_sub(s.reliability) || (all_in && up < s.reliability) {
            round.verdict = Some(false);
        }
        round.complete = round.verdict.is_some() || all_in;
    }

    fn expire_rounds(&mut self, now: Millis, out: &mut Vec<Transition>) {
        let mut any = false;
        for i in 0..self.rounds.len() {
            if !self.rounds[i].complete && self.rounds[i].deadline <= now {
                self.rounds[i].expired = true;
                self.counters.rounds_expired += 1;
                self.settle(i);
                any = true;
            }
        }
        if any {
            self.release_rounds(now, out);
        }
    }

    /// Apply decided rounds at the head of the queue, in round order.
    fn release_rounds(&mut self, now: Millis, out: &mut Vec<Transition>) {
        while self.rounds.front().is_some_and(|r| r.complete) {
            let Some(round) = self.rounds.pop_front() else {
                break;
            };
            let recovering = matches!(self.phase, Phase::Down { .. });
            let success = match round.verdict {
                Some(v) => v,
                None => round_succeeds(&self.settings, recovering, &round),
            };
            let any_reply = round.tally.iter().any(|t| t.replies > 0);
            self.last_applied = Some(round.round);
            self.apply_round(success, any_reply, now, out);
            if matches!(self.phase, Phase::Up { failed } if failed > 0) && !success {
                self.failed_run.push(round);
            } else {
                self.spare_tallies.push(round.tally);
                if !matches!(self.phase, Phase::Up { failed } if failed > 0) {
                    for r in self.failed_run.drain(..) {
                        self.spare_tallies.push(r.tally);
                    }
                }
            }
        }
    }

    /// One decided round through mwan3's score counter.
    fn apply_round(
        &mut self,
        success: bool,
        any_reply: bool,
        now: Millis,
        out: &mut Vec<Transition>,
    ) {
        self.prev_interval = self.interval().1;
        let s = &self.settings;
        if success {
            self.counters.rounds_ok += 1;
        } else {
            self.counters.rounds_failed += 1;
        }
        let (phase, crossed) = match (self.phase, success) {
            (Phase::Up { .. }, true) => (Phase::Up { failed: 0 }, Crossed::No),
            (Phase::Up { failed }, false) if failed + 1 >= s.down => {
                (Phase::Down { succeeded: 0 }, Crossed::WentDown)
            }
            (Phase::Up { failed }, false) => (Phase::Up { failed: failed + 1 }, Crossed::No),
            (Phase::Down { succeeded }, true) if succeeded + 1 >= s.up => {
                (Phase::Up { failed: 0 }, Crossed::WentUp)
            }
            (Phase::Down { succeeded }, true) => (
                Phase::Down {
                    succeeded: succeeded + 1,
                },
                Crossed::No,
            ),
            (Phase::Down { .. }, false) => (Phase::Down { succeeded: 0 }, Crossed::No),
        };
        self.phase = phase;
        self.crossed = crossed;
        // Back off only once the link is declared down: while it is up the
        // timeout stays at the RTO so a cut is detected within the bound of
        // docs/decisions.md; once down, doubling lets a link whose RTT jumped
        // past the RTO (and a tracker that reports no late replies) be heard
        // again.
        if !success && !any_reply && matches!(phase, Phase::Down { .. }) {
            self.rtt.backoff_shift = (self.rtt.backoff_shift + 1).min(MAX_BACKOFF_SHIFT);
        }
        self.awaiting_round = false;
        self.aged = false;
        self.update_state(now, out);
    }

    fn recycle_rounds(&mut self) {
        for round in self.rounds.drain(..).chain(self.failed_run.drain(..)) {
            self.spare_tallies.push(round.tally);
        }
    }
}

/// Add one result to a target's tally; false if it adds nothing (duplicate).
fn record(
    tally: &mut TargetTally,
    count: u32,
    outcome: ProbeOutcome,
    answered: Option<u32>,
) -> bool {
    match (outcome, answered) {
        // A late answer to a probe already reported lost (as LateReply, or
        // as a second Reply sample for the same probe).
        (ProbeOutcome::LateReply { .. }, Some(rtt_us)) if tally.replies < tally.results => {
            tally.replies += 1;
            tally.rtt_sum_us += u64::from(rtt_us);
            true
        }
        (ProbeOutcome::Reply { .. }, Some(rtt_us))
            if tally.results >= count && tally.replies < tally.results =>
        {
            tally.replies += 1;
            tally.rtt_sum_us += u64::from(rtt_us);
            true
        }
        (ProbeOutcome::LateReply { .. }, None) => false,
        _ if tally.results >= count => false,
        (_, answered) => {
            tally.results += 1;
            if let Some(rtt_us) = answered {
                tally.replies += 1;
                tally.rtt_sum_us += u64::from(rtt_us);
            }
            true
        }
    }
}

/// Whether a round with this tally succeeds: `reliability` targets up. A
/// target is up when it answered; with check_quality, when its loss and mean
/// latency are within the failure thresholds while the link is up, within
/// the recovery thresholds while it is down (the hysteresis the option names
/// promise; docs/decisions.md compares this with mwan3's literal code).
fn round_succeeds(settings: &HealthSettings, recovering: bool, round: &OpenRound) -> bool {
    let count = settings.count;
    let up = round
        .tally
        .iter()
        .filter(|t| match settings.quality_check {
            None => t.replies > 0,
            Some(q) => {
                let lost = count - t.replies.min(count);
                // ping prints an integer percentage and mwan3 compares that.
                let loss_pct = lost * 100 / count;
                let latency_ms = if t.replies == 0 {
                    u64::MAX
                } else {
                    t.rtt_sum_us / u64::from(t.replies) / 1000
                };
                if recovering {
                    loss_pct <= q.recovery_loss_pct
                        && latency_ms <= u64::from(q.recovery_latency_ms)
                } else {
                    loss_pct < q.failure_loss_pct && latency_ms < u64::from(q.failure_latency_ms)
                }
            }
        })
        .count() as u32;
    up >= settings.reliability
}

fn initial_phase(initial: InitialState) -> Phase {
    match initial {
        InitialState::Online => Phase::Up { failed: 0 },
        InitialState::Offline => Phase::Down { succeeded: 0 },
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
