//! mwan3's schema (and our extensions) over the raw sections: typed values,
//! defaults, ranges and references, every problem reported.
//!
//! Decisions that are not obvious (docs/configuration.md explains each):
//! - A member naming an undefined interface, or a policy naming an undefined
//!   member, is a warning and the reference is dropped: mwan3 skips such
//!   members at run time and real configs carry them (leftovers after an
//!   uplink was removed).
//! - A rule naming an undefined policy is an error: mwan3 cannot install it
//!   (iptables rejects the jump), so the rule never worked.
//! - `option` where mwan3 reads a list (track_ip, use_member, ...) is used,
//!   with a warning that mwan3 itself ignores it.

//!
//! Modules: the [`Checker`](checker::Checker) that reads typed values and
//! reports problems (checker.rs), `interface` sections (interface.rs),
//! `rule` sections (rule.rs).

mod checker;
mod interface;
mod rule;

use super::model::*;
use super::uci::{RawDocument, RawSection};
use super::values;
use super::{Diagnostic, Kind};
use checker::Checker;
use interface::interface;
use rule::rule;

const GLOBALS_OPTIONS: &[&str] = &[
    "mmx_mask",
    "rt_table_lookup",
    "logging",
    "loglevel",
    "source_routing",
    "override",
    "automatic",
    // Read by the init script, which passes them as --http and
    // --http-token-file (docs/dashboard.md).
    "http",
    "http_token_file",
];
const INTERFACE_OPTIONS: &[&str] = &[
    "enabled",
    "initial_state",
    "family",
    "track_method",
    "track_ip",
    "reliability",
    "count",
    "timeout",
    "interval",
    "failure_interval",
    "recovery_interval",
    "keep_failure_interval",
    "down",
    "up",
    "size",
    "max_ttl",
    "check_quality",
    "failure_latency",
    "recovery_latency",
    "failure_loss",
    "recovery_loss",
    "httping_ssl",
    "flush_conntrack",
    // Extensions.
    "device",
    "gateway",
    "quality_bias",
    "quality_loss_divisor",
    "quality_loss_limit",
    "quality_time_constant",
    "quality_smoothing",
    "probe_budget_per_minute",
    "probe_budget_bytes_per_day",
];
const MEMBER_OPTIONS: &[&str] = &["interface", "metric", "weight"];
const POLICY_OPTIONS: &[&str] = &[
    "use_member",
    "last_resort",
    "mode",
    "score_hysteresis",
    "score_min_stable",
    "max_latency",
    "max_jitter",
    "max_loss",
    "latency_hysteresis",
    "jitter_hysteresis",
    "loss_hysteresis",
    "latency_min_stable",
    "jitter_min_stable",
    "loss_min_stable",
    "quality_fallback",
];
const RULE_OPTIONS: &[&str] = &[
    "proto",
    "src_ip",
    "src_iface",
    "src_port",
    "dest_ip",
    "dest_port",
    "ipset",
    "sticky",
    "timeout",
    "family",
    "logging",
    "use_policy",
];

/// Options older mwan3 releases or vendor forks wrote; known, so the warning
/// can say what they were.
const OBSOLETE: &[(&str, &str, &str)] = &[
    ("globals", "local_source", "an old mwan3 global (router traffic source); mwan always routes the router's own traffic by policy"),
    ("globals", "rtmon_interval", "an old mwan3 global; routes are followed through netlink events"),
    ("globals", "enabled", "not an mwan3 globals option (vendor firmware)"),
    ("globals", "mode", "not an mwan3 globals option (vendor firmware)"),
    ("member", "equalize", "a pre-2014 mwan option; per-packet balancing is not supported"),
    ("policy", "equalize", "a pre-2014 mwan option; per-packet balancing is not supported"),
    ("interface", "track_ip_src", "a vendor extension (GL.iNet)"),
    ("interface", "bind_interface", "a vendor extension (GL.iNet)"),
    ("rule", "inbound", "a vendor extension (GL.iNet)"),
];

const MAX_SECONDS_MS: DurationMs = 3_600_000;
/// quality_time_constant: up to a day.
const MAX_TIME_CONSTANT_MS: DurationMs = 86_400_000;

