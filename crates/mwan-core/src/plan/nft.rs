//! The desired content of nft table `inet mwan`, as data.
//!
//! [`build`] turns a [`NetworkPlan`] (mark layout, WANs, rules and how each is
//! steered) into an [`NftTable`]: sets, chains and rules made of a handful of
//! match and action kinds. `mwan_netlink::nft` encodes it into one
//! nf_tables netlink batch; nothing here knows about netlink. The table is
//! described in docs/dataplane-nft.md. In short:
//!
//! - `prerouting` (filter, mangle priority) and `output` (route, mangle
//!   priority, so a changed mark reroutes): packets that already carry a mark
//!   of ours are left alone; a connection's pin (its WAN's pin mark in the ct
//!   mark) is restored into the packet mark; a connection's first packet in
//!   from a WAN device is pinned to that WAN; everything else walks
//!   `policy_rules`.
//! - `postrouting` (filter, mangle priority): a connection leaving through a
//!   WAN device without a pin gets that WAN's pin in its ct mark; a sticky
//!   rule's connection records its source in the sticky set of the WAN it
//!   left through.
//! - `policy_rules`: the config rules in order; the first that matches ends
//!   the walk. FIB-steered rules end it without a mark, nft-steered rules set
//!   their target's mark, sticky rules go to their `sticky_r<N>` chain.
//! - Sets: per sticky policy and member WAN `sticky_<policy>_<wan>` (source
//!   addresses, with timeout); per mwan3 `ipset` name `<name>` (IPv4) and
//!   `<name>_v6` (IPv6), filled by dnsmasq's `nftset`. Sets survive a
//!   replacement of the chains, so both keep their elements across reloads.
//!
//! Every mark write is `mark & !mask | value`: bits outside `mmx_mask`
//! belong to other tools and pass through unchanged.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use super::{family_of, normalize, proto_number, NetworkPlan, Steering, TargetKey, WanPlan};
use crate::config::{Config, Family, IpNet, MaskedIp, PortRange, Proto, Rule, RuleFamily};

