//! Automatic mode (docs/mwand.md): no config file at all, or globals with
//! `option automatic '1'`. The kernel's IPv4 default routes are read once
//! (one WAN per device, by metric) and `mwan_core::auto` decides the rest.

use super::DaemonError;
use crate::Options;
use mwan_core::auto::{self, DefaultRoute};
use mwan_core::config::{self, Config, Family, Loaded};
use mwan_core::plan::{RouteKind, DEFAULT_PROTOCOL};
use mwan_netlink::{Snapshot, Socket};
use std::io;
use std::path::Path;

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
    let (config, text) = detect(opts, file_globals)?;
    Ok(Chosen {
        loaded: Loaded {
            config,
            warnings: Vec::new(),
        },
        automatic: Some(text),
    })
}

/// Reads the main table's IPv4 default routes and builds the config.
pub(super) fn detect(
    opts: &Options,
    globals: Option<config::Globals>,
) -> Result<(Config, String), DaemonError> {
    let io_error = |e: mwan_netlink::NetlinkError| {
        DaemonError::Io(
            "automatic mode: reading routes",
            io::Error::other(e.to_string()),
        )
    };
    let mut sock = Socket::route().map_err(io_error)?;
    let snapshot = Snapshot::take(&mut sock, DEFAULT_PROTOCOL).map_err(io_error)?;
    let routes: Vec<DefaultRoute> = snapshot
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
                metric: r.route.metric,
                gateway: hop.gateway,
            })
        })
        .collect();
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
            "automatic mode: WAN {} on {}, tracking {}",
            i.name,
            i.device.as_deref().unwrap_or("?"),
            i.track_ip.join(" ")
        );
    }
    Ok((config, text))
}
