//! The history `mwan history` (ubus), `mwanctl history` and the dashboard
//! show: a sample per WAN each housekeeping second, an event per state
//! change and policy move. Recorded in every build, with or without the
//! HTTP listener.

use super::Daemon;
use crate::engine::Engine;
use crate::wan::Change;
use mwan_core::config::Config;
use mwan_core::history::{EventKind, History, Sample};
use mwan_core::policy::WanView;
use mwan_core::Millis;

impl Daemon {
    /// One sample per WAN into the history (each housekeeping second).
    pub(super) fn record_history(&mut self, now: Millis) {
        for wan in self.wans.values() {
            let st = wan.status(now);
            let sample = Sample {
                state: wan.state(),
                latency_ms: st.latency_ms,
                jitter_ms: st.jitter_ms,
                loss_pct: st.loss_pct,
                score: st.score,
            };
            self.history.record(&st.name, now, &sample);
        }
    }

    /// A state change in the timeline, with what the WAN's figures say.
    pub(super) fn record_state_change(&mut self, name: &str, change: &Change, now: Millis) {
        let reason = match self.wans.get(name).map(|w| w.status(now)) {
            Some(st) => st
                .reason
                .unwrap_or_else(|| match (st.loss_pct, st.latency_ms) {
                    (Some(loss), Some(ms)) => format!("loss {loss:.0}%, latency {ms:.1} ms"),
                    (Some(loss), None) => format!("loss {loss:.0}%"),
                    _ => "no probe answers yet".into(),
                }),
            None => String::new(),
        };
        let text = format!("{} -> {}", change.from, change.to);
        self.history
            .event(now, EventKind::State, name, &text, &reason);
    }

    /// The history's WANs follow the enabled interfaces.
    pub(super) fn sync_history(&mut self) {
        let names: Vec<&str> = self.wans.keys().map(String::as_str).collect();
        self.history.set_interfaces(&names);
    }
}

/// After a tracker's samples (only when `policy::follows_quality`): a
/// quality ceiling can move a policy before the plan is applied, so the
/// moves are recorded here, not left for [`decide`] to notice. True when a
/// policy moved (the plan is dirty).
pub(super) fn follow_measurement(
    engine: &mut Engine,
    history: &mut History,
    config: &Config,
    wans: &[WanView],
    now: Millis,
) -> bool {
    let moved = engine.resolve(config, wans, now);
    record_policy_moves(history, engine, &moved, now);
    !moved.is_empty()
}

/// Decides every policy before an apply, each move into the history.
pub(super) fn decide(
    engine: &mut Engine,
    history: &mut History,
    config: &Config,
    wans: &[WanView],
    now: Millis,
) {
    let moved = engine.resolve(config, wans, now);
    record_policy_moves(history, engine, &moved, now);
}

/// Policy moves in the timeline: each policy in `moved` with its new
/// carriers, and its `explain` sentence as the reason.
fn record_policy_moves(history: &mut History, engine: &Engine, moved: &[String], now: Millis) {
    if moved.is_empty() {
        return;
    }
    let lines = engine.summary_lines();
    let explained = engine.explain(None, now).unwrap_or_default();
    for policy in moved {
        let text = lines
            .iter()
            .find_map(|l| l.strip_prefix(policy.as_str())?.strip_prefix(": "))
            .unwrap_or_default();
        let reason = explained
            .iter()
            .find(|e| &e.policy == policy)
            .map(|e| e.lines.join(" "))
            .unwrap_or_default();
        history.event(now, EventKind::Policy, policy, text, &reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mwan_core::health::LinkState;
    use mwan_core::policy::QualityReading;

    fn view(interface: &str, latency_ms: f64) -> WanView {
        WanView {
            interface: interface.into(),
            state: LinkState::Online,
            since: 0,
            usable: true,
            usable_since: Some(0),
            score: Some(latency_ms),
            quality: Some(QualityReading {
                latency_ms: Some(latency_ms),
                jitter_ms: 1.0,
                loss_pct: 0.0,
            }),
        }
    }

    fn policy_events(history: &History) -> Vec<String> {
        history
            .events_since(0)
            .filter(|e| e.kind == EventKind::Policy)
            .map(|e| format!("{}: {}", e.subject, e.text))
            .collect()
    }

    /// A quality ceiling moves a policy right after a tracker's samples,
    /// before the plan is applied: the history still shows the move.
    #[test]
    fn a_move_made_after_samples_reaches_the_history() {
        let text = "config interface 'wan1'\n\toption enabled '1'\n\tlist track_ip '192.0.2.1'\n\
                    config interface 'wan2'\n\toption enabled '1'\n\tlist track_ip '192.0.2.2'\n\
                    config member 'm1'\n\toption interface 'wan1'\n\toption metric '1'\n\
                    config member 'm2'\n\toption interface 'wan2'\n\toption metric '2'\n\
                    config policy 'gaming'\n\tlist use_member 'm1'\n\tlist use_member 'm2'\n\
                    \toption max_latency '80'\n\toption latency_min_stable '0'\n";
        let config = mwan_core::config::parse("test", text)
            .expect("config")
            .config;
        let (mut engine, mut history) = (Engine::default(), History::new());
        decide(
            &mut engine,
            &mut history,
            &config,
            &[view("wan1", 20.0), view("wan2", 30.0)],
            1_000,
        );
        assert_eq!(policy_events(&history), ["gaming: wan1 100%"]);
        // wan1's latency goes over the ceiling: the Samples arm re-decides,
        // then the plan is applied (which decides again).
        let slow = [view("wan1", 300.0), view("wan2", 30.0)];
        let moved = follow_measurement(&mut engine, &mut history, &config, &slow, 2_000);
        assert!(moved, "{:?}", engine.explain(None, 2_000));
        decide(&mut engine, &mut history, &config, &slow, 2_000);
        let events = policy_events(&history);
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(events[1].starts_with("gaming: wan2 100%"), "{events:?}");
    }
}
