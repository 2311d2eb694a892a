//! What mwand tells and does to a WAN's tracker (pure): the interval and
//! timeout it should use, the hook a carrier flip runs, and which trackers
//! are hung and how each is replaced. mwand performs the returned actions
//! (sends the messages, runs the hooks, respawns or asks procd); nothing
//! here reads a clock or touches a process.

use crate::health::TrackerTiming;
use crate::Millis;

/// The timeout sent to the tracker moves in steps of this much (rounded
/// up), so a slowly drifting RTT estimate is not a message per sample.
pub const TIMEOUT_STEP_MS: Millis = 50;

/// Interval and per-probe timeout a tracker should use now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackerSettings {
    pub interval_ms: Millis,
    pub timeout_ms: Millis,
}

/// One setting to send to the tracker (mwand maps it to the wire message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackerCommand {
    SetInterval(Millis),
    SetTimeout(Millis),
}

impl TrackerSettings {
    /// The health machine's timing as the tracker gets it. The timeout is
    /// the core's adaptive one rounded up to [`TIMEOUT_STEP_MS`], at most
    /// the configured one (unless the adaptive one is already above it):
    /// the tracker reports a probe lost at it, so results keep coming
    /// during a silent cut, and keeps listening up to its `--timeout` (the
    /// configured one), reporting later answers as replies.
    pub fn from_timing(timing: TrackerTiming, configured_timeout: Millis) -> Self {
        let timeout_ms = timing
            .timeout
            .div_ceil(TIMEOUT_STEP_MS)
            .saturating_mul(TIMEOUT_STEP_MS)
            .min(configured_timeout.max(timing.timeout));
        TrackerSettings {
            interval_ms: timing.interval,
            timeout_ms,
        }
    }

    /// Everything, for a tracker that just said Hello.
    pub fn commands(&self) -> Vec<TrackerCommand> {
        vec![
            TrackerCommand::SetInterval(self.interval_ms),
            TrackerCommand::SetTimeout(self.timeout_ms),
        ]
    }

    /// Only what changed since `before` (after a batch of samples).
    pub fn changes_since(&self, before: &TrackerSettings) -> Vec<TrackerCommand> {
        let mut out = Vec::new();
        if self.interval_ms != before.interval_ms {
            out.push(TrackerCommand::SetInterval(self.interval_ms));
        }
        if self.timeout_ms != before.timeout_ms {
            out.push(TrackerCommand::SetTimeout(self.timeout_ms));
        }
        out
    }
}

/// mwan3's hotplug actions for the link itself (the health states' own
/// actions come with their transitions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkHook {
    Ifup,
    Ifdown,
}

/// The hook a carrier report runs: one only when the carrier mwand knew
/// (`known`) flips. A report of the carrier already known (an address or
/// route event, a repeated link message) runs none.
pub fn carrier_hook(known: bool, reported: bool) -> Option<LinkHook> {
    match (known, reported) {
        (false, true) => Some(LinkHook::Ifup),
        (true, false) => Some(LinkHook::Ifdown),
        _ => None,
    }
}

/// Who replaces a tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Supervision {
    /// mwand spawns the trackers itself.
    Embedded,
    /// procd runs them; mwand asks it over ubus.
    Procd,
}

/// What a connected tracker looks like to the watchdog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerContact {
    pub interface: String,
    /// When it last sent anything.
    pub heard_at: Millis,
    /// Its WAN's silence limit (None: the WAN is gone, nothing to judge).
    pub silence_limit: Option<Millis>,
}

/// How a hung tracker is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remedy {
    /// Kill it and spawn a new one (embedded supervisor).
    Respawn,
    /// Ask procd to restart the instance over ubus.
    ProcdRestart,
}

/// A hung tracker: mwand drops its connection, tells the WAN its tracker
/// is gone, then applies the remedy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HungTracker {
    pub interface: String,
    pub silent_ms: Millis,
    pub remedy: Remedy,
}

