//! The test double (mwan-ubus-double) checked against the captures: it
//! must answer like the captured ubusd + procd, byte for byte once ids and
//! pids are mapped, and publish the same NOTIFYs. Also exercises the mio
//! Session against it, including a ubusd restart.

mod common;

use common::{runs, BusThread, Double};
use mwan_ubus::blobmsg::{Table, Value};
use mwan_ubus::blocking::{BlockingClient, CallError};
use mwan_ubus::client::{Client, Event, MethodSpec};
use mwan_ubus::message::{status, Message, MsgType};
use mwan_ubus::procd::{self, InstanceSpec};
use mwan_ubus::Session;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn encode(t: &Table) -> Vec<u8> {
    let mut v = Vec::new();
    t.encode_into(&mut v).unwrap();
    v
}

/// Replaces every `pid` value in `t` by the captured pid it corresponds to
/// (first sight defines the mapping; it must stay one-to-one).
fn map_pids(t: &Table, map: &mut HashMap<i64, i64>, captured: Option<&Table>) -> Table {
    Table(
        t.iter()
            .map(|(k, v)| {
                let cap = captured.and_then(|c| c.get(k));
                let v = match v {
                    Value::Int32(p) if k == "pid" => {
                        let ours = i64::from(*p);
                        let theirs = cap.and_then(Value::as_i64).unwrap_or(-1);
                        let mapped = *map.entry(ours).or_insert(theirs);
                        Value::Int32(mapped as i32)
                    }
                    Value::Table(inner) => {
                        Value::Table(map_pids(inner, map, cap.and_then(Value::as_table)))
                    }
                    other => other.clone(),
                };
                (k.to_owned(), v)
            })
            .collect(),
    )
}

/// The procd leg of run 2: each CLI call (method, args, t) with procd's
/// answer (status, data), and procd's NOTIFYs in order.
struct Script {
    calls: Vec<(f64, String, Table, u32, Option<Table>)>,
    notifies: Vec<(String, Table)>,
}

fn procd_script(run_index: usize) -> Script {
    let run = runs().swap_remove(run_index);
    let mut calls = Vec::new();
    let mut notifies = Vec::new();
    let mut open: HashMap<(u16, u32), usize> = HashMap::new();
    for f in run.iter().filter(|f| f.role == "procd") {
        let m = Message::decode(&f.bytes).unwrap();
        match (f.dir.as_str(), m.kind) {
            ("ubusd->client", MsgType::Invoke) if m.user().is_some() => {
                open.insert((m.seq, m.peer), calls.len());
                calls.push((
                    f.t,
                    m.method().unwrap().to_owned(),
                    m.data().cloned().unwrap(),
                    0,
                    None,
                ));
            }
            ("client->ubusd", MsgType::Data) => {
                let i = open[&(m.seq, m.peer)];
                calls[i].4 = m.data().cloned();
            }
            ("client->ubusd", MsgType::Status) => {
                if let Some(i) = open.remove(&(m.seq, m.peer)) {
                    calls[i].3 = m.status().unwrap();
                }
            }
            ("client->ubusd", MsgType::Notify) => {
                notifies.push((m.method().unwrap().to_owned(), m.data().cloned().unwrap()))
            }
            _ => {}
        }
    }
    Script { calls, notifies }
}

#[test]
fn double_answers_and_notifies_like_captured_procd_run1() {
    replay_procd(0, 8, 5);
}

#[test]
fn double_answers_and_notifies_like_captured_procd_run2() {
    replay_procd(1, 25, 15);
}

