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
    /// `option override WAN`: the manual override of every policy that
    /// `mwanctl override WAN --persistent` wrote, applied at boot.
    pub override_: Option<String>,
    /// `option automatic '1'`: mwand ignores the other sections and builds
    /// its config from the default routes (`mwan_core::auto`).
    pub automatic: bool,
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
    /// Time constant τ of the exponentially time-weighted averages
    /// (`quality_time_constant`, ms; 0 = no smoothing). A sample's weight
    /// decays as exp(-age/τ), whatever the probe rate (crate::quality).
    pub time_constant_ms: DurationMs,
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

/// A member whose interface is defined (members naming an undefined
/// interface are dropped at load time, as mwan3 ignores them).
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
    /// Member names, each defined and with a defined interface (dangling
    /// entries are dropped with a warning at load time).
    pub use_member: Vec<String>,
    pub last_resort: LastResort,
    pub mode: PolicyMode,
    /// Quality a member must show to carry this policy (none by default).
    pub ceilings: QualityCeilings,
}

/// Which measured quality a ceiling bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum QualityKind {
    Latency,
    Jitter,
    Loss,
}

impl QualityKind {
    pub const ALL: [QualityKind; 3] =
        [QualityKind::Latency, QualityKind::Jitter, QualityKind::Loss];

    /// As in the option names (`max_latency`) and in explain.
    pub fn as_str(self) -> &'static str {
        match self {
            QualityKind::Latency => "latency",
            QualityKind::Jitter => "jitter",
            QualityKind::Loss => "loss",
        }
    }

    /// Unit of the values, for explain: ms, or % for loss.
    pub fn unit(self) -> &'static str {
        match self {
            QualityKind::Loss => "%",
            _ => " ms",
        }
    }
}

/// One quality ceiling of a policy: a member whose value stays above
/// `limit` for `min_stable_ms` stops carrying the policy; it carries it
/// again once the value stays at or below `limit - hysteresis` as long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ceiling {
    pub limit: f64,
    pub hysteresis: f64,
    pub min_stable_ms: DurationMs,
}

/// What a policy does when no usable member meets its ceilings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CeilingFallback {
    /// The usable member closest to the ceilings carries it.
    #[default]
    Best,
    /// The policy's `last_resort`.
    LastResort,
}

/// A policy's quality ceilings, indexed by [`QualityKind`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct QualityCeilings {
    pub latency: Option<Ceiling>,
    pub jitter: Option<Ceiling>,
    pub loss: Option<Ceiling>,
    pub fallback: CeilingFallback,
}

impl QualityCeilings {
    pub fn get(&self, kind: QualityKind) -> Option<Ceiling> {
        match kind {
            QualityKind::Latency => self.latency,
            QualityKind::Jitter => self.jitter,
            QualityKind::Loss => self.loss,
        }
    }

    pub fn any(&self) -> bool {
        QualityKind::ALL.iter().any(|k| self.get(*k).is_some())
    }
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

/// An address under an arbitrary bit mask: matches when
/// `packet_addr & mask == addr & mask`. Only produced for netmasks that are
/// not a prefix (e.g. `0.0.0.1`); contiguous netmasks become [`IpNet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MaskedIp {
    pub addr: IpAddr,
    pub mask: IpAddr,
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
    /// src_ip entries written with a non-contiguous netmask (mwan3's
    /// `0.0.0.0/0.0.0.1` parity trick). A packet's source matches the rule
    /// when it is in `src_ip` OR matches one of these; both empty = any.
    pub src_ip_masked: Vec<MaskedIp>,
    /// Same for dest_ip.
    pub dest_ip_masked: Vec<MaskedIp>,
    pub ipset: Option<String>,
    pub sticky: bool,
    /// Sticky timeout in seconds.
    pub timeout: u32,
    /// Effective family: a family-any rule with addresses has theirs (mwan3
    /// installs it only for that family).
    pub family: RuleFamily,
    /// Log matches; mwan3 logs only when `Globals::logging` is on too.
    pub logging: bool,
    pub use_policy: PolicyTarget,
}

// Defaults, in one place so the parser, the docs and other crates' tests agree.

impl Default for Globals {
    fn default() -> Self {
        Globals {
            mmx_mask: 0x3F00,
            rt_table_lookup: Vec::new(),
            logging: false,
            loglevel: "notice".to_string(),
            source_routing: false,
            override_: None,
            automatic: false,
        }
    }
}

impl Default for QualitySettings {
    /// The values whose swap rate between equally noisy links the core's
    /// simulations bound (docs/decisions.md); one source of truth.
    fn default() -> Self {
        let r = crate::health::RECOMMENDED_TRACKING;
        QualitySettings {
            bias_ms: r.bias_ms,
            loss_divisor: r.loss_divisor,
            loss_limit_pct: r.loss_limit_pct,
            time_constant_ms: crate::quality::DEFAULT_TIME_CONSTANT_MS,
        }
    }
}

