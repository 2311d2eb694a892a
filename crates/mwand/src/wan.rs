//! One WAN at run time: its config, the facts learnt from the kernel, and
//! its health and quality (decided by mwan-core; this module only feeds
//! samples in and reads states out).

use crate::health_adapter::{Health, Quality};
use crate::hooks::Action;
use mwan_core::config::{InitialState, Interface};
use mwan_core::health::LinkState;
use mwan_core::Millis;
use mwan_proto::control::{InterfaceStatus, TrackerStatus};
use mwan_proto::track::{ControllerMessage, Sample};
use std::net::IpAddr;

/// Facts about a WAN learnt from the kernel (or netifd).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub ifindex: Option<u32>,
    pub carrier: Option<bool>,
    /// The WAN's address of the config's family (probes leave from it).
    pub source: Option<IpAddr>,
    pub addresses: Vec<(IpAddr, u8)>,
    /// The config's gateway, else the one the kernel routes through.
    pub gateway: Option<IpAddr>,
}

/// A state change, for logs, hooks and events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub from: LinkState,
    pub to: LinkState,
}

pub fn state_name(s: LinkState) -> &'static str {
    match s {
        LinkState::Unknown => "unknown",
        LinkState::Online => "online",
        LinkState::Disconnecting => "disconnecting",
        LinkState::Offline => "offline",
        LinkState::Connecting => "connecting",
        LinkState::Disabled => "disabled",
    }
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

    pub fn became_usable(&self) -> bool {
        self.to == LinkState::Online && self.from != LinkState::Online
    }
}

pub struct Wan {
    config: Interface,
    facts: Facts,
    health: Health,
    quality: Quality,
    state_since: Millis,
    last_sample_at: Option<Millis>,
    tracker_connected: bool,
    trouble: Option<String>,
}

impl Wan {
    pub fn new(config: Interface, now: Millis) -> Self {
        Self {
            health: Health::new(&config, now),
            quality: Quality::new(&config),
            config,
            facts: Facts::default(),
            state_since: now,
            last_sample_at: None,
            tracker_connected: false,
            trouble: None,
        }
    }

    /// New settings from a reload. Unchanged: nothing happens. Changed: the
    /// health machine takes the new thresholds and keeps its current state.
    pub fn reconfigure(&mut self, config: Interface, now: Millis) {
        if config == self.config {
            return;
        }
        self.health.reconfigure(&config, now);
        self.quality.reconfigure(&config);
        self.config = config;
    }

    pub fn config(&self) -> &Interface {
        &self.config
    }

    pub fn device(&self) -> Option<&str> {
        self.config.device.as_deref()
    }

    pub fn facts(&self) -> &Facts {
        &self.facts
    }

    /// Returns true when something a tracker or route depends on changed.
    pub fn learn_facts(&mut self, mut facts: Facts) -> bool {
        if let Some(gw) = self.config.gateway {
            facts.gateway = Some(gw);
        }
        let changed = facts.source != self.facts.source
            || facts.gateway != self.facts.gateway
            || facts.ifindex != self.facts.ifindex
            || facts.addresses != self.facts.addresses;
        self.facts = facts;
        changed
    }

    pub fn state(&self) -> LinkState {
        self.health.state()
    }

    /// Usable for policies. A WAN without targets is assumed online (mwan3).
    pub fn usable(&self) -> bool {
        if self.facts.carrier == Some(false) {
            return false;
        }
        match self.state() {
            LinkState::Online | LinkState::Disconnecting => true,
            // Before the first samples (or after a long silence) mwan3's
            // initial_state decides.
            LinkState::Unknown => self.config.initial_state == InitialState::Online,
            LinkState::Offline | LinkState::Connecting | LinkState::Disabled => false,
        }
    }

    pub fn score(&self) -> Option<f64> {
        self.quality.score()
    }

    fn record(&mut self, before: LinkState, now: Millis) -> Vec<Change> {
        let after = self.state();
        if after == before {
            return Vec::new();
        }
        self.state_since = now;
        vec![Change {
            from: before,
            to: after,
        }]
    }

    pub fn on_samples(&mut self, samples: &[Sample], now: Millis) -> Vec<Change> {
        let before = self.state();
        self.last_sample_at = Some(now);
        self.trouble = None;
        for s in samples {
            self.quality.observe(s);
            self.health.observe(s, &self.quality, now);
        }
        self.record(before, now)
    }

    /// Carrier from rtnetlink: loss is an immediate failover signal.
    pub fn on_carrier(&mut self, up: bool, now: Millis) -> Vec<Change> {
        let before = self.state();
        self.facts.carrier = Some(up);
        self.health.carrier(up, now);
        self.record(before, now)
    }

    /// Time passing: a silent tracker ages the WAN to unknown.
    pub fn tick(&mut self, now: Millis) -> Vec<Change> {
        let before = self.state();
        let heard = self.last_sample_at.unwrap_or(self.state_since);
        self.health.silence(now.saturating_sub(heard), now);
        self.record(before, now)
    }

    pub fn tracker_connected(&mut self, now: Millis) {
        self.tracker_connected = true;
        if self.last_sample_at.is_none() {
            self.last_sample_at = Some(now);
        }
    }

    pub fn tracker_disconnected(&mut self, _now: Millis) {
        self.tracker_connected = false;
    }

    pub fn set_trouble(&mut self, trouble: Option<String>) {
        self.trouble = trouble;
    }

    /// Interval and timeout the tracker should use now.
    pub fn tracker_settings(&self) -> Vec<ControllerMessage> {
        let (interval_ms, timeout_ms) = self.health.probe_timing(&self.quality);
        vec![
            ControllerMessage::SetInterval { interval_ms },
            ControllerMessage::SetTimeout { timeout_ms },
        ]
    }

    pub fn status(&self, now: Millis) -> InterfaceStatus {
        InterfaceStatus {
            name: self.config.name.clone(),
            device: self.config.device.clone(),
            state: state_name(self.state()).to_string(),
            state_age_s: now.saturating_sub(self.state_since) / 1000,
            latency_ms: self.quality.latency_ms(),
            jitter_ms: self.quality.jitter_ms(),
            loss_pct: self.quality.loss_pct(),
            score: self.quality.score(),
            tracker: TrackerStatus {
                pid: None,
                restarts: 0,
                uptime_s: None,
                connected: self.tracker_connected,
            },
        }
    }
}
