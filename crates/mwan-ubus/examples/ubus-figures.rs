//! Prints figures for docs/ubus.md: blobmsg encode/decode cost of a Status
//! reply, round-trip latency of `ubus call mwan status` through the test
//! double, and how long a Session takes to be back after a ubusd restart.
//!
//! cargo build -p mwan-ubus --release --bins --examples
//! target/release/examples/ubus-figures target/release/mwan-ubus-double

use mwan_proto::control::{
    ActiveMemberStatus, InterfaceStatus, PolicyStatus, Status, TrackerStatus,
};
use mwan_ubus::blobmsg::Table;
use mwan_ubus::client::{Client, Event};
use mwan_ubus::{mwan_object, Session};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn status(wans: usize) -> Status {
    Status {
        interfaces: (0..wans)
            .map(|i| InterfaceStatus {
                name: format!("wan{i}"),
                device: Some(format!("eth{i}")),
                state: "online".into(),
                state_age_s: 1234,
                latency_ms: Some(12.5),
                jitter_ms: Some(1.25),
                loss_pct: Some(0.0),
                score: Some(98.0),
                tracker: TrackerStatus {
                    pid: Some(1000 + i as u32),
                    restarts: 0,
                    uptime_s: Some(1234),
                    connected: true,
                },
                reason: None,
            })
            .collect(),
        policies: vec![PolicyStatus {
            name: "balanced".into(),
            active: (0..wans)
                .map(|i| ActiveMemberStatus {
                    interface: format!("wan{i}"),
                    weight: 1,
                    share_pct: 100.0 / wans as f64,
                })
                .collect(),
            last_resort: None,
            ceilings: Vec::new(),
        }],
        override_: None,
        uptime_s: 99,
        config: "/etc/config/mwan".into(),
        dataplane_error: None,
        overrides: Vec::new(),
        dataplane: Default::default(),
        dataplane_error_kind: None,
        event_loop: Default::default(),
        config_warning: None,
    }
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p) as usize]
}

fn start_double(bin: &str, socket: &std::path::Path) -> Child {
    let c = Command::new(bin)
        .arg("--socket")
        .arg(socket)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("double");
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        std::thread::sleep(Duration::from_millis(5));
    }
    c
}

fn main() {
    let bin = std::env::args()
        .nth(1)
        .expect("usage: ubus-figures <path to mwan-ubus-double>");

    // 1. Encode/decode of a Status reply (8 WANs).
    let s = status(8);
    let n = 2000;
    let t = Instant::now();
    let mut bytes = Vec::new();
    for _ in 0..n {
        bytes.clear();
        mwan_object::reply(&mwan_proto::control::Response::Status(s.clone()))
            .1
            .encode_into(&mut bytes)
            .unwrap();
    }
    let enc = t.elapsed() / n;
    let t = Instant::now();
    for _ in 0..n {
        let _t: Status = Table::decode(&bytes).unwrap().to_deserialize().unwrap();
    }
    let dec = t.elapsed() / n;
    println!(
        "status reply, 8 WANs: {} bytes; encode {:?}, decode+deserialize {:?} per reply",
        bytes.len(),
        enc,
        dec
    );

    // 2. Round trip of `ubus call mwan status` through the double, served by a Session.
    let dir = std::env::temp_dir().join(format!("ubus-figures-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("ubus.sock");
    let mut double = start_double(&bin, &socket);
    let server_socket = socket.clone();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let (up_tx, up_rx) = std::sync::mpsc::channel::<Duration>();
    let server = std::thread::spawn(move || {
        let mut poll = mio::Poll::new().unwrap();
        let mut events = mio::Events::with_capacity(16);
        let mut client = Client::new();
        client.add_object("mwan", mwan_object::methods()).unwrap();
        let mut session = Session::new(server_socket, mio::Token(1), client);
        let mut pending = session.start(poll.registry(), Instant::now());
        let reply = mwan_object::reply(&mwan_proto::control::Response::Status(status(8))).1;
        let mut lost_at: Option<Instant> = None;
        while stop_rx.try_recv().is_err() {
            for e in pending.drain(..) {
                match e {
                    Event::Invoke(inv) => session
                        .client()
                        .reply(&inv, 0, Some(reply.clone()))
                        .unwrap(),
                    Event::Disconnected => lost_at = Some(Instant::now()),
                    Event::ObjectRegistered { .. } => {
                        if let Some(t) = lost_at.take() {
                            up_tx.send(t.elapsed()).unwrap();
                        } else {
                            up_tx.send(Duration::ZERO).unwrap();
                        }
                    }
                    _ => {}
                }
            }
            let now = Instant::now();
            pending.extend(session.flush(poll.registry(), now));
            let timeout = session
                .next_timeout(now)
                .map_or(Duration::from_millis(10), |t| {
                    t.min(Duration::from_millis(10))
                });
            poll.poll(&mut events, Some(timeout)).unwrap();
            let now = Instant::now();
            for ev in events.iter() {
                pending.extend(session.ready(poll.registry(), ev, now));
            }
            pending.extend(session.on_timeout(poll.registry(), now));
        }
    });
    up_rx.recv().unwrap();
    let mut caller =
        mwan_ubus::blocking::BlockingClient::connect(&socket, Duration::from_secs(5)).unwrap();
    let mut lat = Vec::new();
    for _ in 0..1000 {
        let t = Instant::now();
        caller.call("mwan", "status", Table::new()).unwrap();
        lat.push(t.elapsed());
    }
    println!(
        "ubus call mwan status (LOOKUP+INVOKE via mwan-ubus-double), 1000 calls: p50 {:?}, p99 {:?}",
        percentile(&mut lat, 0.5),
        percentile(&mut lat, 0.99)
    );

    // 3. ubusd restart: time from the Session seeing the loss to its object being registered again.
    let mut back = Vec::new();
    for _ in 0..5 {
        // SAFETY: kill(2) of our own child.
        unsafe { libc::kill(double.id() as libc::pid_t, libc::SIGTERM) };
        double.wait().unwrap();
        double = start_double(&bin, &socket);
        back.push(
            up_rx
                .recv_timeout(Duration::from_secs(10))
                .expect("session did not come back"),
        );
    }
    println!(
        "ubusd restart -> object registered again (includes the double's start), 5 runs: max {:?}",
        back.iter().max().unwrap()
    );
    stop_tx.send(()).unwrap();
    server.join().unwrap();
    unsafe { libc::kill(double.id() as libc::pid_t, libc::SIGTERM) };
    double.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
