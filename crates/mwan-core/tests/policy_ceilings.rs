//! Quality ceilings per policy: a member that stays above a policy's
//! latency, jitter or loss ceiling for its minimum stable time stops
//! carrying that policy (other policies keep it), returns once under the
//! ceiling less its hysteresis as long; with no member within the
//! ceilings the closest one carries the policy (or its last resort), and
//! explain names the ceiling.

use mwan_core::config::{parse, CeilingFallback, Config, Kind, QualityKind};
use mwan_core::health::LinkState;
use mwan_core::policy::{
    explain, resolve, Overrides, PolicyDecision, PolicyMemory, QualityReading, WanView,
};
use mwan_core::Millis;

const BASE: &str = "
config interface 'wan1'
\toption enabled '1'
config interface 'wan2'
\toption enabled '1'
config member 'wan1_m'
\toption interface 'wan1'
\toption metric '1'
config member 'wan2_m'
\toption interface 'wan2'
\toption metric '2'
config policy 'bulk'
\tlist use_member 'wan1_m'
\tlist use_member 'wan2_m'
";

/// The base config with a `voice` policy (wan1 first) carrying `options`.
fn config(options: &str) -> Config {
    let text = format!(
        "{BASE}config policy 'voice'\n\tlist use_member 'wan1_m'\n\tlist use_member 'wan2_m'\n{options}"
    );
    parse("test", &text).expect("config").config
}

fn view(name: &str, latency: f64, jitter: f64, loss: f64) -> WanView {
    WanView {
        interface: name.into(),
        state: LinkState::Online,
        since: 0,
        usable: true,
        usable_since: Some(0),
        score: Some(latency + jitter),
        quality: Some(QualityReading {
            latency_ms: Some(latency),
            jitter_ms: jitter,
            loss_pct: loss,
        }),
    }
}

fn active<'a>(decisions: &'a [PolicyDecision], policy: &str) -> Vec<&'a str> {
    decisions
        .iter()
        .find(|d| d.policy == policy)
        .expect("policy")
        .active
        .iter()
        .map(|m| m.interface.as_str())
        .collect()
}

fn decision<'a>(decisions: &'a [PolicyDecision], policy: &str) -> &'a PolicyDecision {
    decisions
        .iter()
        .find(|d| d.policy == policy)
        .expect("policy")
}

/// Feeds wan1's jitter over time (wan2 steady at 10 ms) and returns the
/// voice policy's member at each step.
fn jitter_run(cfg: &Config, steps: &[(Millis, f64)]) -> Vec<(Millis, String, String)> {
    let mut memory = PolicyMemory::default();
    steps
        .iter()
        .map(|&(now, jitter)| {
            let views = [
                view("wan1", 20.0, jitter, 0.0),
                view("wan2", 30.0, 10.0, 0.0),
            ];
            let d = resolve(cfg, &views, &Overrides::default(), &mut memory, now);
            (
                now,
                active(&d, "voice").join(","),
                active(&d, "bulk").join(","),
            )
        })
        .collect()
}

