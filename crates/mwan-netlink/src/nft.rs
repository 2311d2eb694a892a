//! nftables table `inet mwan` through nf_tables netlink (NETLINK_NETFILTER).
//!
//! [`encode`] turns the pure [`NftTable`] from `mwan_core::plan::nft` into
//! nf_tables messages, byte for byte what `nft -f` sends for the same text
//! (golden tests below and in integration/tests/dataplane_nft.rs). [`Nft`]
//! sends them as ONE nfnetlink transaction, so a replacement is atomic:
//!
//! - rules of every chain we find are flushed, chains and sets that are no
//!   longer wanted (or whose definition changed) are deleted, then table,
//!   chains, sets and rules are (re)created;
//! - sets that stay are never deleted, so sticky entries and the elements
//!   dnsmasq put into user sets survive a config reload.
//!
//! Only table `inet mwan` is ever touched; mwand never runs `nft`.

use mwan_core::config::Family;
use mwan_core::plan::nft::{
    Action, BaseChain, ChainKind, Dir, Hook, Match, NftChain, NftRule, NftSet, NftTable, SetKind,
    Verdict, TABLE,
};
use neli::consts::socket::NlFamily;

use crate::error::{KernelError, NetlinkError};
use crate::socket::{self, attr_str, attr_u32, attrs, nested, MsgBuilder, RawMsg, Request, Socket};

pub const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// nfgenmsg family of an `inet` table.
pub const NFPROTO_INET: u8 = 1;

const NFT_MSG_NEWTABLE: u16 = 0;
/// `socket cgroupv2`: the id of the socket's cgroup at a given level.
const NFT_SOCKET_CGROUPV2: u32 = 3;
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFT_MSG_DELCHAIN: u16 = 5;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_GETRULE: u16 = 7;
const NFT_MSG_DELRULE: u16 = 8;
const NFT_MSG_NEWSET: u16 = 9;
const NFT_MSG_GETSET: u16 = 10;
const NFT_MSG_DELSET: u16 = 11;
const NFT_MSG_DELSETELEM: u16 = 14;

const NLM_F_APPEND: u16 = 0x800;

// Attributes.
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_FLAGS: u16 = 2;
/// Free-form bytes kept with the table (Linux >= 5.13; older kernels ignore
/// the attribute). nft reads them as libnftnl TLVs (type u8, length u8,
/// value): type 0 is the table's comment.
const NFTA_TABLE_USERDATA: u16 = 6;
const UDATA_TABLE_COMMENT: u8 = 0;
/// nft refuses longer comments (NFT_USERDATA_MAXLEN / 2), so stay below.
pub const TABLE_COMMENT_MAX: usize = 127;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_USERDATA: u16 = 7;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_KEY_TYPE: u16 = 4;
const NFTA_SET_KEY_LEN: u16 = 5;
const NFTA_SET_ID: u16 = 10;
const NFTA_SET_TIMEOUT: u16 = 11;
const NFTA_SET_USERDATA: u16 = 13;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;

const NFT_SET_INTERVAL: u32 = 0x4;
const NFT_SET_TIMEOUT: u32 = 0x10;
const NFT_SET_EVAL: u32 = 0x20;
/// nft's datatype ids for the key.
const TYPE_IPV4_ADDR: u32 = 7;
const TYPE_IPV6_ADDR: u32 = 8;
/// NFTNL_UDATA_SET_KEYBYTEORDER = big endian, as nft writes it, so `nft
/// list` prints our keys as addresses. libnftnl stores the value as a u32
/// in host order (a big-endian router needs 0, 0, 0, 2).
const SET_USERDATA: [u8; 6] = {
    let order = 2u32.to_ne_bytes();
    [0, 4, order[0], order[1], order[2], order[3]]
};

const NFT_REG_1: u32 = 1;
const NFT_REG_VERDICT: u32 = 0;
const NFT_RETURN: i32 = -5;
const NFT_GOTO: i32 = -4;
const NFT_JUMP: i32 = -3;
const NF_ACCEPT: u32 = 1;

