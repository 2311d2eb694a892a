//! Shared by the health_*, quality_*, policy_* and sim_* tests: a seeded
//! PRNG, interface builders, a round-level driver and an event-driven
//! tracker/link simulation around the real `Health` and `Quality` machines.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use mwan_core::config::Interface;
use mwan_core::health::{Health, HealthSettings, LinkState, ProbeOutcome, ProbeResult, Transition};
use mwan_core::quality::Quality;
use mwan_core::Millis;

pub fn reply(target: usize, round: u64, sent_at: Millis, ms: u32) -> ProbeResult {
    ProbeResult {
        target,
        round,
        sent_at,
        outcome: ProbeOutcome::Reply { rtt_us: ms * 1000 },
        inbound_packets: None,
    }
}

/// A loss from a tracker that did not count inbound packets (waits for the
/// configured timeout before an offline verdict is final).
pub fn lost(target: usize, round: u64, sent_at: Millis) -> ProbeResult {
    ProbeResult {
        target,
        round,
        sent_at,
        outcome: ProbeOutcome::Lost,
        inbound_packets: None,
    }
}

/// A loss during which `inbound` unicast packets arrived on the WAN's device.
pub fn lost_with_inbound(target: usize, round: u64, sent_at: Millis, inbound: u32) -> ProbeResult {
    ProbeResult {
        inbound_packets: Some(inbound),
        ..lost(target, round, sent_at)
    }
}

pub fn late(target: usize, round: u64, sent_at: Millis, ms: u32) -> ProbeResult {
    ProbeResult {
        target,
        round,
        sent_at,
        outcome: ProbeOutcome::LateReply { rtt_us: ms * 1000 },
        inbound_packets: None,
    }
}

/// SplitMix64: tiny, fast, good enough for Monte Carlo, fully seeded.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// An enabled interface with `targets` track_ip entries and mwan3 defaults.
pub fn iface(targets: usize) -> Interface {
    let mut i = Interface::new("wan");
    i.enabled = true;
    i.track_ip = (0..targets).map(|n| format!("192.0.2.{}", n + 1)).collect();
    i
}

/// An interface at our recommended defaults.
pub fn recommended_iface(name: &str) -> Interface {
    let r = mwan_core::health::RECOMMENDED_TRACKING;
    let mut i = Interface::new(name);
    i.enabled = true;
    i.track_ip = (0..r.targets)
        .map(|n| format!("192.0.2.{}", n + 1))
        .collect();
    i.reliability = r.reliability;
    i.count = r.count;
    i.interval = r.interval_ms;
    i.failure_interval = r.failure_interval_ms;
    i.recovery_interval = r.recovery_interval_ms;
    i.keep_failure_interval = r.keep_failure_interval;
    i.timeout = r.timeout_ms;
    i.down = r.down;
    i.up = r.up;
    i.quality.time_constant_ms = mwan_core::quality::DEFAULT_TIME_CONSTANT_MS;
    i.quality.loss_divisor = r.loss_divisor;
    i.quality.loss_limit_pct = r.loss_limit_pct;
    i.quality.bias_ms = r.bias_ms;
    i
}

/// Feeds whole rounds, one per second, results arriving 10 ms after sending.
pub struct RoundDriver {
    pub health: Health,
    pub round: u64,
    pub now: Millis,
    pub transitions: Vec<Transition>,
}

impl RoundDriver {
    pub fn new(iface: &Interface) -> Self {
        RoundDriver {
            health: Health::new(HealthSettings::from_interface(iface), 0),
            round: 0,
            now: 0,
            transitions: Vec::new(),
        }
    }

    /// `spec`: per target `+` (answered) or `-` (lost), targets separated by
    /// `/` when count > 1 (`+-/--`), or one char per target when count is 1.
    pub fn round(&mut self, spec: &str) -> LinkState {
        let targets: Vec<Vec<bool>> = if spec.contains('/') {
            spec.split('/')
                .map(|t| t.chars().map(|c| c == '+').collect())
                .collect()
        } else {
            spec.chars().map(|c| vec![c == '+']).collect()
        };
        let per_target: Vec<Vec<Option<u32>>> = targets
            .iter()
            .map(|t| t.iter().map(|&ok| ok.then_some(10)).collect())
            .collect();
        self.round_rtts(&per_target)
    }

