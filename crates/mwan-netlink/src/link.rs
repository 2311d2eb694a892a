//! Links, addresses, WAN facts and rtnetlink events.

use std::net::IpAddr;

use mwan_core::config::Family;
use mwan_core::plan::{RouteKind, WanAddress, WanFacts, MAIN_TABLE};

use crate::error::NetlinkError;
use crate::route::{self, af, family_from_af, parse_addr, RouteFilter};
use crate::rule;
use crate::socket::{attr_str, attr_u32, attrs, MsgBuilder, RawMsg, Socket};
use neli::consts::socket::NlFamily;

pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const RTM_GETADDR: u16 = 22;

const IFLA_IFNAME: u16 = 3;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
const IFF_UP: u32 = 0x1;
const IFF_LOWER_UP: u32 = 0x10000;
const IFA_F_DADFAILED: u32 = 0x08;
const IFA_F_TENTATIVE: u32 = 0x40;
const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;

const RTNLGRP_LINK: u32 = 1;
const RTNLGRP_IPV4_IFADDR: u32 = 5;
const RTNLGRP_IPV4_ROUTE: u32 = 7;
const RTNLGRP_IPV4_RULE: u32 = 8;
const RTNLGRP_IPV6_IFADDR: u32 = 9;
const RTNLGRP_IPV6_ROUTE: u32 = 11;
const RTNLGRP_IPV6_RULE: u32 = 19;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub ifindex: u32,
    pub name: String,
    /// IFF_UP: administratively up.
    pub up: bool,
    /// IFF_LOWER_UP: carrier.
    pub carrier: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub ifindex: u32,
    pub addr: WanAddress,
}

pub fn parse_link(msg: &RawMsg) -> Option<Link> {
    let b = &msg.payload;
    if b.len() < IFINFOMSG_LEN {
        return None;
    }
    let ifindex = i32::from_ne_bytes(b[4..8].try_into().ok()?) as u32;
    let flags = u32::from_ne_bytes(b[8..12].try_into().ok()?);
    let name = attrs(b, IFINFOMSG_LEN)
        .into_iter()
        .find(|(t, _)| *t == IFLA_IFNAME)
        .map(|(_, p)| attr_str(p))?;
    Some(Link {
        ifindex,
        name,
        up: flags & IFF_UP != 0,
        carrier: flags & IFF_LOWER_UP != 0,
    })
}

pub fn parse_address(msg: &RawMsg) -> Option<Address> {
    let b = &msg.payload;
    if b.len() < IFADDRMSG_LEN {
        return None;
    }
    let family = family_from_af(b[0])?;
    let prefix_len = b[1];
    let mut flags = u32::from(b[2]);
    let ifindex = u32::from_ne_bytes(b[4..8].try_into().ok()?);
    let mut local = None;
    let mut address = None;
    for (ty, p) in attrs(b, IFADDRMSG_LEN) {
        match ty {
            IFA_LOCAL => local = parse_addr(family, p),
            IFA_ADDRESS => address = parse_addr(family, p),
            IFA_FLAGS => flags = attr_u32(p).unwrap_or(flags),
            _ => {}
        }
    }
    // On point-to-point links IFA_ADDRESS is the peer; IFA_LOCAL is ours.
    let addr = local.or(address)?;
    Some(Address {
        ifindex,
        addr: WanAddress {
            addr,
            prefix_len,
            tentative: flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED) != 0,
        },
    })
}

pub fn dump_links(sock: &mut Socket) -> Result<Vec<Link>, NetlinkError> {
    let mut m = MsgBuilder::new(RTM_GETLINK, 0);
    m.bytes(&[0u8; IFINFOMSG_LEN]);
    Ok(sock
        .dump(&m, "dump links")?
        .iter()
        .filter(|m| m.msg_type == RTM_NEWLINK)
        .filter_map(parse_link)
        .collect())
}

