//! Tables of cases: the effect of every mwan3 tracking option on the health
//! machine, one round at a time.

#[path = "sim_common/mod.rs"]
mod sim_common;

use mwan_core::config::{InitialState, Interface};
use mwan_core::health::{Health, HealthSettings, IntervalKind, LinkState};
use sim_common::{iface, RoundDriver};

fn letter(s: LinkState) -> char {
    match s {
        LinkState::Unknown => 'U',
        LinkState::Online => 'O',
        LinkState::Disconnecting => 'D',
        LinkState::Offline => 'F',
        LinkState::Connecting => 'C',
        LinkState::Disabled => 'X',
    }
}

fn kind_letter(k: IntervalKind) -> char {
    match k {
        IntervalKind::Normal => 'N',
        IntervalKind::Failure => 'F',
        IntervalKind::Recovery => 'R',
    }
}

struct Case {
    name: &'static str,
    targets: usize,
    tweak: fn(&mut Interface),
    /// Space-separated rounds (see `RoundDriver::round`).
    rounds: &'static str,
    /// State after each round (U O D F C X).
    states: &'static str,
}

fn none(_: &mut Interface) {}

#[test]
fn option_effects_on_state() {
    let cases = [
        Case {
            name: "mwan3 defaults: 5 failed rounds take it offline",
            targets: 1,
            tweak: none,
            rounds: "- - - - -",
            states: "DDDDF",
        },
        Case {
            name: "mwan3 defaults: 5 good rounds bring it back",
            targets: 1,
            tweak: none,
            rounds: "- - - - - + + + + +",
            states: "DDDDFCCCCO",
        },
        Case {
            name: "one good round while disconnecting restores online",
            targets: 1,
            tweak: none,
            rounds: "- - + - - - -",
            states: "DDODDDD",
        },
        Case {
            name: "a failed round while connecting starts recovery over",
            targets: 1,
            tweak: none,
            rounds: "- - - - - + + - + + + + +",
            states: "DDDDFCCFCCCCO",
        },
        Case {
            name: "down 1: first failed round is offline",
            targets: 1,
            tweak: |i| i.down = 1,
            rounds: "- +",
            states: "FC",
        },
        Case {
            name: "up 1: first good round after offline is online",
            targets: 1,
            tweak: |i| {
                i.down = 2;
                i.up = 1
            },
            rounds: "- - +",
            states: "DFO",
        },
        Case {
            name: "down 3 up 2",
            targets: 1,
            tweak: |i| {
                i.down = 3;
                i.up = 2
            },
            rounds: "- - - + + -",
            states: "DDFCOD",
        },
        Case {
            name: "reliability 1 of 3: one answer is enough",
            targets: 3,
            tweak: |i| i.down = 1,
            rounds: "+-- --+ ---",
            states: "OOF",
        },
        Case {
            name: "reliability 2 of 3",
            targets: 3,
            tweak: |i| {
                i.reliability = 2;
                i.down = 1;
                i.up = 1
            },
            rounds: "++- +-- -++ +-+",
            states: "OFOO",
        },
        Case {
            name: "reliability 3 of 3",
            targets: 3,
            tweak: |i| {
                i.reliability = 3;
                i.down = 1;
                i.up = 1
            },
            rounds: "++- +++",
            states: "FO",
        },
        Case {
            name: "reliability above the target count never succeeds",
            targets: 2,
            tweak: |i| {
                i.reliability = 3;
                i.down = 1;
                i.up = 1
            },
            rounds: "++ ++",
            states: "FF",
        },
        Case {
            name: "count 3: a target is up if any of its probes answered",
            targets: 2,
            tweak: |i| {
                i.count = 3;
                i.down = 1;
                i.up = 1
            },
            rounds: "--+/--- ---/--- +--/---",
            states: "OFO",
        },
        Case {
            name: "count 2 with reliability 2",
            targets: 2,
            tweak: |i| {
                i.count = 2;
                i.reliability = 2;
                i.down = 1;
                i.up = 1
            },
            rounds: "-+/+- -+/-- ++/++",
            states: "OFO",
        },
        Case {
            name: "initial_state offline starts on the offline side",
            targets: 1,
            tweak: |i| i.initial_state = InitialState::Offline,
            rounds: "+ + + + +",
            states: "CCCCO",
        },
        Case {
            name: "initial_state offline: failures keep it offline",
            targets: 1,
            tweak: |i| i.initial_state = InitialState::Offline,
            rounds: "- -",
            states: "FF",
        },
        Case {
            name: "initial_state online: first failure is disconnecting",
            targets: 1,
            tweak: none,
            rounds: "- +",
            states: "DO",
        },
        Case {
            name: "no track_ip: assumed online whatever happens",
            targets: 0,
            tweak: none,
            rounds: "",
            states: "",
        },
        Case {
            name: "enabled 0: disabled",
            targets: 1,
            tweak: |i| i.enabled = false,
            rounds: "+ -",
            states: "XX",
        },
    ];
    for case in cases {
        let mut i = iface(case.targets);
        (case.tweak)(&mut i);
        let mut d = RoundDriver::new(&i);
        let got: String = case
            .rounds
            .split_whitespace()
            .map(|r| letter(d.round(r)))
            .collect();
        assert_eq!(got, case.states, "case '{}'", case.name);
    }
}