/// Score mode defaults: a challenger must be this many points (ms) better,
/// and a link must have been usable this long before traffic fails back to
/// it. Taken from the core's analysed recommendation (docs/decisions.md).
/// Targets one tracker probes at most (mwan-track's `--target` limit, its
/// args.rs): more is a config error, not a tracker that exits forever.
pub const MAX_TRACK_IP: usize = 64;
pub const DEFAULT_SCORE_HYSTERESIS: f64 = crate::health::RECOMMENDED_TRACKING.hysteresis;
pub const DEFAULT_SCORE_MIN_STABLE_MS: DurationMs =
    crate::health::RECOMMENDED_TRACKING.min_stable_ms;

impl Interface {
    /// Mean time between two probes of this interface, all targets together
    /// (interval / (targets × count); one target if it has none), in ms.
    pub fn probe_spacing_ms(&self) -> f64 {
        self.interval as f64 / (self.track_ip.len().max(1) as f64 * f64::from(self.count.max(1)))
    }

    /// The quality settings this interface gets when none is configured
    /// (the default time constant depends on its probe spacing).
    pub fn default_quality(&self) -> QualitySettings {
        QualitySettings {
            time_constant_ms: crate::quality::default_time_constant(self.probe_spacing_ms()),
            ..QualitySettings::default()
        }
    }

    /// An interface with every option at mwan3's default.
    pub fn new(name: &str) -> Self {
        Interface {
            name: name.to_string(),
            enabled: false,
            initial_state: InitialState::Online,
            family: Family::Ipv4,
            track_method: TrackMethod::Ping,
            track_ip: Vec::new(),
            reliability: 1,
            count: 1,
            timeout: 4_000,
            interval: 10_000,
            failure_interval: 10_000,
            recovery_interval: 10_000,
            keep_failure_interval: false,
            down: 5,
            up: 5,
            size: 56,
            max_ttl: 60,
            check_quality: false,
            failure_latency_ms: 1000,
            recovery_latency_ms: 500,
            failure_loss_pct: 40,
            recovery_loss_pct: 10,
            httping_ssl: false,
            flush_conntrack: Vec::new(),
            device: None,
            gateway: None,
            quality: QualitySettings::default(),
            probe_budget: None,
        }
    }
}

impl Member {
    /// A member with mwan3's defaults (metric 1, weight 1).
    pub fn new(name: &str, interface: &str) -> Self {
        Member {
            name: name.to_string(),
            interface: interface.to_string(),
            metric: 1,
            weight: 1,
        }
    }
}

impl Policy {
    /// A policy with no members, last_resort unreachable, tier mode.
    pub fn new(name: &str) -> Self {
        Policy {
            name: name.to_string(),
            use_member: Vec::new(),
            last_resort: LastResort::Unreachable,
            mode: PolicyMode::Tiers,
            ceilings: QualityCeilings::default(),
        }
    }
}

impl Rule {
    /// A rule matching everything (proto all, any family), not sticky
    /// (timeout 600 s as mwan3), sending traffic to `use_policy`.
    pub fn new(name: &str, use_policy: PolicyTarget) -> Self {
        Rule {
            name: name.to_string(),
            proto: Proto::All,
            extra_protos: Vec::new(),
            src_ip: Vec::new(),
            src_iface: None,
            src_port: Vec::new(),
            dest_ip: Vec::new(),
            dest_port: Vec::new(),
            src_ip_masked: Vec::new(),
            dest_ip_masked: Vec::new(),
            ipset: None,
            sticky: false,
            timeout: 600,
            family: RuleFamily::Any,
            logging: false,
            use_policy,
        }
    }
}

// The words the config uses for each enum, in one place: the parser accepts
// exactly these, render/summary print them, other crates (tracker command
// lines, status) can use them instead of repeating the table.

macro_rules! config_words {
    ($ty:ty { $($variant:ident => $word:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value with its config word, in documentation order.
            pub const WORDS: &'static [(&'static str, $ty)] = &[$(($word, <$ty>::$variant)),+];

            /// The word the config uses for this value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(<$ty>::$variant => $word),+
                }
            }
        }
    };
}

config_words!(Family { Ipv4 => "ipv4", Ipv6 => "ipv6" });
config_words!(TrackMethod {
    Ping => "ping",
    Arping => "arping",
    Httping => "httping",
    NpingTcp => "nping-tcp",
    NpingUdp => "nping-udp",
    NpingIcmp => "nping-icmp",
    NpingArp => "nping-arp",
    Nslookup => "nslookup",
});
config_words!(InitialState { Online => "online", Offline => "offline" });
config_words!(FlushEvent {
    Ifup => "ifup",
    Ifdown => "ifdown",
    Connected => "connected",
    Disconnected => "disconnected",
});
config_words!(LastResort { Unreachable => "unreachable", Blackhole => "blackhole", Default => "default" });
config_words!(RuleFamily { Any => "any", Ipv4 => "ipv4", Ipv6 => "ipv6" });

impl PolicyTarget {
    /// The word or policy name `use_policy` holds.
    pub fn as_str(&self) -> &str {
        match self {
            PolicyTarget::Named(name) => name,
            PolicyTarget::Default => "default",
            PolicyTarget::Unreachable => "unreachable",
            PolicyTarget::Blackhole => "blackhole",
        }
    }
}

impl Config {
    /// The interface section named `name`.
    pub fn interface(&self, name: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.name == name)
    }

    /// The member section named `name`.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    /// The policy section named `name`.
    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name == name)
    }
}
