//! Stable sorting with one copy of std's sort in the executable.
//!
//! `slice::sort_by` is generic: every element type and comparison gets its
//! own copy of std's driftsort, ~3.5 KB each on x86_64, and the workspace
//! sorts in 18 places (docs/footprint.md). Here std sorts indices, through
//! one instantiation for `usize` with a `dyn` comparison, and the slice is
//! then permuted in place. The result is exactly `sort_by`'s (equal
//! elements keep their order), in O(n log n) plus n indices of memory.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// `v.sort_by(compare)`.
pub fn sort_by<T>(v: &mut [T], mut compare: impl FnMut(&T, &T) -> Ordering) {
    let order = sorted_indices(v.len(), &mut |a, b| compare(&v[a], &v[b]));
    permute(order, &mut |a, b| v.swap(a, b));
}

/// `v.sort_by_key(key)`.
pub fn sort_by_key<T, K: Ord>(v: &mut [T], mut key: impl FnMut(&T) -> K) {
    sort_by(v, |a, b| key(a).cmp(&key(b)));
}

/// `v.sort()`.
pub fn sort<T: Ord>(v: &mut [T]) {
    sort_by(v, T::cmp);
}

/// `v.sort_by_cached_key(key)`: each key computed once.
pub fn sort_by_cached_key<T, K: Ord>(v: &mut [T], key: impl FnMut(&T) -> K) {
    let keys: Vec<K> = v.iter().map(key).collect();
    let order = sorted_indices(v.len(), &mut |a, b| keys[a].cmp(&keys[b]));
    permute(order, &mut |a, b| v.swap(a, b));
}

/// `items.collect::<BTreeMap<_, _>>()` without its sort: `FromIterator`
/// first sorts the items with std's stable sort, one ~3.5 KB copy per key
/// and value type; inserting one at a time needs none. As there, the last
/// value given for a key wins.
pub fn btree_map<K: Ord, V>(items: impl IntoIterator<Item = (K, V)>) -> BTreeMap<K, V> {
    let mut map = BTreeMap::new();
    for (key, value) in items {
        map.insert(key, value);
    }
    map
}

/// `items.collect::<BTreeSet<_>>()` without its sort (see [`btree_map`]).
pub fn btree_set<T: Ord>(items: impl IntoIterator<Item = T>) -> BTreeSet<T> {
    let mut set = BTreeSet::new();
    for item in items {
        set.insert(item);
    }
    set
}

/// 0..len, stably sorted by `compare` of the elements at those indices.
fn sorted_indices(len: usize, compare: &mut dyn FnMut(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.sort_by(|&a, &b| compare(a, b));
    order
}

/// Swaps elements so that position i holds what was at `order[i]`, as
/// std's `sort_by_cached_key` does: an element already moved away from
/// `order[i]` is found by following the indices of earlier swaps.
fn permute(mut order: Vec<usize>, swap: &mut dyn FnMut(usize, usize)) {
    for i in 0..order.len() {
        let mut index = order[i];
        while index < i {
            index = order[index];
        }
        order[i] = index;
        swap(i, index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn same_order_as_std(v in proptest::collection::vec((0u8..6, proptest::prelude::any::<u16>()), 0..200)) {
            let mut std_sorted = v.clone();
            std_sorted.sort_by_key(|e| e.0);
            let mut ours = v.clone();
            sort_by_key(&mut ours, |e| e.0);
            proptest::prop_assert_eq!(&ours, &std_sorted, "stable by key");
            let mut cached = v.clone();
            sort_by_cached_key(&mut cached, |e| e.0);
            proptest::prop_assert_eq!(&cached, &std_sorted);
            let mut full = v.clone();
            sort(&mut full);
            let mut std_full = v.clone();
            std_full.sort();
            proptest::prop_assert_eq!(full, std_full);
            let map = btree_map(v.iter().copied());
            proptest::prop_assert_eq!(&map, &v.iter().copied().collect::<BTreeMap<_, _>>(), "last value wins");
            proptest::prop_assert_eq!(btree_set(v.iter().copied()), v.iter().copied().collect::<BTreeSet<_>>());
        }
    }
}
