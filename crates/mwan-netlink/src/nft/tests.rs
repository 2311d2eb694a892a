//! Golden bytes: `golden/nft-*.hex` (at the crate's root) hold what `nft -f` (nftables 1.0.6) sent for
//! the text our renderer prints for [`sample`] (captured with
//! `strace -e trace=sendmsg -e write=all` in a throwaway netns; the recipe is
//! in docs/dataplane-nft.md). Our encoder must produce the same bytes, with
//! only NLM_F_ACK (we ask for ACKs, nft polls for errors) masked.
//! integration/tests/dataplane_nft.rs repeats the comparison live.

use super::*;
use mwan_core::config::Family;
use mwan_core::plan::nft::{
    Action, ChainKind, Dir, Hook, Match, NftChain, NftRule, NftSet, NftTable, SetKind, Verdict,
};

use crate::socket::{self, attr_str, attrs};
use messages::{key_type, set_flags};
use observed::base_of;
#[path = "../../golden/host_order.rs"]
mod host_order;
use mwan_core::config::{IpNet, MaskedIp, PortRange};
use mwan_core::plan::nft::{BaseChain, MANGLE_PRIORITY};

fn r(matches: Vec<Match>, actions: Vec<Action>, verdict: Option<Verdict>) -> NftRule {
    NftRule {
        matches,
        actions,
        verdict,
    }
}

/// Every kind of match, action, verdict, chain and set the planner emits.
pub fn sample() -> NftTable {
    let mask = 0x3f00;
    let base = |kind, hook| {
        Some(BaseChain {
            kind,
            hook,
            priority: MANGLE_PRIORITY,
        })
    };
    let net = |s: &str, len| IpNet {
        addr: s.parse().unwrap(),
        prefix_len: len,
    };
    NftTable {
        sets: vec![
            NftSet {
                name: "sticky_p_wan1".into(),
                family: Family::Ipv4,
                kind: SetKind::Sticky { timeout_s: 600 },
            },
            NftSet {
                name: "sticky_p_wan6".into(),
                family: Family::Ipv6,
                kind: SetKind::Sticky { timeout_s: 30 },
            },
            NftSet {
                name: "video".into(),
                family: Family::Ipv4,
                kind: SetKind::User,
            },
        ],
        chains: vec![
            NftChain {
                name: "prerouting".into(),
                base: base(ChainKind::Filter, Hook::Prerouting),
                rules: vec![
                    r(
                        vec![Match::MetaMark {
                            mask,
                            value: 0,
                            equal: false,
                        }],
                        vec![],
                        Some(Verdict::Return),
                    ),
                    r(
                        vec![Match::CtMark {
                            mask,
                            value: 0x200,
                            equal: true,
                        }],
                        vec![Action::SetMetaMark {
                            keep: !mask,
                            value: 0x200,
                        }],
                        Some(Verdict::Return),
                    ),
                    r(
                        vec![Match::NfProto(Family::Ipv4), Match::IifName("eth1".into())],
                        vec![
                            Action::SetCtMark {
                                keep: !mask,
                                value: 0x200,
                            },
                            Action::SetMetaMark {
                                keep: !mask,
                                value: 0x200,
                            },
                        ],
                        Some(Verdict::Return),
                    ),
                    r(vec![], vec![], Some(Verdict::Jump("policy_rules".into()))),
                ],
            },
            NftChain {
                name: "output".into(),
                base: base(ChainKind::Route, Hook::Output),
                rules: vec![r(
                    vec![],
                    vec![],
                    Some(Verdict::Jump("policy_rules".into())),
                )],
            },
            NftChain {
                name: "postrouting".into(),
                base: base(ChainKind::Filter, Hook::Postrouting),
                rules: vec![r(
                    vec![
                        Match::CtMark {
                            mask,
                            value: 0x700,
                            equal: true,
                        },
                        Match::NfProto(Family::Ipv6),
                        Match::OifName("eth1".into()),
                    ],
                    vec![
                        Action::UpdateSetSource {
                            family: Family::Ipv6,
                            set: "sticky_p_wan6".into(),
                        },
                        Action::SetCtMark {
                            keep: !mask,
                            value: 0x400,
                        },
                    ],
                    Some(Verdict::Return),
                )],
            },
            NftChain {
                name: "policy_rules".into(),
                base: None,
                rules: vec![
                    r(
                        vec![
                            Match::NfProto(Family::Ipv4),
                            Match::Prefix {
                                dir: Dir::Src,
                                net: net("192.168.1.0", 24),
                            },
                            Match::Prefix {
                                dir: Dir::Dst,
                                net: net("198.51.100.0", 25),
                            },
                            Match::L4Proto(6),
                            Match::Port {
                                dir: Dir::Dst,
                                range: PortRange {
                                    first: 443,
                                    last: 443,
                                },
                            },
                            Match::Port {
                                dir: Dir::Src,
                                range: PortRange {
                                    first: 1024,
                                    last: 65535,
                                },
                            },
                            Match::IifName("br-lan".into()),
                        ],
                        vec![Action::Log {
                            prefix: "mwan(https) ".into(),
                        }],
                        Some(Verdict::Goto("sticky_r0".into())),
                    ),
                    r(
                        vec![
                            Match::NfProto(Family::Ipv6),
                            Match::Prefix {
                                dir: Dir::Dst,
                                net: net("2001:db8::", 33),
                            },
                            Match::Prefix {
                                dir: Dir::Src,
                                net: net("2001:db8:1::5", 128),
                            },
                        ],
                        vec![],
                        Some(Verdict::Return),
                    ),
                    r(
                        vec![
                            Match::NfProto(Family::Ipv4),
                            Match::Masked {
                                dir: Dir::Src,
                                ip: MaskedIp {
                                    addr: "0.0.0.1".parse().unwrap(),
                                    mask: "0.0.0.1".parse().unwrap(),
                                },
                            },
                            Match::InSet {
                                family: Family::Ipv4,
                                dir: Dir::Dst,
                                set: "video".into(),
                            },
                        ],
                        vec![Action::SetMetaMark {
                            keep: !mask,
                            value: 0x500,
                        }],
                        Some(Verdict::Return),
                    ),
                ],
            },
            NftChain {
                name: "sticky_r0".into(),
                base: None,
                rules: vec![
                    r(
                        vec![
                            Match::NfProto(Family::Ipv4),
                            Match::InSet {
                                family: Family::Ipv4,
                                dir: Dir::Src,
                                set: "sticky_p_wan1".into(),
                            },
                        ],
                        vec![
                            Action::UpdateSetSource {
                                family: Family::Ipv4,
                                set: "sticky_p_wan1".into(),
                            },
                            Action::SetMetaMark {
                                keep: !mask,
                                value: 0x200,
                            },
                        ],
                        Some(Verdict::Return),
                    ),
                    r(
                        vec![],
                        vec![
                            Action::SetMetaMark {
                                keep: !mask,
                                value: 0x700,
                            },
                            Action::SetCtMark {
                                keep: !mask,
                                value: 0x700,
                            },
                        ],
                        None,
                    ),
                ],
            },
        ],
    }
}

