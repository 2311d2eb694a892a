//! Policy resolution: mwan3 tiers with weights per family, last_resort,
//! manual overrides, score mode with hysteresis and fail-back damping, the
//! words of `mwanctl explain`, and determinism.

use mwan_core::config::{
    Config, Family, Globals, Interface, LastResort, Member, Policy, PolicyMode,
};
use mwan_core::health::LinkState;
use mwan_core::policy::{explain, resolve, Overrides, PolicyDecision, PolicyMemory, WanView};
use mwan_core::Millis;
use proptest::prelude::*;

fn config(
    ifaces: &[(&str, Family)],
    members: &[(&str, &str, u32, u32)],
    policies: &[(&str, &[&str], PolicyMode)],
) -> Config {
    let interfaces = ifaces
        .iter()
        .map(|(name, family)| {
            let mut i = Interface::new(name);
            i.enabled = true;
            i.family = *family;
            i
        })
        .collect();
    let members = members
        .iter()
        .map(|(name, iface, metric, weight)| {
            let mut m = Member::new(name, iface);
            m.metric = *metric;
            m.weight = *weight;
            m
        })
        .collect();
    let policies = policies
        .iter()
        .map(|(name, uses, mode)| {
            let mut p = Policy::new(name);
            p.use_member = uses.iter().map(|s| s.to_string()).collect();
            p.mode = mode.clone();
            p
        })
        .collect();
    Config {
        source: "test".into(),
        globals: Globals::default(),
        interfaces,
        members,
        policies,
        rules: Vec::new(),
    }
}

fn view(name: &str, state: LinkState, since: Millis, score: Option<f64>) -> WanView {
    let usable = matches!(state, LinkState::Online | LinkState::Disconnecting);
    WanView {
        interface: name.into(),
        state,
        since,
        usable,
        usable_since: usable.then_some(since),
        score,
        quality: None,
    }
}

fn actives(d: &PolicyDecision) -> Vec<(String, u32)> {
    d.active
        .iter()
        .map(|m| (m.interface.clone(), m.weight))
        .collect()
}

fn v4(names: &[&str]) -> Vec<(&'static str, Family)> {
    names
        .iter()
        .map(|n| {
            (
                Box::leak(n.to_string().into_boxed_str()) as &str,
                Family::Ipv4,
            )
        })
        .collect()
}

fn tiered() -> Config {
    config(
        &v4(&["wan1", "wan2", "wan3"]),
        &[
            ("m1", "wan1", 1, 3),
            ("m2", "wan2", 1, 2),
            ("m3", "wan3", 2, 1),
        ],
        &[
            ("balanced", &["m1", "m2", "m3"], PolicyMode::Tiers),
            ("only3", &["m3"], PolicyMode::Tiers),
        ],
    )
}

fn resolve_once(
    cfg: &Config,
    views: &[WanView],
    overrides: &Overrides,
    now: Millis,
) -> Vec<PolicyDecision> {
    resolve(cfg, views, overrides, &mut PolicyMemory::default(), now)
}

#[test]
fn tiers_table() {
    use LinkState::*;
    let cfg = tiered();
    // (states of wan1, wan2, wan3) -> active members of "balanced"
    type Case = ([LinkState; 3], &'static [(&'static str, u32)]);
    let cases: [Case; 8] = [
        ([Online, Online, Online], &[("wan1", 3), ("wan2", 2)]),
        ([Offline, Online, Online], &[("wan2", 2)]),
        ([Disconnecting, Online, Online], &[("wan1", 3), ("wan2", 2)]),
        ([Connecting, Offline, Online], &[("wan3", 1)]),
        ([Offline, Offline, Online], &[("wan3", 1)]),
        ([Disabled, Unknown, Online], &[("wan3", 1)]),
        ([Offline, Offline, Offline], &[]),
        ([Online, Offline, Offline], &[("wan1", 3)]),
    ];
    for (states, expect) in cases {
        let views: Vec<WanView> = ["wan1", "wan2", "wan3"]
            .iter()
            .zip(states)
            .map(|(n, s)| view(n, s, 0, None))
            .collect();
        let d = &resolve_once(&cfg, &views, &Overrides::default(), 1000)[0];
        let expect: Vec<(String, u32)> = expect.iter().map(|(n, w)| (n.to_string(), *w)).collect();
        assert_eq!(actives(d), expect, "{states:?}");
        assert_eq!(d.last_resort.is_some(), expect.is_empty(), "{states:?}");
    }
}