    /// Per target, per probe: Some(rtt ms) or None (lost).
    pub fn round_rtts(&mut self, per_target: &[Vec<Option<u32>>]) -> LinkState {
        self.now += 1000;
        let sent_at = self.now;
        for (target, probes) in per_target.iter().enumerate() {
            for probe in probes {
                let outcome = match probe {
                    Some(ms) => ProbeOutcome::Reply { rtt_us: ms * 1000 },
                    None => ProbeOutcome::Lost,
                };
                let result = ProbeResult {
                    target,
                    round: self.round,
                    sent_at,
                    outcome,
                    inbound_packets: None,
                };
                let arrival = sent_at + u64::from(probe.unwrap_or(10));
                let t = self.health.on_probe(&result, arrival);
                self.transitions.extend(t);
            }
        }
        self.round += 1;
        self.health.state()
    }
}

/// What the simulated link does to one probe sent at `t`: Some(rtt ms) or lost.
pub trait LinkModel {
    fn probe(&mut self, t: Millis, target: usize, rng: &mut Rng) -> Option<f64>;
}

/// Independent loss and Gaussian jitter around a base RTT.
#[derive(Debug, Clone, Copy)]
pub struct Noisy {
    pub loss: f64,
    pub base_ms: f64,
    pub jitter_ms: f64,
}

impl LinkModel for Noisy {
    fn probe(&mut self, _t: Millis, _target: usize, rng: &mut Rng) -> Option<f64> {
        if rng.chance(self.loss) {
            return None;
        }
        Some((self.base_ms + self.jitter_ms * rng.normal()).max(0.5))
    }
}

impl<F: FnMut(Millis, usize, &mut Rng) -> Option<f64>> LinkModel for F {
    fn probe(&mut self, t: Millis, target: usize, rng: &mut Rng) -> Option<f64> {
        self(t, target, rng)
    }
}

/// A tracker and a link around the real machines, event by event: rounds
/// every interval the core asks for, probes answered per the link model,
/// `Lost` reported at the timeout the core asked for, late replies reported
/// (when enabled) up to the configured timeout.
pub struct Sim {
    pub health: Health,
    pub quality: Quality,
    pub now: Millis,
    pub next_round_at: Millis,
    pub round: u64,
    pub rounds_sent: u64,
    pub late_replies: bool,
    /// Report losses at the configured timeout instead of the effective one
    /// (a tracker told only the cap); answers up to the cap count.
    pub lost_at_cap: bool,
    /// Shortest round the tracker sends (its probe budget), whatever the
    /// interval asked for.
    pub min_interval: Millis,
    /// Other traffic (LAN uploads' ACKs, downloads) arriving on the WAN's
    /// device, as when a loss is reported: a lost probe's inbound count is
    /// this plus the late answers that arrived while it waited (mwan-track
    /// leaves timely answers to its own probes out).
    pub inbound_traffic: bool,
    /// When late answers arrived, newest last, for the inbound count of
    /// lost probes.
    arrivals: std::collections::VecDeque<Millis>,
    pub transitions: Vec<Transition>,
    pub rng: Rng,
    targets: usize,
    count: u32,
    cap: Millis,
    events: BinaryHeap<Reverse<Event>>,
    seq: u64,
}

/// (arrival, sequence, target, round, sent_at, outcome), ordered by arrival.
type Event = (Millis, u64, usize, u64, Millis, Outcome);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Reply(u32),
    Lost,
    Late(u32),
}

impl Sim {
    pub fn new(iface: &Interface, seed: u64) -> Self {
        let settings = HealthSettings::from_interface(iface);
        Sim {
            targets: settings.targets,
            count: settings.count,
            cap: settings.timeout,
            health: Health::new(settings, 0),
            quality: Quality::new(&iface.quality, iface.track_ip.len()),
            now: 0,
            next_round_at: 0,
            round: 0,
            rounds_sent: 0,
            late_replies: true,
            lost_at_cap: false,
            min_interval: 0,
            inbound_traffic: false,
            arrivals: std::collections::VecDeque::new(),
            transitions: Vec::new(),
            rng: Rng::new(seed),
            events: BinaryHeap::new(),
            seq: 0,
        }
    }

    fn push(&mut self, at: Millis, target: usize, round: u64, sent_at: Millis, outcome: Outcome) {
        self.seq += 1;
        self.events
            .push(Reverse((at, self.seq, target, round, sent_at, outcome)));
    }