pub fn dump_addresses(sock: &mut Socket, family: Family) -> Result<Vec<Address>, NetlinkError> {
    let mut m = MsgBuilder::new(RTM_GETADDR, 0);
    m.bytes(&[af(family), 0, 0, 0, 0, 0, 0, 0]);
    Ok(sock
        .dump(&m, &format!("dump {family:?} addresses"))?
        .iter()
        .filter(|m| m.msg_type == RTM_NEWADDR)
        .filter_map(parse_address)
        .collect())
}

/// The kernel's view of every device in one pass (3 link/address dumps and
/// 2 main-table dumps), to build [`WanFacts`] for many WANs.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub links: Vec<Link>,
    pub addresses: Vec<Address>,
    /// Main-table routes (not ours).
    pub main_routes: Vec<route::DumpedRoute>,
}

impl Snapshot {
    pub fn take(sock: &mut Socket, our_protocol: u8) -> Result<Self, NetlinkError> {
        let links = dump_links(sock)?;
        let mut addresses = dump_addresses(sock, Family::Ipv4)?;
        addresses.extend(dump_addresses(sock, Family::Ipv6)?);
        let mut main_routes = Vec::new();
        for family in [Family::Ipv4, Family::Ipv6] {
            let filter = RouteFilter {
                table: Some(MAIN_TABLE),
                protocol: None,
            };
            main_routes.extend(
                route::dump_routes(sock, family, filter)?
                    .into_iter()
                    .filter(|r| r.protocol != our_protocol),
            );
        }
        Ok(Snapshot {
            links,
            addresses,
            main_routes,
        })
    }

    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }

    /// Facts about `device`: flags, addresses, gateways from main's default
    /// routes through it (netifd's, including IPv6 source-specific ones),
    /// and main's other routes through it for mirroring.
    pub fn wan_facts(&self, device: &str) -> WanFacts {
        let Some(link) = self.link(device) else {
            return WanFacts {
                device: device.to_string(),
                ..WanFacts::default()
            };
        };
        let mut facts = WanFacts {
            device: device.to_string(),
            ifindex: link.ifindex,
            up: link.up,
            carrier: link.carrier,
            addresses: self
                .addresses
                .iter()
                .filter(|a| a.ifindex == link.ifindex)
                .map(|a| a.addr)
                .collect(),
            ..WanFacts::default()
        };
        let mut defaults: Vec<&route::DumpedRoute> = Vec::new();
        for r in &self.main_routes {
            let RouteKind::Unicast(hops) = &r.route.kind else {
                continue;
            };
            if !hops.iter().any(|h| h.ifindex == link.ifindex) {
                continue;
            }
            if r.route.dst.prefix_len == 0 {
                defaults.push(r);
            } else if hops.len() == 1 && r.src_len == 0 {
                facts.main_routes.push(r.route.clone());
            }
        }
        mwan_core::sort::sort_by_key(&mut defaults, |r| r.route.metric);
        for r in defaults {
            let RouteKind::Unicast(hops) = &r.route.kind else {
                continue;
            };
            let gw = hops
                .iter()
                .find(|h| h.ifindex == link.ifindex)
                .and_then(|h| h.gateway);
            match gw {
                Some(IpAddr::V4(g)) if facts.gateway_v4.is_none() => facts.gateway_v4 = Some(g),
                Some(IpAddr::V6(g)) if facts.gateway_v6.is_none() => facts.gateway_v6 = Some(g),
                _ => {}
            }
        }
        facts
    }
}

/// Something changed in the kernel that may need a reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Link {
        link: Link,
        removed: bool,
    },
    Address {
        ifindex: u32,
        family: Family,
        removed: bool,
    },
    /// A route appeared or vanished; `ours` when it carries our protocol.
    Route {
        family: Family,
        table: u32,
        ours: bool,
        removed: bool,
    },
    Rule {
        family: Family,
        ours: bool,
        removed: bool,
    },
    /// Events were lost (ENOBUFS): re-dump everything.
    Resync,
}