/// Builds the resolved config, pushing every problem into `diags`.
pub(crate) fn build(source: &str, doc: &RawDocument, diags: &mut Vec<Diagnostic>) -> Config {
    let mut c = Checker { source, diags };
    let mut config = Config {
        source: source.to_string(),
        globals: Globals::default(),
        interfaces: Vec::new(),
        members: Vec::new(),
        policies: Vec::new(),
        rules: Vec::new(),
    };
    let mut interface_sections = Vec::new();
    let mut member_sections = Vec::new();
    let mut policy_sections = Vec::new();
    let mut rule_sections = Vec::new();
    // mwan3 reads the section named 'globals'; without one we take the
    // first globals section (with a warning) rather than silently none.
    let all_globals = || doc.sections.iter().filter(|s| s.kind == "globals");
    let chosen_globals = all_globals()
        .find(|s| s.name.as_deref() == Some("globals"))
        .or_else(|| all_globals().next());

    for section in &doc.sections {
        match section.kind.as_str() {
            "globals" => {
                let Some(chosen) = chosen_globals else {
                    continue;
                };
                if !std::ptr::eq(section, chosen) {
                    c.report(Kind::GlobalsSection,
                        section.line,
                        section,
                        None,
                        format!("globals section ignored: mwan reads one, '{}' at line {}", chosen.label, chosen.line),
                    );
                    continue;
                }
                if section.name.as_deref() != Some("globals") {
                    c.report(Kind::GlobalsSection,
                        section.line,
                        section,
                        None,
                        "mwan3 reads only a globals section named 'globals' (config globals 'globals'); mwan uses this one".into(),
                    );
                }
                config.globals = globals(&mut c, section);
            }
            "interface" | "member" | "policy" if section.name.is_none() => c.error(
                section.line,
                section,
                None,
                format!(
                    "anonymous {} section: expected a name ('config {} NAME'), {}",
                    section.kind,
                    section.kind,
                    if section.kind == "interface" {
                        "the netifd interface it tracks"
                    } else {
                        "so that other sections can refer to it"
                    }
                ),
            ),
            "interface" => interface_sections.push(section),
            "member" => member_sections.push(section),
            "policy" => policy_sections.push(section),
            "rule" => rule_sections.push(section),
            other => c.report(Kind::UnknownSection,
                section.line,
                section,
                None,
                format!("unknown section type '{other}', ignored: expected globals, interface, member, policy or rule"),
            ),
        }
    }

    for section in &interface_sections {
        config.interfaces.push(interface(&mut c, section));
    }
    if interface_sections.is_empty() {
        // Accepted (an automatic mode for a missing config comes later), but
        // never silently: applying it withdraws every route and rule of ours.
        let line = doc.sections.first().map_or(1, |s| s.line);
        c.diags.push(Diagnostic::new(
            Kind::NoEffect,
            source,
            line,
            None,
            None,
            "no interface section: this config removes all multi-WAN routing (every WAN's table, rule and mark of mwan); expected at least one 'config interface NAME'".into(),
        ));
    }
    check_mark_capacity(&mut c, &config, &interface_sections);

    for section in &member_sections {
        if let Some(member) = member(&mut c, section, &config.interfaces) {
            config.members.push(member);
        }
    }
    for section in &policy_sections {
        config
            .policies
            .push(policy(&mut c, section, &config.members, &member_sections));
    }
    for section in &rule_sections {
        if let Some(rule) = rule(&mut c, section, &config) {
            config.rules.push(rule);
        }
    }
    config
}

fn globals(c: &mut Checker, s: &RawSection) -> Globals {
    c.unknown_options(s, GLOBALS_OPTIONS);
    let defaults = Globals::default();
    let mmx_mask = c.get(s, "mmx_mask", defaults.mmx_mask, |v| {
        let mask = values::hex_or_decimal(v)?;
        if mask.count_ones() < 2 {
            return Err(format!("mask 0x{mask:X} has {} bit(s): expected at least 2 bits (mwan3 default 0x3F00: 6 bits, 60 interfaces)", mask.count_ones()));
        }
        Ok(mask)
    });
    let mut rt_table_lookup = Vec::new();
    for (value, line) in c.list(s, "rt_table_lookup") {
        for item in values::split_list(value) {
            match values::integer(item, 1, u64::from(u32::MAX)) {
                Ok(id) => rt_table_lookup.push(id as u32),
                Err(message) => c.error(
                    line,
                    s,
                    Some("rt_table_lookup"),
                    format!("table '{item}': {message}"),
                ),
            }
        }
    }
    // logger(1) priority names, including its aliases (error, warn, panic),
    // which mwan3 passes through unchanged; kept as the canonical name.
    const LEVELS: &[(&str, &str)] = &[
        ("emerg", "emerg"),
        ("panic", "emerg"),
        ("alert", "alert"),
        ("crit", "crit"),
        ("err", "err"),
        ("error", "err"),
        ("warning", "warning"),
        ("warn", "warning"),
        ("notice", "notice"),
        ("info", "info"),
        ("debug", "debug"),
    ];
    // Checked here so a typo is named with its line, not at boot by mwand.
    c.get_opt(s, "http", |v| {
        v.parse::<std::net::SocketAddr>().map(drop).map_err(|_| {
            format!("'{v}' is not an address and port: expected e.g. 127.0.0.1:8080 or [::1]:8080")
        })
    });
    Globals {
        mmx_mask,
        rt_table_lookup,
        logging: c.boolean(s, "logging", false),
        loglevel: c.choice(s, "loglevel", "notice", LEVELS).to_string(),
        source_routing: c.boolean(s, "source_routing", false),
        override_: c.get_opt(s, "override", |v| Ok(v.to_string())),
        automatic: c.boolean(s, "automatic", false),
    }
}

