//! A rule's expressions: each match and action of the plan as the
//! `meta`, `cmp`, `payload`, `lookup`, `dynset`, ... expressions nft sends.

use mwan_core::config::Family;
use mwan_core::plan::nft::{Action, Dir, Match, NftTable};

use super::wire::*;
use crate::socket::{nested, MsgBuilder};

/// One expression: `{ NAME, DATA { ... } }` in the rule's list.
pub(super) fn expr(m: &mut MsgBuilder, name: &str, body: impl FnOnce(&mut MsgBuilder)) {
    let elem = m.begin_nested(nested(NFTA_LIST_ELEM));
    m.attr_str(NFTA_EXPR_NAME, name);
    let data = m.begin_nested(nested(NFTA_EXPR_DATA));
    body(m);
    m.end_nested(data);
    m.end_nested(elem);
}

/// `{ type: { NFTA_DATA_VALUE: bytes } }`
pub(super) fn data_value(m: &mut MsgBuilder, ty: u16, value: &[u8]) {
    let at = m.begin_nested(nested(ty));
    m.attr(1, value);
    m.end_nested(at);
}

/// A `meta` or `ct` expression reading `key` into, or writing it from,
/// register 1. `reg_attr`: NFTA_META_DREG = NFTA_CT_DREG = 1 to load,
/// NFTA_META_SREG = 3 / NFTA_CT_SREG = 4 to store.
pub(super) fn key_expr(m: &mut MsgBuilder, name: &str, key: u32, reg_attr: u16) {
    expr(m, name, |m| {
        be32(m, 2, key); // NFTA_META_KEY = NFTA_CT_KEY
        be32(m, reg_attr, NFT_REG_1);
    });
}

pub(super) fn meta_load(m: &mut MsgBuilder, key: u32) {
    key_expr(m, "meta", key, 1);
}

pub(super) fn meta_store(m: &mut MsgBuilder, key: u32) {
    key_expr(m, "meta", key, 3);
}

pub(super) fn ct_load(m: &mut MsgBuilder, key: u32) {
    key_expr(m, "ct", key, 1);
}

pub(super) fn ct_store(m: &mut MsgBuilder, key: u32) {
    key_expr(m, "ct", key, 4);
}

pub(super) fn cmp(m: &mut MsgBuilder, op: u32, value: &[u8]) {
    expr(m, "cmp", |m| {
        be32(m, 1, NFT_REG_1); // NFTA_CMP_SREG
        be32(m, 2, op); // NFTA_CMP_OP
        data_value(m, 3, value); // NFTA_CMP_DATA
    });
}

/// `reg = reg & mask ^ xor`. nft sends NFTA_BITWISE_OP (boolean) for `&`/`|`
/// expressions but not for the mask of a prefix match; we do the same.
pub(super) fn bitwise(m: &mut MsgBuilder, mask: &[u8], xor: &[u8], with_op: bool) {
    expr(m, "bitwise", |m| {
        be32(m, 1, NFT_REG_1); // SREG
        be32(m, 2, NFT_REG_1); // DREG
        if with_op {
            be32(m, 6, 0); // NFTA_BITWISE_OP = NFT_BITWISE_BOOL
        }
        be32(m, 3, mask.len() as u32); // LEN
        data_value(m, 4, mask);
        data_value(m, 5, xor);
    });
}

pub(super) fn payload(m: &mut MsgBuilder, base: u32, offset: u32, len: u32) {
    expr(m, "payload", |m| {
        be32(m, 1, NFT_REG_1); // DREG
        be32(m, 2, base);
        be32(m, 3, offset);
        be32(m, 4, len);
    });
}

