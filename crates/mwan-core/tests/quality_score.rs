//! Quality: EWMA latency, RFC 3550-style jitter per target, loss, and the
//! score `latency + jitter + loss²/loss_divisor + bias`.

#[path = "sim_common/mod.rs"]
mod sim_common;

use mwan_core::config::QualitySettings;
use mwan_core::health::ProbeOutcome;
use mwan_core::quality::{score, Quality};
use proptest::prelude::*;
use sim_common::Rng;

fn settings(smoothing: f64) -> QualitySettings {
    QualitySettings {
        bias_ms: 0.0,
        loss_divisor: 10.0,
        loss_limit_pct: 50.0,
        smoothing,
    }
}

fn reply(ms: f64) -> ProbeOutcome {
    ProbeOutcome::Reply {
        rtt_us: (ms * 1000.0) as u32,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn no_data_no_score() {
    let q = Quality::new(&settings(0.5), 1);
    let s = q.snapshot();
    assert_eq!(s.score, None);
    assert_eq!(s.latency_ms, None);
    assert!(!s.dead);
}

#[test]
fn ewma_latency_jitter_and_loss() {
    let mut q = Quality::new(&settings(0.5), 1);
    q.on_probe(0, reply(100.0));
    let s = q.snapshot();
    assert_eq!(s.latency_ms, Some(100.0), "first reply initialises");
    assert_eq!(s.jitter_ms, 0.0);
    assert_eq!(s.score, Some(100.0));
    q.on_probe(0, reply(200.0));
    let s = q.snapshot();
    assert_eq!(s.latency_ms, Some(150.0));
    assert!(close(s.jitter_ms, 50.0), "|ΔRTT| = 100, half weight");
    q.on_probe(0, ProbeOutcome::Lost);
    let s = q.snapshot();
    assert!(close(s.loss_pct, 50.0));
    assert_eq!(s.latency_ms, Some(150.0), "a loss leaves latency alone");
    // 150 + 50 + 50²/10 = 450; but 50 % is not above the 50 % limit.
    assert!(close(s.score.unwrap_or(f64::NAN), 450.0));
    q.on_probe(0, ProbeOutcome::Lost);
    let s = q.snapshot();
    assert!(close(s.loss_pct, 75.0));
    assert!(s.dead);
    assert_eq!(s.score, None, "dead beyond the hard loss limit");
}

#[test]
fn jitter_compares_replies_of_the_same_target_only() {
    let mut q = Quality::new(&settings(0.2), 2);
    // Two targets at 10 ms and 90 ms, perfectly steady: no jitter.
    for _ in 0..50 {
        q.on_probe(0, reply(10.0));
        q.on_probe(1, reply(90.0));
    }
    assert!(q.snapshot().jitter_ms.abs() < 1e-9);
    assert!((q.snapshot().latency_ms.unwrap_or(0.0) - 50.0).abs() < 10.0);
}

#[test]
fn late_reply_informs_latency_not_loss() {
    let mut q = Quality::new(&settings(0.5), 1);
    q.on_probe(0, reply(20.0));
    q.on_probe(0, ProbeOutcome::Lost);
    q.on_probe(0, ProbeOutcome::LateReply { rtt_us: 1_020_000 });
    let s = q.snapshot();
    assert!(close(s.loss_pct, 50.0));
    assert_eq!(s.latency_ms, Some(520.0));
}

#[test]
fn score_formula_with_bias_and_divisor() {
    let s = QualitySettings {
        bias_ms: 25.0,
        loss_divisor: 4.0,
        loss_limit_pct: 80.0,
        smoothing: 0.1,
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
    let mut q = Quality::new(&settings(0.05), 3);
    let mut rng = Rng::new(1);
    let (mut loss, mut jitter, mut latency, mut n) = (0.0, 0.0, 0.0, 0.0);
    for i in 0..300_000u32 {
        let target = (i % 3) as usize;
        if rng.chance(0.05) {
            q.on_probe(target, ProbeOutcome::Lost);
        } else {
            // Base 200 ms so clipping at 0 never matters.
            q.on_probe(target, reply(200.0 + 30.0 * rng.normal()));
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

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// More latency, jitter or loss never improves the score.
    #[test]
    fn score_is_monotone(lat in 0.0f64..5000.0, jit in 0.0f64..500.0, loss in 0.0f64..100.0,
                         d_lat in 0.0f64..100.0, d_jit in 0.0f64..100.0, d_loss in 0.0f64..10.0,
                         divisor in 0.1f64..100.0, bias in -100.0f64..100.0) {
        let s = QualitySettings { bias_ms: bias, loss_divisor: divisor, loss_limit_pct: 100.0, smoothing: 0.1 };
        let base = score(lat, jit, loss, &s);
        prop_assert!(score(lat + d_lat, jit, loss, &s) >= base);
        prop_assert!(score(lat, jit + d_jit, loss, &s) >= base);
        prop_assert!(score(lat, jit, (loss + d_loss).min(100.0), &s) >= base);
    }

    /// Smoothed loss stays within 0..=100 and latency within the RTTs seen.
    #[test]
    fn smoothed_values_stay_in_range(outcomes in proptest::collection::vec(proptest::option::of(1u32..2_000_000), 1..200),
                                     smoothing in 0.01f64..1.0) {
        let mut q = Quality::new(&settings(smoothing), 1);
        let mut lo = f64::MAX;
        let mut hi = 0.0f64;
        for o in &outcomes {
            match o {
                Some(us) => {
                    q.on_probe(0, ProbeOutcome::Reply { rtt_us: *us });
                    lo = lo.min(f64::from(*us) / 1000.0);
                    hi = hi.max(f64::from(*us) / 1000.0);
                }
                None => q.on_probe(0, ProbeOutcome::Lost),
            }
        }
        let s = q.snapshot();
        prop_assert!((0.0..=100.0).contains(&s.loss_pct));
        if let Some(l) = s.latency_ms {
            prop_assert!(l >= lo - 1e-9 && l <= hi + 1e-9);
        }
    }
}
