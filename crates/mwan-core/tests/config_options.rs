//! Every option: its default, a value it parses, and a value it rejects
//! (with the message saying what was expected). Tables, one row per case.

use mwan_core::config::*;

const WAN: &str = "config interface 'wan'\n\toption enabled '1'\n\tlist track_ip '192.0.2.1'\n\tlist track_ip '198.51.100.1'\n";

fn load_ok(text: &str) -> Loaded {
    parse("t.uci", text).unwrap_or_else(|r| panic!("rejected:\n{r}\n--- text:\n{text}"))
}

fn first_error(text: &str) -> Diagnostic {
    match parse("t.uci", text) {
        Ok(l) => panic!(
            "accepted, expected an error; warnings: {:?}\n--- text:\n{text}",
            l.warnings
        ),
        Err(r) => r.problems[0].clone(),
    }
}

/// Interface `wan` with extra lines.
fn iface(lines: &str) -> Interface {
    let text = format!("{WAN}{lines}\n");
    load_ok(&text).config.interfaces.remove(0)
}

#[test]
fn interface_options_parse_and_default() {
    type Get = fn(&Interface) -> String;
    let cases: &[(&str, Get, &str)] = &[
        // WAN sets enabled '1'; the default is tested below.
        ("", |i| i.enabled.to_string(), "true"),
        ("option enabled '0'", |i| i.enabled.to_string(), "false"),
        ("", |i| format!("{:?}", i.initial_state), "Online"),
        ("option initial_state 'offline'", |i| format!("{:?}", i.initial_state), "Offline"),
        ("", |i| format!("{:?}", i.family), "Ipv4"),
        ("", |i| format!("{:?}", i.track_method), "Ping"),
        ("option track_method 'nping-tcp'", |i| format!("{:?}", i.track_method), "NpingTcp"),
        ("option track_method 'nslookup'", |i| format!("{:?}", i.track_method), "Nslookup"),
        ("option track_method 'arping'", |i| format!("{:?}", i.track_method), "Arping"),
        ("", |i| i.track_ip.join(" "), "192.0.2.1 198.51.100.1"),
        ("list track_ip 'dns.example'", |i| i.track_ip.join(" "), "192.0.2.1 198.51.100.1 dns.example"),
        ("", |i| i.reliability.to_string(), "1"),
        ("option reliability '2'", |i| i.reliability.to_string(), "2"),
        ("", |i| i.count.to_string(), "1"),
        ("option count '3'", |i| i.count.to_string(), "3"),
        ("", |i| i.timeout.to_string(), "4000"),
        ("option timeout '0.2'", |i| i.timeout.to_string(), "200"),
        ("", |i| i.interval.to_string(), "10000"),
        ("option interval '0.25'", |i| i.interval.to_string(), "250"),
        // failure/recovery interval default to interval, whatever it is.
        ("", |i| format!("{} {}", i.failure_interval, i.recovery_interval), "10000 10000"),
        ("option interval '2'", |i| format!("{} {}", i.failure_interval, i.recovery_interval), "2000 2000"),
        ("option failure_interval '0.5'\noption recovery_interval '7'", |i| format!("{} {}", i.failure_interval, i.recovery_interval), "500 7000"),
        ("", |i| i.keep_failure_interval.to_string(), "false"),
        ("option keep_failure_interval 'yes'", |i| i.keep_failure_interval.to_string(), "true"),
        ("", |i| format!("{} {}", i.down, i.up), "5 5"),
        ("option down '3'\noption up '8'", |i| format!("{} {}", i.down, i.up), "3 8"),
        ("", |i| format!("{} {}", i.size, i.max_ttl), "56 60"),
        ("option size '8'\noption max_ttl '5'", |i| format!("{} {}", i.size, i.max_ttl), "8 5"),
        ("", |i| i.check_quality.to_string(), "false"),
        ("option check_quality 'on'", |i| i.check_quality.to_string(), "true"),
        ("", |i| format!("{} {} {} {}", i.failure_latency_ms, i.recovery_latency_ms, i.failure_loss_pct, i.recovery_loss_pct), "1000 500 40 10"),
        ("option failure_latency '800'\noption recovery_latency '300'\noption failure_loss '20'\noption recovery_loss '5'",
            |i| format!("{} {} {} {}", i.failure_latency_ms, i.recovery_latency_ms, i.failure_loss_pct, i.recovery_loss_pct), "800 300 20 5"),
        ("", |i| i.httping_ssl.to_string(), "false"),
        ("option track_method 'httping'\noption httping_ssl '1'", |i| i.httping_ssl.to_string(), "true"),
        ("", |i| format!("{:?}", i.flush_conntrack), "[]"),
        ("list flush_conntrack 'ifdown'\nlist flush_conntrack 'disconnected'", |i| format!("{:?}", i.flush_conntrack), "[Ifdown, Disconnected]"),
        // Old scalar style.
        ("option flush_conntrack 'never'", |i| format!("{:?}", i.flush_conntrack), "[]"),
        // Extensions.
        ("", |i| format!("{:?} {:?}", i.device, i.gateway), "None None"),
        ("option device 'eth1'\noption gateway '192.0.2.254'", |i| format!("{:?} {:?}", i.device, i.gateway), "Some(\"eth1\") Some(192.0.2.254)"),
        ("", |i| format!("{:?}", i.quality), "QualitySettings { bias_ms: 0.0, loss_divisor: 10.0, loss_limit_pct: 50.0, time_constant_ms: 50000 }"),
        ("option quality_bias '-15.5'\noption quality_loss_divisor '2.5'\noption quality_loss_limit '30'\noption quality_time_constant '0.5'",
            |i| format!("{:?}", i.quality), "QualitySettings { bias_ms: -15.5, loss_divisor: 2.5, loss_limit_pct: 30.0, time_constant_ms: 500 }"),
        ("", |i| format!("{:?}", i.probe_budget), "None"),
        ("option probe_budget_per_minute '6'", |i| format!("{:?}", i.probe_budget), "Some(ProbesPerMinute(6))"),
        ("option probe_budget_bytes_per_day '5M'", |i| format!("{:?}", i.probe_budget), "Some(BytesPerDay(5000000))"),
    ];
    for (lines, get, expected) in cases {
        let i = iface(lines);
        assert_eq!(get(&i), *expected, "with {lines:?}");
    }
}

