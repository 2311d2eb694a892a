//! Routes: RTM_NEWROUTE/RTM_DELROUTE encoding and route dumps.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use mwan_core::config::{Family, IpNet};
use mwan_core::plan::{Nexthop, Route, RouteKind};

use crate::error::{KernelError, NetlinkError};
use crate::socket::{
    attr_u32, attrs, MsgBuilder, RawMsg, Request, Socket, NLM_F_CREATE, NLM_F_REPLACE,
};

pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_DELROUTE: u16 = 25;
pub const RTM_GETROUTE: u16 = 26;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_MULTIPATH: u16 = 9;
const RTA_TABLE: u16 = 15;

const RTN_UNICAST: u8 = 1;
const RTN_BLACKHOLE: u8 = 6;
const RTN_UNREACHABLE: u8 = 7;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RT_SCOPE_NOWHERE: u8 = 255;
const RT_TABLE_UNSPEC: u8 = 0;
const RTMSG_LEN: usize = 12;
const RTNH_LEN: usize = 8;

pub const AF_INET: u8 = libc::AF_INET as u8;
pub const AF_INET6: u8 = libc::AF_INET6 as u8;

pub fn af(family: Family) -> u8 {
    match family {
        Family::Ipv4 => AF_INET,
        Family::Ipv6 => AF_INET6,
    }
}

pub fn family_from_af(af: u8) -> Option<Family> {
    match af {
        AF_INET => Some(Family::Ipv4),
        AF_INET6 => Some(Family::Ipv6),
        _ => None,
    }
}

pub fn addr_bytes(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

pub fn parse_addr(family: Family, b: &[u8]) -> Option<IpAddr> {
    match family {
        Family::Ipv4 => Some(IpAddr::V4(Ipv4Addr::from(
            <[u8; 4]>::try_from(b.get(..4)?).ok()?,
        ))),
        Family::Ipv6 => Some(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(b.get(..16)?).ok()?,
        ))),
    }
}

fn unspecified(family: Family) -> IpAddr {
    match family {
        Family::Ipv4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Family::Ipv6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// Header table byte: the id itself when it fits, else RT_TABLE_UNSPEC plus
/// an RTA_TABLE/FRA_TABLE attribute (as iproute2 does).
pub fn header_table(table: u32) -> u8 {
    if table < 256 {
        table as u8
    } else {
        RT_TABLE_UNSPEC
    }
}

fn rtmsg(
    family: Family,
    dst_len: u8,
    table: u32,
    protocol: u8,
    scope: u8,
    rtype: u8,
) -> [u8; RTMSG_LEN] {
    [
        af(family),
        dst_len,
        0,
        0,
        header_table(table),
        protocol,
        scope,
        rtype,
        0,
        0,
        0,
        0,
    ]
}

/// RTM_NEWROUTE with NLM_F_CREATE|NLM_F_REPLACE: adds the route or rewrites
/// the one with the same key in place (a failover is one message).
pub fn replace_msg(route: &Route, protocol: u8) -> MsgBuilder {
    let (rtype, scope) = match &route.kind {
        RouteKind::Unicast(_) if route.scope_link => (RTN_UNICAST, RT_SCOPE_LINK),
        RouteKind::Unicast(_) => (RTN_UNICAST, RT_SCOPE_UNIVERSE),
        RouteKind::Unreachable => (RTN_UNREACHABLE, RT_SCOPE_UNIVERSE),
        RouteKind::Blackhole => (RTN_BLACKHOLE, RT_SCOPE_UNIVERSE),
    };
    let mut m = MsgBuilder::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE);
    m.bytes(&rtmsg(
        route.family,
        route.dst.prefix_len,
        route.table,
        protocol,
        scope,
        rtype,
    ));
    key_attrs(&mut m, route);
    if let Some(src) = route.prefsrc {
        m.attr(RTA_PREFSRC, &addr_bytes(src));
    }
    if let RouteKind::Unicast(hops) = &route.kind {
        if let [hop] = hops.as_slice() {
            if let Some(gw) = hop.gateway {
                m.attr(RTA_GATEWAY, &addr_bytes(gw));
            }
            m.attr_u32(RTA_OIF, hop.ifindex);
        } else {
            let at = m.begin_nested(RTA_MULTIPATH);
            for hop in hops {
                let start = m.len();
                // struct rtnexthop { len, flags, hops (weight - 1), ifindex }
                let mut rtnh = [0u8; RTNH_LEN];
                rtnh[3] = (hop.weight.clamp(1, 256) - 1) as u8;
                rtnh[4..8].copy_from_slice(&(hop.ifindex as i32).to_ne_bytes());
                m.bytes(&rtnh);
                if let Some(gw) = hop.gateway {
                    m.attr(RTA_GATEWAY, &addr_bytes(gw));
                }
                let len = (m.len() - start) as u16;
                m.patch(start, &len.to_ne_bytes());
            }
            m.end_nested(at);
        }
    }
    m
}

fn key_attrs(m: &mut MsgBuilder, route: &Route) {
    // iproute2 names the IPv6 default destination (::) explicitly; the
    // kernel takes either form.
    if route.dst.prefix_len > 0 || route.family == Family::Ipv6 {
        m.attr(RTA_DST, &addr_bytes(route.dst.addr));
    }
    if route.table >= 256 {
        m.attr_u32(RTA_TABLE, route.table);
    }
    m.attr_u32(RTA_PRIORITY, route.metric);
}

/// RTM_DELROUTE by key and our protocol only (so we never delete a route of
/// someone else that happens to share the key).
pub fn delete_msg(route: &Route, protocol: u8) -> MsgBuilder {
    let mut m = MsgBuilder::new(RTM_DELROUTE, 0);
    m.bytes(&rtmsg(
        route.family,
        route.dst.prefix_len,
        route.table,
        protocol,
        RT_SCOPE_NOWHERE,
        0,
    ));
    key_attrs(&mut m, route);
    m
}

pub fn replace_request(route: &Route, protocol: u8) -> Request {
    Request {
        msg: replace_msg(route, protocol),
        what: format!("replace route {route}"),
    }
}

pub fn delete_request(route: &Route, protocol: u8) -> Request {
    Request {
        msg: delete_msg(route, protocol),
        what: format!("delete route {route}"),
    }
}

/// A route from a dump, with what the plan type does not carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpedRoute {
    pub route: Route,
    pub protocol: u8,
    /// Source prefix length (netifd's source-specific IPv6 defaults).
    pub src_len: u8,
}