#[test]
fn no_track_ip_is_online_and_usable_from_the_start() {
    let h = Health::new(HealthSettings::from_interface(&iface(0)), 0);
    assert_eq!(h.state(), LinkState::Online);
    assert!(h.usable());
    assert_eq!(h.next_deadline(), None);
}

#[test]
fn unknown_before_first_round_keeps_initial_state_usability() {
    let online = Health::new(HealthSettings::from_interface(&iface(1)), 0);
    assert_eq!(online.state(), LinkState::Unknown);
    assert!(
        online.usable(),
        "initial_state online routes before the first round, as mwan3"
    );
    let mut i = iface(1);
    i.initial_state = InitialState::Offline;
    let offline = Health::new(HealthSettings::from_interface(&i), 0);
    assert_eq!(offline.state(), LinkState::Unknown);
    assert!(!offline.usable());
}

#[test]
fn usable_states_match_mwan3_routing() {
    let mut i = iface(1);
    i.down = 2;
    i.up = 2;
    let mut d = RoundDriver::new(&i);
    let mut seen = Vec::new();
    for r in ["+", "-", "-", "+", "+"] {
        let s = d.round(r);
        seen.push((s, d.health.usable()));
    }
    assert_eq!(
        seen,
        vec![
            (LinkState::Online, true),
            (LinkState::Disconnecting, true),
            (LinkState::Offline, false),
            (LinkState::Connecting, false),
            (LinkState::Online, true),
        ]
    );
}

#[test]
fn intervals_follow_mwan3() {
    // (name, keep_failure_interval, rounds, interval kind after each round)
    let cases = [
        ("online uses interval", false, "+ +", "NN"),
        ("disconnecting uses failure_interval", false, "+ - -", "NFF"),
        (
            "the round that goes offline uses failure_interval, then interval",
            false,
            "- - - - - - -",
            "FFFFFNN",
        ),
        (
            "keep_failure_interval keeps failure_interval while offline",
            true,
            "- - - - - - -",
            "FFFFFFF",
        ),
        (
            "connecting uses recovery_interval, and so does the round that connects",
            false,
            "- - - - - + + + + + +",
            "FFFFFRRRRRN",
        ),
        (
            "a failed round while connecting falls back to interval",
            false,
            "- - - - - + -",
            "FFFFFRN",
        ),
        ("back online after one good round", false, "- - +", "FFN"),
    ];
    for (name, keep, rounds, kinds) in cases {
        let mut i = iface(1);
        i.interval = 10_000;
        i.failure_interval = 2_000;
        i.recovery_interval = 3_000;
        i.keep_failure_interval = keep;
        let mut d = RoundDriver::new(&i);
        assert_eq!(
            d.health.interval(),
            (IntervalKind::Normal, 10_000),
            "{name}: before any round"
        );
        let mut got = String::new();
        for r in rounds.split_whitespace() {
            d.round(r);
            let (kind, ms) = d.health.interval();
            let expect_ms = match kind {
                IntervalKind::Normal => 10_000,
                IntervalKind::Failure => 2_000,
                IntervalKind::Recovery => 3_000,
            };
            assert_eq!(ms, expect_ms, "{name}");
            got.push(kind_letter(kind));
        }
        assert_eq!(got, kinds, "case '{name}'");
    }
}

