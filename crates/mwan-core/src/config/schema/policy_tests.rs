//! The steps of `policy` sections; whole sections are tested in
//! tests/config_*.rs.

use super::*;
use crate::config::schema::checker::run_step;

fn policy(options: &str) -> String {
    format!("config policy 'voice'\n{options}")
}

#[test]
fn a_ceiling_takes_its_hysteresis_and_stable_time_or_defaults() {
    let (c, problems) = run_step(
        &policy("\toption max_jitter '30'\n\toption jitter_hysteresis '5'\n\toption jitter_min_stable '2'\n\toption max_loss '10'\n"),
        ceilings,
    );
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        c.jitter,
        Some(Ceiling {
            limit: 30.0,
            hysteresis: 5.0,
            min_stable_ms: 2_000
        })
    );
    assert_eq!(
        c.loss,
        Some(Ceiling {
            limit: 10.0,
            hysteresis: 1.0,
            min_stable_ms: DEFAULT_CEILING_MIN_STABLE_MS
        })
    );
    assert_eq!((c.latency, c.fallback), (None, CeilingFallback::Best));
}

#[test]
fn a_hysteresis_at_the_ceiling_is_an_error_and_options_without_one_warn() {
    let (c, problems) = run_step(
        &policy("\toption max_latency '50'\n\toption latency_hysteresis '50'\n"),
        ceilings,
    );
    assert_eq!(c.latency, None);
    assert!(
        problems[0].starts_with("invalid: must be below max_latency (50)"),
        "{problems:?}"
    );
    let (c, problems) = run_step(
        &policy("\toption loss_min_stable '3'\n\toption quality_fallback 'last_resort'\n"),
        ceilings,
    );
    assert!(!c.any());
    let kinds: Vec<&str> = problems
        .iter()
        .map(|p| p.split(':').next().unwrap())
        .collect();
    assert_eq!(kinds, ["no-effect", "no-effect"], "{problems:?}");
}
