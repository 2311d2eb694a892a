//! Automatic mode (docs/mwand.md): with no config file at all, or globals
//! with `option automatic '1'`, mwand builds its config from the router's
//! default routes: netifd's interfaces in fw4's wan zone on OpenWrt, the
//! kernel's main table elsewhere. Pure: the facts come in, UCI text goes
//! out, and the [`Config`] is that text parsed, so `mwanctl config --write`
//! prints exactly what runs.

use crate::config::{self, Config, Family};
use crate::startup::{Netifd, FACTS_WAIT_MS};
use crate::Millis;
use std::net::IpAddr;

/// Probed when nothing else is configured: well-known public resolvers
/// (Cloudflare, Google, Quad9), each answering ICMP from anywhere; the
/// IPv6 ones for IPv6 uplinks.
pub const DEFAULT_TARGETS: [&str; 6] = [
    "1.1.1.1",
    "8.8.8.8",
    "9.9.9.9",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "2620:fe::fe",
];

/// The policy every destination uses in automatic mode.
pub const POLICY: &str = "failover";

/// One default route: from the kernel's main table, or one netifd lists
/// for an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultRoute {
    /// netifd's interface name when known (OpenWrt), else None.
    pub interface: Option<String>,
    pub device: String,
    pub family: Family,
    pub metric: u32,
    pub gateway: Option<IpAddr>,
}

impl DefaultRoute {
    fn name(&self) -> String {
        section_name(self.interface.as_deref().unwrap_or(&self.device))
    }
}

/// One netifd interface as automatic mode reads it (`network.interface
/// dump`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetifdInterface {
    pub name: String,
    /// l3_device when up, else the main device.
    pub device: String,
    pub proto: Option<String>,
    pub metric: Option<u32>,
    /// The firewall zone netifd carries (`data.zone`: set on dynamic
    /// interfaces such as PPPoE's `wan_6`, which /etc/config/firewall
    /// cannot name).
    pub zone: Option<String>,
    /// Its default routes now: family, gateway (None: on-link), metric.
    pub defaults: Vec<(Family, Option<IpAddr>, Option<u32>)>,
}

/// netifd protocols that bring up IPv6 only: a WAN-zone interface of one
/// of these that is down at start becomes an `ipv6` WAN.
const IPV6_PROTOS: [&str; 4] = ["dhcpv6", "6in4", "6to4", "6rd"];

/// fw4's WAN zones in /etc/config/firewall: every zone named `wan` or
/// masquerading, and the networks (netifd interfaces) they list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WanZones {
    pub names: Vec<String>,
    pub networks: Vec<String>,
}

/// Reads the WAN zones from firewall UCI text with our own UCI reader.
/// None when the file has no such zone (then every interface with a
/// default route is a WAN); Err names the file and line of a broken one.
pub fn wan_zones(source: &str, text: &str) -> Result<Option<WanZones>, String> {
    let mut diags = Vec::new();
    let doc = config::uci::read(source, text, &mut diags);
    if let Some(d) = diags.iter().find(|d| d.is_error()) {
        return Err(d.to_string());
    }
    let mut zones = WanZones::default();
    for s in doc.sections.iter().filter(|s| s.kind == "zone") {
        let first = |o: &str| s.option(o).and_then(|o| o.values.first()).map(|v| &v.0);
        let name = first("name").cloned().unwrap_or_default();
        let masq = first("masq").is_some_and(|v| matches!(v.as_str(), "1" | "yes" | "on" | "true"));
        if name != "wan" && !masq {
            continue;
        }
        // fw4 takes `option network 'wan wan6'` and `list network` alike.
        for (value, _) in s.option("network").map_or(&[][..], |o| &o.values) {
            zones
                .networks
                .extend(value.split_whitespace().map(str::to_owned));
        }
        zones.names.push(name);
    }
    Ok((!zones.names.is_empty()).then_some(zones))
}