/// check_quality: per target and round, loss (of `count` probes) and mean
/// latency against the failure thresholds while up, the recovery thresholds
/// while down.
#[test]
fn check_quality_thresholds() {
    let mut i = iface(1);
    i.check_quality = true;
    i.count = 5;
    i.down = 1;
    i.up = 1;
    // mwan3 defaults: failure 1000 ms / 40 %, recovery 500 ms / 10 %.
    let probes = |lat: u32, lost: usize| -> Vec<Vec<Option<u32>>> {
        vec![(0..5)
            .map(|n| if n < lost { None } else { Some(lat) })
            .collect()]
    };
    let cases: [(&str, u32, usize, LinkState); 10] = [
        (
            "up: 700 ms is within failure_latency",
            700,
            0,
            LinkState::Online,
        ),
        (
            "up: 20 % loss is within failure_loss",
            100,
            1,
            LinkState::Online,
        ),
        ("up: 999 ms still fine", 999, 0, LinkState::Online),
        (
            "up: 1000 ms reaches failure_latency",
            1000,
            0,
            LinkState::Offline,
        ),
        (
            "down: 700 ms is above recovery_latency",
            700,
            0,
            LinkState::Offline,
        ),
        (
            "down: 20 % loss is above recovery_loss",
            100,
            1,
            LinkState::Offline,
        ),
        ("down: 500 ms and 0 % recovers", 500, 0, LinkState::Online),
        (
            "up: 40 % loss reaches failure_loss",
            100,
            2,
            LinkState::Offline,
        ),
        ("down: 100 % loss", 100, 5, LinkState::Offline),
        ("down: 0 % and 50 ms recovers", 50, 0, LinkState::Online),
    ];
    let mut d = RoundDriver::new(&i);
    for (name, lat, lost, expect) in cases {
        assert_eq!(d.round_rtts(&probes(lat, lost)), expect, "{name}");
    }
    // Loss exactly at recovery_loss (10 %) recovers: count 10, one lost.
    let mut i = iface(1);
    i.check_quality = true;
    i.count = 10;
    i.down = 1;
    i.up = 1;
    let mut d = RoundDriver::new(&i);
    let all_lost = vec![vec![None; 10]];
    assert_eq!(d.round_rtts(&all_lost), LinkState::Offline);
    let one_lost = vec![(0..10)
        .map(|n| if n == 0 { None } else { Some(100) })
        .collect()];
    assert_eq!(d.round_rtts(&one_lost), LinkState::Online);
}

#[test]
fn transitions_carry_old_new_and_time() {
    let mut i = iface(1);
    i.down = 2;
    let mut d = RoundDriver::new(&i);
    d.round("+");
    d.round("-");
    d.round("-");
    let t: Vec<(LinkState, LinkState, u64)> =
        d.transitions.iter().map(|t| (t.from, t.to, t.at)).collect();
    assert_eq!(
        t,
        vec![
            (LinkState::Unknown, LinkState::Online, 1010),
            (LinkState::Online, LinkState::Disconnecting, 2010),
            (LinkState::Disconnecting, LinkState::Offline, 3010),
        ]
    );
    assert_eq!(d.health.since(), 3010);
}

