//! What one peer may cost the loop: how many connections and how long one
//! may sit idle. How often its misbehaviour is logged is
//! `mwan_core::log_limit`. Pure: time comes in as an argument.

use mwan_core::Millis;

/// Control connections kept at once; a new one past this closes the one
/// idle longest, so a request always finds a slot.
pub const MAX_CONTROL_CONNS: usize = 64;
/// A control connection (or a tracker connection before its Hello) that
/// moved no byte for this long is closed.
pub const IDLE_TIMEOUT_MS: Millis = 30_000;
/// Requests answered per connection per loop turn; the rest wait a turn so
/// timers and other peers come first.
pub const REQUESTS_PER_TURN: usize = 32;

/// Of `(id, last active)` pairs, the one idle longest.
pub fn idlest<T: Copy>(conns: impl Iterator<Item = (T, Millis)>) -> Option<T> {
    conns.min_by_key(|&(_, at)| at).map(|(id, _)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idlest_connection_is_the_one_heard_from_least_recently() {
        assert_eq!(idlest([(1, 500), (2, 100), (3, 900)].into_iter()), Some(2));
        assert_eq!(idlest(std::iter::empty::<(u8, Millis)>()), None);
    }
}
