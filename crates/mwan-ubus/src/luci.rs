//! LuCI compatibility: the reply shape of mwan3's own rpcd object
//! (`ubus call mwan3 status '{"section": .., "interface": ..}'`, from
//! openwrt/packages net/mwan3 `usr/share/rpcd/ucode/mwan3`), built from
//! mwand's [`Status`], so luci-app-mwan3's status pages work unchanged.
//!
//! ```text
//! {"interfaces": {"<wan>": {"age", "online", "offline", "uptime", "score",
//!                           "lost", "turn", "status", "enabled", "running",
//!                           "tracking", "up", "track_ip": [{"ip", "status",
//!                           "latency", "packetloss"}]}},
//!  "connected": {"ipv4": [..], "ipv6": [..]},
//!  "policies":  {"ipv4": {"<policy>": [{"interface", "percent"}]}, "ipv6": {..}}}
//! ```
//! `section` = "interfaces" | "connected" | "policies" returns only that key.

use crate::blobmsg::{kind, Table, Value};
use crate::client::MethodSpec;
use mwan_core::health::Mwan3Track;
use mwan_proto::control::{InterfaceStatus, Status};
use std::collections::BTreeMap;

pub const MWAN3_OBJECT: &str = "mwan3";

pub fn methods() -> Vec<MethodSpec> {
    vec![MethodSpec::new(
        "status",
        &[("section", kind::STRING), ("interface", kind::STRING)],
    )]
}

/// Facts mwan3's object reports that mwand's [`Status`] does not carry:
/// from the config (enabled, track IPs), netifd (up, uptime) and the
/// health machine (mwan3track's counters).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InterfaceExtra {
    pub enabled: Option<bool>,
    pub netifd_up: Option<bool>,
    pub netifd_uptime_s: Option<u64>,
    pub track_ips: Vec<String>,
    /// mwan3track's SCORE, LOST, TURN and TIME (as seconds ago).
    pub track: Mwan3Track,
}

fn seconds(v: u64) -> Value {
    Value::int(i64::try_from(v).unwrap_or(i64::MAX))
}

fn round(v: Option<f64>) -> Value {
    Value::int(v.map_or(0, |v| v.round() as i64))
}

/// A table from its entries sorted by name, as the JSON objects this reply
/// was first built from (serde_json's map) ordered them.
fn sorted(mut entries: Vec<(String, Value)>) -> Value {
    mwan_core::sort::sort_by(&mut entries, |a, b| a.0.cmp(&b.0));
    Value::Table(Table(entries))
}

fn interface(i: &InterfaceStatus, extra: &InterfaceExtra) -> Value {
    let state = i.state.as_str();
    let enabled = extra.enabled.unwrap_or(state != "disabled");
    // mwan3track's own vocabulary: active | paused | down | disabled.
    // As mwan3's rpcd object: "disabled" means no track IPs (whether or
    // not the interface is enabled); otherwise the tracker is up or not.
    // Without the config facts, a WAN without tracker counts as untracked.
    let untracked = if extra.enabled.is_some() {
        extra.track_ips.is_empty()
    } else {
        i.tracker.pid.is_none()
    };
    let tracking = if untracked {
        "disabled"
    } else if i.reason.as_deref() == Some(mwan_proto::control::PAUSED_REASON) {
        // mwan3's word for a tracker stopped by `mwan3 ifdown`.
        "paused"
    } else if i.tracker.connected {
        "active"
    } else {
        "down"
    };
    // mwan3's words: an enabled interface without track IPs is "notracking"
    // (LuCI then shows netifd's uptime); a disabled one "disabled".
    let status = if !enabled {
        "disabled"
    } else if extra.enabled.is_some() && extra.track_ips.is_empty() {
        "notracking"
    } else if state.is_empty() {
        "unknown"
    } else {
        state
    };
    let online_s = if state == "online" { i.state_age_s } else { 0 };
    let offline_s = if state == "offline" { i.state_age_s } else { 0 };
    let ip_status = if state == "online" { "up" } else { "down" };
    let track_ip: Vec<Value> = extra
        .track_ips
        .iter()
        .map(|ip| {
            let status = if i.tracker.connected {
                ip_status
            } else {
                "unknown"
            };
            Value::Table(
                Table::new()
                    .with("ip", Value::string(ip))
                    .with("latency", round(i.latency_ms))
                    .with("packetloss", round(i.loss_pct))
                    .with("status", Value::string(status)),
            )
        })
        .collect();
    let up = extra
        .netifd_up
        .unwrap_or(matches!(state, "online" | "connecting" | "disconnecting"));
    Value::Table(
        Table::new()
            .with("age", seconds(extra.track.age_s))
            .with("enabled", Value::bool(enabled))
            .with("lost", Value::int(i64::from(extra.track.lost)))
            .with("offline", seconds(offline_s))
            .with("online", seconds(online_s))
            .with("running", Value::bool(tracking == "active"))
            .with("score", Value::int(i64::from(extra.track.score)))
            .with("status", Value::string(status))
            .with("track_ip", Value::Array(track_ip))
            .with("tracking", Value::string(tracking))
            .with("turn", seconds(extra.track.turn))
            .with("up", Value::bool(up))
            .with("uptime", seconds(extra.netifd_uptime_s.unwrap_or(0))),
    )
}

/// mwan3's `status` reply. `connected` is mwand's connected-network list
/// (CIDR strings); `interface` limits the interfaces part to one name.
pub fn status(
    status: &Status,
    connected: &[String],
    extras: &BTreeMap<String, InterfaceExtra>,
    section: Option<&str>,
    only_interface: Option<&str>,
) -> Table {
    let none = InterfaceExtra::default();
    let interfaces = sorted(
        status
            .interfaces
            .iter()
            .filter(|i| only_interface.is_none_or(|n| n == i.name))
            .map(|i| {
                (
                    i.name.clone(),
                    interface(i, extras.get(&i.name).unwrap_or(&none)),
                )
            })
            .collect(),
    );
    let (v6, v4): (Vec<&String>, Vec<&String>) = connected.iter().partition(|c| c.contains(':'));
    let strings = |v: Vec<&String>| Value::Array(v.into_iter().map(Value::string).collect());
    let connected = Value::Table(
        Table::new()
            .with("ipv4", strings(v4))
            .with("ipv6", strings(v6)),
    );
    // mwand's policies are family-agnostic: the same shares apply to both.
    let per_family = sorted(
        status
            .policies
            .iter()
            .map(|p| {
                let members = p
                    .active
                    .iter()
                    .map(|m| {
                        Value::Table(
                            Table::new()
                                .with("interface", Value::string(&m.interface))
                                .with("percent", Value::Double(m.share_pct)),
                        )
                    })
                    .collect();
                (p.name.clone(), Value::Array(members))
            })
            .collect(),
    );
    let policies = Value::Table(
        Table::new()
            .with("ipv4", per_family.clone())
            .with("ipv6", per_family),
    );
    match section {
        Some("interfaces") => Table::new().with("interfaces", interfaces),
        Some("connected") => Table::new().with("connected", connected),
        Some("policies") => Table::new().with("policies", policies),
        _ => Table::new()
            .with("connected", connected)
            .with("interfaces", interfaces)
            .with("policies", policies),
    }
}
