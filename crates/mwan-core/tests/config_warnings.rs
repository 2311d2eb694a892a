//! Warnings are typed (a kind per warning) and repeats in one section are
//! folded into one line with a count (issue 13: a list of 100,000 bad
//! entries must not log 100,000 lines per reload).

use mwan_core::config::{count_by_kind, parse, warning_summary, Kind};

#[test]
fn a_hundred_thousand_bad_list_entries_give_one_warning_line() {
    let mut text = String::from(
        "config interface 'wan'\nconfig member 'm'\n\toption interface 'wan'\nconfig policy 'p'\n\tlist use_member 'm'\n",
    );
    for i in 0..100_000 {
        text.push_str(&format!("\tlist use_member 'gone{i}'\n"));
    }
    let l = parse("t", &text).expect("loads");
    assert_eq!(l.config.policies[0].use_member, ["m"]);
    assert_eq!(l.warnings.len(), 1, "{:?}", &l.warnings[..3]);
    let w = &l.warnings[0];
    assert_eq!(
        (w.kind, w.count(), w.line, w.last_line),
        (Kind::UndefinedReference, 100_000, 6, 100_005)
    );
    assert_eq!(
        w.to_string(),
        "t:6: section 'p' (policy): option 'use_member': member 'gone0' is not defined: ignored (as mwan3 does); expected one of: m (and 99999 more like it in this section, up to line 100005)"
    );
    assert_eq!(
        warning_summary(&l.warnings),
        "100000 warnings: 100000 undefined reference"
    );
}

#[test]
fn each_warning_has_its_kind_and_the_summary_groups_them() {
    let text = "config globals 'globals'\n\toption bogus '1'\n\toption local_source 'lan'\n\toption junk '2'\n\
config interface 'wan'\n\toption track_ip '192.0.2.1'\n\
config rule 'r'\n\toption src_ip '10.0.0.1/255.0.255.0'\n\toption use_policy 'default'\n";
    let l = parse("t", text).expect("loads");
    let kinds: Vec<Kind> = l.warnings.iter().map(|w| w.kind).collect();
    assert_eq!(
        kinds,
        [
            Kind::UnknownOption,
            Kind::ObsoleteOption,
            Kind::UnknownOption,
            Kind::OptionNotList,
            Kind::NetmaskNotPrefix
        ]
    );
    // Two unknown options are two fixes: not folded.
    assert!(l.warnings.iter().all(|w| w.count() == 1));
    assert_eq!(
        count_by_kind(&l.warnings),
        [
            (Kind::UnknownOption, 2),
            (Kind::ObsoleteOption, 1),
            (Kind::OptionNotList, 1),
            (Kind::NetmaskNotPrefix, 1)
        ]
    );
    assert_eq!(
        warning_summary(&l.warnings),
        "5 warnings: 2 unknown option, 1 obsolete option, 1 option instead of list, 1 netmask not a prefix"
    );
    assert_eq!(Kind::OptionNotList.code(), "option-not-list");
}
