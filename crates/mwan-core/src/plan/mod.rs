//! The desired network plan (tables, routes, FIB rules, the mark layout the
//! nft table uses) and its diff against observed kernel state.
//!
//! Everything here is data and pure functions: mwand gathers [`WanFacts`]
//! from rtnetlink, resolves policies, calls [`build`], then [`diff`]s the plan
//! against what `mwan_netlink` dumped and applies the resulting [`Op`]s.
//! The layout (priorities, tables, marks) is described in docs/dataplane.md.
//!
//! # Resources we own
//! - Routing tables `table_base + slot` (one per WAN, one per policy).
//! - FIB rule priorities `rule_base + offset` (see [`prio`]).
//! - Every route and rule carries our rtnetlink protocol number
//!   ([`PlanSettings::protocol`]), so a dump tells ours from everyone else's.
//! - fwmark bits inside `mmx_mask` only; other tools keep the other bits.
//!
//! # Mark layout
//! The mask's bits form a small integer field ("slot"); slot 0 means "no mark
//! of ours". Each WAN gets two slots (tracker mark, pin mark), each policy
//! target that an nft rule needs gets one. Slots are STABLE across reloads:
//! [`allocate`] takes the previous [`Allocation`] and keeps every entry whose
//! owner still exists (conntrack entries carry pin marks across reloads).
//! A slot value is spread into the mask's bits the way mwan3's `id2mask` does,
//! so non-contiguous masks work.

//!
//! Modules: [`build`](build()) and its steps (build.rs), the mark layout and
//! slot allocation (marks.rs), kernel objects (objects.rs), FIB selectors of
//! a config rule (selectors.rs), table routes (routes.rs), [`diff`] (diff.rs)
//! and the nft table ([`nft`]).

mod build;
mod diff;
mod marks;
pub mod nft;
mod objects;
mod routes;
mod selectors;

pub use build::build;
pub use diff::{diff, teardown, Op};
pub use marks::{allocate, Allocation, MarkLayout, TargetKey, WanSlots};
pub use objects::{FibRule, KernelObjects, Nexthop, Route, RouteKey, RouteKind, RuleAction};
pub use routes::scale_weights;
pub(crate) use selectors::proto_number;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::{Config, Family, IpNet, LastResort, Rule};

/// rtnetlink `RTPROT_*` value we tag our routes and rules with. iproute2
/// prints it as a number; 77 ('M') is not used by any routing daemon listed
/// in iproute2's rt_protos.
pub const DEFAULT_PROTOCOL: u8 = 77;
/// First routing table id; WAN and policy tables are `table_base + slot`.
pub const DEFAULT_TABLE_BASE: u32 = 1000;
/// First FIB rule priority; below netifd's (10000+) and the kernel's main (32766).
pub const DEFAULT_RULE_BASE: u32 = 1000;
/// The kernel's main table.
pub const MAIN_TABLE: u32 = 254;
/// Highest slot we hand out; keeps each priority block 256 wide.
pub const MAX_SLOT: u32 = 255;
/// A FIB-expressible config rule that expands to more kernel rules than this
/// (cross product of addresses, protocols and ports) is steered by an nft
/// policy mark instead.
pub const MAX_FIB_EXPANSION: usize = 32;
/// Largest multipath nexthop weight the kernel accepts (rtnh_hops + 1).
pub const KERNEL_MAX_WEIGHT: u32 = 256;
/// IPv6 routes added with metric 0 are stored as 1024 by the kernel; we
/// always state it so that dumps compare equal.
pub const IPV6_DEFAULT_METRIC: u32 = 1024;

