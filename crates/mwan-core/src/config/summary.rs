//! The short resolved summary `mwanctl check` prints: every section with
//! its effective values, defaults filled in, one line each.

use super::model::*;
use super::render::{addresses_text, ports_text};
use super::values::{protocol_name, show_seconds};

/// `1 policy`, `2 policies`, `0 rules`.
fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Summary of a resolved config, one line per section, ending in a newline.
pub fn summary(config: &Config) -> String {
    let mut s = String::new();
    macro_rules! w {
        ($($arg:tt)*) => {{ s += &format!($($arg)*); s.push('\n'); }};
    }
    w!(
        "{}: {}, {}, {}, {}",
        config.source,
        counted(config.interfaces.len(), "interface", "interfaces"),
        counted(config.members.len(), "member", "members"),
        counted(config.policies.len(), "policy", "policies"),
        counted(config.rules.len(), "rule", "rules")
    );
    let g = &config.globals;
    let tables: Vec<String> = g.rt_table_lookup.iter().map(u32::to_string).collect();
    w!(
        "globals: mmx_mask 0x{:X}, logging {} (loglevel {}), source_routing {}, rt_table_lookup {}",
        g.mmx_mask,
        on_off(g.logging),
        g.loglevel,
        on_off(g.source_routing),
        if tables.is_empty() {
            "-".to_string()
        } else {
            tables.join(" ")
        }
    );
    for i in &config.interfaces {
        let mut line = format!(
            "interface {}: {}, {}, initial {}",
            i.name,
            if i.enabled { "enabled" } else { "disabled" },
            i.family.as_str(),
            i.initial_state.as_str()
        );
        if i.track_ip.is_empty() {
            line.push_str(", no track_ip (assumed online)");
        } else {
            line += &format!(
                ", {} {} (reliability {}, count {}, size {}, max_ttl {}), timeout {}s, interval {}s (failure {}s, recovery {}s{}), down {}, up {}",
                i.track_method.as_str(),
                i.track_ip.join(" "),
                i.reliability,
                i.count,
                i.size,
                i.max_ttl,
                show_seconds(i.timeout),
                show_seconds(i.interval),
                show_seconds(i.failure_interval),
                show_seconds(i.recovery_interval),
                if i.keep_failure_interval { ", keep failure interval" } else { "" },
                i.down,
                i.up
            );
        }
        if i.track_method == TrackMethod::Httping && i.httping_ssl {
            line.push_str(", https");
        }
        if i.check_quality {
            line += &format!(
                ", quality check: down at {} ms or {} % loss, up at {} ms and {} % loss",
                i.failure_latency_ms,
                i.failure_loss_pct,
                i.recovery_latency_ms,
                i.recovery_loss_pct
            );
        }
        if !i.flush_conntrack.is_empty() {
            let events: Vec<&str> = i.flush_conntrack.iter().map(|e| e.as_str()).collect();
            line += &format!(", flush_conntrack {}", events.join(" "));
        }
        if let Some(device) = &i.device {
            line += &format!(", device {device}");
        }
        if let Some(gateway) = &i.gateway {
            line += &format!(", gateway {gateway}");
        }
        let q = &i.quality;
        if *q != i.default_quality() {
            line += &format!(
                ", score bias {} loss divisor {} dead above {} % time constant {} s",
                q.bias_ms,
                q.loss_divisor,
                q.loss_limit_pct,
                show_seconds(q.time_constant_ms)
            );
        }
        match &i.probe_budget {
            Some(ProbeBudget::ProbesPerMinute(n)) => {
                line += &format!(", budget {n} probes/min");
            }
            Some(ProbeBudget::BytesPerDay(n)) => {
                line += &format!(", budget {n} bytes/day");
            }
            None => {}
        }
        w!("{line}");
    }
    for m in &config.members {
        w!(
            "member {}: interface {}, metric {}, weight {}",
            m.name,
            m.interface,
            m.metric,
            m.weight
        );
    }
    for p in &config.policies {
        let members: Vec<String> = p
            .use_member
            .iter()
            .map(
                |name| match config.members.iter().find(|m| &m.name == name) {
                    Some(m) => format!(
                        "{} ({} metric {} weight {})",
                        m.name, m.interface, m.metric, m.weight
                    ),
                    None => name.clone(),
                },
            )
            .collect();
        let mode = match p.mode {
            PolicyMode::Tiers => "tiers".to_string(),
            PolicyMode::Score {
                hysteresis,
                min_stable_ms,
            } => {
                format!(
                    "score (hysteresis {hysteresis}, min stable {}s)",
                    show_seconds(min_stable_ms)
                )
            }
        };
        w!(
            "policy {}: {}; mode {mode}; last_resort {}",
            p.name,
            if members.is_empty() {
                "no members".to_string()
            } else {
                members.join(", ")
            },
            p.last_resort.as_str()
        );
    }
    for r in &config.rules {
        let protos: Vec<String> = std::iter::once(r.proto)
            .chain(r.extra_protos.iter().copied())
            .map(protocol_name)
            .collect();
        let mut line = format!(
            "rule {}: {} {}",
            r.name,
            r.family.as_str(),
            protos.join(" ")
        );
        if !r.src_ip.is_empty() || !r.src_ip_masked.is_empty() {
            line += &format!(
                " from {}",
                shorten(&addresses_text(&r.src_ip, &r.src_ip_masked))
            );
        }
        if let Some(iface) = &r.src_iface {
            line += &format!(" in {iface}");
        }
        if !r.src_port.is_empty() {
            line += &format!(" sport {}", ports_text(&r.src_port));
        }
        if !r.dest_ip.is_empty() || !r.dest_ip_masked.is_empty() {
            line += &format!(
                " to {}",
                shorten(&addresses_text(&r.dest_ip, &r.dest_ip_masked))
            );
        }
        if !r.dest_port.is_empty() {
            line += &format!(" dport {}", ports_text(&r.dest_port));
        }
        if let Some(ipset) = &r.ipset {
            line += &format!(" ipset {ipset}");
        }
        if r.sticky {
            line += &format!(", sticky {}s", r.timeout);
        }
        if r.logging {
            line.push_str(", logged");
        }
        line += &format!(" -> {}", r.use_policy.as_str());
        w!("{line}");
    }
    s
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// Long address lists (real configs carry 4 KB ones) cut to stay one line.
fn shorten(text: &str) -> String {
    const MAX: usize = 80;
    if text.len() <= MAX {
        return text.to_string();
    }
    let count = text.split(',').count();
    let mut cut = MAX;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let head = &text[..cut];
    let head = head.rsplit_once(',').map_or(head, |(h, _)| h);
    format!("{head},... ({count} entries)")
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_read_as_words() {
        let text = "config interface 'a'\n\toption enabled '1'\n\n\
            config interface 'b'\n\toption enabled '1'\n\n\
            config member 'a_m'\n\toption interface 'a'\n\n\
            config policy 'p'\n\tlist use_member 'a_m'\n";
        let loaded = crate::config::parse("cfg", text).expect("config");
        let first = super::summary(&loaded.config);
        let first = first.lines().next().unwrap_or_default();
        assert_eq!(first, "cfg: 2 interfaces, 1 member, 1 policy, 0 rules");
    }
}
