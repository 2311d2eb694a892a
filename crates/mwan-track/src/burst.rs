//! When to confirm a link at once with a burst of fast probes: pure, fed
//! the device's packet counters and the time (CLOCK_MONOTONIC us).
//!
//! A WAN that carries traffic tells us it died before the next probe round
//! does: packets keep leaving through it and nothing comes back. The loop
//! reads the device's counters every [`TrafficWatch::period_us`] and asks
//! [`TrafficWatch::observe`]; when packets left (other than our probes)
//! while nothing came back (other than answers to our probes) for a window
//! longer than the link's round trip, it sends a burst. Only the burst's
//! outcome counts (one-way traffic, a stalled server and a dead link look
//! the same in the counters). docs/decisions.md, rule 8.

/// How often the device's counters are read while traffic moves: 50
/// wakeups a second, 3 preads each (cost measured in docs/tracker.md); the
/// detection delay it adds is at most one period.
const BUSY_PERIOD_US: u64 = 20_000;
/// ... and while nothing but our probes moves: a cut can only be seen
/// through traffic, and the first reading that sees some goes back to the
/// busy period.
const IDLE_PERIOD_US: u64 = 250_000;
/// Shortest silence that starts a burst: a few round trips of a near
/// target and more than the spacing of a paced stream's packets.
const MIN_WINDOW_US: u64 = 60_000;
/// Packets (other than our probes) that must have left during the silence.
const MIN_TX: u64 = 2;
/// Probes per target in a burst, and their spacing: independent enough that
/// random loss does not lose them all (5 % loss: 0.05^9 over 3 targets).
pub const BURST_PER_TARGET: u32 = 3;
pub const BURST_SPACING_US: u64 = 15_000;
/// Shortest wait for a burst's answers, whatever the round trip.
const MIN_BURST_TIMEOUT_US: u64 = 100_000;
/// At most one burst per this long after one that was answered (a false
/// alarm), whatever the traffic does: the steady-state probe rate stays
/// today's (bench-failover prints it). An unanswered one found a dead link:
/// the next may follow as soon as the link carries traffic again.
const MIN_GAP_US: u64 = 5_000_000;

/// Counter state between readings.
#[derive(Debug, Default, Clone)]
pub struct TrafficWatch {
    /// Last readings: packets sent other than probes, unicast received
    /// other than probe answers.
    tx: Option<u64>,
    rx: Option<u64>,
    /// When traffic last came back, and packets sent since.
    rx_at_us: u64,
    tx_since_rx: u64,
    /// Traffic came back since the last burst (else a one-way flow would
    /// make a burst every gap).
    armed: bool,
    last_burst_us: Option<u64>,
    /// Spare probes of a budget, in millionths (see [`TrafficWatch::spend`]).
    spare_micro: u64,
    /// Something other than our probes moved at the last reading.
    busy: bool,
}

impl TrafficWatch {
    /// One reading of the counters at `now`. `rtt_high_us` is the recent
    /// high of our probes' round trips. True: send a burst now.
    pub fn observe(&mut self, now_us: u64, tx: u64, rx: u64, rtt_high_us: u64) -> bool {
        let (Some(tx0), Some(rx0)) = (self.tx.replace(tx), self.rx.replace(rx)) else {
            self.rx_at_us = now_us;
            return false;
        };
        self.busy = tx != tx0 || rx != rx0;
        if rx != rx0 {
            self.rx_at_us = now_us;
            self.tx_since_rx = 0;
            self.armed = true;
            return false;
        }
        self.tx_since_rx += tx.wrapping_sub(tx0).min(1 << 32);
        let window = MIN_WINDOW_US.max(2 * rtt_high_us);
        let due = self.armed
            && self.tx_since_rx >= MIN_TX
            && now_us.saturating_sub(self.rx_at_us) >= window
            && self
                .last_burst_us
                .is_none_or(|at| now_us.saturating_sub(at) >= MIN_GAP_US);
        if due {
            self.armed = false;
            self.last_burst_us = Some(now_us);
        }
        due
    }

