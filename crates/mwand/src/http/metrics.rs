//! `/metrics`: the status in the Prometheus text format.

use mwan_proto::control::Status;

pub(super) fn label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Writes one metric family: HELP, TYPE, then one line per sample.
pub(super) fn family<'a>(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, f64)>,
) {
    out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
    for (labels, value) in samples {
        out.push_str(name);
        if !labels.is_empty() {
            out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push_str("=\"");
                label(out, v);
                out.push('"');
            }
            out.push('}');
        }
        out.push_str(&format!(" {value}\n"));
    }
}

pub(super) const STATES: [&str; 6] = [
    "online",
    "offline",
    "connecting",
    "disconnecting",
    "unknown",
    "disabled",
];

/// One interface's counters since mwand started, which [`Status`] does not
/// carry: state changes (counted with the history's events) and the
/// probes its tracker reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WanCounters {
    pub transitions: u64,
    pub probes_sent: u64,
    pub probes_lost: u64,
}

/// `/metrics` in the Prometheus text format (0.0.4), with `counters` of
/// each interface by name.
pub fn metrics(status: &Status, counters: &dyn Fn(&str) -> WanCounters) -> String {
    let mut out = String::new();
    let wans = &status.interfaces;
    let per_wan = |f: &dyn Fn(&mwan_proto::control::InterfaceStatus) -> Option<f64>| {
        wans.iter()
            .filter_map(|w| f(w).map(|v| (vec![("interface", w.name.as_str())], v)))
            .collect::<Vec<_>>()
    };
    family(
        &mut out,
        "mwan_interface_state",
        "gauge",
        "1 for the state the interface is in, 0 for the others.",
        wans.iter().flat_map(|w| {
            STATES.iter().map(move |s| {
                (
                    vec![("interface", w.name.as_str()), ("state", *s)],
                    f64::from(u8::from(w.state == *s)),
                )
            })
        }),
    );
    family(
        &mut out,
        "mwan_interface_state_age_seconds",
        "gauge",
        "Seconds in the current state.",
        per_wan(&|w| Some(w.state_age_s as f64)),
    );
    family(
        &mut out,
        "mwan_interface_latency_seconds",
        "gauge",
        "Smoothed round-trip time.",
        per_wan(&|w| w.latency_ms.map(|v| v / 1000.0)),
    );
    family(
        &mut out,
        "mwan_interface_jitter_seconds",
        "gauge",
        "Smoothed round-trip time variation.",
        per_wan(&|w| w.jitter_ms.map(|v| v / 1000.0)),
    );
    family(
        &mut out,
        "mwan_interface_loss_ratio",
        "gauge",
        "Smoothed probe loss, 0 to 1.",
        per_wan(&|w| w.loss_pct.map(|v| v / 100.0)),
    );
    family(
        &mut out,
        "mwan_interface_score",
        "gauge",
        "Quality score, lower is better.",
        per_wan(&|w| w.score),
    );
    family(
        &mut out,
        "mwan_interface_transitions_total",
        "counter",
        "State changes since mwand started.",
        per_wan(&|w| Some(counters(&w.name).transitions as f64)),
    );
    family(
        &mut out,
        "mwan_interface_probes_sent_total",
        "counter",
        "Probes the interface's tracker reported since mwand started.",
        per_wan(&|w| Some(counters(&w.name).probes_sent as f64)),
    );
    family(
        &mut out,
        "mwan_interface_probes_lost_total",
        "counter",
        "Of those, probes without an answer (timeout, unreachable, refused, bad answer, not sent).",
        per_wan(&|w| Some(counters(&w.name).probes_lost as f64)),
    );
    family(
        &mut out,
        "mwan_tracker_restarts_total",
        "counter",
        "Tracker restarts since mwand started.",
        per_wan(&|w| Some(f64::from(w.tracker.restarts))),
    );
    family(
        &mut out,
        "mwan_tracker_connected",
        "gauge",
        "1 when the interface's tracker is connected.",
        per_wan(&|w| Some(f64::from(u8::from(w.tracker.connected)))),
    );
    family(
        &mut out,
        "mwan_policy_share_ratio",
        "gauge",
        "Share of a policy's new flows an interface carries, 0 to 1.",
        status.policies.iter().flat_map(|p| {
            p.active.iter().map(move |a| {
                (
                    vec![
                        ("policy", p.name.as_str()),
                        ("interface", a.interface.as_str()),
                    ],
                    a.share_pct / 100.0,
                )
            })
        }),
    );
    family(
        &mut out,
        "mwan_overrides",
        "gauge",
        "Overrides in force.",
        [(vec![], status.overrides.len() as f64)],
    );
    family(
        &mut out,
        "mwan_uptime_seconds",
        "gauge",
        "Seconds since mwand started.",
        [(vec![], status.uptime_s as f64)],
    );
    let d = &status.dataplane;
    for (name, help, value) in [
        (
            "mwan_route_dumps_total",
            "Full reads of our routes and rules.",
            d.route_dumps,
        ),
        (
            "mwan_restored_objects_total",
            "Routes and rules put back after someone removed them.",
            d.restored_objects,
        ),
        (
            "mwan_nft_installs_total",
            "Installs of table inet mwan.",
            d.nft_installs,
        ),
    ] {
        family(&mut out, name, "counter", help, [(vec![], value as f64)]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::tests::*;
    use mwan_proto::control::{ActiveMemberStatus, InterfaceStatus, PolicyStatus, TrackerStatus};

    pub(crate) fn status() -> Status {
        Status {
            interfaces: vec![
                InterfaceStatus {
                    name: "wan1".into(),
                    device: Some("eth1".into()),
                    state: "online".into(),
                    state_age_s: 65,
                    latency_ms: Some(12.5),
                    jitter_ms: Some(1.0),
                    loss_pct: Some(2.0),
                    score: Some(13.5),
                    tracker: TrackerStatus {
                        pid: Some(42),
                        restarts: 1,
                        uptime_s: Some(60),
                        connected: true,
                    },
                    reason: None,
                },
                InterfaceStatus {
                    name: "wan \"2\"".into(),
                    device: None,
                    state: "offline".into(),
                    state_age_s: 3,
                    latency_ms: None,
                    jitter_ms: None,
                    loss_pct: Some(100.0),
                    score: None,
                    tracker: TrackerStatus {
                        pid: None,
                        restarts: 0,
                        uptime_s: None,
                        connected: false,
                    },
                    reason: None,
                },
            ],
            policies: vec![PolicyStatus {
                name: "balanced".into(),
                active: vec![ActiveMemberStatus {
                    interface: "wan1".into(),
                    weight: 1,
                    share_pct: 100.0,
                }],
                last_resort: None,
                ceilings: Vec::new(),
            }],
            override_: None,
            uptime_s: 100,
            config: "/etc/config/mwan".into(),
            dataplane_error: None,
            dataplane_error_kind: None,
            overrides: Vec::new(),
            dataplane: Default::default(),
            event_loop: Default::default(),
            config_warning: None,
        }
    }

    #[test]
    fn metrics_have_one_line_per_label_set() {
        let text = metrics(&status(), &|name| WanCounters {
            transitions: if name == "wan1" { 3 } else { 1 },
            probes_sent: 120,
            probes_lost: 7,
        });
        assert!(text.contains("mwan_interface_state{interface=\"wan1\",state=\"online\"} 1\n"));
        assert!(text
            .contains("mwan_interface_state{interface=\"wan \\\"2\\\"\",state=\"offline\"} 1\n"));
        assert!(text.contains("mwan_interface_latency_seconds{interface=\"wan1\"} 0.0125\n"));
        assert!(!text.contains("mwan_interface_latency_seconds{interface=\"wan \\\"2"));
        assert!(text.contains("# TYPE mwan_interface_transitions_total counter\n"));
        assert!(text.contains("mwan_interface_transitions_total{interface=\"wan1\"} 3\n"));
        assert!(text.contains("# TYPE mwan_interface_probes_sent_total counter\n"));
        assert!(text.contains("mwan_interface_probes_sent_total{interface=\"wan1\"} 120\n"));
        assert!(text.contains("mwan_interface_probes_lost_total{interface=\"wan1\"} 7\n"));
        assert!(
            text.contains("mwan_policy_share_ratio{policy=\"balanced\",interface=\"wan1\"} 1\n")
        );
    }

    /// Read back by a real Prometheus text parser: prometheus_client's,
    /// from Debian's python3-prometheus-client (`make deps` installs it).
    #[test]
    fn metrics_parse_with_prometheus_client() {
        const CHECK: &str = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(sys.stdin.read())}
for f in sorted(fams.values(), key=lambda f: f.name):
    for s in f.samples:
        print(f.type, s.name, ",".join(k + "=" + v for k, v in sorted(s.labels.items())), s.value)
"#;
        let text = metrics(&status(), &|_| WanCounters {
            transitions: 2,
            probes_sent: 60,
            probes_lost: 3,
        });
        let out = pipe("/usr/bin/python3", &["-c", CHECK], text.as_bytes());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "prometheus_client refused the text (`make deps` installs it): {stderr}\n{text}"
        );
        let parsed = String::from_utf8_lossy(&out.stdout);
        // A sample whose name does not match its TYPE line comes back untyped.
        assert!(
            !parsed.lines().any(|l| l.starts_with("unknown")),
            "{parsed}"
        );
        for line in [
            "gauge mwan_interface_state interface=wan1,state=online 1.0",
            "gauge mwan_interface_state interface=wan \"2\",state=offline 1.0",
            "gauge mwan_interface_loss_ratio interface=wan \"2\" 1.0",
            "gauge mwan_interface_latency_seconds interface=wan1 0.0125",
            "counter mwan_interface_transitions_total interface=wan1 2.0",
            "counter mwan_interface_probes_sent_total interface=wan1 60.0",
            "counter mwan_interface_probes_lost_total interface=wan \"2\" 3.0",
            "counter mwan_tracker_restarts_total interface=wan1 1.0",
            "gauge mwan_policy_share_ratio interface=wan1,policy=balanced 1.0",
            "counter mwan_nft_installs_total  0.0",
        ] {
            assert!(
                parsed.lines().any(|l| l == line),
                "missing '{line}' in:\n{parsed}"
            );
        }
    }
}
