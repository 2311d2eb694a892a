//! Quality ceilings per policy on the testbed (issue 14): a jittery wan1
//! moves a voice policy (max_jitter) to wan2 while a bulk policy without
//! ceilings stays on wan1, checked with real LAN connections through each
//! policy, and status and explain name the ceiling.
//!
//! Needs root and `cargo build --workspace --bins` first.

mod mwand_harness;

use mwan_testbed::{Impairment, Role, Testbed};
use mwand_harness::*;

/// The harness config (policy `failover`: wan1 metric 1, wan2 metric 2,
/// here the bulk policy) plus a `voice` policy on the same members with a
/// 20 ms jitter ceiling, and a rule sending LAN TCP from source ports
/// 40000-40999 to it.
fn voice_config(tb: &Testbed) -> String {
    let base = config(tb.wans(), &ours);
    let voice = "config policy 'voice'\n\tlist use_member 'wan1_f'\n\tlist use_member 'wan2_f'\n\
                 \toption max_jitter '20'\n\toption jitter_min_stable '2'\n\n\
                 config rule 'voice_calls'\n\toption proto 'tcp'\n\toption src_port '40000-40999'\n\
                 \toption use_policy 'voice'\n";
    base.replace(
        "\nconfig rule 'everything'",
        &format!("\n{voice}\nconfig rule 'everything'"),
    )
}

/// One HTTP GET from the LAN client from source port `port` (so the voice
/// rule matches); the body names the address the server saw.
fn lan_http_from_port(tb: &Testbed, port: u16) -> Option<String> {
    let http = tb.targets().http.iter().find(|a| a.is_ipv4())?;
    let script = format!(
        "import socket\n\
         s = socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('', {port}))\n\
         s.settimeout(5)\n\
         s.connect(('{}', {}))\n\
         s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n\
         out = b''\n\
         while True:\n\
         \x20   chunk = s.recv(4096)\n\
         \x20   if not chunk:\n\
         \x20       break\n\
         \x20   out += chunk\n\
         print(out.decode(errors='replace'))\n",
        http.ip(),
        http.port()
    );
    let out = tb
        .exec(Role::Lan, &["timeout", "8", "python3", "-c", &script])
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success() && text.contains("200")).then_some(text)
}

#[test]
fn jittery_wan1_moves_voice_to_wan2_while_bulk_stays() {
    if !mwan_testbed::require_netns() {
        return;
    }
    let tb = testbed(2, 1);
    let m = Mwand::start(&tb, &voice_config(&tb));
    m.wait(20, "both WANs online", all_online);
    let s = m.wait(20, "voice on wan1", |s| active(s, "voice") == ["wan1"]);
    assert_eq!(active(&s, "failover"), ["wan1"]);
    let answer = lan_http_from_port(&tb, 40001).expect("voice connection before the jitter");
    assert_eq!(wan_of_answer(&tb, &answer), Some("wan1"), "{answer}");

    // wan1 turns jittery (40 ms ± 40 ms): its measured jitter climbs well
    // past voice's 20 ms; no loss, so it stays online.
    tb.impair(
        "wan1",
        Impairment {
            delay_ms: 40.0,
            jitter_ms: 40.0,
            ..Default::default()
        },
    )
    .expect("impair");
    let s = m.wait(60, "voice moves to wan2", |s| {
        active(s, "voice") == ["wan2"]
    });
    assert_eq!(
        active(&s, "failover"),
        ["wan1"],
        "bulk left wan1: {s:#}\n{}",
        m.log_text()
    );
    assert_eq!(state(&s, "wan1"), "online", "{s:#}");
    let voice = s["policies"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == "voice"))
        .expect("voice status");
    let reasons = voice["ceilings"].to_string();
    assert!(
        reasons.contains("wan1 jitter") && reasons.contains("> voice's 20 ms"),
        "{voice:#}"
    );
    assert!(
        m.log_text().contains("> voice's 20 ms"),
        "the policy event names the ceiling:\n{}",
        m.log_text()
    );
    // The move is in the timeline too: the ceiling moved voice right after
    // a tracker's samples, before the apply (it was missing there before).
    let history = String::from_utf8(m.ctl(&["history"]).stdout).expect("utf-8");
    assert!(history.contains("policy voice: wan2"), "{history}");
    let out = m.ctl(&["explain", "voice"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("wan1 jitter") && text.contains("voice uses wan2"),
        "{text}"
    );

    // Real connections: voice leaves by wan2, bulk still by wan1.
    let answer = lan_http_from_port(&tb, 40002).expect("voice connection during the jitter");
    assert_eq!(wan_of_answer(&tb, &answer), Some("wan2"), "{answer}");
    let answer = lan_http(&tb, 5).expect("bulk connection during the jitter");
    assert_eq!(wan_of_answer(&tb, &answer), Some("wan1"), "{answer}");
}