/// The WANs among netifd's interfaces: those in a WAN zone (by the
/// firewall's `network` list or netifd's `data.zone`; every interface when
/// there is no WAN zone) with a default route now, and those the WAN zone
/// lists that have none yet (down at boot, DHCP pending: they join when
/// netifd brings them up), of the family their protocol brings. A config
/// interface has one family, so an interface with both defaults is taken
/// for IPv4; OpenWrt's IPv6 uplinks are interfaces of their own (`wan6`,
/// `wan_6`).
pub fn netifd_uplinks(
    interfaces: &[NetifdInterface],
    zones: Option<&WanZones>,
) -> Vec<DefaultRoute> {
    let mut out = Vec::new();
    for i in interfaces {
        let listed = zones.is_some_and(|z| z.networks.contains(&i.name));
        let in_zone =
            zones.is_none_or(|z| listed || i.zone.as_ref().is_some_and(|n| z.names.contains(n)));
        let default = i
            .defaults
            .iter()
            .find(|d| d.0 == Family::Ipv4)
            .or(i.defaults.first());
        let (family, gateway, metric) = match default {
            Some(d) if in_zone => *d,
            None if listed => {
                let v6 = i.proto.as_deref().is_some_and(|p| IPV6_PROTOS.contains(&p));
                let family = if v6 { Family::Ipv6 } else { Family::Ipv4 };
                (family, None, None)
            }
            _ => continue,
        };
        out.push(DefaultRoute {
            interface: Some(i.name.clone()),
            device: i.device.clone(),
            family,
            metric: metric.or(i.metric).unwrap_or(0),
            gateway,
        });
    }
    out
}

/// A UCI section name from a device or interface name: letters, digits
/// and `_` only.
fn section_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// One WAN per device and family (its lowest metric), IPv4 first, then by
/// metric, then name.
fn uplinks(routes: &[DefaultRoute]) -> Vec<&DefaultRoute> {
    let mut best: Vec<&DefaultRoute> = Vec::new();
    for r in routes {
        match best
            .iter_mut()
            .find(|b| b.name() == r.name() && b.family == r.family)
        {
            Some(b) if r.metric < b.metric => *b = r,
            Some(_) => {}
            None => best.push(r),
        }
    }
    crate::sort::sort_by(&mut best, |a, b| {
        (a.family == Family::Ipv6, a.metric, a.name()).cmp(&(
            b.family == Family::Ipv6,
            b.metric,
            b.name(),
        ))
    });
    best
}

/// A gateway worth probing: a link-local one needs a scope that track_ip
/// cannot hold (IPv6 uplinks usually have one; their targets remain).
fn trackable(gateway: Option<IpAddr>) -> Option<IpAddr> {
    gateway.filter(|g| match g {
        IpAddr::V4(_) => true,
        IpAddr::V6(a) => a.segments()[0] & 0xffc0 != 0xfe80,
    })
}

