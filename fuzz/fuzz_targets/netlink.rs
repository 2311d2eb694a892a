//! Netlink datagrams from the kernel: rtnetlink dump replies and events
//! (links, addresses, routes, rules), errors with extended ACKs (every
//! request, ctnetlink deletes included), nf_tables dumps and notifications.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mwan_netlink::nft::{concerns_our_table, Observed};
use mwan_netlink::socket::{parse_error, split_messages};
use mwan_netlink::{link, route, rule};

fuzz_target!(|data: &[u8]| {
    let Ok(msgs) = split_messages(data) else {
        return;
    };
    for m in &msgs {
        let _ = parse_error(m);
        let _ = link::parse_link(m);
        let _ = link::parse_address(m);
        let _ = route::parse_route(m);
        let _ = rule::parse_rule(m);
        let _ = link::parse_event(m, 77, Some(1));
        let _ = concerns_our_table(m, Some(1));
    }
    // The same messages as the chain, rule and set dumps of `inet mwan`.
    let _ = Observed::from_dumps(&msgs, &msgs, &msgs);
});