/// A connected tracker reports every probe within its timeout, lost or
/// not; one that has said nothing for longer than its WAN's silence limit
/// (exactly the limit is still alive) is hung: stopped or stuck. Its WAN's
/// rounds failed meanwhile, as for a silent cut.
pub fn hung_trackers(
    contacts: &[TrackerContact],
    supervision: Supervision,
    now: Millis,
) -> Vec<HungTracker> {
    let remedy = match supervision {
        Supervision::Embedded => Remedy::Respawn,
        Supervision::Procd => Remedy::ProcdRestart,
    };
    contacts
        .iter()
        .filter_map(|c| {
            let silent_ms = now.saturating_sub(c.heard_at);
            (silent_ms > c.silence_limit?).then(|| HungTracker {
                interface: c.interface.clone(),
                silent_ms,
                remedy,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{Health, HealthSettings, IntervalKind, LinkState};

    fn timing(interval: Millis, timeout: Millis) -> TrackerTiming {
        TrackerTiming {
            interval_kind: IntervalKind::Normal,
            interval,
            timeout,
        }
    }

    #[test]
    fn the_timeout_is_rounded_up_to_steps_and_capped_by_the_configured_one() {
        // (adaptive timeout, configured timeout, sent timeout)
        let cases = [
            (1, 1000, 50),
            (50, 1000, 50),
            (51, 1000, 100),
            (449, 1000, 450),
            // Rounding up past the configured timeout stops at it.
            (980, 1000, 1000),
            (1000, 1000, 1000),
            // A configured timeout that is not a step: kept as it is.
            (990, 990, 990),
            // An adaptive timeout above the configured one (the core's
            // floor wins over a tiny configured timeout) is not cut.
            (300, 200, 300),
            (301, 200, 301),
            (0, 1000, 0),
        ];
        for (adaptive, configured, sent) in cases {
            let s = TrackerSettings::from_timing(timing(500, adaptive), configured);
            assert_eq!(
                s.timeout_ms, sent,
                "adaptive {adaptive}, configured {configured}"
            );
            assert_eq!(s.interval_ms, 500);
        }
    }

    #[test]
    fn only_the_settings_that_changed_are_sent_again() {
        let base = TrackerSettings {
            interval_ms: 1000,
            timeout_ms: 300,
        };
        let slower = TrackerSettings {
            interval_ms: 250,
            ..base
        };
        let later = TrackerSettings {
            timeout_ms: 350,
            ..base
        };
        let both = TrackerSettings {
            interval_ms: 250,
            timeout_ms: 350,
        };
        assert_eq!(base.changes_since(&base), []);
        assert_eq!(
            slower.changes_since(&base),
            [TrackerCommand::SetInterval(250)]
        );
        assert_eq!(
            later.changes_since(&base),
            [TrackerCommand::SetTimeout(350)]
        );
        assert_eq!(both.changes_since(&base), both.commands());
        assert_eq!(
            base.commands(),
            [
                TrackerCommand::SetInterval(1000),
                TrackerCommand::SetTimeout(300)
            ]
        );
    }

    #[test]
    fn a_drifting_rtt_within_one_step_sends_nothing() {
        let a = TrackerSettings::from_timing(timing(1000, 101), 2000);
        let b = TrackerSettings::from_timing(timing(1000, 149), 2000);
        assert_eq!(b.changes_since(&a), []);
        let c = TrackerSettings::from_timing(timing(1000, 151), 2000);
        assert_eq!(c.changes_since(&b), [TrackerCommand::SetTimeout(200)]);
    }

    #[test]
    fn only_a_carrier_flip_runs_a_hook() {
        let cases = [
            (true, true, None),
            (false, false, None),
            (false, true, Some(LinkHook::Ifup)),
            (true, false, Some(LinkHook::Ifdown)),
        ];
        for (known, reported, hook) in cases {
            assert_eq!(carrier_hook(known, reported), hook, "{known} -> {reported}");
        }
    }

    /// A carrier flap inside one probe round: both hooks run, in order, and
    /// the health machine ends where a fresh ifup puts it (the round in
    /// flight is dropped, not counted).
    #[test]
    fn a_carrier_flap_inside_one_round_runs_ifdown_then_ifup() {
        let text = "config interface 'wan'\n\toption enabled '1'\n\tlist track_ip '203.0.113.1'\n";
        let loaded = crate::config::parse("test", text).expect("config");
        let settings = HealthSettings::from_interface(&loaded.config.interfaces[0]);
        let mut health = Health::new(settings, 0);
        let fresh = health.state();
        let mut carrier = true;
        let mut hooks = Vec::new();
        // Down at 100 ms and up at 300 ms, both within the first interval.
        for (reported, at) in [(false, 100), (false, 150), (true, 300), (true, 310)] {
            hooks.extend(carrier_hook(carrier, reported));
            carrier = reported;
            health.link_event(reported, at);
        }
        assert_eq!(hooks, [LinkHook::Ifdown, LinkHook::Ifup]);
        assert_eq!(health.state(), fresh);
        assert_ne!(health.state(), LinkState::Disabled);
    }

    fn contact(name: &str, heard_at: Millis, limit: Option<Millis>) -> TrackerContact {
        TrackerContact {
            interface: name.into(),
            heard_at,
            silence_limit: limit,
        }
    }

    #[test]
    fn a_tracker_silent_past_its_limit_is_hung_and_the_remedy_follows_the_supervisor() {
        let contacts = [
            contact("quiet", 1_000, Some(3_000)),
            contact("at_limit", 2_000, Some(3_000)),
            contact("chatty", 4_900, Some(3_000)),
            contact("gone", 0, None),
        ];
        let now = 5_000;
        for (supervision, remedy) in [
            (Supervision::Embedded, Remedy::Respawn),
            (Supervision::Procd, Remedy::ProcdRestart),
        ] {
            assert_eq!(
                hung_trackers(&contacts, supervision, now),
                [HungTracker {
                    interface: "quiet".into(),
                    silent_ms: 4_000,
                    remedy,
                }],
                "{supervision:?}"
            );
        }
    }

    #[test]
    fn a_tracker_heard_after_now_is_not_hung() {
        // heard_at stamped after the pass's `now` (same loop iteration).
        let contacts = [contact("wan", 6_000, Some(0))];
        assert_eq!(hung_trackers(&contacts, Supervision::Embedded, 5_000), []);
    }
}