    /// The last burst went unanswered: it does not hold the next back.
    pub fn unanswered(&mut self) {
        self.last_burst_us = None;
    }

    /// When to read the counters next.
    pub fn period_us(&self) -> u64 {
        if self.busy {
            BUSY_PERIOD_US
        } else {
            IDLE_PERIOD_US
        }
    }

    /// With a probe budget: accrue the probes the regular rounds leave
    /// unused (`spare_per_minute`) over `elapsed_us`, up to one burst of
    /// `burst_probes`. With `take`, returns whether that burst is paid
    /// for, and pays it.
    pub fn spend(
        &mut self,
        spare_per_minute: u64,
        elapsed_us: u64,
        burst_probes: u64,
        take: bool,
    ) -> bool {
        let full = burst_probes * 1_000_000;
        self.spare_micro = (self.spare_micro + spare_per_minute * elapsed_us / 60).min(full);
        if take && self.spare_micro >= full {
            self.spare_micro -= full;
            true
        } else {
            false
        }
    }
}

/// How long a burst waits for answers: three recent round-trip highs, at
/// least [`MIN_BURST_TIMEOUT_US`], at most `cap_us` (how long a probe's
/// slot stays open). Not the adaptive timeout: that one sits just above
/// the smoothed RTT, and late answers only withdraw a round's failure, while
/// a burst's verdict is final (a 1 s queue kept full by a one-way upload
/// delayed a whole burst past it once in 10 minutes).
pub fn burst_timeout_us(rtt_high_us: u64, cap_us: u64) -> u64 {
    (3 * rtt_high_us)
        .max(MIN_BURST_TIMEOUT_US)
        .min(cap_us.max(MIN_BURST_TIMEOUT_US))
}

/// The recent high of the round trip: jumps up to a higher sample, decays
/// by an eighth of the difference towards a lower one.
pub fn rtt_high(prev_us: u64, sample_us: u64) -> u64 {
    if sample_us >= prev_us {
        sample_us
    } else {
        prev_us - (prev_us - sample_us) / 8
    }
}