/// The config automatic mode runs, as UCI: per uplink an interface of its
/// family tracking its gateway and that family's `targets` (at least two
/// answering while there are both, so a gateway that answers while the
/// internet behind it does not is offline), a member with the uplink's
/// rank within its family as metric, policy `failover` over all of them
/// (IPv4 and IPv6 members together, as mwan3's wan/wan6 configs pair
/// them), and a rule per family sending every destination to it. The last
/// resort is the main table (`default`): with every probe lost, traffic
/// still gets the router's own routing. `globals` is kept (mmx_mask and
/// friends) when given.
pub fn uci(routes: &[DefaultRoute], targets: &[IpAddr], globals: Option<&str>) -> String {
    let mut out =
        String::from("# mwand automatic mode: written from the router's default routes\n");
    out += globals.unwrap_or("config globals 'globals'\n");
    out.push('\n');
    let chosen = uplinks(routes);
    for r in &chosen {
        let name = r.name();
        out += &format!("config interface '{name}'\n\toption enabled '1'\n");
        if r.interface.is_none() {
            out += &format!("\toption device '{}'\n", r.device);
        }
        let v6 = r.family == Family::Ipv6;
        out += if v6 {
            "\toption family 'ipv6'\n"
        } else {
            "\toption family 'ipv4'\n"
        };
        let gateway = trackable(r.gateway);
        let mut track: Vec<IpAddr> = gateway.into_iter().collect();
        track.extend(
            targets
                .iter()
                .filter(|t| t.is_ipv6() == v6 && Some(**t) != gateway),
        );
        for t in &track {
            out += &format!("\tlist track_ip '{t}'\n");
        }
        let reliability = if gateway.is_some() && track.len() > 1 {
            2
        } else {
            1
        };
        out += &format!("\toption reliability '{reliability}'\n\n");
    }
    for family in [Family::Ipv4, Family::Ipv6] {
        let same = chosen.iter().filter(|r| r.family == family);
        for (rank, r) in same.enumerate() {
            let name = r.name();
            out += &format!(
                "config member '{name}_m'\n\toption interface '{name}'\n\toption metric '{}'\n\toption weight '1'\n\n",
                rank + 1
            );
        }
    }
    out += &format!("config policy '{POLICY}'\n");
    for r in &chosen {
        out += &format!("\tlist use_member '{}_m'\n", r.name());
    }
    out += "\toption last_resort 'default'\n";
    for (family, rule, everything) in [
        (Family::Ipv4, "everything", "0.0.0.0/0"),
        (Family::Ipv6, "everything_v6", "::/0"),
    ] {
        if chosen.iter().any(|r| r.family == family) {
            out += &format!(
                "\nconfig rule '{rule}'\n\toption dest_ip '{everything}'\n\toption use_policy '{POLICY}'\n"
            );
        }
    }
    out
}

/// [`uci`] parsed: the config automatic mode runs, and its text. Err when
/// there is no default route (nothing to manage) or the text does not
/// parse (a device name UCI cannot hold).
pub fn config(
    routes: &[DefaultRoute],
    targets: &[IpAddr],
    globals: Option<&str>,
) -> Result<(Config, String), String> {
    if routes.is_empty() {
        return Err("automatic mode: no default route to a WAN, so no uplink to manage".into());
    }
    let text = uci(routes, targets, globals);
    let loaded = config::parse("automatic mode", &text)
        .map_err(|r| format!("automatic mode built a config that does not parse:\n{r}"))?;
    Ok((loaded.config, text))
}

/// Where automatic mode takes its WANs from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// netifd's interfaces, as mwand holds them (its dump, then its events).
    Netifd,
    /// The kernel's default routes: no ubus, or netifd did not list its
    /// interfaces within [`FACTS_WAIT_MS`] of the start.
    Kernel,
    /// netifd may still list them: no WAN until then, or until `.0`.
    Wait(Millis),
}

/// [`Source`] from what mwand knows of netifd, bounded as the first
/// plan's wait is (`startup::first_apply`): a mwand started before
/// netifd (START=19 vs 20) builds its WANs from netifd's list, never from
/// a blocking call.
pub fn source(netifd: Netifd, started_at: Millis, now: Millis) -> Source {
    let until = started_at + FACTS_WAIT_MS;
    match netifd {
        Netifd::Listed => Source::Netifd,
        Netifd::Pending if now < until => Source::Wait(until),
        Netifd::Absent | Netifd::Pending => Source::Kernel,
    }
}

