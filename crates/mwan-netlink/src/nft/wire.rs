//! nf_tables numbers (linux/netfilter/nf_tables.h) and the message header
//! every request starts with.

use crate::socket::MsgBuilder;

pub const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// nfgenmsg family of an `inet` table.
pub const NFPROTO_INET: u8 = 1;

pub(super) const NFT_MSG_NEWTABLE: u16 = 0;
/// `socket cgroupv2`: the id of the socket's cgroup at a given level.
pub(super) const NFT_SOCKET_CGROUPV2: u32 = 3;
pub(super) const NFT_MSG_GETTABLE: u16 = 1;
pub(super) const NFT_MSG_DELTABLE: u16 = 2;
pub(super) const NFT_MSG_NEWCHAIN: u16 = 3;
pub(super) const NFT_MSG_GETCHAIN: u16 = 4;
pub(super) const NFT_MSG_DELCHAIN: u16 = 5;
pub(super) const NFT_MSG_NEWRULE: u16 = 6;
pub(super) const NFT_MSG_GETRULE: u16 = 7;
pub(super) const NFT_MSG_DELRULE: u16 = 8;
pub(super) const NFT_MSG_NEWSET: u16 = 9;
pub(super) const NFT_MSG_GETSET: u16 = 10;
pub(super) const NFT_MSG_DELSET: u16 = 11;
pub(super) const NFT_MSG_DELSETELEM: u16 = 14;

pub(super) const NLM_F_APPEND: u16 = 0x800;

// Attributes.
pub(super) const NFTA_TABLE_NAME: u16 = 1;
pub(super) const NFTA_TABLE_FLAGS: u16 = 2;
/// Free-form bytes kept with the table (Linux >= 5.13; older kernels ignore
/// the attribute). nft reads them as libnftnl TLVs (type u8, length u8,
/// value): type 0 is the table's comment.
pub(super) const NFTA_TABLE_USERDATA: u16 = 6;
pub(super) const UDATA_TABLE_COMMENT: u8 = 0;
/// nft refuses longer comments (NFT_USERDATA_MAXLEN / 2), so stay below.
pub const TABLE_COMMENT_MAX: usize = 127;
pub(super) const NFTA_CHAIN_TABLE: u16 = 1;
pub(super) const NFTA_CHAIN_NAME: u16 = 3;
pub(super) const NFTA_CHAIN_HOOK: u16 = 4;
pub(super) const NFTA_CHAIN_POLICY: u16 = 5;
pub(super) const NFTA_CHAIN_TYPE: u16 = 7;
pub(super) const NFTA_HOOK_HOOKNUM: u16 = 1;
pub(super) const NFTA_HOOK_PRIORITY: u16 = 2;
pub(super) const NFTA_RULE_TABLE: u16 = 1;
pub(super) const NFTA_RULE_CHAIN: u16 = 2;
pub(super) const NFTA_RULE_EXPRESSIONS: u16 = 4;
pub(super) const NFTA_RULE_USERDATA: u16 = 7;
pub(super) const NFTA_LIST_ELEM: u16 = 1;
pub(super) const NFTA_EXPR_NAME: u16 = 1;
pub(super) const NFTA_EXPR_DATA: u16 = 2;
pub(super) const NFTA_SET_TABLE: u16 = 1;
pub(super) const NFTA_SET_NAME: u16 = 2;
pub(super) const NFTA_SET_FLAGS: u16 = 3;
pub(super) const NFTA_SET_KEY_TYPE: u16 = 4;
pub(super) const NFTA_SET_KEY_LEN: u16 = 5;
pub(super) const NFTA_SET_ID: u16 = 10;
pub(super) const NFTA_SET_TIMEOUT: u16 = 11;
pub(super) const NFTA_SET_USERDATA: u16 = 13;
pub(super) const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
pub(super) const NFTA_SET_ELEM_LIST_SET: u16 = 2;

pub(super) const NFT_SET_INTERVAL: u32 = 0x4;
pub(super) const NFT_SET_TIMEOUT: u32 = 0x10;
pub(super) const NFT_SET_EVAL: u32 = 0x20;
/// nft's datatype ids for the key.
pub(super) const TYPE_IPV4_ADDR: u32 = 7;
pub(super) const TYPE_IPV6_ADDR: u32 = 8;
/// NFTNL_UDATA_SET_KEYBYTEORDER = big endian, as nft writes it, so `nft
/// list` prints our keys as addresses. libnftnl stores the value as a u32
/// in host order (a big-endian router needs 0, 0, 0, 2).
pub(super) const SET_USERDATA: [u8; 6] = {
    let order = 2u32.to_ne_bytes();
    [0, 4, order[0], order[1], order[2], order[3]]
};

pub(super) const NFT_REG_1: u32 = 1;
pub(super) const NFT_REG_VERDICT: u32 = 0;
pub(super) const NFT_RETURN: i32 = -5;
pub(super) const NFT_GOTO: i32 = -4;
pub(super) const NFT_JUMP: i32 = -3;
pub(super) const NF_ACCEPT: u32 = 1;

pub(super) const NFT_CMP_EQ: u32 = 0;
pub(super) const NFT_CMP_NEQ: u32 = 1;
pub(super) const NFT_CMP_LTE: u32 = 3;
pub(super) const NFT_CMP_GTE: u32 = 5;

pub(super) const NFT_META_MARK: u32 = 3;
pub(super) const NFT_META_IIFNAME: u32 = 6;
pub(super) const NFT_META_OIFNAME: u32 = 7;
pub(super) const NFT_META_NFPROTO: u32 = 15;
pub(super) const NFT_META_L4PROTO: u32 = 16;
pub(super) const NFT_CT_MARK: u32 = 3;
pub(super) const NFT_PAYLOAD_NETWORK: u32 = 1;
pub(super) const NFT_PAYLOAD_TRANSPORT: u32 = 2;
pub(super) const NFT_DYNSET_OP_UPDATE: u32 = 1;
pub(super) const IFNAMSIZ: usize = 16;

pub(super) fn nft_type(msg: u16) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | msg
}

/// A message of table family `inet` with nfgenmsg.
pub(super) fn nft_msg(msg: u16, flags: u16) -> MsgBuilder {
    let mut m = MsgBuilder::new(nft_type(msg), flags);
    m.bytes(&[NFPROTO_INET, 0, 0, 0]);
    m
}

pub(super) fn be32(m: &mut MsgBuilder, ty: u16, v: u32) {
    m.attr(ty, &v.to_be_bytes());
}