/// Rule priority offsets from [`PlanSettings::rule_base`], in evaluation order.
pub mod prio {
    /// `fwmark <tracker mark>/mask lookup <wan table>` + tracker slot: probes
    /// always leave through their WAN, above everything else of ours.
    pub const TRACKER: u32 = 0;
    /// `lookup main suppress_prefixlength 0`: connected and local networks
    /// (and any specific route in main) are never sent to a WAN by a policy.
    pub const CONNECTED: u32 = 300;
    /// `lookup <rt_table_lookup[i]> suppress_prefixlength 0`, + i.
    pub const TABLE_LOOKUP: u32 = 301;
    /// `from <WAN address> lookup <wan table>` + pin slot. Below the policy
    /// marks: router-originated traffic gets some WAN's source address from
    /// its first route lookup, and when the nft table then marks it for a
    /// policy the reroute must follow the mark (masquerade fixes the
    /// source). Above the config rules, and unconditional on the mark, so
    /// replies to a WAN whose pin rule is withdrawn (its tracker's probes,
    /// inbound connections) still pass strict rp_filter.
    pub const FROM_ADDRESS: u32 = 1400;
    /// `fwmark <pin mark>/mask lookup <wan table>` + pin slot; present only
    /// while the WAN is usable.
    pub const PIN: u32 = 700;
    /// `fwmark <policy mark>/mask lookup <policy table>` + policy slot.
    pub const POLICY_MARK: u32 = 1000;
    /// FIB-expressed config rules, + the rule's index in config order.
    pub const RULES: u32 = 2000;
}

/// Knobs of the layout; defaults documented in docs/dataplane.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanSettings {
    pub mmx_mask: u32,
    pub table_base: u32,
    pub rule_base: u32,
    pub protocol: u8,
}

impl PlanSettings {
    pub fn from_config(config: &Config) -> Self {
        PlanSettings {
            mmx_mask: config.globals.mmx_mask,
            table_base: DEFAULT_TABLE_BASE,
            rule_base: DEFAULT_RULE_BASE,
            protocol: DEFAULT_PROTOCOL,
        }
    }
}

// ---------------------------------------------------------------- inputs

/// An address on a WAN device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WanAddress {
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// IPv6 address still in duplicate address detection: it cannot source
    /// packets yet, so no `from` rule is installed for it.
    pub tentative: bool,
}

/// What the kernel (and netifd) tell about one WAN interface.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WanFacts {
    /// Kernel device name; empty when unknown.
    pub device: String,
    /// 0 when the device does not exist.
    pub ifindex: u32,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// Lower layer up (IFF_LOWER_UP / operstate); loss is a failover signal.
    pub carrier: bool,
    pub addresses: Vec<WanAddress>,
    pub gateway_v4: Option<Ipv4Addr>,
    /// May be link-local (fe80::/10); routes then always name the device.
    pub gateway_v6: Option<Ipv6Addr>,
    /// Main-table routes through this device other than default routes
    /// (connected subnets, static routes): mirrored into the WAN's table, as
    /// mwan3rtmon does. Any table/protocol fields are replaced.
    pub main_routes: Vec<Route>,
}

impl WanFacts {
    fn gateway(&self, family: Family) -> Option<IpAddr> {
        match family {
            Family::Ipv4 => self.gateway_v4.map(IpAddr::V4),
            Family::Ipv6 => self.gateway_v6.map(IpAddr::V6),
        }
    }

    fn has_address(&self, family: Family) -> bool {
        self.addresses
            .iter()
            .any(|a| family_of(a.addr) == family && !a.tentative)
    }

    /// Whether a default route through this WAN can be installed at all.
    pub fn routable(&self, family: Family) -> bool {
        if self.ifindex == 0 || !self.up {
            return false;
        }
        match family {
            // An IPv4 gateway must be on a connected subnet of ours.
            Family::Ipv4 => self.has_address(Family::Ipv4),
            // Link-local gateways work before global addresses finish DAD.
            Family::Ipv6 => true,
        }
    }
}

/// One configured WAN interface as the planner sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct WanInput {
    /// Config interface name (`wan`, `wanb6`, ...).
    pub interface: String,
    pub family: Family,
    pub facts: WanFacts,
    /// Health says traffic may use it. An unusable WAN keeps its table and
    /// tracker rule; its pin rule is withdrawn.
    pub usable: bool,
}