#[test]
fn jitter_ceiling_with_hysteresis_and_min_stable_time() {
    let cfg = config(
        "\toption max_jitter '30'\n\toption jitter_hysteresis '5'\n\toption jitter_min_stable '5'\n",
    );
    // (name, wan1 jitter over time, voice's member at each step)
    type Case = (
        &'static str,
        &'static [(Millis, f64)],
        &'static [&'static str],
    );
    let cases: [Case; 5] = [
        (
            "within the ceiling: stays",
            &[(0, 10.0), (5_000, 29.0), (20_000, 30.0)],
            &["wan1", "wan1", "wan1"],
        ),
        (
            "above for the minimum stable time: leaves",
            &[(0, 10.0), (1_000, 48.0), (5_999, 48.0), (6_000, 48.0)],
            &["wan1", "wan1", "wan1", "wan2"],
        ),
        (
            "a spike shorter than the stable time: stays",
            &[
                (0, 48.0),
                (4_000, 48.0),
                (4_500, 10.0),
                (9_000, 48.0),
                (13_000, 48.0),
            ],
            &["wan1", "wan1", "wan1", "wan1", "wan1"],
        ),
        (
            "back under the ceiling but not under the hysteresis: stays away",
            &[(0, 48.0), (5_000, 48.0), (6_000, 28.0), (30_000, 26.0)],
            &["wan1", "wan2", "wan2", "wan2"],
        ),
        (
            "under the ceiling less the hysteresis for the stable time: returns",
            &[
                (0, 48.0),
                (5_000, 48.0),
                (6_000, 25.0),
                (10_999, 20.0),
                (11_000, 20.0),
            ],
            &["wan1", "wan2", "wan2", "wan2", "wan1"],
        ),
    ];
    for (name, steps, expected) in cases {
        let run = jitter_run(&cfg, steps);
        let voice: Vec<&str> = run.iter().map(|(_, v, _)| v.as_str()).collect();
        assert_eq!(voice, expected, "{name}: {run:?}");
        // The bulk policy has no ceiling: wan1 all along.
        assert!(run.iter().all(|(_, _, b)| b == "wan1"), "{name}: {run:?}");
    }
}

#[test]
fn each_kind_of_ceiling_applies_to_its_own_measure() {
    // (options, wan1's latency, jitter, loss, voice's member after 10 s)
    let cases: [(&str, [f64; 3], &str); 6] = [
        ("\toption max_latency '100'\n", [150.0, 5.0, 0.0], "wan2"),
        ("\toption max_latency '100'\n", [80.0, 50.0, 20.0], "wan1"),
        ("\toption max_jitter '30'\n", [500.0, 31.0, 0.0], "wan2"),
        ("\toption max_loss '2'\n", [20.0, 5.0, 3.0], "wan2"),
        ("\toption max_loss '2'\n", [200.0, 50.0, 2.0], "wan1"),
        (
            "\toption max_latency '100'\n\toption max_jitter '30'\n\toption max_loss '2'\n",
            [99.0, 29.0, 1.9],
            "wan1",
        ),
    ];
    for (options, [latency, jitter, loss], expected) in cases {
        let cfg = config(options);
        let mut memory = PolicyMemory::default();
        let views = [
            view("wan1", latency, jitter, loss),
            view("wan2", 30.0, 10.0, 0.0),
        ];
        let mut last = Vec::new();
        for now in [0, 5_000, 10_000] {
            last = resolve(&cfg, &views, &Overrides::default(), &mut memory, now);
        }
        assert_eq!(active(&last, "voice"), [expected], "{options}");
    }
}

#[test]
fn explain_names_the_ceiling_that_moved_the_policy() {
    let cfg = config("\toption max_jitter '30'\n\toption jitter_min_stable '5'\n");
    let mut memory = PolicyMemory::default();
    let views = [view("wan1", 20.0, 48.0, 0.0), view("wan2", 30.0, 10.0, 0.0)];
    resolve(&cfg, &views, &Overrides::default(), &mut memory, 0);
    let d = resolve(&cfg, &views, &Overrides::default(), &mut memory, 5_000);
    assert_eq!(
        explain(decision(&d, "voice"), 5_000),
        "wan1 jitter 48 ms > voice's 30 ms for 5.0 s, so policy voice uses wan2 (weight 1) for IPv4 (metric 2)"
    );
    assert_eq!(
        explain(decision(&d, "bulk"), 5_000),
        "policy bulk uses wan1 (weight 1) for IPv4 (metric 1); wan2 waits at metric 2 and would take over if wan1 went down"
    );
}