/// The default targets as addresses.
pub fn default_targets() -> Vec<IpAddr> {
    DEFAULT_TARGETS
        .iter()
        .filter_map(|t| t.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_table() {
        let until = 1_000 + FACTS_WAIT_MS;
        #[rustfmt::skip]
        let cases = [
            ("netifd listed its interfaces", Netifd::Listed, 1_001, Source::Netifd),
            ("listed after the wait: netifd all the same", Netifd::Listed, until + 9, Source::Netifd),
            ("no ubus", Netifd::Absent, 1_000, Source::Kernel),
            ("ubus, netifd not listed yet", Netifd::Pending, 1_001, Source::Wait(until)),
            ("just before the bound", Netifd::Pending, until - 1, Source::Wait(until)),
            ("the bound passed without netifd", Netifd::Pending, until, Source::Kernel),
        ];
        for (what, netifd, now, want) in cases {
            assert_eq!(source(netifd, 1_000, now), want, "{what}");
        }
    }

    fn route(device: &str, metric: u32, gw: Option<&str>) -> DefaultRoute {
        DefaultRoute {
            interface: None,
            device: device.into(),
            family: Family::Ipv4,
            metric,
            gateway: gw.map(|g| g.parse().unwrap()),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn facts_become_one_failover_policy_by_metric() {
        let targets = [ip("203.0.113.1"), ip("203.0.113.2")];
        // (routes, expected interfaces in policy order, expected track_ip of the first)
        let cases: Vec<(Vec<DefaultRoute>, Vec<&str>, Vec<&str>)> = vec![
            (
                vec![
                    route("eth2", 20, Some("192.0.2.1")),
                    route("eth1", 10, Some("198.51.100.1")),
                ],
                vec!["eth1", "eth2"],
                vec!["198.51.100.1", "203.0.113.1", "203.0.113.2"],
            ),
            // Two defaults on one device: one WAN, at its lowest metric.
            (
                vec![
                    route("eth1", 30, Some("198.51.100.1")),
                    route("eth2", 20, Some("192.0.2.1")),
                    route("eth1", 10, Some("198.51.100.1")),
                ],
                vec!["eth1", "eth2"],
                vec!["198.51.100.1", "203.0.113.1", "203.0.113.2"],
            ),
            // Equal metrics: by name. On-link PPP default: no gateway.
            (
                vec![
                    route("pppoe-wan", 5, None),
                    route("eth9", 5, Some("192.0.2.1")),
                ],
                vec!["eth9", "pppoe_wan"],
                vec!["192.0.2.1", "203.0.113.1", "203.0.113.2"],
            ),
        ];
        for (routes, order, track) in cases {
            let (config, text) =
                config(&routes, &targets, None).unwrap_or_else(|e| panic!("{routes:?}: {e}"));
            let names: Vec<&str> = config.interfaces.iter().map(|i| i.name.as_str()).collect();
            let mut by_metric = names.clone();
            by_metric.sort_by_key(|n| order.iter().position(|o| o == n));
            assert_eq!(by_metric, order, "{text}");
            let policy = &config.policies[0];
            assert_eq!(policy.name, POLICY);
            let first = &config
                .interfaces
                .iter()
                .find(|i| i.name == order[0])
                .unwrap();
            let tracked: Vec<String> = first.track_ip.iter().map(|t| t.to_string()).collect();
            assert_eq!(tracked, track, "{text}");
            assert!(
                text.contains(&format!(
                    "option interface '{}'\n\toption metric '1'",
                    order[0]
                )),
                "{text}"
            );
            assert!(
                text.contains(&format!(
                    "option interface '{}'\n\toption metric '2'",
                    order[1]
                )),
                "{text}"
            );
            assert_eq!(config.rules.len(), 1);
        }
    }

    #[test]
    fn reliability_needs_more_than_the_gateway_when_there_is_more() {
        let targets = [ip("203.0.113.1")];
        let text = uci(&[route("eth1", 1, Some("192.0.2.1"))], &targets, None);
        assert!(text.contains("option reliability '2'"), "{text}");
        let text = uci(&[route("eth1", 1, None)], &targets, None);
        assert!(text.contains("option reliability '1'"), "{text}");
        let text = uci(&[route("eth1", 1, Some("192.0.2.1"))], &[], None);
        assert!(text.contains("option reliability '1'"), "{text}");
    }

    #[test]
    fn netifd_names_win_and_globals_are_kept() {
        let mut r = route("eth0.2", 1, Some("192.0.2.1"));
        r.interface = Some("wan".into());
        let globals =
            "config globals 'globals'\n\toption mmx_mask '0xFF00'\n\toption automatic '1'\n";
        let (config, text) = config(&[r], &default_targets(), Some(globals)).unwrap();
        assert_eq!(config.interfaces[0].name, "wan");
        assert_eq!(
            config.interfaces[0].device, None,
            "netifd resolves the device: {text}"
        );
        assert_eq!(config.globals.mmx_mask, 0xFF00);
        assert_eq!(config.interfaces[0].track_ip.len(), 4);
    }

    #[test]
    fn no_default_route_is_an_error_that_says_so() {
        let e = config(&[], &default_targets(), None).unwrap_err();
        assert!(e.contains("no default route"), "{e}");
    }

    fn netifd(
        name: &str,
        proto: &str,
        defaults: &[(Family, Option<&str>)],
        zone: Option<&str>,
    ) -> NetifdInterface {
        NetifdInterface {
            name: name.into(),
            device: format!("dev-{name}"),
            proto: Some(proto.into()),
            metric: Some(10),
            zone: zone.map(str::to_owned),
            defaults: defaults
                .iter()
                .map(|(f, gw)| (*f, gw.map(ip), None))
                .collect(),
        }
    }

    #[test]
    fn the_wan_zone_is_named_wan_or_masquerades() {
        // (firewall text, expected zone names and networks)
        type Zones<'a> = Option<(Vec<&'a str>, Vec<&'a str>)>;
        let cases: Vec<(&str, Zones)> = vec![
            // fw4's default: lan and wan, wan listing wan and wan6 as a list.
            (
                "config zone\n\toption name 'lan'\n\tlist network 'lan'\n\n\
                 config zone\n\toption name 'wan'\n\tlist network 'wan'\n\tlist network 'wan6'\n\toption masq '1'\n",
                Some((vec!["wan"], vec!["wan", "wan6"])),
            ),
            // Older configs: one option, space separated; a second
            // masquerading zone under another name.
            (
                "config zone 'z1'\n\toption name 'wan'\n\toption network 'wan wan6 wwan'\n\n\
                 config zone\n\toption name 'lte'\n\toption masq 'yes'\n\tlist network 'lte'\n\n\
                 config zone\n\toption name 'guest'\n\tlist network 'guest'\n",
                Some((vec!["wan", "lte"], vec!["wan", "wan6", "wwan", "lte"])),
            ),
            // No WAN zone: no filter.
            ("config zone\n\toption name 'lan'\n\tlist network 'lan'\n", None),
            ("", None),
        ];
        for (text, want) in cases {
            let got = wan_zones("/etc/config/firewall", text).unwrap();
            let want = want.map(|(names, networks)| WanZones {
                names: names.into_iter().map(str::to_owned).collect(),
                networks: networks.into_iter().map(str::to_owned).collect(),
            });
            assert_eq!(got, want, "{text}");
        }
        let e = wan_zones("/etc/config/firewall", "config zone\n\toption name 'wan\n").unwrap_err();
        assert!(e.starts_with("/etc/config/firewall:2:"), "{e}");
    }

    #[test]
    fn netifd_wans_are_the_wan_zones_interfaces() {
        let zones = WanZones {
            names: vec!["wan".into()],
            networks: ["wan", "wan6", "wanb", "wwan", "lte6"]
                .map(str::to_owned)
                .to_vec(),
        };
        let (v4, v6) = (Family::Ipv4, Family::Ipv6);
        let interfaces = vec![
            netifd("lan", "static", &[], None),
            netifd("wan", "dhcp", &[(v4, Some("192.0.2.1"))], None),
            netifd("wan6", "dhcpv6", &[(v6, Some("fe80::1"))], None),
            // A default route outside the WAN zone (a VPN, a guest uplink).
            netifd("vpn", "wireguard", &[(v4, None)], None),
            // PPPoE's dynamic IPv6 child: in the zone by netifd's data.
            netifd("wanb_6", "dhcpv6", &[(v6, None)], Some("wan")),
            // Both families on one interface: its IPv4 one.
            netifd(
                "wanb",
                "static",
                &[(v6, Some("2001:db8::1")), (v4, Some("198.51.100.1"))],
                None,
            ),
            // Listed in the zone, down at start: taken by its protocol's family.
            netifd("wwan", "dhcp", &[], None),
            netifd("lte6", "dhcpv6", &[], None),
        ];
        let got = |zones| -> Vec<(String, Family, Option<IpAddr>)> {
            netifd_uplinks(&interfaces, zones)
                .into_iter()
                .map(|r| (r.interface.unwrap(), r.family, r.gateway))
                .collect()
        };
        let want = |name: &str, family, gw: Option<&str>| (name.to_owned(), family, gw.map(ip));
        assert_eq!(
            got(Some(&zones)),
            [
                want("wan", v4, Some("192.0.2.1")),
                want("wan6", v6, Some("fe80::1")),
                want("wanb_6", v6, None),
                want("wanb", v4, Some("198.51.100.1")),
                want("wwan", v4, None),
                want("lte6", v6, None),
            ]
        );
        // No WAN zone in the firewall config: every interface with a
        // default route, none without (a LAN cannot be told from a WAN).
        let names: Vec<String> = got(None).into_iter().map(|w| w.0).collect();
        assert_eq!(names, ["wan", "wan6", "vpn", "wanb_6", "wanb"]);
    }

    #[test]
    fn ipv6_uplinks_get_ipv6_members_in_the_same_policy() {
        let v6 = |interface: &str, metric: u32, gw: &str| DefaultRoute {
            interface: Some(interface.into()),
            device: "eth1".into(),
            family: Family::Ipv6,
            metric,
            gateway: Some(ip(gw)),
        };
        let mut wan = route("eth1", 10, Some("192.0.2.1"));
        wan.interface = Some("wan".into());
        let mut wanb = route("eth2", 20, Some("198.51.100.1"));
        wanb.interface = Some("wanb".into());
        let routes = [
            v6("wanb6", 20, "2001:db8:2::1"),
            wanb,
            v6("wan6", 10, "fe80::1"),
            wan,
        ];
        let targets = [ip("203.0.113.1"), ip("2001:db8:ff::1")];
        let (config, text) = config(&routes, &targets, None).unwrap();
        let by_name = |n: &str| config.interfaces.iter().find(|i| i.name == n).unwrap();
        assert_eq!(by_name("wan6").family, Family::Ipv6, "{text}");
        assert_eq!(by_name("wan").family, Family::Ipv4, "{text}");
        // A link-local gateway is not a track_ip; a global one is.
        assert_eq!(by_name("wan6").track_ip, ["2001:db8:ff::1"], "{text}");
        assert_eq!(
            by_name("wanb6").track_ip,
            ["2001:db8:2::1", "2001:db8:ff::1"],
            "{text}"
        );
        assert_eq!(by_name("wan").track_ip, ["192.0.2.1", "203.0.113.1"]);
        // Ranked within each family: wan and wan6 first.
        let metric = |m: &str| {
            config
                .members
                .iter()
                .find(|x| x.name == m)
                .map(|x| x.metric)
                .unwrap()
        };
        assert_eq!(
            [
                metric("wan_m"),
                metric("wanb_m"),
                metric("wan6_m"),
                metric("wanb6_m")
            ],
            [1, 2, 1, 2],
            "{text}"
        );
        assert_eq!(config.policies[0].use_member.len(), 4, "{text}");
        assert_eq!(config.rules.len(), 2, "a rule per family: {text}");
        assert!(text.contains("option dest_ip '::/0'"), "{text}");
    }
}