/// Table family is `inet` (both IPv4 and IPv6); its name:
pub const TABLE: &str = "mwan";
/// nft's `mangle` priority: after conntrack (-200), before DNAT (-100), so
/// the mark is set before the routing decision and sees pre-NAT addresses.
pub const MANGLE_PRIORITY: i32 = -150;
pub const CHAIN_PREROUTING: &str = "prerouting";
pub const CHAIN_OUTPUT: &str = "output";
pub const CHAIN_POSTROUTING: &str = "postrouting";
pub const CHAIN_RULES: &str = "policy_rules";
/// Suffix of the IPv6 set of an mwan3 `ipset` name.
pub const IPSET_V6_SUFFIX: &str = "_v6";
/// nf_tables name limit (NFT_NAME_MAXLEN incl. NUL) on current kernels.
pub const MAX_NAME_LEN: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NftTable {
    pub sets: Vec<NftSet>,
    pub chains: Vec<NftChain>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftSet {
    pub name: String,
    /// Key type: `ipv4_addr` or `ipv6_addr`.
    pub family: Family,
    pub kind: SetKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetKind {
    /// Sticky sources: `flags dynamic,timeout; timeout <s>`.
    Sticky { timeout_s: u32 },
    /// A user set (mwan3 `ipset`): `flags interval`, filled from outside.
    User,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftChain {
    pub name: String,
    pub base: Option<BaseChain>,
    pub rules: Vec<NftRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseChain {
    pub kind: ChainKind,
    pub hook: Hook,
    pub priority: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainKind {
    Filter,
    /// `type route`: a mark change in `output` triggers a new route lookup.
    Route,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Prerouting,
    Output,
    Postrouting,
}

/// A rule: all matches must hold, then the actions run, then the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftRule {
    pub matches: Vec<Match>,
    pub actions: Vec<Action>,
    pub verdict: Option<Verdict>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Src,
    Dst,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// `meta nfproto ipv4|ipv6`; precedes address matches (as nft's
    /// implicit dependency would).
    NfProto(Family),
    /// `meta l4proto N`; precedes port matches.
    L4Proto(u8),
    /// `ip|ip6 saddr|daddr <prefix>` (a /0 prefix is never emitted).
    Prefix {
        dir: Dir,
        net: IpNet,
    },
    /// `ip|ip6 saddr|daddr & <mask> == <addr & mask>`.
    Masked {
        dir: Dir,
        ip: MaskedIp,
    },
    /// `th sport|dport N` or `N-M`.
    Port {
        dir: Dir,
        range: PortRange,
    },
    IifName(String),
    OifName(String),
    /// `meta mark & mask ==|!= value`.
    MetaMark {
        mask: u32,
        value: u32,
        equal: bool,
    },
    /// `ct mark & mask ==|!= value`.
    CtMark {
        mask: u32,
        value: u32,
        equal: bool,
    },
    /// `ip|ip6 saddr|daddr @set`.
    InSet {
        family: Family,
        dir: Dir,
        set: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `meta mark set meta mark & keep | value`.
    SetMetaMark { keep: u32, value: u32 },
    /// `ct mark set ct mark & keep | value`.
    SetCtMark { keep: u32, value: u32 },
    /// `update @set { ip|ip6 saddr }`: add or refresh the source's timeout.
    UpdateSetSource { family: Family, set: String },
    /// `log prefix "..."`.
    Log { prefix: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Return,
    Jump(String),
    /// Like jump, but a `return` there returns past the caller's chain.
    Goto(String),
}

impl NftTable {
    pub fn chain(&self, name: &str) -> Option<&NftChain> {
        self.chains.iter().find(|c| c.name == name)
    }

    pub fn set(&self, name: &str) -> Option<&NftSet> {
        self.sets.iter().find(|s| s.name == name)
    }

    /// Sticky sets of one WAN (by config interface name): flushed when the
    /// WAN becomes unusable, so its sticky sources choose again.
    pub fn sticky_sets_of(&self, wan: &str) -> Vec<String> {
        let suffix = format!("_{wan}");
        self.sets
            .iter()
            .filter(|s| matches!(s.kind, SetKind::Sticky { .. }))
            .filter(|s| s.name.starts_with("sticky_") && s.name.ends_with(&suffix))
            .map(|s| s.name.clone())
            .collect()
    }

    pub fn rule_count(&self) -> usize {
        self.chains.iter().map(|c| c.rules.len()).sum()
    }
}

/// Name of the sticky set of `policy` for `wan`.
pub fn sticky_set_name(policy: &str, wan: &str) -> String {
    format!("sticky_{policy}_{wan}")
}

/// Name of the set a mwan3 `ipset` option refers to, per family.
pub fn ipset_set_name(ipset: &str, family: Family) -> String {
    match family {
        Family::Ipv4 => ipset.to_string(),
        Family::Ipv6 => format!("{ipset}{IPSET_V6_SUFFIX}"),
    }
}

fn sticky_chain_name(index: usize) -> String {
    format!("sticky_r{index}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NftPlanError {
    /// A set or chain name the kernel would refuse.
    NameTooLong { name: String, what: &'static str },
}

impl fmt::Display for NftPlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NftPlanError::NameTooLong { name, what } => write!(
                f,
                "nft {what} name '{name}' is {} bytes; expected at most {MAX_NAME_LEN} \
                 (shorten the policy, interface or ipset name)",
                name.len()
            ),
        }
    }
}

impl std::error::Error for NftPlanError {}

fn mark_rule(mask: u32, value: u32) -> Action {
    Action::SetMetaMark { keep: !mask, value }
}

fn ct_mark_rule(mask: u32, value: u32) -> Action {
    Action::SetCtMark { keep: !mask, value }
}

fn rule(matches: Vec<Match>, actions: Vec<Action>, verdict: Option<Verdict>) -> NftRule {
    NftRule {
        matches,
        actions,
        verdict,
    }
}

/// The member WANs (config interface names) of a policy, in member order,
/// that exist in the plan.
fn policy_wans<'p>(config: &Config, plan: &'p NetworkPlan, policy: &str) -> Vec<&'p WanPlan> {
    let Some(p) = config.policies.iter().find(|p| p.name == policy) else {
        return Vec::new();
    };
    let mut out: Vec<&WanPlan> = Vec::new();
    for member in &p.use_member {
        let Some(m) = config.members.iter().find(|m| &m.name == member) else {
            continue;
        };
        if let Some(w) = plan.wan(&m.interface) {
            if !out.iter().any(|o| o.interface == w.interface) {
                out.push(w);
            }
        }
    }
    out
}

/// Build the table. Pure: the same plan gives the same table.
///
/// `devices` maps logical interface names to kernel devices for `src_iface`
/// (the plan already skipped rules whose device is unknown).
pub fn build(
    plan: &NetworkPlan,
    config: &Config,
    devices: &BTreeMap<String, String>,
) -> Result<NftTable, NftPlanError> {
    let mask = plan.layout.mask;
    let no_mark_of_ours = || Match::MetaMark {
        mask,
        value: 0,
        equal: false,
    };

    // Sticky policies: the policy name, its mark, the longest timeout of
    // the sticky rules that use it.
    let mut sticky: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for r in &plan.rules {
        if let (Some(timeout), TargetKey::Policy(p), Steering::NftMark { mark, .. }) =
            (r.sticky_timeout, &r.target, &r.steering)
        {
            let e = sticky.entry(p.clone()).or_insert((*mark, timeout));
            e.1 = e.1.max(timeout);
        }
    }

    let mut sets: Vec<NftSet> = Vec::new();
    for (policy, (_, timeout)) in &sticky {
        for w in policy_wans(config, plan, policy) {
            sets.push(NftSet {
                name: sticky_set_name(policy, &w.interface),
                family: w.family,
                kind: SetKind::Sticky {
                    timeout_s: *timeout,
                },
            });
        }
    }
    let mut ipsets: BTreeSet<(String, u8)> = BTreeSet::new();
    for r in &plan.rules {
        if let (Some(ipset), Steering::NftMark { .. }) = (&r.rule.ipset, &r.steering) {
            for family in rule_families(&r.rule) {
                let name = ipset_set_name(ipset, family);
                if ipsets.insert((name.clone(), family_order(family))) {
                    sets.push(NftSet {
                        name,
                        family,
                        kind: SetKind::User,
                    });
                }
            }
        }
    }

    // prerouting / output: leave marked packets alone, restore pins.
    let restore: Vec<NftRule> = plan
        .wans
        .iter()
        .map(|w| {
            rule(
                vec![Match::CtMark {
                    mask,
                    value: w.pin_mark,
                    equal: true,
                }],
                vec![mark_rule(mask, w.pin_mark)],
                Some(Verdict::Return),
            )
        })
        .collect();
    let skip_marked = rule(vec![no_mark_of_ours()], vec![], Some(Verdict::Return));
    let mut prerouting = vec![skip_marked.clone()];
    prerouting.extend(restore.iter().cloned());
    // A WAN whose device is not known yet has no device rules (an empty
    // name would never match anyway); its restore rule stays.
    let with_device = || plan.wans.iter().filter(|w| !w.device.is_empty());
    for w in with_device() {
        prerouting.push(rule(
            vec![Match::NfProto(w.family), Match::IifName(w.device.clone())],
            vec![ct_mark_rule(mask, w.pin_mark), mark_rule(mask, w.pin_mark)],
            Some(Verdict::Return),
        ));
    }
    prerouting.push(rule(
        vec![],
        vec![],
        Some(Verdict::Jump(CHAIN_RULES.into())),
    ));
    let mut output = vec![skip_marked];
    output.extend(restore);
    output.push(rule(
        vec![],
        vec![],
        Some(Verdict::Jump(CHAIN_RULES.into())),
    ));

    // postrouting: record sticky choices, pin new connections to their WAN.
    let mut postrouting = Vec::new();
    for (policy, (policy_mark, _)) in &sticky {
        for w in policy_wans(config, plan, policy)
            .into_iter()
            .filter(|w| !w.device.is_empty())
        {
            postrouting.push(rule(
                vec![
                    Match::CtMark {
                        mask,
                        value: *policy_mark,
                        equal: true,
                    },
                    Match::NfProto(w.family),
                    Match::OifName(w.device.clone()),
                ],
                vec![
                    Action::UpdateSetSource {
                        family: w.family,
                        set: sticky_set_name(policy, &w.interface),
                    },
                    ct_mark_rule(mask, w.pin_mark),
                ],
                Some(Verdict::Return),
            ));
        }
    }
    // A pending sticky mark (the connection left through a WAN that is not a
    // member) counts as no pin: values 0 and each sticky policy mark.
    let unpinned: Vec<u32> = std::iter::once(0)
        .chain(sticky.values().map(|(m, _)| *m))
        .collect();
    for w in with_device() {
        for value in &unpinned {
            postrouting.push(rule(
                vec![
                    Match::NfProto(w.family),
                    Match::OifName(w.device.clone()),
                    Match::CtMark {
                        mask,
                        value: *value,
                        equal: true,
                    },
                ],
                vec![ct_mark_rule(mask, w.pin_mark)],
                Some(Verdict::Return),
            ));
        }
    }

    // policy_rules and sticky chains.
    let mut rules_chain = Vec::new();
    let mut sticky_chains = Vec::new();
    for r in &plan.rules {
        let mut actions = Vec::new();
        if r.rule.logging {
            actions.push(Action::Log {
                prefix: log_prefix(&r.rule.name),
            });
        }
        let verdict = match (&r.steering, r.sticky_timeout, &r.target) {
            (Steering::Fib, _, _) => Verdict::Return,
            (Steering::NftMark { mark, .. }, Some(_), TargetKey::Policy(policy)) => {
                let name = sticky_chain_name(r.index);
                let mut body = Vec::new();
                for w in policy_wans(config, plan, policy) {
                    let set = sticky_set_name(policy, &w.interface);
                    body.push(rule(
                        vec![
                            Match::NfProto(w.family),
                            Match::InSet {
                                family: w.family,
                                dir: Dir::Src,
                                set: set.clone(),
                            },
                        ],
                        vec![
                            Action::UpdateSetSource {
                                family: w.family,
                                set,
                            },
                            mark_rule(mask, w.pin_mark),
                        ],
                        Some(Verdict::Return),
                    ));
                }
                body.push(rule(
                    vec![],
                    vec![mark_rule(mask, *mark), ct_mark_rule(mask, *mark)],
                    None,
                ));
                sticky_chains.push(NftChain {
                    name: name.clone(),
                    base: None,
                    rules: body,
                });
                Verdict::Goto(name)
            }
            (Steering::NftMark { mark, .. }, _, _) => {
                actions.push(mark_rule(mask, *mark));
                Verdict::Return
            }
        };
        for matches in expand(&r.rule, devices) {
            rules_chain.push(rule(matches, actions.clone(), Some(verdict.clone())));
        }
    }

    let base = |kind, hook| {
        Some(BaseChain {
            kind,
            hook,
            priority: MANGLE_PRIORITY,
        })
    };
    let mut chains = vec![
        NftChain {
            name: CHAIN_PREROUTING.into(),
            base: base(ChainKind::Filter, Hook::Prerouting),
            rules: prerouting,
        },
        NftChain {
            name: CHAIN_OUTPUT.into(),
            base: base(ChainKind::Route, Hook::Output),
            rules: output,
        },
        NftChain {
            name: CHAIN_POSTROUTING.into(),
            base: base(ChainKind::Filter, Hook::Postrouting),
            rules: postrouting,
        },
        NftChain {
            name: CHAIN_RULES.into(),
            base: None,
            rules: rules_chain,
        },
    ];
    chains.extend(sticky_chains);

    let table = NftTable { sets, chains };
    for s in &table.sets {
        check_name(&s.name, "set")?;
    }
    for c in &table.chains {
        check_name(&c.name, "chain")?;
    }
    Ok(table)
}

/// Longest log prefix the kernel takes (NF_LOG_PREFIXLEN 128 with the NUL).
pub const MAX_LOG_PREFIX: usize = 127;

/// `mwan(<rule>) `, cut to what the kernel accepts (on a char boundary).
fn log_prefix(rule: &str) -> String {
    let mut p = format!("mwan({rule}) ");
    if p.len() > MAX_LOG_PREFIX {
        let mut end = MAX_LOG_PREFIX - 2;
        while !p.is_char_boundary(end) {
            end -= 1;
        }
        p.truncate(end);
        p.push_str(") ");
    }
    p
}

fn check_name(name: &str, what: &'static str) -> Result<(), NftPlanError> {
    if name.len() > MAX_NAME_LEN {
        return Err(NftPlanError::NameTooLong {
            name: name.to_string(),
            what,
        });
    }
    Ok(())
}

fn family_order(f: Family) -> u8 {
    match f {
        Family::Ipv4 => 4,
        Family::Ipv6 => 6,
    }
}

fn addr_family_of_masked(m: &MaskedIp) -> Family {
    family_of(m.addr)
}

/// Families a rule applies to: its `family`, narrowed to the families of
/// the addresses it lists (prefix or masked).
fn rule_families(rule: &Rule) -> Vec<Family> {
    [Family::Ipv4, Family::Ipv6]
        .into_iter()
        .filter(|f| match rule.family {
            RuleFamily::Any => true,
            RuleFamily::Ipv4 => *f == Family::Ipv4,
            RuleFamily::Ipv6 => *f == Family::Ipv6,
        })
        .filter(|f| {
            let any_src = !rule.src_ip.is_empty() || !rule.src_ip_masked.is_empty();
            !any_src
                || rule.src_ip.iter().any(|n| family_of(n.addr) == *f)
                || rule
                    .src_ip_masked
                    .iter()
                    .any(|m| addr_family_of_masked(m) == *f)
        })
        .filter(|f| {
            let any_dst = !rule.dest_ip.is_empty() || !rule.dest_ip_masked.is_empty();
            !any_dst
                || rule.dest_ip.iter().any(|n| family_of(n.addr) == *f)
                || rule
                    .dest_ip_masked
                    .iter()
                    .any(|m| addr_family_of_masked(m) == *f)
        })
        .collect()
}

/// Address alternatives of one direction for one family; `[None]` = any.
fn addr_options(
    dir: Dir,
    family: Family,
    nets: &[IpNet],
    masked: &[MaskedIp],
) -> Vec<Option<Match>> {
    if nets.is_empty() && masked.is_empty() {
        return vec![None];
    }
    let mut out: Vec<Option<Match>> = Vec::new();
    for n in nets.iter().filter(|n| family_of(n.addr) == family) {
        let net = normalize(*n);
        // A /0 matches every address of the family: no payload match.
        out.push((net.prefix_len > 0).then_some(Match::Prefix { dir, net }));
    }
    for m in masked.iter().filter(|m| family_of(m.addr) == family) {
        out.push(Some(Match::Masked { dir, ip: *m }));
    }
    out
}

fn port_options(dir: Dir, ports: &[PortRange]) -> Vec<Option<Match>> {
    if ports.is_empty() {
        vec![None]
    } else {
        ports
            .iter()
            .map(|range| Some(Match::Port { dir, range: *range }))
            .collect()
    }
}

/// The nft match lists equivalent to a config rule: one list per
/// combination of family, source, destination, protocol and ports (the
/// cross product: lists in a config rule are alternatives).
pub fn expand(rule: &Rule, devices: &BTreeMap<String, String>) -> Vec<Vec<Match>> {
    let iif = rule
        .src_iface
        .as_ref()
        .map(|i| devices.get(i).cloned().unwrap_or_else(|| i.clone()));
    let mut protos = vec![rule.proto];
    protos.extend(rule.extra_protos.iter().copied());
    if protos.contains(&Proto::All) {
        protos = vec![Proto::All];
    }
    let has_ports = !rule.src_port.is_empty() || !rule.dest_port.is_empty();
    if has_ports && protos == [Proto::All] {
        // Ports only exist for transport protocols; mwan3 applies them to
        // TCP and UDP.
        protos = vec![Proto::Tcp, Proto::Udp];
    }
    let mut out = Vec::new();
    for family in rule_families(rule) {
        let srcs = addr_options(Dir::Src, family, &rule.src_ip, &rule.src_ip_masked);
        let dsts = addr_options(Dir::Dst, family, &rule.dest_ip, &rule.dest_ip_masked);
        let set = rule.ipset.as_ref().map(|s| Match::InSet {
            family,
            dir: Dir::Dst,
            set: ipset_set_name(s, family),
        });
        for src in &srcs {
            for dst in &dsts {
                for proto in &protos {
                    for sport in port_options(Dir::Src, &rule.src_port) {
                        for dport in port_options(Dir::Dst, &rule.dest_port) {
                            let mut m = vec![Match::NfProto(family)];
                            m.extend(src.clone());
                            m.extend(dst.clone());
                            m.extend(set.clone());
                            if let Some(n) = proto_number(*proto, family) {
                                m.push(Match::L4Proto(n));
                            }
                            m.extend(sport.clone());
                            m.extend(dport);
                            if let Some(dev) = &iif {
                                m.push(Match::IifName(dev.clone()));
                            }
                            out.push(m);
                        }
                    }
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------- rendering

/// nft syntax (`nft -f` input) of the table, for logs, docs and tests: `nft
/// -f` of this text sends the same batch content as our encoder.
impl fmt::Display for NftTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "table inet {TABLE} {{")?;
        for s in &self.sets {
            writeln!(f, "\t{s}")?;
        }
        for c in &self.chains {
            write!(f, "{c}")?;
        }
        writeln!(f, "}}")
    }
}

impl fmt::Display for NftSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ty = match self.family {
            Family::Ipv4 => "ipv4_addr",
            Family::Ipv6 => "ipv6_addr",
        };
        match self.kind {
            SetKind::Sticky { timeout_s } => write!(
                f,
                "set {} {{ type {ty}; flags dynamic,timeout; timeout {timeout_s}s; }}",
                self.name
            ),
            SetKind::User => write!(f, "set {} {{ type {ty}; flags interval; }}", self.name),
        }
    }
}

impl fmt::Display for NftChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\tchain {} {{", self.name)?;
        if let Some(b) = &self.base {
            let kind = match b.kind {
                ChainKind::Filter => "filter",
                ChainKind::Route => "route",
            };
            let hook = match b.hook {
                Hook::Prerouting => "prerouting",
                Hook::Output => "output",
                Hook::Postrouting => "postrouting",
            };
            writeln!(
                f,
                "\t\ttype {kind} hook {hook} priority {}; policy accept;",
                b.priority
            )?;
        }
        for r in &self.rules {
            writeln!(f, "\t\t{r}")?;
        }
        writeln!(f, "\t}}")
    }
}

fn l3(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "ip",
        Family::Ipv6 => "ip6",
    }
}

fn addr_field(dir: Dir) -> &'static str {
    match dir {
        Dir::Src => "saddr",
        Dir::Dst => "daddr",
    }
}

impl fmt::Display for NftRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        for m in &self.matches {
            parts.push(m.to_string());
        }
        for a in &self.actions {
            parts.push(a.to_string());
        }
        if let Some(v) = &self.verdict {
            parts.push(match v {
                Verdict::Return => "return".to_string(),
                Verdict::Jump(c) => format!("jump {c}"),
                Verdict::Goto(c) => format!("goto {c}"),
            });
        }
        f.write_str(&parts.join(" "))
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let eq = |e: bool| if e { "==" } else { "!=" };
        match self {
            Match::NfProto(fam) => write!(
                f,
                "meta nfproto {}",
                match fam {
                    Family::Ipv4 => "ipv4",
                    Family::Ipv6 => "ipv6",
                }
            ),
            Match::L4Proto(n) => write!(f, "meta l4proto {n}"),
            Match::Prefix { dir, net } => write!(
                f,
                "{} {} {}/{}",
                l3(family_of(net.addr)),
                addr_field(*dir),
                net.addr,
                net.prefix_len
            ),
            Match::Masked { dir, ip } => {
                let value = masked_value(ip);
                write!(
                    f,
                    "{} {} & {} == {value}",
                    l3(family_of(ip.addr)),
                    addr_field(*dir),
                    ip.mask
                )
            }
            Match::Port { dir, range } => {
                let field = match dir {
                    Dir::Src => "sport",
                    Dir::Dst => "dport",
                };
                if range.first == range.last {
                    write!(f, "th {field} {}", range.first)
                } else {
                    write!(f, "th {field} {}-{}", range.first, range.last)
                }
            }
            Match::IifName(d) => write!(f, "iifname \"{d}\""),
            Match::OifName(d) => write!(f, "oifname \"{d}\""),
            Match::MetaMark { mask, value, equal } => {
                write!(f, "meta mark & {mask:#x} {} {value:#x}", eq(*equal))
            }
            Match::CtMark { mask, value, equal } => {
                write!(f, "ct mark & {mask:#x} {} {value:#x}", eq(*equal))
            }
            Match::InSet { family, dir, set } => {
                write!(f, "{} {} @{set}", l3(*family), addr_field(*dir))
            }
        }
    }
}

