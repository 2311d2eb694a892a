//! What a (re)starting mwand may do before it knows its WANs (pure).
//!
//! A restarted mwand finds the routes, rules, nft table and trackers of the
//! previous one and adopts them: its first plan must equal theirs. On
//! OpenWrt a WAN's device, addresses and gateway come from netifd, which
//! answers a moment after mwand connects; a plan made before that has no
//! WAN facts and would tear everything down, to put it back a millisecond
//! later. So the first write waits until every WAN's facts are known, or
//! [`FACTS_WAIT_MS`] has passed ([`first_apply`]). Likewise a batch of
//! samples (a reconnecting tracker replays its backlog at once) is one
//! change per WAN, not one per sample ([`coalesce`]).

use crate::Millis;

/// Longest wait for netifd's facts before the first write to the kernel.
/// netifd answers within milliseconds when it runs; at boot it starts right
/// after mwand (START=20 vs 19), and a WAN netifd does not know never
/// reports at all.
pub const FACTS_WAIT_MS: Millis = 5_000;

/// Where a WAN's device and addresses come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WanFactsSource {
    /// The config names the device: the kernel's view, read at start.
    Kernel,
    /// netifd reports it; `reported` once its status arrived.
    Netifd { reported: bool },
}

/// What mwand knows of netifd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Netifd {
    /// No ubus: facts are the kernel's only, nothing to wait for.
    Absent,
    /// ubus is there; netifd's list of interfaces has not arrived.
    Pending,
    /// netifd listed every interface it has (its `dump`): a WAN missing
    /// from it is unknown to netifd and will not report.
    Listed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstApply {
    /// Every WAN's facts are known: plan and write.
    Apply,
    /// Hold every write (routes, rules, nft, trackers) until `until`
    /// or until the `missing` WANs report, whichever comes first.
    Wait { missing: Vec<String>, until: Millis },
    /// The wait is over without them: write with what is known (their
    /// routes are missing until netifd reports).
    GiveUp { missing: Vec<String> },
}

/// Whether the first plan may be written now (mwand started at
/// `started_at`). Later plans are never held: facts that change later are
/// real changes.
pub fn first_apply<'a>(
    wans: impl IntoIterator<Item = (&'a str, WanFactsSource)>,
    netifd: Netifd,
    started_at: Millis,
    now: Millis,
) -> FirstApply {
    if netifd != Netifd::Pending {
        return FirstApply::Apply;
    }
    let missing: Vec<String> = wans
        .into_iter()
        .filter(|(_, s)| *s == WanFactsSource::Netifd { reported: false })
        .map(|(name, _)| name.to_string())
        .collect();
    let until = started_at + FACTS_WAIT_MS;
    match (missing.is_empty(), now >= until) {
        (true, _) => FirstApply::Apply,
        (false, false) => FirstApply::Wait { missing, until },
        (false, true) => FirstApply::GiveUp { missing },
    }
}

/// The net effect of a run of state changes of one WAN (`(from, to)`, in
/// order): the first `from` to the last `to`, or None when it ends where
/// it began. Hooks and events then never see a change undone in the same
/// instant.
pub fn coalesce<S: Copy + PartialEq>(changes: &[(S, S)]) -> Option<(S, S)> {
    let (first, last) = (changes.first()?, changes.last()?);
    (first.0 != last.1).then_some((first.0, last.1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use WanFactsSource::{Kernel, Netifd as FromNetifd};

    /// (what, WANs, netifd, now, expected)
    type FirstApplyCase = (
        &'static str,
        Vec<(&'static str, WanFactsSource)>,
        Netifd,
        Millis,
        FirstApply,
    );
    /// (what, changes, expected)
    type CoalesceCase = (&'static str, Vec<(char, char)>, Option<(char, char)>);

    const UNREPORTED: WanFactsSource = FromNetifd { reported: false };
    const REPORTED: WanFactsSource = FromNetifd { reported: true };

    #[test]
    fn first_apply_table() {
        let wait = |m: &[&str]| FirstApply::Wait {
            missing: m.iter().map(|s| s.to_string()).collect(),
            until: 1_000 + FACTS_WAIT_MS,
        };
        let give_up = |m: &[&str]| FirstApply::GiveUp {
            missing: m.iter().map(|s| s.to_string()).collect(),
        };
        #[rustfmt::skip]
        let cases: Vec<FirstApplyCase> = vec![
            ("devices in the config: kernel facts, at once",
                vec![("wan1", Kernel), ("wan2", Kernel)], Netifd::Pending, 1_000, FirstApply::Apply),
            ("no ubus: nobody will report, at once",
                vec![("wan1", UNREPORTED)], Netifd::Absent, 1_000, FirstApply::Apply),
            ("restart under procd, netifd not answered yet: wait",
                vec![("wan1", UNREPORTED), ("wan2", UNREPORTED)], Netifd::Pending, 1_001,
                wait(&["wan1", "wan2"])),
            ("one reported, the other not yet",
                vec![("wan1", REPORTED), ("wan2", UNREPORTED)], Netifd::Pending, 1_001, wait(&["wan2"])),
            ("every WAN reported before the dump's end",
                vec![("wan1", REPORTED), ("wan2", REPORTED)], Netifd::Pending, 1_001, FirstApply::Apply),
            ("netifd's list arrived: a WAN it does not know will not report",
                vec![("wan1", REPORTED), ("wan9", UNREPORTED)], Netifd::Listed, 1_001, FirstApply::Apply),
            ("mixed sources: only netifd's are waited for",
                vec![("wan1", Kernel), ("wan2", UNREPORTED)], Netifd::Pending, 1_001, wait(&["wan2"])),
            ("just before the bound",
                vec![("wan1", UNREPORTED)], Netifd::Pending, 1_000 + FACTS_WAIT_MS - 1, wait(&["wan1"])),
            ("the bound passed: write with what is known",
                vec![("wan1", REPORTED), ("wan2", UNREPORTED)], Netifd::Pending, 1_000 + FACTS_WAIT_MS,
                give_up(&["wan2"])),
            ("no WAN at all", vec![], Netifd::Pending, 1_000, FirstApply::Apply),
        ];
        for (what, wans, netifd, now, want) in cases {
            assert_eq!(first_apply(wans, netifd, 1_000, now), want, "{what}");
        }
    }

    #[test]
    fn coalesce_table() {
        #[rustfmt::skip]
        let cases: Vec<CoalesceCase> = vec![
            ("nothing", vec![], None),
            ("one change stands", vec![('u', 'o')], Some(('u', 'o'))),
            ("a replayed backlog flapping: once", vec![('u', 'o'), ('o', 'u'), ('u', 'o'), ('o', 'u'), ('u', 'o')],
                Some(('u', 'o'))),
            ("undone in the same batch: nothing", vec![('o', 'u'), ('u', 'o')], None),
            ("through a middle state", vec![('o', 'd'), ('d', 'x')], Some(('o', 'x'))),
        ];
        for (what, changes, want) in cases {
            assert_eq!(coalesce(&changes), want, "{what}");
        }
    }
}
