//! Kernel objects as data: routes, FIB rules, and their canonical order.

use std::fmt;
use std::net::IpAddr;

use crate::config::{Family, IpNet, PortRange};

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
        crate::sort::sort_by_key(&mut routes, route_order);
        routes.dedup_by(|a, b| a.key() == b.key());
        crate::sort::sort_by_cached_key(&mut rules, |r| {
            (r.priority, family_order(r.family), r.to_string())
        });
        rules.dedup();
        KernelObjects { routes, rules }
    }
}

pub(super) fn nexthop_order(h: &Nexthop) -> (u32, Option<u128>) {
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