#[test]
fn unknown_uses_the_health_machines_usable_verdict() {
    let cfg = tiered();
    let mut v = vec![
        view("wan1", LinkState::Unknown, 0, None),
        view("wan2", LinkState::Offline, 0, None),
        view("wan3", LinkState::Offline, 0, None),
    ];
    v[0].usable = true; // initial_state online, or aged while online
    assert_eq!(
        actives(&resolve_once(&cfg, &v, &Overrides::default(), 0)[0]),
        vec![("wan1".into(), 3)]
    );
    v[0].usable = false;
    assert!(resolve_once(&cfg, &v, &Overrides::default(), 0)[0]
        .active
        .is_empty());
}

#[test]
fn last_resort_is_the_policys() {
    let mut cfg = tiered();
    cfg.policies[0].last_resort = LastResort::Default;
    let views: Vec<WanView> = ["wan1", "wan2", "wan3"]
        .iter()
        .map(|n| view(n, LinkState::Offline, 0, None))
        .collect();
    let d = &resolve_once(&cfg, &views, &Overrides::default(), 0)[0];
    assert_eq!(d.last_resort, Some(LastResort::Default));
    assert_eq!(d.last_resort_for(Family::Ipv4), Some(LastResort::Default));
}

#[test]
fn missing_views_and_members_are_not_usable() {
    let cfg = tiered();
    let views = vec![view("wan3", LinkState::Online, 0, None)];
    let d = &resolve_once(&cfg, &views, &Overrides::default(), 0)[0];
    assert_eq!(actives(d), vec![("wan3".into(), 1)]);
    assert!(
        explain(d, 0).contains("wan1 is not tracked"),
        "{}",
        explain(d, 0)
    );
}

#[test]
fn families_resolve_separately() {
    let cfg = config(
        &[
            ("wan", Family::Ipv4),
            ("wan6", Family::Ipv6),
            ("wanb", Family::Ipv4),
        ],
        &[
            ("wan_m1", "wan", 1, 1),
            ("wan6_m2", "wan6", 2, 1),
            ("wanb_m3", "wanb", 3, 1),
        ],
        &[(
            "mixed",
            &["wan_m1", "wan6_m2", "wanb_m3"],
            PolicyMode::Tiers,
        )],
    );
    let mut views = vec![
        view("wan", LinkState::Online, 0, None),
        view("wan6", LinkState::Online, 0, None),
        view("wanb", LinkState::Online, 0, None),
    ];
    let d = &resolve_once(&cfg, &views, &Overrides::default(), 0)[0];
    let got: Vec<(String, Family)> = d
        .active
        .iter()
        .map(|m| (m.interface.clone(), m.family))
        .collect();
    assert_eq!(
        got,
        vec![
            ("wan".to_string(), Family::Ipv4),
            ("wan6".to_string(), Family::Ipv6)
        ],
        "metric 2 IPv6 is not shadowed by metric 1 IPv4"
    );
    views[1] = view("wan6", LinkState::Offline, 0, None);
    let d = &resolve_once(&cfg, &views, &Overrides::default(), 0)[0];
    assert_eq!(d.last_resort, None);
    assert_eq!(
        d.last_resort_for(Family::Ipv6),
        Some(LastResort::Unreachable)
    );
    assert_eq!(d.last_resort_for(Family::Ipv4), None);
}

#[test]
fn overrides_win_until_cleared() {
    let cfg = tiered();
    let views: Vec<WanView> = ["wan1", "wan2", "wan3"]
        .iter()
        .map(|n| view(n, LinkState::Online, 0, None))
        .collect();
    let mut o = Overrides {
        global: Some("wan3".into()),
        ..Overrides::default()
    };
    let d = resolve_once(&cfg, &views, &o, 0);
    assert_eq!(actives(&d[0]), vec![("wan3".into(), 1)]);
    assert_eq!(actives(&d[1]), vec![("wan3".into(), 1)]);
    o.per_policy.insert("balanced".into(), "wan2".into());
    let d = resolve_once(&cfg, &views, &o, 0);
    assert_eq!(
        actives(&d[0]),
        vec![("wan2".into(), 1)],
        "per policy beats global"
    );
    assert_eq!(actives(&d[1]), vec![("wan3".into(), 1)]);
    // An override wins even over health: the operator asked for it.
    let down: Vec<WanView> = ["wan1", "wan2", "wan3"]
        .iter()
        .map(|n| view(n, LinkState::Offline, 0, None))
        .collect();
    assert_eq!(
        actives(&resolve_once(&cfg, &down, &o, 0)[0]),
        vec![("wan2".into(), 1)]
    );
    let cleared = Overrides::default();
    assert_eq!(
        actives(&resolve_once(&cfg, &views, &cleared, 0)[0]),
        vec![("wan1".into(), 3), ("wan2".into(), 2)]
    );
    // Unknown interface: ignored, said so.
    let bogus = Overrides {
        global: Some("nope".into()),
        ..Overrides::default()
    };
    let d = &resolve_once(&cfg, &views, &bogus, 0)[0];
    assert_eq!(actives(d), vec![("wan1".into(), 3), ("wan2".into(), 2)]);
    assert!(explain(d, 0).contains("nope"));
}

