//! Property tests: the parser never panics; render then parse is the
//! identity on valid configs; line numbers follow the text.

use mwan_core::config::*;
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Text made of UCI's own pieces, so that the generator reaches deep into
/// the lexer and the schema rather than failing on the first byte.
fn uci_like_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("config ".to_string()),
        Just("option ".to_string()),
        Just("list ".to_string()),
        Just("package ".to_string()),
        Just("interface ".to_string()),
        Just("rule ".to_string()),
        Just("member ".to_string()),
        Just("policy ".to_string()),
        Just("globals ".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just("#".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("\t".to_string()),
        Just(" ".to_string()),
        Just("use_member ".to_string()),
        Just("use_policy ".to_string()),
        Just("interval '0.2'".to_string()),
        Just("dest_ip '0.0.0.0/0.0.0.1'".to_string()),
        Just("dest_port '1:2 3'".to_string()),
        Just("track_ip ".to_string()),
        "[a-z0-9_.:/,-]{0,8}",
        "\\PC{0,4}",
    ];
    prop::collection::vec(piece, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_arbitrary_text(text in "\\PC*") {
        let _outcome = parse("p", &text);
    }

    #[test]
    fn parser_never_panics_on_uci_like_text(text in uci_like_text()) {
        match parse("p", &text) {
            Ok(l) => {
                prop_assert!(l.warnings.iter().all(|w| w.severity == Severity::Warning));
                // Whatever was accepted renders to text that reads back the same.
                let again = parse("p", &render(&l.config));
                prop_assert_eq!(again.map(|a| a.config).ok(), Some(l.config.clone()));
                prop_assert!(summary(&l.config).starts_with("p: "));
            }
            Err(r) => {
                prop_assert!(!r.problems.is_empty());
                // Every problem points into the text.
                let lines = text.split('\n').count();
                for p in &r.problems {
                    prop_assert!(p.line >= 1 && p.line <= lines, "{} outside 1..={}", p, lines);
                }
            }
        }
    }
}

const BROKEN: &str =
    "config interface 'wan'\n\toption interval 'x'\nconfig rule 'r'\n\toption use_policy 'nope'\n";

proptest! {
    #[test]
    fn problem_lines_shift_with_lines_added_above(
        filler in prop::collection::vec(prop_oneof![Just("\n"), Just("# note\n"), Just("   \n"), Just("\r\n"), Just("config x\n")], 0..20)
    ) {
        let base = parse("p", BROKEN).unwrap_err();
        let shifted = parse("p", &format!("{}{BROKEN}", filler.concat())).unwrap_err();
        let base_lines: Vec<usize> = base.problems.iter().map(|d| d.line + filler.len()).collect();
        let lines: Vec<usize> = shifted.problems.iter().map(|d| d.line).collect();
        prop_assert_eq!(lines, base_lines);
    }
}

// ---- Round trip: a generated valid Config, rendered and parsed back. ----

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,10}"
}

fn seconds_ms() -> impl Strategy<Value = u64> {
    prop_oneof![1u64..=3_600_000, (1u64..=3600).prop_map(|s| s * 1000)]
}

fn decimal(min: f64, max: f64) -> impl Strategy<Value = f64> {
    prop_oneof![
        min..=max,
        (0i32..100).prop_map(move |n| (f64::from(n) / 4.0).clamp(min, max))
    ]
}

fn v4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

fn v6() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(Ipv6Addr::from)
}