#[test]
fn interface_is_disabled_unless_enabled() {
    // mwan3: `config_get_bool enabled $1 enabled 0`.
    let text = "config interface 'wan'\n\tlist track_ip '192.0.2.1'\n";
    let i = load_ok(text).config.interfaces.remove(0);
    assert!(!i.enabled, "an interface without 'enabled' must be off");
}

#[test]
fn ipv6_interface() {
    let text = "config interface 'wan6'\n\toption family 'ipv6'\n\tlist track_ip '2001:db8::1'\n\toption gateway 'fe80::1'\n";
    let i = load_ok(text).config.interfaces.remove(0);
    assert_eq!(i.family, Family::Ipv6);
    assert_eq!(i.gateway, Some("fe80::1".parse().unwrap()));
}

#[test]
fn interface_values_rejected_with_what_was_expected() {
    let cases: &[(&str, &str, &str)] = &[
        ("option enabled 'maybe'", "enabled", "expected 1/0"),
        (
            "option initial_state 'up'",
            "initial_state",
            "expected online, offline",
        ),
        ("option family 'ipx'", "family", "expected ipv4, ipv6"),
        (
            "option track_method 'smoke'",
            "track_method",
            "expected ping, arping, httping",
        ),
        (
            "list track_ip '2001:db8::1'",
            "track_ip",
            "expected an ipv4 target",
        ),
        (
            "list track_ip 'bad_host!'",
            "track_ip",
            "neither an IP address nor a host name",
        ),
        (
            "option reliability '0'",
            "reliability",
            "expected a whole number from 1",
        ),
        ("option count 'x'", "count", "not a whole number"),
        (
            "option timeout '0'",
            "timeout",
            "expected seconds from 0.001",
        ),
        ("option interval '1.0005'", "interval", "up to 3 decimals"),
        ("option interval '-1'", "interval", "not a duration"),
        (
            "option failure_interval 'soon'",
            "failure_interval",
            "not a duration",
        ),
        (
            "option recovery_interval '99999'",
            "recovery_interval",
            "out of range",
        ),
        ("option down '0'", "down", "from 1 to 1000"),
        ("option up '1001'", "up", "from 1 to 1000"),
        ("option size '70000'", "size", "from 0 to 65000"),
        ("option max_ttl '0'", "max_ttl", "from 1 to 255"),
        ("option failure_loss '101'", "failure_loss", "from 0 to 100"),
        ("option failure_latency '0'", "failure_latency", "from 1"),
        (
            "list flush_conntrack 'always'",
            "flush_conntrack",
            "expected ifup, ifdown, connected or disconnected",
        ),
        ("option device 'a/b'", "device", "not a kernel device name"),
        (
            "option device 'averyveryverylongname'",
            "device",
            "1-15 characters",
        ),
        (
            "option gateway '2001:db8::1'",
            "gateway",
            "expected an ipv4 gateway",
        ),
        ("option gateway 'router'", "gateway", "not an IP address"),
        (
            "option quality_loss_divisor '0'",
            "quality_loss_divisor",
            "above 0",
        ),
        (
            "option quality_smoothing '1.5'",
            "quality_smoothing",
            "up to 1",
        ),
        (
            "option quality_loss_limit 'lots'",
            "quality_loss_limit",
            "not a number",
        ),
        ("option quality_bias 'inf'", "quality_bias", "not a number"),
        (
            "option probe_budget_bytes_per_day '5X'",
            "probe_budget_bytes_per_day",
            "optionally with k, M or G",
        ),
        (
            "option probe_budget_per_minute '6'\noption probe_budget_bytes_per_day '1M'",
            "probe_budget_bytes_per_day",
            "expected one of them",
        ),
        (
            "list count '1'\nlist count '2'",
            "count",
            "expected a single value",
        ),
    ];
    for (lines, option, expected) in cases {
        let d = first_error(&format!("{WAN}{lines}\n"));
        assert_eq!(d.option.as_deref(), Some(*option), "{lines:?}: {d}");
        assert!(
            d.message.contains(expected),
            "{lines:?}: message {:?} lacks {expected:?}",
            d.message
        );
        assert_eq!(
            d.section,
            Some(("wan".to_string(), "interface".to_string())),
            "{d}"
        );
    }
}

