//! What each WAN looked like over the last hour, and what changed and why:
//! the data behind the dashboard's graphs and timeline (docs/dashboard.md).
//!
//! Bounded by construction: one fixed ring of [`RING_SECONDS`] compact
//! one-second slots per WAN, and one ring of at most [`EVENT_CAPACITY`]
//! events whose texts are cut at [`MAX_TEXT`] bytes. Nothing grows with
//! uptime. Time comes in as `now: Millis`; the cursor a page polls with is
//! the second (`now / 1000`) of the newest slot it has seen.

use crate::health::LinkState;
use crate::Millis;
use std::collections::VecDeque;

/// One hour at one-second resolution.
pub const RING_SECONDS: usize = 3600;
/// State changes and policy moves kept, over all WANs and policies.
pub const EVENT_CAPACITY: usize = 512;
/// Longest subject, text or reason kept in an event, in bytes.
pub const MAX_TEXT: usize = 240;

/// A value a `u16` slot field cannot hold marks "no data".
const NONE16: u16 = u16::MAX;
/// `state` of a second in which nothing was recorded.
const STATE_GAP: u8 = u8::MAX;

/// One second of one WAN: 10 bytes. Latency, jitter and score in tenths
/// (of a millisecond, or score points), loss in hundredths of a percent;
/// values beyond 6553.4 are kept as 6553.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    latency: u16,
    jitter: u16,
    score: u16,
    loss: u16,
    state: u8,
    /// Samples folded into this second (0: a gap), saturating.
    samples: u8,
}

const GAP: Slot = Slot {
    latency: NONE16,
    jitter: NONE16,
    score: NONE16,
    loss: NONE16,
    state: STATE_GAP,
    samples: 0,
};

/// What mwand knows about one WAN at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub state: LinkState,
    pub latency_ms: Option<f64>,
    pub jitter_ms: Option<f64>,
    pub loss_pct: Option<f64>,
    pub score: Option<f64>,
}

const STATES: [LinkState; 6] = [
    LinkState::Unknown,
    LinkState::Online,
    LinkState::Disconnecting,
    LinkState::Offline,
    LinkState::Connecting,
    LinkState::Disabled,
];

fn state_code(state: LinkState) -> u8 {
    STATES.iter().position(|s| *s == state).unwrap_or(0) as u8
}

fn encode(v: Option<f64>, scale: f64) -> u16 {
    match v {
        Some(v) if v.is_finite() => (v * scale).round().clamp(0.0, f64::from(NONE16 - 1)) as u16,
        _ => NONE16,
    }
}

fn decode(v: u16, scale: f64) -> Option<f64> {
    (v != NONE16).then(|| f64::from(v) / scale)
}

/// Mean of `old` (over `n` earlier samples) and `new`; a side without data
/// leaves the other.
fn fold_mean(old: u16, n: u8, new: u16) -> u16 {
    match (old, new) {
        (NONE16, x) | (x, NONE16) => x,
        (o, x) => ((u32::from(o) * u32::from(n) + u32::from(x)) / (u32::from(n) + 1)) as u16,
    }
}

/// One WAN's last hour.
#[derive(Debug, Clone)]
pub struct WanHistory {
    name: String,
    slots: Box<[Slot]>,
    /// Second of the newest slot written; None before the first sample.
    newest: Option<u64>,
    /// Second of the first sample: nothing before it is held.
    first: u64,
    /// State changes recorded as events since start (for `/metrics`).
    transitions: u64,
}

