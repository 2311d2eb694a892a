//! Confirmation bursts on the testbed (issue 14): a WAN that carries
//! traffic and goes silent is confirmed dead by a burst of fast probes and
//! fails over without waiting for its probe rounds; one-way traffic on a
//! healthy WAN makes a burst that is answered, and nothing fails.
//!
//! wan1 probes only every 2 s (down 3) here, so its rounds alone would
//! need over 6 s to take it offline: an offline verdict within that time
//! can only come from the burst, which the log line says.

mod mwand_harness;

use mwan_integration::lan_traffic::{LanPing, UdpUpload};
use mwan_testbed::Impairment;
use mwand_harness::*;
use std::time::{Duration, Instant};

/// Our defaults on wan2; wan1 slow rounds (2 s interval).
fn slow_rounds_on_wan1() -> Option<(mwan_testbed::Testbed, Mwand)> {
    if !mwan_testbed::require_netns() {
        return None;
    }
    let tb = testbed(2, 3);
    let slow = Tracking {
        interval: "2",
        ..OURS
    };
    let m = Mwand::start(
        &tb,
        &config(tb.wans(), &|w| {
            if w.name == "wan1" {
                slow.clone()
            } else {
                OURS
            }
        }),
    );
    m.wait(30, "both WANs online", all_online);
    Some((tb, m))
}

fn target(tb: &mwan_testbed::Testbed) -> std::net::IpAddr {
    std::net::IpAddr::V4(tb.targets().icmp_v4[0])
}

/// Lines of the log from the first that contains `needle` on.
fn log_from<'a>(log: &'a str, needle: &str) -> Option<&'a str> {
    log.find(needle).map(|i| &log[i..])
}

#[test]
fn a_loaded_wan_cut_is_confirmed_by_a_burst_and_fails_over() {
    let Some((tb, m)) = slow_rounds_on_wan1() else {
        return;
    };
    let ping = LanPing::start(&tb, target(&tb));
    std::thread::sleep(Duration::from_secs(2));
    tb.cut("wan1").expect("cut");
    let s = m.wait(5, "wan1 offline after the cut", |s| {
        state(s, "wan1") == "offline" && active(s, "failover") == ["wan2"]
    });
    drop(ping);
    let log = m.log_text();
    let after_burst = log_from(&log, "wan1: confirmation burst unanswered")
        .unwrap_or_else(|| panic!("no unanswered burst for wan1: {s:#}\n{log}"));
    assert!(
        after_burst.contains("wan1: online -> offline"),
        "the burst, not the rounds, took wan1 offline:\n{log}"
    );
    let answer = lan_http(&tb, 5).expect("a new LAN connection after the failover");
    assert_eq!(wan_of_answer(&tb, &answer), Some("wan2"), "{answer}");
}

#[test]
fn a_one_way_udp_upload_at_line_rate_fails_nothing() {
    let Some((tb, m)) = slow_rounds_on_wan1() else {
        return;
    };
    // A 2 Mbit/s uplink and a 2 Mbit/s UDP upload into it: nothing comes
    // back. Two-way traffic first (a LAN ping), so the WAN was seen
    // carrying traffic and its silence starts a burst.
    tb.impair(
        "wan1",
        Impairment {
            rate_kbit: 2000,
            ..Default::default()
        },
    )
    .expect("impair");
    let sink = *tb
        .targets()
        .dns_server
        .iter()
        .find(|a| a.is_ipv4())
        .expect("v4 DNS server");
    let ping = LanPing::start(&tb, target(&tb));
    std::thread::sleep(Duration::from_secs(1));
    let upload = UdpUpload::start(&tb, sink, 2000, 1000);
    std::thread::sleep(Duration::from_millis(500));
    drop(ping);
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        let s = m.status();
        assert_eq!(
            active(&s, "failover"),
            ["wan1"],
            "one-way upload moved the policy: {s:#}\n{}",
            m.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let sent = upload.sent();
    drop(upload);
    let log = m.log_text();
    assert!(sent > 4000, "the upload ran ({sent} datagrams)");
    assert!(
        log.contains("wan1: confirmation burst answered"),
        "the upload's silence started a burst, and it was answered:\n{log}"
    );
    let downs: Vec<String> = transitions(&log, "wan1")
        .into_iter()
        .filter(|t| t.ends_with("offline"))
        .collect();
    assert!(downs.is_empty(), "healthy wan1 went {downs:?}:\n{log}");
}
