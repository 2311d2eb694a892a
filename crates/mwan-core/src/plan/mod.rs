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

pub mod nft;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::{
    Config, Family, IpNet, LastResort, PolicyTarget, PortRange, Proto, Rule, RuleFamily,
};

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

/// The fwmark bits we own and how slot numbers map onto them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkLayout {
    pub mask: u32,
}

impl MarkLayout {
    pub fn new(mask: u32) -> Result<Self, PlanError> {
        if mask.count_ones() < 2 {
            return Err(PlanError::MaskTooSmall { mask });
        }
        Ok(MarkLayout { mask })
    }

    /// Number of usable slots (1..=capacity).
    pub fn capacity(&self) -> u32 {
        let bits = self.mask.count_ones();
        let values = if bits >= 32 {
            u32::MAX
        } else {
            (1u32 << bits) - 1
        };
        values.min(MAX_SLOT)
    }

    /// Spread a slot's bits over the mask's bits, lowest first.
    pub fn encode(&self, slot: u32) -> u32 {
        let mut mark = 0;
        let mut bit = 0;
        for pos in 0..32 {
            if self.mask & (1 << pos) != 0 {
                if slot & (1 << bit) != 0 {
                    mark |= 1 << pos;
                }
                bit += 1;
            }
        }
        mark
    }

    /// Inverse of [`MarkLayout::encode`]; bits outside the mask are ignored.
    pub fn decode(&self, mark: u32) -> u32 {
        let mut slot = 0;
        let mut bit = 0;
        for pos in 0..32 {
            if self.mask & (1 << pos) != 0 {
                if mark & (1 << pos) != 0 {
                    slot |= 1 << bit;
                }
                bit += 1;
            }
        }
        slot
    }
}

/// Slots of one WAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WanSlots {
    /// The tracker sets this WAN's tracker mark on its probes.
    pub tracker: u32,
    /// ct mark of connections pinned to this WAN; also its table slot.
    pub pin: u32,
}

/// Key of a policy-like target in [`Allocation::targets`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TargetKey {
    Policy(String),
    /// mwan3 `default`: the main table.
    Main,
    Unreachable,
    Blackhole,
}

impl TargetKey {
    pub fn from_config(target: &PolicyTarget) -> Self {
        match target {
            PolicyTarget::Named(name) => TargetKey::Policy(name.clone()),
            PolicyTarget::Default => TargetKey::Main,
            PolicyTarget::Unreachable => TargetKey::Unreachable,
            PolicyTarget::Blackhole => TargetKey::Blackhole,
        }
    }
}

impl fmt::Display for TargetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetKey::Policy(name) => write!(f, "policy '{name}'"),
            TargetKey::Main => f.write_str("default (main table)"),
            TargetKey::Unreachable => f.write_str("unreachable"),
            TargetKey::Blackhole => f.write_str("blackhole"),
        }
    }
}

/// Slot assignment; feed the previous one back into [`allocate`] on reload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allocation {
    /// By config interface name.
    pub wans: BTreeMap<String, WanSlots>,
    /// Every policy gets a slot (its table); other targets only when an nft
    /// rule marks traffic for them.
    pub targets: BTreeMap<TargetKey, u32>,
}

impl Allocation {
    fn used(&self) -> BTreeSet<u32> {
        let mut used: BTreeSet<u32> = self.targets.values().copied().collect();
        for w in self.wans.values() {
            used.insert(w.tracker);
            used.insert(w.pin);
        }
        used
    }
}