/// mwan3 numbers interfaces 1..=2^bits-4 inside mmx_mask (the top three
/// values mark default, blackhole and unreachable, 0 means unmarked).
fn check_mark_capacity(c: &mut Checker, config: &Config, sections: &[&RawSection]) {
    let bits = config.globals.mmx_mask.count_ones();
    let capacity = (1u64 << bits).saturating_sub(4);
    if config.interfaces.len() as u64 > capacity {
        if let Some(s) = sections.get(capacity as usize) {
            c.error(
                s.line,
                s,
                None,
                format!(
                    "too many interfaces: mmx_mask 0x{:X} has {bits} bits, room for {capacity} interfaces, this is number {}: expected a wider mmx_mask",
                    config.globals.mmx_mask,
                    capacity + 1
                ),
            );
        }
    }
}

fn member(c: &mut Checker, s: &RawSection, interfaces: &[Interface]) -> Option<Member> {
    c.unknown_options(s, MEMBER_OPTIONS);
    let metric = c.integer(s, "metric", 1, 1, 256);
    let weight = c.integer(s, "weight", 1, 1, 1000);
    let Some((interface, line)) = c.scalar(s, "interface") else {
        if s.option("interface").is_none() {
            c.error(
                s.line,
                s,
                Some("interface"),
                "missing: expected the name of the interface section this member uses".into(),
            );
        }
        return None;
    };
    if !interfaces.iter().any(|i| i.name == interface) {
        c.report(Kind::UndefinedReference, line, s, Some("interface"), format!(
            "interface '{interface}' is not defined: the member is ignored and left out of every policy (as mwan3 does); expected one of: {}",
            names(interfaces.iter().map(|i| i.name.as_str()))));
        return None;
    }
    Some(Member {
        name: s.label.clone(),
        interface: interface.to_string(),
        metric,
        weight,
    })
}

fn policy(
    c: &mut Checker,
    s: &RawSection,
    members: &[Member],
    member_sections: &[&RawSection],
) -> Policy {
    c.unknown_options(s, POLICY_OPTIONS);
    long_name(c, s);
    let mut use_member = Vec::new();
    for (value, line) in c.list(s, "use_member") {
        for name in value.split_whitespace() {
            if use_member.iter().any(|m| m == name) {
                c.report(
                    Kind::DuplicateMember,
                    line,
                    s,
                    Some("use_member"),
                    format!("member '{name}' is listed twice: the second is ignored"),
                );
            } else if members.iter().any(|m| m.name == name) {
                use_member.push(name.to_string());
            } else if member_sections.iter().any(|m| m.label == name) {
                // Defined but ignored (undefined interface): already warned there.
            } else {
                c.report(
                    Kind::UndefinedReference,
                    line,
                    s,
                    Some("use_member"),
                    format!(
                    "member '{name}' is not defined: ignored (as mwan3 does); expected one of: {}",
                    names(member_sections.iter().map(|m| m.label.as_str()))),
                );
            }
        }
    }
    let last_resort = c.choice(s, "last_resort", LastResort::Unreachable, LastResort::WORDS);
    let score = c.choice(s, "mode", false, &[("tiers", false), ("score", true)]);
    let hysteresis = c.get(s, "score_hysteresis", DEFAULT_SCORE_HYSTERESIS, |v| {
        values::decimal(v, 0.0, false, 100_000.0)
    });
    let min_stable_ms = c.get(s, "score_min_stable", DEFAULT_SCORE_MIN_STABLE_MS, |v| {
        values::seconds(v, 0, 86_400_000)
    });
    if !score {
        for option in ["score_hysteresis", "score_min_stable"] {
            if let Some(o) = s.option(option) {
                c.report(
                    Kind::NoEffect,
                    o.line,
                    s,
                    Some(option),
                    "has no effect unless 'option mode score' is set".into(),
                );
            }
        }
    }
    let mode = if score {
        PolicyMode::Score {
            hysteresis,
            min_stable_ms,
        }
    } else {
        PolicyMode::Tiers
    };
    Policy {
        name: s.label.clone(),
        use_member,
        last_resort,
        mode,
        ceilings: ceilings(c, s),
    }
}

