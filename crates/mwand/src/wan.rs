//! One WAN at run time: its config, the facts learnt from the kernel, and
//! its health and quality (decided by mwan-core; this module only feeds
//! samples in and reads states out).

use crate::hooks::Action;
use mwan_core::config::Family;
use mwan_core::config::Interface;
use mwan_core::health::{
    Health, HealthSettings, LinkState, Mwan3Track, ProbeOutcome, ProbeResult, Transition, Verdict,
};
use mwan_core::plan::{WanAddress, WanFacts};
use mwan_core::policy::WanView;
use mwan_core::quality::Quality;
use mwan_core::startup::{self, WanFactsSource};
use mwan_core::tracker_control::{TrackerCommand, TrackerSettings};
use mwan_core::Millis;
use mwan_proto::control::{InterfaceStatus, TrackerStatus};
use mwan_proto::track::{ControllerMessage, ProbeOutcome as WireOutcome, Sample};
use mwan_ubus::netifd::InterfaceState;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What netifd reports about an interface (OpenWrt). It is netifd's own
/// view (what it configured), so it takes the place of what the kernel
/// shows for addresses, gateway and whether the interface is up; the
/// kernel still gives ifindex, carrier and the routes to mirror.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetifdFacts {
    pub up: bool,
    pub addresses: Vec<(IpAddr, u8)>,
    pub gateway_v4: Option<Ipv4Addr>,
    pub gateway_v6: Option<Ipv6Addr>,
}

impl NetifdFacts {
    pub fn from_state(s: &InterfaceState) -> Self {
        let addr = |a: &mwan_ubus::netifd::Address| Some((a.address.parse().ok()?, a.mask));
        // A default route's nexthop; 0.0.0.0 / :: mean on-link (PPP).
        let gateway = |v6: bool| {
            s.routes
                .iter()
                .filter(|r| r.is_default() && r.target.contains(':') == v6)
                .filter_map(|r| r.nexthop.parse::<IpAddr>().ok())
                .find(|ip| !ip.is_unspecified())
        };
        NetifdFacts {
            up: s.up,
            addresses: s.ipv4.iter().chain(&s.ipv6).filter_map(addr).collect(),
            gateway_v4: match gateway(false) {
                Some(IpAddr::V4(g)) => Some(g),
                _ => None,
            },
            gateway_v6: match gateway(true) {
                Some(IpAddr::V6(g)) => Some(g),
                _ => None,
            },
        }
    }

    /// netifd's view laid over the kernel's: its up flag, its addresses
    /// (a family it lists none of keeps the kernel's; DAD state comes from
    /// the kernel) and its gateways (the kernel's when netifd has none).
    fn overlay(&self, facts: &mut WanFacts) {
        facts.up &= self.up;
        let kernel = std::mem::take(&mut facts.addresses);
        for v6 in [false, true] {
            let ours: Vec<_> = self
                .addresses
                .iter()
                .filter(|(a, _)| a.is_ipv6() == v6)
                .collect();
            if ours.is_empty() {
                facts
                    .addresses
                    .extend(kernel.iter().filter(|k| k.addr.is_ipv6() == v6).cloned());
                continue;
            }
            facts
                .addresses
                .extend(ours.into_iter().map(|&(addr, prefix_len)| WanAddress {
                    addr,
                    prefix_len,
                    tentative: kernel.iter().any(|k| k.addr == addr && k.tentative),
                }));
        }
        facts.gateway_v4 = self.gateway_v4.or(facts.gateway_v4);
        facts.gateway_v6 = self.gateway_v6.or(facts.gateway_v6);
    }
}

/// A core tracker command as the message mwan-track reads.
pub fn to_wire(command: TrackerCommand) -> ControllerMessage {
    match command {
        TrackerCommand::SetInterval(interval_ms) => ControllerMessage::SetInterval { interval_ms },
        TrackerCommand::SetTimeout(timeout_ms) => ControllerMessage::SetTimeout { timeout_ms },
    }
}

/// A state change, for logs, hooks and events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub from: LinkState,
    pub to: LinkState,
}

