//! A config rule as nft match lists: the cross product of its families,
//! addresses, protocols and ports.

use std::collections::BTreeMap;

use super::{ipset_set_name, Dir, Match};
use crate::config::{Family, IpNet, MaskedIp, PortRange, Proto, Rule, RuleFamily};
use crate::plan::{family_of, normalize, proto_number};

fn addr_family_of_masked(m: &MaskedIp) -> Family {
    family_of(m.addr)
}

/// Families a rule applies to: its `family`, narrowed to the families of
/// the addresses it lists (prefix or masked).
pub(super) fn rule_families(rule: &Rule) -> Vec<Family> {
    [Family::Ipv4, Family::Ipv6]
        .into_iter()
        .filter(|f| match rule.family {
            RuleFamily::Any => true,
            RuleFamily::Ipv4 => *f == Family::Ipv4,
            RuleFamily::Ipv6 => *f == Family::Ipv6,
        })
        .filter(|f| {
            let any_src = !rule.src_ip.is_empty() || !rule.src_ip_masked.is_empty();
            !any_src
                || rule.src_ip.iter().any(|n| family_of(n.addr) == *f)
                || rule
                    .src_ip_masked
                    .iter()
                    .any(|m| addr_family_of_masked(m) == *f)
        })
        .filter(|f| {
            let any_dst = !rule.dest_ip.is_empty() || !rule.dest_ip_masked.is_empty();
            !any_dst
                || rule.dest_ip.iter().any(|n| family_of(n.addr) == *f)
                || rule
                    .dest_ip_masked
                    .iter()
                    .any(|m| addr_family_of_masked(m) == *f)
        })
        .collect()
}

/// Address alternatives of one direction for one family; `[None]` = any.
fn addr_options(
    dir: Dir,
    family: Family,
    nets: &[IpNet],
    masked: &[MaskedIp],
) -> Vec<Option<Match>> {
    if nets.is_empty() && masked.is_empty() {
        return vec![None];
    }
    let mut out: Vec<Option<Match>> = Vec::new();
    for n in nets.iter().filter(|n| family_of(n.addr) == family) {
        let net = normalize(*n);
        // A /0 matches every address of the family: no payload match.
        out.push((net.prefix_len > 0).then_some(Match::Prefix { dir, net }));
    }
    for m in masked.iter().filter(|m| family_of(m.addr) == family) {
        out.push(Some(Match::Masked { dir, ip: *m }));
    }
    out
}

fn port_options(dir: Dir, ports: &[PortRange]) -> Vec<Option<Match>> {
    if ports.is_empty() {
        vec![None]
    } else {
        ports
            .iter()
            .map(|range| Some(Match::Port { dir, range: *range }))
            .collect()
    }
}

/// The nft match lists equivalent to a config rule: one list per
/// combination of family, source, destination, protocol and ports (the
/// cross product: lists in a config rule are alternatives).
pub fn expand(rule: &Rule, devices: &BTreeMap<String, String>) -> Vec<Vec<Match>> {
    let iif = rule
        .src_iface
        .as_ref()
        .map(|i| devices.get(i).cloned().unwrap_or_else(|| i.clone()));
    let mut protos = vec![rule.proto];
    protos.extend(rule.extra_protos.iter().copied());
    if protos.contains(&Proto::All) {
        protos = vec![Proto::All];
    }
    let has_ports = !rule.src_port.is_empty() || !rule.dest_port.is_empty();
    if has_ports && protos == [Proto::All] {
        // Ports only exist for transport protocols; mwan3 applies them to
        // TCP and UDP.
        protos = vec![Proto::Tcp, Proto::Udp];
    }
    let mut out = Vec::new();
    for family in rule_families(rule) {
        let srcs = addr_options(Dir::Src, family, &rule.src_ip, &rule.src_ip_masked);
        let dsts = addr_options(Dir::Dst, family, &rule.dest_ip, &rule.dest_ip_masked);
        let set = rule.ipset.as_ref().map(|s| Match::InSet {
            family,
            dir: Dir::Dst,
            set: ipset_set_name(s, family),
        });
        for src in &srcs {
            for dst in &dsts {
                for proto in &protos {
                    for sport in port_options(Dir::Src, &rule.src_port) {
                        for dport in port_options(Dir::Dst, &rule.dest_port) {
                            let mut m = vec![Match::NfProto(family)];
                            m.extend(src.clone());
                            m.extend(dst.clone());
                            m.extend(set.clone());
                            if let Some(n) = proto_number(*proto, family) {
                                m.push(Match::L4Proto(n));
                            }
                            m.extend(sport.clone());
                            m.extend(dport);
                            if let Some(dev) = &iif {
                                m.push(Match::IifName(dev.clone()));
                            }
                            out.push(m);
                        }
                    }
                }
            }
        }
    }
    out
}
