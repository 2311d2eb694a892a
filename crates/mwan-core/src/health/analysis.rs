//! Closed-form and Markov-chain figures for the health settings: how often
//! random loss takes a healthy link down (false downs), and how long a dead
//! link takes to be declared down. docs/decisions.md uses these to justify
//! [`super::RECOMMENDED_TRACKING`]; the seeded simulations check them.

use super::{round_span, schedule_slack, HealthSettings, ROUND_GRACE_MS};
use crate::Millis;

const DAY_MS: f64 = 86_400_000.0;

/// Probability that one round fails when every probe independently goes
/// unanswered with probability `probe_failure` (loss, or a reply slower than
/// the timeout). Without check_quality a target is up when any of its
/// `count` probes answered, and a round succeeds with `reliability` targets up.
pub fn round_failure_probability(
    targets: u32,
    reliability: u32,
    count: u32,
    probe_failure: f64,
) -> f64 {
    if reliability == 0 {
        return 0.0;
    }
    if reliability > targets {
        return 1.0;
    }
    let target_down = probe_failure.powi(count.max(1) as i32);
    let target_up = 1.0 - target_down;
    // P(fewer than `reliability` of `targets` up), binomial.
    (0..reliability)
        .map(|k| {
            binomial(targets, k) * target_up.powi(k as i32) * target_down.powi((targets - k) as i32)
        })
        .sum()
}

fn binomial(n: u32, k: u32) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * f64::from(n - i) / f64::from(i + 1))
}

/// The score counter as a Markov chain over rounds that fail independently
/// with probability `q`: states `Up{0..down}` (consecutive failures while
/// up) then `Down{0..up}` (consecutive successes while down). Returns the
/// stationary distribution in that order, solved by Gaussian elimination.
pub fn counter_stationary_distribution(q: f64, down: u32, up: u32) -> Vec<f64> {
    let (d, u) = (down.max(1) as usize, up.max(1) as usize);
    let n = d + u;
    // Transition matrix P[from][to].
    let mut p = vec![vec![0.0; n]; n];
    for f in 0..d {
        p[f][0] += 1.0 - q;
        if f + 1 < d {
            p[f][f + 1] += q;
        } else {
            p[f][d] += q;
        }
    }
    for s in 0..u {
        let from = d + s;
        p[from][d] += q;
        if s + 1 < u {
            p[from][from + 1] += 1.0 - q;
        } else {
            p[from][0] += 1.0 - q;
        }
    }
    // Solve pi (P - I) = 0 with sum(pi) = 1: rows of A are equations.
    let mut a = vec![vec![0.0; n + 1]; n];
    for (eq, row) in a.iter_mut().enumerate().take(n - 1) {
        for (from, prow) in p.iter().enumerate() {
            row[from] = prow[eq] - if from == eq { 1.0 } else { 0.0 };
        }
    }
    for cell in a[n - 1].iter_mut().take(n) {
        *cell = 1.0;
    }
    a[n - 1][n] = 1.0;
    gauss_solve(a)
}

fn gauss_solve(mut a: Vec<Vec<f64>>) -> Vec<f64> {
    let n = a.len();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))
            .unwrap_or(col);
        a.swap(col, pivot);
        let div = a[col][col];
        if div == 0.0 {
            continue;
        }
        for cell in a[col].iter_mut() {
            *cell /= div;
        }
        let pivot_row = a[col].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != col && row[col] != 0.0 {
                let factor = row[col];
                for (cell, pv) in row.iter_mut().zip(&pivot_row) {
                    *cell -= factor * pv;
                }
            }
        }
    }
    a.iter().map(|row| row[n]).collect()
}

/// Expected false down events per round: the stationary probability of
/// being one failure from down, times the failure probability.
pub fn false_down_rate_per_round(q: f64, down: u32, up: u32) -> f64 {
    let pi = counter_stationary_distribution(q, down, up);
    pi[down.max(1) as usize - 1] * q
}

/// The same rate from renewal theory (one down event per up/down cycle):
/// 1 / (E[rounds to `down` failures in a row] + E[rounds to `up` successes
/// in a row]). Cross-checks the chain.
pub fn false_down_rate_closed_form(q: f64, down: u32, up: u32) -> f64 {
    let (d, u) = (down.max(1) as i32, up.max(1) as i32);
    let s = 1.0 - q;
    let e_up = (1.0 - q.powi(d)) / (s * q.powi(d));
    let e_down = (1.0 - s.powi(u)) / (q * s.powi(u));
    1.0 / (e_up + e_down)
}

/// Expected false downs per day for these settings when each probe fails
/// independently with `probe_failure` (rounds every `interval`).
pub fn false_downs_per_day(settings: &HealthSettings, probe_failure: f64) -> f64 {
    let q = round_failure_probability(
        settings.targets as u32,
        settings.reliability,
        settings.count,
        probe_failure,
    );
    let rounds_per_day = DAY_MS / settings.interval.max(1) as f64;
    false_down_rate_per_round(q, settings.down, settings.up) * rounds_per_day
}

/// Longest time from a silent cut (every probe from then on lost) to the
/// Offline transition for an Online link, given `timeout`, the one after
/// which the last round's failures are final: up to one round spacing
/// until the next round starts, `down - 1` further rounds, the spread of
/// the last round's probes over its interval, `timeout`, and the grace and
/// schedule slack the core allows the tracker before it fails an expected
/// round on its own. `timeout` is the effective timeout in force at the cut
/// when nothing arrives on the WAN's device meanwhile (a silent cut: the
/// timeout does not back off while the link is up, and no RTT sample
/// arrives during a cut), and the configured one when traffic kept
/// arriving or the tracker does not count it (docs/decisions.md, rule 6).
/// The spacing is the longer of interval and failure_interval: the tracker
/// may still sleep the old interval when it changes. (Assumes the round
/// before the cut had its first probe answered, which anchors the
/// schedule; otherwise add up to one span.)
pub fn detection_bound(settings: &HealthSettings, timeout: Millis) -> Millis {
    let spacing = settings.interval.max(settings.failure_interval);
    let probes = settings.targets as u64 * u64::from(settings.count);
    u64::from(settings.down.max(1)) * spacing
        + round_span(spacing, probes)
        + timeout
        + ROUND_GRACE_MS
        + schedule_slack(spacing)
}
