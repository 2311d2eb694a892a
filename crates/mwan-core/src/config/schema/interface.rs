//! `config interface` sections: tracking, timing, quality and our
//! extensions, as a list of named steps.

use std::net::IpAddr;

use super::{values, Checker, Kind, INTERFACE_OPTIONS, MAX_TIME_CONSTANT_MS};
use crate::config::model::*;
use crate::config::uci::RawSection;

/// `quality_time_constant` (seconds), or the older per-probe
/// `quality_smoothing` converted to the time constant that keeps its
/// behaviour at this interface's probe rate, with a warning.
fn quality_time_constant(c: &mut Checker, s: &RawSection, spacing_ms: f64) -> DurationMs {
    let tau = c.get_opt(s, "quality_time_constant", |v| {
        values::seconds(v, 0, MAX_TIME_CONSTANT_MS)
    });
    let smoothing = c.get_opt(s, "quality_smoothing", |v| {
        values::decimal(v, 0.0, true, 1.0)
    });
    let Some(alpha) = smoothing else {
        return tau.unwrap_or_else(|| crate::quality::default_time_constant(spacing_ms));
    };
    let line = s.option("quality_smoothing").map_or(s.line, |o| o.line);
    if let Some(tau) = tau {
        c.report(Kind::ReplacedOption, line, s, Some("quality_smoothing"), format!(
            "replaced by quality_time_constant, which is also set ({} s) and wins: expected only quality_time_constant",
            values::show_seconds(tau)));
        return tau;
    }
    let converted = crate::quality::time_constant_from_smoothing(alpha, spacing_ms);
    c.report(Kind::ReplacedOption, line, s, Some("quality_smoothing"), format!(
        "per-probe smoothing is replaced by a time constant: {alpha} at this interface's pace (one probe every {} s) is quality_time_constant '{}'; expected quality_time_constant (seconds)",
        values::show_seconds(spacing_ms.round() as DurationMs),
        values::show_seconds(converted)));
    converted
}

/// One interface section: read each group of options, then check the
/// combinations.
pub(super) fn interface(c: &mut Checker, s: &RawSection) -> Interface {
    c.unknown_options(s, INTERFACE_OPTIONS);
    let d = Interface::new(&s.label);
    let family = c.choice(s, "family", d.family, Family::WORDS);
    let track_method = c.choice(s, "track_method", d.track_method, TrackMethod::WORDS);
    let track_ip = track_targets(c, s, family);
    let reliability = c.integer(s, "reliability", d.reliability, 1, 1000);
    check_reliability(c, s, reliability, track_ip.len());
    let interval = c.seconds(s, "interval", d.interval);
    let timeout = c.seconds(s, "timeout", d.timeout);
    let count = c.integer(s, "count", d.count, 1, 100);
    let flush_conntrack = flush_events(c, s);
    let device = device_name(c, s);
    let gateway = gateway(c, s, family);
    let quality = quality_settings(c, s, &d.quality);
    let probe_budget = probe_budget(c, s);
    let mut interface = Interface {
        name: s.label.clone(),
        enabled: c.boolean(s, "enabled", d.enabled),
        initial_state: c.choice(s, "initial_state", d.initial_state, InitialState::WORDS),
        family,
        track_method,
        track_ip,
        reliability,
        count,
        timeout,
        interval,
        failure_interval: c.seconds(s, "failure_interval", interval),
        recovery_interval: c.seconds(s, "recovery_interval", interval),
        keep_failure_interval: c.boolean(s, "keep_failure_interval", d.keep_failure_interval),
        down: c.integer(s, "down", d.down, 1, 1000),
        up: c.integer(s, "up", d.up, 1, 1000),
        // mwan-track's --size takes up to 65000 (its args.rs).
        size: c.integer(s, "size", d.size, 0, 65000),
        max_ttl: c.integer(s, "max_ttl", d.max_ttl, 1, 255),
        check_quality: c.boolean(s, "check_quality", d.check_quality),
        failure_latency_ms: c.integer(s, "failure_latency", d.failure_latency_ms, 1, 3_600_000),
        recovery_latency_ms: c.integer(s, "recovery_latency", d.recovery_latency_ms, 1, 3_600_000),
        failure_loss_pct: c.integer(s, "failure_loss", d.failure_loss_pct, 0, 100),
        recovery_loss_pct: c.integer(s, "recovery_loss", d.recovery_loss_pct, 0, 100),
        httping_ssl: c.boolean(s, "httping_ssl", d.httping_ssl),
        flush_conntrack,
        device,
        gateway,
        quality,
        probe_budget,
    };
    interface.quality.time_constant_ms = quality_time_constant(c, s, interface.probe_spacing_ms());
    check_httping_ssl(c, s, &interface);
    check_thresholds(c, s, &interface);
    interface
}