impl Change {
    /// mwan3's hotplug ACTION for this change.
    pub fn hook_action(&self) -> Option<Action> {
        Some(match self.to {
            LinkState::Online => Action::Connected,
            LinkState::Offline => Action::Disconnected,
            LinkState::Connecting => Action::Connecting,
            LinkState::Disconnecting => Action::Disconnecting,
            LinkState::Unknown | LinkState::Disabled => return None,
        })
    }
}

pub struct Wan {
    config: Interface,
    facts: WanFacts,
    health: Health,
    quality: Quality,
    tracker_connected: bool,
    /// The layer-3 device netifd reports (OpenWrt), used when the config
    /// names none.
    netifd_device: Option<String>,
    /// netifd's addresses, gateway and up flag, when netifd reports this
    /// interface (OpenWrt); None on hosts without netifd.
    netifd: Option<NetifdFacts>,
    /// CLOCK_MONOTONIC µs start time of the tracker last heard from: a new
    /// value means a new tracker process, whose round numbers start over.
    tracker_started_at_us: Option<u64>,
    /// The time the last sample was judged at (see [`Wan::on_samples`]):
    /// never goes back.
    sample_clock: Millis,
    /// Probes reported (samples of a configured target) and, of those,
    /// lost, since this WAN was set up: `/metrics`' counters.
    probes_sent: u64,
    probes_lost: u64,
}

/// The net change of a batch (first `from` to last `to`; none when it
/// ends where it began): mwan_core::startup::coalesce.
pub fn coalesce_changes(changes: &[Change]) -> Vec<Change> {
    let pairs: Vec<_> = changes.iter().map(|c| (c.from, c.to)).collect();
    startup::coalesce(&pairs)
        .map(|(from, to)| Change { from, to })
        .into_iter()
        .collect()
}

fn to_core(s: &Sample, iface: &Interface) -> Option<ProbeResult> {
    let target = iface.track_ip.iter().position(|t| *t == s.target)?;
    let outcome = match s.outcome {
        WireOutcome::Reply { rtt_us } => ProbeOutcome::Reply { rtt_us },
        WireOutcome::Timeout
        | WireOutcome::Unreachable { .. }
        | WireOutcome::Refused
        | WireOutcome::BadAnswer
        | WireOutcome::SendError { .. } => ProbeOutcome::Lost,
    };
    Some(ProbeResult {
        target,
        round: s.round,
        sent_at: s.sent_at_us / 1000,
        outcome,
        inbound_packets: s.inbound_packets,
    })
}

/// mwan-track reports a lost probe at the timeout mwand sends it (the
/// core's adaptive one) and keeps listening until its `--timeout` (the
/// configured one), reporting a later answer as a reply (docs/tracker.md):
/// the core can then tell a tracker that went silent from a silent link.
fn new_health(settings: HealthSettings, now: Millis) -> Health {
    let mut h = Health::new(settings, now);
    h.set_prompt_loss_reports(true);
    h
}

impl Wan {
    pub fn new(config: Interface, now: Millis) -> Self {
        Self {
            health: new_health(HealthSettings::from_interface(&config), now),
            quality: Quality::new(&config.quality, config.track_ip.len()),
            config,
            facts: WanFacts::default(),
            tracker_connected: false,
            netifd_device: None,
            netifd: None,
            tracker_started_at_us: None,
            sample_clock: 0,
            probes_sent: 0,
            probes_lost: 0,
        }
    }

    /// New settings from a reload. Unchanged: nothing happens (health and
    /// history stay). Changed tracking settings give a new health machine
    /// that keeps the last verdict (an offline WAN stays offline until its
    /// probes say otherwise; without a verdict it starts from
    /// `initial_state`, logged); changed scoring settings restart scoring.
    pub fn reconfigure(&mut self, config: Interface, now: Millis) {
        if config == self.config {
            return;
        }
        let settings = HealthSettings::from_interface(&config);
        if &settings != self.health.settings() {
            let mut next = new_health(settings, now);
            let kept = self.health.carry_verdict_to(&mut next, now);
            self.health = next;
            log::info!(
                "{}: tracking changed; {}",
                config.name,
                kept.map_or("health starts over from initial_state", |_| {
                    "keeps its verdict"
                })
            );
        }
        if config.quality != self.config.quality || config.track_ip != self.config.track_ip {
            self.quality = Quality::new(&config.quality, config.track_ip.len());
        }
        self.config = config;
    }

