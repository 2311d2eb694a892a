//! How often one peer's misbehaviour is logged: a burst per window, the
//! rest counted and said with the next line let through. Pure: time comes
//! in as an argument (mwand limits what a tracker or a control client can
//! make it write to the log).

use crate::Millis;

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

#[cfg(test)]
mod tests {
    use super::*;

    /// (what, burst, window, times lines arrive, what each gets).
    type Case = (
        &'static str,
        u32,
        Millis,
        &'static [Millis],
        &'static [Option<u64>],
    );

    #[test]
    fn lines_per_window_table() {
        let cases: [Case; 5] = [
            (
                "a burst passes",
                3,
                10_000,
                &[1_000, 1_001, 1_002],
                &[Some(0), Some(0), Some(0)],
            ),
            (
                "past the burst: held back",
                2,
                10_000,
                &[1_000, 1_001, 1_002, 1_003],
                &[Some(0), Some(0), None, None],
            ),
            (
                "the next window's first line counts what was held back",
                1,
                10_000,
                &[1_000, 1_001, 1_002, 11_000, 11_001],
                &[Some(0), None, None, Some(2), None],
            ),
            (
                "a window starts at its first line, not on a grid",
                1,
                10_000,
                &[15_000, 24_999, 25_000],
                &[Some(0), None, Some(1)],
            ),
            (
                "a zero burst holds everything back",
                0,
                10_000,
                &[0, 1, 20_000],
                &[None, None, None],
            ),
        ];
        for (what, burst, window, times, want) in cases {
            let mut l = LogLimiter::new(burst, window);
            let got: Vec<Option<u64>> = times.iter().map(|&t| l.allow(t)).collect();
            assert_eq!(got, want, "{what}");
        }
    }

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
}
