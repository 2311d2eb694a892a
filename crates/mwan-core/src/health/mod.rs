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
mod rounds;
mod rtt;
mod settings;
mod verdict;

use rounds::{record, round_succeeds, Expectation, OpenRound, TargetTally};
use rtt::RttEstimator;
use settings::MAX_ROUND_GAP;
pub use settings::{
    recommended_defaults, HealthSettings, QualityThresholds, RecommendedTracking,
    DEFAULT_TIMEOUT_FLOOR_MS, RECOMMENDED_TRACKING, ROUND_GRACE_MS,
};
pub use verdict::{
    saved_verdict_holds, verdict_lifetime, SavedVerdict, Verdict, MIN_VERDICT_LIFETIME_MS,
    VERDICT_LIFETIME_FACTOR,
};

use serde::{Deserialize, Serialize};

use crate::config::InitialState;
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
    /// For a lost probe: unicast packets the WAN's device received while
    /// it went unanswered (from its send to its loss report). `Some(0)`: the
    /// link delivered nothing for a whole probe timeout. A round whose lost
    /// probes all say so fails at once (no queue is holding the answers);
    /// otherwise (traffic arrived, or not measured) an offline verdict from
    /// it waits for the configured timeout (docs/decisions.md, rule 6).
    pub inbound_packets: Option<u32>,
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