fn interface(name: String) -> impl Strategy<Value = Interface> {
    let family = prop_oneof![Just(Family::Ipv4), Just(Family::Ipv6)];
    (
        family,
        any::<[bool; 5]>(),
        prop::collection::vec(any::<u32>(), 0..4),
    )
        .prop_flat_map(move |(family, flags, _)| {
            let target = match family {
                Family::Ipv4 => v4()
                    .prop_filter("not 0.0.0.0", |a| !a.is_unspecified())
                    .prop_map(|a| a.to_string())
                    .boxed(),
                Family::Ipv6 => v6()
                    .prop_filter("not ::", |a| !a.is_unspecified())
                    .prop_map(|a| a.to_string())
                    .boxed(),
            };
            let targets =
                prop::collection::vec(prop_oneof![target, Just("dns.example".to_string())], 0..4);
            let gateway = match family {
                Family::Ipv4 => prop::option::of(v4().prop_map(IpAddr::V4)).boxed(),
                Family::Ipv6 => prop::option::of(v6().prop_map(IpAddr::V6)).boxed(),
            };
            let methods = prop::sample::select(vec![
                TrackMethod::Ping,
                TrackMethod::Arping,
                TrackMethod::Httping,
                TrackMethod::NpingTcp,
                TrackMethod::NpingUdp,
                TrackMethod::NpingIcmp,
                TrackMethod::NpingArp,
                TrackMethod::Nslookup,
            ]);
            let flush = prop::sample::subsequence(
                vec![
                    FlushEvent::Ifup,
                    FlushEvent::Ifdown,
                    FlushEvent::Connected,
                    FlushEvent::Disconnected,
                ],
                0..=4,
            );
            let budget = prop_oneof![
                Just(None),
                (1u32..=60_000).prop_map(|n| Some(ProbeBudget::ProbesPerMinute(n))),
                (1000u64..=u64::MAX / 2).prop_map(|n| Some(ProbeBudget::BytesPerDay(n))),
            ];
            let quality = (
                decimal(-100_000.0, 100_000.0),
                decimal(0.001, 1_000_000.0),
                decimal(0.001, 100.0),
                0u64..=86_400_000,
            )
                .prop_map(
                    |(bias_ms, loss_divisor, loss_limit_pct, time_constant_ms)| QualitySettings {
                        bias_ms,
                        loss_divisor,
                        loss_limit_pct,
                        time_constant_ms,
                    },
                );
            let timing = (
                seconds_ms(),
                seconds_ms(),
                seconds_ms(),
                seconds_ms(),
                1u32..=1000,
                1u32..=1000,
                1u32..=100,
            );
            let probe = (
                0u32..=65000,
                1u32..=255,
                1u32..=3_600_000,
                1u32..=3_600_000,
                0u32..=100,
                0u32..=100,
            );
            let name = name.clone();
            (
                targets,
                gateway,
                methods,
                flush,
                budget,
                quality,
                timing,
                probe,
                prop::option::of("[a-z][a-z0-9]{0,14}"),
            )
                .prop_map(
                    move |(
                        track_ip,
                        gateway,
                        track_method,
                        flush_conntrack,
                        probe_budget,
                        quality,
                        timing,
                        probe,
                        device,
                    )| {
                        let (
                            timeout,
                            interval,
                            failure_interval,
                            recovery_interval,
                            down,
                            up,
                            count,
                        ) = timing;
                        let (
                            size,
                            max_ttl,
                            failure_latency_ms,
                            recovery_latency_ms,
                            failure_loss_pct,
                            recovery_loss_pct,
                        ) = probe;
                        let reliability = track_ip.len().max(1) as u32;
                        Interface {
                            name: name.clone(),
                            enabled: flags[0],
                            initial_state: if flags[1] {
                                InitialState::Online
                            } else {
                                InitialState::Offline
                            },
                            family,
                            track_method,
                            track_ip,
                            reliability,
                            count,
                            timeout,
                            interval,
                            failure_interval,
                            recovery_interval,
                            keep_failure_interval: flags[2],
                            down,
                            up,
                            size,
                            max_ttl,
                            // Keep quality settings that warn (recovery above failure) out
                            // of the way: warnings are fine but noise here.
                            check_quality: flags[3],
                            failure_latency_ms: failure_latency_ms.max(recovery_latency_ms),
                            recovery_latency_ms: failure_latency_ms.min(recovery_latency_ms),
                            failure_loss_pct: failure_loss_pct.max(recovery_loss_pct),
                            recovery_loss_pct: failure_loss_pct.min(recovery_loss_pct),
                            httping_ssl: flags[4],
                            flush_conntrack,
                            device,
                            gateway,
                            quality,
                            probe_budget,
                        }
                    },
                )
        })
}

fn port_ranges() -> impl Strategy<Value = Vec<PortRange>> {
    prop::collection::vec(
        (1u16..=65535, 1u16..=65535).prop_map(|(a, b)| PortRange {
            first: a.min(b),
            last: a.max(b),
        }),
        0..4,
    )
}

