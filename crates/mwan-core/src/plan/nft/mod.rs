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

//!
//! Modules: [`build`] and its steps (build.rs), [`expand`] of a config rule
//! into match lists (expand.rs), the `nft -f` text (render.rs).

mod build;
mod expand;
mod render;

pub use build::build;
pub use expand::expand;
pub use render::masked_value;

use std::fmt;

use super::{NetworkPlan, WanPlan};
use crate::config::{Config, Family, IpNet, MaskedIp, PortRange};

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
    /// `socket cgroupv2 level N "path"`: the socket's cgroup at depth
    /// `level` is cgroup `id` (`path` is for the text only).
    SocketCgroupV2 {
        level: u32,
        path: String,
        id: u64,
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

#[derive(Clone, PartialEq, Eq)]
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

crate::debug_as_display!(NftPlanError);

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

#[cfg(test)]
mod tests;
