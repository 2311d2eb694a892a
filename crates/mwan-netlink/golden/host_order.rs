//! Golden captures were taken on little-endian x86_64, but netlink is in
//! the host's byte order: a big-endian router (ath79 MIPS, s390x in CI)
//! must build its messages with big-endian headers. [`from_le_capture`]
//! rewrites a capture into this host's order so the same fixture checks
//! the encoder on every CPU. What is host order, by the kernel's UAPI:
//! nlmsghdr, every attribute header, the `flags` word of rtmsg and
//! fib_rule_hdr, the u32 rtnetlink attributes, fib_rule_port_range,
//! rtnexthop, and in nftables the values compared with or computed from a
//! host-order register (meta mark, ct mark) and libnftnl's set userdata
//! integers. Everything else in nftables (nfgenmsg's res_id, the NFTA_*
//! integers, addresses, ports) is big-endian and stays as captured. On a
//! little-endian host every rewrite is the identity.
#![allow(dead_code)]

const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;

const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_NEWRULE: u16 = 32;
const RTM_DELRULE: u16 = 33;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_NEWSET: u16 = 9;

/// A whole capture (one or more netlink messages) in this host's order.
pub fn from_le_capture(capture: &[u8]) -> Vec<u8> {
    let mut out = capture.to_vec();
    let mut at = 0;
    while at + 16 <= out.len() {
        let len = u32::from_le_bytes(out[at..at + 4].try_into().unwrap()) as usize;
        let msg_type = u16::from_le_bytes([out[at + 4], out[at + 5]]);
        assert!(len >= 16 && at + len <= out.len(), "bad capture at {at}");
        swap_u32(&mut out[at..at + 4]); // nlmsg_len
        swap_u16(&mut out[at + 4..at + 6]); // nlmsg_type
        swap_u16(&mut out[at + 6..at + 8]); // nlmsg_flags
        swap_u32(&mut out[at + 8..at + 12]); // nlmsg_seq
        swap_u32(&mut out[at + 12..at + 16]); // nlmsg_pid
        convert_body(msg_type, &mut out[at + 16..at + len]);
        at += (len + 3) & !3;
    }
    out
}

fn convert_body(msg_type: u16, body: &mut [u8]) {
    match msg_type {
        RTM_NEWROUTE | RTM_DELROUTE | RTM_NEWRULE | RTM_DELRULE => {
            // rtmsg and fib_rule_hdr: eight bytes, then a host-order u32 flags.
            swap_u32(&mut body[8..12]);
            let leaf = if msg_type >= RTM_NEWRULE {
                rule_attr
            } else {
                route_attr
            };
            walk(&mut body[12..], &mut |ty, p| leaf(ty, p));
        }
        // nftables messages and batch begin/end: nfgenmsg (4 bytes, res_id
        // big-endian), then attributes.
        t if t >> 8 == NFNL_SUBSYS_NFTABLES || t == 0x10 || t == 0x11 => {
            let nft_msg = t & 0xff;
            if nft_msg == NFT_MSG_NEWRULE && t >> 8 == NFNL_SUBSYS_NFTABLES {
                nft_rule(&mut body[4..]);
            } else if nft_msg == NFT_MSG_NEWSET && t >> 8 == NFNL_SUBSYS_NFTABLES {
                walk(&mut body[4..], &mut |ty, p| {
                    if ty == 13 {
                        set_userdata(p); // NFTA_SET_USERDATA
                    }
                });
            } else {
                walk(&mut body[4..], &mut |_, _| {});
            }
        }
        other => panic!("no host-order rules for netlink message type {other}"),
    }
}

/// Attributes in `buf`: swaps each header, descends into nested ones (the
/// NLA_F_NESTED flag, which libmnl sets) and hands each leaf's type and
/// payload to `leaf`.
fn walk(buf: &mut [u8], leaf: &mut dyn FnMut(u16, &mut [u8])) {
    walk_top(buf, &mut |ty, payload| descend(ty, payload, leaf));
}

fn rule_attr(ty: u16, p: &mut [u8]) {
    match ty {
        // FRA_GOTO, FRA_PRIORITY, FRA_FWMARK, FRA_FLOW, FRA_SUPPRESS_IFGROUP,
        // FRA_SUPPRESS_PREFIXLEN, FRA_TABLE, FRA_FWMASK
        4 | 6 | 10 | 11 | 13 | 14 | 15 | 16 => swap_u32(p),
        // FRA_UID_RANGE: two u32
        20 => p.chunks_exact_mut(4).for_each(swap_u32),
        // FRA_SPORT_RANGE, FRA_DPORT_RANGE: fib_rule_port_range, two u16
        23 | 24 => p.chunks_exact_mut(2).for_each(swap_u16),
        _ => {}
    }
}