/// The table after a config change: one sticky set gone, the user set
/// kept, a chain gone.
pub fn sample_changed() -> NftTable {
    let mut t = sample();
    t.sets.retain(|s| s.name != "sticky_p_wan6");
    t.chains.retain(|c| c.name != "sticky_r0");
    for c in &mut t.chains {
        c.rules
            .retain(|r| r.verdict != Some(Verdict::Goto("sticky_r0".into())));
        for r in &mut c.rules {
            r.actions.retain(
                |a| !matches!(a, Action::UpdateSetSource { set, .. } if set == "sticky_p_wan6"),
            );
        }
    }
    t
}

/// What the kernel shows after [`sample`] was applied.
pub fn observed_sample() -> Observed {
    let t = sample();
    Observed {
        chains: t
            .chains
            .iter()
            .map(|c| ObservedChain {
                name: c.name.clone(),
                base: c.base.as_ref().map(base_of),
                rules: c.rules.len(),
            })
            .collect(),
        sets: t
            .sets
            .iter()
            .map(|s| {
                let (key_type, key_len) = key_type(s.family);
                ObservedSet {
                    name: s.name.clone(),
                    flags: set_flags(s.kind),
                    key_type,
                    key_len,
                    timeout_ms: match s.kind {
                        SetKind::Sticky { timeout_s } => Some(u64::from(timeout_s) * 1000),
                        SetKind::User => None,
                    },
                }
            })
            .collect(),
        plan_tag: None,
    }
}

/// The nft input whose capture is `golden/nft-replace.hex`.
pub fn replace_text() -> String {
    let mut text = String::new();
    for c in &observed_sample().chains {
        text.push_str(&format!("flush chain inet mwan {}\n", c.name));
    }
    text.push_str("delete chain inet mwan sticky_r0\n");
    text.push_str("delete set inet mwan sticky_p_wan6\n");
    text.push_str(&sample_changed().to_string());
    text
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A capture from little-endian x86_64, in this host's byte order.
fn golden(hex: &str) -> Vec<u8> {
    host_order::from_le_capture(&unhex(hex))
}

fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex fixture"))
        .collect()
}

/// Compare message by message so a mismatch names the message.
pub fn assert_same_batch(ours: &[u8], nft: &[u8]) {
    let a = socket::split_messages(ours).expect("ours parses");
    let b = socket::split_messages(nft).expect("nft's parses");
    assert_eq!(a.len(), b.len(), "message count");
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(
            (x.msg_type, x.flags, x.seq, hex(&x.payload)),
            (y.msg_type, y.flags, y.seq, hex(&y.payload)),
            "message {i} differs"
        );
    }
    assert_eq!(hex(ours), hex(nft));
}