    /// Run until `end` (exclusive) or until `rounds` more rounds were sent.
    pub fn run(&mut self, link: &mut impl LinkModel, end: Millis, rounds: u64) {
        let stop_rounds = self.rounds_sent.saturating_add(rounds);
        loop {
            let event_at = self.events.peek().map(|Reverse(e)| e.0);
            let deadline = self.health.next_deadline();
            let sending = self.rounds_sent < stop_rounds;
            let mut next = if sending {
                self.next_round_at
            } else {
                Millis::MAX
            };
            next = next
                .min(event_at.unwrap_or(Millis::MAX))
                .min(deadline.unwrap_or(Millis::MAX));
            if next >= end || next == Millis::MAX {
                if end != Millis::MAX {
                    self.now = self.now.max(end);
                }
                return;
            }
            self.now = next;
            if event_at == Some(next) {
                let Some(Reverse((_, _, target, round, sent_at, outcome))) = self.events.pop()
                else {
                    continue;
                };
                let outcome = match outcome {
                    Outcome::Reply(us) => ProbeOutcome::Reply { rtt_us: us },
                    Outcome::Lost => ProbeOutcome::Lost,
                    Outcome::Late(us) => ProbeOutcome::LateReply { rtt_us: us },
                };
                let inbound_packets = self.inbound_since(sent_at, outcome);
                self.quality.on_probe_at(target, outcome, sent_at);
                let t = self.health.on_probe(
                    &ProbeResult {
                        target,
                        round,
                        sent_at,
                        outcome,
                        inbound_packets,
                    },
                    next,
                );
                self.transitions.extend(t);
            } else if sending && self.next_round_at == next {
                let mut timing = self.health.tracker_timing();
                if self.lost_at_cap {
                    timing.timeout = self.cap;
                }
                timing.interval = timing.interval.max(self.min_interval);
                // Like mwan-track: the round's targets × count probes spread
                // evenly over the interval, targets interleaved.
                let n = self.targets * self.count as usize;
                for index in 0..n {
                    let target = index % self.targets;
                    let sent = next + timing.interval * index as Millis / n as Millis;
                    let rtt = link.probe(sent, target, &mut self.rng);
                    let round = self.round;
                    let after = |ms: f64| sent + ms.ceil() as Millis;
                    let us = |ms: f64| (ms * 1000.0) as u32;
                    match rtt {
                        Some(ms) if ms <= timing.timeout as f64 => {
                            self.push(after(ms), target, round, sent, Outcome::Reply(us(ms)))
                        }
                        _ => {
                            let at = sent + timing.timeout;
                            self.push(at, target, round, sent, Outcome::Lost);
                            if let Some(ms) =
                                rtt.filter(|&ms| self.late_replies && ms <= self.cap as f64)
                            {
                                self.push(after(ms), target, round, sent, Outcome::Late(us(ms)));
                            }
                        }
                    }
                }
                self.round += 1;
                self.rounds_sent += 1;
                if self.rounds_sent == stop_rounds && end == Millis::MAX {
                    // The tracker stops here (its pending reports with it):
                    // the core must not expect more rounds.
                    self.health.tracker_lost();
                    self.events.clear();
                }
                self.next_round_at = next + timing.interval.max(1);
            } else {
                let t = self.health.tick(next);
                self.transitions.extend(t);
            }
        }
    }

    /// Records an answer's arrival now; for a loss, what mwan-track would
    /// count on the device since the probe left.
    fn inbound_since(&mut self, sent_at: Millis, outcome: ProbeOutcome) -> Option<u32> {
        while self
            .arrivals
            .front()
            .is_some_and(|&at| at + self.cap < self.now)
        {
            self.arrivals.pop_front();
        }
        match outcome {
            // Timely answers are not counted (mwan-track leaves them out).
            ProbeOutcome::Reply { .. } => return None,
            ProbeOutcome::LateReply { .. } => {
                self.arrivals.push_back(self.now);
                return None;
            }
            ProbeOutcome::Lost => {}
        }
        let answers = self.arrivals.iter().filter(|&&at| at > sent_at).count();
        Some(answers as u32 + u32::from(self.inbound_traffic))
    }

    /// Down events: from a routed state (online, disconnecting) to offline.
    /// (Connecting -> Offline is a failed recovery, not a new down.)
    pub fn count_downs(&self) -> usize {
        self.transitions
            .iter()
            .filter(|t| t.to == LinkState::Offline)
            .filter(|t| matches!(t.from, LinkState::Online | LinkState::Disconnecting))
            .count()
    }

    pub fn count_to(&self, state: LinkState) -> usize {
        self.transitions.iter().filter(|t| t.to == state).count()
    }
}
