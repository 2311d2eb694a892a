//! Quality: time-weighted averages of latency, RFC 3550-style jitter per
//! target and loss; warm-up; the score `latency + jitter + loss²/loss_divisor
//! + bias`; the `quality_time_constant` option and the old
//! `quality_smoothing`.

#[path = "sim_common/mod.rs"]
mod sim_common;

use mwan_core::config::{parse, QualitySettings};
use mwan_core::health::{ProbeOutcome, RECOMMENDED_TRACKING};
use mwan_core::quality::{
    default_time_constant, per_sample_weight, score, time_constant_from_smoothing, Quality,
    DEFAULT_TIME_CONSTANT_MS,
};
use mwan_core::Millis;
use proptest::prelude::*;
use sim_common::Rng;

fn settings(time_constant_ms: Millis) -> QualitySettings {
    QualitySettings {
        bias_ms: 0.0,
        loss_divisor: 10.0,
        loss_limit_pct: 50.0,
        time_constant_ms,
    }
}

fn reply(ms: f64) -> ProbeOutcome {
    ProbeOutcome::Reply {
        rtt_us: (ms * 1000.0).round() as u32,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn latency(q: &Quality) -> f64 {
    q.snapshot().latency_ms.unwrap_or(f64::NAN)
}

#[test]
fn no_data_no_score() {
    let q = Quality::new(&settings(1000), 1);
    let s = q.snapshot();
    assert_eq!(s.score, None);
    assert_eq!(s.latency_ms, None);
    assert_eq!(s.loss_pct, 0.0);
    assert!(!s.dead);
}

/// The point of time-based smoothing: after one time constant a step has
/// moved the reading by 1 - 1/e ≈ 63 % of the step, whether the link is
/// probed 15 times a second (our defaults) or once every 10 s (mwan3's).
/// Per-probe smoothing at 0.01 would move 63 % at the fast pace but under
/// 1 % at the slow one.
#[test]
fn staleness_is_the_time_constant_whatever_the_probe_rate() {
    let tau = 20_000;
    for spacing in [67, 1_000, 10_000] {
        let mut q = Quality::new(&settings(tau), 1);
        let mut t = 0;
        while t < 50 * tau {
            q.on_probe_at(0, reply(20.0), t);
            t += spacing;
        }
        let step_at = t;
        // Samples at 100 ms for τ (the last one exactly τ after the step
        // began, so the weight is exactly the continuous one at 10 s too).
        let n = tau / spacing;
        for k in 0..n {
            q.on_probe_at(0, reply(100.0), step_at + k * spacing);
        }
        let moved = (latency(&q) - 20.0) / 80.0;
        // With n samples at spacing s the sampled EWMA moved
        // 1 - exp(-n·s/τ); between one and ~100 samples per τ it is 0.6-0.65.
        let expected = 1.0 - (-((n * spacing) as f64) / tau as f64).exp();
        assert!(
            (moved - expected).abs() < 1e-6,
            "spacing {spacing} ms: moved {moved}, expected {expected}"
        );
        assert!(
            (0.55..0.66).contains(&moved),
            "spacing {spacing} ms: moved {moved} of the step after one τ"
        );
    }
}

/// Evenly spaced samples: the weight of a new sample is exactly
/// 1 - exp(-Δt/τ) once the start-up has passed.
#[test]
fn steady_weight_is_one_minus_exp_of_spacing_over_tau() {
    let mut q = Quality::new(&settings(1_000), 1);
    for k in 0..200u64 {
        q.on_probe_at(0, reply(10.0), k * 500);
    }
    q.on_probe_at(0, reply(110.0), 200 * 500);
    let w = per_sample_weight(1_000, 500.0);
    assert!(close(w, 1.0 - (-0.5f64).exp()));
    assert!(
        (latency(&q) - (10.0 + 100.0 * w)).abs() < 1e-6,
        "{}",
        latency(&q)
    );
}

/// A tracker gap: the first sample after a silence of many τ is nearly the
/// whole reading (the old values are stale), not one more probe among many.
#[test]
fn a_sample_after_a_long_gap_dominates() {
    let mut q = Quality::new(&settings(1_000), 1);
    for k in 0..100u64 {
        q.on_probe_at(0, reply(10.0), k * 100);
    }
    q.on_probe_at(0, reply(50.0), 10_000 + 20_000);
    assert!((latency(&q) - 50.0).abs() < 1e-3, "{}", latency(&q));
}

/// The ARP case: the first answer reads twice the RTT. Within a handful of
/// answers the reading is within a few % of the truth, at our pace and at
/// mwan3's; the outlier never moves the reading past the real RTT by more
/// than the noise after the second answer.
#[test]
fn first_answer_outlier_does_not_bias_latency() {
    for (spacing, tau) in [
        (67, DEFAULT_TIME_CONSTANT_MS),
        (10_000, DEFAULT_TIME_CONSTANT_MS),
    ] {
        let mut q = Quality::new(&settings(tau), 3);
        let mut rng = Rng::new(7);
        q.on_probe_at(0, reply(40.0), 0);
        assert!(close(latency(&q), 40.0), "one answer is all there is");
        for k in 1..6u64 {
            let rtt = 20.0 + 0.2 * rng.normal();
            q.on_probe_at((k % 3) as usize, reply(rtt), k * spacing);
            assert!(
                latency(&q) < 24.0,
                "spacing {spacing}: after {} answers {}",
                k + 1,
                latency(&q)
            );
        }
        let l = latency(&q);
        assert!(
            (l - 20.0).abs() < 0.6,
            "spacing {spacing}: latency {l} after 6 answers"
        );
        // And it stays there.
        for k in 6..40u64 {
            q.on_probe_at(
                (k % 3) as usize,
                reply(20.0 + 0.2 * rng.normal()),
                k * spacing,
            );
        }
        let l = latency(&q);
        assert!(
            (l - 20.0).abs() < 0.6,
            "spacing {spacing}: latency {l} after 40"
        );
        assert!(
            q.snapshot().jitter_ms < 1.0,
            "spacing {spacing}: the outlier's difference is not jitter: {}",
            q.snapshot().jitter_ms
        );
    }
}

/// Jitter ignores each target's first answer: a steady link whose first
/// answer was slow has no jitter.
#[test]
fn jitter_starts_after_each_targets_first_answer() {
    let mut q = Quality::new(&settings(1_000), 2);
    q.on_probe_at(0, reply(45.0), 0);
    q.on_probe_at(1, reply(30.0), 50);
    assert_eq!(q.snapshot().jitter_ms, 0.0);
    q.on_probe_at(0, reply(15.0), 100);
    q.on_probe_at(1, reply(30.0), 150);
    assert_eq!(q.snapshot().jitter_ms, 0.0, "first differences skipped");
    q.on_probe_at(0, reply(25.0), 200);
    assert!(
        close(q.snapshot().jitter_ms, 10.0),
        "first jitter sample is the reading"
    );
}

#[test]
fn jitter_compares_replies_of_the_same_target_only() {
    let mut q = Quality::new(&settings(1_000), 2);
    // Two targets at 10 ms and 90 ms, perfectly steady: no jitter.
    for k in 0..50u64 {
        q.on_probe_at(0, reply(10.0), k * 100);
        q.on_probe_at(1, reply(90.0), k * 100 + 50);
    }
    assert!(q.snapshot().jitter_ms.abs() < 1e-9);
    assert!((latency(&q) - 50.0).abs() < 10.0);
}

/// Loss starts from one pseudo-answer: one early loss reads 50 % (not
/// dead), two 67 % (dead beyond the 50 % limit); a lossless start reads 0.
#[test]
fn loss_starts_sensibly() {
    let mut q = Quality::new(&settings(7_000), 1);
    q.on_probe_at(0, ProbeOutcome::Lost, 0);
    let s = q.snapshot();
    assert!(close(s.loss_pct, 50.0), "{}", s.loss_pct);
    assert!(!s.dead);
    q.on_probe_at(0, ProbeOutcome::Lost, 67);
    let s = q.snapshot();
    // 2/3, the prior having decayed a little over 67 ms.
    assert!((s.loss_pct - 200.0 / 3.0).abs() < 0.5, "{}", s.loss_pct);
    assert!(s.dead);
    assert_eq!(s.score, None, "dead beyond the hard loss limit");
    let mut q = Quality::new(&settings(7_000), 1);
    q.on_probe_at(0, reply(20.0), 0);
    assert_eq!(q.snapshot().loss_pct, 0.0);
    assert_eq!(q.snapshot().score, Some(20.0));
}

/// Results may arrive in any order (a loss is reported after later
/// replies): the reading is the one of send order.
#[test]
fn arrival_order_does_not_matter() {
    let mut rng = Rng::new(3);
    let mut results = Vec::new();
    for k in 0..300u64 {
        let outcome = if rng.chance(0.1) {
            ProbeOutcome::Lost
        } else {
            reply(20.0 + 5.0 * rng.normal().abs())
        };
        results.push(((k % 3) as usize, outcome, k * 67));
    }
    let mut in_order = Quality::new(&settings(2_000), 3);
    for &(t, o, at) in &results {
        in_order.on_probe_at(t, o, at);
    }
    // Losses reported 0.3 s late (after the next four replies).
    let mut late = results.clone();
    late.sort_by_key(|&(_, o, at)| at + if o == ProbeOutcome::Lost { 300 } else { 0 });
    let mut reordered = Quality::new(&settings(2_000), 3);
    for &(t, o, at) in &late {
        reordered.on_probe_at(t, o, at);
    }
    let (a, b) = (in_order.snapshot(), reordered.snapshot());
    assert!((a.loss_pct - b.loss_pct).abs() < 1e-9, "{a:?} {b:?}");
    assert!(a.loss_pct > 1.0);
    assert!((a.latency_ms.unwrap_or(0.0) - b.latency_ms.unwrap_or(1.0)).abs() < 1e-9);
}

/// Samples sent at the same instant each count once (a per-gap weight
/// would give all but the first nothing).
#[test]
fn simultaneous_samples_count_equally() {
    let mut q = Quality::new(&settings(1_000), 3);
    q.on_probe_at(0, reply(10.0), 0);
    q.on_probe_at(1, ProbeOutcome::Lost, 0);
    q.on_probe_at(2, ProbeOutcome::Lost, 0);
    // Prior (1 answer) + 1 answer + 2 losses.
    assert!(
        close(q.snapshot().loss_pct, 50.0),
        "{}",
        q.snapshot().loss_pct
    );
}

#[test]
fn zero_time_constant_means_no_smoothing() {
    let mut q = Quality::new(&settings(0), 1);
    for (k, ms) in [30.0, 10.0, 12.0, 14.0, 16.0, 80.0].iter().enumerate() {
        q.on_probe_at(0, reply(*ms), k as u64 * 1000);
    }
    assert!(close(latency(&q), 80.0), "{}", latency(&q));
    q.on_probe_at(0, ProbeOutcome::Lost, 6000);
    assert!(close(q.snapshot().loss_pct, 100.0));
}

#[test]
fn late_reply_informs_latency_not_loss() {
    let mut q = Quality::new(&settings(0), 1);
    for k in 0..5u64 {
        q.on_probe_at(0, reply(20.0), k * 100);
    }
    q.on_probe_at(0, ProbeOutcome::Lost, 500);
    q.on_probe_at(0, ProbeOutcome::LateReply { rtt_us: 1_020_000 }, 500);
    let s = q.snapshot();
    assert!(close(s.loss_pct, 100.0));
    assert!(close(s.latency_ms.unwrap_or(0.0), 1020.0));
}

/// The time-less `on_probe` (kept for old callers) still smooths, as if
/// samples came at our default pace.
#[test]
fn timeless_on_probe_still_works() {
    let mut q = Quality::new(&settings(DEFAULT_TIME_CONSTANT_MS), 1);
    for _ in 0..5000 {
        q.on_probe(0, reply(20.0));
    }
    q.on_probe(0, reply(120.0));
    let w = per_sample_weight(DEFAULT_TIME_CONSTANT_MS, 67.0);
    assert!(
        (latency(&q) - (20.0 + 100.0 * w)).abs() < 1e-6,
        "{}",
        latency(&q)
    );
}

#[test]
fn score_formula_with_bias_and_divisor() {
    let s = QualitySettings {
        bias_ms: 25.0,
        loss_divisor: 4.0,
        loss_limit_pct: 80.0,
        time_constant_ms: 1_000,
    };
    assert!(close(
        score(40.0, 5.0, 10.0, &s),
        40.0 + 5.0 + 100.0 / 4.0 + 25.0
    ));
}

/// Under 5 % loss and 30 ms Gaussian jitter the smoothed values centre on
/// the truth: loss 5 %, jitter E|X1 - X2| = 2σ/√π ≈ 33.85 ms.
#[test]
fn smoothed_values_centre_on_the_noise_parameters() {
    let mut q = Quality::new(&settings(1_000), 3);
    let mut rng = Rng::new(1);
    let (mut loss, mut jitter, mut latency, mut n) = (0.0, 0.0, 0.0, 0.0);
    for i in 0..300_000u64 {
        let target = (i % 3) as usize;
        let at = i * 67;
        if rng.chance(0.05) {
            q.on_probe_at(target, ProbeOutcome::Lost, at);
        } else {
            // Base 200 ms so clipping at 0 never matters.
            q.on_probe_at(target, reply(200.0 + 30.0 * rng.normal()), at);
        }
        if i > 1000 {
            let s = q.snapshot();
            loss += s.loss_pct;
            jitter += s.jitter_ms;
            latency += s.latency_ms.unwrap_or(0.0);
            n += 1.0;
        }
    }
    let expected_jitter = 2.0 * 30.0 / std::f64::consts::PI.sqrt();
    assert!((loss / n - 5.0).abs() < 0.2, "loss {}", loss / n);
    assert!(
        (jitter / n - expected_jitter).abs() < 1.0,
        "jitter {} vs {expected_jitter}",
        jitter / n
    );
    assert!((latency / n - 200.0).abs() < 1.0, "latency {}", latency / n);
}

#[test]
fn old_smoothing_converts_to_a_time_constant() {
    // 0.01 per probe at one probe every 66.7 ms: τ ≈ 6.63 s.
    let tau = time_constant_from_smoothing(0.01, 200.0 / 3.0);
    assert_eq!(tau, 6_633);
    assert!((per_sample_weight(tau, 200.0 / 3.0) - 0.01).abs() < 1e-5);
    // mwan3's pace (one probe per 10 s): the same 0.01 meant ~1000 s.
    assert_eq!(time_constant_from_smoothing(0.01, 10_000.0), 994_992);
    assert_eq!(time_constant_from_smoothing(1.0, 10_000.0), 0);
}

/// `RECOMMENDED_TRACKING.smoothing` (the per-probe figure kept in health)
/// must describe the same averaging as the default time constant at the
/// recommended pace.
#[test]
fn recommended_smoothing_matches_the_default_time_constant() {
    let r = RECOMMENDED_TRACKING;
    let spacing = r.interval_ms as f64 / f64::from(r.targets * r.count);
    let w = per_sample_weight(DEFAULT_TIME_CONSTANT_MS, spacing);
    assert!(
        (r.smoothing - w).abs() / w < 0.1,
        "RECOMMENDED_TRACKING.smoothing {} vs {w} for τ {} ms",
        r.smoothing,
        DEFAULT_TIME_CONSTANT_MS
    );
    assert_eq!(
        QualitySettings::default().time_constant_ms,
        DEFAULT_TIME_CONSTANT_MS
    );
}

fn interface_quality(options: &str) -> (QualitySettings, Vec<String>) {
    let text = format!(
        "config interface 'wan'\n\toption enabled '1'\n\tlist track_ip '192.0.2.1'\n\tlist track_ip '192.0.2.2'\n\toption interval '0.5'\n{options}"
    );
    let loaded = parse("/etc/config/mwan", &text).unwrap_or_else(|r| {
        panic!(
            "{}",
            r.problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    (
        loaded.config.interfaces[0].quality.clone(),
        loaded.warnings.iter().map(|w| w.to_string()).collect(),
    )
}

#[test]
fn time_constant_option() {
    let (q, w) = interface_quality("");
    assert_eq!(q.time_constant_ms, DEFAULT_TIME_CONSTANT_MS);
    assert!(w.is_empty(), "{w:?}");
    let (q, w) = interface_quality("\toption quality_time_constant '2.5'\n");
    assert_eq!(q.time_constant_ms, 2_500);
    assert!(w.is_empty(), "{w:?}");
    let (q, _) = interface_quality("\toption quality_time_constant '0'\n");
    assert_eq!(q.time_constant_ms, 0);
    let text = "config interface 'wan'\n\toption quality_time_constant 'slow'\n";
    let rejected = parse("/etc/config/mwan", text)
        .err()
        .map(|r| r.problems[0].to_string());
    assert_eq!(
        rejected.as_deref(),
        Some("/etc/config/mwan:2: section 'wan' (interface): option 'quality_time_constant': 'slow' is not a duration: expected seconds from 0 to 86400, with up to 3 decimals (e.g. 10 or 0.2)")
    );
}

/// At mwan3's pace (one target every 10 s) 7 s would hold about one
/// sample: a single lost probe would read ~76 % loss, a dead link. The
/// default therefore spans at least 10 probe spacings there (100 s), and
/// one loss among answers stays a small reading.
#[test]
fn slow_probing_gets_a_longer_default() {
    assert_eq!(default_time_constant(200.0 / 3.0), DEFAULT_TIME_CONSTANT_MS);
    assert_eq!(default_time_constant(10_000.0), 100_000);
    let text = "config interface 'wan'\n\toption enabled '1'\n\tlist track_ip '192.0.2.1'\n";
    let loaded = parse("/etc/config/mwan3", text).map_err(|r| r.problems.len());
    assert_eq!(
        loaded.map(|l| l.config.interfaces[0].quality.time_constant_ms),
        Ok(100_000),
        "mwan3 defaults: interval 10 s, one target"
    );
    for (tau, dead) in [(DEFAULT_TIME_CONSTANT_MS, true), (100_000, false)] {
        let mut q = Quality::new(&settings(tau), 1);
        for k in 0..50u64 {
            q.on_probe_at(0, reply(20.0), k * 10_000);
        }
        q.on_probe_at(0, ProbeOutcome::Lost, 500_000);
        let s = q.snapshot();
        assert_eq!(s.dead, dead, "τ {tau} ms: one loss reads {} %", s.loss_pct);
        if !dead {
            assert!(s.loss_pct < 10.0, "{}", s.loss_pct);
        }
    }
}

#[test]
fn old_smoothing_option_is_converted_with_a_warning() {
    // 2 targets every 0.5 s: one probe per 250 ms; 0.05 -> τ = 4.874 s.
    let (q, w) = interface_quality("\toption quality_smoothing '0.05'\n");
    assert_eq!(q.time_constant_ms, 4_874);
    assert_eq!(
        w,
        vec!["/etc/config/mwan:6: section 'wan' (interface): option 'quality_smoothing': per-probe smoothing is replaced by a time constant: 0.05 at this interface's pace (one probe every 0.25 s) is quality_time_constant '4.874'; expected quality_time_constant (seconds)".to_string()]
    );
    let (q, w) = interface_quality(
        "\toption quality_smoothing '0.05'\n\toption quality_time_constant '3'\n",
    );
    assert_eq!(q.time_constant_ms, 3_000);
    assert_eq!(
        w,
        vec!["/etc/config/mwan:6: section 'wan' (interface): option 'quality_smoothing': replaced by quality_time_constant, which is also set (3 s) and wins: expected only quality_time_constant".to_string()]
    );
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// More latency, jitter or loss never improves the score.
    #[test]
    fn score_is_monotone(lat in 0.0f64..5000.0, jit in 0.0f64..500.0, loss in 0.0f64..100.0,
                         d_lat in 0.0f64..100.0, d_jit in 0.0f64..100.0, d_loss in 0.0f64..10.0,
                         divisor in 0.1f64..100.0, bias in -100.0f64..100.0) {
        let s = QualitySettings { bias_ms: bias, loss_divisor: divisor, loss_limit_pct: 100.0, time_constant_ms: 1000 };
        let base = score(lat, jit, loss, &s);
        prop_assert!(score(lat + d_lat, jit, loss, &s) >= base);
        prop_assert!(score(lat, jit + d_jit, loss, &s) >= base);
        prop_assert!(score(lat, jit, (loss + d_loss).min(100.0), &s) >= base);
    }

    /// Smoothed loss stays within 0..=100 and latency within the RTTs seen,
    /// for any spacing, order and time constant.
    #[test]
    fn smoothed_values_stay_in_range(outcomes in proptest::collection::vec((proptest::option::of(1u32..2_000_000), 0u64..100_000), 1..200),
                                     tau in 0u64..100_000) {
        let mut q = Quality::new(&settings(tau), 1);
        let mut lo = f64::MAX;
        let mut hi = 0.0f64;
        for (o, at) in &outcomes {
            match o {
                Some(us) => {
                    q.on_probe_at(0, ProbeOutcome::Reply { rtt_us: *us }, *at);
                    lo = lo.min(f64::from(*us) / 1000.0);
                    hi = hi.max(f64::from(*us) / 1000.0);
                }
                None => q.on_probe_at(0, ProbeOutcome::Lost, *at),
            }
        }
        let s = q.snapshot();
        prop_assert!((0.0..=100.0).contains(&s.loss_pct));
        prop_assert!(s.jitter_ms >= 0.0 && s.jitter_ms.is_finite());
        if let Some(l) = s.latency_ms {
            prop_assert!(l >= lo - 1e-9 && l <= hi + 1e-9);
        }
    }
}