/// Replays one capture run's `service` calls against a fresh double.
fn replay_procd(run_index: usize, min_calls: usize, min_notifies: usize) {
    let double = Double::start();
    let script = procd_script(run_index);
    assert!(
        script.calls.len() >= min_calls && script.notifies.len() >= min_notifies,
        "{} calls, {} notifies",
        script.calls.len(),
        script.notifies.len()
    );
    let mut sub = Client::new();
    sub.subscribe("service").unwrap();
    let bus = BusThread::spawn(&double.socket, sub, |_, _| {});
    bus.wait_for("subscription", |e| matches!(e, Event::Subscribed { .. }));

    let t0 = Instant::now();
    let first_t = script.calls[0].0;
    let mut pid_map = HashMap::new();
    for (t, method, args, want_status, want_data) in &script.calls {
        // Keep the captured pacing: some answers depend on time (respawn after 5 s, term_timeout 2 s).
        let due = t0 + Duration::from_secs_f64(t - first_t);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let got = double.client().call("service", method, args.clone());
        match (got, want_data) {
            (Ok(data), Some(want)) => {
                let mapped = map_pids(&data, &mut pid_map, Some(want));
                assert_eq!(
                    encode(&mapped),
                    encode(want),
                    "{method} {:?} at t={t}: got {:?} want {:?}",
                    args.to_json(),
                    mapped.to_json(),
                    want.to_json()
                );
            }
            (Ok(data), None) => {
                assert_eq!(*want_status, status::OK, "{method}");
                assert!(
                    data.is_empty(),
                    "{method}: unexpected data {:?}",
                    data.to_json()
                );
            }
            (Err(CallError::Status(code)), _) => assert_eq!(code, *want_status, "{method}"),
            (Err(e), _) => panic!("{method}: {e}"),
        }
    }
    // pids: one-to-one with the captured ones (kept where procd kept them, new where it restarted).
    let mut theirs: Vec<i64> = pid_map.values().copied().collect();
    theirs.sort_unstable();
    theirs.dedup();
    assert_eq!(
        theirs.len(),
        pid_map.len(),
        "pid mapping not one-to-one: {pid_map:?}"
    );

    // Same NOTIFYs, same order (pids in instance.respawn mapped the same way).
    std::thread::sleep(Duration::from_millis(300));
    let mut got = Vec::new();
    while let Ok(e) = bus.events.try_recv() {
        if let Event::Notification { method, data, .. } = e {
            got.push((method, data));
        }
    }
    let got: Vec<(String, serde_json::Value)> = got
        .into_iter()
        .zip(
            script
                .notifies
                .iter()
                .map(Some)
                .chain(std::iter::repeat(None)),
        )
        .map(|((m, d), want)| (m, map_pids(&d, &mut pid_map, want.map(|w| &w.1)).to_json()))
        .collect();
    let want: Vec<(String, serde_json::Value)> = script
        .notifies
        .iter()
        .map(|(m, d)| (m.clone(), d.to_json()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn double_lookup_events_and_errors_match_run1() {
    let double = Double::start();
    let run = runs().remove(0);
    // LOOKUP service: the same signature bytes procd registered.
    let captured_sig = run
        .iter()
        .map(|f| Message::decode(&f.bytes).unwrap())
        .find(|m| m.kind == MsgType::Data && m.path() == Some("service") && m.signature().is_some())
        .unwrap()
        .signature()
        .cloned()
        .unwrap();
    let mut c = Client::new();
    c.connection_started();
    let mut raw = std::os::unix::net::UnixStream::connect(&double.socket).unwrap();
    let msgs = read_msgs(&mut raw, 1);
    assert_eq!(msgs[0].kind, MsgType::Hello);
    assert!(msgs[0].attrs.is_empty() && msgs[0].seq == 0 && msgs[0].peer > 1);
    c.handle(msgs[0].clone());
    c.lookup(Some("service"), 7).unwrap();
    use std::io::Write;
    raw.write_all(&std::mem::take(c.output())).unwrap();
    let msgs = read_msgs(&mut raw, 2);
    assert_eq!(msgs[0].signature(), Some(&captured_sig));
    assert_eq!(msgs[1].status(), Some(status::OK));
    assert_eq!(
        msgs[1].attrs.len(),
        1,
        "LOOKUP STATUS carries only the code, as captured"
    );

    // h_errors: the same status codes.
    let mut cli = double.client();
    assert!(matches!(
        cli.call("nope", "x", Table::new()),
        Err(CallError::Status(status::NOT_FOUND))
    ));
    assert!(matches!(
        cli.call("service", "nope", Table::new()),
        Err(CallError::Status(status::METHOD_NOT_FOUND))
    ));
    let name = |n: &str| Table::new().with("name", Value::string(n));
    assert!(matches!(
        cli.call("service", "delete", name("nope")),
        Err(CallError::Status(status::NOT_FOUND))
    ));
    let no_name = Table::new().with("instances", Value::Table(Table::new()));
    assert!(matches!(
        cli.call("service", "set", no_name),
        Err(CallError::Status(status::INVALID_ARGUMENT))
    ));
}

fn read_msgs(s: &mut std::os::unix::net::UnixStream, n: usize) -> Vec<Message> {
    use std::io::Read;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while out.len() < n {
        let mut chunk = [0u8; 4096];
        let k = s.read(&mut chunk).unwrap();
        assert!(k > 0, "closed");
        buf.extend_from_slice(&chunk[..k]);
        while let Ok(Some(len)) = mwan_ubus::message::frame_len(&buf) {
            if buf.len() < len {
                break;
            }
            out.push(Message::decode(&buf[..len]).unwrap());
            buf.drain(..len);
        }
    }
    out
}

#[test]
fn session_serves_an_object_events_and_survives_a_ubusd_restart() {
    let mut double = Double::start();
    let mut poll = mio::Poll::new().unwrap();
    let mut events = mio::Events::with_capacity(16);
    let mut client = Client::new();
    client
        .add_object(
            "demo.obj",
            vec![MethodSpec::new(
                "echo",
                &[("msg", mwan_ubus::blobmsg::kind::STRING)],
            )],
        )
        .unwrap();
    client.listen("demo.ping").unwrap();
    let mut session = Session::new(&double.socket, mio::Token(3), client);
    let mut pending = session.start(poll.registry(), Instant::now());

    // Drive the loop until `pred` sees an event, answering INVOKEs on the way.
    let mut drive = |session: &mut Session,
                     pending: &mut Vec<Event>,
                     what: &str,
                     pred: &dyn Fn(&Event) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            for e in std::mem::take(pending) {
                if let Event::Invoke(inv) = &e {
                    let msg = inv.data.get_str("msg").unwrap_or_default().to_owned();
                    session
                        .client()
                        .reply(
                            inv,
                            status::OK,
                            Some(Table::new().with("echo", Value::string(msg))),
                        )
                        .unwrap();
                }
                if pred(&e) {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            let now = Instant::now();
            pending.extend(session.flush(poll.registry(), now));
            let t = session
                .next_timeout(now)
                .map_or(Duration::from_millis(50), |t| {
                    t.min(Duration::from_millis(50))
                });
            poll.poll(&mut events, Some(t)).unwrap();
            let now = Instant::now();
            for ev in events.iter() {
                pending.extend(session.ready(poll.registry(), ev, now));
            }
            pending.extend(session.on_timeout(poll.registry(), now));
        }
    };

    for round in 0..2 {
        drive(
            &mut session,
            &mut pending,
            "object registration",
            &|e| matches!(e, Event::ObjectRegistered { path, .. } if path == "demo.obj"),
        );
        // Another process calls our object (a thread: the call blocks).
        let socket = double.socket.clone();
        let caller = std::thread::spawn(move || {
            mwan_ubus::blocking::call(
                &socket,
                "demo.obj",
                "echo",
                Table::new().with("msg", Value::string("hi")),
                Duration::from_secs(10),
            )
        });
        // And sends an event we listen for.
        let socket = double.socket.clone();
        let sender = std::thread::spawn(move || {
            // Give the listener registration a moment after the object registration.
            std::thread::sleep(Duration::from_millis(200));
            let mut c = BlockingClient::connect(&socket, Duration::from_secs(10)).unwrap();
            c.send_event("demo.ping", Table::new().with("n", Value::Int32(round)))
        });
        drive(
            &mut session,
            &mut pending,
            "event",
            &|e| matches!(e, Event::Event { name, data } if name == "demo.ping" && data.get("n") == Some(&Value::Int32(round))),
        );
        let reply = caller.join().unwrap().unwrap();
        assert_eq!(reply.get_str("echo"), Some("hi"));
        sender.join().unwrap().unwrap();
        if round == 0 {
            // ubusd restarts: the session must notice, reconnect and re-register.
            double.stop();
            drive(&mut session, &mut pending, "disconnect", &|e| {
                matches!(e, Event::Disconnected)
            });
            double.spawn();
        }
    }
}

#[test]
fn per_instance_restart_leaves_the_other_tracker_running() {
    // What mwand does under procd: trackers in their own service, one
    // restarted by delete + add; the other keeps its pid.
    let double = Double::start();
    let mut cli = double.client();
    let spec = |arg: &str| InstanceSpec {
        command: vec!["/bin/sleep".into(), arg.into()],
        respawn: Some(procd::Respawn::default()),
        stdout: true,
        stderr: true,
        ..InstanceSpec::default()
    };
    let wans = [
        (procd::tracker_instance("wan1"), spec("3001")),
        (procd::tracker_instance("wan2"), spec("3002")),
    ];
    cli.call("service", "add", procd::add(procd::TRACKER_SERVICE, &wans))
        .unwrap();
    // The init script registering mwand with `service set` must not touch them.
    let mwand = [("mwand".to_owned(), spec("3000"))];
    cli.call(
        "service",
        "set",
        procd::set(procd::CONTROLLER_SERVICE, &mwand),
    )
    .unwrap();
    let pids = |cli: &mut BlockingClient| {
        let list = cli
            .call("service", "list", procd::list(Some(procd::TRACKER_SERVICE)))
            .unwrap();
        let svc = procd::parse_list(&list);
        let get = |n: &str| {
            svc[0]
                .instances
                .iter()
                .find(|i| i.name == n)
                .and_then(|i| i.pid)
        };
        (get("track_wan1"), get("track_wan2"))
    };
    let (w1, w2) = pids(&mut cli);
    assert!(w1.is_some() && w2.is_some());
    for (method, args) in procd::restart_instance(procd::TRACKER_SERVICE, "track_wan2", &wans[1].1)
    {
        cli.call("service", method, args).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (n1, n2) = pids(&mut cli);
        assert_eq!(n1, w1, "track_wan1 must keep its pid");
        if n2.is_some() && n2 != w2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "track_wan2 was not restarted: {n2:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A clean stop removes the trackers' service.
    cli.call(
        "service",
        "delete",
        procd::delete(procd::TRACKER_SERVICE, None),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !procd::parse_list(
        &cli.call("service", "list", procd::list(Some(procd::TRACKER_SERVICE)))
            .unwrap(),
    )
    .is_empty()
    {
        assert!(Instant::now() < deadline, "trackers' service not removed");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A client on a plain socket: requests built by `Client`, frames read raw.
struct Raw {
    stream: std::os::unix::net::UnixStream,
    client: Client,
    id: u32,
}

impl Raw {
    fn connect(double: &Double) -> Raw {
        let mut stream = std::os::unix::net::UnixStream::connect(&double.socket).unwrap();
        let hello = read_msgs(&mut stream, 1).remove(0);
        let mut client = Client::new();
        client.connection_started();
        client.handle(hello.clone());
        Raw {
            stream,
            client,
            id: hello.peer,
        }
    }

    /// Writes what the client queued, then reads `n` frames, feeding each
    /// to the client (whose answers go out at the next call).
    fn exchange(&mut self, n: usize) -> Vec<Message> {
        use std::io::Write;
        self.stream
            .write_all(&std::mem::take(self.client.output()))
            .unwrap();
        let msgs = read_msgs(&mut self.stream, n);
        for m in &msgs {
            self.client.handle(m.clone());
        }
        msgs
    }
}

/// (type, attribute ids in wire order) of a frame.
fn shape(m: &Message) -> (u8, Vec<u8>) {
    (m.kind.to_u8(), m.attrs.iter().map(|a| a.id()).collect())
}

/// The captured frame of `file` whose note contains `what`.
fn captured(file: &str, what: &str) -> Message {
    let f = common::load_frames(&common::vectors_dir().join(file))
        .into_iter()
        .find(|f| f.note.contains(what))
        .unwrap_or_else(|| panic!("{file}: no frame like {what}"));
    Message::decode(&f.bytes).unwrap()
}

#[test]
fn double_frames_have_the_captured_shapes() {
    // What the double sends on its own (relayed calls, event deliveries,
    // subscriber counts, NOTIFY fan-out) has the captured frame types,
    // attribute order, peer and seq rules (e2, f2, e1, g1, g2).
    let double = Double::start();
    let mut owner = Raw::connect(&double);
    owner
        .client
        .add_object("test", vec![MethodSpec::new("hello", &[("msg", 3)])])
        .unwrap();
    owner.exchange(2);
    let obj = owner.client.object_id("test").unwrap();

    // e2: INVOKE forwarded to the owner, DATA + STATUS relayed to the caller.
    let mut caller = Raw::connect(&double);
    caller
        .client
        .call(
            "test",
            "hello",
            Table::new().with("msg", Value::string("x")),
            1,
        )
        .unwrap();
    caller.exchange(2); // LOOKUP answer; the INVOKE is now queued
    use std::io::Write;
    caller
        .stream
        .write_all(&std::mem::take(caller.client.output()))
        .unwrap();
    let fwd = read_msgs(&mut owner.stream, 1).remove(0);
    let want = captured("e2_invoke_test_hello.json", "[example-server#10] INVOKE");
    assert_eq!(shape(&fwd), shape(&want), "forwarded INVOKE");
    assert_eq!((fwd.peer, fwd.user()), (caller.id, Some("root")));
    let [Event::Invoke(inv)] = &owner.client.handle(fwd.clone())[..] else {
        panic!("owner did not get the call")
    };
    owner
        .client
        .reply(
            inv,
            status::OK,
            Some(Table::new().with("m", Value::string("x"))),
        )
        .unwrap();
    owner.exchange(0);
    let relayed = read_msgs(&mut caller.stream, 2);
    for (got, what) in relayed
        .iter()
        .zip(["[ubus-cli#11] DATA seq=2", "[ubus-cli#11] STATUS seq=2"])
    {
        let want = captured("e2_invoke_test_hello.json", what);
        assert_eq!(shape(got), shape(&want), "relayed {what}");
        assert_eq!(
            (got.seq, got.peer),
            (fwd.seq, obj),
            "relayed {what}: seq kept, peer = object"
        );
    }

    // f2 / e1: event deliveries share one counter across listeners.
    let mut l1 = Raw::connect(&double);
    l1.client.listen("demo.ev").unwrap();
    l1.exchange(2); // listener object; `register` queued
    l1.exchange(1);
    let mut l2 = Raw::connect(&double);
    l2.client.listen("demo.ev").unwrap();
    l2.exchange(2); // listener object; `register` queued
    l2.exchange(1);
    let mut sender = Raw::connect(&double);
    sender
        .client
        .send_event("demo.ev", Table::new().with("a", Value::Int32(1)))
        .unwrap();
    let ack = sender.exchange(1).remove(0);
    assert_eq!(
        shape(&ack),
        shape(&captured(
            "f2_event_send_and_delivery.json",
            "[ubus-cli#13] STATUS"
        ))
    );
    let d1 = read_msgs(&mut l1.stream, 1).remove(0);
    let d2 = read_msgs(&mut l2.stream, 1).remove(0);
    let want = captured("f2_event_send_and_delivery.json", "[ubus-listen#12] INVOKE");
    assert_eq!((shape(&d1), d1.peer), (shape(&want), 0), "event delivery");
    assert_eq!(shape(&d2), shape(&want));
    assert_eq!(
        d2.seq,
        d1.seq.wrapping_add(1),
        "one counter for all deliveries (e1: 4, 5)"
    );
    let mut l3 = Raw::connect(&double);
    l3.client.listen("demo.ev").unwrap();
    l3.exchange(2); // listener object; `register` queued
    l3.exchange(1);
    sender.client.send_event("demo.ev", Table::new()).unwrap();
    sender.exchange(1);
    let firsts: Vec<u16> = [&mut l1, &mut l2, &mut l3]
        .into_iter()
        .map(|l| read_msgs(&mut l.stream, 1)[0].seq)
        .collect();
    assert_eq!(
        firsts,
        [
            d2.seq.wrapping_add(1),
            d2.seq.wrapping_add(2),
            d2.seq.wrapping_add(3)
        ],
        "a new listener's first event continues the counter (f2: seq 6)"
    );

    // g1: the owner hears of its first subscriber; g2: NOTIFY fan-out.
    let mut sub = Raw::connect(&double);
    sub.client.subscribe("test").unwrap();
    sub.exchange(2); // ADD_OBJECT answer; LOOKUP queued
    sub.exchange(2); // LOOKUP answer; SUBSCRIBE queued
    sub.exchange(1); // SUBSCRIBE status
    let active = read_msgs(&mut owner.stream, 1).remove(0);
    let want = captured("g1_subscribe.json", "NOTIFY seq=1");
    assert_eq!(
        (shape(&active), active.peer, active.active()),
        (shape(&want), 0, Some(true))
    );
    owner.client.handle(active);
    owner.client.set_next_seq(17);
    owner
        .client
        .notify("test", "instance.start", Table::new())
        .unwrap();
    owner.exchange(0);
    let note = read_msgs(&mut sub.stream, 1).remove(0);
    let want = captured(
        "g2_notify_delivery.json",
        "[ubus-subscribe#14] INVOKE seq=17",
    );
    assert_eq!(shape(&note), shape(&want), "notification delivery");
    assert_eq!(
        (note.seq, note.peer, note.no_reply()),
        (17, owner.id, true),
        "publisher's seq and id"
    );
}