/// Parse an RTM_NEWROUTE body; None for kinds the plan does not model
/// (local, broadcast, multicast, cloned...).
pub fn parse_route(msg: &RawMsg) -> Option<DumpedRoute> {
    let b = &msg.payload;
    if b.len() < RTMSG_LEN {
        return None;
    }
    let family = family_from_af(b[0])?;
    let (dst_len, src_len, header_tbl, protocol, scope, rtype) =
        (b[1], b[2], b[4], b[5], b[6], b[7]);
    let mut table = u32::from(header_tbl);
    let mut dst = unspecified(family);
    let mut metric = 0;
    let mut oif = 0;
    let mut gateway = None;
    let mut prefsrc = None;
    let mut multipath = None;
    for (ty, p) in attrs(b, RTMSG_LEN) {
        match ty {
            RTA_TABLE => table = attr_u32(p)?,
            RTA_DST => dst = parse_addr(family, p)?,
            RTA_PRIORITY => metric = attr_u32(p)?,
            RTA_OIF => oif = attr_u32(p)?,
            RTA_GATEWAY => gateway = parse_addr(family, p),
            RTA_PREFSRC => prefsrc = parse_addr(family, p),
            RTA_MULTIPATH => multipath = Some(parse_multipath(family, p)),
            _ => {}
        }
    }
    let kind = match rtype {
        RTN_UNICAST => match multipath {
            Some(mut hops) if !hops.is_empty() => {
                mwan_core::sort::sort_by_key(&mut hops, |h: &Nexthop| {
                    (h.ifindex, h.gateway.map(addr_bytes))
                });
                RouteKind::Unicast(hops)
            }
            _ => RouteKind::Unicast(vec![Nexthop {
                ifindex: oif,
                gateway,
                weight: 1,
            }]),
        },
        RTN_UNREACHABLE => RouteKind::Unreachable,
        RTN_BLACKHOLE => RouteKind::Blackhole,
        _ => return None,
    };
    let unicast = matches!(kind, RouteKind::Unicast(_));
    Some(DumpedRoute {
        route: Route {
            family,
            table,
            dst: IpNet {
                addr: dst,
                prefix_len: dst_len,
            },
            metric,
            kind,
            prefsrc: if unicast { prefsrc } else { None },
            scope_link: unicast && scope == RT_SCOPE_LINK,
        },
        protocol,
        src_len,
    })
}

fn parse_multipath(family: Family, mut data: &[u8]) -> Vec<Nexthop> {
    let mut hops = Vec::new();
    while data.len() >= RTNH_LEN {
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        if len < RTNH_LEN || len > data.len() {
            break;
        }
        let weight = u32::from(data[3]) + 1;
        let ifindex = i32::from_ne_bytes(data[4..8].try_into().expect("4 bytes")) as u32;
        let gateway = attrs(&data[..len], RTNH_LEN)
            .into_iter()
            .find(|(t, _)| *t == RTA_GATEWAY)
            .and_then(|(_, p)| parse_addr(family, p));
        hops.push(Nexthop {
            ifindex,
            gateway,
            weight,
        });
        data = &data[((len + 3) & !3).min(data.len())..];
    }
    hops
}

