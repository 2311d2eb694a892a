//! Automatic mode (docs/mwand.md): with no config file at all, or globals
//! with `option automatic '1'`, mwand builds its config from the router's
//! default routes. Pure: the facts come in, UCI text goes out, and the
//! [`Config`] is that text parsed, so `mwanctl config --write` prints
//! exactly what runs.

use crate::config::{self, Config};
use std::net::IpAddr;

/// Probed when nothing else is configured: well-known public resolvers
/// (Cloudflare, Google, Quad9), each answering ICMP from anywhere.
pub const DEFAULT_TARGETS: [&str; 3] = ["1.1.1.1", "8.8.8.8", "9.9.9.9"];

/// The policy every destination uses in automatic mode.
pub const POLICY: &str = "failover";

/// One default route of the main table (IPv4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultRoute {
    /// netifd's interface name when known (OpenWrt), else None.
    pub interface: Option<String>,
    pub device: String,
    pub metric: u32,
    pub gateway: Option<IpAddr>,
}

/// A UCI section name from a device or interface name: letters, digits
/// and `_` only.
fn section_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// One WAN per device (its lowest metric), ordered by metric, then name.
fn uplinks(routes: &[DefaultRoute]) -> Vec<&DefaultRoute> {
    let mut best: Vec<&DefaultRoute> = Vec::new();
    for r in routes {
        match best.iter_mut().find(|b| b.device == r.device) {
            Some(b) if r.metric < b.metric => *b = r,
            Some(_) => {}
            None => best.push(r),
        }
    }
    crate::sort::sort_by(&mut best, |a, b| {
        (a.metric, &a.device).cmp(&(b.metric, &b.device))
    });
    best
}

/// The config automatic mode runs, as UCI: per uplink an interface
/// tracking its gateway and `targets` (at least two answering while there
/// are both, so a gateway that answers while the internet behind it does
/// not is offline), a member with the uplink's rank as metric, policy
/// `failover` over all of them in that order, and one rule sending every
/// IPv4 destination to it. The last resort is the main table (`default`):
/// with every probe lost, traffic still gets the router's own routing.
/// `globals` is kept (mmx_mask and friends) when given.
pub fn uci(routes: &[DefaultRoute], targets: &[IpAddr], globals: Option<&str>) -> String {
    let mut out =
        String::from("# mwand automatic mode: written from the router's default routes\n");
    out += globals.unwrap_or("config globals 'globals'\n");
    out.push('\n');
    let chosen = uplinks(routes);
    for r in &chosen {
        let name = section_name(r.interface.as_deref().unwrap_or(&r.device));
        out += &format!("config interface '{name}'\n\toption enabled '1'\n");
        if r.interface.is_none() {
            out += &format!("\toption device '{}'\n", r.device);
        }
        out += "\toption family 'ipv4'\n";
        let mut track: Vec<IpAddr> = r.gateway.into_iter().collect();
        track.extend(targets.iter().filter(|t| Some(**t) != r.gateway));
        for t in &track {
            out += &format!("\tlist track_ip '{t}'\n");
        }
        let reliability = if r.gateway.is_some() && track.len() > 1 {
            2
        } else {
            1
        };
        out += &format!("\toption reliability '{reliability}'\n\n");
    }
    for (rank, r) in chosen.iter().enumerate() {
        let name = section_name(r.interface.as_deref().unwrap_or(&r.device));
        out += &format!(
            "config member '{name}_m'\n\toption interface '{name}'\n\toption metric '{}'\n\toption weight '1'\n\n",
            rank + 1
        );
    }
    out += &format!("config policy '{POLICY}'\n");
    for r in &chosen {
        let name = section_name(r.interface.as_deref().unwrap_or(&r.device));
        out += &format!("\tlist use_member '{name}_m'\n");
    }
    out += "\toption last_resort 'default'\n\n";
    out += &format!(
        "config rule 'everything'\n\toption dest_ip '0.0.0.0/0'\n\toption use_policy '{POLICY}'\n"
    );
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
        return Err(
            "automatic mode: no IPv4 default route in the main table, so no uplink to manage"
                .into(),
        );
    }
    let text = uci(routes, targets, globals);
    let loaded = config::parse("automatic mode", &text)
        .map_err(|r| format!("automatic mode built a config that does not parse:\n{r}"))?;
    Ok((loaded.config, text))
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

    fn route(device: &str, metric: u32, gw: Option<&str>) -> DefaultRoute {
        DefaultRoute {
            interface: None,
            device: device.into(),
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
        assert!(e.contains("no IPv4 default route"), "{e}");
    }
}
