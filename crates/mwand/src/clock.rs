//! The controller's one clock: CLOCK_MONOTONIC in milliseconds, the same
//! timebase as the trackers' sample timestamps (microseconds), so samples
//! replayed after a controller restart keep their meaning.

use mwan_core::Millis;

pub fn now_ms() -> Millis {
    // SAFETY: clock_gettime fills the timespec we pass.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: valid clock id and pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// One-shot deadlines keyed by what they are for; the loop sleeps until the
/// earliest. Re-arming a key replaces its deadline.
#[derive(Debug)]
pub struct Timers<K: Ord + Clone> {
    by_key: std::collections::BTreeMap<K, Millis>,
}

impl<K: Ord + Clone> Default for Timers<K> {
    fn default() -> Self {
        Self {
            by_key: std::collections::BTreeMap::new(),
        }
    }
}

impl<K: Ord + Clone> Timers<K> {
    pub fn arm(&mut self, key: K, at: Millis) {
        self.by_key.insert(key, at);
    }

    pub fn cancel(&mut self, key: &K) {
        self.by_key.remove(key);
    }

    pub fn next_deadline(&self) -> Option<Millis> {
        self.by_key.values().copied().min()
    }

    /// Removes and returns every key due at `now`.
    pub fn expired(&mut self, now: Millis) -> Vec<K> {
        let due: Vec<K> = self
            .by_key
            .iter()
            .filter(|(_, &at)| at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &due {
            self.by_key.remove(k);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_once_in_order_and_rearm_replaces() {
        let mut t = Timers::default();
        t.arm("a", 30);
        t.arm("b", 10);
        t.arm("a", 20);
        assert_eq!(t.next_deadline(), Some(10));
        assert_eq!(t.expired(15), vec!["b"]);
        assert_eq!(t.next_deadline(), Some(20));
        assert_eq!(t.expired(100), vec!["a"]);
        assert_eq!(t.next_deadline(), None);
    }
}
