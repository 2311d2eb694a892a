//! Rendering of mwand's replies: tables for people, JSON for scripts.

use mwan_proto::control::{
    EventLoopCounters, InterfaceStatus, OverrideStatus, PolicyExplanation, PolicyStatus, Response,
    RuleStatus, Status,
};
use mwan_ubus::blobmsg::{Table, Value};
use mwan_ubus::mwan_object;

/// The reply's payload as JSON (docs/status-json.md), one document per call.
/// List replies are wrapped in one key (`{"interfaces": [...]}`), exactly
/// as the ubus object `mwan` answers (a ubus reply must be a table).
pub fn json(response: &Response) -> String {
    // The body the ubus object `mwan` answers with, so both agree; history
    // arrives as JSON text and is re-indented.
    let body = match response {
        Response::History { json } => Table::from_json_text(json),
        other => Ok(mwan_object::reply(other).1),
    };
    match body {
        Ok(t) => Value::Table(t).to_json_pretty() + "\n",
        Err(e) => format!("{{\"ok\": false, \"error\": \"cannot encode reply: {e}\"}}\n"),
    }
}

pub fn text(response: &Response) -> String {
    match response {
        Response::Status(s) => status(s),
        Response::Interfaces(v) => interfaces(v),
        Response::Policies(v) => policies(v),
        Response::Rules(v) => rules(v),
        Response::Connected(v) => v.iter().map(|n| format!("{n}\n")).collect(),
        Response::Explain(v) => explain(v),
        Response::History { json } => history(json),
        Response::Done { message } => format!("{message}\n"),
        Response::Error { message } => format!("error: {message}\n"),
    }
}

/// `3725` -> `1h02m`, `65` -> `1m05s`, `7` -> `7s`.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h:02}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}{unit}"))
}

fn status(s: &Status) -> String {
    let mut out = format!("mwand up {}, config {}\n\n", duration(s.uptime_s), s.config);
    out += &interfaces(&s.interfaces);
    out.push('\n');
    out += &policies(&s.policies);
    out.push('\n');
    if s.overrides.is_empty() {
        out += &override_line(s.override_.as_ref());
    } else {
        for o in &s.overrides {
            out += &override_line(Some(o));
        }
    }
    if let Some(e) = &s.dataplane_error {
        match s.dataplane_error_kind {
            Some(kind) => out += &format!("data plane error ({}): {e}\n", kind.as_str()),
            None => out += &format!("data plane error: {e}\n"),
        }
    }
    out += &event_loop_line(&s.event_loop);
    out
}

