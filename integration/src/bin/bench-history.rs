//! bench-history: what the dashboard's history costs (docs/dashboard.md).
//!
//! 8 WANs, an hour of simulated time at one sample a second (a score pass
//! rate mwand does not exceed), and the event ring filled. Prints the
//! bound computed from the ring sizes, the RssAnon this process grew by
//! while building it, and the JSON a page polls: the whole hour, and one
//! increment.
//!
//! Usage: bench-history. No root needed.

use mwan_core::health::LinkState;
use mwan_core::history::{bytes_per_wan, event_bytes, EventKind, History, Sample, RING_SECONDS};
use mwan_integration::proc_status_kb;

const WANS: usize = 8;

fn main() {
    let names: Vec<String> = (1..=WANS).map(|i| format!("wan{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let before = proc_status_kb("self", "RssAnon:");
    let mut h = History::new();
    h.set_interfaces(&refs);
    let hour = RING_SECONDS as u64;
    for s in 0..hour {
        for (i, name) in refs.iter().enumerate() {
            let state = if (s / 600 + i as u64) % 5 == 0 {
                LinkState::Offline
            } else {
                LinkState::Online
            };
            h.record(
                name,
                s * 1000 + i as u64,
                &Sample {
                    state,
                    latency_ms: Some(10.0 + ((s * 7 + i as u64) % 90) as f64 * 0.7),
                    jitter_ms: Some(1.0 + (s % 9) as f64 * 0.3),
                    loss_pct: Some(if s % 40 == 0 { 25.0 } else { 0.0 }),
                    score: Some(15.0 + (s % 13) as f64),
                },
            );
        }
        if s % 7 == 0 {
            let reason = "wan3 is offline: 3 of 3 rounds failed (down 3); policy balanced uses wan1 (weight 3) and wan2 (weight 1) for IPv4";
            h.event(
                s * 1000,
                EventKind::Policy,
                "balanced",
                "wan1 75%, wan2 25%",
                reason,
            );
        }
    }
    let after = proc_status_kb("self", "RssAnon:");
    let full = h.json_since(0);
    let next = h.newest_second().unwrap_or(0);
    let poll = h.json_since(next);
    println!(
        "history of {WANS} WANs, {hour} s each, {} events held",
        h.events_since(0).count()
    );
    println!(
        "  bound per WAN (ring + bookkeeping, 16-byte name): {} bytes",
        bytes_per_wan(16)
    );
    println!(
        "  bound of the event ring (every text at its limit): {} bytes",
        event_bytes()
    );
    println!(
        "  bound for {WANS} WANs and the events: {} kB",
        (WANS * bytes_per_wan(16) + event_bytes()) / 1024
    );
    println!(
        "  RssAnon grew by {} kB while building it",
        after.saturating_sub(before)
    );
    println!("  JSON of the whole hour (since=0): {} bytes", full.len());
    println!("  JSON of one poll (since=next): {} bytes", poll.len());
    drop(h);
}
