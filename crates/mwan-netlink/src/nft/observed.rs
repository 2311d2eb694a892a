//! What the kernel holds of table `inet mwan` (parsed from dumps) and how
//! it drifted from the table we want.

use mwan_core::plan::nft::{BaseChain, NftSet, NftTable, SetKind, TABLE};

use super::messages::{chain_type, hook_number, key_type, parse_table_comment, set_flags};
use super::wire::*;
use crate::socket::{attr_str, attr_u32, attrs, RawMsg};

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

pub(super) fn base_of(b: &BaseChain) -> (String, u32, i32) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::tests::{observed_sample, sample};

    #[test]
    fn drift_sees_missing_table_emptied_chain_and_redefined_set() {
        let t = sample();
        let mut obs = observed_sample();
        assert_eq!(drift(&t, Some(&obs)), Drift::None);
        assert_eq!(drift(&t, None), Drift::TableMissing);
        obs.chains[0].rules = 0;
        obs.sets[0].timeout_ms = Some(1000);
        let Drift::Changed(what) = drift(&t, Some(&obs)) else {
            panic!("drift expected")
        };
        assert_eq!(
            what,
            [
                "chain prerouting has 0 rules, expected 4",
                "set sticky_p_wan1 redefined"
            ]
        );
    }
}