#[test]
fn globals_options() {
    let g = load_ok("config globals 'globals'\n").config.globals;
    assert_eq!(g, Globals::default());
    assert_eq!(g.mmx_mask, 0x3F00);
    assert_eq!(g.loglevel, "notice");
    let g = load_ok(
        "config globals 'globals'\n\toption mmx_mask '0xFF00'\n\tlist rt_table_lookup '100'\n\tlist rt_table_lookup '200'\n\toption logging '1'\n\toption loglevel 'warn'\n\toption source_routing '1'\n",
    )
    .config
    .globals;
    assert_eq!(g.mmx_mask, 0xFF00);
    assert_eq!(g.rt_table_lookup, [100, 200]);
    assert!(g.logging && g.source_routing);
    assert_eq!(g.loglevel, "warning");
    // No globals section at all: the defaults.
    assert_eq!(load_ok(WAN).config.globals, Globals::default());
    for (line, expected) in [
        ("option mmx_mask 'lots'", "expected hexadecimal like 0x3F00"),
        ("option mmx_mask '0x100'", "expected at least 2 bits"),
        ("option loglevel 'loud'", "expected emerg, panic"),
        ("list rt_table_lookup 'main'", "not a whole number"),
    ] {
        let d = first_error(&format!("config globals 'globals'\n\t{line}\n"));
        assert!(d.message.contains(expected), "{line}: {d}");
        assert_eq!(d.line, 2);
    }
}

#[test]
fn mmx_mask_limits_the_number_of_interfaces() {
    // 2 bits: room for 0 interfaces (4 values, all reserved) -> error at the first.
    let text = format!("config globals 'globals'\n\toption mmx_mask '0x300'\n{WAN}");
    let d = first_error(&text);
    assert!(d.message.contains("too many interfaces"), "{d}");
    // 3 bits: 4 interfaces fit, the fifth does not.
    let mut text = String::from("config globals 'globals'\n\toption mmx_mask '0x700'\n");
    for n in 1..=5 {
        text += &format!("config interface 'wan{n}'\n");
    }
    let d = first_error(&text);
    assert_eq!(d.section.unwrap().0, "wan5");
}

