//! Control socket requests and replies (mwanctl <-> mwand). The same status
//! shapes are served as JSON by `mwanctl --json` and over ubus; the schema
//! is documented in docs/status-json.md.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    Status,
    Interfaces,
    Policies,
    Rules,
    Connected,
    /// Restart one WAN's tracker.
    Restart {
        interface: String,
    },
    Reload,
    /// Force traffic onto one WAN: for every policy, or for one policy.
    Override {
        interface: String,
        policy: Option<String>,
        /// Also written to the config (globals `override`): survives a reboot.
        #[serde(default)]
        persistent: bool,
    },
    ClearOverride {
        policy: Option<String>,
    },
    Explain {
        policy: Option<String>,
    },
    /// Stop tracking and using one WAN until [`Request::Resume`] (mwan3's
    /// `ifdown`: netifd keeps the interface up).
    Pause {
        interface: String,
    },
    Resume {
        interface: String,
    },
    /// The last hour per WAN and the event timeline from second `since`
    /// of mwand's clock on (0: all of it; docs/dashboard.md).
    History {
        since: u64,
    },
    /// The config mwand runs, as UCI (`mwanctl config --write`): in
    /// automatic mode the one it built, else an error naming the file.
    ConfigText,
}

/// The `reason` of a WAN stopped by [`Request::Pause`].
pub const PAUSED_REASON: &str = "paused (mwanctl pause / mwan3 ifdown)";

// One reply is built per request and sent at once, never stored in bulk:
// boxing the large Status would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    Status(Status),
    Interfaces(Vec<InterfaceStatus>),
    Policies(Vec<PolicyStatus>),
    Rules(Vec<RuleStatus>),
    Connected(Vec<String>),
    Explain(Vec<PolicyExplanation>),
    /// `History::json_since` as mwand built it: already JSON, passed
    /// through as is (the page, ubus and `mwanctl --json` show the same).
    History {
        json: String,
    },
    /// Success with a human-readable message.
    Done {
        message: String,
    },
    Error {
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub interfaces: Vec<InterfaceStatus>,
    pub policies: Vec<PolicyStatus>,
    #[serde(rename = "override")]
    pub override_: Option<OverrideStatus>,
    /// Seconds since mwand started.
    pub uptime_s: u64,
    pub config: String,
    /// Last data plane error, if the kernel refused something.
    pub dataplane_error: Option<String>,
    /// Every override in force: the global one first, then the per-policy
    /// ones in config order (`override` above shows only one of them).
    #[serde(default)]
    pub overrides: Vec<OverrideStatus>,
    /// What the data plane did since start (docs/status-json.md).
    #[serde(default)]
    pub dataplane: DataplaneCounters,
    /// The class of `dataplane_error`, so a script can tell a kernel
    /// refusal from a missing kernel feature or a bug (docs/status-json.md).
    #[serde(default)]
    pub dataplane_error_kind: Option<DataplaneErrorKind>,
    /// What mwand's event loop saw that it did not expect, since start.
    #[serde(default)]
    pub event_loop: EventLoopCounters,
    /// A config that is accepted but surely not meant, said where scripts
    /// and dashboards look: today only a config with no interface, which
    /// removes all multi-WAN routing (docs/status-json.md).
    #[serde(default)]
    pub config_warning: Option<String>,
}

/// Classes of data plane errors (docs/status-json.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataplaneErrorKind {
    /// The kernel refused a change (routes, rules, nft table, conntrack):
    /// retried on the next reconcile.
    KernelRefused,
    /// The kernel lacks nf_tables support for what the table needs.
    NftablesMissing,
    /// Reading the kernel's state failed (a netlink socket error).
    KernelUnreadable,
    /// The core could not build the plan: a bug, please report it.
    Plan,
}

impl DataplaneErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DataplaneErrorKind::KernelRefused => "kernel_refused",
            DataplaneErrorKind::NftablesMissing => "nftables_missing",
            DataplaneErrorKind::KernelUnreadable => "kernel_unreadable",
            DataplaneErrorKind::Plan => "plan",
        }
    }
}

/// Counters of mwand's event loop since start: events and peers it did not
/// expect (each is also logged when it happens).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLoopCounters {
    /// Readiness events for a token nothing owns (a connection closed
    /// earlier in the same batch of events, or a bug).
    pub unexpected_events: u64,
    /// Control connections mwand closed because it could not read a request.
    pub dropped_control_peers: u64,
    /// Control peers refused at accept (uid not allowed).
    pub refused_control_peers: u64,
    /// Tracker connections mwand dropped: unreadable data, data before
    /// Hello, a second Hello, a tracker it does not run, replaced by a newer
    /// connection of the same tracker, or hung.
    pub dropped_tracker_peers: u64,
}

/// Counters of the data plane's work since mwand started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataplaneCounters {
    /// Full reads of our routes and rules from the kernel: at start, after
    /// someone else changed them, after a link/address event or a failure.
    /// A failover alone does not read.
    pub route_dumps: u64,
    /// Routes and rules put back after someone else removed them.
    pub restored_objects: u64,
    /// Times table `inet mwan` was installed or put back in one transaction.
    pub nft_installs: u64,
    /// WANs whose pinned connections are still being flushed (entries left,
    /// e.g. offloaded flows): retried until none remain.
    pub conntrack_pending: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterfaceStatus {
    pub name: String,
    pub device: Option<String>,
    /// online | offline | connecting | disconnecting | unknown | disabled
    pub state: String,
    /// Seconds in the current state.
    pub state_age_s: u64,
    pub latency_ms: Option<f64>,
    pub jitter_ms: Option<f64>,
    pub loss_pct: Option<f64>,
    pub score: Option<f64>,
    pub tracker: TrackerStatus,
    /// Why the interface is in `state` when that is not the probes' verdict:
    /// "disabled in config", "no device", "no device eth9", "no carrier",
    /// "down in netifd". None when the tracker's results decide.
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackerStatus {
    pub pid: Option<u32>,
    pub restarts: u32,
    pub uptime_s: Option<u64>,
    pub connected: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyStatus {
    pub name: String,
    pub active: Vec<ActiveMemberStatus>,
    /// unreachable | blackhole | default when no member is usable.
    pub last_resort: Option<String>,
    /// The quality ceilings that keep members out of this policy, or its
    /// fallback when none meets them ("wan1 jitter 48 ms > voice's 30 ms
    /// for 5.0 s"); empty without ceilings.
    #[serde(default)]
    pub ceilings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveMemberStatus {
    pub interface: String,
    pub weight: u32,
    /// Share of new flows, in percent.
    pub share_pct: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleStatus {
    pub name: String,
    pub policy: String,
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverrideStatus {
    pub interface: String,
    /// None: all policies.
    pub policy: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyExplanation {
    pub policy: String,
    pub lines: Vec<String>,
}
