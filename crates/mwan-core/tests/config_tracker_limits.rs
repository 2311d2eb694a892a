//! What the tracker refuses, check and reload refuse too (issue 13, attack
//! #7: 65 track_ip were accepted, the tracker exited 2 forever and the
//! WAN's outage was never seen); an empty config is accepted but loudly
//! (attack #9).

use mwan_core::config::*;

const FILE: &str = "/etc/config/mwan3";

fn interface_with(lines: &str) -> String {
    format!("config interface 'wan'\n\toption enabled '1'\n{lines}")
}

fn problems(text: &str) -> Vec<String> {
    match parse(FILE, text) {
        Ok(l) => panic!("accepted; warnings: {:?}", l.warnings),
        Err(r) => r.problems.iter().map(ToString::to_string).collect(),
    }
}

fn track_ips(n: usize) -> String {
    (0..n)
        .map(|i| format!("\tlist track_ip '10.0.{}.{}'\n", i / 250, i % 250 + 1))
        .collect()
}

#[test]
fn more_track_ip_than_the_tracker_takes_is_an_error_at_the_first_one_too_many() {
    let p = problems(&interface_with(&track_ips(65)));
    // Line 3 holds the first track_ip: the 65th is on line 67.
    assert_eq!(
        p,
        [format!(
            "{FILE}:67: section 'wan' (interface): option 'track_ip': 65 targets: the tracker probes at most {MAX_TRACK_IP} per interface; expected at most {MAX_TRACK_IP} (remove some, the health verdict needs only a few)"
        )]
    );
    assert_eq!(MAX_TRACK_IP, 64);
}

#[test]
fn as_many_track_ip_as_the_tracker_takes_is_accepted() {
    let loaded = parse(FILE, &interface_with(&track_ips(64))).expect("64 targets are fine");
    assert_eq!(loaded.config.interfaces[0].track_ip.len(), 64);
}

#[test]
fn a_blank_separated_option_counts_every_target() {
    let many: Vec<String> = (1..=65).map(|i| format!("10.1.0.{i}")).collect();
    let p = problems(&interface_with(&format!(
        "\toption track_ip '{}'\n",
        many.join(" ")
    )));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with(&format!(
            "{FILE}:3: section 'wan' (interface): option 'track_ip': 65 targets"
        )),
        "{p:?}"
    );
}

#[test]
fn probe_options_outside_the_trackers_ranges_are_errors() {
    for (option, value, expected) in [
        ("size", "65001", "option 'size'"),
        (
            "probe_budget_per_minute",
            "60001",
            "option 'probe_budget_per_minute'",
        ),
        (
            "probe_budget_bytes_per_day",
            "999",
            "option 'probe_budget_bytes_per_day'",
        ),
    ] {
        let p = problems(&interface_with(&format!(
            "\tlist track_ip '192.0.2.1'\n\toption {option} '{value}'\n"
        )));
        assert_eq!(p.len(), 1, "{option}: {p:?}");
        assert!(
            p[0].starts_with(&format!(
                "{FILE}:4: section 'wan' (interface): {expected}: "
            )),
            "{option}: {p:?}"
        );
    }
    // The largest values the tracker takes are accepted.
    parse(
        FILE,
        &interface_with("\tlist track_ip '192.0.2.1'\n\toption size '65000'\n\toption probe_budget_per_minute '60000'\n"),
    )
    .expect("the tracker's maxima");
}

#[test]
fn an_empty_config_is_accepted_with_a_warning_that_says_what_it_does() {
    for text in [
        "",
        "\n\n# nothing but comments\n",
        "config globals 'globals'\n\toption mmx_mask '0x3F00'\n",
    ] {
        let loaded = parse(FILE, text).expect("an empty config is not refused");
        assert!(loaded.config.interfaces.is_empty());
        let w: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
        assert!(
            w.iter()
                .any(|w| w.contains("no interface") && w.contains("removes all multi-WAN routing")),
            "{text:?}: {w:?}"
        );
    }
}
