//! `config rule` sections: matches, stickiness and the policy, as a list of
//! named steps.

use super::{long_name, policy_choices, values, Checker, Kind, RULE_OPTIONS};
use crate::config::model::*;
use crate::config::uci::{valid_name, RawSection};
use crate::config::values::AddressMatch;

/// One rule section: its matches, then its options, then its policy (a
/// rule without a valid policy is left out).
pub(super) fn rule(c: &mut Checker, s: &RawSection, config: &Config) -> Option<Rule> {
    c.unknown_options(s, RULE_OPTIONS);
    long_name(c, s);
    let mut rule = Rule::new(&s.label, PolicyTarget::Unreachable);
    if let Some((first, rest)) = protocols(c, s).split_first() {
        rule.proto = *first;
        rule.extra_protos = rest.to_vec();
    }
    rule.family = c.choice(s, "family", RuleFamily::Any, RuleFamily::WORDS);
    let src_ip = addresses(c, s, "src_ip");
    let dest_ip = addresses(c, s, "dest_ip");
    let src_port = port_list(c, s, "src_port");
    let dest_port = port_list(c, s, "dest_port");
    rule.family = address_family(c, s, rule.family, &src_ip, &dest_ip);
    warn_masked(c, s, &src_ip, &dest_ip);
    (rule.src_ip, rule.src_ip_masked) = split_addresses(&src_ip);
    (rule.dest_ip, rule.dest_ip_masked) = split_addresses(&dest_ip);
    (rule.src_port, rule.dest_port) = ports_for_protocols(c, s, &rule, src_port, dest_port);
    rule.src_iface = src_iface(c, s);
    rule.ipset = ipset(c, s);
    rule.sticky = c.boolean(s, "sticky", false);
    rule.timeout = c.integer(s, "timeout", 600, 1, 1_000_000);
    rule.logging = c.boolean(s, "logging", false);
    rule.use_policy = use_policy(c, s, config, &rule)?;
    Some(rule)
}

/// `proto`: one or several (blank/comma list), each once; `all` alone.
pub(super) fn protocols(c: &mut Checker, s: &RawSection) -> Vec<Proto> {
    let mut protos = Vec::new();
    let Some(option) = s.option("proto") else {
        return protos;
    };
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
            "'all' mixed with other protocols: expected either 'all' or a list of protocols".into(),
        );
        protos.retain(|p| *p != Proto::All);
    }
    protos
}

/// Address families must agree with each other and with `family`; a
/// family-any rule with addresses gets their family (mwan3 installs it only
/// where its addresses fit).
pub(super) fn address_family(
    c: &mut Checker,
    s: &RawSection,
    family: RuleFamily,
    src_ip: &[(AddressMatch, usize)],
    dest_ip: &[(AddressMatch, usize)],
) -> RuleFamily {
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
        let wanted = match family {
            RuleFamily::Ipv4 => Some(true),
            RuleFamily::Ipv6 => Some(false),
            RuleFamily::Any => None,
        };
        match wanted {
            Some(w) if w != v4 => c.error(line, s, Some(option), format!(
                "{} addresses in a rule with family {}: the rule could never match; expected {} addresses or family {}",
                if v4 { "IPv4" } else { "IPv6" }, if w { "ipv4" } else { "ipv6" }, if w { "IPv4" } else { "IPv6" }, if v4 { "ipv4" } else { "ipv6" })),
            None => return if v4 { RuleFamily::Ipv4 } else { RuleFamily::Ipv6 },
            _ => {}
        }
    }
    family
}

/// A netmask that is not a prefix is kept as a bit mask, with a warning.
pub(super) fn warn_masked(
    c: &mut Checker,
    s: &RawSection,
    src_ip: &[(AddressMatch, usize)],
    dest_ip: &[(AddressMatch, usize)],
) {
    for (addr, line) in src_ip.iter().chain(dest_ip) {
        if let AddressMatch::Masked(m) = addr {
            c.report(Kind::NetmaskNotPrefix, *line, s, None, format!(
                "netmask {} is not a prefix: kept as a bit mask (matches when address & {} == {}), as iptables does",
                m.mask, m.mask, m.addr));
        }
    }
}

/// Ports only mean something for tcp/udp; mwan3 drops them otherwise (with
/// a warning here). Returns (src_port, dest_port) as kept.
pub(super) fn ports_for_protocols(
    c: &mut Checker,
    s: &RawSection,
    rule: &Rule,
    src_port: Vec<PortRange>,
    dest_port: Vec<PortRange>,
) -> (Vec<PortRange>, Vec<PortRange>) {
    let protos: Vec<Proto> = std::iter::once(rule.proto)
        .chain(rule.extra_protos.iter().copied())
        .collect();
    let port_capable = protos.iter().all(|p| matches!(p, Proto::Tcp | Proto::Udp));
    if (src_port.is_empty() && dest_port.is_empty()) || port_capable {
        return (src_port, dest_port);
    }
    let option = if src_port.is_empty() {
        "dest_port"
    } else {
        "src_port"
    };
    let line = s.option(option).map_or(s.line, |o| o.line);
    c.report(Kind::NoEffect, line, s, Some(option), format!(
        "ports are ignored with proto '{}' (as mwan3 does): expected proto tcp, udp (or 'tcp udp') for a port match",
        protos.iter().map(|p| values::protocol_name(*p)).collect::<Vec<_>>().join(" ")));
    (Vec::new(), Vec::new())
}

/// `src_iface`: a netifd interface name.
pub(super) fn src_iface(c: &mut Checker, s: &RawSection) -> Option<String> {
    c.get_opt(s, "src_iface", |v| {
        if valid_name(v) {
            Ok(v.to_string())
        } else {
            Err(format!(
                "'{v}' is not an interface name: expected a netifd interface such as lan"
            ))
        }
    })
}

/// `ipset`: a set name dnsmasq can fill.
pub(super) fn ipset(c: &mut Checker, s: &RawSection) -> Option<String> {
    c.get_opt(s, "ipset", |v| {
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
    })
}

/// `use_policy`: a built-in target or a defined policy (checked against
/// the rule's family); None (an error) when missing or undefined.
pub(super) fn use_policy(
    c: &mut Checker,
    s: &RawSection,
    config: &Config,
    rule: &Rule,
) -> Option<PolicyTarget> {
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
    Some(match target {
        "default" => PolicyTarget::Default,
        "unreachable" => PolicyTarget::Unreachable,
        "blackhole" => PolicyTarget::Blackhole,
        name => match config.policies.iter().find(|p| p.name == name) {
            Some(policy) => {
                check_policy_family(c, s, line, rule, policy, config);
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
    })
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

#[cfg(test)]
#[path = "rule_tests.rs"]
mod tests;