#[test]
fn explain_in_words() {
    let cfg = tiered();
    let views = vec![
        view("wan1", LinkState::Offline, 3_000, None),
        view("wan2", LinkState::Connecting, 10_000, None),
        view("wan3", LinkState::Online, 0, None),
    ];
    let d = &resolve_once(&cfg, &views, &Overrides::default(), 15_000)[0];
    let text = explain(d, 15_000);
    assert_eq!(
        text,
        "wan1 is offline (for 12 s); wan2 is connecting (for 5.0 s), so policy balanced uses wan3 (weight 1) for IPv4 (metric 2)"
    );
    let views: Vec<WanView> = ["wan1", "wan2", "wan3"]
        .iter()
        .map(|n| view(n, LinkState::Offline, 0, None))
        .collect();
    let d = &resolve_once(&cfg, &views, &Overrides::default(), 0)[0];
    assert!(
        explain(d, 0).ends_with("policy balanced uses its last resort for IPv4: unreachable"),
        "{}",
        explain(d, 0)
    );
    let o = Overrides {
        global: Some("wan2".into()),
        ..Overrides::default()
    };
    let d = &resolve_once(&cfg, &views, &o, 0)[0];
    assert_eq!(
        explain(d, 0),
        "policy balanced is forced onto wan2 by a manual override (for all policies) although wan2 is offline (for 0.0 s): traffic through this policy is likely lost"
    );
}

/// mwan3's usual failover: wan1, wan2, wan3 at metrics 1, 2, 3.
fn failover() -> Config {
    config(
        &v4(&["wan1", "wan2", "wan3"]),
        &[
            ("m1", "wan1", 1, 1),
            ("m2", "wan2", 2, 1),
            ("m3", "wan3", 3, 1),
        ],
        &[("failover", &["m1", "m2", "m3"], PolicyMode::Tiers)],
    )
}

#[test]
fn explain_names_standby_members() {
    let cfg = failover();
    let views: Vec<WanView> = ["wan1", "wan2", "wan3"]
        .iter()
        .map(|n| view(n, LinkState::Online, 0, None))
        .collect();
    let d = &resolve_once(&cfg, &views, &Overrides::default(), 60_000)[0];
    assert_eq!(
        explain(d, 60_000),
        "policy failover uses wan1 (weight 1) for IPv4 (metric 1); wan2 and wan3 wait at metrics 2 and 3 and would take over in that order if wan1 went down"
    );
    // One standby, at the same metric as another: no order to tell.
    let cfg2 = config(
        &v4(&["wan1", "wan2", "wan3"]),
        &[
            ("m1", "wan1", 1, 1),
            ("m2", "wan2", 2, 1),
            ("m3", "wan3", 2, 1),
        ],
        &[("failover", &["m1", "m2", "m3"], PolicyMode::Tiers)],
    );
    let d = &resolve_once(&cfg2, &views, &Overrides::default(), 60_000)[0];
    assert_eq!(
        explain(d, 60_000),
        "policy failover uses wan1 (weight 1) for IPv4 (metric 1); wan2 and wan3 wait at metric 2 and would take over if wan1 went down"
    );
    let views2 = vec![
        view("wan1", LinkState::Offline, 0, None),
        view("wan2", LinkState::Online, 0, None),
        view("wan3", LinkState::Online, 0, None),
    ];
    let d = &resolve_once(&cfg, &views2, &Overrides::default(), 60_000)[0];
    assert_eq!(
        explain(d, 60_000),
        "wan1 is offline (for 60 s), so policy failover uses wan2 (weight 1) for IPv4 (metric 2); wan3 waits at metric 3 and would take over if wan2 went down"
    );
}

