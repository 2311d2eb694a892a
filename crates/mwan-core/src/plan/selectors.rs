//! A config rule as FIB rule selectors, when the kernel's FIB rules can
//! express it (else the reasons it needs an nft mark).

use std::collections::BTreeMap;

use super::{family_of, normalize, FibRule, RuleAction, FAMILIES, MAX_FIB_EXPANSION};
use crate::config::{Family, IpNet, PortRange, Proto, Rule, RuleFamily};

pub(crate) fn proto_number(proto: Proto, family: Family) -> Option<u8> {
    match proto {
        Proto::All => None,
        Proto::Tcp => Some(6),
        Proto::Udp => Some(17),
        Proto::Icmp => Some(match family {
            Family::Ipv4 => 1,
            Family::Ipv6 => 58,
        }),
        Proto::Number(n) => Some(n),
    }
}

fn rule_families(rule: &Rule) -> Vec<Family> {
    let allowed = |f: Family| match rule.family {
        RuleFamily::Any => true,
        RuleFamily::Ipv4 => f == Family::Ipv4,
        RuleFamily::Ipv6 => f == Family::Ipv6,
    };
    FAMILIES
        .into_iter()
        .filter(|f| allowed(*f))
        // A rule listing addresses applies to the families of its addresses.
        .filter(|f| rule.src_ip.is_empty() || rule.src_ip.iter().any(|n| family_of(n.addr) == *f))
        .filter(|f| rule.dest_ip.is_empty() || rule.dest_ip.iter().any(|n| family_of(n.addr) == *f))
        .collect()
}

fn options<T: Copy>(list: &[T]) -> Vec<Option<T>> {
    if list.is_empty() {
        vec![None]
    } else {
        list.iter().copied().map(Some).collect()
    }
}

/// A port list as FIB rule selectors (None = any port), or None when the
/// kernel cannot hold it: `fib_rule_port_range_valid()` refuses a range
/// starting at 0 or ending at 65535. A range covering 1..=65535 is any port.
fn fib_ports(list: &[PortRange]) -> Option<Vec<Option<PortRange>>> {
    if list.iter().any(|p| p.first <= 1 && p.last == u16::MAX) {
        return Some(vec![None]);
    }
    if list.iter().any(|p| p.first == 0 || p.last == u16::MAX) {
        return None;
    }
    Some(options(list))
}

/// The FIB rules equivalent to a config rule (without priority/action), or
/// why none can express it.
pub(super) fn fib_selectors(
    rule: &Rule,
    devices: &BTreeMap<String, String>,
) -> Result<Vec<FibRule>, Vec<&'static str>> {
    let mut reasons = Vec::new();
    if rule.ipset.is_some() {
        reasons.push("ipset match");
    }
    if rule.sticky {
        reasons.push("sticky");
    }
    if rule.logging {
        reasons.push("logging");
    }
    if !rule.src_ip_masked.is_empty() || !rule.dest_ip_masked.is_empty() {
        reasons.push("non-prefix netmask");
    }
    let sports = fib_ports(&rule.src_port);
    let dports = fib_ports(&rule.dest_port);
    if sports.is_none() || dports.is_none() {
        reasons.push("port range with 0 or 65535 (FIB rules refuse those)");
    }
    let (Some(sports), Some(dports)) = (sports, dports) else {
        return Err(reasons);
    };
    if !reasons.is_empty() {
        return Err(reasons);
    }
    let iif = rule
        .src_iface
        .as_ref()
        .and_then(|i| devices.get(i))
        .cloned();
    let mut protos = vec![rule.proto];
    protos.extend(rule.extra_protos.iter().copied());
    if protos.contains(&Proto::All) {
        protos = vec![Proto::All];
    }
    let mut out = Vec::new();
    for family in rule_families(rule) {
        let of_family = |list: &[IpNet]| -> Vec<IpNet> {
            let nets: Vec<IpNet> = list
                .iter()
                .copied()
                .filter(|n| family_of(n.addr) == family)
                .map(normalize)
                .collect();
            // The kernel stores `from 0.0.0.0/0` as no selector at all (and
            // dumps it so): a /0 entry matches everything of its family.
            if nets.iter().any(|n| n.prefix_len == 0) {
                Vec::new()
            } else {
                nets
            }
        };
        for src in options(&of_family(&rule.src_ip)) {
            for dst in options(&of_family(&rule.dest_ip)) {
                for proto in &protos {
                    for sport in &sports {
                        for dport in &dports {
                            let mut r = FibRule::new(family, 0, RuleAction::Blackhole);
                            r.src = src;
                            r.dst = dst;
                            r.iif = iif.clone();
                            r.ipproto = proto_number(*proto, family);
                            r.sport = *sport;
                            r.dport = *dport;
                            out.push(r);
                            if out.len() > MAX_FIB_EXPANSION {
                                return Err(vec!["more address/protocol/port combinations than FIB rules are worth"]);
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}