/// `addr & mask` of a masked address.
pub fn masked_value(ip: &MaskedIp) -> IpAddr {
    match (ip.addr, ip.mask) {
        (IpAddr::V4(a), IpAddr::V4(m)) => IpAddr::V4((u32::from(a) & u32::from(m)).into()),
        (IpAddr::V6(a), IpAddr::V6(m)) => IpAddr::V6((u128::from(a) & u128::from(m)).into()),
        // The config parser never mixes families; keep the address as is.
        (a, _) => a,
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::SetMetaMark { keep, value } => {
                write!(f, "meta mark set meta mark & {keep:#x} | {value:#x}")
            }
            Action::SetCtMark { keep, value } => {
                write!(f, "ct mark set ct mark & {keep:#x} | {value:#x}")
            }
            Action::UpdateSetSource { family, set } => {
                write!(f, "update @{set} {{ {} saddr }}", l3(*family))
            }
            Action::Log { prefix } => write!(f, "log prefix \"{prefix}\""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use crate::plan::{
        build as build_plan, Allocation, PlanInput, PlanSettings, PolicyRoutes, WanAddress,
        WanFacts, WanInput,
    };

    const CONFIG: &str = "
config globals 'globals'
	option mmx_mask '0x3F00'
config interface 'wan1'
	option enabled '1'
config interface 'wan2'
	option enabled '1'
config interface 'wan6'
	option enabled '1'
	option family 'ipv6'
config member 'm1'
	option interface 'wan1'
	option weight '3'
config member 'm2'
	option interface 'wan2'
	option weight '1'
config member 'm6'
	option interface 'wan6'
config policy 'balanced'
	list use_member 'm1'
	list use_member 'm2'
	list use_member 'm6'
config policy 'only2'
	list use_member 'm2'
config rule 'sticky_https'
	option proto 'tcp'
	option dest_port '443'
	option sticky '1'
	option timeout '300'
	option use_policy 'balanced'
config rule 'video'
	option ipset 'video'
	option use_policy 'only2'
config rule 'ports'
	option src_ip '192.168.1.0/24'
	option proto 'udp'
	option dest_port '5000:5010,6000'
	option use_policy 'only2'
config rule 'default_rule'
	option dest_ip '0.0.0.0/0'
	option use_policy 'balanced'
";

    fn wan(name: &str, family: Family, dev: &str, index: u32) -> WanInput {
        WanInput {
            interface: name.into(),
            family,
            facts: WanFacts {
                device: dev.into(),
                ifindex: index,
                up: true,
                carrier: true,
                addresses: vec![WanAddress {
                    addr: format!("192.0.2.{index}").parse().unwrap(),
                    prefix_len: 24,
                    tentative: false,
                }],
                gateway_v4: Some("192.0.2.254".parse().unwrap()),
                gateway_v6: None,
                main_routes: vec![],
            },
            usable: true,
        }
    }

    fn fixture() -> (Config, NetworkPlan) {
        let config = parse("test", CONFIG).expect("config parses").config;
        let wans = vec![
            wan("wan1", Family::Ipv4, "eth1", 11),
            wan("wan2", Family::Ipv4, "eth2", 12),
            wan("wan6", Family::Ipv6, "eth1", 11),
        ];
        let policies: Vec<PolicyRoutes> = config
            .policies
            .iter()
            .map(|p| PolicyRoutes {
                policy: p.name.clone(),
                active: vec![],
                last_resort: p.last_resort,
            })
            .collect();
        let devices = BTreeMap::new();
        let plan = build_plan(&PlanInput {
            config: &config,
            settings: PlanSettings::from_config(&config),
            wans: &wans,
            policies: &policies,
            devices: &devices,
            main_defaults: &[],
            previous: &Allocation::default(),
        })
        .expect("plan builds");
        (config, plan)
    }

    fn table() -> (NetworkPlan, NftTable) {
        let (config, plan) = fixture();
        let t = build(&plan, &config, &BTreeMap::new()).expect("table builds");
        (plan, t)
    }

    #[test]
    fn every_mark_write_keeps_bits_outside_the_mask() {
        let (plan, t) = table();
        let mask = plan.layout.mask;
        for c in &t.chains {
            for r in &c.rules {
                for a in &r.actions {
                    if let Action::SetMetaMark { keep, value } | Action::SetCtMark { keep, value } =
                        a
                    {
                        assert_eq!(*keep, !mask, "{r}");
                        assert_eq!(value & !mask, 0, "{r}");
                        assert_ne!(*value, 0, "{r}");
                    }
                }
            }
        }
    }

    #[test]
    fn pins_restore_and_save_for_every_wan() {
        let (plan, t) = table();
        let pre = t.chain(CHAIN_PREROUTING).unwrap();
        let out = t.chain(CHAIN_OUTPUT).unwrap();
        assert_eq!(out.base.unwrap().kind, ChainKind::Route);
        assert_eq!(pre.rules[0].to_string(), "meta mark & 0x3f00 != 0x0 return");
        for w in &plan.wans {
            let restore = format!(
                "ct mark & 0x3f00 == {:#x} meta mark set meta mark & 0xffffc0ff | {:#x} return",
                w.pin_mark, w.pin_mark
            );
            assert!(pre.rules.iter().any(|r| r.to_string() == restore));
            assert!(out.rules.iter().any(|r| r.to_string() == restore));
            let nfproto = if w.family == Family::Ipv4 {
                "ipv4"
            } else {
                "ipv6"
            };
            let inbound = format!(
                "meta nfproto {nfproto} iifname \"{}\" ct mark set",
                w.device
            );
            assert!(pre
                .rules
                .iter()
                .any(|r| r.to_string().starts_with(&inbound)));
            let post = t.chain(CHAIN_POSTROUTING).unwrap();
            let save = format!(
                "meta nfproto {nfproto} oifname \"{}\" ct mark & 0x3f00 == 0x0 ct mark set ct mark & 0xffffc0ff | {:#x} return",
                w.device, w.pin_mark
            );
            assert!(post.rules.iter().any(|r| r.to_string() == save), "{save}");
        }
        // Restores come before the inbound pin, which comes before the walk.
        assert_eq!(
            pre.rules.last().unwrap().verdict,
            Some(Verdict::Jump(CHAIN_RULES.into()))
        );
    }

    #[test]
    fn rules_walk_in_config_order_and_fib_rules_end_it_unmarked() {
        let (plan, t) = table();
        let rules = t.chain(CHAIN_RULES).unwrap();
        let text: Vec<String> = rules.rules.iter().map(|r| r.to_string()).collect();
        let only2 = plan.target_marks[&TargetKey::Policy("only2".into())];
        // sticky_https: tcp 443, both families, goto its sticky chain.
        assert_eq!(
            text[0],
            "meta nfproto ipv4 meta l4proto 6 th dport 443 goto sticky_r0"
        );
        assert_eq!(
            text[1],
            "meta nfproto ipv6 meta l4proto 6 th dport 443 goto sticky_r0"
        );
        // video: per family set, marked for only2.
        assert_eq!(
            text[2],
            format!("meta nfproto ipv4 ip daddr @video meta mark set meta mark & 0xffffc0ff | {only2:#x} return")
        );
        assert!(text[3].starts_with("meta nfproto ipv6 ip6 daddr @video_v6 "));
        // ports: FIB-steered, one nft rule per (proto, port) ending the walk.
        let ports: Vec<&String> = text
            .iter()
            .filter(|t| t.contains("ip saddr 192.168.1.0/24"))
            .collect();
        assert_eq!(ports.len(), 2, "{ports:?}");
        assert!(ports
            .iter()
            .all(|t| t.ends_with(" return") && !t.contains("mark set")));
        assert!(text.contains(
            &"meta nfproto ipv4 ip saddr 192.168.1.0/24 meta l4proto 17 th dport 5000-5010 return"
                .to_string()
        ));
        // default_rule: 0.0.0.0/0 means every IPv4 packet.
        assert_eq!(text.last().unwrap(), "meta nfproto ipv4 return");
    }

    #[test]
    fn sticky_sets_per_member_wan_and_chain_checks_them_first() {
        let (plan, t) = table();
        let names: Vec<&str> = t.sets.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "sticky_balanced_wan1",
                "sticky_balanced_wan2",
                "sticky_balanced_wan6",
                "video",
                "video_v6"
            ]
        );
        assert_eq!(t.set("sticky_balanced_wan6").unwrap().family, Family::Ipv6);
        assert_eq!(
            t.set("sticky_balanced_wan1").unwrap().kind,
            SetKind::Sticky { timeout_s: 300 }
        );
        assert_eq!(t.sticky_sets_of("wan1"), ["sticky_balanced_wan1"]);
        let chain = t.chain("sticky_r0").unwrap();
        let wan1 = plan.wan("wan1").unwrap().pin_mark;
        let balanced = plan.target_marks[&TargetKey::Policy("balanced".into())];
        assert_eq!(
            chain.rules[0].to_string(),
            format!("meta nfproto ipv4 ip saddr @sticky_balanced_wan1 update @sticky_balanced_wan1 {{ ip saddr }} meta mark set meta mark & 0xffffc0ff | {wan1:#x} return")
        );
        assert_eq!(
            chain.rules.last().unwrap().to_string(),
            format!("meta mark set meta mark & 0xffffc0ff | {balanced:#x} ct mark set ct mark & 0xffffc0ff | {balanced:#x}")
        );
        // postrouting records the choice before the plain pin.
        let post = t.chain(CHAIN_POSTROUTING).unwrap();
        assert_eq!(
            post.rules[0].to_string(),
            format!("ct mark & 0x3f00 == {balanced:#x} meta nfproto ipv4 oifname \"eth1\" update @sticky_balanced_wan1 {{ ip saddr }} ct mark set ct mark & 0xffffc0ff | {wan1:#x} return")
        );
    }

    #[test]
    fn a_wan_without_device_gets_no_device_rules() {
        let (config, mut plan) = fixture();
        plan.wans[1].device.clear();
        let t = build(&plan, &config, &BTreeMap::new()).unwrap();
        let text = t.to_string();
        assert!(!text.contains("ifname \"\""), "{text}");
        let restore = format!("ct mark & 0x3f00 == {:#x}", plan.wans[1].pin_mark);
        assert!(text.contains(&restore), "restore rule kept");
    }

    /// Failovers never replace the table: health changes the routes and
    /// pin rules of the plan, not one byte of the nft table.
    #[test]
    fn health_changes_leave_the_table_unchanged() {
        let config = parse("test", CONFIG).expect("config parses").config;
        let tables: Vec<NftTable> = [[true, true], [false, true], [true, false]]
            .iter()
            .map(|usable| {
                let mut wans = vec![
                    wan("wan1", Family::Ipv4, "eth1", 11),
                    wan("wan2", Family::Ipv4, "eth2", 12),
                    wan("wan6", Family::Ipv6, "eth1", 11),
                ];
                wans[0].usable = usable[0];
                wans[1].usable = usable[1];
                let policies = PolicyRoutes::all_members(&config, |i| {
                    wans.iter().any(|w| w.interface == i && w.usable)
                });
                let plan = build_plan(&PlanInput {
                    config: &config,
                    settings: PlanSettings::from_config(&config),
                    wans: &wans,
                    policies: &policies,
                    devices: &BTreeMap::new(),
                    main_defaults: &[],
                    previous: &Allocation::default(),
                })
                .expect("plan builds");
                build(&plan, &config, &BTreeMap::new()).expect("table builds")
            })
            .collect();
        assert_eq!(tables[0], tables[1]);
        assert_eq!(tables[0], tables[2]);
    }

    #[test]
    fn same_plan_same_table_and_names_are_checked() {
        let (config, plan) = fixture();
        let a = build(&plan, &config, &BTreeMap::new()).unwrap();
        let b = build(&plan, &config, &BTreeMap::new()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), b.to_string());
        assert_eq!(log_prefix("r1"), "mwan(r1) ");
        let long = log_prefix(&"é".repeat(100));
        assert!(
            long.len() <= MAX_LOG_PREFIX && long.ends_with(") "),
            "{long}"
        );
        assert!(matches!(
            check_name(&"x".repeat(300), "set"),
            Err(NftPlanError::NameTooLong { .. })
        ));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn net() -> impl Strategy<Value = IpNet> {
            prop_oneof![
                (any::<u32>(), 0u8..=32).prop_map(|(a, l)| IpNet {
                    addr: IpAddr::V4(a.into()),
                    prefix_len: l
                }),
                (any::<u128>(), 0u8..=128).prop_map(|(a, l)| IpNet {
                    addr: IpAddr::V6(a.into()),
                    prefix_len: l
                }),
            ]
        }

        fn ports() -> impl Strategy<Value = Vec<PortRange>> {
            prop::collection::vec(
                (1u16..=65535, 0u16..100).prop_map(|(f, d)| PortRange {
                    first: f,
                    last: f.saturating_add(d),
                }),
                0..3,
            )
        }

        fn proto() -> impl Strategy<Value = Proto> {
            prop_oneof![
                Just(Proto::All),
                Just(Proto::Tcp),
                Just(Proto::Udp),
                Just(Proto::Icmp),
                (0u8..=255).prop_map(Proto::Number),
            ]
        }

        fn a_rule() -> impl Strategy<Value = Rule> {
            (
                prop::collection::vec(net(), 0..3),
                prop::collection::vec(net(), 0..3),
                proto(),
                ports(),
                ports(),
                prop_oneof![
                    Just(RuleFamily::Any),
                    Just(RuleFamily::Ipv4),
                    Just(RuleFamily::Ipv6)
                ],
            )
                .prop_map(|(src, dst, proto, sp, dp, family)| {
                    let mut r = Rule::new("r", crate::config::PolicyTarget::Default);
                    r.src_ip = src;
                    r.dest_ip = dst;
                    r.proto = proto;
                    r.src_port = sp;
                    r.dest_port = dp;
                    r.family = family;
                    r
                })
        }

        proptest! {
            /// Every alternative is well formed: family first, addresses of
            /// that family, ports only after a transport protocol, and the
            /// count is the cross product of the rule's lists.
            #[test]
            fn expansion_is_well_formed(r in a_rule()) {
                let alternatives = expand(&r, &BTreeMap::new());
                let mut expected = 0usize;
                for family in rule_families(&r) {
                    let of = |l: &[IpNet]| {
                        let n = l.iter().filter(|n| family_of(n.addr) == family).count();
                        if l.is_empty() { 1 } else { n }
                    };
                    let protos = if r.proto == Proto::All
                        && (!r.src_port.is_empty() || !r.dest_port.is_empty())
                    {
                        2
                    } else {
                        1
                    };
                    expected += of(&r.src_ip)
                        * of(&r.dest_ip)
                        * protos
                        * r.src_port.len().max(1)
                        * r.dest_port.len().max(1);
                }
                prop_assert_eq!(alternatives.len(), expected);
                for m in &alternatives {
                    let Some(Match::NfProto(family)) = m.first() else {
                        return Err(TestCaseError::fail(format!("no family first: {m:?}")));
                    };
                    let mut l4 = false;
                    for x in m {
                        match x {
                            Match::Prefix { net, .. } => {
                                prop_assert_eq!(family_of(net.addr), *family);
                                prop_assert!(net.prefix_len > 0);
                            }
                            Match::L4Proto(_) => l4 = true,
                            Match::Port { .. } => prop_assert!(l4, "port before protocol: {:?}", m),
                            _ => {}
                        }
                    }
                }
            }

            /// Whatever the mask (at least 2 bits), the built table only
            /// ever writes bits inside it and keeps the others.
            #[test]
            fn marks_stay_inside_any_mask(mask in any::<u32>().prop_filter("2+ bits", |m| m.count_ones() >= 2)) {
                let (mut config, _) = fixture();
                config.globals.mmx_mask = mask;
                let wans = vec![
                    wan("wan1", Family::Ipv4, "eth1", 11),
                    wan("wan2", Family::Ipv4, "eth2", 12),
                    wan("wan6", Family::Ipv6, "eth1", 11),
                ];
                let Ok(plan) = build_plan(&PlanInput {
                    config: &config,
                    settings: PlanSettings::from_config(&config),
                    wans: &wans,
                    policies: &[],
                    devices: &BTreeMap::new(),
                    main_defaults: &[],
                    previous: &Allocation::default(),
                }) else {
                    // Too few mark values for this config: a config error.
                    return Ok(());
                };
                let t = build(&plan, &config, &BTreeMap::new()).unwrap();
                for c in &t.chains {
                    for r in &c.rules {
                        for a in &r.actions {
                            if let Action::SetMetaMark { keep, value } | Action::SetCtMark { keep, value } = a {
                                prop_assert_eq!(*keep, !mask);
                                prop_assert_eq!(value & !mask, 0);
                            }
                        }
                        for m in &r.matches {
                            if let Match::MetaMark { mask: k, value, .. } | Match::CtMark { mask: k, value, .. } = m {
                                prop_assert_eq!(*k, mask);
                                prop_assert_eq!(value & !mask, 0);
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn masked_addresses_and_src_iface() {
        let mut r = Rule::new("odd", crate::config::PolicyTarget::Default);
        r.src_ip_masked = vec![MaskedIp {
            addr: "0.0.0.1".parse().unwrap(),
            mask: "0.0.0.1".parse().unwrap(),
        }];
        r.src_iface = Some("lan".into());
        let devices = BTreeMap::from([("lan".to_string(), "br-lan".to_string())]);
        let m = expand(&r, &devices);
        assert_eq!(m.len(), 1, "IPv4 only: the masked address is IPv4");
        let text = m[0]
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(
            text,
            "meta nfproto ipv4 ip saddr & 0.0.0.1 == 0.0.0.1 iifname \"br-lan\""
        );
    }
}
