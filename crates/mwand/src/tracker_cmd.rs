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

/// `HOST:443` (`[V6]:443`) for an httping_ssl target.
fn https_port_target(target: &str) -> String {
    match target.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]:443"),
        _ => format!("{target}:443"),
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
    // TLS is not built into the tracker: an httping_ssl target is probed
    // with a TCP handshake to its HTTPS port (mwanctl check warns).
    let https_by_tcp = iface.track_method == TrackMethod::Httping && iface.httping_ssl;
    let method = if https_by_tcp {
        "nping-tcp"
    } else {
        method_name(iface.track_method)
    };
    let mut a: Vec<String> = vec![
        "--interface".into(),
        iface.name.clone(),
        "--device".into(),
        device.clone(),
        "--method".into(),
        method.into(),
    ];
    for t in &iface.track_ip {
        a.push("--target".into());
        a.push(if https_by_tcp {
            https_port_target(t)
        } else {
            t.clone()
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn iface() -> Interface {
        let mut i = Interface::new("wan2");
        i.enabled = true;
        i.track_ip = vec!["203.0.113.1".into(), "203.0.113.2".into()];
        i.interval = 200;
        i.timeout = 3000;
        i.count = 2;
        i
    }

    fn facts() -> TrackerFacts {
        TrackerFacts {
            device: Some("eth2".into()),
            mark: Some(0x300),
            source: Some("198.51.100.10".parse().unwrap()),
            gateway: Some("198.51.100.9".parse().unwrap()),
        }
    }

    #[test]
    fn httping_ssl_is_a_tcp_handshake_to_443() {
        let mut i = iface();
        i.track_method = TrackMethod::Httping;
        i.httping_ssl = true;
        i.track_ip = vec![
            "203.0.113.1".into(),
            "2001:db8::1".into(),
            "example.net".into(),
        ];
        let line = argv(&i, &facts(), Path::new("/run/mwan/track.sock"), 200, 3000)
            .unwrap()
            .join(" ");
        assert!(
            line.contains("--method nping-tcp --target 203.0.113.1:443 --target [2001:db8::1]:443 --target example.net:443"),
            "{line}"
        );
        i.httping_ssl = false;
        let line = argv(&i, &facts(), Path::new("/run/mwan/track.sock"), 200, 3000)
            .unwrap()
            .join(" ");
        assert!(
            line.contains("--method httping --target 203.0.113.1 "),
            "{line}"
        );
    }

    #[test]
    fn command_line_follows_docs_tracker_md() {
        let a = argv(
            &iface(),
            &facts(),
            Path::new("/run/mwan/track.sock"),
            200,
            3000,
        )
        .unwrap();
        let line = a.join(" ");
        assert_eq!(
            line,
            "--interface wan2 --device eth2 --method ping --target 203.0.113.1 \
             --target 203.0.113.2 --count 2 --size 56 --max-ttl 60 --interval 200ms \
             --timeout 3000ms --mark 0x300 --source 198.51.100.10 --gateway 198.51.100.9 \
             --controller /run/mwan/track.sock"
        );
    }

    #[test]
    fn no_tracker_without_device_or_targets() {
        let sock = Path::new("/run/mwan/track.sock");
        let no_dev = TrackerFacts {
            device: None,
            ..facts()
        };
        assert_eq!(argv(&iface(), &no_dev, sock, 200, 3000), None);
        let mut untracked = iface();
        untracked.track_ip.clear();
        assert_eq!(argv(&untracked, &facts(), sock, 200, 3000), None);
    }

    #[test]
    fn budget_and_method_names_pass_through() {
        let mut i = iface();
        i.track_method = TrackMethod::NpingTcp;
        i.probe_budget = Some(ProbeBudget::ProbesPerMinute(30));
        let a = argv(&i, &facts(), Path::new("/s"), 200, 3000)
            .unwrap()
            .join(" ");
        assert!(a.contains("--method nping-tcp"), "{a}");
        assert!(a.contains("--budget-ppm 30"), "{a}");
    }
}