impl WanHistory {
    pub fn new(name: &str) -> Self {
        WanHistory {
            name: name.to_owned(),
            slots: vec![GAP; RING_SECONDS].into_boxed_slice(),
            newest: None,
            first: 0,
            transitions: 0,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// State changes since start, counted by [`History::event`].
    pub fn transitions(&self) -> u64 {
        self.transitions
    }

    fn slot_mut(&mut self, second: u64) -> &mut Slot {
        &mut self.slots[(second % RING_SECONDS as u64) as usize]
    }

    fn slot(&self, second: u64) -> Slot {
        self.slots[(second % RING_SECONDS as u64) as usize]
    }

    /// Folds `sample` into the second of `now`. Several samples in one
    /// second give the mean latency, jitter and score, the worst loss and
    /// the last state; seconds skipped since the last sample become gaps.
    /// A sample older than the newest second is dropped (the clock is
    /// monotonic; this only guards against a caller's mistake).
    pub fn record(&mut self, now: Millis, sample: &Sample) {
        let second = now / 1000;
        let new = Slot {
            latency: encode(sample.latency_ms, 10.0),
            jitter: encode(sample.jitter_ms, 10.0),
            score: encode(sample.score, 10.0),
            loss: encode(sample.loss_pct, 100.0),
            state: state_code(sample.state),
            samples: 1,
        };
        match self.newest {
            Some(newest) if second < newest => {}
            Some(newest) if second == newest => {
                let slot = self.slot_mut(second);
                let n = slot.samples;
                slot.latency = fold_mean(slot.latency, n, new.latency);
                slot.jitter = fold_mean(slot.jitter, n, new.jitter);
                slot.score = fold_mean(slot.score, n, new.score);
                slot.loss = match (slot.loss, new.loss) {
                    (NONE16, x) | (x, NONE16) => x,
                    (a, b) => a.max(b),
                };
                slot.state = new.state;
                slot.samples = n.saturating_add(1);
            }
            Some(newest) => {
                let skipped = (second - newest - 1).min(RING_SECONDS as u64);
                for s in second - skipped..second {
                    *self.slot_mut(s) = GAP;
                }
                *self.slot_mut(second) = new;
                self.newest = Some(second);
            }
            None => {
                *self.slot_mut(second) = new;
                self.newest = Some(second);
                self.first = second;
            }
        }
    }

    /// The seconds held that are `>= since`, oldest first: (first second,
    /// slots). Seconds before the first sample are not held.
    fn range_since(&self, since: u64) -> Option<(u64, Vec<Slot>)> {
        let newest = self.newest?;
        let oldest = (newest + 1)
            .saturating_sub(RING_SECONDS as u64)
            .max(self.first);
        let first = since.max(oldest);
        (first <= newest).then(|| (first, (first..=newest).map(|s| self.slot(s)).collect()))
    }

    /// The readings of every second `>= since` still held, oldest first.
    pub fn points_since(&self, since: u64) -> Vec<Point> {
        self.range_since(since)
            .map(|(first, slots)| {
                slots
                    .iter()
                    .zip(first..)
                    .map(|(slot, second)| Point::from_slot(second, slot))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One second of one WAN, decoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub second: u64,
    /// None for a second in which nothing was recorded.
    pub state: Option<LinkState>,
    pub latency_ms: Option<f64>,
    pub jitter_ms: Option<f64>,
    pub loss_pct: Option<f64>,
    pub score: Option<f64>,
}

impl Point {
    fn from_slot(second: u64, slot: &Slot) -> Self {
        Point {
            second,
            state: STATES.get(usize::from(slot.state)).copied(),
            latency_ms: decode(slot.latency, 10.0),
            jitter_ms: decode(slot.jitter, 10.0),
            loss_pct: decode(slot.loss, 100.0),
            score: decode(slot.score, 10.0),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A WAN changed state; subject is the interface.
    State,
    /// A policy's set of carrying WANs or their shares changed; subject is
    /// the policy.
    Policy,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::State => "state",
            EventKind::Policy => "policy",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Increases by one per event, from 1; never reused.
    pub seq: u64,
    pub at: Millis,
    pub kind: EventKind,
    pub subject: String,
    /// What changed: "online -> offline", "wan2 100%".
    pub text: String,
    /// Why, in the words `explain` uses.
    pub reason: String,
}

/// Every WAN's history and the event timeline.
#[derive(Debug, Clone, Default)]
pub struct History {
    wans: Vec<WanHistory>,
    events: VecDeque<Event>,
    last_seq: u64,
}

fn cut(s: &str) -> String {
    let mut end = s.len().min(MAX_TEXT);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

impl History {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the WANs named, in this order (config order after a reload):
    /// a WAN kept keeps its history, a new one starts empty, a removed one
    /// is forgotten.
    pub fn set_interfaces(&mut self, names: &[&str]) {
        let mut old = std::mem::take(&mut self.wans);
        self.wans = names
            .iter()
            .map(|name| match old.iter().position(|w| w.name == *name) {
                Some(i) => old.swap_remove(i),
                None => WanHistory::new(name),
            })
            .collect();
    }

    pub fn wans(&self) -> &[WanHistory] {
        &self.wans
    }

    /// Records a sample of a WAN named in [`set_interfaces`]; other names
    /// are ignored.
    pub fn record(&mut self, interface: &str, now: Millis, sample: &Sample) {
        if let Some(w) = self.wans.iter_mut().find(|w| w.name == interface) {
            w.record(now, sample);
        }
    }

    /// Adds an event; the oldest goes once [`EVENT_CAPACITY`] are held.
    /// A state event also counts a transition of the WAN it names.
    pub fn event(&mut self, now: Millis, kind: EventKind, subject: &str, text: &str, reason: &str) {
        if kind == EventKind::State {
            if let Some(w) = self.wans.iter_mut().find(|w| w.name == subject) {
                w.transitions += 1;
            }
        }
        if self.events.len() == EVENT_CAPACITY {
            self.events.pop_front();
        }
        self.last_seq += 1;
        self.events.push_back(Event {
            seq: self.last_seq,
            at: now,
            kind,
            subject: cut(subject),
            text: cut(text),
            reason: cut(reason),
        });
    }

    /// Events in the second `since` or later, oldest first.
    pub fn events_since(&self, since: u64) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(move |e| e.at / 1000 >= since)
    }

    /// The newest second any WAN recorded.
    pub fn newest_second(&self) -> Option<u64> {
        self.wans.iter().filter_map(|w| w.newest).max()
    }

    /// The increment since the second `since` as JSON (the shape is in
    /// docs/dashboard.md). Columns per WAN, one entry per second from `t0`;
    /// `next` is the cursor for the next poll: the newest second, which is
    /// sent again because it may still gain samples.
    ///
    /// A cursor past the newest second comes from before a reboot (the
    /// monotonic clock restarted): the reply is then the whole history with
    /// `"reset": true`, and the page drops what it had.
    pub fn json_since(&self, since: u64) -> String {
        let newest = self.newest_second();
        let reset = newest.is_some_and(|n| since > n);
        let since = if reset { 0 } else { since };
        let next = newest.unwrap_or(since).max(since);
        let mut out = format!("{{\"next\":{next},\"reset\":{reset},\"step_s\":1,\"states\":[");
        for (i, s) in STATES.iter().enumerate() {
            out += if i > 0 { ",\"" } else { "\"" };
            out += s.as_str();
            out.push('"');
        }
        out += "],\"wans\":[";
        for (i, w) in self.wans.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out += "{\"name\":";
            json_string(&mut out, &w.name);
            match w.range_since(since) {
                None => out += ",\"t0\":null,\"latency_ms\":[],\"jitter_ms\":[],\"loss_pct\":[],\"score\":[],\"state\":[]",
                Some((first, slots)) => {
                    out.push_str(&format!(",\"t0\":{first}"));
                    let column = |out: &mut String, key: &str, f: &dyn Fn(&Slot) -> Option<f64>| {
                        out.push_str(&format!(",\"{key}\":["));
                        for (j, slot) in slots.iter().enumerate() {
                            if j > 0 {
                                out.push(',');
                            }
                            match f(slot) {
                                Some(v) => {
                                    out.push_str(&format!("{v}"));
                                }
                                None => out.push_str("null"),
                            }
                        }
                        out.push(']');
                    };
                    column(&mut out, "latency_ms", &|s| decode(s.latency, 10.0));
                    column(&mut out, "jitter_ms", &|s| decode(s.jitter, 10.0));
                    column(&mut out, "loss_pct", &|s| decode(s.loss, 100.0));
                    column(&mut out, "score", &|s| decode(s.score, 10.0));
                    column(&mut out, "state", &|s| {
                        (s.state != STATE_GAP).then_some(f64::from(s.state))
                    });
                }
            }
            out.push('}');
        }
        out += "],\"events\":[";
        for (i, e) in self.events_since(since).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!(
                "{{\"seq\":{},\"t\":{},\"at_ms\":{},\"kind\":\"{}\",\"subject\":",
                e.seq,
                e.at / 1000,
                e.at,
                e.kind.as_str()
            ));
            json_string(&mut out, &e.subject);
            out += ",\"text\":";
            json_string(&mut out, &e.text);
            out += ",\"reason\":";
            json_string(&mut out, &e.reason);
            out.push('}');
        }
        out += "]}";
        out
    }
}

/// Appends `s` as a JSON string literal, escaped as serde_json does.
pub fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Bytes one WAN's history holds at most: the ring, plus the name.
pub const fn bytes_per_wan(name_len: usize) -> usize {
    std::mem::size_of::<WanHistory>() + RING_SECONDS * std::mem::size_of::<Slot>() + name_len
}

/// Bytes the event ring holds at most, over all WANs and policies.
pub const fn event_bytes() -> usize {
    EVENT_CAPACITY * (std::mem::size_of::<Event>() + 3 * MAX_TEXT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(state: LinkState, latency: f64, loss: f64) -> Sample {
        Sample {
            state,
            latency_ms: Some(latency),
            jitter_ms: Some(latency / 10.0),
            loss_pct: Some(loss),
            score: Some(latency + 1.0),
        }
    }

    fn online(latency: f64) -> Sample {
        sample(LinkState::Online, latency, 0.0)
    }

    #[test]
    fn memory_bound_per_wan_is_what_docs_state() {
        // docs/dashboard.md states 10 bytes a second, 36,000 bytes of ring
        // and under 36.1 KB a WAN with its bookkeeping.
        assert_eq!(std::mem::size_of::<Slot>(), 10);
        assert_eq!(RING_SECONDS * std::mem::size_of::<Slot>(), 36_000);
        assert!(bytes_per_wan(16) < 36_100, "{}", bytes_per_wan(16));
        // Events: a fixed ring for everything, under 512 KB even if every
        // text were cut at MAX_TEXT (docs/dashboard.md).
        assert!(event_bytes() < 512 * 1024, "{}", event_bytes());
        let w = WanHistory::new("wan1");
        assert_eq!(w.slots.len(), RING_SECONDS);
    }

    #[test]
    fn several_samples_in_one_second_fold_into_one() {
        let mut w = WanHistory::new("wan1");
        w.record(5_000, &sample(LinkState::Online, 10.0, 0.0));
        w.record(5_300, &sample(LinkState::Online, 20.0, 5.0));
        w.record(5_900, &sample(LinkState::Disconnecting, 30.0, 2.0));
        let points = w.points_since(0);
        assert_eq!(points.len(), 1);
        let p = points[0];
        assert_eq!(p.second, 5);
        assert_eq!(p.latency_ms, Some(20.0), "mean of 10, 20, 30");
        assert_eq!(p.loss_pct, Some(5.0), "worst loss of the second");
        assert_eq!(p.state, Some(LinkState::Disconnecting), "last state");
        assert_eq!(p.score, Some(21.0));
    }

    #[test]
    fn missing_values_do_not_drag_the_mean() {
        let mut w = WanHistory::new("wan1");
        w.record(1_000, &online(10.0));
        let mut none = online(0.0);
        none.latency_ms = None;
        w.record(1_500, &none);
        assert_eq!(w.points_since(0)[0].latency_ms, Some(10.0));
    }

    #[test]
    fn skipped_seconds_are_gaps() {
        let mut w = WanHistory::new("wan1");
        w.record(10_000, &online(10.0));
        w.record(13_000, &online(12.0));
        let points = w.points_since(0);
        assert_eq!(points.len(), 4);
        assert_eq!(points[0].latency_ms, Some(10.0));
        for gap in &points[1..3] {
            assert_eq!(gap.state, None);
            assert_eq!(gap.latency_ms, None);
        }
        assert_eq!(points[3].second, 13);
        assert_eq!(points[3].latency_ms, Some(12.0));
    }

    #[test]
    fn the_ring_wraps_and_keeps_the_last_hour() {
        let mut w = WanHistory::new("wan1");
        let total = RING_SECONDS as u64 + 250;
        for s in 0..total {
            w.record(s * 1000, &online((s % 1000) as f64));
        }
        let points = w.points_since(0);
        assert_eq!(points.len(), RING_SECONDS);
        assert_eq!(points[0].second, total - RING_SECONDS as u64);
        assert_eq!(points.last().map(|p| p.second), Some(total - 1));
        for p in &points {
            assert_eq!(
                p.latency_ms,
                Some((p.second % 1000) as f64),
                "second {}",
                p.second
            );
        }
    }

    #[test]
    fn a_gap_longer_than_the_ring_clears_it() {
        let mut w = WanHistory::new("wan1");
        w.record(0, &online(5.0));
        w.record((RING_SECONDS as u64 * 3) * 1000, &online(7.0));
        let points = w.points_since(0);
        assert_eq!(points.len(), RING_SECONDS);
        assert!(points[..RING_SECONDS - 1].iter().all(|p| p.state.is_none()));
        assert_eq!(points[RING_SECONDS - 1].latency_ms, Some(7.0));
    }

    #[test]
    fn out_of_range_values_saturate_and_old_samples_are_dropped() {
        let mut w = WanHistory::new("wan1");
        w.record(2_000, &online(1e9));
        w.record(1_000, &online(1.0));
        let points = w.points_since(0);
        assert_eq!(points.len(), 1);
        assert_eq!(points[0].latency_ms, Some(6553.4));
    }

    #[test]
    fn since_cursor_gives_increments() {
        let mut h = History::new();
        h.set_interfaces(&["wan1", "wan2"]);
        for s in 0..10u64 {
            h.record("wan1", s * 1000, &online(s as f64));
        }
        h.event(
            4_200,
            EventKind::State,
            "wan1",
            "online -> offline",
            "3 of 3 probes lost",
        );
        assert_eq!(h.newest_second(), Some(9));
        assert_eq!(h.wans()[0].points_since(7).len(), 3);
        assert!(h.wans()[1].points_since(0).is_empty());
        assert_eq!(h.events_since(4).count(), 1);
        assert_eq!(h.wans()[0].transitions(), 1);
        assert_eq!(h.wans()[1].transitions(), 0);
        assert_eq!(h.events_since(5).count(), 0);
        // Next poll with the returned cursor: only the newest second again,
        // then whatever came after it.
        h.record("wan1", 10_500, &online(10.0));
        h.event(
            10_600,
            EventKind::Policy,
            "balanced",
            "wan2 100%",
            "wan1 is offline",
        );
        let inc = h.wans()[0].points_since(9);
        assert_eq!(
            inc.iter().map(|p| p.second).collect::<Vec<_>>(),
            vec![9, 10]
        );
        let events: Vec<u64> = h.events_since(9).map(|e| e.seq).collect();
        assert_eq!(events, vec![2]);
    }

    #[test]
    fn events_are_bounded_and_sequenced() {
        let mut h = History::new();
        let long = "x".repeat(MAX_TEXT * 2);
        for i in 0..(EVENT_CAPACITY as u64 + 10) {
            h.event(
                i,
                EventKind::State,
                "wan1",
                &long,
                "é".repeat(MAX_TEXT).as_str(),
            );
        }
        let events: Vec<&Event> = h.events_since(0).collect();
        assert_eq!(events.len(), EVENT_CAPACITY);
        assert_eq!(events[0].seq, 11);
        assert_eq!(
            events.last().map(|e| e.seq),
            Some(EVENT_CAPACITY as u64 + 10)
        );
        assert_eq!(events[0].text.len(), MAX_TEXT);
        assert!(events[0].reason.len() <= MAX_TEXT);
    }

    #[test]
    fn interfaces_keep_their_history_across_a_reload() {
        let mut h = History::new();
        h.set_interfaces(&["wan1", "wan2"]);
        h.record("wan2", 1_000, &online(3.0));
        h.set_interfaces(&["wan2", "wan3"]);
        let names: Vec<&str> = h.wans().iter().map(|w| w.name()).collect();
        assert_eq!(names, vec!["wan2", "wan3"]);
        assert_eq!(h.wans()[0].points_since(0).len(), 1);
        h.record("wan9", 2_000, &online(3.0));
        assert_eq!(h.newest_second(), Some(1));
    }

    #[test]
    fn json_has_columns_and_escaped_events() {
        let mut h = History::new();
        h.set_interfaces(&["wan1", "wan2"]);
        h.record("wan1", 3_000, &sample(LinkState::Offline, 12.5, 100.0));
        h.record("wan1", 5_000, &online(8.0));
        h.event(
            3_100,
            EventKind::State,
            "wan1",
            "online -> offline",
            "lost \"all\" <probes>",
        );
        let json = h.json_since(0);
        assert_eq!(
            json,
            "{\"next\":5,\"reset\":false,\"step_s\":1,\
             \"states\":[\"unknown\",\"online\",\"disconnecting\",\"offline\",\"connecting\",\"disabled\"],\
             \"wans\":[{\"name\":\"wan1\",\"t0\":3,\"latency_ms\":[12.5,null,8],\
             \"jitter_ms\":[1.3,null,0.8],\"loss_pct\":[100,null,0],\"score\":[13.5,null,9],\
             \"state\":[3,null,1]},\
             {\"name\":\"wan2\",\"t0\":null,\"latency_ms\":[],\"jitter_ms\":[],\"loss_pct\":[],\"score\":[],\"state\":[]}],\
             \"events\":[{\"seq\":1,\"t\":3,\"at_ms\":3100,\"kind\":\"state\",\"subject\":\"wan1\",\
             \"text\":\"online -> offline\",\"reason\":\"lost \\\"all\\\" <probes>\"}]}"
        );
        // A poll from the cursor carries only the newest second.
        assert!(h.json_since(5).contains("\"t0\":5,\"latency_ms\":[8]"));
        // A cursor from before a reboot gets everything again, flagged.
        let after_reboot = h.json_since(9_000);
        assert!(
            after_reboot.starts_with("{\"next\":5,\"reset\":true,"),
            "{after_reboot}"
        );
        assert!(after_reboot.contains("\"t0\":3,"), "{after_reboot}");
    }
}