pub(super) fn verdict(m: &mut MsgBuilder, code: i32, chain: Option<&str>) {
    expr(m, "immediate", |m| {
        be32(m, 1, NFT_REG_VERDICT); // NFTA_IMMEDIATE_DREG
        let data = m.begin_nested(nested(2)); // NFTA_IMMEDIATE_DATA
        let v = m.begin_nested(nested(2)); // NFTA_DATA_VERDICT
        m.attr(1, &code.to_be_bytes()); // NFTA_VERDICT_CODE
        if let Some(c) = chain {
            m.attr_str(2, c); // NFTA_VERDICT_CHAIN
        }
        m.end_nested(v);
        m.end_nested(data);
    });
}

pub(super) fn addr_offset(family: Family, dir: Dir) -> (u32, u32) {
    match (family, dir) {
        (Family::Ipv4, Dir::Src) => (12, 4),
        (Family::Ipv4, Dir::Dst) => (16, 4),
        (Family::Ipv6, Dir::Src) => (8, 16),
        (Family::Ipv6, Dir::Dst) => (24, 16),
    }
}

pub(super) fn ip_bytes(addr: std::net::IpAddr) -> Vec<u8> {
    match addr {
        std::net::IpAddr::V4(a) => a.octets().to_vec(),
        std::net::IpAddr::V6(a) => a.octets().to_vec(),
    }
}

pub(super) fn family_of(addr: std::net::IpAddr) -> Family {
    mwan_core::plan::family_of(addr)
}

pub(super) fn ifname(name: &str) -> [u8; IFNAMSIZ] {
    let mut b = [0u8; IFNAMSIZ];
    let n = name.len().min(IFNAMSIZ - 1);
    b[..n].copy_from_slice(&name.as_bytes()[..n]);
    b
}

/// Position of a set in the batch's NEWSETs: its NFTA_SET_ID.
pub(super) fn set_id(table: &NftTable, name: &str) -> Option<u32> {
    table
        .sets
        .iter()
        .position(|s| s.name == name)
        .map(|i| i as u32 + 1)
}