/// `track_ip`: addresses of the interface's family or host names. This
/// host is kept with a warning; the other family is an error.
pub(super) fn track_targets(c: &mut Checker, s: &RawSection, family: Family) -> Vec<String> {
    let mut track_ip = Vec::new();
    let entries = c.list(s, "track_ip");
    let total: usize = entries
        .iter()
        .map(|(v, _)| v.split_whitespace().count())
        .sum();
    let mut targets_seen = 0;
    for (value, line) in entries {
        // An `option track_ip 'a b'` is a blank-separated list to the shell.
        for target in value.split_whitespace() {
            targets_seen += 1;
            if targets_seen == MAX_TRACK_IP + 1 {
                // Reported once, where the list goes over.
                c.error(line, s, Some("track_ip"), format!("{total} targets: the tracker probes at most {MAX_TRACK_IP} per interface; expected at most {MAX_TRACK_IP} (remove some, the health verdict needs only a few)"));
            }
            match target.parse::<IpAddr>() {
                Ok(addr) if addr.is_unspecified() => c.report(Kind::UselessTracking,
                    line,
                    s,
                    Some("track_ip"),
                    format!("'{target}' is this host, not a remote target: probes to it say nothing about the uplink; expected an address beyond the gateway"),
                ),
                Ok(addr) if addr.is_ipv4() != (family == Family::Ipv4) => c.error(
                    line,
                    s,
                    Some("track_ip"),
                    format!(
                        "'{target}' is an {} address but the interface's family is {}: expected an {} target (mwan3 could never reach it, the interface would stay down)",
                        if addr.is_ipv4() { "IPv4" } else { "IPv6" },
                        family.as_str(),
                        family.as_str()
                    ),
                ),
                Ok(_) => {}
                Err(_) if values::is_host_name(target) => {}
                Err(_) => {
                    c.error(line, s, Some("track_ip"), format!("'{target}' is neither an IP address nor a host name: expected e.g. 192.0.2.1, 2001:db8::1 or dns.example"));
                    continue;
                }
            }
            track_ip.push(target.to_string());
        }
    }
    track_ip
}

/// More targets must answer than there are: never up (as in mwan3).
pub(super) fn check_reliability(c: &mut Checker, s: &RawSection, reliability: u32, targets: usize) {
    if targets > 0 && reliability as usize > targets {
        let line = s.option("reliability").map_or(s.line, |o| o.line);
        c.report(Kind::UselessTracking,
            line,
            s,
            Some("reliability"),
            format!(
                "{reliability} targets must answer but only {targets} track_ip {} configured: the interface can never be up (as in mwan3, which loads this too); expected at most {targets}",
                if targets == 1 { "is" } else { "are" },
            ),
        );
    }
}

/// `device` (extension): a kernel device name.
pub(super) fn device_name(c: &mut Checker, s: &RawSection) -> Option<String> {
    c.get_opt(s, "device", |v| {
        if v.is_empty() || v.len() > 15 || v.contains(['/', ' ']) || v == "." || v == ".." {
            Err(format!("'{v}' is not a kernel device name: expected 1-15 characters, no '/' or blanks (e.g. eth1, wwan0)"))
        } else {
            Ok(v.to_string())
        }
    })
}

/// `gateway` (extension): a next hop of the interface's family.
pub(super) fn gateway(c: &mut Checker, s: &RawSection, family: Family) -> Option<IpAddr> {
    c.get_opt(s, "gateway", |v| {
        let addr: IpAddr = v.parse().map_err(|_| {
            format!("'{v}' is not an IP address: expected the next hop, e.g. 192.0.2.1 or fe80::1")
        })?;
        if addr.is_ipv4() != (family == Family::Ipv4) {
            return Err(format!(
                "'{v}' does not match the interface's family {}: expected an {} gateway",
                family.as_str(),
                family.as_str()
            ));
        }
        Ok(addr)
    })
}

