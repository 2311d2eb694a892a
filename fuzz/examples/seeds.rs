//! Writes the seeds that are built from our own encoders (frames, HTTP
//! requests, probe replies) into fuzz/corpus/; the UCI, ubus and netlink
//! seeds are copies of captured data (fuzz/seeds.sh). Run by fuzz/seeds.sh.

use mwan_proto::control::Request;
use mwan_proto::frame::encode;
use mwan_proto::track::{ControllerMessage, ProbeMethod, ProbeOutcome, Sample, TrackerMessage};
use std::path::Path;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    std::fs::write(dir.join(name), bytes).expect("seed written");
}

fn main() {
    let hello = TrackerMessage::Hello {
        interface: "wan".into(),
        pid: 4242,
        started_at_us: 1_000_000,
        dropped_samples: 0,
    };
    let outcomes = [
        ProbeOutcome::Reply { rtt_us: 12_000 },
        ProbeOutcome::Timeout,
        ProbeOutcome::Unreachable {
            icmp_type: 3,
            icmp_code: 1,
        },
        ProbeOutcome::Refused,
        ProbeOutcome::BadAnswer,
        ProbeOutcome::SendError { errno: 101 },
    ];
    let samples = TrackerMessage::Samples(
        outcomes
            .iter()
            .enumerate()
            .map(|(i, &outcome)| Sample {
                seq: i as u64,
                target: "192.0.2.1".into(),
                method: ProbeMethod::IcmpEcho,
                sent_at_us: 2_000_000 + i as u64,
                outcome,
                round: 1,
            })
            .collect(),
    );
    let mut stream = encode(&hello).expect("hello");
    stream.extend(encode(&samples).expect("samples"));
    stream.extend(
        encode(&TrackerMessage::Trouble {
            message: "no device".into(),
        })
        .expect("trouble"),
    );
    write("track_frame", "tracker-stream", &stream);
    let mut control =
        encode(&ControllerMessage::SetInterval { interval_ms: 5000 }).expect("interval");
    control.extend(encode(&ControllerMessage::SetTimeout { timeout_ms: 2000 }).expect("timeout"));
    write("track_frame", "controller-stream", &control);

    let requests = [
        Request::Status,
        Request::Interfaces,
        Request::Policies,
        Request::Rules,
        Request::Connected,
        Request::Restart {
            interface: "wan2".into(),
        },
        Request::Reload,
        Request::Override {
            interface: "wan".into(),
            policy: Some("balanced".into()),
        },
        Request::ClearOverride { policy: None },
        Request::Explain {
            policy: Some("balanced".into()),
        },
    ];
    let mut all = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        let frame = encode(r).expect("request");
        write("control_request", &format!("request-{i}"), &frame);
        all.extend(frame);
    }
    write("control_request", "requests-stream", &all);

    let http: [&[u8]; 4] = [
        b"GET /api/status HTTP/1.1\r\nHost: router\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: router\r\nAccept-Encoding: gzip\r\n\r\n",
        b"POST /api/override HTTP/1.1\r\nHost: router\r\nContent-Type: application/json\r\nAuthorization: Bearer secret\r\nContent-Length: 37\r\n\r\n{\"interface\":\"wan\",\"policy\":\"bal\"}",
        b"POST /api/reload HTTP/1.1\r\nOrigin: http://evil\r\nContent-Length: 2\r\n\r\n{}",
    ];
    for (i, r) in http.iter().enumerate() {
        write("http_request", &format!("request-{i}"), r);
    }

    // An echo reply with our cookie (as the probe_reply target sets it),
    // with and without IPv4 header; a DNS answer; an ARP reply; HTTP heads.
    let cookie = *b"mwan-ck!";
    let mut echo = vec![0u8, 0, 0, 0, 0x12, 0x34, 0, 1];
    echo.extend_from_slice(&cookie);
    echo.extend_from_slice(&[0xa5; 24]);
    write("probe_reply", "echo-reply", &echo);
    let mut ip = vec![
        0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
    ];
    ip.extend_from_slice(&echo);
    write("probe_reply", "echo-reply-ip", &ip);
    let mut unreach = vec![
        0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 192, 0, 2, 9, 192, 0, 2, 2,
    ];
    unreach.extend_from_slice(&[3, 1, 0, 0, 0, 0, 0, 0]);
    unreach.extend_from_slice(&ip);
    write("probe_reply", "unreachable-ip", &unreach);
    let mut query = [0u8; 64];
    let len = mwan_track_query(&mut query);
    let mut answer = query[..len].to_vec();
    answer[2] |= 0x80;
    answer[7] = 1;
    answer.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7]);
    write("probe_reply", "dns-answer", &answer);
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 2, 2, 0, 0, 0, 0, 9, 192, 0, 2, 9];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 192, 0, 2, 1]);
    write("probe_reply", "arp-reply", &arp);
    write(
        "probe_reply",
        "http-200",
        b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n",
    );
    write("probe_reply", "http-503", b"HTTP/1.0 503 Busy\n");
}

/// The query the probe_reply target checks answers against.
fn mwan_track_query(out: &mut [u8]) -> usize {
    mwan_track::fuzzing::build_dns_query(out, 0x1234, "example.com", false)
}
