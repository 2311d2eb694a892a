//! One test per step of [`rule`]; whole sections are tested in
//! tests/config_*.rs.

use super::*;
use crate::config::schema::checker::run_step;

fn r(options: &str) -> String {
    format!("config rule 'r'\n{options}")
}

#[test]
fn protocols_are_listed_once_and_all_stands_alone() {
    let (p, problems) = run_step(&r("\toption proto 'tcp udp,tcp'\n"), protocols);
    assert_eq!((p, problems.len()), (vec![Proto::Tcp, Proto::Udp], 0));
    let (p, problems) = run_step(&r("\toption proto 'all tcp'\n"), protocols);
    assert_eq!(p, [Proto::Tcp]);
    assert!(problems[0].starts_with("invalid: 'all' mixed"));
    let (p, _) = run_step(&r(""), protocols);
    assert!(p.is_empty());
}

#[test]
fn address_family_follows_the_addresses_or_refuses_a_mix() {
    let text = r("\toption src_ip '2001:db8::/32'\n\toption dest_ip '10.0.0.0/8'\n");
    let ((fam, src, dst), problems) = run_step(&text, |c, s| {
        let (src, dst) = (addresses(c, s, "src_ip"), addresses(c, s, "dest_ip"));
        (address_family(c, s, RuleFamily::Any, &src, &dst), src, dst)
    });
    assert_eq!((fam, src.len(), dst.len()), (RuleFamily::Any, 1, 1));
    assert!(problems[0].starts_with("invalid: mixes IPv4 and IPv6"));
    let ((fam, _), problems) = run_step(&r("\toption dest_ip '10.0.0.0/8'\n"), |c, s| {
        let dst = addresses(c, s, "dest_ip");
        (address_family(c, s, RuleFamily::Any, &[], &dst), dst)
    });
    assert_eq!((fam, problems.len()), (RuleFamily::Ipv4, 0));
}

#[test]
fn masked_addresses_warn_and_split_apart() {
    let ((nets, masked), problems) = run_step(
        &r("\tlist src_ip '10.0.0.0/8'\n\tlist src_ip '0.0.0.1/0.0.0.1'\n"),
        |c, s| {
            let src = addresses(c, s, "src_ip");
            warn_masked(c, s, &src, &[]);
            split_addresses(&src)
        },
    );
    assert_eq!((nets.len(), masked.len()), (1, 1));
    assert_eq!(problems.len(), 1);
    assert!(problems[0].starts_with("netmask-not-prefix: netmask 0.0.0.1 is not a prefix"));
}

#[test]
fn ports_without_tcp_or_udp_are_dropped_with_a_warning() {
    let port = vec![PortRange {
        first: 80,
        last: 80,
    }];
    let mut rule = Rule::new("r", PolicyTarget::Default);
    let ((src, dst), problems) = run_step(&r("\toption dest_port '80'\n"), |c, s| {
        ports_for_protocols(c, s, &rule, Vec::new(), port.clone())
    });
    assert!(src.is_empty() && dst.is_empty());
    assert!(problems[0].starts_with("no-effect: ports are ignored with proto 'all'"));
    rule.proto = Proto::Udp;
    let ((_, dst), problems) = run_step(&r(""), |c, s| {
        ports_for_protocols(c, s, &rule, Vec::new(), port.clone())
    });
    assert_eq!((dst, problems.len()), (port, 0));
}

#[test]
fn src_iface_and_ipset_names_are_checked() {
    let (i, problems) = run_step(
        &r("\toption src_iface 'lan'\n\toption ipset 'a.b-c'\n"),
        |c, s| (src_iface(c, s), ipset(c, s)),
    );
    assert_eq!(i, (Some("lan".into()), Some("a.b-c".into())));
    assert!(problems.is_empty());
    let (i, problems) = run_step(
        &r("\toption src_iface 'br-lan'\n\toption ipset 'a b'\n"),
        |c, s| (src_iface(c, s), ipset(c, s)),
    );
    assert_eq!(i, (None, None));
    assert_eq!(problems.len(), 2);
}

#[test]
fn use_policy_names_a_builtin_or_a_defined_policy() {
    let config = crate::config::parse(
        "c",
        "config interface 'wan'\nconfig member 'm'\n\toption interface 'wan'\nconfig policy 'p'\n\tlist use_member 'm'\n",
    )
    .unwrap()
    .config;
    let rule = Rule::new("r", PolicyTarget::Default);
    let (t, problems) = run_step(&r("\toption use_policy 'p'\n"), |c, s| {
        use_policy(c, s, &config, &rule)
    });
    assert_eq!(
        (t, problems.len()),
        (Some(PolicyTarget::Named("p".into())), 0)
    );
    let (t, _) = run_step(&r("\toption use_policy 'blackhole'\n"), |c, s| {
        use_policy(c, s, &config, &rule)
    });
    assert_eq!(t, Some(PolicyTarget::Blackhole));
    let (t, problems) = run_step(&r("\toption use_policy 'q'\n"), |c, s| {
        use_policy(c, s, &config, &rule)
    });
    assert_eq!(t, None);
    assert!(problems[0].starts_with("invalid: policy 'q' is not defined: expected one of: p"));
    let (t, problems) = run_step(&r(""), |c, s| use_policy(c, s, &config, &rule));
    assert_eq!(t, None);
    assert!(problems[0].starts_with("invalid: missing"));
}