#[test]
fn ifdown_disables_and_ifup_starts_from_initial_state() {
    let mut i = iface(1);
    i.down = 1;
    i.up = 2;
    let mut d = RoundDriver::new(&i);
    d.round("+");
    let t = d.health.link_event(false, 5000);
    assert_eq!(t.len(), 1);
    assert_eq!(d.health.state(), LinkState::Disabled);
    assert!(!d.health.usable());
    // Results while disabled are ignored.
    d.round("+");
    assert_eq!(d.health.state(), LinkState::Disabled);
    d.health.link_event(true, 9000);
    assert_eq!(d.health.state(), LinkState::Unknown);
    assert!(d.health.usable(), "initial_state online");
    d.round = 0; // tracker restarted with the interface
    assert_eq!(d.round("-"), LinkState::Offline);
}

#[test]
fn results_for_unknown_targets_or_decided_rounds_are_ignored() {
    let mut h = Health::new(HealthSettings::from_interface(&iface(1)), 0);
    let bogus = sim_common::lost(7, 0, 0);
    assert!(h.on_probe(&bogus, 10).is_empty());
    let ok = sim_common::reply(0, 0, 0, 5);
    h.on_probe(&ok, 10);
    assert_eq!(h.state(), LinkState::Online);
    let dup = sim_common::lost(0, 0, 0);
    h.on_probe(&dup, 20);
    assert_eq!(h.state(), LinkState::Online);
    assert_eq!(h.counters().stale_results, 2);
    assert_eq!(h.counters().rounds_ok, 1);
}

#[test]
fn mwan3_score_counter() {
    let mut i = iface(1);
    i.down = 2;
    i.up = 3;
    let mut d = RoundDriver::new(&i);
    let mut got = vec![d.health.mwan3_score()];
    for r in ["-", "-", "+", "+", "-", "+", "+", "+"] {
        d.round(r);
        got.push(d.health.mwan3_score());
    }
    // 5 = down+up online, 4 disconnecting, 0 offline, 1 and 2 connecting,
    // back to 0, then 1, 2 and online (5).
    assert_eq!(got, vec![5, 4, 0, 1, 2, 0, 1, 2, 5]);
}

/// mwan3's `lost` and `turn` (mwan3track's LOST and TURN files): `lost`
/// adds each failed round's failed targets and is 0 after a successful
/// round; `turn` counts rounds and is 1 again in the round that brings
/// the link online.
#[test]
fn mwan3_lost_and_turn_count_as_mwan3track() {
    let mut i = iface(3);
    (i.down, i.up) = (2, 2);
    let mut d = RoundDriver::new(&i);
    let seen: Vec<(char, u32, u64)> = ["+++", "-+-", "---", "---", "--+", "+++", "+++"]
        .iter()
        .map(|r| {
            let state = letter(d.round(r));
            let (lost, turn) = d.health.mwan3_lost_turn();
            (state, lost, turn)
        })
        .collect();
    assert_eq!(
        seen,
        [
            ('O', 0, 1),
            ('O', 0, 2),
            ('D', 3, 3),
            ('F', 6, 4),
            ('C', 0, 5),
            ('O', 0, 1),
            ('O', 0, 2)
        ]
    );
}

/// Everything mwan3's `status` reads from mwan3track's files: SCORE, LOST,
/// TURN, and `age` as the seconds since the last tracking result (0 before
/// the first one, as mwan3 reports a missing TIME file).
#[test]
fn mwan3_track_files_as_mwan3_status_reads_them() {
    let mut i = iface(1);
    (i.down, i.up) = (2, 3);
    let mut d = RoundDriver::new(&i);
    assert_eq!(d.health.mwan3_track(5_000).age_s, 0, "never heard from");
    d.round("+");
    let heard = d.now;
    let t = d.health.mwan3_track(heard + 7_400);
    assert_eq!((t.score, t.lost, t.turn, t.age_s), (5, 0, 1, 7));
    d.round("-");
    let t = d.health.mwan3_track(d.now);
    assert_eq!((t.score, t.lost, t.turn, t.age_s), (4, 1, 2, 0));
}