fn addresses(v4_family: bool) -> impl Strategy<Value = (Vec<IpNet>, Vec<MaskedIp>)> {
    let net = if v4_family {
        (v4(), 0u8..=32)
            .prop_map(|(a, p)| {
                let bits = if p == 0 {
                    0
                } else {
                    u32::from(a) & (u32::MAX << (32 - u32::from(p)))
                };
                IpNet {
                    addr: IpAddr::V4(Ipv4Addr::from(bits)),
                    prefix_len: p,
                }
            })
            .boxed()
    } else {
        (v6(), 0u8..=128)
            .prop_map(|(a, p)| {
                let bits = if p == 0 {
                    0
                } else {
                    u128::from(a) & (u128::MAX << (128 - u32::from(p)))
                };
                IpNet {
                    addr: IpAddr::V6(Ipv6Addr::from(bits)),
                    prefix_len: p,
                }
            })
            .boxed()
    };
    let masked = if v4_family {
        (any::<u32>(), any::<u32>())
            // A mask that is not a prefix.
            .prop_filter("non-contiguous", |(_, m)| {
                m.leading_ones() + m.trailing_zeros() < 32
            })
            .prop_map(|(a, m)| MaskedIp {
                addr: IpAddr::V4(Ipv4Addr::from(a & m)),
                mask: IpAddr::V4(Ipv4Addr::from(m)),
            })
            .boxed()
    } else {
        (any::<u128>(), any::<u128>())
            .prop_filter("non-contiguous", |(_, m)| {
                m.leading_ones() + m.trailing_zeros() < 128
            })
            .prop_map(|(a, m)| MaskedIp {
                addr: IpAddr::V6(Ipv6Addr::from(a & m)),
                mask: IpAddr::V6(Ipv6Addr::from(m)),
            })
            .boxed()
    };
    (
        prop::collection::vec(net, 0..3),
        prop::collection::vec(masked, 0..2),
    )
}