/// Unset hysteresis of a ceiling: a tenth of the ceiling.
const DEFAULT_CEILING_HYSTERESIS_FRACTION: f64 = 0.1;
/// Unset minimum stable time of a ceiling.
const DEFAULT_CEILING_MIN_STABLE_MS: DurationMs = 5_000;

/// `max_latency`/`max_jitter` (ms), `max_loss` (%), each with its
/// `*_hysteresis` (same unit) and `*_min_stable` (seconds), and
/// `quality_fallback` (docs/configuration.md, "Quality per policy").
fn ceilings(c: &mut Checker, s: &RawSection) -> QualityCeilings {
    let latency = ceiling(c, s, QualityKind::Latency);
    let jitter = ceiling(c, s, QualityKind::Jitter);
    let loss = ceiling(c, s, QualityKind::Loss);
    let fallback = c.choice(
        s,
        "quality_fallback",
        CeilingFallback::Best,
        &[
            ("best", CeilingFallback::Best),
            ("last_resort", CeilingFallback::LastResort),
        ],
    );
    let ceilings = QualityCeilings {
        latency,
        jitter,
        loss,
        fallback,
    };
    if !ceilings.any() {
        if let Some(o) = s.option("quality_fallback") {
            c.report(
                Kind::NoEffect,
                o.line,
                s,
                Some("quality_fallback"),
                "has no effect without a quality ceiling (max_latency, max_jitter or max_loss)"
                    .into(),
            );
        }
    }
    ceilings
}

/// One ceiling: `max_KIND` with its `KIND_hysteresis` and
/// `KIND_min_stable`; None when unset or unusable.
fn ceiling(c: &mut Checker, s: &RawSection, kind: QualityKind) -> Option<Ceiling> {
    let name = kind.as_str();
    let top = match kind {
        QualityKind::Loss => 100.0,
        _ => 600_000.0,
    };
    let max = format!("max_{name}");
    let hyst = format!("{name}_hysteresis");
    let stable = format!("{name}_min_stable");
    let limit = c.get(s, &max, None, |v| {
        values::decimal(v, 0.0, true, top).map(Some)
    });
    let hysteresis = c.get(s, &hyst, None, |v| {
        values::decimal(v, 0.0, false, top).map(Some)
    });
    let min_stable_ms = c.get(s, &stable, DEFAULT_CEILING_MIN_STABLE_MS, |v| {
        values::seconds(v, 0, 86_400_000)
    });
    let Some(limit) = limit else {
        for option in [&hyst, &stable] {
            if let Some(o) = s.option(option) {
                c.report(
                    Kind::NoEffect,
                    o.line,
                    s,
                    Some(option),
                    format!("has no effect without 'option {max}'"),
                );
            }
        }
        return None;
    };
    let hysteresis = hysteresis.unwrap_or(limit * DEFAULT_CEILING_HYSTERESIS_FRACTION);
    if hysteresis >= limit {
        if let Some(o) = s.option(&hyst) {
            c.error(
                o.line,
                s,
                Some(&hyst),
                format!(
                    "must be below {max} ({limit}): a member above the ceiling could never return"
                ),
            );
        }
        return None;
    }
    Some(Ceiling {
        limit,
        hysteresis,
        min_stable_ms,
    })
}

/// mwan3 (2.10+) skips policies and rules whose name is longer than 15
/// characters (its iptables chain names would not fit); nft has no such
/// limit, so we apply them, and say that mwan3 would not.
fn long_name(c: &mut Checker, s: &RawSection) {
    if s.name.is_some() && s.label.chars().count() > 15 {
        c.report(Kind::LongName, s.line, s, None, format!(
            "name longer than 15 characters: mwan3 skips such a {}, mwan applies it (shorten the name to mean the same to both)",
            s.kind));
    }
}

/// What use_policy may name, for messages.
fn policy_choices(config: &Config) -> String {
    let builtin = "default, unreachable or blackhole";
    if config.policies.is_empty() {
        format!("{builtin} (no policy is defined)")
    } else {
        let names: Vec<&str> = config.policies.iter().map(|p| p.name.as_str()).collect();
        format!("one of: {}, or {builtin}", names.join(", "))
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod policy_tests;

fn names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let list: Vec<&str> = names.collect();
    if list.is_empty() {
        "(none defined)".into()
    } else {
        list.join(", ")
    }
}
