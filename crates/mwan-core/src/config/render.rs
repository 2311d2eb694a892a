//! A config written back as canonical UCI text: every option explicit, in
//! schema order, single-quoted. Parsing the text gives the same [`Config`]
//! (the property tests check it), so this is also how tools can save a
//! resolved config.

use super::model::*;
use super::values::{protocol_name, show_seconds};

/// Quotes a value for UCI: single quotes, with `'` written as `'\''` (close,
/// escaped quote, reopen), as libuci's own export does.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

struct Out(String);

impl Out {
    fn option(&mut self, name: &str, value: impl AsRef<str>) {
        self.0 += &format!("\toption {name} {}\n", quote(value.as_ref()));
    }
    fn list<'a>(&mut self, name: &str, values: impl IntoIterator<Item = &'a str>) {
        for value in values {
            self.0 += &format!("\tlist {name} {}\n", quote(value));
        }
    }
    fn section(&mut self, kind: &str, name: &str) {
        if name.starts_with('@') {
            self.0 += &format!("\nconfig {kind}\n");
        } else {
            self.0 += &format!("\nconfig {kind} {}\n", quote(name));
        }
    }
}

fn flag(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

pub(crate) fn ports_text(ports: &[PortRange]) -> String {
    let items: Vec<String> = ports
        .iter()
        .map(|p| {
            if p.first == p.last {
                p.first.to_string()
            } else {
                format!("{}:{}", p.first, p.last)
            }
        })
        .collect();
    items.join(",")
}

pub(crate) fn addresses_text(nets: &[IpNet], masked: &[MaskedIp]) -> String {
    let items: Vec<String> = nets
        .iter()
        .map(|n| format!("{}/{}", n.addr, n.prefix_len))
        .chain(masked.iter().map(|m| format!("{}/{}", m.addr, m.mask)))
        .collect();
    items.join(",")
}

/// Canonical UCI text of `config`.
pub fn render(config: &Config) -> String {
    let mut out = Out(String::new());
    let g = &config.globals;
    // mwan3 reads the section named 'globals'; if another section has taken
    // that name, an anonymous one still reads back the same (with a warning).
    let taken = config
        .interfaces
        .iter()
        .map(|i| &i.name)
        .chain(config.members.iter().map(|m| &m.name))
        .chain(config.policies.iter().map(|p| &p.name))
        .chain(config.rules.iter().map(|r| &r.name))
        .any(|n| n == "globals");
    out.section("globals", if taken { "@globals[0]" } else { "globals" });
    out.option("mmx_mask", format!("0x{:X}", g.mmx_mask));
    let tables: Vec<String> = g.rt_table_lookup.iter().map(u32::to_string).collect();
    out.list("rt_table_lookup", tables.iter().map(String::as_str));
    out.option("logging", flag(g.logging));
    out.option("loglevel", &g.loglevel);
    out.option("source_routing", flag(g.source_routing));
    if let Some(wan) = &g.override_ {
        out.option("override", wan);
    }

    for i in &config.interfaces {
        out.section("interface", &i.name);
        out.option("enabled", flag(i.enabled));
        out.option(
            "initial_state",
            if i.initial_state == InitialState::Online {
                "online"
            } else {
                "offline"
            },
        );
        out.option("family", i.family.as_str());
        out.option("track_method", i.track_method.as_str());
        out.list("track_ip", i.track_ip.iter().map(String::as_str));
        out.option("reliability", i.reliability.to_string());
        out.option("count", i.count.to_string());
        out.option("timeout", show_seconds(i.timeout));
        out.option("interval", show_seconds(i.interval));
        out.option("failure_interval", show_seconds(i.failure_interval));
        out.option("recovery_interval", show_seconds(i.recovery_interval));
        out.option("keep_failure_interval", flag(i.keep_failure_interval));
        out.option("down", i.down.to_string());
        out.option("up", i.up.to_string());
        out.option("size", i.size.to_string());
        out.option("max_ttl", i.max_ttl.to_string());
        out.option("check_quality", flag(i.check_quality));
        out.option("failure_latency", i.failure_latency_ms.to_string());
        out.option("recovery_latency", i.recovery_latency_ms.to_string());
        out.option("failure_loss", i.failure_loss_pct.to_string());
        out.option("recovery_loss", i.recovery_loss_pct.to_string());
        out.option("httping_ssl", flag(i.httping_ssl));
        out.list(
            "flush_conntrack",
            i.flush_conntrack.iter().map(|e| e.as_str()),
        );
        if let Some(device) = &i.device {
            out.option("device", device);
        }
        if let Some(gateway) = &i.gateway {
            out.option("gateway", gateway.to_string());
        }
        out.option("quality_bias", i.quality.bias_ms.to_string());
        out.option("quality_loss_divisor", i.quality.loss_divisor.to_string());
        out.option("quality_loss_limit", i.quality.loss_limit_pct.to_string());
        out.option(
            "quality_time_constant",
            show_seconds(i.quality.time_constant_ms),
        );
        match &i.probe_budget {
            Some(ProbeBudget::ProbesPerMinute(n)) => {
                out.option("probe_budget_per_minute", n.to_string())
            }
            Some(ProbeBudget::BytesPerDay(n)) => {
                out.option("probe_budget_bytes_per_day", n.to_string())
            }
            None => {}
        }
    }

    for m in &config.members {
        out.section("member", &m.name);
        out.option("interface", &m.interface);
        out.option("metric", m.metric.to_string());
        out.option("weight", m.weight.to_string());
    }

    for p in &config.policies {
        out.section("policy", &p.name);
        out.list("use_member", p.use_member.iter().map(String::as_str));
        out.option("last_resort", p.last_resort.as_str());
        if let PolicyMode::Score {
            hysteresis,
            min_stable_ms,
        } = p.mode
        {
            out.option("mode", "score");
            out.option("score_hysteresis", hysteresis.to_string());
            out.option("score_min_stable", show_seconds(min_stable_ms));
        }
        for kind in QualityKind::ALL {
            if let Some(c) = p.ceilings.get(kind) {
                let name = kind.as_str();
                out.option(&format!("max_{name}"), c.limit.to_string());
                out.option(&format!("{name}_hysteresis"), c.hysteresis.to_string());
                out.option(&format!("{name}_min_stable"), show_seconds(c.min_stable_ms));
            }
        }
        if p.ceilings.any() && p.ceilings.fallback == CeilingFallback::LastResort {
            out.option("quality_fallback", "last_resort");
        }
    }

    for r in &config.rules {
        out.section("rule", &r.name);
        let protos: Vec<String> = std::iter::once(r.proto)
            .chain(r.extra_protos.iter().copied())
            .map(protocol_name)
            .collect();
        out.option("proto", protos.join(" "));
        if !r.src_ip.is_empty() || !r.src_ip_masked.is_empty() {
            out.option("src_ip", addresses_text(&r.src_ip, &r.src_ip_masked));
        }
        if let Some(iface) = &r.src_iface {
            out.option("src_iface", iface);
        }
        if !r.src_port.is_empty() {
            out.option("src_port", ports_text(&r.src_port));
        }
        if !r.dest_ip.is_empty() || !r.dest_ip_masked.is_empty() {
            out.option("dest_ip", addresses_text(&r.dest_ip, &r.dest_ip_masked));
        }
        if !r.dest_port.is_empty() {
            out.option("dest_port", ports_text(&r.dest_port));
        }
        if let Some(ipset) = &r.ipset {
            out.option("ipset", ipset);
        }
        out.option("sticky", flag(r.sticky));
        out.option("timeout", r.timeout.to_string());
        out.option("family", r.family.as_str());
        out.option("logging", flag(r.logging));
        out.option("use_policy", r.use_policy.as_str());
    }
    out.0
}