    pub fn config(&self) -> &Interface {
        &self.config
    }

    /// The kernel device: the config's `device` (hosts without netifd),
    /// else what netifd reported.
    pub fn device(&self) -> Option<&str> {
        self.config
            .device
            .as_deref()
            .or(self.netifd_device.as_deref())
    }

    /// What netifd reports: its layer-3 device (used when the config names
    /// none) and its facts (see [`NetifdFacts`], applied by the next
    /// [`Wan::learn_facts`]); true if the effective device changed.
    pub fn set_netifd(&mut self, state: &InterfaceState) -> bool {
        let before = self.device().map(str::to_string);
        self.netifd_device = state.route_device().map(str::to_string);
        self.netifd = Some(NetifdFacts::from_state(state));
        before.as_deref() != self.device()
    }

    /// Where this WAN's facts come from, and whether netifd's arrived.
    pub fn facts_source(&self) -> WanFactsSource {
        match self.config.device {
            Some(_) => WanFactsSource::Kernel,
            None => WanFactsSource::Netifd {
                reported: self.netifd.is_some(),
            },
        }
    }

    /// What the kernel says about the WAN's device, with the config's
    /// `gateway` (extension) taking the place of a learnt one.
    pub fn facts(&self) -> &WanFacts {
        &self.facts
    }

    /// Returns true when something a tracker or route depends on changed
    /// (carrier changes come through [`Wan::on_carrier`]).
    pub fn learn_facts(&mut self, mut facts: WanFacts) -> bool {
        if let Some(n) = &self.netifd {
            n.overlay(&mut facts);
        }
        match self.config.gateway {
            Some(IpAddr::V4(g)) => facts.gateway_v4 = Some(g),
            Some(IpAddr::V6(g)) => facts.gateway_v6 = Some(g),
            None => {}
        }
        let mut old = self.facts.clone();
        old.carrier = facts.carrier;
        let changed = old != facts;
        self.facts = facts;
        changed
    }

    /// The address probes leave from: the first settled one of the
    /// interface's family.
    pub fn source(&self) -> Option<IpAddr> {
        let family = self.config.family;
        self.facts
            .addresses
            .iter()
            .filter(|a| !a.tentative)
            .map(|a| a.addr)
            .find(|a| match family {
                Family::Ipv4 => a.is_ipv4(),
                Family::Ipv6 => a.is_ipv6(),
            })
    }

    pub fn gateway(&self) -> Option<IpAddr> {
        match self.config.family {
            Family::Ipv4 => self.facts.gateway_v4.map(IpAddr::V4),
            Family::Ipv6 => self.facts.gateway_v6.map(IpAddr::V6),
        }
    }

    pub fn state(&self) -> LinkState {
        self.health.state()
    }

    /// mwan3track's SCORE, LOST, TURN and TIME for `mwan3 status`.
    pub fn mwan3_track(&self, now: Millis) -> Mwan3Track {
        self.health.mwan3_track(now)
    }

    /// The last verdict and since when its state holds, for the state file.
    pub fn verdict(&self) -> Option<(Verdict, Millis)> {
        Some((self.health.verdict()?, self.health.since()))
    }

    /// A verdict saved before a restart (already judged fresh enough).
    pub fn resume(&mut self, verdict: Verdict, since: Millis, now: Millis) {
        self.health.resume(verdict, since, now);
    }

