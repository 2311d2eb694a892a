//! One nf_tables message per object: a rule, a chain, a set, and the
//! comment TLV libnftnl keeps in a table's or rule's userdata.

use mwan_core::config::Family;
use mwan_core::plan::nft::{
    ChainKind, Hook, NftChain, NftRule, NftSet, NftTable, SetKind, Verdict, TABLE,
};

use super::expr::{encode_action, encode_match, verdict};
use super::wire::*;
use crate::socket::{self, nested, MsgBuilder, Request};

pub(super) fn new_rule(
    table: &NftTable,
    chain: &str,
    rule: &NftRule,
    tag: Option<&str>,
) -> MsgBuilder {
    let mut m = nft_msg(NFT_MSG_NEWRULE, socket::NLM_F_CREATE | NLM_F_APPEND);
    m.attr_str(NFTA_RULE_TABLE, TABLE);
    m.attr_str(NFTA_RULE_CHAIN, chain);
    let list = m.begin_nested(nested(NFTA_RULE_EXPRESSIONS));
    for x in &rule.matches {
        encode_match(&mut m, table, x);
    }
    for a in &rule.actions {
        encode_action(&mut m, table, a);
    }
    match &rule.verdict {
        None => {}
        Some(Verdict::Return) => verdict(&mut m, NFT_RETURN, None),
        Some(Verdict::Jump(c)) => verdict(&mut m, NFT_JUMP, Some(c)),
        Some(Verdict::Goto(c)) => verdict(&mut m, NFT_GOTO, Some(c)),
    }
    m.end_nested(list);
    if let Some(t) = tag {
        // libnftnl's rule comment TLV (same layout as a table's).
        m.attr(NFTA_RULE_USERDATA, &comment_userdata(t));
    }
    m
}

pub(super) fn hook_number(h: Hook) -> u32 {
    match h {
        Hook::Prerouting => libc::NF_INET_PRE_ROUTING as u32,
        Hook::Output => libc::NF_INET_LOCAL_OUT as u32,
        Hook::Postrouting => libc::NF_INET_POST_ROUTING as u32,
    }
}

pub(super) fn chain_type(k: ChainKind) -> &'static str {
    match k {
        ChainKind::Filter => "filter",
        ChainKind::Route => "route",
    }
}

pub(super) fn new_chain(chain: &NftChain) -> MsgBuilder {
    let mut m = nft_msg(NFT_MSG_NEWCHAIN, socket::NLM_F_CREATE);
    m.attr_str(NFTA_CHAIN_TABLE, TABLE);
    m.attr_str(NFTA_CHAIN_NAME, &chain.name);
    if let Some(b) = &chain.base {
        m.attr_str(NFTA_CHAIN_TYPE, chain_type(b.kind));
        be32(&mut m, NFTA_CHAIN_POLICY, NF_ACCEPT);
        let h = m.begin_nested(nested(NFTA_CHAIN_HOOK));
        be32(&mut m, NFTA_HOOK_HOOKNUM, hook_number(b.hook));
        m.attr(NFTA_HOOK_PRIORITY, &b.priority.to_be_bytes());
        m.end_nested(h);
    }
    m
}

pub(super) fn set_flags(kind: SetKind) -> u32 {
    match kind {
        SetKind::Sticky { .. } => NFT_SET_TIMEOUT | NFT_SET_EVAL,
        SetKind::User => NFT_SET_INTERVAL,
    }
}

pub(super) fn key_type(f: Family) -> (u32, u32) {
    match f {
        Family::Ipv4 => (TYPE_IPV4_ADDR, 4),
        Family::Ipv6 => (TYPE_IPV6_ADDR, 16),
    }
}

pub(super) fn new_set(set: &NftSet, id: u32) -> MsgBuilder {
    let mut m = nft_msg(NFT_MSG_NEWSET, socket::NLM_F_CREATE);
    m.attr_str(NFTA_SET_TABLE, TABLE);
    m.attr_str(NFTA_SET_NAME, &set.name);
    be32(&mut m, NFTA_SET_FLAGS, set_flags(set.kind));
    let (ty, len) = key_type(set.family);
    be32(&mut m, NFTA_SET_KEY_TYPE, ty);
    be32(&mut m, NFTA_SET_KEY_LEN, len);
    be32(&mut m, NFTA_SET_ID, id);
    if let SetKind::Sticky { timeout_s } = set.kind {
        m.attr(
            NFTA_SET_TIMEOUT,
            &(u64::from(timeout_s) * 1000).to_be_bytes(),
        );
    }
    m.attr(NFTA_SET_USERDATA, &SET_USERDATA);
    m
}

pub(super) fn named(msg: u16, name_attr: u16, name: &str) -> MsgBuilder {
    let mut m = nft_msg(msg, 0);
    m.attr_str(1, TABLE); // NFTA_*_TABLE
    m.attr_str(name_attr, name);
    m
}

pub(super) fn req(msg: MsgBuilder, what: String) -> Request {
    Request { msg, what }
}

/// The table's userdata for a comment: libnftnl's TLV, NUL-terminated.
pub(super) fn comment_userdata(comment: &str) -> Vec<u8> {
    let mut v = vec![UDATA_TABLE_COMMENT, comment.len() as u8 + 1];
    v.extend_from_slice(comment.as_bytes());
    v.push(0);
    v
}

/// The comment in a table's userdata, if there is one.
pub fn parse_table_comment(userdata: &[u8]) -> Option<String> {
    let mut rest = userdata;
    while let [ty, len, tail @ ..] = rest {
        let value = tail.get(..usize::from(*len))?;
        if *ty == UDATA_TABLE_COMMENT {
            let text = value.strip_suffix(&[0]).unwrap_or(value);
            return String::from_utf8(text.to_vec()).ok();
        }
        rest = &tail[usize::from(*len)..];
    }
    None
}