/// One line when mwand's event loop saw something it did not expect;
/// nothing in the usual case.
fn event_loop_line(c: &EventLoopCounters) -> String {
    let parts: Vec<String> = [
        (c.unexpected_events, "unexpected event(s)"),
        (c.dropped_tracker_peers, "tracker connection(s) dropped"),
        (c.dropped_control_peers, "control connection(s) dropped"),
        (c.refused_control_peers, "control peer(s) refused"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("event loop: {}\n", parts.join(", "))
    }
}

fn override_line(o: Option<&OverrideStatus>) -> String {
    match o {
        None => "override: none\n".to_string(),
        Some(OverrideStatus {
            interface,
            policy: None,
        }) => format!("override: all policies forced to {interface}\n"),
        Some(OverrideStatus {
            interface,
            policy: Some(p),
        }) => format!("override: policy {p} forced to {interface}\n"),
    }
}

fn interfaces(v: &[InterfaceStatus]) -> String {
    let label = |i: &InterfaceStatus| match &i.device {
        Some(d) => format!("{} ({d})", i.name),
        None => i.name.clone(),
    };
    // The first column is as wide as its longest entry ("wan1 (eth1)").
    let w = v
        .iter()
        .map(|i| label(i).len())
        .fold("INTERFACE".len(), usize::max);
    // "disabled (no carrier)": the reason keeps `disabled` from reading as
    // `enabled '0'`; the column widens to fit it.
    let state = |i: &InterfaceStatus| match &i.reason {
        Some(r) => format!("{} ({r})", i.state),
        None => i.state.clone(),
    };
    let sw = v.iter().map(|i| state(i).len()).fold(13, usize::max);
    let mut out = format!(
        "{:<w$} {:<sw$} {:>7} {:>9} {:>8} {:>6} {:>7}  {}\n",
        "INTERFACE", "STATE", "FOR", "LATENCY", "JITTER", "LOSS", "SCORE", "TRACKER"
    );
    for i in v {
        let tracker = match (i.tracker.pid, i.tracker.connected) {
            (Some(pid), connected) => format!(
                "pid {pid}{}, up {}, {} restart(s)",
                if connected { "" } else { " (not connected)" },
                i.tracker.uptime_s.map_or("-".into(), duration),
                i.tracker.restarts
            ),
            (None, _) if i.state == "disabled" => "-".to_string(),
            (None, _) => format!("not running, {} restart(s)", i.tracker.restarts),
        };
        out += &format!(
            "{:<w$} {:<sw$} {:>7} {:>9} {:>8} {:>6} {:>7}  {}\n",
            label(i),
            state(i),
            duration(i.state_age_s),
            opt(i.latency_ms, "ms"),
            opt(i.jitter_ms, "ms"),
            opt(i.loss_pct, "%"),
            opt(i.score, ""),
            tracker
        );
    }
    out
}

fn policies(v: &[PolicyStatus]) -> String {
    let mut out = format!(
        "{:<16} {}\n",
        "POLICY", "ACTIVE MEMBERS (weight, share of new flows)"
    );
    for p in v {
        let active = if p.active.is_empty() {
            format!(
                "none usable -> last resort: {}",
                p.last_resort.as_deref().unwrap_or("unreachable")
            )
        } else {
            p.active
                .iter()
                .map(|m| format!("{} (w{}, {:.0}%)", m.interface, m.weight, m.share_pct))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out += &format!("{:<16} {}\n", p.name, active);
        for reason in &p.ceilings {
            out += &format!("{:<16}   {reason}\n", "");
        }
    }
    out
}

fn rules(v: &[RuleStatus]) -> String {
    let mut out = format!("{:<20} {:<16} {}\n", "RULE", "POLICY", "MATCH");
    for r in v {
        out += &format!("{:<20} {:<16} {}\n", r.name, r.policy, r.summary);
    }
    out
}

fn explain(v: &[PolicyExplanation]) -> String {
    let mut out = String::new();
    for p in v {
        out += &format!("policy {}:\n", p.policy);
        for l in &p.lines {
            out += &format!("  {l}\n");
        }
    }
    out
}

/// `mwanctl history`: per WAN the seconds held and the hour's latency and
/// loss in brief, then the timeline, oldest first (`--json` has it all).
fn history(json: &str) -> String {
    let Ok(h) = Value::parse_json(json) else {
        return format!("error: mwand sent history that is not JSON: {json}\n");
    };
    let numbers = |v: &Value| -> Vec<f64> { items(v).iter().filter_map(number).collect() };
    let states: Vec<&str> = items(field(&h, "states"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut out = format!(
        "{:<10} {:>7}  {:<13} {:>27}  {:>9}\n",
        "INTERFACE", "SECONDS", "STATE", "LATENCY ms min/mean/max", "LOSS max"
    );
    for w in items(field(&h, "wans")) {
        let latency = numbers(field(w, "latency_ms"));
        let loss = numbers(field(w, "loss_pct"));
        let held = items(field(w, "state"))
            .iter()
            .filter(|s| **s != Value::Unspec)
            .count();
        let state = items(field(w, "state"))
            .iter()
            .rev()
            .find_map(whole)
            .and_then(|i| states.get(i as usize).copied())
            .unwrap_or("-");
        let lat = if latency.is_empty() {
            "-".to_string()
        } else {
            let min = latency.iter().copied().fold(f64::INFINITY, f64::min);
            let max = latency.iter().copied().fold(0.0, f64::max);
            let mean = latency.iter().sum::<f64>() / latency.len() as f64;
            format!("{min:.1}/{mean:.1}/{max:.1}")
        };
        let loss = loss
            .iter()
            .copied()
            .reduce(f64::max)
            .map_or("-".to_string(), |l| format!("{l:.0}%"));
        out += &format!(
            "{:<10} {held:>7}  {state:<13} {lat:>27}  {loss:>9}\n",
            field(w, "name").as_str().unwrap_or("?")
        );
    }
    let events = items(field(&h, "events"));
    if !events.is_empty() {
        out += "\nevents (second of mwand's clock):\n";
    }
    for e in events {
        let reason = field(e, "reason").as_str().unwrap_or("");
        out += &format!(
            "  {:>7}  {} {}: {}{}\n",
            whole(field(e, "t")).unwrap_or(0),
            field(e, "kind").as_str().unwrap_or("?"),
            field(e, "subject").as_str().unwrap_or("?"),
            field(e, "text").as_str().unwrap_or(""),
            if reason.is_empty() {
                String::new()
            } else {
                format!(" ({reason})")
            }
        );
    }
    out + &format!(
        "next: {} (poll with --since {0})\n",
        whole(field(&h, "next")).unwrap_or(0)
    )
}

/// `value[key]`, null when `value` is not a table or lacks the key.
fn field<'a>(value: &'a Value, key: &str) -> &'a Value {
    value
        .as_table()
        .and_then(|t| t.get(key))
        .unwrap_or(&Value::Unspec)
}

/// The items of an array; none for anything else.
fn items(value: &Value) -> &[Value] {
    value.as_array().unwrap_or(&[])
}

/// A JSON number (parsed JSON holds booleans as int8, numbers never).
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Int8(_) => None,
        v => v.as_f64(),
    }
}

