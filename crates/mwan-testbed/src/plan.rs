//! Addressing plan: which namespace, device and address every part of a
//! testbed gets. Pure data, computed from the testbed name and WAN count, so
//! the CLI, the harness and `down` of a crashed run all agree on names.
//!
//! Addresses come only from the documentation ranges:
//! - 198.51.100.0/24 in /29s and 2001:db8:1:N::/64: router <-> ISP N
//! - 203.0.113.128/25 in /30s and 2001:db8:2:N::/64: ISP N <-> internet
//! - 203.0.113.0/25 and 2001:db8:f::/64: target hosts in the internet
//! - 192.0.2.0/24 and 2001:db8:3::/64: the LAN behind the router

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Most WANs one testbed supports (limited by the /29 and /30 carving).
pub const MAX_WANS: usize = 32;
/// Prefix of every namespace a testbed creates; `down --all` removes them all.
pub const NS_PREFIX: &str = "mwtb-";
/// Device names inside the namespaces (fixed: every device lives in a
/// namespace of its own testbed, so names never collide).
pub const LAN_DEV_ROUTER: &str = "eth0";
pub const LAN_DEV_CLIENT: &str = "eth0";
pub const ISP_CUSTOMER_DEV: &str = "cust";
pub const ISP_HOP_DEV: &str = "hop";
pub const ISP_GATEWAY_DEV: &str = "gw";
pub const ISP_UPSTREAM_DEV: &str = "uplink";
/// Target hosts live on the internet namespace's loopback.
pub const INTERNET_HOSTS_DEV: &str = "lo";
/// Main-table metric of WAN N's default route is `METRIC_BASE + N` (netifd
/// gives each interface its own metric; here they increase with N).
pub const METRIC_BASE: u32 = 0;

/// One uplink as the router sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WanInfo {
    /// Logical name: "wan1", "wan2", ...
    pub name: String,
    /// 1-based index.
    pub index: usize,
    /// Device in the router namespace ("eth1", "eth2", ...).
    pub device: String,
    pub router_v4: Ipv4Addr,
    pub v4_prefix: u8,
    pub gateway_v4: Ipv4Addr,
    pub router_v6: Ipv6Addr,
    pub v6_prefix: u8,
    pub gateway_v6: Ipv6Addr,
    /// Main-table metric of this WAN's default routes in the router.
    pub metric: u32,
    /// Namespace of this WAN's ISP (holds the impairment hop).
    pub isp_ns: String,
}

impl WanInfo {
    /// The WAN's IPv4 subnet in CIDR notation.
    pub fn subnet_v4(&self) -> String {
        let base = u32::from(self.router_v4) & !((1u32 << (32 - self.v4_prefix)) - 1);
        format!("{}/{}", Ipv4Addr::from(base), self.v4_prefix)
    }

    /// The WAN's IPv6 subnet in CIDR notation.
    pub fn subnet_v6(&self) -> String {
        let seg = self.router_v6.segments();
        format!(
            "{}/{}",
            Ipv6Addr::new(seg[0], seg[1], seg[2], seg[3], 0, 0, 0, 0),
            self.v6_prefix
        )
    }
}

/// The services in the internet namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    /// Hosts answering ICMP echo.
    pub icmp_v4: Vec<Ipv4Addr>,
    pub icmp_v6: Vec<Ipv6Addr>,
    /// TCP echo (port 7): sends back what it receives.
    pub tcp_echo: Vec<SocketAddr>,
    /// TCP sink (port 9, discard): reads and drops, for upload tests.
    pub tcp_sink: Vec<SocketAddr>,
    /// TCP source (port 19, chargen-like): sends until closed, for downloads.
    pub tcp_source: Vec<SocketAddr>,
    /// HTTP server (port 80): `GET /` answers with the client's address as
    /// the server saw it, so a test can tell which WAN a flow left by.
    pub http: Vec<SocketAddr>,
    /// DNS responder (UDP 53).
    pub dns_server: Vec<SocketAddr>,
    /// The one name it answers (A and AAAA); other names get NXDOMAIN.
    pub dns_name: String,
    pub dns_answer_v4: Ipv4Addr,
    pub dns_answer_v6: Ipv6Addr,
}