fn config() -> impl Strategy<Value = Config> {
    let names =
        prop::collection::hash_set(name(), 1..12).prop_map(|s| s.into_iter().collect::<Vec<_>>());
    names
        .prop_flat_map(|names| {
            // Section names are unique across types: split one pool.
            let n = names.len();
            let interfaces: Vec<_> = names
                .iter()
                .take(n.div_ceil(3))
                .cloned()
                .map(interface)
                .collect();
            let rest: Vec<String> = names[n.div_ceil(3)..].to_vec();
            let globals = (
                1u32..=u32::MAX,
                prop::collection::vec(1u32..=u32::MAX, 0..3),
                any::<bool>(),
                any::<bool>(),
                prop::sample::select(vec![
                    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
                ]),
            )
                .prop_filter("mask wide enough", |(m, ..)| m.count_ones() >= 4)
                .prop_map(
                    |(mmx_mask, rt_table_lookup, logging, source_routing, level)| Globals {
                        mmx_mask,
                        rt_table_lookup,
                        logging,
                        loglevel: level.to_string(),
                        source_routing,
                        override_: None,
                        automatic: false,
                    },
                );
            (globals, interfaces, Just(rest), any::<u64>())
        })
        .prop_flat_map(|(globals, interfaces, rest, seed)| {
            let half = rest.len() / 2;
            let member_names = rest[..half].to_vec();
            let policy_names = rest[half..].to_vec();
            let iface_names: Vec<String> = interfaces.iter().map(|i| i.name.clone()).collect();
            let members = member_names
                .into_iter()
                .map(|m| {
                    (
                        prop::sample::select(iface_names.clone()),
                        1u32..=256,
                        1u32..=1000,
                    )
                        .prop_map(move |(interface, metric, weight)| Member {
                            name: m.clone(),
                            interface,
                            metric,
                            weight,
                        })
                })
                .collect::<Vec<_>>();
            (
                Just(globals),
                Just(interfaces),
                members,
                Just(policy_names),
                Just(seed),
            )
        })
        .prop_flat_map(|(globals, interfaces, members, policy_names, _)| {
            let member_names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
            let policies = policy_names
                .into_iter()
                .map(|p| {
                    let mode = prop_oneof![
                        Just(PolicyMode::Tiers),
                        (decimal(0.0, 100_000.0), 0u64..=86_400_000).prop_map(
                            |(hysteresis, min_stable_ms)| PolicyMode::Score {
                                hysteresis,
                                min_stable_ms
                            }
                        ),
                    ];
                    let last = prop::sample::select(vec![
                        LastResort::Unreachable,
                        LastResort::Blackhole,
                        LastResort::Default,
                    ]);
                    (
                        prop::sample::subsequence(member_names.clone(), 0..=member_names.len()),
                        last,
                        mode,
                    )
                        .prop_map(move |(use_member, last_resort, mode)| {
                            Policy {
                                name: p.clone(),
                                use_member,
                                last_resort,
                                mode,
                                ceilings: Default::default(),
                            }
                        })
                })
                .collect::<Vec<_>>();
            (Just(globals), Just(interfaces), Just(members), policies)
        })
        .prop_flat_map(|(globals, interfaces, members, policies)| {
            let mut targets = vec![
                PolicyTarget::Default,
                PolicyTarget::Unreachable,
                PolicyTarget::Blackhole,
            ];
            targets.extend(policies.iter().map(|p| PolicyTarget::Named(p.name.clone())));
            let rule = (
                prop::sample::select(targets),
                prop_oneof![
                    Just(RuleFamily::Any),
                    Just(RuleFamily::Ipv4),
                    Just(RuleFamily::Ipv6)
                ],
                any::<bool>(),
                prop::sample::select(vec![
                    vec![Proto::All],
                    vec![Proto::Tcp],
                    vec![Proto::Udp],
                    vec![Proto::Tcp, Proto::Udp],
                    vec![Proto::Icmp],
                    vec![Proto::Number(47)],
                ]),
                (port_ranges(), port_ranges()),
                (
                    prop::option::of("[a-z_]{1,10}"),
                    prop::option::of("[a-z][a-z0-9_.-]{0,20}"),
                ),
                (any::<bool>(), 1u32..=1_000_000, any::<bool>()),
            )
                .prop_flat_map(
                    |(use_policy, family, with_addresses, protos, ports, names, flags)| {
                        let v4_family = family != RuleFamily::Ipv6;
                        let addrs = if with_addresses {
                            (addresses(v4_family), addresses(v4_family)).boxed()
                        } else {
                            Just(((vec![], vec![]), (vec![], vec![]))).boxed()
                        };
                        (
                            Just((use_policy, family, protos, ports, names, flags)),
                            addrs,
                        )
                    },
                )
                .prop_map(
                    |(
                        (
                            use_policy,
                            family,
                            protos,
                            (src_port, dest_port),
                            (src_iface, ipset),
                            (sticky, timeout, logging),
                        ),
                        ((src_ip, src_ip_masked), (dest_ip, dest_ip_masked)),
                    )| {
                        let any_address = !(src_ip.is_empty()
                            && src_ip_masked.is_empty()
                            && dest_ip.is_empty()
                            && dest_ip_masked.is_empty());
                        // The effective family of a family-any rule with addresses is theirs.
                        let family = if family == RuleFamily::Any && any_address {
                            RuleFamily::Ipv4
                        } else {
                            family
                        };
                        let ports_apply =
                            protos.iter().all(|p| matches!(p, Proto::Tcp | Proto::Udp));
                        Rule {
                            name: String::new(),
                            proto: protos[0],
                            extra_protos: protos[1..].to_vec(),
                            src_ip,
                            src_iface,
                            src_port: if ports_apply { src_port } else { vec![] },
                            dest_ip,
                            dest_port: if ports_apply { dest_port } else { vec![] },
                            src_ip_masked,
                            dest_ip_masked,
                            ipset,
                            sticky,
                            timeout,
                            family,
                            logging,
                            use_policy,
                        }
                    },
                );
            (
                Just(globals),
                Just(interfaces),
                Just(members),
                Just(policies),
                prop::collection::vec(rule, 0..5),
            )
        })
        .prop_map(|(globals, interfaces, members, policies, mut rules)| {
            for (n, r) in rules.iter_mut().enumerate() {
                r.name = format!("@rule[{n}]");
            }
            Config {
                source: "gen".into(),
                globals,
                interfaces,
                members,
                policies,
                rules,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn render_then_parse_is_identity(config in config()) {
        let text = render(&config);
        let summary_text = summary(&config);
        for i in &config.interfaces {
            let line = format!("interface {}:", i.name);
            prop_assert!(summary_text.contains(&line));
        }
        match parse("gen", &text) {
            Ok(loaded) => prop_assert_eq!(loaded.config, config, "text:\n{}", text),
            Err(r) => prop_assert!(false, "rendered config rejected:\n{}\n--- text:\n{}", r, text),
        }
    }
}

/// Found by `parser_never_panics_on_uci_like_text`: a section of another
/// type named `globals` must not clash with the rendered globals section.
#[test]
fn a_section_named_globals_still_round_trips() {
    let loaded = parse("p", "config interface globals\n").unwrap();
    let again = parse("p", &render(&loaded.config)).unwrap();
    assert_eq!(again.config, loaded.config);
}
