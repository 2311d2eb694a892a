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
    },
    ClearOverride {
        policy: Option<String>,
    },
    Explain {
        policy: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    Status(Status),
    Interfaces(Vec<InterfaceStatus>),
    Policies(Vec<PolicyStatus>),
    Rules(Vec<RuleStatus>),
    Connected(Vec<String>),
    Explain(Vec<PolicyExplanation>),
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
