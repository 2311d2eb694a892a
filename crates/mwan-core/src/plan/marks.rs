//! The mark layout: which fwmark bits are ours, and the stable slot
//! assignment of WANs and policy targets to values inside them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::{PlanError, MAX_SLOT};
use crate::config::PolicyTarget;

/// The fwmark bits we own and how slot numbers map onto them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkLayout {
    pub mask: u32,
}

impl MarkLayout {
    pub fn new(mask: u32) -> Result<Self, PlanError> {
        if mask.count_ones() < 2 {
            return Err(PlanError::MaskTooSmall { mask });
        }
        Ok(MarkLayout { mask })
    }

    /// Number of usable slots (1..=capacity).
    pub fn capacity(&self) -> u32 {
        let bits = self.mask.count_ones();
        let values = if bits >= 32 {
            u32::MAX
        } else {
            (1u32 << bits) - 1
        };
        values.min(MAX_SLOT)
    }

    /// Spread a slot's bits over the mask's bits, lowest first.
    pub fn encode(&self, slot: u32) -> u32 {
        let mut mark = 0;
        let mut bit = 0;
        for pos in 0..32 {
            if self.mask & (1 << pos) != 0 {
                if slot & (1 << bit) != 0 {
                    mark |= 1 << pos;
                }
                bit += 1;
            }
        }
        mark
    }

    /// Inverse of [`MarkLayout::encode`]; bits outside the mask are ignored.
    pub fn decode(&self, mark: u32) -> u32 {
        let mut slot = 0;
        let mut bit = 0;
        for pos in 0..32 {
            if self.mask & (1 << pos) != 0 {
                if mark & (1 << pos) != 0 {
                    slot |= 1 << bit;
                }
                bit += 1;
            }
        }
        slot
    }
}

/// Slots of one WAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WanSlots {
    /// The tracker sets this WAN's tracker mark on its probes.
    pub tracker: u32,
    /// ct mark of connections pinned to this WAN; also its table slot.
    pub pin: u32,
}

/// Key of a policy-like target in [`Allocation::targets`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TargetKey {
    Policy(String),
    /// mwan3 `default`: the main table.
    Main,
    Unreachable,
    Blackhole,
}

impl TargetKey {
    pub fn from_config(target: &PolicyTarget) -> Self {
        match target {
            PolicyTarget::Named(name) => TargetKey::Policy(name.clone()),
            PolicyTarget::Default => TargetKey::Main,
            PolicyTarget::Unreachable => TargetKey::Unreachable,
            PolicyTarget::Blackhole => TargetKey::Blackhole,
        }
    }
}

impl fmt::Display for TargetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetKey::Policy(name) => write!(f, "policy '{name}'"),
            TargetKey::Main => f.write_str("default (main table)"),
            TargetKey::Unreachable => f.write_str("unreachable"),
            TargetKey::Blackhole => f.write_str("blackhole"),
        }
    }
}

/// Slot assignment; feed the previous one back into [`allocate`] on reload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allocation {
    /// By config interface name.
    pub wans: BTreeMap<String, WanSlots>,
    /// Every policy gets a slot (its table); other targets only when an nft
    /// rule marks traffic for them.
    pub targets: BTreeMap<TargetKey, u32>,
}

impl Allocation {
    fn used(&self) -> BTreeSet<u32> {
        let mut used = crate::sort::btree_set(self.targets.values().copied());
        for w in self.wans.values() {
            used.insert(w.tracker);
            used.insert(w.pin);
        }
        used
    }
}

/// Assign slots: entries of `previous` whose owner still exists keep theirs,
/// new owners get the lowest free slots, in config order.
pub fn allocate(
    wans: &[&str],
    targets: &[TargetKey],
    previous: &Allocation,
    layout: MarkLayout,
) -> Result<Allocation, PlanError> {
    let capacity = layout.capacity();
    let mut next = Allocation::default();
    for name in wans {
        if let Some(s) = previous.wans.get(*name) {
            if s.tracker <= capacity && s.pin <= capacity {
                next.wans.insert(name.to_string(), *s);
            }
        }
    }
    for key in targets {
        if let Some(s) = previous.targets.get(key) {
            if *s <= capacity {
                next.targets.insert(key.clone(), *s);
            }
        }
    }
    let mut used = next.used();
    let needed = wans.iter().filter(|w| !next.wans.contains_key(**w)).count() * 2
        + targets
            .iter()
            .filter(|t| !next.targets.contains_key(*t))
            .count();
    let free: Vec<u32> = (1..=capacity).filter(|s| !used.contains(s)).collect();
    if free.len() < needed {
        return Err(PlanError::OutOfMarks {
            mask: layout.mask,
            capacity,
            needed: used.len() + needed,
        });
    }
    let mut free = free.into_iter();
    let mut take = |used: &mut BTreeSet<u32>| {
        let s = free.next().expect("counted above");
        used.insert(s);
        s
    };
    for name in wans {
        if !next.wans.contains_key(*name) {
            let tracker = take(&mut used);
            let pin = take(&mut used);
            next.wans
                .insert(name.to_string(), WanSlots { tracker, pin });
        }
    }
    for key in targets {
        if !next.targets.contains_key(key) {
            let s = take(&mut used);
            next.targets.insert(key.clone(), s);
        }
    }
    Ok(next)
}