/// Which routes to dump. With strict checking the kernel filters by table
/// and protocol itself; we filter again, so older kernels work too.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteFilter {
    pub table: Option<u32>,
    pub protocol: Option<u8>,
}

pub fn dump_routes(
    sock: &mut Socket,
    family: Family,
    filter: RouteFilter,
) -> Result<Vec<DumpedRoute>, NetlinkError> {
    let mut m = MsgBuilder::new(RTM_GETROUTE, 0);
    let table = filter.table.unwrap_or(0);
    m.bytes(&rtmsg(family, 0, table, filter.protocol.unwrap_or(0), 0, 0));
    if filter.table.is_some() && table >= 256 {
        m.attr_u32(RTA_TABLE, table);
    }
    let what = match filter.table {
        Some(t) => format!("dump {family:?} routes of table {t}"),
        None => format!("dump {family:?} routes"),
    };
    let msgs = match sock.dump(&m, &what) {
        Ok(msgs) => msgs,
        // A table that does not exist yet has no routes.
        Err(NetlinkError::Kernel(KernelError { errno, .. }))
            if errno == libc::ENOENT && filter.table.is_some() =>
        {
            return Ok(Vec::new())
        }
        Err(e) => return Err(e),
    };
    Ok(msgs
        .iter()
        .filter(|m| m.msg_type == RTM_NEWROUTE)
        .filter_map(parse_route)
        .filter(|r| filter.table.is_none_or(|t| r.route.table == t))
        .filter(|r| filter.protocol.is_none_or(|p| r.protocol == p))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::split_messages;

    fn round_trip(route: &Route) -> DumpedRoute {
        let bytes = replace_msg(route, 77).finish(1, 0);
        let msgs = split_messages(&bytes).unwrap();
        parse_route(&msgs[0]).expect("parses")
    }

    fn net(s: &str, len: u8) -> IpNet {
        IpNet {
            addr: s.parse().unwrap(),
            prefix_len: len,
        }
    }

    #[test]
    fn what_we_encode_parses_back_to_the_same_route() {
        let hop = |i: u32, gw: &str, weight| Nexthop {
            ifindex: i,
            gateway: Some(gw.parse().unwrap()),
            weight,
        };
        let base = Route {
            family: Family::Ipv4,
            table: 1003,
            dst: net("0.0.0.0", 0),
            metric: 0,
            kind: RouteKind::Unicast(vec![hop(3, "192.0.2.1", 1)]),
            prefsrc: None,
            scope_link: false,
        };
        let cases = vec![
            base.clone(),
            Route {
                kind: RouteKind::Unicast(vec![hop(3, "192.0.2.1", 3), hop(5, "198.51.100.1", 256)]),
                ..base.clone()
            },
            Route {
                dst: net("192.0.2.0", 30),
                kind: RouteKind::Unicast(vec![Nexthop {
                    ifindex: 3,
                    gateway: None,
                    weight: 1,
                }]),
                prefsrc: Some("192.0.2.2".parse().unwrap()),
                scope_link: true,
                ..base.clone()
            },
            Route {
                table: 200,
                kind: RouteKind::Blackhole,
                ..base.clone()
            },
            Route {
                family: Family::Ipv6,
                dst: net("::", 0),
                metric: 1024,
                kind: RouteKind::Unicast(vec![hop(3, "fe80::1", 1), hop(4, "fe80::2", 2)]),
                ..base.clone()
            },
            Route {
                family: Family::Ipv6,
                dst: net("::", 0),
                metric: 1024,
                kind: RouteKind::Unreachable,
                ..base
            },
        ];
        for route in cases {
            let back = round_trip(&route);
            assert_eq!(back.route, route);
            assert_eq!(back.protocol, 77);
        }
    }

    #[test]
    fn delete_names_key_and_protocol_only() {
        let route = Route {
            family: Family::Ipv4,
            table: 1003,
            dst: net("0.0.0.0", 0),
            metric: 0,
            kind: RouteKind::Unicast(vec![Nexthop {
                ifindex: 3,
                gateway: None,
                weight: 1,
            }]),
            prefsrc: None,
            scope_link: true,
        };
        let bytes = delete_msg(&route, 77).finish(1, 0);
        let msg = &split_messages(&bytes).unwrap()[0];
        assert_eq!(msg.msg_type, RTM_DELROUTE);
        assert_eq!(
            (msg.payload[5], msg.payload[6], msg.payload[7]),
            (77, RT_SCOPE_NOWHERE, 0)
        );
        let types: Vec<u16> = attrs(&msg.payload, RTMSG_LEN)
            .iter()
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(types, vec![RTA_TABLE, RTA_PRIORITY]);
    }
}
