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

use super::model::*;
use super::uci::{valid_name, RawDocument, RawSection};
use super::values::{self, AddressMatch};
use super::{Diagnostic, Kind};
use std::net::IpAddr;

const GLOBALS_OPTIONS: &[&str] = &[
    "mmx_mask",
    "rt_table_lookup",
    "logging",
    "loglevel",
    "source_routing",
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

struct Checker<'a> {
    source: &'a str,
    diags: &'a mut Vec<Diagnostic>,
}

impl Checker<'_> {
    /// A diagnostic of `kind`: a warning unless the kind is
    /// [`Kind::Invalid`].
    fn report(
        &mut self,
        kind: Kind,
        line: usize,
        section: &RawSection,
        option: Option<&str>,
        message: String,
    ) {
        self.diags.push(Diagnostic::new(
            kind,
            self.source,
            line,
            Some((section.label.clone(), section.kind.clone())),
            option.map(str::to_string),
            message,
        ));
    }

    fn error(&mut self, line: usize, section: &RawSection, option: Option<&str>, message: String) {
        self.report(Kind::Invalid, line, section, option, message);
    }

    /// Warns about options this section type does not have.
    fn unknown_options(&mut self, section: &RawSection, known: &[&str]) {
        for option in &section.options {
            if known.contains(&option.name.as_str()) {
                continue;
            }
            let obsolete = OBSOLETE
                .iter()
                .find(|(kind, name, _)| *kind == section.kind && *name == option.name);
            let (kind, message) = match obsolete {
                Some((_, _, what)) => (Kind::ObsoleteOption, format!("ignored: {what}")),
                None => (
                    Kind::UnknownOption,
                    format!(
                        "unknown option for {} {} section, ignored: expected one of {}",
                        if section.kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
                            "an"
                        } else {
                            "a"
                        },
                        section.kind,
                        known.join(", ")
                    ),
                ),
            };
            self.report(kind, option.line, section, Some(&option.name), message);
        }
    }

    /// A single value. A `list` with one value is accepted; more is an error.
    fn scalar<'s>(&mut self, section: &'s RawSection, name: &str) -> Option<(&'s str, usize)> {
        let option = section.option(name)?;
        match option.values.as_slice() {
            [(value, line)] => Some((value.as_str(), *line)),
            values => {
                self.error(
                    option.line,
                    section,
                    Some(name),
                    format!(
                        "given as a list of {} values: expected a single value ('option {name} VALUE')",
                        values.len()
                    ),
                );
                None
            }
        }
    }

    /// A value parsed by `parse`, or `default` (also after an error, so that
    /// checking goes on and reports every problem).
    fn get<T>(
        &mut self,
        section: &RawSection,
        name: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        match self.scalar(section, name) {
            Some((value, line)) => match parse(value) {
                Ok(v) => v,
                Err(message) => {
                    self.error(line, section, Some(name), message);
                    default
                }
            },
            None => default,
        }
    }

    fn get_opt<T>(
        &mut self,
        section: &RawSection,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let (value, line) = self.scalar(section, name)?;
        match parse(value) {
            Ok(v) => Some(v),
            Err(message) => {
                self.error(line, section, Some(name), message);
                None
            }
        }
    }

    fn boolean(&mut self, section: &RawSection, name: &str, default: bool) -> bool {
        self.get(section, name, default, values::boolean)
    }

    fn integer(
        &mut self,
        section: &RawSection,
        name: &str,
        default: u32,
        min: u32,
        max: u32,
    ) -> u32 {
        self.get(section, name, default, |v| {
            values::integer(v, min.into(), max.into()).map(|n| n as u32)
        })
    }

    fn seconds(&mut self, section: &RawSection, name: &str, default: DurationMs) -> DurationMs {
        self.get(section, name, default, |v| {
            values::seconds(v, 1, MAX_SECONDS_MS)
        })
    }

    /// Values of a list option. mwan3 reads these with `config_list_foreach`,
    /// which skips a plain `option`: we use it, and say so.
    fn list<'s>(&mut self, section: &'s RawSection, name: &str) -> Vec<(&'s str, usize)> {
        let Some(option) = section.option(name) else {
            return Vec::new();
        };
        let old_never = name == "flush_conntrack" && option.values[0].0 == "never";
        if !option.is_list && !old_never {
            self.report(Kind::OptionNotList,
                option.line,
                section,
                Some(name),
                format!(
                    "set with 'option' where mwan3 expects 'list {name}': mwan3 ignores it, mwan uses it (write 'list {name} ...' to mean the same to both)"
                ),
            );
        }
        option
            .values
            .iter()
            .map(|(v, l)| (v.as_str(), *l))
            .collect()
    }

    /// One of a fixed set of words.
    fn choice<T: Copy>(
        &mut self,
        section: &RawSection,
        name: &str,
        default: T,
        choices: &[(&str, T)],
    ) -> T {
        self.get(section, name, default, |value| {
            choices
                .iter()
                .find(|(word, _)| *word == value)
                .map(|(_, v)| *v)
                .ok_or_else(|| {
                    let words: Vec<&str> = choices.iter().map(|(w, _)| *w).collect();
                    format!("'{value}' is not valid: expected {}", words.join(", "))
                })
        })
    }
}

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
    Globals {
        mmx_mask,
        rt_table_lookup,
        logging: c.boolean(s, "logging", false),
        loglevel: c.choice(s, "loglevel", "notice", LEVELS).to_string(),
        source_routing: c.boolean(s, "source_routing", false),
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

fn interface(c: &mut Checker, s: &RawSection) -> Interface {
    c.unknown_options(s, INTERFACE_OPTIONS);
    let d = Interface::new(&s.label);
    let family = c.choice(s, "family", d.family, Family::WORDS);
    let track_method = c.choice(s, "track_method", d.track_method, TrackMethod::WORDS);
    let mut track_ip = Vec::new();
    for (value, line) in c.list(s, "track_ip") {
        // An `option track_ip 'a b'` is a blank-separated list to the shell.
        for target in value.split_whitespace() {
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
    let reliability = c.integer(s, "reliability", d.reliability, 1, 1000);
    if !track_ip.is_empty() && reliability as usize > track_ip.len() {
        let line = s.option("reliability").map_or(s.line, |o| o.line);
        c.report(Kind::UselessTracking,
            line,
            s,
            Some("reliability"),
            format!(
                "{reliability} targets must answer but only {} track_ip {} configured: the interface can never be up (as in mwan3, which loads this too); expected at most {}",
                track_ip.len(),
                if track_ip.len() == 1 { "is" } else { "are" },
                track_ip.len()
            ),
        );
    }
    let interval = c.seconds(s, "interval", d.interval);
    let timeout = c.seconds(s, "timeout", d.timeout);
    let count = c.integer(s, "count", d.count, 1, 100);
    let flush_conntrack = flush_events(c, s);
    let device = c.get_opt(s, "device", |v| {
        if v.is_empty() || v.len() > 15 || v.contains(['/', ' ']) || v == "." || v == ".." {
            Err(format!("'{v}' is not a kernel device name: expected 1-15 characters, no '/' or blanks (e.g. eth1, wwan0)"))
        } else {
            Ok(v.to_string())
        }
    });
    let gateway = c.get_opt(s, "gateway", |v| {
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
    });
    let quality = QualitySettings {
        bias_ms: c.get(s, "quality_bias", d.quality.bias_ms, |v| {
            values::decimal(v, -100_000.0, false, 100_000.0)
        }),
        loss_divisor: c.get(s, "quality_loss_divisor", d.quality.loss_divisor, |v| {
            values::decimal(v, 0.0, true, 1_000_000.0)
        }),
        loss_limit_pct: c.get(s, "quality_loss_limit", d.quality.loss_limit_pct, |v| {
            values::decimal(v, 0.0, true, 100.0)
        }),
        // Set below, once the probe spacing is known.
        time_constant_ms: d.quality.time_constant_ms,
    };
    let per_minute = c.get_opt(s, "probe_budget_per_minute", |v| {
        values::integer(v, 1, 1_000_000).map(|n| n as u32)
    });
    let per_day = c.get_opt(s, "probe_budget_bytes_per_day", values::bytes);
    let probe_budget = match (per_minute, per_day) {
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
    };
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
        size: c.integer(s, "size", d.size, 0, 65507),
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
    if interface.httping_ssl && interface.track_method == TrackMethod::Httping {
        let line = s.option("httping_ssl").map_or(s.line, |o| o.line);
        c.report(Kind::Unsupported, line, s, Some("httping_ssl"), "TLS is not built into mwan-track (it would cost more flash than the tracker): each target is probed with a TCP handshake to port 443, which tells whether the HTTPS server answers but not whether TLS works; expected httping_ssl '0' for plain HTTP probes".into());
    }
    if interface.check_quality {
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
    interface
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
    let mut one = |kind: QualityKind| {
        let name = kind.as_str();
        let (max, top) = match kind {
            QualityKind::Loss => (format!("max_{name}"), 100.0),
            _ => (format!("max_{name}"), 600_000.0),
        };
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
                    format!("must be below {max} ({limit}): a member above the ceiling could never return"),
                );
            }
            return None;
        }
        Some(Ceiling {
            limit,
            hysteresis,
            min_stable_ms,
        })
    };
    let latency = one(QualityKind::Latency);
    let jitter = one(QualityKind::Jitter);
    let loss = one(QualityKind::Loss);
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

fn rule(c: &mut Checker, s: &RawSection, config: &Config) -> Option<Rule> {
    c.unknown_options(s, RULE_OPTIONS);
    long_name(c, s);
    let mut rule = Rule::new(&s.label, PolicyTarget::Unreachable);

    // proto: one or several (blank/comma list); `all` alone.
    if let Some(option) = s.option("proto") {
        let mut protos = Vec::new();
        for (value, line) in &option.values {
            for item in values::split_list(value) {
                match values::protocol(item) {
                    Ok(p) if !protos.contains(&p) => protos.push(p),
                    Ok(_) => {}
                    Err(message) => c.error(*line, s, Some("proto"), message),
                }
            }
        }
        if protos.len() > 1 && protos.contains(&Proto::All) {
            c.error(
                option.line,
                s,
                Some("proto"),
                "'all' mixed with other protocols: expected either 'all' or a list of protocols"
                    .into(),
            );
            protos.retain(|p| *p != Proto::All);
        }
        if let Some((first, rest)) = protos.split_first() {
            rule.proto = *first;
            rule.extra_protos = rest.to_vec();
        }
    }

    rule.family = c.choice(s, "family", RuleFamily::Any, RuleFamily::WORDS);
    let src_ip = addresses(c, s, "src_ip");
    let dest_ip = addresses(c, s, "dest_ip");
    let src_port = port_list(c, s, "src_port");
    let dest_port = port_list(c, s, "dest_port");

    // Address families must agree with each other and with `family`.
    let all: Vec<(bool, usize, &str)> = src_ip
        .iter()
        .map(|(a, l)| (a.is_ipv4(), *l, "src_ip"))
        .chain(dest_ip.iter().map(|(a, l)| (a.is_ipv4(), *l, "dest_ip")))
        .collect();
    let has_v4 = all.iter().any(|(v4, _, _)| *v4);
    let has_v6 = all.iter().any(|(v4, _, _)| !*v4);
    if has_v4 && has_v6 {
        let (_, line, option) = all
            .iter()
            .find(|(v4, _, _)| *v4 != all[0].0)
            .copied()
            .unwrap_or(all[0]);
        c.error(line, s, Some(option), "mixes IPv4 and IPv6 addresses: expected one family per rule (write one rule per family)".into());
    } else if let Some((v4, line, option)) = all.first().copied() {
        let wanted = match rule.family {
            RuleFamily::Ipv4 => Some(true),
            RuleFamily::Ipv6 => Some(false),
            RuleFamily::Any => None,
        };
        match wanted {
            Some(w) if w != v4 => c.error(line, s, Some(option), format!(
                "{} addresses in a rule with family {}: the rule could never match; expected {} addresses or family {}",
                if v4 { "IPv4" } else { "IPv6" }, if w { "ipv4" } else { "ipv6" }, if w { "IPv4" } else { "IPv6" }, if v4 { "ipv4" } else { "ipv6" })),
            // mwan3 installs a family-any rule only where its addresses fit.
            None => rule.family = if v4 { RuleFamily::Ipv4 } else { RuleFamily::Ipv6 },
            _ => {}
        }
    }
    for (addr, line) in src_ip.iter().chain(&dest_ip) {
        if let AddressMatch::Masked(m) = addr {
            c.report(Kind::NetmaskNotPrefix, *line, s, None, format!(
                "netmask {} is not a prefix: kept as a bit mask (matches when address & {} == {}), as iptables does",
                m.mask, m.mask, m.addr));
        }
    }
    (rule.src_ip, rule.src_ip_masked) = split_addresses(&src_ip);
    (rule.dest_ip, rule.dest_ip_masked) = split_addresses(&dest_ip);

    // Ports only mean something for tcp/udp; mwan3 drops them otherwise.
    let protos: Vec<Proto> = std::iter::once(rule.proto)
        .chain(rule.extra_protos.iter().copied())
        .collect();
    let port_capable = protos.iter().all(|p| matches!(p, Proto::Tcp | Proto::Udp));
    if (!src_port.is_empty() || !dest_port.is_empty()) && !port_capable {
        let option = if src_port.is_empty() {
            "dest_port"
        } else {
            "src_port"
        };
        let line = s.option(option).map_or(s.line, |o| o.line);
        c.report(Kind::NoEffect, line, s, Some(option), format!(
            "ports are ignored with proto '{}' (as mwan3 does): expected proto tcp, udp (or 'tcp udp') for a port match",
            protos.iter().map(|p| values::protocol_name(*p)).collect::<Vec<_>>().join(" ")));
    } else {
        rule.src_port = src_port;
        rule.dest_port = dest_port;
    }

    rule.src_iface = c.get_opt(s, "src_iface", |v| {
        if valid_name(v) {
            Ok(v.to_string())
        } else {
            Err(format!(
                "'{v}' is not an interface name: expected a netifd interface such as lan"
            ))
        }
    });
    rule.ipset = c.get_opt(s, "ipset", |v| {
        if !v.is_empty()
            && v.len() <= 31
            && v.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'))
        {
            Ok(v.to_string())
        } else {
            Err(format!(
                "'{v}' is not a set name: expected 1-31 letters, digits, '_', '-' or '.'"
            ))
        }
    });
    rule.sticky = c.boolean(s, "sticky", false);
    rule.timeout = c.integer(s, "timeout", 600, 1, 1_000_000);
    rule.logging = c.boolean(s, "logging", false);

    let Some((target, line)) = c.scalar(s, "use_policy") else {
        if s.option("use_policy").is_none() {
            c.error(
                s.line,
                s,
                Some("use_policy"),
                format!("missing: expected {}", policy_choices(config)),
            );
        }
        return None;
    };
    rule.use_policy = match target {
        "default" => PolicyTarget::Default,
        "unreachable" => PolicyTarget::Unreachable,
        "blackhole" => PolicyTarget::Blackhole,
        name => match config.policies.iter().find(|p| p.name == name) {
            Some(policy) => {
                check_policy_family(c, s, line, &rule, policy, config);
                PolicyTarget::Named(name.to_string())
            }
            None => {
                c.error(
                    line,
                    s,
                    Some("use_policy"),
                    format!(
                        "policy '{name}' is not defined: expected {}",
                        policy_choices(config)
                    ),
                );
                return None;
            }
        },
    };
    Some(rule)
}

/// mwan3 builds each policy once per family from the members whose
/// interface has that family; a rule of one family whose policy has members
/// only of the other gets the policy's last_resort for all its traffic.
fn check_policy_family(
    c: &mut Checker,
    s: &RawSection,
    line: usize,
    rule: &Rule,
    policy: &Policy,
    config: &Config,
) {
    let wanted = match rule.family {
        RuleFamily::Ipv4 => Family::Ipv4,
        RuleFamily::Ipv6 => Family::Ipv6,
        RuleFamily::Any => return,
    };
    let families: Vec<Family> = policy
        .use_member
        .iter()
        .filter_map(|m| config.members.iter().find(|x| &x.name == m))
        .filter_map(|m| config.interfaces.iter().find(|i| i.name == m.interface))
        .map(|i| i.family)
        .collect();
    if !families.is_empty() && !families.contains(&wanted) {
        c.report(Kind::FamilyMismatch, line, s, Some("use_policy"), format!(
            "policy '{}' has no {} member, so all {} traffic this rule matches gets its last_resort ({}), as in mwan3: expected a policy with {} members",
            policy.name, wanted.as_str(), wanted.as_str(), policy.last_resort.as_str(), wanted.as_str()));
    }
}

fn addresses(c: &mut Checker, s: &RawSection, name: &str) -> Vec<(AddressMatch, usize)> {
    let mut out = Vec::new();
    let Some(option) = s.option(name) else {
        return out;
    };
    for (value, line) in &option.values {
        for item in values::split_list(value) {
            match values::address_match(item) {
                Ok(a) => out.push((a, *line)),
                Err(message) => c.error(*line, s, Some(name), message),
            }
        }
    }
    out
}

/// Prefixes and bit-mask matches, apart.
fn split_addresses(items: &[(AddressMatch, usize)]) -> (Vec<IpNet>, Vec<MaskedIp>) {
    let mut nets = Vec::new();
    let mut masked = Vec::new();
    for (item, _) in items {
        match item {
            AddressMatch::Net(n) => nets.push(*n),
            AddressMatch::Masked(m) => masked.push(*m),
        }
    }
    (nets, masked)
}

fn port_list(c: &mut Checker, s: &RawSection, name: &str) -> Vec<PortRange> {
    let Some(option) = s.option(name) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (value, line) in &option.values {
        match values::ports(value) {
            Ok(ports) => out.extend(ports),
            Err(message) => c.error(*line, s, Some(name), message),
        }
    }
    out
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

fn names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let list: Vec<&str> = names.collect();
    if list.is_empty() {
        "(none defined)".into()
    } else {
        list.join(", ")
    }
}