/// The LAN behind the router.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LanInfo {
    pub router_device: String,
    pub router_v4: Ipv4Addr,
    pub router_v6: Ipv6Addr,
    pub client_device: String,
    pub client_v4: Ipv4Addr,
    pub client_v6: Ipv6Addr,
    pub v4_prefix: u8,
    pub v6_prefix: u8,
}

/// Names and addresses of one testbed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub name: String,
    pub router_ns: String,
    pub lan_ns: String,
    pub internet_ns: String,
    pub wans: Vec<WanInfo>,
    pub lan: LanInfo,
    pub targets: Targets,
}

/// Why a plan cannot be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    WanCount(usize),
    BadName(String),
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanError::WanCount(n) => write!(f, "--wans {n}: expected 1 to {MAX_WANS}"),
            PlanError::BadName(n) => write!(
                f,
                "testbed name '{n}': expected 1 to 20 characters from a-z, 0-9 and '-'"
            ),
        }
    }
}

impl std::error::Error for PlanError {}

/// Checks a testbed name (it becomes part of namespace names).
pub fn check_name(name: &str) -> Result<(), PlanError> {
    let ok = !name.is_empty()
        && name.len() <= 20
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(PlanError::BadName(name.to_string()))
    }
}

/// Namespace name of a role in testbed `name`.
pub fn ns_name(name: &str, role: &str) -> String {
    format!("{NS_PREFIX}{name}-{role}")
}

/// IPv4 address of ISP `index` (1-based) on the router link: (gateway, router).
fn wan_v4(index: usize) -> (Ipv4Addr, Ipv4Addr) {
    let base = 8 * (index as u8 - 1);
    (
        Ipv4Addr::new(198, 51, 100, base + 1),
        Ipv4Addr::new(198, 51, 100, base + 2),
    )
}

fn wan_v6(index: usize) -> (Ipv6Addr, Ipv6Addr) {
    let i = index as u16;
    (
        Ipv6Addr::new(0x2001, 0xdb8, 1, i, 0, 0, 0, 1),
        Ipv6Addr::new(0x2001, 0xdb8, 1, i, 0, 0, 0, 2),
    )
}

/// Transit link ISP `index` <-> internet: (internet side, ISP side).
pub fn transit_v4(index: usize) -> (Ipv4Addr, Ipv4Addr) {
    let base = 128 + 4 * (index as u8 - 1);
    (
        Ipv4Addr::new(203, 0, 113, base + 1),
        Ipv4Addr::new(203, 0, 113, base + 2),
    )
}

pub fn transit_v6(index: usize) -> (Ipv6Addr, Ipv6Addr) {
    let i = index as u16;
    (
        Ipv6Addr::new(0x2001, 0xdb8, 2, i, 0, 0, 0, 1),
        Ipv6Addr::new(0x2001, 0xdb8, 2, i, 0, 0, 0, 2),
    )
}

/// Target host addresses (v4 host byte, v6 last segment) per service.
const ICMP_HOSTS: [(u8, u16); 3] = [(1, 1), (2, 2), (3, 3)];
const TCP_HOST: (u8, u16) = (10, 0x10);
const HTTP_HOST: (u8, u16) = (80, 0x80);
const DNS_HOST: (u8, u16) = (53, 0x53);

fn target_v4(host: u8) -> Ipv4Addr {
    Ipv4Addr::new(203, 0, 113, host)
}

fn target_v6(host: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0xf, 0, 0, 0, 0, host)
}

fn both(host: (u8, u16), port: u16) -> Vec<SocketAddr> {
    vec![
        SocketAddr::new(IpAddr::V4(target_v4(host.0)), port),
        SocketAddr::new(IpAddr::V6(target_v6(host.1)), port),
    ]
}