/// A non-blocking socket subscribed to link, address, route and rule
/// events; register its fd with mio (readable) and call [`Events::read`].
pub struct Events {
    sock: Socket,
    our_protocol: u8,
    /// Route/rule notifications caused by this port id (our own request
    /// socket) are dropped: they echo what we just did.
    ignore_pid: Option<u32>,
}

impl Events {
    pub fn subscribe(our_protocol: u8) -> Result<Self, NetlinkError> {
        let groups = [
            RTNLGRP_LINK,
            RTNLGRP_IPV4_IFADDR,
            RTNLGRP_IPV6_IFADDR,
            RTNLGRP_IPV4_ROUTE,
            RTNLGRP_IPV6_ROUTE,
            RTNLGRP_IPV4_RULE,
            RTNLGRP_IPV6_RULE,
        ];
        let sock = Socket::open(NlFamily::Route, &groups)?;
        sock.set_nonblocking()?;
        Ok(Events {
            sock,
            our_protocol,
            ignore_pid: None,
        })
    }

    /// Drop route and rule notifications of changes made through the socket
    /// with this port id ([`crate::Rtnl::pid`]): the kernel stamps each
    /// notification with the requester's port id, so our own failovers do
    /// not come back as "someone changed our objects".
    pub fn ignore_changes_by(&mut self, pid: u32) {
        self.ignore_pid = Some(pid);
    }

    /// Drain everything queued; returns at once when nothing is.
    pub fn read(&mut self) -> Result<Vec<Event>, NetlinkError> {
        let mut out = Vec::new();
        loop {
            match self.sock.recv() {
                Ok(msgs) => out.extend(
                    msgs.iter()
                        .filter_map(|m| parse_event(m, self.our_protocol, self.ignore_pid)),
                ),
                Err(NetlinkError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::WouldBlock =>
                {
                    return Ok(out)
                }
                Err(NetlinkError::Overrun) => out.push(Event::Resync),
                Err(e) => return Err(e),
            }
        }
    }
}

/// One rtnetlink notification as an [`Event`]; route and rule changes
/// made by `ignore_pid` (our own requests) are dropped.
pub fn parse_event(m: &RawMsg, our_protocol: u8, ignore_pid: Option<u32>) -> Option<Event> {
    let ours_echo = ignore_pid.is_some_and(|p| p == m.pid && p != 0);
    match m.msg_type {
        route::RTM_NEWROUTE | route::RTM_DELROUTE | rule::RTM_NEWRULE | rule::RTM_DELRULE
            if ours_echo =>
        {
            None
        }
        RTM_NEWLINK | RTM_DELLINK => Some(Event::Link {
            link: parse_link(m)?,
            removed: m.msg_type == RTM_DELLINK,
        }),
        RTM_NEWADDR | RTM_DELADDR => {
            let family = family_from_af(*m.payload.first()?)?;
            let a = parse_address(m)?;
            Some(Event::Address {
                ifindex: a.ifindex,
                family,
                removed: m.msg_type == RTM_DELADDR,
            })
        }
        route::RTM_NEWROUTE | route::RTM_DELROUTE => {
            let r = route::parse_route(m)?;
            Some(Event::Route {
                family: r.route.family,
                table: r.route.table,
                ours: r.protocol == our_protocol,
                removed: m.msg_type == route::RTM_DELROUTE,
            })
        }
        rule::RTM_NEWRULE | rule::RTM_DELRULE => {
            let (r, proto) = rule::parse_rule(m)?;
            Some(Event::Rule {
                family: r.family,
                ours: proto == our_protocol,
                removed: m.msg_type == rule::RTM_DELRULE,
            })
        }
        _ => None,
    }
}

impl std::os::fd::AsRawFd for Events {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.sock.as_raw_fd()
    }
}