const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;
const NFT_CMP_LTE: u32 = 3;
const NFT_CMP_GTE: u32 = 5;

const NFT_META_MARK: u32 = 3;
const NFT_META_IIFNAME: u32 = 6;
const NFT_META_OIFNAME: u32 = 7;
const NFT_META_NFPROTO: u32 = 15;
const NFT_META_L4PROTO: u32 = 16;
const NFT_CT_MARK: u32 = 3;
const NFT_PAYLOAD_NETWORK: u32 = 1;
const NFT_PAYLOAD_TRANSPORT: u32 = 2;
const NFT_DYNSET_OP_UPDATE: u32 = 1;
const IFNAMSIZ: usize = 16;

fn nft_type(msg: u16) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | msg
}

/// A message of table family `inet` with nfgenmsg.
fn nft_msg(msg: u16, flags: u16) -> MsgBuilder {
    let mut m = MsgBuilder::new(nft_type(msg), flags);
    m.bytes(&[NFPROTO_INET, 0, 0, 0]);
    m
}

fn be32(m: &mut MsgBuilder, ty: u16, v: u32) {
    m.attr(ty, &v.to_be_bytes());
}

/// One expression: `{ NAME, DATA { ... } }` in the rule's list.
fn expr(m: &mut MsgBuilder, name: &str, body: impl FnOnce(&mut MsgBuilder)) {
    let elem = m.begin_nested(nested(NFTA_LIST_ELEM));
    m.attr_str(NFTA_EXPR_NAME, name);
    let data = m.begin_nested(nested(NFTA_EXPR_DATA));
    body(m);
    m.end_nested(data);
    m.end_nested(elem);
}

/// `{ type: { NFTA_DATA_VALUE: bytes } }`
fn data_value(m: &mut MsgBuilder, ty: u16, value: &[u8]) {
    let at = m.begin_nested(nested(ty));
    m.attr(1, value);
    m.end_nested(at);
}

/// A `meta` or `ct` expression reading `key` into, or writing it from,
/// register 1. `reg_attr`: NFTA_META_DREG = NFTA_CT_DREG = 1 to load,
/// NFTA_META_SREG = 3 / NFTA_CT_SREG = 4 to store.
fn key_expr(m: &mut MsgBuilder, name: &str, key: u32, reg_attr: u16) {
    expr(m, name, |m| {
        be32(m, 2, key); // NFTA_META_KEY = NFTA_CT_KEY
        be32(m, reg_attr, NFT_REG_1);
    });
}

fn meta_load(m: &mut MsgBuilder, key: u32) {
    key_expr(m, "meta", key, 1);
}

fn meta_store(m: &mut MsgBuilder, key: u32) {
    key_expr(m, "meta", key, 3);
}

fn ct_load(m: &mut MsgBuilder, key: u32) {
    key_expr(m, "ct", key, 1);
}

fn ct_store(m: &mut MsgBuilder, key: u32) {
    key_expr(m, "ct", key, 4);
}

fn cmp(m: &mut MsgBuilder, op: u32, value: &[u8]) {
    expr(m, "cmp", |m| {
        be32(m, 1, NFT_REG_1); // NFTA_CMP_SREG
        be32(m, 2, op); // NFTA_CMP_OP
        data_value(m, 3, value); // NFTA_CMP_DATA
    });
}

