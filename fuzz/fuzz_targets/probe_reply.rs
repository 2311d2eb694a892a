//! Replies a tracker receives on its WAN, from anyone on the path: ICMP
//! (v4 with and without IP header, v6), ARP, DNS answers to our query,
//! HTTP response heads.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mwan_track::fuzzing::*;
use std::net::{IpAddr, Ipv4Addr};

const COOKIE: [u8; COOKIE_LEN] = *b"mwan-ck!";

fuzz_target!(|data: &[u8]| {
    let _ = parse_icmp4(data, true, &COOKIE);
    let _ = parse_icmp4(data, false, &COOKIE);
    let _ = parse_icmp6(data, &COOKIE);
    let _ = parse_own_echo(data, &COOKIE);
    let _ = parse_arp_reply(data, Ipv4Addr::new(192, 0, 2, 1));
    let mut query = [0u8; 64];
    let len = build_dns_query(
        &mut query,
        u16::from_be_bytes([0x12, 0x34]),
        "example.com",
        false,
    );
    let _ = check_dns_answer(data, &query[..len], None);
    let _ = check_dns_answer(
        data,
        &query[..len],
        Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))),
    );
    let _ = http_status(data);
});
