//! nft syntax of the table.

use std::fmt;
use std::net::IpAddr;

use super::*;
use crate::plan::family_of;

/// nft syntax (`nft -f` input) of the table, for logs, docs and tests: `nft
/// -f` of this text sends the same batch content as our encoder.
impl fmt::Display for NftTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "table inet {TABLE} {{")?;
        for s in &self.sets {
            writeln!(f, "\t{s}")?;
        }
        for c in &self.chains {
            write!(f, "{c}")?;
        }
        writeln!(f, "}}")
    }
}

impl fmt::Display for NftSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ty = match self.family {
            Family::Ipv4 => "ipv4_addr",
            Family::Ipv6 => "ipv6_addr",
        };
        match self.kind {
            SetKind::Sticky { timeout_s } => write!(
                f,
                "set {} {{ type {ty}; flags dynamic,timeout; timeout {timeout_s}s; }}",
                self.name
            ),
            SetKind::User => write!(f, "set {} {{ type {ty}; flags interval; }}", self.name),
        }
    }
}

impl fmt::Display for NftChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\tchain {} {{", self.name)?;
        if let Some(b) = &self.base {
            let kind = match b.kind {
                ChainKind::Filter => "filter",
                ChainKind::Route => "route",
            };
            let hook = match b.hook {
                Hook::Prerouting => "prerouting",
                Hook::Output => "output",
                Hook::Postrouting => "postrouting",
            };
            writeln!(
                f,
                "\t\ttype {kind} hook {hook} priority {}; policy accept;",
                b.priority
            )?;
        }
        for r in &self.rules {
            writeln!(f, "\t\t{r}")?;
        }
        writeln!(f, "\t}}")
    }
}

fn l3(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "ip",
        Family::Ipv6 => "ip6",
    }
}

fn addr_field(dir: Dir) -> &'static str {
    match dir {
        Dir::Src => "saddr",
        Dir::Dst => "daddr",
    }
}

impl fmt::Display for NftRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        for m in &self.matches {
            parts.push(m.to_string());
        }
        for a in &self.actions {
            parts.push(a.to_string());
        }
        if let Some(v) = &self.verdict {
            parts.push(match v {
                Verdict::Return => "return".to_string(),
                Verdict::Jump(c) => format!("jump {c}"),
                Verdict::Goto(c) => format!("goto {c}"),
            });
        }
        f.write_str(&parts.join(" "))
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let eq = |e: bool| if e { "==" } else { "!=" };
        match self {
            Match::NfProto(fam) => write!(
                f,
                "meta nfproto {}",
                match fam {
                    Family::Ipv4 => "ipv4",
                    Family::Ipv6 => "ipv6",
                }
            ),
            Match::L4Proto(n) => write!(f, "meta l4proto {n}"),
            Match::Prefix { dir, net } => write!(
                f,
                "{} {} {}/{}",
                l3(family_of(net.addr)),
                addr_field(*dir),
                net.addr,
                net.prefix_len
            ),
            Match::Masked { dir, ip } => {
                let value = masked_value(ip);
                write!(
                    f,
                    "{} {} & {} == {value}",
                    l3(family_of(ip.addr)),
                    addr_field(*dir),
                    ip.mask
                )
            }
            Match::Port { dir, range } => {
                let field = match dir {
                    Dir::Src => "sport",
                    Dir::Dst => "dport",
                };
                if range.first == range.last {
                    write!(f, "th {field} {}", range.first)
                } else {
                    write!(f, "th {field} {}-{}", range.first, range.last)
                }
            }
            Match::IifName(d) => write!(f, "iifname \"{d}\""),
            Match::OifName(d) => write!(f, "oifname \"{d}\""),
            Match::MetaMark { mask, value, equal } => {
                write!(f, "meta mark & {mask:#x} {} {value:#x}", eq(*equal))
            }
            Match::CtMark { mask, value, equal } => {
                write!(f, "ct mark & {mask:#x} {} {value:#x}", eq(*equal))
            }
            Match::InSet { family, dir, set } => {
                write!(f, "{} {} @{set}", l3(*family), addr_field(*dir))
            }
            Match::SocketCgroupV2 { level, path, .. } => {
                write!(f, "socket cgroupv2 level {level} \"{path}\"")
            }
        }
    }
}

/// `addr & mask` of a masked address.
pub fn masked_value(ip: &MaskedIp) -> IpAddr {
    match (ip.addr, ip.mask) {
        (IpAddr::V4(a), IpAddr::V4(m)) => IpAddr::V4((u32::from(a) & u32::from(m)).into()),
        (IpAddr::V6(a), IpAddr::V6(m)) => IpAddr::V6((u128::from(a) & u128::from(m)).into()),
        // The config parser never mixes families; keep the address as is.
        (a, _) => a,
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::SetMetaMark { keep, value } => {
                write!(f, "meta mark set meta mark & {keep:#x} | {value:#x}")
            }
            Action::SetCtMark { keep, value } => {
                write!(f, "ct mark set ct mark & {keep:#x} | {value:#x}")
            }
            Action::UpdateSetSource { family, set } => {
                write!(f, "update @{set} {{ {} saddr }}", l3(*family))
            }
            Action::Log { prefix } => write!(f, "log prefix \"{prefix}\""),
        }
    }
}