/// Assign slots: entries of `previous` whose owner still exists keep theirs,
/// new owners get the lowest free slots, in config order.
pub fn allocate(
    wans: &[&str],
    targets: &[TargetKey],
    previous: &Allocation,
    layout: MarkLayout,
) -> Result<Allocation, PlanError> {
    let capacity = layout.capacity();
    let mut next = Allocation::default();
    for name in wans {
        if let Some(s) = previous.wans.get(*name) {
            if s.tracker <= capacity && s.pin <= capacity {
                next.wans.insert(name.to_string(), *s);
            }
        }
    }
    for key in targets {
        if let Some(s) = previous.targets.get(key) {
            if *s <= capacity {
                next.targets.insert(key.clone(), *s);
            }
        }
    }
    let mut used = next.used();
    let needed = wans.iter().filter(|w| !next.wans.contains_key(**w)).count() * 2
        + targets
            .iter()
            .filter(|t| !next.targets.contains_key(*t))
            .count();
    let free: Vec<u32> = (1..=capacity).filter(|s| !used.contains(s)).collect();
    if free.len() < needed {
        return Err(PlanError::OutOfMarks {
            mask: layout.mask,
            capacity,
            needed: used.len() + needed,
        });
    }
    let mut free = free.into_iter();
    let mut take = |used: &mut BTreeSet<u32>| {
        let s = free.next().expect("counted above");
        used.insert(s);
        s
    };
    for name in wans {
        if !next.wans.contains_key(*name) {
            let tracker = take(&mut used);
            let pin = take(&mut used);
            next.wans
                .insert(name.to_string(), WanSlots { tracker, pin });
        }
    }
    for key in targets {
        if !next.targets.contains_key(key) {
            let s = take(&mut used);
            next.targets.insert(key.clone(), s);
        }
    }
    Ok(next)
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

// ---------------------------------------------------------------- kernel objects

/// One nexthop of a (multipath) route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Nexthop {
    pub ifindex: u32,
    pub gateway: Option<IpAddr>,
    /// Kernel weight, 1..=256; 1 for single-path routes.
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteKind {
    /// Forward via these nexthops (sorted; more than one means multipath).
    Unicast(Vec<Nexthop>),
    Unreachable,
    Blackhole,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    pub family: Family,
    pub table: u32,
    /// Destination prefix, host bits zero.
    pub dst: IpNet,
    pub metric: u32,
    pub kind: RouteKind,
    /// Preferred source (IPv4 mirrors only).
    pub prefsrc: Option<IpAddr>,
    /// Link scope (a connected route without gateway); universe otherwise.
    pub scope_link: bool,
}

/// Identity of a route in the kernel (what REPLACE matches on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteKey {
    pub family: Family,
    pub table: u32,
    pub dst: IpNet,
    pub metric: u32,
}