#[test]
fn no_member_within_the_ceilings_falls_back_to_the_closest() {
    let cfg = config("\toption max_jitter '30'\n\toption jitter_min_stable '0'\n");
    // wan1 at 60 ms is twice the ceiling, wan2 at 40 ms a third above it.
    let views = [view("wan1", 20.0, 60.0, 0.0), view("wan2", 30.0, 40.0, 0.0)];
    let d = resolve(
        &cfg,
        &views,
        &Overrides::default(),
        &mut PolicyMemory::default(),
        0,
    );
    let voice = decision(&d, "voice");
    assert_eq!(active(&d, "voice"), ["wan2"]);
    assert_eq!(voice.last_resort, None, "not unreachable");
    assert_eq!(
        explain(voice, 0),
        "wan1 jitter 60 ms > voice's 30 ms for 0.0 s; wan2 jitter 40 ms > voice's 30 ms for 0.0 s; \
         no usable member meets its quality ceilings for IPv4, so policy voice uses the best available, wan2, for IPv4"
    );

    // Configured otherwise: the last resort.
    let cfg = config(
        "\toption max_jitter '30'\n\toption jitter_min_stable '0'\n\toption quality_fallback 'last_resort'\n",
    );
    assert_eq!(
        cfg.policies[1].ceilings.fallback,
        CeilingFallback::LastResort
    );
    let d = resolve(
        &cfg,
        &views,
        &Overrides::default(),
        &mut PolicyMemory::default(),
        0,
    );
    assert!(active(&d, "voice").is_empty());
    assert!(decision(&d, "voice").last_resort.is_some());
    assert!(explain(decision(&d, "voice"), 0).contains("its last resort"));
}

#[test]
fn an_unhealthy_member_is_never_the_fallback() {
    let cfg = config("\toption max_jitter '30'\n\toption jitter_min_stable '0'\n");
    let mut wan2 = view("wan2", 30.0, 40.0, 0.0);
    wan2.state = LinkState::Offline;
    wan2.usable = false;
    let views = [view("wan1", 20.0, 90.0, 0.0), wan2];
    let d = resolve(
        &cfg,
        &views,
        &Overrides::default(),
        &mut PolicyMemory::default(),
        0,
    );
    assert_eq!(active(&d, "voice"), ["wan1"]);
}

#[test]
fn ceiling_options_parse_with_defaults_and_clear_errors() {
    let cfg = config(
        "\toption max_latency '150'\n\toption max_loss '2.5'\n\toption loss_min_stable '0.5'\n",
    );
    let c = &cfg.policies[1].ceilings;
    let latency = c.get(QualityKind::Latency).expect("latency");
    assert_eq!(
        (latency.limit, latency.hysteresis, latency.min_stable_ms),
        (150.0, 15.0, 5_000)
    );
    let loss = c.get(QualityKind::Loss).expect("loss");
    assert_eq!((loss.limit, loss.min_stable_ms), (2.5, 500));
    assert!(c.get(QualityKind::Jitter).is_none());
    assert_eq!(c.fallback, CeilingFallback::Best);
    assert!(!cfg.policies[0].ceilings.any(), "bulk has none");

    let text = format!(
        "{BASE}config policy 'voice'\n\tlist use_member 'wan1_m'\n\toption max_jitter '30'\n\toption jitter_hysteresis '30'\n"
    );
    let err = parse("test", &text).expect_err("hysteresis at the ceiling");
    let p = &err.problems[0];
    assert_eq!(
        (p.line, p.option.as_deref()),
        (18, Some("jitter_hysteresis"))
    );
    assert!(
        p.message.contains("must be below max_jitter"),
        "{}",
        p.message
    );

    let text = format!("{BASE}config policy 'voice'\n\toption max_loss '101'\n");
    assert!(parse("test", &text).is_err(), "loss above 100 %");

    let text = format!("{BASE}config policy 'voice'\n\toption jitter_min_stable '3'\n");
    let loaded = parse("test", &text).expect("loads");
    assert!(loaded
        .warnings
        .iter()
        .any(|w| w.kind == Kind::NoEffect && w.option.as_deref() == Some("jitter_min_stable")));
}