    /// The core's view of this WAN for policy resolution.
    pub fn view(&self) -> WanView {
        let mut view = WanView::new(
            &self.config.name,
            &self.health,
            Some(&self.quality.snapshot()),
        );
        // A WAN that cannot carry a route now (netifd says down, no device
        // or address yet) is no member to choose: the policy takes its
        // next usable member instead of an `unreachable` table that the
        // plan would write for a member without a route.
        view.usable &= self.facts.routable(self.config.family);
        view
    }

    /// Usable for policies (the core decides).
    pub fn usable(&self) -> bool {
        self.health.usable()
    }

    /// Silence after which the core ages this WAN (and mwand presumes its
    /// tracker hung).
    pub fn silence_limit(&self) -> Millis {
        self.health.settings().silence_limit
    }

    /// When the health machine next needs `tick`.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.health.next_deadline()
    }

    fn changes(t: Vec<Transition>) -> Vec<Change> {
        t.into_iter()
            .map(|t| Change {
                from: t.from,
                to: t.to,
            })
            .collect()
    }

    /// One batch of samples. Each is judged at the time it reached the
    /// tracker at the latest (sent + configured timeout), not at `now`: a
    /// backlog a tracker replays after mwand restarted is then folded in
    /// as it happened, instead of every old round looking overdue and the
    /// state flapping once per sample. The batch is one change at most
    /// ([`coalesce_changes`]).
    pub fn on_samples(&mut self, samples: &[Sample], now: Millis) -> Vec<Change> {
        let mut out = Vec::new();
        for s in samples {
            if s.confirmation {
                // Judged at `now`: a burst replayed from a backlog is stale.
                let answered = matches!(s.outcome, WireOutcome::Reply { .. });
                let verdict = match (answered, s.inbound_packets) {
                    (true, _) => "answered",
                    (false, Some(0)) => "unanswered",
                    // A queue that delays or drops probes still delivers.
                    (false, _) => "inconclusive (unanswered, traffic arrived)",
                };
                log::info!("{}: confirmation burst {verdict}", self.config.name);
                let sent_at = s.sent_at_us / 1000;
                out.extend(Self::changes(self.health.on_confirmation(
                    answered,
                    s.inbound_packets,
                    sent_at,
                    now,
                )));
                continue;
            }
            let at = (s.sent_at_us / 1000 + self.config.timeout)
                .min(now)
                .max(self.sample_clock);
            self.sample_clock = at;
            let Some(p) = to_core(s, &self.config) else {
                log::debug!(
                    "{}: sample for unknown target {}",
                    self.config.name,
                    s.target
                );
                continue;
            };
            self.probes_sent += 1;
            self.probes_lost += u64::from(p.outcome == ProbeOutcome::Lost);
            self.quality.on_probe_at(p.target, p.outcome, p.sent_at);
            out.extend(Self::changes(self.health.on_probe(&p, at)));
        }
        coalesce_changes(&out)
    }

    /// Carrier from rtnetlink: loss is an immediate failover signal, as
    /// netifd's ifdown is for mwan3; its return starts again from
    /// `initial_state` (mwan3's ifup).
    pub fn on_carrier(&mut self, up: bool, now: Millis) -> Vec<Change> {
        self.facts.carrier = up;
        Self::changes(self.health.link_event(up, now))
    }

    /// Time passing: rounds past their deadline fail; a silent tracker ages
    /// the WAN to unknown (keeping its last verdict for policies).
    pub fn tick(&mut self, now: Millis) -> Vec<Change> {
        Self::changes(self.health.tick(now))
    }

    /// (probes sent, probes lost) since this WAN was set up: read by
    /// `/metrics`, which only the build with the listener has.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub fn probes(&self) -> (u64, u64) {
        (self.probes_sent, self.probes_lost)
    }

    pub fn tracker_connected(&mut self, started_at_us: u64) {
        self.tracker_connected = true;
        if self
            .tracker_started_at_us
            .is_some_and(|prev| prev != started_at_us)
        {
            self.health.tracker_restarted();
        }
        self.tracker_started_at_us = Some(started_at_us);
    }

    /// The tracker's connection is gone: its rounds in flight are dropped
    /// without failing them; a silent WAN ages to unknown, not offline.
    pub fn tracker_disconnected(&mut self) {
        self.tracker_connected = false;
        self.health.tracker_lost();
    }

    /// Interval and timeout the tracker should use now: the core's
    /// adaptive timing, quantised and clamped by the core
    /// ([`TrackerSettings::from_timing`]).
    pub fn tracker_settings(&self) -> TrackerSettings {
        TrackerSettings::from_timing(self.health.tracker_timing(), self.config.timeout)
    }

    pub fn status(&self, now: Millis) -> InterfaceStatus {
        let q = self.quality.snapshot();
        let has_data = q.samples > 0;
        InterfaceStatus {
            name: self.config.name.clone(),
            device: self.device().map(str::to_string),
            state: self.state().as_str().to_string(),
            state_age_s: now.saturating_sub(self.health.since()) / 1000,
            latency_ms: q.latency_ms,
            jitter_ms: has_data.then_some(q.jitter_ms),
            loss_pct: has_data.then_some(q.loss_pct),
            score: q.score,
            tracker: TrackerStatus {
                pid: None,
                restarts: 0,
                uptime_s: None,
                connected: self.tracker_connected,
            },
            reason: self.state_reason(),
        }
    }

    /// Why the WAN is `disabled` or `unknown` when its probes did not say
    /// so: an operator must not read a lost carrier as `enabled '0'`.
    /// (The tracker's side, "tracker not running", is added by the daemon.)
    fn state_reason(&self) -> Option<String> {
        let state = self.state();
        if !matches!(state, LinkState::Disabled | LinkState::Unknown) {
            return None;
        }
        let Some(device) = self.device() else {
            return Some("no device".into());
        };
        if state == LinkState::Unknown {
            return None;
        }
        Some(if self.facts.ifindex == 0 {
            format!("no device {device}")
        } else if self.netifd.as_ref().is_some_and(|n| !n.up) {
            "down in netifd".into()
        } else if !self.facts.up {
            format!("{device} is down")
        } else if !self.facts.carrier {
            "no carrier".into()
        } else {
            "link down".into()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mwan_ubus::netifd::{Address, Route};

    fn wan() -> Wan {
        let text = "config interface 'wan'\n\toption enabled '1'\n\tlist track_ip '203.0.113.1'\n";
        let loaded = mwan_core::config::parse("test", text).expect("config");
        Wan::new(loaded.config.interfaces[0].clone(), 0)
    }

    fn kernel() -> WanFacts {
        WanFacts {
            device: "eth1".into(),
            ifindex: 3,
            up: true,
            carrier: true,
            addresses: vec![
                WanAddress {
                    addr: "198.51.100.7".parse().unwrap(),
                    prefix_len: 24,
                    tentative: false,
                },
                WanAddress {
                    addr: "2001:db8::7".parse().unwrap(),
                    prefix_len: 64,
                    tentative: true,
                },
            ],
            gateway_v4: Some("198.51.100.254".parse().unwrap()),
            ..WanFacts::default()
        }
    }

    /// A tracker that outlived mwand replays its backlog to the new one in
    /// one batch: samples sent over the last seconds, all answered. The
    /// WAN changes state once, never back and forth (issue 12, bug 2).
    #[test]
    fn a_replayed_backlog_is_one_change_at_most() {
        let text = "config interface 'wan'\n\toption enabled '1'\n\tlist track_ip '203.0.113.1'\n\
            \tlist track_ip '203.0.113.2'\n\tlist track_ip '203.0.113.3'\n\toption interval '0.2'\n\
            \toption failure_interval '0.2'\n\toption recovery_interval '0.2'\n\toption timeout '3'\n\
            \toption down '3'\n\toption up '10'\n\toption reliability '1'\n";
        let loaded = mwan_core::config::parse("test", text).expect("config");
        let started = 100_000;
        let mut w = Wan::new(loaded.config.interfaces[0].clone(), started);
        w.tracker_connected(1);
        let targets = ["203.0.113.1", "203.0.113.2", "203.0.113.3"];
        // 40 rounds, 0.2 s apart: the 6.6 s before mwand started and the
        // 1.4 s until the tracker reconnected, read at once.
        let samples: Vec<Sample> = (0..40u64)
            .flat_map(|round| {
                targets.iter().enumerate().map(move |(i, t)| Sample {
                    seq: round * 3 + i as u64,
                    target: t.to_string(),
                    method: mwan_proto::track::ProbeMethod::IcmpEcho,
                    sent_at_us: (started - 6_600 + round * 200) * 1000,
                    outcome: WireOutcome::Reply { rtt_us: 10_000 },
                    round,
                    inbound_packets: None,
                    confirmation: false,
                })
            })
            .collect();
        let changes = w.on_samples(&samples, started + 1_400);
        assert!(changes.len() <= 1, "{} changes: {changes:?}", changes.len());
        assert_eq!(w.state(), LinkState::Online);
    }

    /// `/metrics`' probe counters: every sample of a configured target is
    /// a probe sent; each outcome but a reply is a loss; a sample for a
    /// target the config does not have is neither.
    #[test]
    fn samples_count_probes_sent_and_lost() {
        let mut w = wan();
        let outcomes = [
            ("203.0.113.1", WireOutcome::Reply { rtt_us: 10_000 }),
            ("203.0.113.1", WireOutcome::Timeout),
            ("203.0.113.1", WireOutcome::Refused),
            ("203.0.113.1", WireOutcome::SendError { errno: 101 }),
            ("203.0.113.1", WireOutcome::Reply { rtt_us: 9_000 }),
            ("192.0.2.99", WireOutcome::Timeout),
        ];
        let samples: Vec<Sample> = outcomes
            .iter()
            .enumerate()
            .map(|(i, (target, outcome))| Sample {
                seq: i as u64,
                target: target.to_string(),
                method: mwan_proto::track::ProbeMethod::IcmpEcho,
                sent_at_us: i as u64 * 1000,
                outcome: *outcome,
                round: i as u64,
                inbound_packets: None,
                confirmation: false,
            })
            .collect();
        w.on_samples(&samples, 10_000);
        assert_eq!(w.probes(), (5, 3));
        // A reload that changes the WAN's tracking and scoring restarts
        // its health and quality, not its counters: Prometheus needs them
        // monotonic while the WAN stays.
        let text = "config interface 'wan'\n\toption enabled '1'\n\tlist track_ip '203.0.113.1'\n\
            \tlist track_ip '203.0.113.2'\n\toption reliability '2'\n\toption interval '3'\n";
        let loaded = mwan_core::config::parse("test", text).expect("config");
        let changed = loaded.config.interfaces[0].clone();
        assert_ne!(w.config(), &changed);
        w.reconfigure(changed, 20_000);
        assert_eq!(w.probes(), (5, 3), "counters after a reload");
        w.on_samples(&samples[..2], 21_000);
        assert_eq!(w.probes(), (7, 4), "counting on from there");
    }

    #[test]
    fn replies_bring_the_tracker_timeout_down_and_only_that_is_sent_again() {
        let mut w = wan();
        let configured = w.config().timeout;
        let first = w.tracker_settings();
        assert_eq!(
            first.timeout_ms, configured,
            "no RTT yet: the configured one"
        );
        assert_eq!(first.interval_ms, w.config().interval);
        let samples: Vec<Sample> = (0..4)
            .map(|round| Sample {
                seq: round,
                target: "203.0.113.1".into(),
                method: mwan_proto::track::ProbeMethod::IcmpEcho,
                sent_at_us: round * w.config().interval * 1000,
                outcome: WireOutcome::Reply { rtt_us: 10_000 },
                round,
                inbound_packets: None,
                confirmation: false,
            })
            .collect();
        w.on_samples(&samples, 4 * w.config().interval);
        let after = w.tracker_settings();
        assert!(after.timeout_ms < configured, "{after:?}");
        assert_eq!(after.timeout_ms % 50, 0, "{after:?}");
        let sent: Vec<ControllerMessage> = after
            .changes_since(&first)
            .into_iter()
            .map(to_wire)
            .collect();
        assert_eq!(
            sent,
            [ControllerMessage::SetTimeout {
                timeout_ms: after.timeout_ms
            }]
        );
    }

    #[test]
    fn a_disabled_state_says_why() {
        let text = "config interface 'wan'\n\toption enabled '1'\n\toption device 'eth9'\n\tlist track_ip '203.0.113.1'\n";
        let iface = mwan_core::config::parse("test", text)
            .expect("config")
            .config
            .interfaces[0]
            .clone();

        let mut missing = Wan::new(iface.clone(), 0);
        missing.learn_facts(WanFacts::default());
        missing.on_carrier(false, 0);
        let st = missing.status(0);
        assert_eq!(
            (st.state.as_str(), st.reason.as_deref()),
            ("disabled", Some("no device eth9"))
        );

        let mut unplugged = Wan::new(iface.clone(), 0);
        unplugged.learn_facts(WanFacts {
            device: "eth9".into(),
            carrier: false,
            ..kernel()
        });
        unplugged.on_carrier(false, 0);
        let st = unplugged.status(0);
        assert_eq!(
            (st.state.as_str(), st.reason.as_deref()),
            ("disabled", Some("no carrier"))
        );

        let mut fine = Wan::new(iface, 0);
        fine.learn_facts(WanFacts {
            device: "eth9".into(),
            ..kernel()
        });
        assert_eq!(fine.status(0).reason, None, "{:?}", fine.status(0));
    }

    #[test]
    fn without_netifd_the_kernel_facts_stand() {
        let mut w = wan();
        w.learn_facts(kernel());
        assert_eq!(w.facts(), &kernel());
    }

    #[test]
    fn netifd_addresses_gateway_and_up_flag_win_over_the_kernel() {
        let mut w = wan();
        let state = InterfaceState {
            name: "wan".into(),
            up: true,
            l3_device: Some("eth1".into()),
            ipv4: vec![Address {
                address: "192.0.2.10".into(),
                mask: 28,
            }],
            routes: vec![
                Route {
                    target: "0.0.0.0".into(),
                    mask: 0,
                    nexthop: "192.0.2.1".into(),
                    metric: Some(10),
                    table: None,
                },
                Route {
                    target: "::".into(),
                    mask: 0,
                    nexthop: "fe80::1".into(),
                    metric: None,
                    table: None,
                },
            ],
            ..InterfaceState::default()
        };
        assert!(w.set_netifd(&state), "device learnt from netifd");
        assert_eq!(w.device(), Some("eth1"));
        w.learn_facts(kernel());
        let f = w.facts();
        assert_eq!(f.gateway_v4, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(f.gateway_v6, Some("fe80::1".parse().unwrap()));
        // IPv4 from netifd; IPv6 (netifd lists none) and its DAD state
        // from the kernel.
        let addrs: Vec<(String, u8, bool)> = f
            .addresses
            .iter()
            .map(|a| (a.addr.to_string(), a.prefix_len, a.tentative))
            .collect();
        assert_eq!(
            addrs,
            [
                ("192.0.2.10".into(), 28, false),
                ("2001:db8::7".into(), 64, true)
            ]
        );
        assert_eq!(w.source(), Some("192.0.2.10".parse().unwrap()));
        assert!(f.up && f.ifindex == 3 && f.carrier);

        // netifd says down (ifdown): no longer up, whatever the kernel says;
        // a PPP-style on-link default (nexthop 0.0.0.0) leaves the kernel's.
        let down = InterfaceState {
            up: false,
            routes: vec![Route {
                target: "0.0.0.0".into(),
                mask: 0,
                nexthop: "0.0.0.0".into(),
                metric: None,
                table: None,
            }],
            ..state
        };
        w.set_netifd(&down);
        assert!(
            w.learn_facts(kernel()),
            "a change of netifd's facts is a change"
        );
        assert!(!w.facts().up);
        assert_eq!(
            w.facts().gateway_v4,
            Some("198.51.100.254".parse().unwrap())
        );
    }
}