/// The resolved members of one policy (from `policy::resolve`).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRoutes {
    pub policy: String,
    /// (interface, mwan3 weight 1..=1000) of the active tier.
    pub active: Vec<(String, u32)>,
    pub last_resort: LastResort,
}

impl PolicyRoutes {
    /// Every member of every policy whose interface `usable` accepts, all
    /// metric tiers together: a stand-in for `policy::resolve` in tests and
    /// benchmarks (mwand uses the resolver's decisions).
    pub fn all_members(config: &Config, usable: impl Fn(&str) -> bool) -> Vec<PolicyRoutes> {
        config
            .policies
            .iter()
            .map(|p| PolicyRoutes {
                policy: p.name.clone(),
                active: p
                    .use_member
                    .iter()
                    .filter_map(|m| config.members.iter().find(|cm| &cm.name == m))
                    .filter(|m| usable(&m.interface))
                    .map(|m| (m.interface.clone(), m.weight))
                    .collect(),
                last_resort: p.last_resort,
            })
            .collect()
    }
}

/// The planner's view of a resolver decision: the active members with
/// their weights, and the configured last resort (a family with no active
/// member falls back to it).
impl From<&crate::policy::PolicyDecision> for PolicyRoutes {
    fn from(d: &crate::policy::PolicyDecision) -> Self {
        PolicyRoutes {
            policy: d.policy.clone(),
            active: d
                .active
                .iter()
                .map(|m| (m.interface.clone(), m.weight))
                .collect(),
            last_resort: d.configured_last_resort,
        }
    }
}

/// Everything [`build`] needs.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    pub config: &'a Config,
    pub settings: PlanSettings,
    pub wans: &'a [WanInput],
    pub policies: &'a [PolicyRoutes],
    /// Logical interface name -> kernel device, for `src_iface`.
    pub devices: &'a BTreeMap<String, String>,
    /// The main table's default routes (for `last_resort default`).
    pub main_defaults: &'a [Route],
    pub previous: &'a Allocation,
}

// ---------------------------------------------------------------- plan

/// One WAN in the plan: what the nft helper and status need.
#[derive(Debug, Clone, PartialEq)]
pub struct WanPlan {
    pub interface: String,
    pub family: Family,
    pub device: String,
    pub ifindex: u32,
    pub table: u32,
    pub slots: WanSlots,
    /// `layout.encode(slots.tracker)`: set by mwan-track with SO_MARK.
    pub tracker_mark: u32,
    /// `layout.encode(slots.pin)`: saved in the ct mark of connections that
    /// leave (postrouting oif) or arrive (prerouting iif) on this WAN.
    pub pin_mark: u32,
    pub usable: bool,
}

/// How one config rule is put into the kernel.
#[derive(Debug, Clone, PartialEq)]
pub enum Steering {
    /// FIB rules at priority `rule_base + prio::RULES + index` do it all.
    Fib,
    /// The nft table matches the rule and sets `mark` (in the mask) on
    /// packets without a mark of ours; a FIB rule `fwmark mark/mask` sends
    /// them to the target. `reasons` says why FIB rules could not.
    NftMark {
        mark: u32,
        reasons: Vec<&'static str>,
    },
}

/// One config rule, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct RulePlan {
    /// Index in config order.
    pub index: usize,
    pub rule: Rule,
    pub target: TargetKey,
    pub steering: Steering,
    /// Sticky timeout in seconds when the rule is sticky.
    pub sticky_timeout: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NetworkPlan {
    pub settings: PlanSettings,
    pub layout: MarkLayout,
    pub allocation: Allocation,
    pub wans: Vec<WanPlan>,
    /// Policy name -> its routing table.
    pub policy_tables: BTreeMap<String, u32>,
    /// Target -> mark, for targets nft rules mark traffic for.
    pub target_marks: BTreeMap<TargetKey, u32>,
    pub rules: Vec<RulePlan>,
    pub objects: KernelObjects,
    /// Things skipped, for the log and status (e.g. a rule naming an
    /// interface whose device is unknown).
    pub warnings: Vec<PlanWarning>,
    /// `mwanctl use WAN -- CMD`: the cgroup per WAN whose sockets leave by
    /// that WAN. Filled by mwand (it makes the cgroups), empty from `build`.
    pub use_cgroups: Vec<UseCgroup>,
}

