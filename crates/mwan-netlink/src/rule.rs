//! FIB rules: RTM_NEWRULE/RTM_DELRULE encoding and rule dumps.

use mwan_core::config::{Family, IpNet, PortRange};
use mwan_core::plan::{FibRule, RuleAction};

use crate::error::NetlinkError;
use crate::route::{addr_bytes, af, family_from_af, header_table, parse_addr};
use crate::socket::{
    attr_str, attr_u32, attrs, MsgBuilder, RawMsg, Request, Socket, NLM_F_CREATE, NLM_F_EXCL,
};

pub const RTM_NEWRULE: u16 = 32;
pub const RTM_DELRULE: u16 = 33;
pub const RTM_GETRULE: u16 = 34;

const FRA_DST: u16 = 1;
const FRA_SRC: u16 = 2;
const FRA_IIFNAME: u16 = 3;
const FRA_PRIORITY: u16 = 6;
const FRA_FWMARK: u16 = 10;
const FRA_SUPPRESS_PREFIXLEN: u16 = 14;
const FRA_TABLE: u16 = 15;
const FRA_FWMASK: u16 = 16;
const FRA_PROTOCOL: u16 = 21;
const FRA_IP_PROTO: u16 = 22;
const FRA_SPORT_RANGE: u16 = 23;
const FRA_DPORT_RANGE: u16 = 24;

const FR_ACT_TO_TBL: u8 = 1;
const FR_ACT_BLACKHOLE: u8 = 6;
const FR_ACT_UNREACHABLE: u8 = 7;
const FIB_RULE_HDR_LEN: usize = 12;

fn encode(rule: &FibRule, protocol: u8, msg_type: u16, flags: u16) -> MsgBuilder {
    let (action, table) = match rule.action {
        // iproute2 leaves the action unset on delete; the table still pins
        // the rule (the kernel matches every attribute given).
        RuleAction::Lookup { table, .. } if msg_type == RTM_DELRULE => (0, table),
        RuleAction::Lookup { table, .. } => (FR_ACT_TO_TBL, table),
        RuleAction::Unreachable => (FR_ACT_UNREACHABLE, 0),
        RuleAction::Blackhole => (FR_ACT_BLACKHOLE, 0),
    };
    let len = |n: Option<IpNet>| n.map_or(0, |n| n.prefix_len);
    let mut m = MsgBuilder::new(msg_type, flags);
    // struct fib_rule_hdr { family, dst_len, src_len, tos, table, res1, res2, action, flags }
    m.bytes(&[
        af(rule.family),
        len(rule.dst),
        len(rule.src),
        0,
        header_table(table),
        0,
        0,
        action,
        0,
        0,
        0,
        0,
    ]);
    m.attr_u32(FRA_PRIORITY, rule.priority);
    if let Some(src) = rule.src {
        m.attr(FRA_SRC, &addr_bytes(src.addr));
    }
    if let Some(dst) = rule.dst {
        m.attr(FRA_DST, &addr_bytes(dst.addr));
    }
    if let Some(iif) = &rule.iif {
        m.attr_str(FRA_IIFNAME, iif);
    }
    if let Some((mark, mask)) = rule.fwmark {
        m.attr_u32(FRA_FWMARK, mark);
        m.attr_u32(FRA_FWMASK, mask);
    }
    if let Some(p) = rule.ipproto {
        m.attr_u8(FRA_IP_PROTO, p);
    }
    if let Some(r) = rule.sport {
        m.attr(FRA_SPORT_RANGE, &port_range(r));
    }
    if let Some(r) = rule.dport {
        m.attr(FRA_DPORT_RANGE, &port_range(r));
    }
    if let RuleAction::Lookup {
        suppress_prefixlen: Some(s),
        ..
    } = rule.action
    {
        m.attr_u32(FRA_SUPPRESS_PREFIXLEN, u32::from(s));
    }
    if table >= 256 {
        m.attr_u32(FRA_TABLE, table);
    }
    m.attr_u8(FRA_PROTOCOL, protocol);
    m
}

fn port_range(r: PortRange) -> [u8; 4] {
    let mut b = [0u8; 4];
    b[..2].copy_from_slice(&r.first.to_ne_bytes());
    b[2..].copy_from_slice(&r.last.to_ne_bytes());
    b
}

/// RTM_NEWRULE with NLM_F_CREATE|NLM_F_EXCL (as `ip rule add`); EEXIST means
/// the identical rule is there already.
pub fn add_msg(rule: &FibRule, protocol: u8) -> MsgBuilder {
    encode(rule, protocol, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL)
}

/// RTM_DELRULE naming every field, so only this exact rule goes.
pub fn delete_msg(rule: &FibRule, protocol: u8) -> MsgBuilder {
    encode(rule, protocol, RTM_DELRULE, 0)
}

pub fn add_request(rule: &FibRule, protocol: u8) -> Request {
    Request {
        msg: add_msg(rule, protocol),
        what: format!("add rule {rule}"),
    }
}

pub fn delete_request(rule: &FibRule, protocol: u8) -> Request {
    Request {
        msg: delete_msg(rule, protocol),
        what: format!("delete rule {rule}"),
    }
}