/// An unusable member behind the chosen tier is not a reason for the
/// choice: it is said to be unable to take over.
#[test]
fn explain_gives_only_reasons_that_apply() {
    let cfg = failover();
    let views = vec![
        view("wan1", LinkState::Online, 0, None),
        view("wan2", LinkState::Online, 0, None),
        view("wan3", LinkState::Offline, 48_000, None),
    ];
    let d = &resolve_once(&cfg, &views, &Overrides::default(), 60_000)[0];
    assert_eq!(
        explain(d, 60_000),
        "policy failover uses wan1 (weight 1) for IPv4 (metric 1); wan2 waits at metric 2 and would take over if wan1 went down; wan3 (metric 3) could not take over: it is offline (for 12 s)"
    );
}

/// `enabled '0'`: "disabled", as status says, with or without a view.
#[test]
fn explain_says_disabled() {
    let mut cfg = failover();
    cfg.interfaces[0].enabled = false;
    let views = vec![
        view("wan2", LinkState::Online, 0, None),
        view("wan3", LinkState::Online, 0, None),
    ];
    let d = &resolve_once(&cfg, &views, &Overrides::default(), 60_000)[0];
    assert_eq!(
        explain(d, 60_000),
        "wan1 is disabled, so policy failover uses wan2 (weight 1) for IPv4 (metric 2); wan3 waits at metric 3 and would take over if wan2 went down"
    );
    let mut views = views;
    views.push(view("wan1", LinkState::Disabled, 0, None));
    let d = &resolve_once(&cfg, &views, &Overrides::default(), 60_000)[0];
    assert!(
        explain(d, 60_000).starts_with("wan1 is disabled, so"),
        "{}",
        explain(d, 60_000)
    );
}

/// An override onto an unusable WAN says so plainly; onto a usable one it
/// names the override as the reason.
#[test]
fn explain_override_onto_an_unusable_wan() {
    let cfg = failover();
    let views = vec![
        view("wan1", LinkState::Offline, 30_000, None),
        view("wan2", LinkState::Online, 0, None),
        view("wan3", LinkState::Online, 0, None),
    ];
    let per_policy = Overrides {
        per_policy: [("failover".to_string(), "wan1".to_string())].into(),
        ..Overrides::default()
    };
    let d = &resolve_once(&cfg, &views, &per_policy, 60_000)[0];
    assert_eq!(
        actives(d),
        vec![("wan1".into(), 1)],
        "the override still wins"
    );
    assert_eq!(
        explain(d, 60_000),
        "policy failover is forced onto wan1 by a manual override (for this policy) although wan1 is offline (for 30 s): traffic through this policy is likely lost"
    );
    let global = Overrides {
        global: Some("wan3".into()),
        ..Overrides::default()
    };
    let d = &resolve_once(&cfg, &views, &global, 60_000)[0];
    assert_eq!(
        explain(d, 60_000),
        "policy failover uses wan3 because of a manual override (for all policies)"
    );
    let mut cfg = cfg;
    cfg.interfaces[2].enabled = false;
    let d = &resolve_once(&cfg, &views[..2], &global, 60_000)[0];
    assert_eq!(
        explain(d, 60_000),
        "policy failover is forced onto wan3 by a manual override (for all policies) although wan3 is disabled: traffic through this policy is likely lost"
    );
}

fn score_cfg(hysteresis: f64, min_stable_ms: Millis) -> Config {
    config(
        &v4(&["a", "b", "c"]),
        &[("ma", "a", 1, 1), ("mb", "b", 2, 1), ("mc", "c", 3, 1)],
        &[(
            "best",
            &["ma", "mb", "mc"],
            PolicyMode::Score {
                hysteresis,
                min_stable_ms,
            },
        )],
    )
}

/// a, b and c online since 0 with these scores.
fn scored(a: f64, b: f64, c: f64) -> Vec<WanView> {
    vec![
        view("a", LinkState::Online, 0, Some(a)),
        view("b", LinkState::Online, 0, Some(b)),
        view("c", LinkState::Online, 0, Some(c)),
    ]
}

fn chosen(d: &[PolicyDecision]) -> Vec<String> {
    d[0].active.iter().map(|m| m.interface.clone()).collect()
}