/// Blank the set id attribute of every lookup and dynset expression.
fn without_set_ids(bytes: &[u8]) -> Vec<u8> {
    let mut h = hex(bytes);
    // The u32 attribute's header (length 8, type) in host byte order.
    let header = |ty: u16| hex(&[8u16.to_ne_bytes(), ty.to_ne_bytes()].concat());
    for (name, id_attr) in [
        ("6c6f6f6b757000", header(4)), // "lookup", NFTA_LOOKUP_SET_ID
        ("64796e73657400", header(2)), // "dynset", NFTA_DYNSET_SET_ID
    ] {
        let mut from = 0;
        while let Some(at) = h[from..].find(name).map(|i| i + from) {
            let Some(id) = h[at..].find(&id_attr).map(|i| i + at + id_attr.len()) else {
                break;
            };
            h.replace_range(id..id + 8, "00000000");
            from = id;
        }
    }
    unhex(&h)
}

/// Set MWAN_NFT_GOLDEN_TEXT=<dir> to write the nft inputs for a recapture.
fn maybe_write_inputs() {
    if let Ok(dir) = std::env::var("MWAN_NFT_GOLDEN_TEXT") {
        std::fs::write(format!("{dir}/create.nft"), sample().to_string()).unwrap();
        std::fs::write(format!("{dir}/setup.nft"), sample().to_string()).unwrap();
        std::fs::write(format!("{dir}/replace.nft"), replace_text()).unwrap();
    }
}

#[test]
fn create_matches_nft_bytes() {
    maybe_write_inputs();
    let ours = transaction_bytes(&create_requests(&sample()));
    assert_same_batch(&ours, &golden(include_str!("../../golden/nft-create.hex")));
}

#[test]
fn replace_matches_nft_bytes_and_keeps_sets() {
    let reqs = replace_requests(&sample_changed(), Some(&observed_sample()));
    // No surviving set is deleted: only the one that is no longer wanted.
    let deletes: Vec<&str> = reqs
        .iter()
        .filter(|r| r.what.starts_with("delete set"))
        .map(|r| r.what.as_str())
        .collect();
    assert_eq!(deletes, ["delete set inet mwan sticky_p_wan6"]);
    // The kernel finds a set by name first and by NFTA_*_SET_ID only when
    // the set is created in the same batch; for sets it already has in its
    // cache nft numbers ids its own way. Compare everything else.
    let ours = without_set_ids(&transaction_bytes(&reqs));
    let nft = without_set_ids(&golden(include_str!("../../golden/nft-replace.hex")));
    assert_same_batch(&ours, &nft);
}

#[test]
fn flush_and_delete_messages() {
    let f = flush_set_requests(&["sticky_p_wan1".into()]);
    let b = f[0].msg.finish(1, 0);
    // type NFT_MSG_DELSETELEM, SET before TABLE as nft sends them.
    assert_eq!(u16::from_ne_bytes([b[4], b[5]]), 0x0a0e);
    let a = attrs(&b[16..], 4);
    assert_eq!(attr_str(a[0].1), "sticky_p_wan1");
    assert_eq!(attr_str(a[1].1), "mwan");
    let d = delete_table_request().msg.finish(1, 0);
    assert_eq!(u16::from_ne_bytes([d[4], d[5]]), 0x0a02);
}

#[test]
fn redefined_set_is_deleted_and_recreated_others_kept() {
    let mut obs = observed_sample();
    obs.sets[0].timeout_ms = Some(1000);
    let reqs = replace_requests(&sample(), Some(&obs));
    let deletes: Vec<&str> = reqs
        .iter()
        .filter(|r| r.what.starts_with("delete"))
        .map(|r| r.what.as_str())
        .collect();
    assert_eq!(deletes, ["delete set inet mwan sticky_p_wan1"]);
}

#[test]
fn a_table_comment_goes_into_the_new_table_only_and_reads_back() {
    let plain = create_requests(&sample());
    let commented = create_requests_commented(&sample(), Some("hello"));
    assert_eq!(plain.len(), commented.len());
    // Only the NEWTABLE message differs: it carries the libnftnl comment TLV.
    let ud = [0u8, 6, b'h', b'e', b'l', b'l', b'o', 0];
    let table = commented[0].msg.request_bytes(1);
    assert!(table.windows(ud.len()).any(|w| w == ud));
    for (a, b) in plain.iter().zip(&commented).skip(1) {
        assert_eq!(a.msg.request_bytes(1), b.msg.request_bytes(1));
    }
    assert_eq!(parse_table_comment(&ud).as_deref(), Some("hello"));
    assert_eq!(
        parse_table_comment(&[1, 1, 9, 0, 3, b'a', b'b', 0]).as_deref(),
        Some("ab")
    );
    assert_eq!(parse_table_comment(&[0, 9, b'a']), None);
    let long = "x".repeat(TABLE_COMMENT_MAX + 1);
    let too_long = create_requests_commented(&sample(), Some(&long));
    assert_eq!(
        too_long[0].msg.request_bytes(1),
        plain[0].msg.request_bytes(1)
    );
}

#[test]
fn plan_tag_follows_the_content_not_just_the_shape() {
    // sample_changed has other content; a restart must not adopt one for the other.
    assert_eq!(plan_tag(&sample()), plan_tag(&sample()));
    assert_ne!(plan_tag(&sample()), plan_tag(&sample_changed()));
    assert!(plan_tag(&sample()).len() <= TABLE_COMMENT_MAX);
}