pub(super) fn encode_match(m: &mut MsgBuilder, table: &NftTable, x: &Match) {
    match x {
        Match::NfProto(f) => {
            meta_load(m, NFT_META_NFPROTO);
            let v = match f {
                Family::Ipv4 => libc::NFPROTO_IPV4 as u8,
                Family::Ipv6 => libc::NFPROTO_IPV6 as u8,
            };
            cmp(m, NFT_CMP_EQ, &[v]);
        }
        Match::L4Proto(p) => {
            meta_load(m, NFT_META_L4PROTO);
            cmp(m, NFT_CMP_EQ, &[*p]);
        }
        Match::Prefix { dir, net } => {
            let family = family_of(net.addr);
            let (offset, full) = addr_offset(family, *dir);
            let bytes = ip_bytes(net.addr);
            let bits = u32::from(net.prefix_len).min(full * 8);
            if bits % 8 == 0 {
                // Byte-aligned prefixes load just the prefix bytes (as nft).
                let len = bits / 8;
                payload(m, NFT_PAYLOAD_NETWORK, offset, len);
                cmp(m, NFT_CMP_EQ, &bytes[..len as usize]);
            } else {
                payload(m, NFT_PAYLOAD_NETWORK, offset, full);
                let mut mask = vec![0u8; full as usize];
                for (i, b) in mask.iter_mut().enumerate() {
                    let start = i as u32 * 8;
                    let ones = bits.saturating_sub(start).min(8);
                    *b = if ones == 0 { 0 } else { 0xffu8 << (8 - ones) };
                }
                bitwise(m, &mask, &vec![0u8; full as usize], false);
                cmp(m, NFT_CMP_EQ, &bytes);
            }
        }
        Match::Masked { dir, ip } => {
            let family = family_of(ip.addr);
            let (offset, full) = addr_offset(family, *dir);
            payload(m, NFT_PAYLOAD_NETWORK, offset, full);
            bitwise(m, &ip_bytes(ip.mask), &vec![0u8; full as usize], true);
            cmp(
                m,
                NFT_CMP_EQ,
                &ip_bytes(mwan_core::plan::nft::masked_value(ip)),
            );
        }
        Match::Port { dir, range } => {
            let offset = match dir {
                Dir::Src => 0,
                Dir::Dst => 2,
            };
            payload(m, NFT_PAYLOAD_TRANSPORT, offset, 2);
            if range.first == range.last {
                cmp(m, NFT_CMP_EQ, &range.first.to_be_bytes());
            } else {
                cmp(m, NFT_CMP_GTE, &range.first.to_be_bytes());
                cmp(m, NFT_CMP_LTE, &range.last.to_be_bytes());
            }
        }
        Match::IifName(d) | Match::OifName(d) => {
            let key = if matches!(x, Match::IifName(_)) {
                NFT_META_IIFNAME
            } else {
                NFT_META_OIFNAME
            };
            meta_load(m, key);
            cmp(m, NFT_CMP_EQ, &ifname(d));
        }
        Match::MetaMark { mask, value, equal } | Match::CtMark { mask, value, equal } => {
            if matches!(x, Match::MetaMark { .. }) {
                meta_load(m, NFT_META_MARK);
            } else {
                ct_load(m, NFT_CT_MARK);
            }
            bitwise(m, &mask.to_ne_bytes(), &[0; 4], true);
            let op = if *equal { NFT_CMP_EQ } else { NFT_CMP_NEQ };
            cmp(m, op, &value.to_ne_bytes());
        }
        Match::InSet { family, dir, set } => {
            let (offset, len) = addr_offset(*family, *dir);
            payload(m, NFT_PAYLOAD_NETWORK, offset, len);
            expr(m, "lookup", |m| {
                be32(m, 2, NFT_REG_1); // NFTA_LOOKUP_SREG
                m.attr_str(1, set); // NFTA_LOOKUP_SET
                if let Some(id) = set_id(table, set) {
                    be32(m, 4, id); // NFTA_LOOKUP_SET_ID
                }
            });
        }
        Match::SocketCgroupV2 { level, id, .. } => {
            expr(m, "socket", |m| {
                be32(m, 1, NFT_SOCKET_CGROUPV2); // NFTA_SOCKET_KEY
                be32(m, 2, NFT_REG_1); // NFTA_SOCKET_DREG
                be32(m, 3, *level); // NFTA_SOCKET_LEVEL
            });
            cmp(m, NFT_CMP_EQ, &id.to_ne_bytes());
        }
    }
}

pub(super) fn encode_action(m: &mut MsgBuilder, table: &NftTable, a: &Action) {
    match a {
        Action::SetMetaMark { keep, value } => {
            meta_load(m, NFT_META_MARK);
            bitwise(m, &keep.to_ne_bytes(), &value.to_ne_bytes(), true);
            meta_store(m, NFT_META_MARK);
        }
        Action::SetCtMark { keep, value } => {
            ct_load(m, NFT_CT_MARK);
            bitwise(m, &keep.to_ne_bytes(), &value.to_ne_bytes(), true);
            ct_store(m, NFT_CT_MARK);
        }
        Action::UpdateSetSource { family, set } => {
            let (offset, len) = addr_offset(*family, Dir::Src);
            payload(m, NFT_PAYLOAD_NETWORK, offset, len);
            expr(m, "dynset", |m| {
                be32(m, 4, NFT_REG_1); // NFTA_DYNSET_SREG_KEY
                be32(m, 3, NFT_DYNSET_OP_UPDATE); // NFTA_DYNSET_OP
                m.attr_str(1, set); // NFTA_DYNSET_SET_NAME
                if let Some(id) = set_id(table, set) {
                    be32(m, 2, id); // NFTA_DYNSET_SET_ID
                }
            });
        }
        Action::Log { prefix } => expr(m, "log", |m| {
            m.attr_str(2, prefix); // NFTA_LOG_PREFIX
        }),
    }
}