fn route_attr(ty: u16, p: &mut [u8]) {
    match ty {
        // RTA_IIF, RTA_OIF, RTA_PRIORITY, RTA_FLOW, RTA_TABLE, RTA_MARK
        3 | 4 | 6 | 11 | 15 | 16 => swap_u32(p),
        // RTA_MULTIPATH: rtnexthop (u16 len, flags, hops, int ifindex)
        // followed by its own attributes, repeated.
        9 => {
            let mut at = 0;
            while at + 8 <= p.len() {
                let len = u16::from_le_bytes([p[at], p[at + 1]]) as usize;
                assert!(len >= 8 && at + len <= p.len(), "bad rtnexthop at {at}");
                swap_u16(&mut p[at..at + 2]);
                swap_u32(&mut p[at + 4..at + 8]);
                walk(&mut p[at + 8..at + len], &mut |t, q| route_attr(t, q));
                at += (len + 3) & !3;
            }
        }
        _ => {}
    }
}

/// A NEWRULE: its expressions in order, tracking whether register 1 holds a
/// host-order value (loaded by `meta mark` or `ct mark`), whose cmp and
/// bitwise operands are then host order too.
fn nft_rule(body: &mut [u8]) {
    let mut host_reg = false;
    walk_top(body, &mut |ty, exprs| {
        if ty & NLA_TYPE_MASK != 4 {
            // Not NFTA_RULE_EXPRESSIONS: nothing host-order below.
            return descend(ty, exprs, &mut |_, _| {});
        }
        walk_top(exprs, &mut |_, elem| {
            // NFTA_LIST_ELEM { NFTA_EXPR_NAME (1), NFTA_EXPR_DATA (2) { ... } }
            let mut name = String::new();
            walk_top(elem, &mut |t, data| {
                if t & NLA_TYPE_MASK == 1 {
                    name = String::from_utf8_lossy(data).trim_end_matches('\0').into();
                    return;
                }
                // A load (meta/ct key with NFTA_*_DREG = 1) or payload sets
                // register 1; NFT_META_MARK = NFT_CT_MARK = 3.
                let (mut key, mut dreg) = (None, false);
                for_each_le(data, &mut |a, v| match a {
                    1 => dreg = true,
                    2 => {
                        key = v
                            .get(..4)
                            .map(|k| u32::from_be_bytes(k.try_into().unwrap()))
                    }
                    _ => {}
                });
                match name.as_str() {
                    "meta" | "ct" if dreg => host_reg = key == Some(3),
                    "payload" => host_reg = false,
                    _ => {}
                }
                // NFTA_CMP_DATA (3), NFTA_BITWISE_MASK (4) / XOR (5) hold
                // { NFTA_DATA_VALUE (1) }.
                let operands = match name.as_str() {
                    "cmp" => &[3][..],
                    "bitwise" => &[4, 5][..],
                    _ => &[][..],
                };
                walk_top(data, &mut |a, v| {
                    let swap = host_reg && operands.contains(&(a & NLA_TYPE_MASK));
                    descend(a, v, &mut |d, value| {
                        if swap && d == 1 && value.len() == 4 {
                            swap_u32(value);
                        }
                    });
                });
            });
        });
    });
}

/// One level of attributes: swaps each header and hands its raw type (with
/// flags) and unconverted payload to `each`.
fn walk_top(buf: &mut [u8], each: &mut dyn FnMut(u16, &mut [u8])) {
    let mut at = 0;
    while at + 4 <= buf.len() {
        let len = u16::from_le_bytes([buf[at], buf[at + 1]]) as usize;
        let ty = u16::from_le_bytes([buf[at + 2], buf[at + 3]]);
        assert!(len >= 4 && at + len <= buf.len(), "bad attribute at {at}");
        swap_u16(&mut buf[at..at + 2]);
        swap_u16(&mut buf[at + 2..at + 4]);
        each(ty, &mut buf[at + 4..at + len]);
        at += (len + 3) & !3;
    }
}

/// A payload handed out by [`walk_top`]: nested ones are walked, leaves go
/// to `leaf`.
fn descend(ty: u16, payload: &mut [u8], leaf: &mut dyn FnMut(u16, &mut [u8])) {
    if ty & NLA_F_NESTED != 0 {
        walk(payload, leaf);
    } else {
        leaf(ty & NLA_TYPE_MASK, payload);
    }
}

/// Reads one level of still little-endian attributes without changing them.
fn for_each_le(buf: &[u8], each: &mut dyn FnMut(u16, &[u8])) {
    let mut copy = buf.to_vec();
    walk_top(&mut copy, &mut |t, v| each(t & NLA_TYPE_MASK, v));
}

/// libnftnl's set userdata: TLVs of (u8 type, u8 len, value); the key and
/// data byte order, merge-elements and data-interval values are host u32.
fn set_userdata(p: &mut [u8]) {
    let mut at = 0;
    while at + 2 <= p.len() {
        let (ty, len) = (p[at], p[at + 1] as usize);
        let end = (at + 2 + len).min(p.len());
        let value = &mut p[at + 2..end];
        if matches!(ty, 0 | 1 | 2 | 6) && value.len() == 4 {
            swap_u32(value);
        }
        at += 2 + len;
    }
}

/// Little-endian bytes to this host's order (a no-op on little-endian).
fn swap_u16(b: &mut [u8]) {
    let v = u16::from_le_bytes([b[0], b[1]]);
    b.copy_from_slice(&v.to_ne_bytes());
}

fn swap_u32(b: &mut [u8]) {
    let v = u32::from_le_bytes(b[..4].try_into().unwrap());
    b[..4].copy_from_slice(&v.to_ne_bytes());
}
