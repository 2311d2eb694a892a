//! The mwan-track command line for one interface (docs/tracker.md): the same
//! under procd and under the embedded supervisor.

use mwan_core::config::{Interface, ProbeBudget, TrackMethod};
use std::net::IpAddr;
use std::path::Path;

/// What the tracker needs besides the config: facts learnt at run time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackerFacts {
    pub device: Option<String>,
    /// The WAN's tracker fwmark (routes probes through its own table).
    pub mark: Option<u32>,
    pub source: Option<IpAddr>,
    pub gateway: Option<IpAddr>,
}

fn method_name(m: TrackMethod) -> &'static str {
    match m {
        TrackMethod::Ping => "ping",
        TrackMethod::Arping => "arping",
        TrackMethod::Httping => "httping",
        TrackMethod::NpingTcp => "nping-tcp",
        TrackMethod::NpingUdp => "nping-udp",
        TrackMethod::NpingIcmp => "nping-icmp",
        TrackMethod::NpingArp => "nping-arp",
        TrackMethod::Nslookup => "nslookup",
    }
}

/// Arguments after the program name; `None` when the interface cannot be
/// tracked yet (no device known) or needs no tracker (no track_ip: mwan3
/// treats it as always online).
pub fn argv(
    iface: &Interface,
    facts: &TrackerFacts,
    controller: &Path,
    interval_ms: u64,
    timeout_ms: u64,
) -> Option<Vec<String>> {
    let device = facts.device.as_ref()?;
    if iface.track_ip.is_empty() {
        return None;
    }
    let mut a: Vec<String> = vec![
        "--interface".into(),
        iface.name.clone(),
        "--device".into(),
        device.clone(),
        "--method".into(),
        method_name(iface.track_method).into(),
    ];
    for t in &iface.track_ip {
        a.push("--target".into());
        a.push(t.clone());
    }
    let mut push = |k: &str, v: String| {
        a.push(k.into());
        a.push(v);
    };
    push("--count", iface.count.to_string());
    push("--size", iface.size.to_string());
    push("--max-ttl", iface.max_ttl.to_string());
    push("--interval", format!("{interval_ms}ms"));
    push("--timeout", format!("{timeout_ms}ms"));
    if let Some(mark) = facts.mark {
        push("--mark", format!("{mark:#x}"));
    }
    if let Some(src) = facts.source {
        push("--source", src.to_string());
    }
    if let Some(gw) = facts.gateway {
        push("--gateway", gw.to_string());
    }
    match iface.probe_budget {
        Some(ProbeBudget::ProbesPerMinute(n)) => push("--budget-ppm", n.to_string()),
        Some(ProbeBudget::BytesPerDay(n)) => push("--budget-bytes-day", n.to_string()),
        None => {}
    }
    push("--controller", controller.display().to_string());
    Some(a)
}
