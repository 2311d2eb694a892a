//! Property tests of the health machine against a plain reference model of
//! mwan3's counter (with the differences docs/decisions.md lists): whatever
//! order a batch of rounds' results arrives in, the machine reaches the same
//! states as the model fed round by round.

#[path = "sim_common/mod.rs"]
mod sim_common;

use mwan_core::config::InitialState;
use mwan_core::health::{Health, HealthSettings, LinkState, ProbeOutcome, ProbeResult};
use proptest::prelude::*;
use sim_common::{iface, Rng};

/// mwan3's counter, round by round.
struct Reference {
    down: u32,
    up: u32,
    /// true: online side with `n` failures; false: offline side with `n` successes.
    online_side: bool,
    n: u32,
}

impl Reference {
    fn apply(&mut self, success: bool) -> LinkState {
        match (self.online_side, success) {
            (true, true) => self.n = 0,
            (true, false) => {
                self.n += 1;
                if self.n >= self.down {
                    self.online_side = false;
                    self.n = 0;
                }
            }
            (false, true) => {
                self.n += 1;
                if self.n >= self.up {
                    self.online_side = true;
                    self.n = 0;
                }
            }
            (false, false) => self.n = 0,
        }
        match (self.online_side, self.n) {
            (true, 0) => LinkState::Online,
            (true, _) => LinkState::Disconnecting,
            (false, 0) => LinkState::Offline,
            (false, _) => LinkState::Connecting,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_arrival_order_matches_the_reference_counter(
        targets in 1usize..4,
        reliability in 1u32..4,
        count in 1u32..3,
        down in 1u32..5,
        up in 1u32..5,
        start_offline in any::<bool>(),
        answers in proptest::collection::vec(proptest::collection::vec(any::<bool>(), 9), 1..25),
        shuffle_seed in any::<u64>(),
    ) {
        let reliability = reliability.min(targets as u32);
        let mut i = iface(targets);
        i.reliability = reliability;
        i.count = count;
        i.down = down;
        i.up = up;
        i.initial_state = if start_offline { InitialState::Offline } else { InitialState::Online };
        i.timeout = 4000;

        // Reference: round by round.
        let mut reference = Reference { down, up, online_side: !start_offline, n: 0 };
        let mut expected_states = Vec::new();
        let mut results = Vec::new();
        for (round, bits) in answers.iter().enumerate() {
            let mut targets_up = 0;
            for target in 0..targets {
                let mut any = false;
                for k in 0..count as usize {
                    let answered = bits[target * count as usize + k];
                    any |= answered;
                    let outcome = if answered { ProbeOutcome::Reply { rtt_us: 10_000 } } else { ProbeOutcome::Lost };
                    results.push(ProbeResult { target, round: round as u64, sent_at: 0, outcome, inbound_packets: None });
                }
                targets_up += u32::from(any);
            }
            expected_states.push(reference.apply(targets_up >= reliability));
        }
        let mut state_changes = vec![LinkState::Unknown];
        for s in &expected_states {
            if state_changes.last() != Some(s) {
                state_changes.push(*s);
            }
        }

        // Machine: every result of every round, shuffled, all before any
        // deadline (the earliest is 250 ms after sending). The first result
        // is round 0's: results of rounds before the first one seen are
        // taken as from before the machine started.
        let mut rng = Rng::new(shuffle_seed);
        for k in (2..results.len()).rev() {
            let j = 1 + (rng.next_u64() % k as u64) as usize;
            results.swap(k, j);
        }
        let mut h = Health::new(HealthSettings::from_interface(&i), 0);
        let mut seen = vec![LinkState::Unknown];
        for (k, r) in results.iter().enumerate() {
            for t in h.on_probe(r, 1 + k as u64) {
                prop_assert_eq!(Some(&t.from), seen.last(), "transitions chain");
                seen.push(t.to);
            }
        }
        prop_assert_eq!(h.counters().rounds_ok + h.counters().rounds_failed, answers.len() as u64);
        prop_assert_eq!(h.state(), *expected_states.last().unwrap_or(&LinkState::Unknown));
        prop_assert_eq!(seen, state_changes);
    }
}