#[test]
fn score_mode_best_link_with_hysteresis_and_dwell() {
    let cfg = score_cfg(10.0, 30_000);
    let mut mem = PolicyMemory::default();
    let none = Overrides::default();
    // Everyone has been usable since 0; at 60 s the best is b.
    assert_eq!(
        chosen(&resolve(
            &cfg,
            &scored(50.0, 40.0, 45.0),
            &none,
            &mut mem,
            60_000
        )),
        ["b"]
    );
    // a better by 5 < hysteresis 10: stay.
    let d = resolve(&cfg, &scored(35.0, 40.0, 45.0), &none, &mut mem, 100_000);
    assert_eq!(chosen(&d), ["b"]);
    assert!(
        explain(&d[0], 100_000).contains("hysteresis"),
        "{}",
        explain(&d[0], 100_000)
    );
    // a better by 15: switch.
    assert_eq!(
        chosen(&resolve(
            &cfg,
            &scored(25.0, 40.0, 45.0),
            &none,
            &mut mem,
            100_000
        )),
        ["a"]
    );
    // b now much better, but a was chosen 5 s ago: dwell.
    let d = resolve(&cfg, &scored(60.0, 20.0, 45.0), &none, &mut mem, 105_000);
    assert_eq!(chosen(&d), ["a"]);
    assert!(
        explain(&d[0], 105_000).contains("next switch allowed in 25 s"),
        "{}",
        explain(&d[0], 105_000)
    );
    assert_eq!(
        chosen(&resolve(
            &cfg,
            &scored(60.0, 20.0, 45.0),
            &none,
            &mut mem,
            130_000
        )),
        ["b"]
    );
    // Losing the current link switches at once, dwell or not.
    let mut v = scored(60.0, 20.0, 45.0);
    v[1] = view("b", LinkState::Offline, 131_000, None);
    assert_eq!(chosen(&resolve(&cfg, &v, &none, &mut mem, 131_000)), ["c"]);
}

#[test]
fn score_mode_no_fail_back_before_min_stable() {
    let cfg = score_cfg(5.0, 30_000);
    let mut mem = PolicyMemory::default();
    let none = Overrides::default();
    let v = |a_state: LinkState, a_since: Millis| {
        vec![
            view("a", a_state, a_since, Some(10.0)),
            view("b", LinkState::Online, 0, Some(50.0)),
            view("c", LinkState::Offline, 0, None),
        ]
    };
    assert_eq!(
        chosen(&resolve(
            &cfg,
            &v(LinkState::Online, 0),
            &none,
            &mut mem,
            40_000
        )),
        ["a"]
    );
    assert_eq!(
        chosen(&resolve(
            &cfg,
            &v(LinkState::Offline, 50_000),
            &none,
            &mut mem,
            50_000
        )),
        ["b"]
    );
    // a is back at 70 s and much better: not before 100 s.
    for now in [70_000, 80_000, 99_999] {
        let d = resolve(&cfg, &v(LinkState::Online, 70_000), &none, &mut mem, now);
        assert_eq!(chosen(&d), ["b"], "at {now}");
    }
    let d = resolve(&cfg, &v(LinkState::Online, 70_000), &none, &mut mem, 90_000);
    assert!(
        explain(&d[0], 90_000).contains("must stay usable 10 s more"),
        "{}",
        explain(&d[0], 90_000)
    );
    assert_eq!(
        chosen(&resolve(
            &cfg,
            &v(LinkState::Online, 70_000),
            &none,
            &mut mem,
            100_000
        )),
        ["a"]
    );
}

#[test]
fn score_mode_takes_a_fresh_link_when_nothing_else_is_usable() {
    let cfg = score_cfg(5.0, 30_000);
    let mut mem = PolicyMemory::default();
    let v = vec![
        view("a", LinkState::Online, 1_000, Some(10.0)),
        view("b", LinkState::Offline, 0, None),
        view("c", LinkState::Offline, 0, None),
    ];
    assert_eq!(
        chosen(&resolve(&cfg, &v, &Overrides::default(), &mut mem, 1_000)),
        ["a"]
    );
    // Usable without a score yet: not a candidate in score mode.
    let v = vec![
        view("a", LinkState::Online, 1_000, None),
        view("b", LinkState::Offline, 0, None),
        view("c", LinkState::Offline, 0, None),
    ];
    let d = resolve(
        &cfg,
        &v,
        &Overrides::default(),
        &mut PolicyMemory::default(),
        1_000,
    );
    assert!(d[0].active.is_empty());
    assert!(explain(&d[0], 1_000).contains("no quality score yet"));
}

fn arb_state() -> impl Strategy<Value = LinkState> {
    prop_oneof![
        Just(LinkState::Unknown),
        Just(LinkState::Online),
        Just(LinkState::Disconnecting),
        Just(LinkState::Offline),
        Just(LinkState::Connecting),
        Just(LinkState::Disabled),
    ]
}