/// mwan3track's per-interface files as mwan3's `status` reports them
/// ([`Health::mwan3_track`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mwan3Track {
    pub score: u32,
    pub lost: u32,
    pub turn: u64,
    pub age_s: u64,
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
    /// Confirmation bursts answered, and unanswered (see [`Health::on_confirmation`]).
    pub confirmations_answered: u64,
    pub confirmations_failed: u64,
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
    /// A verdict was decided or restored since start or the last link
    /// event ([`Health::verdict`]).
    verdict_known: bool,
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
    /// Since when probes have been expected (creation, link up): a tracker
    /// never heard from by `tracking_since + silence_limit` makes an `Up`
    /// start offline (issue 13, attack #7).
    tracking_since: Millis,
    rtt: RttEstimator,
    counters: HealthCounters,
    /// mwan3track's LOST and TURN ([`Health::mwan3_lost_turn`]).
    mwan3_lost: u32,
    mwan3_turn: u64,
    spare_tallies: Vec<Vec<TargetTally>>,
    /// The tracker reports every lost probe at the effective timeout (and
    /// late answers up to the configured one): see
    /// [`Health::set_prompt_loss_reports`].
    prompt_reports: bool,
    /// When the latest answer within the configured timeout arrived (its
    /// send + RTT), to any probe.
    last_answer_at: Millis,
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
            verdict_known: false,
            aged: false,
            usable_since: None,
            rounds: VecDeque::new(),
            last_applied: None,
            highest_seen: None,
            failed_run: Vec::new(),
            expect: None,
            prev_interval: 0,
            last_heard: None,
            tracking_since: now,
            rtt: RttEstimator::default(),
            counters: HealthCounters::default(),
            mwan3_lost: 0,
            mwan3_turn: 0,
            spare_tallies: Vec::new(),
            prompt_reports: false,
            last_answer_at: 0,
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

    /// mwan3track's LOST and TURN (`/var/run/mwan3track/<iface>/`, which
    /// mwan3's `status` reports as `lost` and `turn`): the targets that
    /// failed since the last successful round (0 after one), and the
    /// rounds since the link last came online (or tracking started or the
    /// interface came up), that round counted.
    pub fn mwan3_lost_turn(&self) -> (u32, u64) {
        (self.mwan3_lost, self.mwan3_turn)
    }

    /// What mwan3's `status` reads from mwan3track's files for this link at
    /// `now`: SCORE, LOST, TURN, and the seconds since TIME (the last
    /// tracking result; 0 before the first, as mwan3 gives without the file).
    pub fn mwan3_track(&self, now: Millis) -> Mwan3Track {
        let (lost, turn) = self.mwan3_lost_turn();
        Mwan3Track {
            score: self.mwan3_score(),
            lost,
            turn,
            age_s: self
                .last_heard
                .map_or(0, |heard| now.saturating_sub(heard) / 1000),
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
            (_, None) if self.tracking() && matches!(self.phase, Phase::Up { .. }) => {
                Some(self.tracking_since + self.settings.silence_limit)
            }
            _ => None,
        };
        let expected = self.expect.map(|e| self.expectation_deadline(e));
        let confirm = self.offline_confirmed_at();
        [round, silence, expected, confirm]
            .into_iter()
            .flatten()
            .min()
    }

    /// Spacing of the tracker's rounds: the interval in force, or the one
    /// before it if longer (a tracker may still be sleeping the old one),
    /// never below what the probe budget lets the tracker send.
    fn round_spacing(&self) -> Millis {
        self.interval()
            .1
            .max(self.prev_interval)
            .max(self.settings.min_round_spacing)
            .max(1)
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
        if let Some(rtt_us) = answered {
            let arrived = probe.sent_at + u64::from(rtt_us) / 1000;
            self.last_answer_at = self.last_answer_at.max(arrived);
        }
        if probe.target >= self.settings.targets {
            self.counters.stale_results += 1;
            return out;
        }
        if self.last_applied.is_some_and(|last| probe.round <= last) {
            match answered {
                Some(rtt_us) => self.withdraw_failure(probe, rtt_us, now, &mut out),
                None => self.final_loss(probe, now, &mut out),
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
        if probe.outcome == ProbeOutcome::Lost {
            round.lost_in_silence = round.lost_in_silence.min(probe.inbound_packets == Some(0));
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
        // A success resets mwan3's counter: failures before it no longer
        // count towards `down` (else a queue that drops some rounds' probes
        // and delays the others' adds up failures that were never in a row).
        let mut gone = 1;
        let mut i = 0;
        while i < self.failed_run.len() {
            if self.failed_run[i].round < probe.round {
                let older = self.failed_run.swap_remove(i);
                self.spare_tallies.push(older.tally);
                gone += 1;
            } else {
                i += 1;
            }
        }
        if let Phase::Up { failed } = self.phase {
            self.phase = Phase::Up {
                failed: failed.saturating_sub(gone),
            };
        }
        self.counters.rounds_withdrawn += 1;
        self.update_state(now, out);
        // Rounds queued behind a pending offline verdict go on.
        self.release_rounds(now, out);
    }

    /// A loss report for a round already counted as failed (it failed at
    /// the adaptive timeout first): from a tracker that reports losses only
    /// at the configured timeout it closes the probe, so once the reported
    /// losses alone fail the round its failure is final at once.
    fn final_loss(&mut self, probe: &ProbeResult, now: Millis, out: &mut Vec<Transition>) {
        let count = self.settings.count;
        let Some(round) = self
            .failed_run
            .iter_mut()
            .find(|r| r.round == probe.round)
            .filter(|_| !self.prompt_reports)
        else {
            self.counters.stale_results += 1;
            return;
        };
        if !record(&mut round.tally[probe.target], count, probe.outcome, None) {
            self.counters.stale_results += 1;
            return;
        }
        let reported = |t: &TargetTally| t.results >= count;
        let down = round
            .tally
            .iter()
            .filter(|t| reported(t) && t.replies == 0)
            .count();
        let hopeless = self.settings.quality_check.is_none()
            && down > self.settings.targets - self.settings.reliability as usize;
        if hopeless || round.tally.iter().all(reported) {
            round.final_at = now;
            self.release_rounds(now, out);
        }
    }

    /// The outcome of a confirmation burst: the tracker saw the WAN's
    /// traffic stop coming back and sent several fast probes to every
    /// target (docs/decisions.md, rule 8). None answered within a few
    /// round trips (`answered` false) and nothing else arrived meanwhile
    /// (`inbound_packets` `Some(0)`): an online link goes offline at once,
    /// without waiting for the remaining rounds. An answer changes nothing
    /// (the link works; its traffic is one-way or stalled); so does
    /// traffic arriving during an unanswered burst (a full queue dropping
    /// or delaying probes still delivers: rule 6's evidence). A burst sent
    /// more than the configured timeout before `now` (a replayed backlog)
    /// or while the link is already down counts only.
    pub fn on_confirmation(
        &mut self,
        answered: bool,
        inbound_packets: Option<u32>,
        sent_at: Millis,
        now: Millis,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        if answered || inbound_packets != Some(0) {
            self.counters.confirmations_answered += u64::from(answered);
            return out;
        }
        self.counters.confirmations_failed += 1;
        let fresh = now <= sent_at + self.settings.timeout;
        if self.tracking() && fresh && matches!(self.phase, Phase::Up { .. }) {
            self.prev_interval = self.interval().1;
            // The open rounds' failures are moot; their results, as they
            // come, count on the offline side.
            for round in self.failed_run.drain(..) {
                self.spare_tallies.push(round.tally);
            }
            self.phase = Phase::Down { succeeded: 0 };
            self.crossed = Crossed::WentDown;
            self.awaiting_round = false;
            self.update_state(now, &mut out);
        }
        out
    }

    /// Advance time: fail rounds past their deadline, age a silent tracker.
    pub fn tick(&mut self, now: Millis) -> Vec<Transition> {
        let mut out = Vec::new();
        if !self.tracking() {
            return out;
        }
        self.expire_rounds(now, &mut out);
        self.expire_expected(now, &mut out);
        self.release_rounds(now, &mut out);
        match self.last_heard {
            Some(heard) => {
                if !self.aged && now >= heard + self.settings.silence_limit {
                    self.go_silent(now, &mut out);
                }
            }
            None => self.never_heard(now, &mut out),
        }
        out
    }

    /// No probe result at all since tracking began, for longer than the
    /// silence limit: the tracker cannot run (refused its command line,
    /// cannot open its socket, never connects). `initial_state online` was
    /// a guess nothing has confirmed: the WAN becomes offline (unusable,
    /// with its hook) until probes bring it up, as with `initial_state
    /// offline`. A tracker that was heard and went silent ages instead.
    fn never_heard(&mut self, now: Millis, out: &mut Vec<Transition>) {
        if matches!(self.phase, Phase::Up { .. })
            && now >= self.tracking_since + self.settings.silence_limit
        {
            self.phase = Phase::Down { succeeded: 0 };
            self.awaiting_round = false;
            self.verdict_known = true;
            self.update_state(now, out);
        }
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
        if up {
            // mwan3track's ifup: firstconnect starts LOST and TURN again.
            (self.mwan3_lost, self.mwan3_turn) = (0, 0);
        }
        self.recycle_rounds();
        self.expect = None;
        self.last_applied = None;
        self.highest_seen = None;
        self.last_heard = None;
        self.tracking_since = now;
        self.aged = false;
        self.awaiting_round = true;
        self.verdict_known = false;
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
}

fn initial_phase(initial: InitialState) -> Phase {
    match initial {
        InitialState::Online => Phase::Up { failed: 0 },
        InitialState::Offline => Phase::Down { succeeded: 0 },
    }
}
