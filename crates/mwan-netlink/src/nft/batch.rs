//! The requests of one transaction: replace, create, flush sets, delete;
//! and their bytes as `nft` sends them, for the golden comparisons.

use mwan_core::plan::nft::{NftTable, TABLE};

use super::messages::{comment_userdata, named, new_chain, new_rule, new_set, req};
use super::observed::{base_of, Observed};
use super::wire::*;
use crate::socket::{self, MsgBuilder, Request};

/// The requests of one atomic replacement of table `inet mwan` by `want`,
/// given what is there now (`None`: no table).
pub fn replace_requests(want: &NftTable, observed: Option<&Observed>) -> Vec<Request> {
    replace_requests_commented(want, observed, None)
}

/// [`replace_requests`] with a comment stored in the table if this creates
/// it (an existing table keeps its comment: the kernel updates only flags).
pub fn replace_requests_commented(
    want: &NftTable,
    observed: Option<&Observed>,
    comment: Option<&str>,
) -> Vec<Request> {
    replace_requests_tagged(want, observed, comment, None)
}

/// [`replace_requests_commented`] whose rules carry `tag` as their comment.
pub(super) fn replace_requests_tagged(
    want: &NftTable,
    observed: Option<&Observed>,
    comment: Option<&str>,
    tag: Option<&str>,
) -> Vec<Request> {
    let mut out = Vec::new();
    if let Some(obs) = observed {
        for c in &obs.chains {
            out.push(req(
                named(NFT_MSG_DELRULE, NFTA_RULE_CHAIN, &c.name),
                format!("flush chain inet {TABLE} {}", c.name),
            ));
        }
        for c in &obs.chains {
            let keep = want
                .chain(&c.name)
                .is_some_and(|w| w.base.as_ref().map(base_of) == c.base);
            if !keep {
                out.push(req(
                    named(NFT_MSG_DELCHAIN, NFTA_CHAIN_NAME, &c.name),
                    format!("delete chain inet {TABLE} {}", c.name),
                ));
            }
        }
        for s in &obs.sets {
            let keep = want.set(&s.name).is_some_and(|w| s.matches(w));
            if !keep {
                out.push(req(
                    named(NFT_MSG_DELSET, NFTA_SET_NAME, &s.name),
                    format!("delete set inet {TABLE} {}", s.name),
                ));
            }
        }
    }
    out.extend(create_requests_tagged(want, comment, tag));
    out
}

/// A fingerprint of the whole table content (FNV-1a over its description):
/// every rule we install carries it as its comment, so a restarted mwand
/// can tell that the table in the kernel is exactly the one it wants
/// (rule counts alone do not show a changed address or mark) and adopt it
/// without a rewrite.
pub fn plan_tag(want: &NftTable) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{want:?}").bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("mwan plan {h:016x}")
}

/// Create the table with everything in it (table and sets may exist).
pub fn create_requests(want: &NftTable) -> Vec<Request> {
    create_requests_commented(want, None)
}
/// [`create_requests`] with a comment in the table (at most
/// [`TABLE_COMMENT_MAX`] bytes; a longer one is left out).
pub fn create_requests_commented(want: &NftTable, comment: Option<&str>) -> Vec<Request> {
    create_requests_tagged(want, comment, None)
}

pub(super) fn create_requests_tagged(
    want: &NftTable,
    comment: Option<&str>,
    tag: Option<&str>,
) -> Vec<Request> {
    let mut out = Vec::new();
    let mut t = nft_msg(NFT_MSG_NEWTABLE, 0);
    t.attr_str(NFTA_TABLE_NAME, TABLE);
    be32(&mut t, NFTA_TABLE_FLAGS, 0);
    if let Some(c) = comment.filter(|c| c.len() <= TABLE_COMMENT_MAX) {
        t.attr(NFTA_TABLE_USERDATA, &comment_userdata(c));
    }
    out.push(req(t, format!("add table inet {TABLE}")));
    for c in &want.chains {
        out.push(req(
            new_chain(c),
            format!("add chain inet {TABLE} {}", c.name),
        ));
    }
    for (i, s) in want.sets.iter().enumerate() {
        out.push(req(
            new_set(s, i as u32 + 1),
            format!("add set inet {TABLE} {}", s.name),
        ));
    }
    for c in &want.chains {
        for r in &c.rules {
            out.push(req(
                new_rule(want, &c.name, r, tag),
                format!("add rule inet {TABLE} {} {r}", c.name),
            ));
        }
    }
    out
}

/// Flush (empty) sets, e.g. a dead WAN's sticky sets.
pub fn flush_set_requests(sets: &[String]) -> Vec<Request> {
    sets.iter()
        .map(|s| {
            let mut m = nft_msg(NFT_MSG_DELSETELEM, 0);
            m.attr_str(NFTA_SET_ELEM_LIST_SET, s);
            m.attr_str(NFTA_SET_ELEM_LIST_TABLE, TABLE);
            req(m, format!("flush set inet {TABLE} {s}"))
        })
        .collect()
}

pub fn delete_table_request() -> Request {
    let mut m = nft_msg(NFT_MSG_DELTABLE, 0);
    m.attr_str(NFTA_TABLE_NAME, TABLE);
    req(m, format!("delete table inet {TABLE}"))
}

/// The bytes of a transaction as `nft` would send them (BEGIN, requests
/// without NLM_F_ACK, END; seq from 0, pid 0): for golden comparisons.
pub fn transaction_bytes(reqs: &[Request]) -> Vec<u8> {
    let marker = |ty: u16| {
        let mut m = MsgBuilder::new(ty, socket::NLM_F_REQUEST);
        m.bytes(&[0, 0, 0, NFNL_SUBSYS_NFTABLES as u8]);
        m
    };
    let mut out = marker(0x10).finish(0, 0);
    for (i, r) in reqs.iter().enumerate() {
        let mut bytes = r.msg.request_bytes(i as u32 + 1);
        let flags = u16::from_ne_bytes([bytes[6], bytes[7]]) & !socket::NLM_F_ACK;
        bytes[6..8].copy_from_slice(&flags.to_ne_bytes());
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(&marker(0x11).finish(reqs.len() as u32 + 1, 0));
    out
}
