//! The resolved configuration: mwan3's schema with mwan3's defaults, plus our
//! documented extensions (docs/configuration.md). Produced by
//! [`super::load`]/[`super::parse`]; every field holds its effective value.

use std::net::IpAddr;

/// Durations in the config are kept in milliseconds so that the sub-second
/// extension (`interval '0.2'`) and mwan3's whole seconds share one type.
pub type DurationMs = u64;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// File the config came from (for messages and `mwanctl check`).
    pub source: String,
    pub globals: Globals,
    pub interfaces: Vec<Interface>,
    pub members: Vec<Member>,
    pub policies: Vec<Policy>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Globals {
    /// Bits of the fwmark mwan may use (mwan3 default 0x3F00).
    pub mmx_mask: u32,
    /// Extra routing tables whose routes are treated as connected networks.
    pub rt_table_lookup: Vec<u32>,
    pub logging: bool,
    pub loglevel: String,
    /// Source routing for traffic from a WAN's own address (mwan3 global, default off).
    pub source_routing: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Ipv4,
    Ipv6,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackMethod {
    Ping,
    Arping,
    Httping,
    NpingTcp,
    NpingUdp,
    NpingIcmp,
    NpingArp,
    Nslookup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialState {
    Online,
    Offline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlushEvent {
    Ifup,
    Ifdown,
    Connected,
    Disconnected,
}

/// wanmon-style quality scoring (extension). score = latency + jitter +
/// loss²/loss_divisor + bias; a link beyond `loss_limit_pct` scores as dead.
#[derive(Debug, Clone, PartialEq)]
pub struct QualitySettings {
    pub bias_ms: f64,
    pub loss_divisor: f64,
    pub loss_limit_pct: f64,
    /// EWMA weight of a new sample, 0 < smoothing <= 1.
    pub smoothing: f64,
}

/// Per-interface probe budget (extension, for metered links).
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeBudget {
    /// At most this many probes per minute over all targets.
    ProbesPerMinute(u32),
    /// At most this many bytes of probe traffic (both directions) per day.
    BytesPerDay(u64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Interface {
    pub name: String,
    pub enabled: bool,
    pub initial_state: InitialState,
    pub family: Family,
    pub track_method: TrackMethod,
    /// Targets as written (addresses or host names). Empty: assumed online.
    pub track_ip: Vec<String>,
    pub reliability: u32,
    pub count: u32,
    pub timeout: DurationMs,
    pub interval: DurationMs,
    pub failure_interval: DurationMs,
    pub recovery_interval: DurationMs,
    pub keep_failure_interval: bool,
    pub down: u32,
    pub up: u32,
    pub size: u32,
    pub max_ttl: u32,
    pub check_quality: bool,
    pub failure_latency_ms: u32,
    pub recovery_latency_ms: u32,
    pub failure_loss_pct: u32,
    pub recovery_loss_pct: u32,
    pub httping_ssl: bool,
    pub flush_conntrack: Vec<FlushEvent>,
    // Extensions.
    /// Kernel device, for hosts without netifd.
    pub device: Option<String>,
    /// Gateway override; learnt from the kernel when absent.
    pub gateway: Option<IpAddr>,
    pub quality: QualitySettings,
    pub probe_budget: Option<ProbeBudget>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub name: String,
    pub interface: String,
    pub metric: u32,
    pub weight: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastResort {
    Unreachable,
    Blackhole,
    /// Fall back to the main routing table.
    Default,
}

/// How a policy picks among its members.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyMode {
    /// mwan3: lowest metric tier of usable members, balanced by weight.
    Tiers,
    /// wanmon-style: the single best-scoring usable member (lowest wins).
    Score {
        /// A challenger must beat the current link by this many score points.
        hysteresis: f64,
        /// Minimum time a link must have been usable before it is chosen
        /// back (fail-back damping).
        min_stable_ms: DurationMs,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: String,
    pub use_member: Vec<String>,
    pub last_resort: LastResort,
    pub mode: PolicyMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    All,
    Tcp,
    Udp,
    Icmp,
    /// Any other protocol by number (mwan3 passes names/numbers to iptables).
    Number(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleFamily {
    Any,
    Ipv4,
    Ipv6,
}

/// An address or prefix from src_ip/dest_ip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

/// A port or an inclusive port range (`80`, `1024:65535`, `1024-65535`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyTarget {
    Named(String),
    /// mwan3 `default`: use the main routing table.
    Default,
    Unreachable,
    Blackhole,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Section name, or `@rule[N]` for anonymous sections.
    pub name: String,
    pub proto: Proto,
    /// Extra protocols when `proto` lists several (`'tcp udp'`).
    pub extra_protos: Vec<Proto>,
    pub src_ip: Vec<IpNet>,
    pub src_iface: Option<String>,
    pub src_port: Vec<PortRange>,
    pub dest_ip: Vec<IpNet>,
    pub dest_port: Vec<PortRange>,
    pub ipset: Option<String>,
    pub sticky: bool,
    /// Sticky timeout in seconds.
    pub timeout: u32,
    pub family: RuleFamily,
    pub logging: bool,
    pub use_policy: PolicyTarget,
}
