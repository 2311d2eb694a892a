//! Open probe rounds: grouping results by round number, deciding a round
//! as soon as its outcome is certain, expiring overdue ones, and applying
//! them to the up/down counter in round order.

use super::settings::{MAX_BACKOFF_SHIFT, MAX_ROUND_GAP};
use super::{
    Crossed, Health, HealthSettings, Phase, ProbeOutcome, ProbeResult, Transition, ROUND_GRACE_MS,
};
use crate::Millis;

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct TargetTally {
    pub(super) results: u32,
    pub(super) replies: u32,
    pub(super) rtt_sum_us: u64,
}

#[derive(Debug, Clone)]
pub(super) struct OpenRound {
    pub(super) round: u64,
    /// Timeout in force when the round was first seen.
    pub(super) timeout: Millis,
    pub(super) deadline: Millis,
    pub(super) tally: Vec<TargetTally>,
    /// Without check_quality: Some(success) once certain.
    pub(super) verdict: Option<bool>,
    /// All probes reported, or the deadline passed.
    pub(super) complete: bool,
    pub(super) expired: bool,
    /// Every lost probe of the round waited its whole timeout while nothing
    /// arrived on the WAN's device (true until a loss says otherwise): the
    /// link delivers nothing, no queue is holding the answers.
    pub(super) lost_in_silence: bool,
    /// Once failed while up: when no answer can withdraw the failure any
    /// more (see [`Health::failure_final_at`]).
    pub(super) final_at: Millis,
}

/// A round the tracker is expected to send at `sent_at` (its schedule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Expectation {
    pub(super) round: u64,
    pub(super) sent_at: Millis,
}

