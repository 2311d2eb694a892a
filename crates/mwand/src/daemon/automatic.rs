//! Automatic mode (docs/mwand.md): no config file at all, or globals with
//! `option automatic '1'`. The default routes are read once, at start and
//! at reload: netifd's (`network.interface dump`, one call bounded by
//! [`NETIFD_TIMEOUT`]) of the interfaces in fw4's wan zone, IPv4 and IPv6,
//! when netifd answers; else the kernel's IPv4 ones (one WAN per device).
//! `mwan_core::auto` decides the rest.

use super::DaemonError;
use crate::Options;
use mwan_core::auto::{self, DefaultRoute, NetifdInterface};
use mwan_core::config::{self, Config, Family, Loaded};
use mwan_core::plan::{RouteKind, DEFAULT_PROTOCOL};
use mwan_netlink::{Snapshot, Socket};
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

/// How long automatic mode waits for netifd's dump: ubusd and netifd are
/// local and answer in milliseconds; a hung one must not hold mwand.
const NETIFD_TIMEOUT: Duration = Duration::from_secs(2);

/// The config mwand runs and, in automatic mode, its UCI text.
pub(super) struct Chosen {
    pub loaded: Loaded,
    pub automatic: Option<String>,
}

/// The file's config, or automatic mode when the path does not exist at
/// all (an empty file is still a file: its own rules apply) or its
/// globals ask for it.
pub(super) fn choose(opts: &Options, path: &Path) -> Result<Chosen, DaemonError> {
    let missing =
        matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == io::ErrorKind::NotFound);
    let file_globals = if missing {
        log::info!(
            "no config file at {}: automatic mode (every default route is a WAN)",
            path.display()
        );
        None
    } else {
        let loaded = config::load(path).map_err(DaemonError::Config)?;
        if !loaded.config.globals.automatic {
            return Ok(Chosen {
                loaded,
                automatic: None,
            });
        }
        log::info!(
            "{}: globals ask for automatic mode; its other sections are not used",
            path.display()
        );
        Some(loaded.config.globals)
    };
    let (config, text) = detect(opts, path, file_globals)?;
    Ok(Chosen {
        loaded: Loaded {
            config,
            warnings: Vec::new(),
        },
        automatic: Some(text),
    })
}

/// Reads the default routes (netifd's, else the kernel's) and builds the
/// config.
pub(super) fn detect(
    opts: &Options,
    config_path: &Path,
    globals: Option<config::Globals>,
) -> Result<(Config, String), DaemonError> {
    let routes = match netifd_interfaces(opts) {
        Some(interfaces) => {
            let zones = firewall_zones(config_path)?;
            auto::netifd_uplinks(&interfaces, zones.as_ref())
        }
        None => kernel_defaults()?,
    };
    let targets = if opts.auto_track_ip.is_empty() {
        auto::default_targets()
    } else {
        opts.auto_track_ip.clone()
    };
    let (mut config, text) = auto::config(&routes, &targets, None)
        .map_err(|e| DaemonError::Io("automatic mode", io::Error::other(e)))?;
    if let Some(g) = globals {
        config.globals = g;
    }
    for i in &config.interfaces {
        log::info!(
            "automatic mode: WAN {} ({:?}) on {}, tracking {}",
            i.name,
            i.family,
            i.device.as_deref().unwrap_or("netifd's device"),
            i.track_ip.join(" ")
        );
    }
    Ok((config, text))
}

/// netifd's interfaces from one `network.interface dump`; None when
/// there is no ubus or no netifd on it.
fn netifd_interfaces(opts: &Options) -> Option<Vec<NetifdInterface>> {
    let reply = mwan_ubus::blocking::call(
        &opts.ubus_socket,
        mwan_ubus::netifd::INTERFACE_OBJECT,
        "dump",
        Default::default(),
        NETIFD_TIMEOUT,
    );
    let reply = match reply {
        Ok(r) => r,
        Err(e) => {
            log::info!("automatic mode: no netifd ({e}); the kernel's default routes");
            return None;
        }
    };
    let interfaces = mwan_ubus::netifd::parse_dump(&reply)
        .into_iter()
        .map(|state| NetifdInterface {
            device: state.route_device().unwrap_or_default().to_owned(),
            defaults: state
                .routes
                .iter()
                .filter(|r| r.is_default())
                .map(|r| {
                    let family = if r.target.contains(':') {
                        Family::Ipv6
                    } else {
                        Family::Ipv4
                    };
                    // An on-link default (PPP) has nexthop 0.0.0.0 or ::.
                    let gateway = r
                        .nexthop
                        .parse()
                        .ok()
                        .filter(|g: &IpAddr| !g.is_unspecified());
                    (family, gateway, r.metric)
                })
                .collect(),
            name: state.name,
            proto: state.proto,
            metric: state.metric,
            zone: state.zone,
        })
        .collect();
    Some(interfaces)
}

/// fw4's WAN zones from the firewall config next to mwand's config
/// (/etc/config/firewall); None without that file or such a zone.
fn firewall_zones(config_path: &Path) -> Result<Option<auto::WanZones>, DaemonError> {
    let path = config_path.with_file_name("firewall");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(DaemonError::Io(
                "automatic mode: reading the firewall config",
                e,
            ))
        }
    };
    let source = path.display().to_string();
    auto::wan_zones(&source, &text)
        .map_err(|e| DaemonError::Io("automatic mode", io::Error::other(e)))
}

/// The main table's IPv4 default routes, one per device.
fn kernel_defaults() -> Result<Vec<DefaultRoute>, DaemonError> {
    let io_error = |e: mwan_netlink::NetlinkError| {
        DaemonError::Io(
            "automatic mode: reading routes",
            io::Error::other(e.to_string()),
        )
    };
    let mut sock = Socket::route().map_err(io_error)?;
    let snapshot = Snapshot::take(&mut sock, DEFAULT_PROTOCOL).map_err(io_error)?;
    Ok(snapshot
        .main_routes
        .iter()
        .filter(|r| r.route.family == Family::Ipv4 && r.route.dst.prefix_len == 0)
        .filter_map(|r| {
            let RouteKind::Unicast(hops) = &r.route.kind else {
                return None;
            };
            let hop = hops.first()?;
            let link = snapshot.links.iter().find(|l| l.ifindex == hop.ifindex)?;
            Some(DefaultRoute {
                interface: None,
                device: link.name.clone(),
                family: Family::Ipv4,
                metric: r.route.metric,
                gateway: hop.gateway,
            })
        })
        .collect())
}