/// Every address the internet namespace's hosts device carries.
pub fn internet_host_addrs() -> Vec<IpAddr> {
    let mut hosts: Vec<(u8, u16)> = ICMP_HOSTS.to_vec();
    hosts.extend([TCP_HOST, HTTP_HOST, DNS_HOST]);
    hosts
        .iter()
        .flat_map(|h| [IpAddr::V4(target_v4(h.0)), IpAddr::V6(target_v6(h.1))])
        .collect()
}

pub fn targets() -> Targets {
    Targets {
        icmp_v4: ICMP_HOSTS.iter().map(|h| target_v4(h.0)).collect(),
        icmp_v6: ICMP_HOSTS.iter().map(|h| target_v6(h.1)).collect(),
        tcp_echo: both(TCP_HOST, 7),
        tcp_sink: both(TCP_HOST, 9),
        tcp_source: both(TCP_HOST, 19),
        http: both(HTTP_HOST, 80),
        dns_server: both(DNS_HOST, 53),
        dns_name: "probe.example.net".to_string(),
        dns_answer_v4: target_v4(HTTP_HOST.0),
        dns_answer_v6: target_v6(HTTP_HOST.1),
    }
}

/// The plan for testbed `name` with `wans` uplinks.
pub fn plan(name: &str, wans: usize) -> Result<Plan, PlanError> {
    check_name(name)?;
    if wans == 0 || wans > MAX_WANS {
        return Err(PlanError::WanCount(wans));
    }
    let wans = (1..=wans)
        .map(|i| {
            let (gateway_v4, router_v4) = wan_v4(i);
            let (gateway_v6, router_v6) = wan_v6(i);
            WanInfo {
                name: format!("wan{i}"),
                index: i,
                device: format!("eth{i}"),
                router_v4,
                v4_prefix: 29,
                gateway_v4,
                router_v6,
                v6_prefix: 64,
                gateway_v6,
                metric: METRIC_BASE + i as u32,
                isp_ns: ns_name(name, &format!("isp{i}")),
            }
        })
        .collect();
    Ok(Plan {
        name: name.to_string(),
        router_ns: ns_name(name, "router"),
        lan_ns: ns_name(name, "lan"),
        internet_ns: ns_name(name, "inet"),
        wans,
        lan: LanInfo {
            router_device: LAN_DEV_ROUTER.to_string(),
            router_v4: Ipv4Addr::new(192, 0, 2, 1),
            router_v6: Ipv6Addr::new(0x2001, 0xdb8, 3, 0, 0, 0, 0, 1),
            client_device: LAN_DEV_CLIENT.to_string(),
            client_v4: Ipv4Addr::new(192, 0, 2, 2),
            client_v6: Ipv6Addr::new(0x2001, 0xdb8, 3, 0, 0, 0, 0, 2),
            v4_prefix: 24,
            v6_prefix: 64,
        },
        targets: targets(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wan_subnets_do_not_overlap_and_stay_in_range() {
        let p = plan("x", MAX_WANS).unwrap();
        let mut subnets: Vec<String> = p.wans.iter().map(|w| w.subnet_v4()).collect();
        subnets.dedup();
        assert_eq!(subnets.len(), MAX_WANS);
        assert_eq!(p.wans[0].subnet_v4(), "198.51.100.0/29");
        assert_eq!(p.wans[31].router_v4, Ipv4Addr::new(198, 51, 100, 250));
        assert_eq!(p.wans[1].subnet_v6(), "2001:db8:1:2::/64");
        assert_eq!(transit_v4(32).1, Ipv4Addr::new(203, 0, 113, 254));
    }

    #[test]
    fn bad_input_is_named() {
        assert_eq!(plan("x", 0), Err(PlanError::WanCount(0)));
        assert!(plan("Bad_Name", 2)
            .unwrap_err()
            .to_string()
            .contains("Bad_Name"));
    }
}