/// A rule from a dump with its protocol; None for actions the plan does not
/// model (goto, nop, prohibit).
pub fn parse_rule(msg: &RawMsg) -> Option<(FibRule, u8)> {
    let b = &msg.payload;
    if b.len() < FIB_RULE_HDR_LEN {
        return None;
    }
    let family = family_from_af(b[0])?;
    let (dst_len, src_len, header_tbl, action) = (b[1], b[2], b[4], b[7]);
    let mut rule = FibRule::new(family, 0, RuleAction::Blackhole);
    let mut table = u32::from(header_tbl);
    let mut suppress = None;
    let mut protocol = 0;
    let (mut mark, mut mask) = (None, None);
    for (ty, p) in attrs(b, FIB_RULE_HDR_LEN) {
        match ty {
            FRA_PRIORITY => rule.priority = attr_u32(p)?,
            FRA_SRC => {
                rule.src = Some(IpNet {
                    addr: parse_addr(family, p)?,
                    prefix_len: src_len,
                })
            }
            FRA_DST => {
                rule.dst = Some(IpNet {
                    addr: parse_addr(family, p)?,
                    prefix_len: dst_len,
                })
            }
            FRA_IIFNAME => rule.iif = Some(attr_str(p)),
            FRA_FWMARK => mark = attr_u32(p),
            FRA_FWMASK => mask = attr_u32(p),
            FRA_IP_PROTO => rule.ipproto = p.first().copied(),
            FRA_SPORT_RANGE => rule.sport = parse_range(p),
            FRA_DPORT_RANGE => rule.dport = parse_range(p),
            FRA_TABLE => table = attr_u32(p)?,
            // The kernel reports -1 (0xffffffff) for "not set".
            FRA_SUPPRESS_PREFIXLEN => suppress = attr_u32(p).filter(|v| *v <= 128).map(|v| v as u8),
            FRA_PROTOCOL => protocol = p.first().copied().unwrap_or(0),
            _ => {}
        }
    }
    if mark.is_some() || mask.is_some() {
        rule.fwmark = Some((mark.unwrap_or(0), mask.unwrap_or(u32::MAX)));
    }
    rule.action = match action {
        FR_ACT_TO_TBL => RuleAction::Lookup {
            table,
            suppress_prefixlen: suppress,
        },
        FR_ACT_UNREACHABLE => RuleAction::Unreachable,
        FR_ACT_BLACKHOLE => RuleAction::Blackhole,
        _ => return None,
    };
    Some((rule, protocol))
}

fn parse_range(p: &[u8]) -> Option<PortRange> {
    Some(PortRange {
        first: u16::from_ne_bytes(p.get(0..2)?.try_into().ok()?),
        last: u16::from_ne_bytes(p.get(2..4)?.try_into().ok()?),
    })
}

/// All rules of a family with their protocol numbers.
pub fn dump_rules(sock: &mut Socket, family: Family) -> Result<Vec<(FibRule, u8)>, NetlinkError> {
    let mut m = MsgBuilder::new(RTM_GETRULE, 0);
    m.bytes(&[af(family), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let msgs = sock.dump(&m, &format!("dump {family:?} rules"))?;
    Ok(msgs
        .iter()
        .filter(|m| m.msg_type == RTM_NEWRULE)
        .filter_map(parse_rule)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::split_messages;

    #[test]
    fn what_we_encode_parses_back_to_the_same_rule() {
        let mut steer = FibRule::new(
            Family::Ipv6,
            3000,
            RuleAction::Lookup {
                table: 1004,
                suppress_prefixlen: None,
            },
        );
        steer.src = Some(IpNet {
            addr: "2001:db8:5::".parse().unwrap(),
            prefix_len: 48,
        });
        steer.dst = Some(IpNet {
            addr: "2001:db8:9::".parse().unwrap(),
            prefix_len: 64,
        });
        steer.iif = Some("br-lan".into());
        steer.ipproto = Some(17);
        steer.sport = Some(PortRange {
            first: 1000,
            last: 2000,
        });
        steer.dport = Some(PortRange {
            first: 53,
            last: 53,
        });
        let mut mark = FibRule::new(
            Family::Ipv4,
            1001,
            RuleAction::Lookup {
                table: 1002,
                suppress_prefixlen: None,
            },
        );
        mark.fwmark = Some((0x100, 0x3f00));
        let cases = [
            steer,
            mark,
            FibRule::new(
                Family::Ipv4,
                1300,
                RuleAction::Lookup {
                    table: 254,
                    suppress_prefixlen: Some(0),
                },
            ),
            FibRule::new(Family::Ipv4, 3001, RuleAction::Unreachable),
            FibRule::new(Family::Ipv6, 3002, RuleAction::Blackhole),
        ];
        for rule in cases {
            let bytes = add_msg(&rule, 77).finish(1, 0);
            let msg = &split_messages(&bytes).unwrap()[0];
            assert_eq!(parse_rule(msg), Some((rule.clone(), 77)), "{rule}");
        }
    }
}
