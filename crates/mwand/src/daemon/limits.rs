//! What one peer may cost the loop: how many connections, how long one may
//! sit idle, and how often its misbehaviour is logged. Pure: time comes in
//! as an argument.

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

/// Lets through `burst` lines per `window_ms`; what it holds back is
/// counted and said with the next line let through.
#[derive(Debug)]
pub struct LogLimiter {
    window_ms: Millis,
    burst: u32,
    window_start: Millis,
    used: u32,
    suppressed: u64,
}

impl LogLimiter {
    pub const fn new(burst: u32, window_ms: Millis) -> Self {
        Self {
            window_ms,
            burst,
            window_start: 0,
            used: 0,
            suppressed: 0,
        }
    }

    /// None: stay quiet. Some(n): log, saying that `n` lines were held back
    /// since the last one.
    pub fn allow(&mut self, now: Millis) -> Option<u64> {
        if now.saturating_sub(self.window_start) >= self.window_ms {
            self.window_start = now;
            self.used = 0;
        }
        if self.used >= self.burst {
            self.suppressed += 1;
            return None;
        }
        self.used += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// The text to log for a line let through after `suppressed` held back.
pub fn with_suppressed(line: std::fmt::Arguments, suppressed: u64) -> String {
    if suppressed == 0 {
        line.to_string()
    } else {
        format!("{line} ({suppressed} more suppressed)")
    }
}

/// Of `(id, last active)` pairs, the one idle longest.
pub fn idlest<T: Copy>(conns: impl Iterator<Item = (T, Millis)>) -> Option<T> {
    conns.min_by_key(|&(_, at)| at).map(|(id, _)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_cut_to_the_burst_and_the_rest_is_counted() {
        let mut l = LogLimiter::new(3, 10_000);
        let let_through: Vec<Option<u64>> = (0..1_000).map(|i| l.allow(1_000 + i)).collect();
        assert_eq!(let_through.iter().flatten().count(), 3);
        assert_eq!(let_through[..3], [Some(0), Some(0), Some(0)]);
        // Next window: the first line says how many were held back.
        assert_eq!(l.allow(11_000), Some(997));
        assert_eq!(l.allow(11_001), Some(0));
    }

    #[test]
    fn a_quiet_peer_is_never_held_back() {
        let mut l = LogLimiter::new(3, 10_000);
        for i in 0..100 {
            assert_eq!(l.allow(i * 5_000), Some(0));
        }
    }

    #[test]
    fn suppressed_lines_are_named() {
        assert_eq!(with_suppressed(format_args!("x"), 0), "x");
        assert_eq!(
            with_suppressed(format_args!("x"), 5),
            "x (5 more suppressed)"
        );
    }

    #[test]
    fn the_idlest_connection_is_the_one_heard_from_least_recently() {
        assert_eq!(idlest([(1, 500), (2, 100), (3, 900)].into_iter()), Some(2));
        assert_eq!(idlest(std::iter::empty::<(u8, Millis)>()), None);
    }
}