/// `reg = reg & mask ^ xor`. nft sends NFTA_BITWISE_OP (boolean) for `&`/`|`
/// expressions but not for the mask of a prefix match; we do the same.
fn bitwise(m: &mut MsgBuilder, mask: &[u8], xor: &[u8], with_op: bool) {
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

fn payload(m: &mut MsgBuilder, base: u32, offset: u32, len: u32) {
    expr(m, "payload", |m| {
        be32(m, 1, NFT_REG_1); // DREG
        be32(m, 2, base);
        be32(m, 3, offset);
        be32(m, 4, len);
    });
}

fn verdict(m: &mut MsgBuilder, code: i32, chain: Option<&str>) {
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

fn addr_offset(family: Family, dir: Dir) -> (u32, u32) {
    match (family, dir) {
        (Family::Ipv4, Dir::Src) => (12, 4),
        (Family::Ipv4, Dir::Dst) => (16, 4),
        (Family::Ipv6, Dir::Src) => (8, 16),
        (Family::Ipv6, Dir::Dst) => (24, 16),
    }
}

fn ip_bytes(addr: std::net::IpAddr) -> Vec<u8> {
    match addr {
        std::net::IpAddr::V4(a) => a.octets().to_vec(),
        std::net::IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn family_of(addr: std::net::IpAddr) -> Family {
    mwan_core::plan::family_of(addr)
}

fn ifname(name: &str) -> [u8; IFNAMSIZ] {
    let mut b = [0u8; IFNAMSIZ];
    let n = name.len().min(IFNAMSIZ - 1);
    b[..n].copy_from_slice(&name.as_bytes()[..n]);
    b
}

/// Position of a set in the batch's NEWSETs: its NFTA_SET_ID.
fn set_id(table: &NftTable, name: &str) -> Option<u32> {
    table
        .sets
        .iter()
        .position(|s| s.name == name)
        .map(|i| i as u32 + 1)
}

fn encode_match(m: &mut MsgBuilder, table: &NftTable, x: &Match) {
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

fn encode_action(m: &mut MsgBuilder, table: &NftTable, a: &Action) {
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

fn new_rule(table: &NftTable, chain: &str, rule: &NftRule, tag: Option<&str>) -> MsgBuilder {
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

fn hook_number(h: Hook) -> u32 {
    match h {
        Hook::Prerouting => libc::NF_INET_PRE_ROUTING as u32,
        Hook::Output => libc::NF_INET_LOCAL_OUT as u32,
        Hook::Postrouting => libc::NF_INET_POST_ROUTING as u32,
    }
}

fn chain_type(k: ChainKind) -> &'static str {
    match k {
        ChainKind::Filter => "filter",
        ChainKind::Route => "route",
    }
}

fn new_chain(chain: &NftChain) -> MsgBuilder {
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

fn set_flags(kind: SetKind) -> u32 {
    match kind {
        SetKind::Sticky { .. } => NFT_SET_TIMEOUT | NFT_SET_EVAL,
        SetKind::User => NFT_SET_INTERVAL,
    }
}

fn key_type(f: Family) -> (u32, u32) {
    match f {
        Family::Ipv4 => (TYPE_IPV4_ADDR, 4),
        Family::Ipv6 => (TYPE_IPV6_ADDR, 16),
    }
}

fn new_set(set: &NftSet, id: u32) -> MsgBuilder {
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

fn named(msg: u16, name_attr: u16, name: &str) -> MsgBuilder {
    let mut m = nft_msg(msg, 0);
    m.attr_str(1, TABLE); // NFTA_*_TABLE
    m.attr_str(name_attr, name);
    m
}

fn req(msg: MsgBuilder, what: String) -> Request {
    Request { msg, what }
}

// ---------------------------------------------------------------- observed

/// What a dump of table `inet mwan` shows: enough to plan a replacement
/// and to notice that someone deleted or emptied our table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub chains: Vec<ObservedChain>,
    pub sets: Vec<ObservedSet>,
    /// The [`plan_tag`] every rule carries as its comment (None when the
    /// table has no rule, or rules carry none or different ones): proof
    /// that the rules' content is that of the table the tag was made of.
    pub plan_tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedChain {
    pub name: String,
    /// (type, hook number, priority) of a base chain.
    pub base: Option<(String, u32, i32)>,
    pub rules: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedSet {
    pub name: String,
    pub flags: u32,
    pub key_type: u32,
    pub key_len: u32,
    pub timeout_ms: Option<u64>,
}

fn base_of(b: &BaseChain) -> (String, u32, i32) {
    (
        chain_type(b.kind).to_string(),
        hook_number(b.hook),
        b.priority,
    )
}

impl ObservedSet {
    /// Does the kernel's set have the definition we want? If not, it is
    /// deleted and recreated (losing its elements: the definition changed).
    pub fn matches(&self, want: &NftSet) -> bool {
        let (ty, len) = key_type(want.family);
        let timeout = match want.kind {
            SetKind::Sticky { timeout_s } => Some(u64::from(timeout_s) * 1000),
            SetKind::User => None,
        };
        // The kernel may add flags of its own (e.g. NFT_SET_EVAL is kept;
        // nothing else is added today): compare ours only.
        let ours = NFT_SET_INTERVAL | NFT_SET_TIMEOUT | NFT_SET_EVAL;
        self.name == want.name
            && self.flags & ours == set_flags(want.kind)
            && self.key_type == ty
            && self.key_len == len
            && self.timeout_ms == timeout
    }
}

/// How the kernel's table differs from the one we want (for reconcile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    None,
    TableMissing,
    /// Chains missing, with the wrong hook, or with a different number of
    /// rules; sets missing or redefined. Each entry says what.
    Changed(Vec<String>),
}

impl Observed {
    /// What the kernel's dumps of chains, rules and sets say about table
    /// `inet mwan`; messages of other tables are skipped (pure, so the
    /// fuzzer reaches it).
    pub fn from_dumps(chains: &[RawMsg], rules: &[RawMsg], sets: &[RawMsg]) -> Observed {
        let mut obs = Observed::default();
        for msg in chains {
            let a = attrs(&msg.payload, 4);
            let get = |t: u16| a.iter().find(|(ty, _)| *ty == t).map(|(_, p)| *p);
            if get(NFTA_CHAIN_TABLE).map(attr_str).as_deref() != Some(TABLE)
                || msg.payload.first() != Some(&NFPROTO_INET)
            {
                continue;
            }
            let name = get(NFTA_CHAIN_NAME).map(attr_str).unwrap_or_default();
            let base = get(NFTA_CHAIN_HOOK).map(|h| {
                let ha = attrs(h, 0);
                let hv = |t: u16| {
                    ha.iter()
                        .find(|(ty, _)| *ty == t)
                        .and_then(|(_, p)| attr_u32(p))
                        .map(u32::from_be)
                        .unwrap_or(0)
                };
                (
                    get(NFTA_CHAIN_TYPE).map(attr_str).unwrap_or_default(),
                    hv(NFTA_HOOK_HOOKNUM),
                    hv(NFTA_HOOK_PRIORITY) as i32,
                )
            });
            obs.chains.push(ObservedChain {
                name,
                base,
                rules: 0,
            });
        }
        // Some(tag) while every rule so far carries that same tag.
        let mut tags: Option<Option<String>> = None;
        for msg in rules {
            let a = attrs(&msg.payload, 4);
            let get = |t: u16| a.iter().find(|(ty, _)| *ty == t).map(|(_, p)| attr_str(p));
            if get(NFTA_RULE_TABLE).as_deref() != Some(TABLE) {
                continue;
            }
            let chain = get(NFTA_RULE_CHAIN).unwrap_or_default();
            if let Some(c) = obs.chains.iter_mut().find(|c| c.name == chain) {
                c.rules += 1;
            }
            let tag = a
                .iter()
                .find(|(ty, _)| *ty == NFTA_RULE_USERDATA)
                .and_then(|(_, p)| parse_table_comment(p));
            tags = match tags {
                None => Some(tag),
                Some(seen) if seen == tag => Some(seen),
                Some(_) => Some(None),
            };
        }
        obs.plan_tag = tags.flatten();
        for msg in sets {
            let a = attrs(&msg.payload, 4);
            let get = |t: u16| a.iter().find(|(ty, _)| *ty == t).map(|(_, p)| *p);
            if get(NFTA_SET_TABLE).map(attr_str).as_deref() != Some(TABLE) {
                continue;
            }
            let u = |t: u16| get(t).and_then(attr_u32).map(u32::from_be).unwrap_or(0);
            obs.sets.push(ObservedSet {
                name: get(NFTA_SET_NAME).map(attr_str).unwrap_or_default(),
                flags: u(NFTA_SET_FLAGS),
                key_type: u(NFTA_SET_KEY_TYPE),
                key_len: u(NFTA_SET_KEY_LEN),
                timeout_ms: get(NFTA_SET_TIMEOUT)
                    .and_then(|p| p.get(..8))
                    .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes"))),
            });
        }
        obs
    }
}

/// Compare a dump with the wanted table. Rule contents are not compared
/// (the count is): our own replacement is the only writer we expect.
pub fn drift(want: &NftTable, observed: Option<&Observed>) -> Drift {
    let Some(obs) = observed else {
        return Drift::TableMissing;
    };
    let mut what = Vec::new();
    for c in &want.chains {
        match obs.chains.iter().find(|o| o.name == c.name) {
            None => what.push(format!("chain {} missing", c.name)),
            Some(o) => {
                if o.base != c.base.as_ref().map(base_of) {
                    what.push(format!("chain {} has another hook", c.name));
                }
                if o.rules != c.rules.len() {
                    what.push(format!(
                        "chain {} has {} rules, expected {}",
                        c.name,
                        o.rules,
                        c.rules.len()
                    ));
                }
            }
        }
    }
    for s in &want.sets {
        match obs.sets.iter().find(|o| o.name == s.name) {
            None => what.push(format!("set {} missing", s.name)),
            Some(o) if !o.matches(s) => what.push(format!("set {} redefined", s.name)),
            Some(_) => {}
        }
    }
    for o in &obs.chains {
        if want.chain(&o.name).is_none() {
            what.push(format!("chain {} is not ours", o.name));
        }
    }
    if what.is_empty() {
        Drift::None
    } else {
        Drift::Changed(what)
    }
}

// ---------------------------------------------------------------- batches

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
fn replace_requests_tagged(
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

/// The table's userdata for a comment: libnftnl's TLV, NUL-terminated.
fn comment_userdata(comment: &str) -> Vec<u8> {
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

/// [`create_requests`] with a comment in the table (at most
/// [`TABLE_COMMENT_MAX`] bytes; a longer one is left out).
pub fn create_requests_commented(want: &NftTable, comment: Option<&str>) -> Vec<Request> {
    create_requests_tagged(want, comment, None)
}

fn create_requests_tagged(
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

// ---------------------------------------------------------------- socket

/// The nf_tables side of mwand: one NETLINK_NETFILTER socket.
pub struct Nft {
    sock: Socket,
    /// The table this socket last installed: [`Nft::ensure`] replaces when
    /// the wanted table differs from it (a config change of the same shape
    /// has the same chains, sets and rule counts, which a dump compares).
    applied: Option<NftTable>,
    /// Stored in the table whenever this socket creates it.
    comment: Option<String>,
}

/// Did a replacement happen, and with how many messages?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplaceReport {
    pub messages: usize,
    pub rules: usize,
}

impl Nft {
    pub fn open() -> Result<Self, NetlinkError> {
        Ok(Nft {
            sock: Socket::open(NlFamily::Netfilter, &[])?,
            applied: None,
            comment: None,
        })
    }

    /// A comment to store in table `inet mwan` whenever this socket creates
    /// it (`nft list table` shows it): state that must outlive a crash of
    /// mwand lives with the kernel object it belongs to. An existing table
    /// keeps the comment it was created with.
    pub fn set_table_comment(&mut self, comment: &str) -> Result<(), NetlinkError> {
        if comment.len() > TABLE_COMMENT_MAX {
            return Err(NetlinkError::Malformed(format!(
                "table comment of {} bytes: expected at most {TABLE_COMMENT_MAX}",
                comment.len()
            )));
        }
        self.comment = Some(comment.to_string());
        Ok(())
    }

    /// The comment of table `inet mwan` in the kernel; None when the table
    /// or its comment is missing.
    pub fn table_comment(&mut self) -> Result<Option<String>, NetlinkError> {
        let msgs = self.sock.dump(
            &nft_msg(NFT_MSG_GETTABLE, 0),
            "dump nf_tables tables (inet)",
        )?;
        for msg in msgs {
            let a = attrs(&msg.payload, 4);
            let get = |t: u16| a.iter().find(|(ty, _)| *ty == t).map(|(_, p)| *p);
            if msg.payload.first() == Some(&NFPROTO_INET)
                && get(NFTA_TABLE_NAME).map(attr_str).as_deref() == Some(TABLE)
            {
                return Ok(get(NFTA_TABLE_USERDATA).and_then(parse_table_comment));
            }
        }
        Ok(None)
    }

    fn dump(&mut self, msg: u16, what: &str) -> Result<Vec<socket::RawMsg>, NetlinkError> {
        let mut m = nft_msg(msg, 0);
        // Kernels filter set and rule dumps by table; chains we filter here.
        m.attr_str(1, TABLE);
        self.sock.dump(&m, what)
    }

    /// Dump table `inet mwan`: `None` if it does not exist.
    pub fn observe(&mut self) -> Result<Option<Observed>, NetlinkError> {
        let mut get = nft_msg(NFT_MSG_GETTABLE, 0);
        get.attr_str(NFTA_TABLE_NAME, TABLE);
        match self
            .sock
            .request(&get, "get table inet mwan", socket::Tolerate::Nothing)
        {
            Ok(()) => {}
            Err(NetlinkError::Kernel(e)) if e.errno == libc::ENOENT => return Ok(None),
            Err(e) => return Err(e),
        }
        let chains = self.dump(NFT_MSG_GETCHAIN, "dump chains of inet mwan")?;
        let rules = self.dump(NFT_MSG_GETRULE, "dump rules of inet mwan")?;
        let sets = self.dump(NFT_MSG_GETSET, "dump sets of inet mwan")?;
        Ok(Some(Observed::from_dumps(&chains, &rules, &sets)))
    }

    /// Replace the table's content by `want` in one transaction: all or
    /// nothing. Sets that keep their definition keep their elements.
    pub fn replace(&mut self, want: &NftTable) -> Result<ReplaceReport, NetlinkError> {
        let observed = self.observe()?;
        self.replace_observed(want, observed.as_ref(), None)
    }

    /// `tag`: the [`plan_tag`] every rule carries ([`Nft::ensure`]); None
    /// sends exactly what `nft -f` would.
    fn replace_observed(
        &mut self,
        want: &NftTable,
        observed: Option<&Observed>,
        tag: Option<&str>,
    ) -> Result<ReplaceReport, NetlinkError> {
        let reqs = replace_requests_tagged(want, observed, self.comment.as_deref(), tag);
        self.applied = None;
        self.sock.transaction(NFNL_SUBSYS_NFTABLES, &reqs)?;
        self.applied = Some(want.clone());
        Ok(ReplaceReport {
            messages: reqs.len(),
            rules: want.rule_count(),
        })
    }

    /// Reconcile: replace if `want` is not what this socket installed last
    /// (config change) or if the kernel's table drifted from it (deleted,
    /// chains flushed, sets redefined); otherwise send nothing. On the first
    /// call (a restarted mwand) a table whose rules carry `want`'s
    /// [`plan_tag`] and that shows no drift is adopted as it is: nothing is
    /// written and the sets keep their elements.
    pub fn ensure(&mut self, want: &NftTable) -> Result<Option<ReplaceReport>, NetlinkError> {
        let observed = self.observe()?;
        let known = match &self.applied {
            Some(applied) => applied == want,
            None => observed
                .as_ref()
                .and_then(|o| o.plan_tag.as_deref())
                .is_some_and(|t| t == plan_tag(want)),
        };
        if known && drift(want, observed.as_ref()) == Drift::None {
            self.applied = Some(want.clone());
            return Ok(None);
        }
        let tag = plan_tag(want);
        self.replace_observed(want, observed.as_ref(), Some(&tag))
            .map(Some)
    }

    /// Empty sets (a dead WAN's sticky sets), in one transaction. A set that
    /// does not exist is an error naming it (the caller's table is stale).
    pub fn flush_sets(&mut self, sets: &[String]) -> Result<(), NetlinkError> {
        if sets.is_empty() {
            return Ok(());
        }
        self.sock
            .transaction(NFNL_SUBSYS_NFTABLES, &flush_set_requests(sets))
    }

    /// Remove table `inet mwan` (stop). Absent already is success.
    pub fn delete_table(&mut self) -> Result<(), NetlinkError> {
        self.applied = None;
        match self
            .sock
            .transaction(NFNL_SUBSYS_NFTABLES, &[delete_table_request()])
        {
            Err(NetlinkError::Kernel(KernelError { errno, .. })) if errno == libc::ENOENT => Ok(()),
            other => other,
        }
    }
}

impl Nft {
    /// This socket's netlink port id: nf_tables stamps the notifications of
    /// our own transactions with it ([`NftWatch::ignore_changes_by`]).
    pub fn pid(&self) -> u32 {
        self.sock.pid()
    }
}

/// nf_tables multicast group (NFNLGRP_NFTABLES).
const NFNLGRP_NFTABLES: u32 = 7;
const NFT_MSG_NEWGEN: u16 = 16;

/// Notifications of changes to table `inet mwan` made by someone else (an
/// admin's `nft`, an `fw4` reload that flushed the ruleset): mwand puts the
/// socket in its poll set and runs [`Nft::ensure`] when [`NftWatch::read`]
/// says so, instead of waiting for the periodic reconcile.
pub struct NftWatch {
    sock: Socket,
    ignore_pid: Option<u32>,
}

impl NftWatch {
    pub fn subscribe() -> Result<Self, NetlinkError> {
        let sock = Socket::open(NlFamily::Netfilter, &[NFNLGRP_NFTABLES])?;
        sock.set_nonblocking()?;
        Ok(NftWatch {
            sock,
            ignore_pid: None,
        })
    }

    /// Skip notifications caused by the socket with this port id ([`Nft::pid`]).
    pub fn ignore_changes_by(&mut self, pid: u32) {
        self.ignore_pid = Some(pid);
    }

    /// Drain what is queued; true if someone else changed table `inet
    /// mwan` (or events were lost, so it may have). Returns at once.
    pub fn read(&mut self) -> Result<bool, NetlinkError> {
        let mut touched = false;
        loop {
            match self.sock.recv() {
                Ok(msgs) => touched |= msgs.iter().any(|m| concerns_our_table(m, self.ignore_pid)),
                Err(NetlinkError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::WouldBlock =>
                {
                    return Ok(touched)
                }
                Err(NetlinkError::Overrun) => touched = true,
                Err(e) => return Err(e),
            }
        }
    }
}

/// A notification of a change to table `inet mwan` not made by `ignore_pid`.
pub fn concerns_our_table(m: &RawMsg, ignore_pid: Option<u32>) -> bool {
    if m.msg_type >> 8 != NFNL_SUBSYS_NFTABLES
        || m.msg_type & 0xff == NFT_MSG_NEWGEN
        || m.payload.first() != Some(&NFPROTO_INET)
        || ignore_pid.is_some_and(|p| p != 0 && p == m.pid)
    {
        return false;
    }
    // Attribute 1 names the table in table, chain, rule, set and set
    // element messages alike.
    attrs(&m.payload, 4)
        .iter()
        .any(|(t, p)| *t == 1 && attr_str(p) == TABLE)
}

impl std::os::fd::AsRawFd for NftWatch {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.sock.as_raw_fd()
    }
}

#[cfg(test)]
mod tests;
