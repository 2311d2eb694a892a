//! When each probe leaves: pure, time comes in as `now` (CLOCK_MONOTONIC us).
//!
//! A round is all targets × `count` probes, spread evenly over the round's
//! interval target after target, so each target sees `count` probes per
//! interval, `interval / count` apart.

pub struct Schedule {
    per_round: u64,
    targets: usize,
    interval_us: u64,
    /// A longer interval from the controller, applied from the next round.
    pending_us: Option<u64>,
    /// Shortest round the probe budget allows.
    floor_us: u64,
    round: u64,
    round_start_us: u64,
    /// Index of the next probe within its round.
    index: u64,
}

impl Schedule {
    pub fn new(
        now_us: u64,
        interval_us: u64,
        targets: usize,
        count: u32,
        floor_us: u64,
    ) -> Schedule {
        Schedule {
            per_round: (targets as u64 * u64::from(count)).max(1),
            targets: targets.max(1),
            interval_us,
            pending_us: None,
            floor_us,
            round: 0,
            round_start_us: now_us,
            index: 0,
        }
    }

    fn effective_us(&self) -> u64 {
        self.interval_us.max(self.floor_us)
    }

    /// When the next probe is due.
    pub fn due_at(&self) -> u64 {
        self.round_start_us + self.effective_us() * self.index / self.per_round
    }

    /// The round of the next probe.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// The spacing of rounds now (the budget's floor included).
    pub fn round_us(&self) -> u64 {
        self.effective_us()
    }

    /// Takes the probe due now: its target index and round.
    pub fn take(&mut self, now_us: u64) -> (usize, u64) {
        let probe = ((self.index % self.targets as u64) as usize, self.round);
        self.index += 1;
        if self.index == self.per_round {
            self.index = 0;
            self.round += 1;
            self.round_start_us += self.effective_us();
            if let Some(p) = self.pending_us.take() {
                self.interval_us = p;
            }
        }
        if self.due_at() + self.effective_us() < now_us {
            // Suspended or stalled: go on from now instead of bursting.
            self.anchor(now_us);
        }
        probe
    }

    /// Moves the schedule so that the next probe is due at `at_us`.
    fn anchor(&mut self, at_us: u64) {
        self.round_start_us =
            at_us.saturating_sub(self.effective_us() * self.index / self.per_round);
    }

    /// A new interval from the controller. A longer one applies from the next
    /// round; a shorter one at once, with the next probe due within one new
    /// spacing, so a failing link is re-probed fast.
    pub fn set_interval(&mut self, now_us: u64, interval_us: u64) {
        if interval_us >= self.interval_us {
            self.pending_us = Some(interval_us);
            return;
        }
        self.pending_us = None;
        self.interval_us = interval_us;
        let spacing = self.effective_us() / self.per_round;
        if self.due_at() > now_us + spacing {
            self.anchor(now_us + spacing);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1000;

    /// (due ms, target, round) of the next `n` probes, each taken when due.
    fn run(s: &mut Schedule, n: usize) -> Vec<(u64, usize, u64)> {
        (0..n)
            .map(|_| {
                let due = s.due_at();
                let (t, r) = s.take(due);
                (due / MS, t, r)
            })
            .collect()
    }

    #[test]
    fn probes_are_spread_over_the_interval_target_by_target() {
        let mut s = Schedule::new(0, 1000 * MS, 4, 1, 0);
        assert_eq!(
            run(&mut s, 5),
            vec![
                (0, 0, 0),
                (250, 1, 0),
                (500, 2, 0),
                (750, 3, 0),
                (1000, 0, 1)
            ]
        );
        let mut s = Schedule::new(0, 1000 * MS, 2, 2, 0);
        let got: Vec<(u64, usize)> = run(&mut s, 4).iter().map(|&(d, t, _)| (d, t)).collect();
        assert_eq!(
            got,
            vec![(0, 0), (250, 1), (500, 0), (750, 1)],
            "each target every interval / count"
        );
    }

    #[test]
    fn longer_interval_from_the_next_round_shorter_at_once() {
        let mut s = Schedule::new(0, 1000 * MS, 2, 1, 0);
        run(&mut s, 1); // 0 ms; next due 500
        s.set_interval(100 * MS, 4000 * MS);
        assert_eq!(s.due_at(), 500 * MS, "this round keeps its pace");
        run(&mut s, 1); // 500 ms ends round 0
        assert_eq!(s.due_at(), 1000 * MS);
        run(&mut s, 1); // round 1 at the new pace
        assert_eq!(s.due_at(), 3000 * MS);
        // A failing link: 200 ms at once; the probe due at 3000 is due now.
        s.set_interval(1100 * MS, 200 * MS);
        assert_eq!(s.due_at(), 1100 * MS);
        let got: Vec<u64> = run(&mut s, 3).iter().map(|&(d, _, _)| d).collect();
        assert_eq!(got, vec![1100, 1200, 1300]);
        // Later in a long round: the next probe within one new spacing.
        let mut s = Schedule::new(0, 10_000 * MS, 1, 1, 0);
        run(&mut s, 1); // next due 10 s
        s.set_interval(2000 * MS, 300 * MS);
        assert_eq!(s.due_at(), 2300 * MS);
    }

    #[test]
    fn a_stall_restarts_from_now_without_a_burst() {
        let mut s = Schedule::new(0, 100 * MS, 1, 1, 0);
        run(&mut s, 2);
        // The process was stopped for 10 s.
        s.take(10_000 * MS);
        assert_eq!(
            s.due_at(),
            10_000 * MS,
            "next probe due now, not 100 probes late"
        );
        s.take(10_000 * MS);
        assert_eq!(s.due_at(), 10_100 * MS);
    }

    #[test]
    fn the_budget_floor_stretches_rounds() {
        let mut s = Schedule::new(0, 100 * MS, 2, 1, 1000 * MS);
        let got: Vec<u64> = run(&mut s, 3).iter().map(|&(d, _, _)| d).collect();
        assert_eq!(got, vec![0, 500, 1000]);
        // a shorter interval cannot go under the floor either
        s.set_interval(1000 * MS, 50 * MS);
        let got: Vec<u64> = run(&mut s, 2).iter().map(|&(d, _, _)| d).collect();
        assert_eq!(got, vec![1500, 2000]);
    }
}
