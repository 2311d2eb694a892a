//! The history `mwan history` (ubus), `mwanctl history` and the dashboard
//! show: a sample per WAN each housekeeping second, an event per state
//! change and policy move. Recorded in every build, with or without the
//! HTTP listener.

use super::Daemon;
use crate::wan::Change;
use mwan_core::history::{EventKind, Sample};
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

    /// Policy moves in the timeline: each policy whose carriers changed
    /// since `before`, with its `explain` sentence as the reason.
    pub(super) fn record_policy_moves(&mut self, before: &[String], now: Millis) {
        let after = self.engine.summary_lines();
        let explained = self.engine.explain(None, now).unwrap_or_default();
        for line in after.iter().filter(|l| !before.contains(l)) {
            let (policy, text) = line.split_once(": ").unwrap_or((line, ""));
            let reason = explained
                .iter()
                .find(|e| e.policy == policy)
                .map(|e| e.lines.join(" "))
                .unwrap_or_default();
            self.history
                .event(now, EventKind::Policy, policy, text, &reason);
        }
    }

    /// The history's WANs follow the enabled interfaces.
    pub(super) fn sync_history(&mut self) {
        let names: Vec<&str> = self.wans.keys().map(String::as_str).collect();
        self.history.set_interfaces(&names);
    }
}