impl Health {
    /// Index of the open round for this result, creating it in round order.
    /// Round numbers count up by one per round, so a gap means rounds whose
    /// results are still on their way (a reply of round n+1 often overtakes
    /// the loss report of round n): they are opened too, and fail at their
    /// deadline if nothing arrives.
    pub(super) fn open_round(
        &mut self,
        probe: &ProbeResult,
        timeout: Millis,
        now: Millis,
    ) -> usize {
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
    pub(super) fn insert_round(&mut self, round: u64, timeout: Millis, deadline: Millis) -> usize {
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
            lost_in_silence: true,
            final_at: 0,
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
    pub(super) fn settle(&mut self, index: usize) {
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

    pub(super) fn expire_rounds(&mut self, now: Millis, out: &mut Vec<Transition>) {
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

    /// Apply decided rounds at the head of the queue, in round order. While
    /// an offline verdict waits for its confirmation, later rounds queue
    /// behind it (the counter sees rounds in order, as mwan3's would),
    /// until one of them succeeds: then the link answered before the
    /// failures were final, and the queue is applied (the success ends the
    /// run of failures) instead of an offline verdict that newer evidence
    /// already contradicts (it would flush the WAN's connections for
    /// nothing, e.g. after a burst of tail drops on a saturated uplink).
    pub(super) fn release_rounds(&mut self, now: Millis, out: &mut Vec<Transition>) {
        self.confirm_offline(now, out);
        while (!self.offline_pending() || self.success_queued())
            && self.rounds.front().is_some_and(|r| r.complete)
        {
            let Some(round) = self.rounds.pop_front() else {
                break;
            };
            let recovering = matches!(self.phase, Phase::Down { .. });
            let success = match round.verdict {
                Some(v) => v,
                None => round_succeeds(&self.settings, recovering, &round),
            };
            let any_reply = round.tally.iter().any(|t| t.replies > 0);
            let failed_targets =
                round.tally.len() as u32 - targets_up(&self.settings, recovering, &round);
            self.last_applied = Some(round.round);
            self.apply_round(success, any_reply, now, out);
            self.count_mwan3_round(success, failed_targets);
            if matches!(self.phase, Phase::Up { failed } if failed > 0) && !success {
                let mut round = round;
                round.final_at = self.failure_final_at(&round);
                self.failed_run.push(round);
            } else {
                self.spare_tallies.push(round.tally);
                if !matches!(self.phase, Phase::Up { failed } if failed > 0) {
                    for r in self.failed_run.drain(..) {
                        self.spare_tallies.push(r.tally);
                    }
                }
            }
            self.confirm_offline(now, out);
            self.update_state(now, out);
        }
    }

    /// `down` failed rounds counted but some only through the adaptive
    /// timeout: the configured one has not passed for all their probes, so
    /// a late answer may still withdraw one (docs/decisions.md, rule 6).
    pub(super) fn offline_pending(&self) -> bool {
        matches!(self.phase, Phase::Up { failed } if failed >= self.settings.down)
    }

    /// A decided round waiting in the queue succeeded.
    fn success_queued(&self) -> bool {
        self.rounds.iter().any(|r| {
            r.complete
                && r.verdict
                    .unwrap_or_else(|| round_succeeds(&self.settings, false, r))
        })
    }

    /// When the last failure of a pending offline verdict is confirmed: the
    /// configured timeout has passed for every probe of the failed rounds.
    pub(super) fn offline_confirmed_at(&self) -> Option<Millis> {
        if !self.offline_pending() {
            return None;
        }
        Some(
            self.failed_run
                .iter()
                .map(|r| r.final_at)
                .max()
                .unwrap_or(0),
        )
    }

    /// When a failed round's failure becomes final. A tracker that reports
    /// losses only at the configured timeout has closed the probes it
    /// reported, so those are final at once. So is a round whose lost
    /// probes all waited while nothing at all arrived on the WAN's device
    /// (one probe's window alone can fall in a lull of a busy link): a link
    /// that delivers nothing holds no answer in a queue (a silent cut),
    /// while a saturated one keeps delivering its traffic's ACKs and
    /// downloads. Other early loss reports (prompt tracker: traffic
    /// arrived, or no count), or a round failed at its deadline without
    /// reports, are final when the configured timeout has passed for the
    /// round's last probe, or (reporting only at the configured timeout)
    /// once enough of its probes are reported lost (`Health::final_loss`).
    ///
    /// The inbound count leaves out timely answers to our own probes (the
    /// answer to the last probe before a cut lands in the first lost one's
    /// window), so a silent round that got no answer at all is final only
    /// once a whole probe timeout has passed since the last answer of any
    /// round: on a link with a short RTT that is long past, while behind a
    /// 1 s queue that a one-way upload keeps full, answers to the probes
    /// before the drops arrive until the drops' own timeouts, and the next
    /// round's answer withdraws the failures before the wait ends
    /// (docs/decisions.md, rule 6).
    fn failure_final_at(&self, round: &OpenRound) -> Millis {
        if round.lost_in_silence && !round.expired {
            let answered = round.tally.iter().any(|t| t.replies > 0);
            return if answered {
                0
            } else {
                self.last_answer_at + round.timeout
            };
        }
        if !self.prompt_reports && !round.expired {
            return 0;
        }
        round.deadline + self.settings.timeout.saturating_sub(round.timeout)
    }

    /// Declare a pending offline verdict once nothing can withdraw it.
    pub(super) fn confirm_offline(&mut self, now: Millis, out: &mut Vec<Transition>) {
        if self.offline_confirmed_at().is_none_or(|at| at > now) {
            return;
        }
        let any_reply = self
            .failed_run
            .iter()
            .any(|r| r.tally.iter().any(|t| t.replies > 0));
        for r in self.failed_run.drain(..) {
            self.spare_tallies.push(r.tally);
        }
        self.phase = Phase::Down { succeeded: 0 };
        self.crossed = Crossed::WentDown;
        self.verdict_known = true;
        if !any_reply {
            self.rtt.backoff_shift = (self.rtt.backoff_shift + 1).min(MAX_BACKOFF_SHIFT);
        }
        self.update_state(now, out);
    }

    /// One decided round through mwan3's score counter.
    pub(super) fn apply_round(
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
            // The `down`-th failure makes the offline verdict pending:
            // `confirm_offline` declares it (release_rounds calls it next).
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
        self.verdict_known = true;
        self.aged = false;
        // A pending offline verdict is reported by release_rounds, once it
        // knows whether the failure is already final (one transition).
        if !self.offline_pending() {
            self.update_state(now, out);
        }
    }

    /// mwan3track's LOST and TURN after a round: LOST adds the round's
    /// failed targets and is 0 after any successful round; TURN counts
    /// rounds, from 1 again in the round that brought the link online.
    fn count_mwan3_round(&mut self, success: bool, failed_targets: u32) {
        self.mwan3_lost = if success {
            0
        } else {
            self.mwan3_lost.saturating_add(failed_targets)
        };
        self.mwan3_turn = if self.crossed == Crossed::WentUp {
            1
        } else {
            self.mwan3_turn + 1
        };
    }

    pub(super) fn recycle_rounds(&mut self) {
        for round in self.rounds.drain(..).chain(self.failed_run.drain(..)) {
            self.spare_tallies.push(round.tally);
        }
        // A pending verdict whose rounds are forgotten is not confirmed:
        // the history stays one failure short of it.
        if let Phase::Up { failed } = self.phase {
            self.phase = Phase::Up {
                failed: failed.min(self.settings.down.saturating_sub(1)),
            };
        }
    }
}

/// Add one result to a target's tally; false if it adds nothing (duplicate).
pub(super) fn record(
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
pub(super) fn round_succeeds(
    settings: &HealthSettings,
    recovering: bool,
    round: &OpenRound,
) -> bool {
    targets_up(settings, recovering, round) >= settings.reliability
}

/// How many of the round's targets are up (see [`round_succeeds`]).
fn targets_up(settings: &HealthSettings, recovering: bool, round: &OpenRound) -> u32 {
    let count = settings.count;
    round
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
        .count() as u32
}
