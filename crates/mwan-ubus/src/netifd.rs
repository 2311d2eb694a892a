//! Interface facts from netifd, in the shapes netifd publishes (read from
//! openwrt/netifd `ubus.c`: `netifd_dump_status`, `netifd_handle_dump`,
//! `netifd_ubus_interface_event`, `netifd_ubus_interface_notify`):
//!
//! - `ubus call network.interface dump` → `{"interface": [ {"interface": name, <status>}, ... ]}`
//! - event `network.interface` → `{"action": "ifup"|"ifdown", "interface": name}`
//! - NOTIFY `interface.update` / `interface.down` on `network.interface`
//!   and on `network.interface.<name>` → `{"interface": name, <status>}`
//!
//! `<status>`: `up`, `pending`, `available`, `autostart`, `dynamic` (bool),
//! `uptime` (u32, only when up), `l3_device`, `proto`, `device` (strings),
//! `updated` (array of "addresses"/"routes"/"prefixes"/"data"),
//! `ip4table`, `ip6table`, `metric`, `dns_metric` (u32), `delegation` (bool),
//! `ipv4-address` / `ipv6-address` (arrays of `{"address", "mask"}`),
//! `route` (array of `{"target", "mask", "nexthop", "metric"?, "mtu"?, "table"?, "source"?, ...}`),
//! `dns-server`, `dns-search` (arrays of strings), `inactive` (same lists),
//! `data` (table), `errors` (array). See docs/ubus.md.

use crate::blobmsg::{Table, Value};

/// netifd's aggregate interface object.
pub const INTERFACE_OBJECT: &str = "network.interface";
/// The event netifd sends on ifup/ifdown.
pub const INTERFACE_EVENT: &str = "network.interface";

/// Path of one interface's object, which publishes `interface.update`.
pub fn interface_object(name: &str) -> String {
    format!("network.interface.{name}")
}

/// The interface name of a `network.interface.<name>` object path.
pub fn interface_of_object(path: &str) -> Option<&str> {
    path.strip_prefix("network.interface.")
        .filter(|n| !n.is_empty())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub address: String,
    pub mask: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub target: String,
    pub mask: u8,
    pub nexthop: String,
    pub metric: Option<u32>,
    pub table: Option<u32>,
}

impl Route {
    /// A default route (0.0.0.0/0 or ::/0).
    pub fn is_default(&self) -> bool {
        self.mask == 0
    }
}

/// What mwand needs from one interface's netifd status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InterfaceState {
    pub name: String,
    pub up: bool,
    pub pending: bool,
    pub available: bool,
    pub proto: Option<String>,
    /// Layer-3 device (e.g. pppoe-wan); what routes and probes use.
    pub l3_device: Option<String>,
    /// Main device (e.g. eth1).
    pub device: Option<String>,
    pub uptime_s: Option<u32>,
    pub metric: Option<u32>,
    pub ip4table: Option<u32>,
    pub ipv4: Vec<Address>,
    pub ipv6: Vec<Address>,
    pub routes: Vec<Route>,
    /// What changed, on `interface.update` ("addresses", "routes", ...).
    pub updated: Vec<String>,
    /// The firewall zone netifd's data carries (`data.zone`: dynamic
    /// interfaces such as PPPoE's `wan_6` get their parent's).
    pub zone: Option<String>,
}

fn u32_of(t: &Table, key: &str) -> Option<u32> {
    t.get(key)
        .and_then(Value::as_i64)
        .and_then(|v| u32::try_from(v).ok())
}

fn bool_of(t: &Table, key: &str) -> bool {
    t.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn string_of(t: &Table, key: &str) -> Option<String> {
    t.get_str(key).map(str::to_owned)
}

fn tables<'a>(t: &'a Table, key: &str) -> impl Iterator<Item = &'a Table> {
    t.get(key)
        .and_then(Value::as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_table)
}

fn addresses(t: &Table, key: &str) -> Vec<Address> {
    tables(t, key)
        .filter_map(|a| {
            Some(Address {
                address: string_of(a, "address")?,
                mask: u8::try_from(u32_of(a, "mask")?).ok()?,
            })
        })
        .collect()
}

impl InterfaceState {
    /// Parses one status table; `name` is used when the table carries no
    /// `interface` key (the reply of `network.interface.<name> status`).
    pub fn parse(name: Option<&str>, t: &Table) -> Option<InterfaceState> {
        let name = t.get_str("interface").or(name)?.to_owned();
        Some(InterfaceState {
            name,
            up: bool_of(t, "up"),
            pending: bool_of(t, "pending"),
            available: bool_of(t, "available"),
            proto: string_of(t, "proto"),
            l3_device: string_of(t, "l3_device"),
            device: string_of(t, "device"),
            uptime_s: u32_of(t, "uptime"),
            metric: u32_of(t, "metric"),
            ip4table: u32_of(t, "ip4table"),
            ipv4: addresses(t, "ipv4-address"),
            ipv6: addresses(t, "ipv6-address"),
            routes: tables(t, "route")
                .filter_map(|r| {
                    Some(Route {
                        target: string_of(r, "target")?,
                        mask: u8::try_from(u32_of(r, "mask")?).ok()?,
                        nexthop: string_of(r, "nexthop")?,
                        metric: u32_of(r, "metric"),
                        table: u32_of(r, "table"),
                    })
                })
                .collect(),
            updated: t
                .get("updated")
                .and_then(Value::as_array)
                .unwrap_or_default()
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            zone: t
                .get("data")
                .and_then(Value::as_table)
                .and_then(|d| string_of(d, "zone")),
        })
    }

    /// IPv4 gateway: the nexthop of the default route, if any.
    pub fn gateway_v4(&self) -> Option<&str> {
        self.routes
            .iter()
            .find(|r| r.is_default() && !r.target.contains(':'))
            .map(|r| r.nexthop.as_str())
    }

    pub fn gateway_v6(&self) -> Option<&str> {
        self.routes
            .iter()
            .find(|r| r.is_default() && r.target.contains(':'))
            .map(|r| r.nexthop.as_str())
    }

    /// The device routes go through: l3_device when up, else the main device.
    pub fn route_device(&self) -> Option<&str> {
        self.l3_device.as_deref().or(self.device.as_deref())
    }
}

/// Parses the reply of `network.interface dump`.
pub fn parse_dump(reply: &Table) -> Vec<InterfaceState> {
    tables(reply, "interface")
        .filter_map(|t| InterfaceState::parse(None, t))
        .collect()
}

/// An ifup/ifdown from the `network.interface` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceEvent {
    pub interface: String,
    pub up: bool,
}

impl InterfaceEvent {
    pub fn parse(data: &Table) -> Option<InterfaceEvent> {
        let up = match data.get_str("action")? {
            "ifup" => true,
            "ifdown" => false,
            _ => return None,
        };
        Some(InterfaceEvent {
            interface: data.get_str("interface")?.to_owned(),
            up,
        })
    }
}

/// A notification from an interface object: `interface.update` (up, with
/// the new status) or `interface.down`.
pub fn parse_notification(method: &str, data: &Table) -> Option<InterfaceState> {
    match method {
        "interface.update" | "interface.down" => InterfaceState::parse(None, data),
        _ => None,
    }
}