/// Probes a budget leaves unused per minute by rounds of `per_round` probes
/// every `round_us` (0: no spare, no bursts).
pub fn spare_per_minute(budget_per_minute: u64, per_round: u64, round_us: u64) -> u64 {
    budget_per_minute.saturating_sub(per_round * 60_000_000 / round_us.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1000;

    /// Counter readings: (ms, packets sent, packets received).
    type Readings = Vec<(u64, u64, u64)>;

    /// Feeds (ms, tx, rx) readings; the times at which a burst starts.
    fn bursts(readings: &[(u64, u64, u64)], rtt_high_us: u64) -> Vec<u64> {
        let mut w = TrafficWatch::default();
        readings
            .iter()
            .filter(|&&(t, tx, rx)| w.observe(t * MS, tx, rx, rtt_high_us))
            .map(|&(t, _, _)| t)
            .collect()
    }

    /// Readings every 20 ms from 0 to `end` ms: tx and rx as functions of time.
    fn every_20ms(
        end: u64,
        tx: impl Fn(u64) -> u64,
        rx: impl Fn(u64) -> u64,
    ) -> Vec<(u64, u64, u64)> {
        (0..=end / 20)
            .map(|i| (i * 20, tx(i * 20), rx(i * 20)))
            .collect()
    }

    #[test]
    fn when_a_burst_starts() {
        let cut = |t: u64| t.min(200);
        let cases: Vec<(&str, Readings, u64, Vec<u64>)> = vec![
            // Two-way traffic, then the link dies at 200 ms: the sender goes
            // on, nothing comes back; a burst once 60 ms passed silent.
            ("cut under load", every_20ms(1000, |t| t, cut), 0, vec![260]),
            // A far link (round trips up to 50 ms): the window is 100 ms.
            (
                "cut, far link",
                every_20ms(1000, |t| t, cut),
                50 * MS,
                vec![300],
            ),
            // Idle: nothing sent, nothing received.
            ("idle", every_20ms(1000, |_| 7, |_| 9), 0, vec![]),
            // Traffic stops both ways (a finished download): no burst.
            ("quiet end", every_20ms(1000, cut, cut), 0, vec![]),
            // One-way upload from the start: nothing ever came back, so
            // the WAN was never seen carrying two-way traffic.
            (
                "one-way from start",
                every_20ms(1000, |t| t, |_| 5),
                0,
                vec![],
            ),
            // Two-way, then one-way for 10 s: one burst, not one per gap.
            (
                "one-way after two-way",
                every_20ms(10_000, |t| t, cut),
                0,
                vec![260],
            ),
            // A single stray packet out does not start one.
            (
                "one stray packet",
                every_20ms(1000, |t| u64::from(t > 500), cut),
                0,
                vec![],
            ),
        ];
        for (name, readings, rtt, want) in cases {
            assert_eq!(bursts(&readings, rtt), want, "{name}");
        }
    }

    #[test]
    fn counters_are_read_fast_only_while_traffic_moves() {
        let mut w = TrafficWatch::default();
        w.observe(0, 5, 5, 0);
        assert_eq!(w.period_us(), IDLE_PERIOD_US);
        w.observe(20 * MS, 6, 5, 0);
        assert_eq!(w.period_us(), BUSY_PERIOD_US);
        w.observe(40 * MS, 6, 5, 0);
        assert_eq!(w.period_us(), IDLE_PERIOD_US);
    }

    #[test]
    fn bursts_are_at_least_the_gap_apart() {
        // Traffic comes back every 300 ms (re-arming), silent in between.
        let rx = |t: u64| t / 300;
        let got = bursts(&every_20ms(12_000, |t| t, rx), 0);
        assert!(got.len() >= 2, "{got:?}");
        assert!(
            got.windows(2).all(|w| w[1] - w[0] >= MIN_GAP_US / MS),
            "{got:?}"
        );
    }

    #[test]
    fn an_unanswered_burst_does_not_hold_the_next_back() {
        // Cut at 200 ms (burst at 260, unanswered), traffic back at 1 s,
        // cut again at 2 s: a second burst 60 ms later, inside the gap.
        let rx = |t: u64| if t < 1000 { t.min(200) } else { t.min(2000) };
        let mut w = TrafficWatch::default();
        let mut got = Vec::new();
        for (t, tx, rx) in every_20ms(3000, |t| t, rx) {
            if w.observe(t * MS, tx, rx, 0) {
                got.push(t);
                w.unanswered();
            }
        }
        assert_eq!(got, vec![260, 2060]);
    }

    #[test]
    fn burst_timeout_follows_the_round_trip_within_bounds() {
        let cap = 3000 * MS;
        assert_eq!(burst_timeout_us(MS, cap), 100 * MS);
        assert_eq!(burst_timeout_us(50 * MS, cap), 150 * MS);
        // A 1 s queue: three times it, within the cap.
        assert_eq!(burst_timeout_us(900 * MS, cap), 2700 * MS);
        assert_eq!(burst_timeout_us(1500 * MS, cap), cap);
        assert_eq!(burst_timeout_us(90 * MS, 10 * MS), 100 * MS);
        assert_eq!(rtt_high(10, 50), 50);
        assert_eq!(rtt_high(90, 10), 80);
    }

    #[test]
    fn a_budget_pays_for_bursts_from_its_spare_probes() {
        // 60/min budget, 3 probes every 6 s = 30/min used: 30 spare.
        assert_eq!(spare_per_minute(60, 3, 6_000_000), 30);
        assert_eq!(spare_per_minute(30, 3, 6_000_000), 0);
        let mut w = TrafficWatch::default();
        // 9 probes need 18 s of 30 spare a minute.
        assert!(!w.spend(30, 10_000_000, 9, true));
        assert!(!w.spend(30, 4_000_000, 9, false), "accrues, takes nothing");
        assert!(w.spend(30, 4_000_000, 9, true));
        assert!(!w.spend(30, 1_000_000, 9, true));
        // Nothing spare, never.
        assert!(!TrafficWatch::default().spend(0, u64::from(u32::MAX), 9, true));
    }
}