/// A JSON whole number from 0.
fn whole(value: &Value) -> Option<u64> {
    match value {
        Value::Int8(_) => None,
        v => v.as_i64().and_then(|n| u64::try_from(n).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_shows_each_wan_in_brief_and_the_timeline() {
        let json = r#"{"next": 5, "reset": false, "step_s": 1,
 "states": ["unknown","online","disconnecting","offline","connecting","disabled"],
 "wans": [{"name": "wan1", "t0": 3, "latency_ms": [12.5,null,8], "jitter_ms": [1.3,null,0.8],
           "loss_pct": [100,null,0], "score": [13.5,null,9], "state": [3,null,1]},
          {"name": "wan2", "t0": null, "latency_ms": [], "jitter_ms": [], "loss_pct": [], "score": [], "state": []}],
 "events": [{"seq": 1, "t": 3, "at_ms": 3100, "kind": "state", "subject": "wan1",
             "text": "online -> offline", "reason": "3 of 3 probes lost"}]}"#;
        let text = history(json);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("wan1"), "{text}");
        assert!(lines[1].contains("online"), "{text}");
        assert!(lines[1].contains("8.0/10.2/12.5"), "{text}");
        assert!(lines[1].contains("100%"), "{text}");
        assert!(
            lines[2].starts_with("wan2") && lines[2].contains(" - "),
            "{text}"
        );
        assert!(
            text.contains("3  state wan1: online -> offline (3 of 3 probes lost)"),
            "{text}"
        );
        assert!(text.ends_with("next: 5 (poll with --since 5)\n"), "{text}");
        assert!(history("nope").starts_with("error:"));
    }
    use mwan_proto::control::{ActiveMemberStatus, TrackerStatus};

    fn sample() -> Status {
        Status {
            interfaces: vec![InterfaceStatus {
                name: "wan1".into(),
                device: Some("eth1".into()),
                state: "online".into(),
                state_age_s: 65,
                latency_ms: Some(12.34),
                jitter_ms: Some(1.0),
                loss_pct: Some(0.0),
                score: Some(13.3),
                tracker: TrackerStatus {
                    pid: Some(42),
                    restarts: 1,
                    uptime_s: Some(3725),
                    connected: true,
                },
                reason: None,
            }],
            policies: vec![PolicyStatus {
                name: "balanced".into(),
                active: vec![ActiveMemberStatus {
                    interface: "wan1".into(),
                    weight: 3,
                    share_pct: 100.0,
                }],
                last_resort: None,
                ceilings: Vec::new(),
            }],
            override_: None,
            uptime_s: 10,
            config: "/etc/config/mwan".into(),
            dataplane_error: None,
            overrides: Vec::new(),
            dataplane: Default::default(),
            dataplane_error_kind: None,
            event_loop: Default::default(),
            config_warning: None,
        }
    }

    #[test]
    fn the_error_kind_and_event_loop_surprises_are_shown_only_when_there() {
        let t = text(&Response::Status(sample()));
        assert!(
            !t.contains("data plane error") && !t.contains("event loop"),
            "{t}"
        );
        let mut s = sample();
        s.dataplane_error = Some("1 of 2 change(s) refused".into());
        s.dataplane_error_kind = Some(mwan_proto::control::DataplaneErrorKind::KernelRefused);
        s.event_loop.dropped_tracker_peers = 2;
        s.event_loop.unexpected_events = 1;
        let t = text(&Response::Status(s));
        assert!(
            t.contains("data plane error (kernel_refused): 1 of 2 change(s) refused"),
            "{t}"
        );
        assert!(
            t.contains("event loop: 1 unexpected event(s), 2 tracker connection(s) dropped\n"),
            "{t}"
        );
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(7), "7s");
        assert_eq!(duration(65), "1m05s");
        assert_eq!(duration(3725), "1h02m");
        assert_eq!(duration(90000), "1d01h");
    }

    #[test]
    fn status_text_names_every_figure() {
        let t = text(&Response::Status(sample()));
        for needle in [
            "wan1 (eth1)",
            "online",
            "1m05s",
            "12.3ms",
            "pid 42",
            "1 restart",
            "balanced",
            "wan1 (w3, 100%)",
            "override: none",
        ] {
            assert!(t.contains(needle), "missing {needle:?} in\n{t}");
        }
    }

    #[test]
    fn a_reason_follows_the_state_and_columns_still_line_up() {
        let mut s = sample();
        let mut down = s.interfaces[0].clone();
        down.name = "wan2".into();
        down.state = "disabled".into();
        down.reason = Some("no carrier".into());
        s.interfaces.push(down);
        let t = interfaces(&s.interfaces);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[2].contains("disabled (no carrier)"), "\n{t}");
        let for_end = lines[0].find("FOR").unwrap() + 3;
        for l in &lines[1..] {
            assert_eq!(l.find("1m05s").map(|p| p + 5), Some(for_end), "\n{t}");
        }
    }

    #[test]
    fn columns_line_up_with_their_headers() {
        let mut s = sample();
        s.interfaces[0].device = Some("eth1.100".into());
        let t = interfaces(&s.interfaces);
        let lines: Vec<&str> = t.lines().collect();
        let state_at = lines[0].find("STATE").unwrap();
        assert_eq!(lines[1].find("online"), Some(state_at), "\n{t}");
        let loss_end = lines[0].find("LOSS").unwrap() + 4;
        assert_eq!(
            lines[1].find("0.0%").map(|p| p + 4),
            Some(loss_end),
            "\n{t}"
        );
    }

    #[test]
    fn every_override_is_shown() {
        let mut s = sample();
        s.overrides = vec![
            OverrideStatus {
                interface: "wan2".into(),
                policy: Some("balanced".into()),
            },
            OverrideStatus {
                interface: "wan1".into(),
                policy: Some("failover".into()),
            },
        ];
        s.override_ = s.overrides.first().cloned();
        let t = text(&Response::Status(s));
        assert!(
            t.contains("override: policy balanced forced to wan2\n"),
            "{t}"
        );
        assert!(
            t.contains("override: policy failover forced to wan1\n"),
            "{t}"
        );
    }

    /// `mwanctl --json` of a list command is what `ubus call mwan <cmd>`
    /// answers (docs/status-json.md, docs/ubus.md).
    #[test]
    fn list_json_has_the_ubus_reply_shape() {
        let mut policy = sample().policies;
        policy[0].last_resort = Some("unreachable".into());
        let replies = [
            Response::Interfaces(sample().interfaces),
            Response::Policies(policy),
            Response::Rules(vec![RuleStatus {
                name: "r".into(),
                policy: "balanced".into(),
                summary: "all traffic".into(),
            }]),
            Response::Connected(vec!["192.0.2.0/24".into()]),
            Response::Explain(vec![PolicyExplanation {
                policy: "balanced".into(),
                lines: vec!["wan1 is online".into()],
            }]),
        ];
        for r in replies {
            let ours: serde_json::Value = serde_json::from_str(&json(&r)).unwrap();
            let (code, body) = mwan_ubus::mwan_object::reply(&r);
            assert_eq!(code, 0);
            assert_eq!(ours, body.to_json(), "{r:?}");
        }
    }

    #[test]
    fn status_json_has_the_documented_fields() {
        let v: serde_json::Value =
            serde_json::from_str(&json(&Response::Status(sample()))).unwrap();
        assert_eq!(v["interfaces"][0]["name"], "wan1");
        assert_eq!(v["interfaces"][0]["state"], "online");
        assert_eq!(v["interfaces"][0]["tracker"]["pid"], 42);
        assert_eq!(v["interfaces"][0]["tracker"]["restarts"], 1);
        assert_eq!(v["policies"][0]["active"][0]["interface"], "wan1");
        assert_eq!(v["policies"][0]["active"][0]["weight"], 3);
        assert!(v["override"].is_null());
    }
}