fn arb_views() -> impl Strategy<Value = Vec<WanView>> {
    proptest::collection::vec(
        (
            arb_state(),
            0u64..100_000,
            proptest::option::of(0.0f64..500.0),
            any::<bool>(),
        ),
        3,
    )
    .prop_map(|v| {
        v.into_iter()
            .zip(["a", "b", "c"])
            .map(|((s, since, score, unknown_usable), n)| {
                let mut w = view(n, s, since, score);
                if s == LinkState::Unknown {
                    w.usable = unknown_usable;
                    w.usable_since = unknown_usable.then_some(since);
                }
                w
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// Same inputs and memory, same decisions (and the same memory after),
    /// whatever order the views come in.
    #[test]
    fn resolution_is_deterministic(steps in proptest::collection::vec((arb_views(), 0u64..20_000), 1..20),
                                   hysteresis in 0.0f64..50.0, min_stable in 0u64..60_000, reverse in any::<bool>()) {
        for cfg in [tiered_abc(), score_cfg(hysteresis, min_stable)] {
            let mut m1 = PolicyMemory::default();
            let mut m2 = PolicyMemory::default();
            let mut now = 0;
            for (views, dt) in &steps {
                now += dt;
                let mut shuffled = views.clone();
                if reverse {
                    shuffled.reverse();
                }
                let d1 = resolve(&cfg, views, &Overrides::default(), &mut m1, now);
                let d2 = resolve(&cfg, &shuffled, &Overrides::default(), &mut m2, now);
                prop_assert_eq!(&d1, &d2);
                prop_assert_eq!(&m1, &m2);
                // Only usable links carry traffic without an override.
                for m in &d1[0].active {
                    prop_assert!(views.iter().any(|v| v.interface == m.interface && v.usable));
                }
            }
        }
    }

    /// Score mode never fails back to (switches to) a link that has been
    /// usable for less than min_stable while the current one is usable, and
    /// never switches voluntarily within min_stable of the last switch.
    #[test]
    fn no_fail_back_before_min_stable(steps in proptest::collection::vec((arb_views(), 0u64..20_000), 1..40),
                                      hysteresis in 0.0f64..50.0, min_stable in 1u64..60_000) {
        let cfg = score_cfg(hysteresis, min_stable);
        let mut mem = PolicyMemory::default();
        let mut now = 0;
        let mut current: Option<(String, Millis)> = None;
        for (views, dt) in &steps {
            now += dt;
            let d = resolve(&cfg, views, &Overrides::default(), &mut mem, now);
            let pick = d[0].active.first().map(|m| m.interface.clone());
            if let (Some((cur, since)), Some(new)) = (&current, &pick) {
                let cur_usable = views.iter().any(|v| &v.interface == cur && v.usable && v.score.is_some());
                if new != cur && cur_usable {
                    let v = views.iter().find(|v| &v.interface == new).expect("view");
                    prop_assert!(v.usable_since.is_some_and(|t| t + min_stable <= now), "fail-back to {} too early", new);
                    prop_assert!(since + min_stable <= now, "switch within dwell");
                }
            }
            current = match (current, pick) {
                (Some((cur, since)), Some(new)) if cur == new => Some((cur, since)),
                (_, Some(new)) => Some((new, now)),
                (_, None) => None,
            };
        }
    }
}

fn tiered_abc() -> Config {
    config(
        &v4(&["a", "b", "c"]),
        &[("ma", "a", 1, 3), ("mb", "b", 1, 2), ("mc", "c", 2, 1)],
        &[("balanced", &["ma", "mb", "mc"], PolicyMode::Tiers)],
    )
}

/// Score mode names the other scored links as standby, best first, and the
/// held challenger once.
#[test]
fn explain_score_mode_standby() {
    let cfg = score_cfg(10.0, 30_000);
    let mut mem = PolicyMemory::default();
    let none = Overrides::default();
    let d = resolve(&cfg, &scored(50.0, 40.0, 45.0), &none, &mut mem, 60_000);
    assert_eq!(
        explain(&d[0], 60_000),
        "policy best uses b for IPv4 (score 40.0, lower is better); c (score 45.0) and a (score 50.0) stand by"
    );
    let d = resolve(&cfg, &scored(35.0, 40.0, 45.0), &none, &mut mem, 100_000);
    assert_eq!(
        explain(&d[0], 100_000),
        "a scores 35.0 against b's 40.0, not better by more than the hysteresis 10.0, so policy best uses b for IPv4 (score 40.0, lower is better); c (score 45.0) stands by"
    );
}