impl Route {
    pub fn key(&self) -> RouteKey {
        RouteKey {
            family: self.family,
            table: self.table,
            dst: self.dst,
            metric: self.metric,
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fam = match self.family {
            Family::Ipv4 => "-4",
            Family::Ipv6 => "-6",
        };
        match &self.kind {
            RouteKind::Unreachable => write!(f, "{fam} unreachable")?,
            RouteKind::Blackhole => write!(f, "{fam} blackhole")?,
            RouteKind::Unicast(_) => write!(f, "{fam}")?,
        }
        write!(
            f,
            " {}/{} table {} metric {}",
            self.dst.addr, self.dst.prefix_len, self.table, self.metric
        )?;
        if let RouteKind::Unicast(hops) = &self.kind {
            for h in hops {
                if hops.len() > 1 {
                    f.write_str(" nexthop")?;
                }
                if let Some(gw) = h.gateway {
                    write!(f, " via {gw}")?;
                }
                write!(f, " ifindex {}", h.ifindex)?;
                if hops.len() > 1 {
                    write!(f, " weight {}", h.weight)?;
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleAction {
    /// Look up a table; `suppress_prefixlen` ignores routes with a prefix
    /// this short or shorter (0: ignore default routes).
    Lookup {
        table: u32,
        suppress_prefixlen: Option<u8>,
    },
    Unreachable,
    Blackhole,
}

/// A FIB rule, field for field what the kernel stores and dumps.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FibRule {
    pub family: Family,
    pub priority: u32,
    pub src: Option<IpNet>,
    pub dst: Option<IpNet>,
    /// Input device name (`iif`).
    pub iif: Option<String>,
    /// (mark, mask)
    pub fwmark: Option<(u32, u32)>,
    pub ipproto: Option<u8>,
    pub sport: Option<PortRange>,
    pub dport: Option<PortRange>,
    pub action: RuleAction,
}

impl FibRule {
    /// A rule matching everything, with this priority and action.
    pub fn new(family: Family, priority: u32, action: RuleAction) -> Self {
        FibRule {
            family,
            priority,
            src: None,
            dst: None,
            iif: None,
            fwmark: None,
            ipproto: None,
            sport: None,
            dport: None,
            action,
        }
    }
}

impl fmt::Display for FibRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fam = match self.family {
            Family::Ipv4 => "-4",
            Family::Ipv6 => "-6",
        };
        write!(f, "{fam} pref {}", self.priority)?;
        if let Some(n) = self.src {
            write!(f, " from {}/{}", n.addr, n.prefix_len)?;
        }
        if let Some(n) = self.dst {
            write!(f, " to {}/{}", n.addr, n.prefix_len)?;
        }
        if let Some(i) = &self.iif {
            write!(f, " iif {i}")?;
        }
        if let Some((m, k)) = self.fwmark {
            write!(f, " fwmark {m:#x}/{k:#x}")?;
        }
        if let Some(p) = self.ipproto {
            write!(f, " ipproto {p}")?;
        }
        if let Some(p) = self.sport {
            write!(f, " sport {}-{}", p.first, p.last)?;
        }
        if let Some(p) = self.dport {
            write!(f, " dport {}-{}", p.first, p.last)?;
        }
        match self.action {
            RuleAction::Lookup {
                table,
                suppress_prefixlen,
            } => {
                write!(f, " lookup {table}")?;
                if let Some(s) = suppress_prefixlen {
                    write!(f, " suppress_prefixlength {s}")?;
                }
                Ok(())
            }
            RuleAction::Unreachable => f.write_str(" unreachable"),
            RuleAction::Blackhole => f.write_str(" blackhole"),
        }
    }
}

/// Routes and rules: what [`diff`] compares. Both lists are sorted and free
/// of duplicates in a built plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelObjects {
    pub routes: Vec<Route>,
    pub rules: Vec<FibRule>,
}

impl KernelObjects {
    /// Sort into a canonical order and drop duplicates (routes by key, the
    /// first one wins; rules by equality).
    pub fn sorted(mut routes: Vec<Route>, mut rules: Vec<FibRule>) -> Self {
        routes.sort_by_key(route_order);
        routes.dedup_by(|a, b| a.key() == b.key());
        rules.sort_by_cached_key(|r| (r.priority, family_order(r.family), r.to_string()));
        rules.dedup();
        KernelObjects { routes, rules }
    }
}

fn nexthop_order(h: &Nexthop) -> (u32, Option<u128>) {
    let gw = h.gateway.map(|g| match g {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    });
    (h.ifindex, gw)
}

fn family_order(f: Family) -> u8 {
    match f {
        Family::Ipv4 => 4,
        Family::Ipv6 => 6,
    }
}

fn net_order(n: &IpNet) -> (u128, u8) {
    let bits = match n.addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    };
    (bits, n.prefix_len)
}

fn route_order(r: &Route) -> (u8, u32, (u128, u8), u32) {
    (family_order(r.family), r.table, net_order(&r.dst), r.metric)
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
    pub warnings: Vec<String>,
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

#[derive(Debug, Clone, PartialEq, Eq)]
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

fn default_metric(family: Family) -> u32 {
    match family {
        Family::Ipv4 => 0,
        Family::Ipv6 => IPV6_DEFAULT_METRIC,
    }
}

const FAMILIES: [Family; 2] = [Family::Ipv4, Family::Ipv6];

/// Scale mwan3 weights (1..=1000) to kernel nexthop weights (1..=256).
///
/// Weights are first divided by their greatest common divisor, which keeps
/// every ratio exact whenever the reduced weights fit (3:1, 10:20:30,
/// 500:250). Otherwise each weight becomes `round(w * 256 / max)`, at least 1:
/// the largest member gets 256 and every ratio is off by at most half a
/// step in 256 (1000:999 stays within 0.4 %; 1000:1 becomes 256:1).
pub fn scale_weights(weights: &[u32]) -> Vec<u32> {
    let weights: Vec<u32> = weights.iter().map(|w| (*w).max(1)).collect();
    let g = weights.iter().copied().fold(0, gcd);
    if g == 0 {
        return weights;
    }
    let reduced: Vec<u32> = weights.iter().map(|w| w / g).collect();
    let max = reduced.iter().copied().max().unwrap_or(1);
    if max <= KERNEL_MAX_WEIGHT {
        return reduced;
    }
    reduced
        .iter()
        .map(|w| {
            let scaled = (u64::from(*w) * u64::from(KERNEL_MAX_WEIGHT) + u64::from(max) / 2)
                / u64::from(max);
            (scaled as u32).clamp(1, KERNEL_MAX_WEIGHT)
        })
        .collect()
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn proto_number(proto: Proto, family: Family) -> Option<u8> {
    match proto {
        Proto::All => None,
        Proto::Tcp => Some(6),
        Proto::Udp => Some(17),
        Proto::Icmp => Some(match family {
            Family::Ipv4 => 1,
            Family::Ipv6 => 58,
        }),
        Proto::Number(n) => Some(n),
    }
}

fn rule_families(rule: &Rule) -> Vec<Family> {
    let allowed = |f: Family| match rule.family {
        RuleFamily::Any => true,
        RuleFamily::Ipv4 => f == Family::Ipv4,
        RuleFamily::Ipv6 => f == Family::Ipv6,
    };
    FAMILIES
        .into_iter()
        .filter(|f| allowed(*f))
        // A rule listing addresses applies to the families of its addresses.
        .filter(|f| rule.src_ip.is_empty() || rule.src_ip.iter().any(|n| family_of(n.addr) == *f))
        .filter(|f| rule.dest_ip.is_empty() || rule.dest_ip.iter().any(|n| family_of(n.addr) == *f))
        .collect()
}

fn options<T: Copy>(list: &[T]) -> Vec<Option<T>> {
    if list.is_empty() {
        vec![None]
    } else {
        list.iter().copied().map(Some).collect()
    }
}

/// A port list as FIB rule selectors (None = any port), or None when the
/// kernel cannot hold it: `fib_rule_port_range_valid()` refuses a range
/// starting at 0 or ending at 65535. A range covering 1..=65535 is any port.
fn fib_ports(list: &[PortRange]) -> Option<Vec<Option<PortRange>>> {
    if list.iter().any(|p| p.first <= 1 && p.last == u16::MAX) {
        return Some(vec![None]);
    }
    if list.iter().any(|p| p.first == 0 || p.last == u16::MAX) {
        return None;
    }
    Some(options(list))
}

/// The FIB rules equivalent to a config rule (without priority/action), or
/// why none can express it.
fn fib_selectors(
    rule: &Rule,
    devices: &BTreeMap<String, String>,
) -> Result<Vec<FibRule>, Vec<&'static str>> {
    let mut reasons = Vec::new();
    if rule.ipset.is_some() {
        reasons.push("ipset match");
    }
    if rule.sticky {
        reasons.push("sticky");
    }
    if rule.logging {
        reasons.push("logging");
    }
    if !rule.src_ip_masked.is_empty() || !rule.dest_ip_masked.is_empty() {
        reasons.push("non-prefix netmask");
    }
    let sports = fib_ports(&rule.src_port);
    let dports = fib_ports(&rule.dest_port);
    if sports.is_none() || dports.is_none() {
        reasons.push("port range with 0 or 65535 (FIB rules refuse those)");
    }
    let (Some(sports), Some(dports)) = (sports, dports) else {
        return Err(reasons);
    };
    if !reasons.is_empty() {
        return Err(reasons);
    }
    let iif = rule
        .src_iface
        .as_ref()
        .and_then(|i| devices.get(i))
        .cloned();
    let mut protos = vec![rule.proto];
    protos.extend(rule.extra_protos.iter().copied());
    if protos.contains(&Proto::All) {
        protos = vec![Proto::All];
    }
    let mut out = Vec::new();
    for family in rule_families(rule) {
        let of_family = |list: &[IpNet]| -> Vec<IpNet> {
            let nets: Vec<IpNet> = list
                .iter()
                .copied()
                .filter(|n| family_of(n.addr) == family)
                .map(normalize)
                .collect();
            // The kernel stores `from 0.0.0.0/0` as no selector at all (and
            // dumps it so): a /0 entry matches everything of its family.
            if nets.iter().any(|n| n.prefix_len == 0) {
                Vec::new()
            } else {
                nets
            }
        };
        for src in options(&of_family(&rule.src_ip)) {
            for dst in options(&of_family(&rule.dest_ip)) {
                for proto in &protos {
                    for sport in &sports {
                        for dport in &dports {
                            let mut r = FibRule::new(family, 0, RuleAction::Blackhole);
                            r.src = src;
                            r.dst = dst;
                            r.iif = iif.clone();
                            r.ipproto = proto_number(*proto, family);
                            r.sport = *sport;
                            r.dport = *dport;
                            out.push(r);
                            if out.len() > MAX_FIB_EXPANSION {
                                return Err(vec!["more address/protocol/port combinations than FIB rules are worth"]);
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Build the desired plan. Pure: same input, same plan.
pub fn build(input: &PlanInput<'_>) -> Result<NetworkPlan, PlanError> {
    let settings = input.settings;
    let layout = MarkLayout::new(settings.mmx_mask)?;
    let config = input.config;
    let mut warnings = Vec::new();

    // Which rules need nft, and so which targets need a mark.
    let mut selectors = Vec::new();
    let mut mark_targets: Vec<TargetKey> = Vec::new();
    for rule in &config.rules {
        if let Some(iface) = &rule.src_iface {
            if !input.devices.contains_key(iface) {
                warnings.push(format!(
                    "rule '{}': src_iface '{iface}' has no known device; rule skipped until it appears",
                    rule.name
                ));
                selectors.push(None);
                continue;
            }
        }
        let target = TargetKey::from_config(&rule.use_policy);
        if let TargetKey::Policy(p) = &target {
            if !config.policies.iter().any(|cp| &cp.name == p) {
                warnings.push(format!(
                    "rule '{}': policy '{p}' does not exist; rule skipped",
                    rule.name
                ));
                selectors.push(None);
                continue;
            }
        }
        let sel = fib_selectors(rule, input.devices);
        if sel.is_err() && !mark_targets.contains(&target) {
            mark_targets.push(target.clone());
        }
        selectors.push(Some((target, sel)));
    }

    let wan_names: Vec<&str> = config
        .interfaces
        .iter()
        .filter(|i| i.enabled)
        .map(|i| i.name.as_str())
        .collect();
    let mut target_keys: Vec<TargetKey> = config
        .policies
        .iter()
        .map(|p| TargetKey::Policy(p.name.clone()))
        .collect();
    for t in &mark_targets {
        if !target_keys.contains(t) {
            target_keys.push(t.clone());
        }
    }
    let allocation = allocate(&wan_names, &target_keys, input.previous, layout)?;

    let mut routes: Vec<Route> = Vec::new();
    let mut rules: Vec<FibRule> = Vec::new();
    let mask = layout.mask;
    let base = settings.rule_base;

    // Connected networks first (after tracker marks).
    for family in FAMILIES {
        rules.push(FibRule::new(
            family,
            base + prio::CONNECTED,
            RuleAction::Lookup {
                table: MAIN_TABLE,
                suppress_prefixlen: Some(0),
            },
        ));
        for (i, table) in config.globals.rt_table_lookup.iter().enumerate() {
            rules.push(FibRule::new(
                family,
                base + prio::TABLE_LOOKUP + i as u32,
                RuleAction::Lookup {
                    table: *table,
                    suppress_prefixlen: Some(0),
                },
            ));
        }
    }

    // Per-WAN tables and rules.
    let mut wans = Vec::new();
    for name in &wan_names {
        let slots = allocation.wans[*name];
        let table = settings.table_base + slots.pin;
        let iface = config
            .interfaces
            .iter()
            .find(|i| i.name == *name)
            .expect("from config");
        let input_wan = input.wans.iter().find(|w| w.interface == *name);
        let (facts, usable) = match input_wan {
            Some(w) => (w.facts.clone(), w.usable),
            None => (WanFacts::default(), false),
        };
        let family = iface.family;
        let plan = WanPlan {
            interface: name.to_string(),
            family,
            device: facts.device.clone(),
            ifindex: facts.ifindex,
            table,
            slots,
            tracker_mark: layout.encode(slots.tracker),
            pin_mark: layout.encode(slots.pin),
            usable,
        };
        let mut tracker = FibRule::new(family, base + prio::TRACKER + slots.tracker, lookup(table));
        tracker.fwmark = Some((plan.tracker_mark, mask));
        rules.push(tracker);
        if usable {
            let mut pin = FibRule::new(family, base + prio::PIN + slots.pin, lookup(table));
            pin.fwmark = Some((plan.pin_mark, mask));
            rules.push(pin);
        }
        for a in facts
            .addresses
            .iter()
            .filter(|a| family_of(a.addr) == family && !a.tentative)
        {
            let mut from =
                FibRule::new(family, base + prio::FROM_ADDRESS + slots.pin, lookup(table));
            from.src = Some(IpNet {
                addr: a.addr,
                prefix_len: host_len(family),
            });
            rules.push(from);
        }
        if let Some(route) = wan_default_route(&facts, family, table) {
            routes.push(route);
        }
        if facts.routable(family) {
            for r in facts
                .main_routes
                .iter()
                .filter(|r| r.family == family && mirrorable(r))
            {
                let mut m = r.clone();
                m.table = table;
                m.dst = normalize(m.dst);
                routes.push(m);
            }
        }
        wans.push(plan);
    }

    // Policy tables: a terminal default route per family, always.
    let mut policy_tables = BTreeMap::new();
    for policy in &config.policies {
        let slot = allocation.targets[&TargetKey::Policy(policy.name.clone())];
        let table = settings.table_base + slot;
        policy_tables.insert(policy.name.clone(), table);
        let resolved = input.policies.iter().find(|p| p.policy == policy.name);
        let last_resort = resolved
            .map(|p| p.last_resort)
            .unwrap_or(policy.last_resort);
        for family in FAMILIES {
            let mut members = Vec::new();
            if let Some(r) = resolved {
                for (iface, weight) in &r.active {
                    let Some(w) = input.wans.iter().find(|w| &w.interface == iface) else {
                        continue;
                    };
                    if w.family != family || !w.usable || !wan_names.contains(&iface.as_str()) {
                        continue;
                    }
                    if let Some(RouteKind::Unicast(hops)) =
                        wan_default_route(&w.facts, family, 0).map(|r| r.kind)
                    {
                        members.push((hops[0], *weight));
                    }
                }
            }
            routes.push(policy_default_route(
                family,
                table,
                &members,
                last_resort,
                input.main_defaults,
            ));
        }
    }

    // Policy marks, then config rules in order.
    let mut target_marks = BTreeMap::new();
    for t in &mark_targets {
        let slot = allocation.targets[t];
        let mark = layout.encode(slot);
        target_marks.insert(t.clone(), mark);
        for family in FAMILIES {
            let mut r = FibRule::new(
                family,
                base + prio::POLICY_MARK + slot,
                target_action(t, &policy_tables),
            );
            r.fwmark = Some((mark, mask));
            rules.push(r);
        }
    }
    let mut rule_plans = Vec::new();
    for (index, (rule, sel)) in config.rules.iter().zip(selectors).enumerate() {
        let Some((target, sel)) = sel else { continue };
        let steering = match sel {
            Ok(list) => {
                let action = target_action(&target, &policy_tables);
                for mut r in list {
                    r.priority = base + prio::RULES + index as u32;
                    r.action = action;
                    rules.push(r);
                }
                Steering::Fib
            }
            Err(reasons) => Steering::NftMark {
                mark: target_marks[&target],
                reasons,
            },
        };
        rule_plans.push(RulePlan {
            index,
            rule: rule.clone(),
            target,
            steering,
            sticky_timeout: rule.sticky.then_some(rule.timeout),
        });
    }

    Ok(NetworkPlan {
        settings,
        layout,
        allocation,
        wans,
        policy_tables,
        target_marks,
        rules: rule_plans,
        objects: KernelObjects::sorted(routes, rules),
        warnings,
    })
}

fn lookup(table: u32) -> RuleAction {
    RuleAction::Lookup {
        table,
        suppress_prefixlen: None,
    }
}

fn host_len(family: Family) -> u8 {
    match family {
        Family::Ipv4 => 32,
        Family::Ipv6 => 128,
    }
}

fn target_action(target: &TargetKey, policy_tables: &BTreeMap<String, u32>) -> RuleAction {
    match target {
        TargetKey::Policy(p) => lookup(policy_tables[p]),
        TargetKey::Main => lookup(MAIN_TABLE),
        TargetKey::Unreachable => RuleAction::Unreachable,
        TargetKey::Blackhole => RuleAction::Blackhole,
    }
}

/// Main-table routes worth copying: unicast, not default, not link-local or
/// multicast IPv6.
fn mirrorable(r: &Route) -> bool {
    if r.dst.prefix_len == 0 || !matches!(r.kind, RouteKind::Unicast(_)) {
        return false;
    }
    match r.dst.addr {
        IpAddr::V6(a) => {
            let seg = a.segments()[0];
            seg & 0xffc0 != 0xfe80 && seg & 0xff00 != 0xff00
        }
        IpAddr::V4(_) => true,
    }
}

/// The WAN's default route in `table`, if the WAN can carry one.
fn wan_default_route(facts: &WanFacts, family: Family, table: u32) -> Option<Route> {
    if !facts.routable(family) {
        return None;
    }
    let gateway = facts.gateway(family);
    Some(Route {
        family,
        table,
        dst: default_net(family),
        metric: default_metric(family),
        kind: RouteKind::Unicast(vec![Nexthop {
            ifindex: facts.ifindex,
            gateway,
            weight: 1,
        }]),
        prefsrc: None,
        // Point-to-point links (no gateway) route the default on-link.
        scope_link: gateway.is_none(),
    })
}

fn policy_default_route(
    family: Family,
    table: u32,
    members: &[(Nexthop, u32)],
    last_resort: LastResort,
    main_defaults: &[Route],
) -> Route {
    let dst = default_net(family);
    let metric = default_metric(family);
    let simple = |kind| Route {
        family,
        table,
        dst,
        metric,
        kind,
        prefsrc: None,
        scope_link: false,
    };
    if members.is_empty() {
        return match last_resort {
            LastResort::Unreachable => simple(RouteKind::Unreachable),
            LastResort::Blackhole => simple(RouteKind::Blackhole),
            LastResort::Default => {
                // A copy of main's best default route: an empty table would let
                // the lookup fall through to later rules instead of main.
                let best = main_defaults
                    .iter()
                    .filter(|r| r.family == family && r.dst.prefix_len == 0)
                    .filter(|r| matches!(r.kind, RouteKind::Unicast(_)))
                    .min_by_key(|r| r.metric);
                match best {
                    Some(r) => Route {
                        family,
                        table,
                        dst,
                        metric,
                        kind: r.kind.clone(),
                        prefsrc: None,
                        scope_link: r.scope_link,
                    },
                    None => simple(RouteKind::Unreachable),
                }
            }
        };
    }
    let weights = scale_weights(&members.iter().map(|(_, w)| *w).collect::<Vec<_>>());
    let mut hops: Vec<Nexthop> = members
        .iter()
        .zip(weights)
        .map(|((hop, _), weight)| Nexthop { weight, ..*hop })
        .collect();
    hops.sort_by_key(nexthop_order);
    hops.dedup_by_key(|h| (h.ifindex, h.gateway));
    if hops.len() == 1 {
        hops[0].weight = 1;
    }
    let scope_link = hops.len() == 1 && hops[0].gateway.is_none();
    Route {
        family,
        table,
        dst,
        metric,
        kind: RouteKind::Unicast(hops),
        prefsrc: None,
        scope_link,
    }
}

// ---------------------------------------------------------------- diff

/// One kernel change. Routes are added with NLM_F_CREATE|NLM_F_REPLACE, so
/// `AddRoute` also rewrites a route whose key exists with other content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    AddRoute(Route),
    DelRoute(Route),
    AddRule(FibRule),
    DelRule(FibRule),
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::AddRoute(r) => write!(f, "replace route {r}"),
            Op::DelRoute(r) => write!(f, "delete route {r}"),
            Op::AddRule(r) => write!(f, "add rule {r}"),
            Op::DelRule(r) => write!(f, "delete rule {r}"),
        }
    }
}

/// Minimal ops turning `observed` (our tagged objects) into `desired`.
///
/// Order: routes are written first (a new rule never points at an empty
/// table), then rules are added, then stale rules deleted, then stale routes
/// deleted. Objects equal in both produce nothing.
pub fn diff(desired: &KernelObjects, observed: &KernelObjects) -> Vec<Op> {
    let mut ops = Vec::new();
    let observed_routes: HashMap<RouteKey, &Route> =
        observed.routes.iter().map(|r| (r.key(), r)).collect();
    let desired_keys: HashSet<RouteKey> = desired.routes.iter().map(Route::key).collect();
    for r in &desired.routes {
        if observed_routes.get(&r.key()) != Some(&r) {
            ops.push(Op::AddRoute(r.clone()));
        }
    }
    let observed_rules: HashSet<&FibRule> = observed.rules.iter().collect();
    let desired_rules: HashSet<&FibRule> = desired.rules.iter().collect();
    for r in &desired.rules {
        if !observed_rules.contains(r) {
            ops.push(Op::AddRule(r.clone()));
        }
    }
    let mut seen = HashSet::new();
    for r in &observed.rules {
        if !desired_rules.contains(r) && seen.insert(r) {
            ops.push(Op::DelRule(r.clone()));
        }
    }
    let mut deleted = HashSet::new();
    for r in &observed.routes {
        if !desired_keys.contains(&r.key()) && deleted.insert(r.key()) {
            ops.push(Op::DelRoute(r.clone()));
        }
    }
    ops
}

/// Ops that remove every object in `observed` (stop).
pub fn teardown(observed: &KernelObjects) -> Vec<Op> {
    diff(&KernelObjects::default(), observed)
}

#[cfg(test)]
mod tests;
