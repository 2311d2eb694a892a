//! Automatic mode (docs/mwand.md): no config file at all, or globals with
//! `option automatic '1'`. The WANs come from netifd's interfaces in fw4's
//! wan zone, IPv4 and IPv6, as mwand holds them (netifd's dump at connect,
//! then its events): nothing here calls netifd, so nothing blocks the
//! loop. Without netifd they come from the kernel's IPv4 default routes
//! (one WAN per device). They are built at start (once netifd listed its
//! interfaces, [`auto::source`]), at reload, and when netifd's interfaces
//! change; `mwan_core::auto` decides.

use super::{Daemon, DaemonError, Timer};
use mwan_core::auto::{self, DefaultRoute, NetifdInterface, Source};
use mwan_core::config::{self, Config, Family, Globals, Loaded};
use mwan_core::plan::{RouteKind, DEFAULT_PROTOCOL};
use mwan_core::Millis;
use mwan_netlink::{Snapshot, Socket};
use mwan_ubus::netifd::InterfaceState;
use std::io;
use std::net::IpAddr;
use std::path::Path;

/// The config file's, or automatic mode (with the file's globals, when it
/// has a file).
pub(super) enum Chosen {
    File(Loaded),
    Automatic(Option<Globals>),
}

/// The file's config, or automatic mode when the path does not exist at
/// all (an empty file is still a file: its own rules apply) or its
/// globals ask for it.
pub(super) fn choose(path: &Path) -> Result<Chosen, DaemonError> {
    let missing =
        matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == io::ErrorKind::NotFound);
    if missing {
        log::info!(
            "no config file at {}: automatic mode (every default route is a WAN)",
            path.display()
        );
        return Ok(Chosen::Automatic(None));
    }
    let loaded = config::load(path).map_err(DaemonError::Config)?;
    if !loaded.config.globals.automatic {
        return Ok(Chosen::File(loaded));
    }
    log::info!(
        "{}: globals ask for automatic mode; its other sections are not used",
        path.display()
    );
    Ok(Chosen::Automatic(Some(loaded.config.globals)))
}

/// What `mwanctl config --write` prints while automatic mode waits.
pub(super) const WAITING_UCI: &str = "# mwand automatic mode: waiting for netifd's interfaces\n";

/// The config automatic mode runs while it waits for netifd: no WAN.
pub(super) fn waiting(globals: Option<Globals>) -> Config {
    let Ok(Loaded { mut config, .. }) = config::parse("automatic mode", WAITING_UCI) else {
        unreachable!("a comment parses")
    };
    if let Some(g) = globals {
        config.globals = g;
    }
    config
}

impl Daemon {
    /// Automatic mode's config and its UCI text from the facts mwand holds
    /// now; None while netifd may still list its interfaces (the end of
    /// that wait is armed).
    pub(super) fn automatic_config(
        &mut self,
        globals: Option<Globals>,
        now: Millis,
    ) -> Result<Option<(Config, String)>, DaemonError> {
        let routes = match auto::source(self.netifd(), self.started_at, now) {
            Source::Wait(until) => {
                self.timers.arm(Timer::FirstApply, until);
                return Ok(None);
            }
            Source::Netifd => {
                let held = self
                    .ubus
                    .as_ref()
                    .map(|u| netifd_interfaces(u.netifd_states()));
                let zones = firewall_zones(&self.config_path)?;
                auto::netifd_uplinks(&held.unwrap_or_default(), zones.as_ref())
            }
            Source::Kernel => kernel_defaults()?,
        };
        let targets = if self.opts.auto_track_ip.is_empty() {
            auto::default_targets()
        } else {
            self.opts.auto_track_ip.clone()
        };
        let (mut config, text) = auto::config(&routes, &targets, None)
            .map_err(|e| DaemonError::Io("automatic mode", io::Error::other(e)))?;
        if let Some(g) = globals {
            config.globals = g;
        }
        Ok(Some((config, text)))
    }

    /// netifd's interfaces changed (or the wait for them ended): automatic
    /// mode's WANs follow, as a reload would make them.
    #[inline(never)]
    pub(super) fn follow_netifd(&mut self, now: Millis) {
        let globals = Some(self.config.globals.clone());
        match self.automatic_config(globals, now) {
            Ok(Some((config, text))) if self.automatic_uci.as_ref() != Some(&text) => {
                log::info!("automatic mode: netifd's interfaces changed; the WANs follow");
                log_wans(&config);
                self.automatic_uci = Some(text);
                self.automatic_waits = false;
                self.run_config(config, now);
            }
            Ok(_) => {}
            Err(e) => {
                log::warn!("{}; the running config stays", super::report(&e));
                // Over waiting: mwand runs with what it has.
                self.dirty |= std::mem::take(&mut self.automatic_waits);
            }
        }
    }
}

/// The WANs automatic mode built, when they change.
pub(super) fn log_wans(config: &Config) {
    for i in &config.interfaces {
        log::info!(
            "automatic mode: WAN {} ({:?}) on {}, tracking {}",
            i.name,
            i.family,
            i.device.as_deref().unwrap_or("netifd's device"),
            i.track_ip.join(" ")
        );
    }
}

/// netifd's interfaces as automatic mode reads them.
fn netifd_interfaces<'a>(states: impl Iterator<Item = &'a InterfaceState>) -> Vec<NetifdInterface> {
    states
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
            name: state.name.clone(),
            proto: state.proto.clone(),
            metric: state.metric,
            zone: state.zone.clone(),
        })
        .collect()
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