/// The quality score's options; the time constant is set later, once the
/// probe spacing is known.
pub(super) fn quality_settings(
    c: &mut Checker,
    s: &RawSection,
    d: &QualitySettings,
) -> QualitySettings {
    QualitySettings {
        bias_ms: c.get(s, "quality_bias", d.bias_ms, |v| {
            values::decimal(v, -100_000.0, false, 100_000.0)
        }),
        loss_divisor: c.get(s, "quality_loss_divisor", d.loss_divisor, |v| {
            values::decimal(v, 0.0, true, 1_000_000.0)
        }),
        loss_limit_pct: c.get(s, "quality_loss_limit", d.loss_limit_pct, |v| {
            values::decimal(v, 0.0, true, 100.0)
        }),
        time_constant_ms: d.time_constant_ms,
    }
}

/// At most one of the two probe budgets.
pub(super) fn probe_budget(c: &mut Checker, s: &RawSection) -> Option<ProbeBudget> {
    // The tracker's --budget-ppm and --budget-bytes-day ranges (its args.rs).
    let per_minute = c.get_opt(s, "probe_budget_per_minute", |v| {
        values::integer(v, 1, 60_000).map(|n| n as u32)
    });
    let per_day = c.get_opt(s, "probe_budget_bytes_per_day", |v| {
        values::bytes(v).and_then(|b| {
            if b >= 1000 {
                Ok(b)
            } else {
                Err(format!("'{v}' is under 1000 bytes a day: expected at least 1000 (1k), one probe's worth"))
            }
        })
    });
    match (per_minute, per_day) {
        (Some(_), Some(_)) => {
            let line = s
                .option("probe_budget_bytes_per_day")
                .map_or(s.line, |o| o.line);
            c.error(line, s, Some("probe_budget_bytes_per_day"), "both probe_budget_per_minute and probe_budget_bytes_per_day are set: expected one of them".into());
            None
        }
        (Some(n), None) => Some(ProbeBudget::ProbesPerMinute(n)),
        (None, Some(b)) => Some(ProbeBudget::BytesPerDay(b)),
        (None, None) => None,
    }
}

/// httping over TLS is probed as a TCP handshake: say so.
pub(super) fn check_httping_ssl(c: &mut Checker, s: &RawSection, interface: &Interface) {
    if interface.httping_ssl && interface.track_method == TrackMethod::Httping {
        let line = s.option("httping_ssl").map_or(s.line, |o| o.line);
        c.report(Kind::Unsupported, line, s, Some("httping_ssl"), "TLS is not built into mwan-track (it would cost more flash than the tracker): each target is probed with a TCP handshake to port 443, which tells whether the HTTPS server answers but not whether TLS works; expected httping_ssl '0' for plain HTTP probes".into());
    }
}

/// With check_quality, recovery must be at least as strict as failure.
pub(super) fn check_thresholds(c: &mut Checker, s: &RawSection, interface: &Interface) {
    if !interface.check_quality {
        return;
    }
    if interface.recovery_latency_ms > interface.failure_latency_ms {
        let line = s.option("recovery_latency").map_or(s.line, |o| o.line);
        c.report(Kind::ThresholdOrder, line, s, Some("recovery_latency"), format!(
            "{} ms is above failure_latency {} ms: a link can be too slow to stay up yet fast enough to come back; expected recovery_latency <= failure_latency",
            interface.recovery_latency_ms, interface.failure_latency_ms));
    }
    if interface.recovery_loss_pct > interface.failure_loss_pct {
        let line = s.option("recovery_loss").map_or(s.line, |o| o.line);
        c.report(
            Kind::ThresholdOrder,
            line,
            s,
            Some("recovery_loss"),
            format!(
                "{} % is above failure_loss {} %: expected recovery_loss <= failure_loss",
                interface.recovery_loss_pct, interface.failure_loss_pct
            ),
        );
    }
}

fn flush_events(c: &mut Checker, s: &RawSection) -> Vec<FlushEvent> {
    let mut events = Vec::new();
    for (value, line) in c.list(s, "flush_conntrack") {
        for word in value.split_whitespace() {
            let event = match FlushEvent::WORDS.iter().find(|(w, _)| *w == word) {
                Some((_, event)) => *event,
                // Old scalar style (mwan3 < 2.8): 'never' is the default.
                None if word == "never" => continue,
                None => {
                    c.error(line, s, Some("flush_conntrack"), format!(
                        "'{word}' is not a flush event: expected ifup, ifdown, connected or disconnected ('never' from old configs means none)"));
                    continue;
                }
            };
            if !events.contains(&event) {
                events.push(event);
            }
        }
    }
    events
}

#[cfg(test)]
#[path = "interface_tests.rs"]
mod tests;
