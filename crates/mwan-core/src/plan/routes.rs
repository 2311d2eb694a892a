//! The routes of WAN and policy tables, and the rule actions pointing at them.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::objects::nexthop_order;
use super::{
    default_metric, default_net, Nexthop, Route, RouteKind, RuleAction, TargetKey, WanFacts,
    KERNEL_MAX_WEIGHT, MAIN_TABLE,
};
use crate::config::{Family, LastResort};

pub(super) fn lookup(table: u32) -> RuleAction {
    RuleAction::Lookup {
        table,
        suppress_prefixlen: None,
    }
}

pub(super) fn host_len(family: Family) -> u8 {
    match family {
        Family::Ipv4 => 32,
        Family::Ipv6 => 128,
    }
}

pub(super) fn target_action(
    target: &TargetKey,
    policy_tables: &BTreeMap<String, u32>,
) -> RuleAction {
    match target {
        TargetKey::Policy(p) => lookup(policy_tables[p]),
        TargetKey::Main => lookup(MAIN_TABLE),
        TargetKey::Unreachable => RuleAction::Unreachable,
        TargetKey::Blackhole => RuleAction::Blackhole,
    }
}

/// Main-table routes worth copying: unicast, not default, not link-local or
/// multicast IPv6.
pub(super) fn mirrorable(r: &Route) -> bool {
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
pub(super) fn wan_default_route(facts: &WanFacts, family: Family, table: u32) -> Option<Route> {
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

pub(super) fn policy_default_route(
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
    crate::sort::sort_by_key(&mut hops, nexthop_order);
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
