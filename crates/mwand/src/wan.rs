//! One WAN at run time: its config, the facts learnt from the kernel, and
//! its health and quality (decided by mwan-core; this module only feeds
//! samples in and reads states out).

use crate::hooks::Action;
use mwan_core::config::Family;
use mwan_core::config::Interface;
use mwan_core::health::{Health, HealthSettings, LinkState, ProbeOutcome, ProbeResult, Transition};
use mwan_core::plan::WanFacts;
use mwan_core::policy::WanView;
use mwan_core::quality::Quality;
use mwan_core::Millis;
use mwan_proto::control::{InterfaceStatus, TrackerStatus};
use mwan_proto::track::{ControllerMessage, ProbeOutcome as WireOutcome, Sample};
use std::net::IpAddr;

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
    /// CLOCK_MONOTONIC µs start time of the tracker last heard from: a new
    /// value means a new tracker process, whose round numbers start over.
    tracker_started_at_us: Option<u64>,
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
    })
}

impl Wan {
    pub fn new(config: Interface, now: Millis) -> Self {
        Self {
            health: Health::new(HealthSettings::from_interface(&config), now),
            quality: Quality::new(&config.quality, config.track_ip.len()),
            config,
            facts: WanFacts::default(),
            tracker_connected: false,
            netifd_device: None,
            tracker_started_at_us: None,
        }
    }

    /// New settings from a reload. Unchanged: nothing happens (health and
    /// history stay). Changed tracking settings start the health machine
    /// over from `initial_state`; changed scoring settings restart scoring.
    pub fn reconfigure(&mut self, config: Interface, now: Millis) {
        if config == self.config {
            return;
        }
        let settings = HealthSettings::from_interface(&config);
        if &settings != self.health.settings() {
            self.health = Health::new(settings, now);
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

    /// netifd's layer-3 device; true if the effective device changed.
    pub fn set_netifd_device(&mut self, device: Option<String>) -> bool {
        let before = self.device().map(str::to_string);
        self.netifd_device = device;
        before.as_deref() != self.device()
    }

    /// What the kernel says about the WAN's device, with the config's
    /// `gateway` (extension) taking the place of a learnt one.
    pub fn facts(&self) -> &WanFacts {
        &self.facts
    }

    /// Returns true when something a tracker or route depends on changed
    /// (carrier changes come through [`Wan::on_carrier`]).
    pub fn learn_facts(&mut self, mut facts: WanFacts) -> bool {
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

    /// The core's view of this WAN for policy resolution.
    pub fn view(&self) -> WanView {
        WanView::new(
            &self.config.name,
            &self.health,
            Some(&self.quality.snapshot()),
        )
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

    pub fn on_samples(&mut self, samples: &[Sample], now: Millis) -> Vec<Change> {
        let mut out = Vec::new();
        for s in samples {
            let Some(p) = to_core(s, &self.config) else {
                log::debug!(
                    "{}: sample for unknown target {}",
                    self.config.name,
                    s.target
                );
                continue;
            };
            self.quality.on_probe(p.target, p.outcome);
            out.extend(Self::changes(self.health.on_probe(&p, now)));
        }
        out
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

    /// Interval and timeout the tracker should use now. The tracker waits
    /// up to the configured timeout (the cap) for every reply: the core
    /// judges rounds by its own adaptive timeout, but it must see the RTTs
    /// of replies slower than that timeout to follow a link whose RTT
    /// climbs (bufferbloat); a tracker that gave up at the adaptive timeout
    /// would hide them and keep a saturated link down.
    pub fn tracker_settings(&self) -> Vec<ControllerMessage> {
        let t = self.health.tracker_timing();
        vec![
            ControllerMessage::SetInterval {
                interval_ms: t.interval,
            },
            ControllerMessage::SetTimeout {
                timeout_ms: self.config.timeout.max(t.timeout),
            },
        ]
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
        }
    }
}