#[test]
fn member_and_policy_options() {
    let base = format!("{WAN}config member 'm1'\n\toption interface 'wan'\n");
    let c = load_ok(&format!(
        "{base}config policy 'p'\n\tlist use_member 'm1'\n"
    ))
    .config;
    assert_eq!(c.members[0], Member::new("m1", "wan"));
    assert_eq!(c.policies[0].use_member, ["m1"]);
    assert_eq!(c.policies[0].last_resort, LastResort::Unreachable);
    assert_eq!(c.policies[0].mode, PolicyMode::Tiers);

    let c = load_ok(&format!(
        "{base}\toption metric '2'\n\toption weight '3'\nconfig policy 'p'\n\tlist use_member 'm1'\n\toption last_resort 'default'\n\toption mode 'score'\n"
    ))
    .config;
    assert_eq!((c.members[0].metric, c.members[0].weight), (2, 3));
    assert_eq!(c.policies[0].last_resort, LastResort::Default);
    assert_eq!(
        c.policies[0].mode,
        PolicyMode::Score {
            hysteresis: DEFAULT_SCORE_HYSTERESIS,
            min_stable_ms: DEFAULT_SCORE_MIN_STABLE_MS
        }
    );
    let c = load_ok(&format!(
        "{base}config policy 'p'\n\toption last_resort 'blackhole'\n\toption mode 'score'\n\toption score_hysteresis '7.5'\n\toption score_min_stable '0.5'\n"
    ))
    .config;
    assert_eq!(c.policies[0].last_resort, LastResort::Blackhole);
    assert_eq!(
        c.policies[0].mode,
        PolicyMode::Score {
            hysteresis: 7.5,
            min_stable_ms: 500
        }
    );

    for (lines, option, expected) in [
        (
            "config member 'm2'\n\toption interface 'wan'\n\toption metric '0'\n",
            "metric",
            "from 1 to 256",
        ),
        (
            "config member 'm2'\n\toption interface 'wan'\n\toption weight '1001'\n",
            "weight",
            "from 1 to 1000",
        ),
        (
            "config member 'm2'\n\toption metric '1'\n",
            "interface",
            "missing",
        ),
        (
            "config policy 'p'\n\toption last_resort 'drop'\n",
            "last_resort",
            "expected unreachable, blackhole, default",
        ),
        (
            "config policy 'p'\n\toption mode 'fastest'\n",
            "mode",
            "expected tiers, score",
        ),
        (
            "config policy 'p'\n\toption mode 'score'\n\toption score_min_stable 'long'\n",
            "score_min_stable",
            "not a duration",
        ),
    ] {
        let d = first_error(&format!("{base}{lines}"));
        assert_eq!(d.option.as_deref(), Some(option), "{d}");
        assert!(d.message.contains(expected), "{d}");
    }
}

/// A rule `r` (family, addresses, ports...) using policy `p` over wan.
fn rule(lines: &str) -> Result<Rule, Box<Diagnostic>> {
    let text = format!(
        "{WAN}config member 'm'\n\toption interface 'wan'\nconfig policy 'p'\n\tlist use_member 'm'\nconfig rule 'r'\n\toption use_policy 'p'\n{lines}\n"
    );
    match parse("t.uci", &text) {
        Ok(mut l) => Ok(l.config.rules.remove(0)),
        Err(r) => Err(Box::new(r.problems[0].clone())),
    }
}

#[test]
fn rule_options_parse_and_default() {
    let r = rule("").unwrap();
    assert_eq!(r, Rule::new("r", PolicyTarget::Named("p".into())));
    let port = |a, b| PortRange { first: a, last: b };
    let net = |s: &str, p| IpNet {
        addr: s.parse().unwrap(),
        prefix_len: p,
    };

    let r = rule("option proto 'tcp'\noption dest_port '80,443'\noption src_port '1024:65535'")
        .unwrap();
    assert_eq!(r.proto, Proto::Tcp);
    assert_eq!(r.dest_port, [port(80, 80), port(443, 443)]);
    assert_eq!(r.src_port, [port(1024, 65535)]);

    let r = rule("option proto 'tcp udp'\noption dest_port '27000:28999 3478'").unwrap();
    assert_eq!(
        (r.proto, r.extra_protos.clone()),
        (Proto::Tcp, vec![Proto::Udp])
    );
    assert_eq!(r.dest_port, [port(27000, 28999), port(3478, 3478)]);

    let r = rule("option proto 'gre'").unwrap();
    assert_eq!(r.proto, Proto::Number(47));

    let r = rule(
        "option src_ip '192.0.2.0/24,198.51.100.7'\noption dest_ip '203.0.113.0/255.255.255.0'",
    )
    .unwrap();
    assert_eq!(r.src_ip, [net("192.0.2.0", 24), net("198.51.100.7", 32)]);
    assert_eq!(r.dest_ip, [net("203.0.113.0", 24)]);
    // A family-any rule with IPv4 addresses only applies to IPv4 (as mwan3 installs it).
    assert_eq!(r.family, RuleFamily::Ipv4);

    let r =
        rule("list dest_ip '2001:db8::/32'\nlist dest_ip '2001:db8:1::1'\noption family 'ipv6'")
            .unwrap();
    assert_eq!(
        r.dest_ip,
        [net("2001:db8::", 32), net("2001:db8:1::1", 128)]
    );

    // The parity trick: a non-contiguous mask, kept as a bit mask.
    let r = rule("option src_ip '0.0.0.1/0.0.0.1'").unwrap();
    assert!(r.src_ip.is_empty());
    assert_eq!(
        r.src_ip_masked,
        [MaskedIp {
            addr: "0.0.0.1".parse().unwrap(),
            mask: "0.0.0.1".parse().unwrap()
        }]
    );

    let r = rule("option src_iface 'lan'\noption ipset 'cdn_v4'\noption sticky '1'\noption timeout '60'\noption logging '1'").unwrap();
    assert_eq!(r.src_iface.as_deref(), Some("lan"));
    assert_eq!(r.ipset.as_deref(), Some("cdn_v4"));
    assert!(r.sticky && r.logging);
    assert_eq!(r.timeout, 60);

    for (target, expected) in [
        ("default", PolicyTarget::Default),
        ("unreachable", PolicyTarget::Unreachable),
        ("blackhole", PolicyTarget::Blackhole),
    ] {
        let text = format!("config rule 'r'\n\toption use_policy '{target}'\n");
        assert_eq!(load_ok(&text).config.rules[0].use_policy, expected);
    }
}

