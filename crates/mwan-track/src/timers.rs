//! The tracker's one timer structure: a fixed table of deadlines, one entry
//! per timer the tracker can ever have (the probe clock, reconnect, source
//! refresh, and one timeout per in-flight probe slot). With at most a few
//! hundred entries a linear scan for the earliest is cheaper than keeping a
//! heap ordered, never allocates after start, and cancelling is O(1).

/// Deadline in CLOCK_MONOTONIC microseconds; 0 means "not armed".
pub struct Deadlines {
    at: Vec<u64>,
}

impl Deadlines {
    pub fn new(entries: usize) -> Self {
        Self {
            at: vec![0; entries],
        }
    }

    pub fn arm(&mut self, timer: usize, at_us: u64) {
        self.at[timer] = at_us.max(1);
    }

    pub fn cancel(&mut self, timer: usize) {
        self.at[timer] = 0;
    }

    pub fn get(&self, timer: usize) -> Option<u64> {
        Some(self.at[timer]).filter(|&t| t != 0)
    }

    /// The earliest armed deadline.
    pub fn next(&self) -> Option<u64> {
        self.at.iter().copied().filter(|&t| t != 0).min()
    }

    /// Disarms and returns the first timer due at `now` (call until `None`).
    pub fn pop_due(&mut self, now_us: u64) -> Option<usize> {
        let i = self.at.iter().position(|&t| t != 0 && t <= now_us)?;
        self.at[i] = 0;
        Some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_and_cancel() {
        let mut d = Deadlines::new(4);
        assert_eq!(d.next(), None);
        d.arm(2, 300);
        d.arm(0, 500);
        d.arm(3, 100);
        d.cancel(3);
        assert_eq!(d.next(), Some(300));
        assert_eq!(d.pop_due(299), None);
        assert_eq!(d.pop_due(600), Some(0));
        assert_eq!(d.pop_due(600), Some(2));
        assert_eq!(d.pop_due(600), None);
        assert_eq!(d.get(2), None);
    }
}