/// A cgroup v2 whose processes' sockets all leave by one WAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UseCgroup {
    pub wan: String,
    /// Its depth below the cgroup2 root (`socket cgroupv2 level`).
    pub level: u32,
    /// Its path below the cgroup2 root, for the `nft -f` text.
    pub path: String,
    /// Its cgroup id (the kernel compares this).
    pub id: u64,
}

/// Something the plan had to leave out; the config itself was valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanWarning {
    /// The rule's `src_iface` has no kernel device (yet).
    SrcIfaceWithoutDevice { rule: String, src_iface: String },
    /// The rule names a policy the config does not have.
    PolicyMissing { rule: String, policy: String },
}

impl PlanWarning {
    /// Stable code, for grouping and counting (status, JSON).
    pub fn code(&self) -> &'static str {
        match self {
            PlanWarning::SrcIfaceWithoutDevice { .. } => "src-iface-without-device",
            PlanWarning::PolicyMissing { .. } => "policy-missing",
        }
    }
}

impl fmt::Display for PlanWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanWarning::SrcIfaceWithoutDevice { rule, src_iface } => write!(
                f,
                "rule '{rule}': src_iface '{src_iface}' has no known device; rule skipped until it appears"
            ),
            PlanWarning::PolicyMissing { rule, policy } => {
                write!(f, "rule '{rule}': policy '{policy}' does not exist; rule skipped")
            }
        }
    }
}

impl NetworkPlan {
    /// Every table id this plan may own (WAN and policy tables).
    pub fn owned_tables(&self) -> BTreeSet<u32> {
        self.wans
            .iter()
            .map(|w| w.table)
            .chain(self.policy_tables.values().copied())
            .collect()
    }

    /// The planned WAN of a config interface.
    pub fn wan(&self, interface: &str) -> Option<&WanPlan> {
        self.wans.iter().find(|w| w.interface == interface)
    }
}

#[derive(Clone, PartialEq, Eq)]
pub enum PlanError {
    MaskTooSmall {
        mask: u32,
    },
    OutOfMarks {
        mask: u32,
        capacity: u32,
        needed: usize,
    },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::MaskTooSmall { mask } => write!(
                f,
                "globals option 'mmx_mask' {mask:#x} has fewer than 2 bits; expected a mask like 0x3F00"
            ),
            PlanError::OutOfMarks { mask, capacity, needed } => write!(
                f,
                "mmx_mask {mask:#x} gives {capacity} mark values but {needed} are needed \
                 (2 per interface, 1 per policy and per nft-marked target); widen mmx_mask"
            ),
        }
    }
}

crate::debug_as_display!(PlanError);

impl std::error::Error for PlanError {}

pub fn family_of(addr: IpAddr) -> Family {
    match addr {
        IpAddr::V4(_) => Family::Ipv4,
        IpAddr::V6(_) => Family::Ipv6,
    }
}

/// The prefix with host bits cleared (the kernel stores it so).
pub fn normalize(net: IpNet) -> IpNet {
    let addr = match net.addr {
        IpAddr::V4(a) => {
            let len = net.prefix_len.min(32) as u32;
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let len = net.prefix_len.min(128) as u32;
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    };
    IpNet {
        addr,
        prefix_len: net.prefix_len,
    }
}

pub fn default_net(family: Family) -> IpNet {
    match family {
        Family::Ipv4 => IpNet {
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            prefix_len: 0,
        },
        Family::Ipv6 => IpNet {
            addr: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            prefix_len: 0,
        },
    }
}

pub(crate) fn default_metric(family: Family) -> u32 {
    match family {
        Family::Ipv4 => 0,
        Family::Ipv6 => IPV6_DEFAULT_METRIC,
    }
}

pub(crate) const FAMILIES: [Family; 2] = [Family::Ipv4, Family::Ipv6];

#[cfg(test)]
mod tests;