#[test]
fn rule_ports_without_tcp_or_udp_are_dropped_with_a_warning() {
    let text =
        format!("{WAN}config rule 'r'\n\toption dest_port '443'\n\toption use_policy 'default'\n");
    let loaded = load_ok(&text);
    assert!(loaded.config.rules[0].dest_port.is_empty());
    let w = &loaded.warnings[0];
    assert_eq!((w.line, w.option.as_deref()), (6, Some("dest_port")));
    assert!(w.message.contains("ignored with proto 'all'"), "{w}");
}

#[test]
fn rule_values_rejected_with_what_was_expected() {
    for (lines, option, expected) in [
        ("option proto 'tcpp'", "proto", "unknown protocol"),
        ("option proto 'all tcp'", "proto", "either 'all' or a list"),
        (
            "option proto 'tcp'\noption dest_port '0'",
            "dest_port",
            "not a port (1-65535)",
        ),
        (
            "option proto 'tcp'\noption dest_port '90:80'",
            "dest_port",
            "runs backwards",
        ),
        ("option src_ip '192.0.2.0/33'", "src_ip", "expected 0 to 32"),
        (
            "option dest_ip 'example.com'",
            "dest_ip",
            "not an IP address or prefix",
        ),
        (
            "option dest_ip '192.0.2.1,2001:db8::1'",
            "dest_ip",
            "mixes IPv4 and IPv6",
        ),
        (
            "option family 'ipv6'\noption dest_ip '192.0.2.0/24'",
            "dest_ip",
            "could never match",
        ),
        ("option family 'ipx'", "family", "expected any, ipv4, ipv6"),
        ("option sticky '2'", "sticky", "expected 1/0"),
        ("option timeout '0'", "timeout", "from 1 to"),
        ("option ipset 'a b'", "ipset", "not a set name"),
        (
            "option src_iface 'lan-1'",
            "src_iface",
            "not an interface name",
        ),
    ] {
        let d = rule(lines).expect_err(lines);
        assert_eq!(d.option.as_deref(), Some(option), "{lines}: {d}");
        assert!(d.message.contains(expected), "{lines}: {d}");
    }
}

#[test]
fn the_globals_section_named_globals_wins() {
    // An interface, so that the only warnings are about globals.
    let text = "config globals\n\toption mmx_mask '0xF0'\nconfig globals 'globals'\n\toption mmx_mask '0xFF00'\nconfig interface 'wan'\n";
    let l = parse("t", text).unwrap();
    assert_eq!(l.config.globals.mmx_mask, 0xFF00);
    assert_eq!(l.warnings.len(), 1);
    assert_eq!(l.warnings[0].line, 1);
    // Only an anonymous one: used, with a warning.
    let l = parse(
        "t",
        "config globals\n\toption mmx_mask '0xF0'\nconfig interface 'wan'\n",
    )
    .unwrap();
    assert_eq!(l.config.globals.mmx_mask, 0xF0);
    assert!(
        l.warnings[0].message.contains("named 'globals'"),
        "{}",
        l.warnings[0]
    );
}
