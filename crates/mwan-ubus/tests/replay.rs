//! Replays each captured conversation through our client state machine:
//! the client side must come out of `Client` byte for byte, and every reply
//! ubusd sent must be understood (turned into the right event).

mod common;

use common::{runs, Frame};
use mwan_ubus::blobmsg::{Table, Value};
use mwan_ubus::client::{Client, Event, MethodSpec};
use mwan_ubus::message::{status, Message, MsgType, EVENT_OBJECT_ID};
use std::collections::{BTreeMap, BTreeSet, HashMap};

fn decode(f: &Frame) -> Message {
    Message::decode(&f.bytes).unwrap()
}

fn by_connection(run: &[Frame]) -> BTreeMap<u64, Vec<&Frame>> {
    let mut map: BTreeMap<u64, Vec<&Frame>> = BTreeMap::new();
    for f in run {
        map.entry(f.conn).or_default().push(f);
    }
    map
}

/// What a CLI-like client asked for, read back from its requests.
#[derive(Debug)]
enum Intent {
    Lookup(Option<String>),
    Call {
        path: String,
        method: String,
        data: Table,
    },
    Listen(String),
    Subscribe(String),
    SendEvent(String, Table),
}

fn intents(client_frames: &[Message]) -> Vec<Intent> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < client_frames.len() {
        let m = &client_frames[i];
        let next = client_frames.get(i + 1);
        let after = client_frames.get(i + 2);
        match m.kind {
            MsgType::Lookup => match next {
                Some(n) if n.kind == MsgType::Invoke => {
                    out.push(Intent::Call {
                        path: m.path().unwrap().to_owned(),
                        method: n.method().unwrap().to_owned(),
                        data: n.data().cloned().unwrap(),
                    });
                    i += 1;
                }
                _ => out.push(Intent::Lookup(m.path().map(str::to_owned))),
            },
            MsgType::AddObject if m.path().is_none() => match (next, after) {
                (Some(n), _) if n.kind == MsgType::Invoke && n.method() == Some("register") => {
                    let pattern = n.data().unwrap().get_str("pattern").unwrap().to_owned();
                    out.push(Intent::Listen(pattern));
                    i += 1;
                }
                (Some(n), Some(s)) if n.kind == MsgType::Lookup && s.kind == MsgType::Subscribe => {
                    out.push(Intent::Subscribe(n.path().unwrap().to_owned()));
                    i += 2;
                }
                _ => panic!("unmodelled anonymous ADD_OBJECT sequence"),
            },
            MsgType::Invoke
                if m.obj_id() == Some(EVENT_OBJECT_ID) && m.method() == Some("send") =>
            {
                let d = m.data().unwrap();
                out.push(Intent::SendEvent(
                    d.get_str("id").unwrap().to_owned(),
                    d.get_table("data").cloned().unwrap(),
                ));
            }
            // Acknowledgements of delivered events: the client sends them by itself.
            MsgType::Status => {}
            other => panic!("unmodelled client request {other:?}"),
        }
        i += 1;
    }
    out
}

/// Frames a replay consumed or reproduced: (capture file, index in it).
type Covered = BTreeSet<(String, usize)>;

/// Connections that own objects (answer INVOKEs, publish NOTIFYs).
fn is_object_owner(role: &str) -> bool {
    matches!(role, "procd" | "example-server")
}

fn owner_connections(run: &[Frame]) -> impl Iterator<Item = (u64, Vec<&Frame>)> {
    by_connection(run)
        .into_iter()
        .filter(|(_, frames)| is_object_owner(&frames[0].role))
}

fn mark(covered: &mut Covered, f: &Frame) {
    covered.insert((f.file.clone(), f.index));
}

#[test]
fn client_side_of_every_cli_conversation_is_reproduced_byte_for_byte() {
    replay_cli_conversations();
}

/// Replays every connection that is not an object owner's (the ubus CLI,
/// listener, subscriber, socat); returns the frames it covered (all of
/// each such connection's frames).
fn replay_cli_conversations() -> Covered {
    let mut covered = Covered::new();
    let mut conversations = 0;
    for run in runs() {
        for (conn, frames) in by_connection(&run) {
            let role = frames[0].role.as_str();
            if is_object_owner(role) {
                continue;
            }
            let captured_out: Vec<u8> = frames
                .iter()
                .filter(|f| f.dir == "client->ubusd")
                .flat_map(|f| f.bytes.clone())
                .collect();
            let requests: Vec<Message> = frames
                .iter()
                .filter(|f| f.dir == "client->ubusd")
                .map(|f| decode(f))
                .collect();
            let mut client = Client::new();
            client.connection_started();
            let plan = intents(&requests);
            for (tag, intent) in plan.iter().enumerate() {
                let tag = tag as u64;
                match intent {
                    Intent::Lookup(p) => client.lookup(p.as_deref(), tag).unwrap(),
                    Intent::Call { path, method, data } => {
                        client.call(path, method, data.clone(), tag).unwrap()
                    }
                    Intent::Listen(p) => client.listen(p).unwrap(),
                    Intent::Subscribe(p) => client.subscribe(p).unwrap(),
                    Intent::SendEvent(id, data) => client.send_event(id, data.clone()).unwrap(),
                }
            }
            let mut out = Vec::new();
            let mut events = Vec::new();
            for f in frames.iter().filter(|f| f.dir == "ubusd->client") {
                events.extend(client.handle(decode(f)));
                out.append(client.output());
            }
            assert_eq!(
                hex(&out),
                hex(&captured_out),
                "conn {conn} ({role}): our requests differ from the captured ones; plan {plan:?}"
            );
            // Every ubusd message was understood.
            let unexpected: Vec<_> = events
                .iter()
                .filter(|e| matches!(e, Event::Unexpected(_) | Event::RegistrationFailed { .. }))
                .collect();
            assert!(unexpected.is_empty(), "conn {conn}: {unexpected:?}");
            check_outcome(conn, &frames, &plan, &events);
            for f in &frames {
                mark(&mut covered, f);
            }
            conversations += 1;
        }
    }
    assert!(
        conversations >= 30,
        "only {conversations} conversations replayed"
    );
    covered
}

fn check_outcome(conn: u64, frames: &[&Frame], plan: &[Intent], events: &[Event]) {
    let from_ubusd: Vec<Message> = frames
        .iter()
        .filter(|f| f.dir == "ubusd->client")
        .map(|f| decode(f))
        .collect();
    let last_status = from_ubusd
        .iter()
        .rev()
        .find(|m| m.kind == MsgType::Status)
        .and_then(Message::status);
    for (tag, intent) in plan.iter().enumerate() {
        let tag = tag as u64;
        match intent {
            Intent::Call { .. } => {
                let reply = events.iter().find_map(|e| match e {
                    Event::Reply {
                        tag: t,
                        status,
                        data,
                    } if *t == tag => Some((*status, data)),
                    _ => None,
                });
                let Some((code, data)) = reply else {
                    panic!("conn {conn}: no reply event for {intent:?}: {events:?}")
                };
                assert_eq!(Some(code), last_status, "conn {conn}");
                // Reply data = the DATA ubusd relayed for the INVOKE.
                let relayed: Vec<&Table> = from_ubusd
                    .iter()
                    .filter(|m| m.kind == MsgType::Data && m.peer != 0)
                    .filter_map(Message::data)
                    .collect();
                assert_eq!(data.iter().collect::<Vec<_>>(), relayed, "conn {conn}");
            }
            Intent::Lookup(_) => {
                let n_data = from_ubusd
                    .iter()
                    .filter(|m| m.kind == MsgType::Data)
                    .count();
                assert!(
                    events.iter().any(|e| matches!(e, Event::Lookup { tag: t, objects, .. }
                        if *t == tag && objects.len() == n_data && objects.iter().all(|o| o.signature.is_some()))),
                    "conn {conn}: lookup result not understood: {events:?}"
                );
            }
            Intent::Listen(p) => {
                // Deliveries to the listener appear as events (f2 has one).
                let delivered = from_ubusd
                    .iter()
                    .filter(|m| m.kind == MsgType::Invoke)
                    .count();
                let got = events
                    .iter()
                    .filter(|e| matches!(e, Event::Event { name, .. } if name == p))
                    .count();
                assert_eq!(got, delivered, "conn {conn}");
            }
            Intent::Subscribe(p) => {
                assert!(
                    events
                        .iter()
                        .any(|e| matches!(e, Event::Subscribed { path, .. } if path == p)),
                    "conn {conn}: {events:?}"
                );
                let notes: Vec<&str> = events
                    .iter()
                    .filter_map(|e| match e {
                        Event::Notification { path, method, data } if path == p => {
                            assert!(data.get_str("service").is_some());
                            Some(method.as_str())
                        }
                        _ => None,
                    })
                    .collect();
                assert_eq!(notes, ["instance.stop", "instance.start"], "conn {conn}");
            }
            Intent::SendEvent(..) => {
                assert!(
                    events.is_empty()
                        || events.iter().all(|e| matches!(e, Event::Connected { .. }))
                );
            }
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn methods_from_signature(sig: &Table) -> Vec<MethodSpec> {
    sig.iter()
        .map(|(name, args)| MethodSpec {
            name: name.to_owned(),
            args: args
                .as_table()
                .unwrap()
                .iter()
                .map(|(a, t)| (a.to_owned(), t.as_i64().unwrap() as u8))
                .collect(),
        })
        .collect()
}

#[test]
fn object_owner_side_replies_and_notifies_byte_for_byte() {
    replay_owner_calls_and_notifies();
}

/// procd and the example server: our client, owning the same objects,
/// must answer the forwarded INVOKEs and publish NOTIFYs with the same
/// bytes they did, and understand ubusd's subscriber-count NOTIFYs.
fn replay_owner_calls_and_notifies() -> Covered {
    let mut covered = Covered::new();
    let mut replies_checked = 0;
    let mut notifies_checked = 0;
    let mut active_seen = Vec::new();
    for run in runs() {
        // Object ids, paths and signatures, from every LOOKUP result of the run.
        let mut objects: HashMap<u32, (String, Table)> = HashMap::new();
        for f in &run {
            let m = decode(f);
            if m.kind == MsgType::Data {
                if let (Some(p), Some(id), Some(sig)) = (m.path(), m.obj_id(), m.signature()) {
                    objects.insert(id, (p.to_owned(), sig.clone()));
                }
            }
        }
        for (conn, frames) in owner_connections(&run) {
            let msgs: Vec<Message> = frames.iter().map(|f| decode(f)).collect();
            // Objects this connection owns = targets of INVOKEs forwarded to it with user set.
            let mut owned: Vec<u32> = msgs
                .iter()
                .filter(|m| m.kind == MsgType::Invoke && m.user().is_some())
                .filter_map(Message::obj_id)
                .chain(
                    msgs.iter()
                        .filter(|m| m.kind == MsgType::Notify)
                        .filter_map(Message::obj_id),
                )
                .filter(|id| objects.contains_key(id))
                .collect();
            owned.sort_unstable();
            owned.dedup();
            let mut client = Client::new();
            client.connection_started();
            let hello = Message::new(MsgType::Hello, 0, 0x1234);
            client.handle(hello);
            // Register each owned object and answer for ubusd with its captured id.
            for id in &owned {
                let (path, sig) = &objects[id];
                client
                    .add_object(path, methods_from_signature(sig))
                    .unwrap();
                let req = Message::decode(&std::mem::take(client.output())).unwrap();
                assert_eq!(req.signature(), Some(sig), "signature of {path}");
                client.handle(
                    Message::new(MsgType::Data, req.seq, 0).with(mwan_ubus::Attr::ObjId(*id)),
                );
                let ev = client.handle(
                    Message::new(MsgType::Status, req.seq, 0).with(mwan_ubus::Attr::Status(0)),
                );
                assert!(matches!(&ev[..], [Event::ObjectRegistered { id: i, .. }] if i == id));
            }
            for (i, m) in msgs.iter().enumerate() {
                let f = frames[i];
                match (f.dir.as_str(), m.kind) {
                    ("ubusd->client", MsgType::Invoke) if m.user().is_some() => {
                        let ev = client.handle(m.clone());
                        let [Event::Invoke(inv)] = &ev[..] else {
                            // A method outside the signature: answered by the client itself.
                            let answer = std::mem::take(client.output());
                            let captured = msgs[i + 1..]
                                .iter()
                                .zip(&frames[i + 1..])
                                .find(|(r, f)| {
                                    f.dir == "client->ubusd"
                                        && r.seq == m.seq
                                        && r.kind == MsgType::Status
                                })
                                .map(|(_, f)| *f)
                                .unwrap();
                            assert_eq!(
                                hex(&answer),
                                hex(&captured.bytes),
                                "conn {conn}: {}",
                                f.note
                            );
                            mark(&mut covered, f);
                            mark(&mut covered, captured);
                            replies_checked += 1;
                            continue;
                        };
                        assert_eq!(inv.user.as_deref(), Some("root"));
                        // The owner's captured answer: DATA* then STATUS with this seq and peer.
                        let answer: Vec<(&Message, &&Frame)> = msgs[i + 1..]
                            .iter()
                            .zip(&frames[i + 1..])
                            .filter(|(r, f)| {
                                f.dir == "client->ubusd"
                                    && r.seq == m.seq
                                    && r.peer == m.peer
                                    && matches!(r.kind, MsgType::Data | MsgType::Status)
                            })
                            .take_while({
                                let mut done = false;
                                move |(r, _)| {
                                    let keep = !done;
                                    done |= r.kind == MsgType::Status;
                                    keep
                                }
                            })
                            .collect();
                        let status = answer.last().unwrap().0.status().unwrap();
                        let data = answer.iter().find_map(|(r, _)| r.data().cloned());
                        client.reply(inv, status, data).unwrap();
                        let expected: Vec<u8> =
                            answer.iter().flat_map(|(_, f)| f.bytes.clone()).collect();
                        mark(&mut covered, f);
                        for (_, a) in &answer {
                            mark(&mut covered, a);
                        }
                        assert_eq!(
                            hex(&std::mem::take(client.output())),
                            hex(&expected),
                            "conn {conn}: {}",
                            f.note
                        );
                        replies_checked += 1;
                    }
                    ("ubusd->client", MsgType::Notify) => {
                        let ev = client.handle(m.clone());
                        match &ev[..] {
                            [Event::SubscribersChanged { path, active }] => {
                                active_seen.push((path.clone(), *active));
                                mark(&mut covered, f);
                            }
                            other => panic!("conn {conn}: {other:?}"),
                        }
                    }
                    ("client->ubusd", MsgType::Notify) => {
                        let path = &objects[&m.obj_id().unwrap()].0;
                        client.set_next_seq(m.seq);
                        client
                            .notify(path, m.method().unwrap(), m.data().cloned().unwrap())
                            .unwrap();
                        assert_eq!(
                            hex(&std::mem::take(client.output())),
                            hex(&f.bytes),
                            "{}",
                            f.note
                        );
                        mark(&mut covered, f);
                        notifies_checked += 1;
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(
        replies_checked >= 35,
        "only {replies_checked} replies checked"
    );
    assert!(
        notifies_checked >= 20,
        "only {notifies_checked} notifies checked"
    );
    assert_eq!(
        active_seen,
        [("service".to_owned(), true), ("service".to_owned(), false)]
    );
    covered
}

#[test]
fn event_delivery_to_a_listener_is_acknowledged_like_libubus() {
    // f2: ubusd delivers "myevent" to the listener object; the listener answers STATUS 0 + OBJID.
    let mut client = Client::new();
    client.connection_started();
    client.listen("my*").unwrap();
    client.handle(Message::new(MsgType::Hello, 0, 7));
    let add = Message::decode(&std::mem::take(client.output())).unwrap();
    client
        .handle(Message::new(MsgType::Data, add.seq, 0).with(mwan_ubus::Attr::ObjId(0x7c20_5d4b)));
    client.handle(Message::new(MsgType::Status, add.seq, 0).with(mwan_ubus::Attr::Status(0)));
    client.output().clear();
    let delivery = Message::new(MsgType::Invoke, 6, 0)
        .with(mwan_ubus::Attr::ObjId(0x7c20_5d4b))
        .with(mwan_ubus::Attr::Method("myevent".into()))
        .with(mwan_ubus::Attr::Data(
            Table::new().with("a", Value::Int32(1)),
        ));
    let ev = client.handle(delivery);
    assert!(
        matches!(&ev[..], [Event::Event { name, data }] if name == "myevent" && data.get("a") == Some(&Value::Int32(1)))
    );
    assert_eq!(
        hex(client.output()),
        "000100060000000000000014010000080000000003000008".to_owned() + "7c205d4b"
    );
}

/// A fresh client that has received the connection's captured HELLO.
fn client_after_hello(hello: &Frame) -> Client {
    let mut client = Client::new();
    client.connection_started();
    let ev = client.handle(decode(hello));
    assert!(
        matches!(&ev[..], [Event::Connected { client_id }] if *client_id == decode(hello).peer),
        "{}: {ev:?}",
        hello.note
    );
    client
}

/// The ubusd answers (DATA*, then STATUS) to request `seq` on this
/// connection, after position `from`.
fn answers<'a>(frames: &[&'a Frame], from: usize, seq: u16) -> Vec<&'a Frame> {
    let mut out = Vec::new();
    for f in &frames[from..] {
        let m = decode(f);
        if f.dir == "ubusd->client"
            && m.seq == seq
            // 0, or the event object for `register`.
            && (m.peer == 0 || m.peer == EVENT_OBJECT_ID)
            && matches!(m.kind, MsgType::Data | MsgType::Status)
        {
            out.push(*f);
            if m.kind == MsgType::Status {
                break;
            }
        }
    }
    assert!(
        out.last()
            .is_some_and(|f| decode(f).kind == MsgType::Status),
        "no STATUS for seq {seq}"
    );
    out
}

/// What the client wrote must be exactly the captured frame `f`.
fn expect_sent(client: &mut Client, f: &Frame, covered: &mut Covered) {
    assert_eq!(
        hex(&std::mem::take(client.output())),
        hex(&f.bytes),
        "{}: {}",
        f.file,
        f.note
    );
    mark(covered, f);
}

fn no_trouble(what: &str, events: &[Event]) {
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Unexpected(_) | Event::RegistrationFailed { .. })),
        "{what}: {events:?}"
    );
}

#[test]
fn object_owner_registrations_and_event_acks_byte_for_byte() {
    replay_owner_registrations();
}

/// The owners' own requests (procd's start-up in 00, the example server in
/// e1): each registration is made by a fresh `Client` at the captured seq
/// and must come out byte for byte; ubusd's answers must be understood;
/// every `ubus.object.add` delivered to a listener object is acknowledged
/// with the captured bytes.
fn replay_owner_registrations() -> Covered {
    let mut covered = Covered::new();
    let mut registrations = 0;
    let mut acks = 0;
    for run in runs() {
        for (conn, frames) in owner_connections(&run) {
            // Run 2 joined procd's connection later: no HELLO, no start-up.
            let Some(hello) = frames.iter().find(|f| decode(f).kind == MsgType::Hello) else {
                continue;
            };
            mark(&mut covered, hello);
            for (i, f) in frames.iter().enumerate() {
                if f.dir != "client->ubusd" {
                    continue;
                }
                let m = decode(f);
                let mut client = client_after_hello(hello);
                client.set_next_seq(m.seq);
                match m.kind {
                    MsgType::AddObject if m.path().is_some() => {
                        let path = m.path().unwrap();
                        client
                            .add_object(path, methods_from_signature(m.signature().unwrap()))
                            .unwrap();
                        expect_sent(&mut client, f, &mut covered);
                        let replies = answers(&frames, i + 1, m.seq);
                        let id = decode(replies[0]).obj_id().unwrap();
                        let ev: Vec<Event> = replies
                            .iter()
                            .flat_map(|r| client.handle(decode(r)))
                            .collect();
                        assert!(
                            matches!(&ev[..], [Event::ObjectRegistered { path: p, id: i }] if p == path && *i == id),
                            "conn {conn}: {ev:?}"
                        );
                        replies.iter().for_each(|r| mark(&mut covered, r));
                        registrations += 1;
                    }
                    MsgType::AddObject => {
                        // Anonymous: an event listener when the next request registers it.
                        let replies = answers(&frames, i + 1, m.seq);
                        let id = decode(replies[0]).obj_id().unwrap();
                        let register = frames[i + 1..].iter().find(|r| {
                            let r = decode(r);
                            r.kind == MsgType::Invoke
                                && r.method() == Some("register")
                                && r.data()
                                    .and_then(|d| d.get("object"))
                                    .and_then(Value::as_i64)
                                    == Some(i64::from(id as i32))
                        });
                        let Some(register) = register else {
                            // Not a listener (procd's other anonymous objects,
                            // the server's subscriber object): as our subscriber
                            // object, whose next step is a LOOKUP of its target.
                            client.subscribe("target").unwrap();
                            expect_sent(&mut client, f, &mut covered);
                            let ev: Vec<Event> = replies
                                .iter()
                                .flat_map(|r| client.handle(decode(r)))
                                .collect();
                            no_trouble(&f.note, &ev);
                            let next = Message::decode(client.output()).unwrap();
                            assert_eq!((next.kind, next.path()), (MsgType::Lookup, Some("target")));
                            replies.iter().for_each(|r| mark(&mut covered, r));
                            registrations += 1;
                            continue;
                        };
                        let reg = decode(register);
                        let pattern = reg.data().unwrap().get_str("pattern").unwrap();
                        client.listen(pattern).unwrap();
                        expect_sent(&mut client, f, &mut covered);
                        let ev: Vec<Event> = replies
                            .iter()
                            .flat_map(|r| client.handle(decode(r)))
                            .collect();
                        no_trouble(&f.note, &ev);
                        replies.iter().for_each(|r| mark(&mut covered, r));
                        // The listener registers its pattern by itself, at the next seq.
                        expect_sent(&mut client, register, &mut covered);
                        let pos = frames
                            .iter()
                            .position(|x| std::ptr::eq(*x, *register))
                            .unwrap();
                        let reg_replies = answers(&frames, pos + 1, reg.seq);
                        let ev: Vec<Event> = reg_replies
                            .iter()
                            .flat_map(|r| client.handle(decode(r)))
                            .collect();
                        no_trouble(&register.note, &ev);
                        reg_replies.iter().for_each(|r| mark(&mut covered, r));
                        registrations += 1;
                        // Every event delivered to this listener: understood, and
                        // acknowledged with the captured bytes.
                        for (j, d) in frames.iter().enumerate() {
                            let dm = decode(d);
                            if d.dir != "ubusd->client"
                                || dm.kind != MsgType::Invoke
                                || dm.obj_id() != Some(id)
                            {
                                continue;
                            }
                            let ev = client.handle(dm.clone());
                            assert!(
                                matches!(&ev[..], [Event::Event { name, .. }] if Some(name.as_str()) == dm.method()),
                                "conn {conn}: {}: {ev:?}",
                                d.note
                            );
                            let ack = frames[j + 1..]
                                .iter()
                                .find(|a| {
                                    let am = decode(a);
                                    a.dir == "client->ubusd"
                                        && am.kind == MsgType::Status
                                        && am.seq == dm.seq
                                        && am.obj_id() == Some(id)
                                })
                                .unwrap_or_else(|| panic!("no ack for {}", d.note));
                            mark(&mut covered, d);
                            expect_sent(&mut client, ack, &mut covered);
                            acks += 1;
                        }
                    }
                    MsgType::Lookup => {
                        client.lookup(m.path(), 7).unwrap();
                        expect_sent(&mut client, f, &mut covered);
                        let replies = answers(&frames, i + 1, m.seq);
                        let ev: Vec<Event> = replies
                            .iter()
                            .flat_map(|r| client.handle(decode(r)))
                            .collect();
                        assert!(
                            matches!(&ev[..], [Event::Lookup { tag: 7, status: 0, objects }] if objects.len() + 1 == replies.len()),
                            "conn {conn}: {ev:?}"
                        );
                        replies.iter().for_each(|r| mark(&mut covered, r));
                        registrations += 1;
                    }
                    _ => {}
                }
            }
        }
    }
    // procd: 2 listeners, 2 other anonymous objects, hotplug.button, service,
    // system, one LOOKUP; the example server: "test" and its subscriber object.
    assert_eq!(registrations, 10, "owner registrations replayed");
    // ubus.object.add to procd's two listeners: 3 in 00 (hotplug.button,
    // service, system) and 2 in e1 ("test").
    assert_eq!(acks, 5, "event deliveries acknowledged");
    covered
}

#[test]
fn every_captured_frame_is_replayed() {
    // decode + re-encode covers every frame (vectors.rs); this checks that
    // every frame also took part in a conversation replay, so none is
    // skipped silently.
    let mut covered = replay_cli_conversations();
    covered.extend(replay_owner_calls_and_notifies());
    covered.extend(replay_owner_registrations());
    let mut total = 0;
    let mut missing = Vec::new();
    for run in runs() {
        for f in &run {
            total += 1;
            if !covered.contains(&(f.file.clone(), f.index)) {
                missing.push(format!("{}#{}: {}", f.file, f.index, f.note));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "frames no replay took part in:\n{}",
        missing.join("\n")
    );
    assert_eq!(total, 445, "frames in the 25 capture files");
    assert_eq!(covered.len(), total);
}

#[test]
fn a_subscription_survives_its_target_going_away_and_coming_back() {
    // Not in the captures (nobody's target went away there): the frames
    // follow ubusd's source. When an object goes, ubusd sends each
    // subscriber UNSUBSCRIBE {OBJID: subscriber object, TARGET: the object}
    // (ubusd_proto.c, ubus_notify_unsubscribe); the new object is announced
    // by `ubus.object.add` as captured (00, e1). netifd restarting alone
    // looks like this.
    use mwan_ubus::Attr;
    let path = "network.interface.wan";
    let (own, first, listener, second) = (0x100, 0x200, 0x300, 0x400);
    let mut c = Client::new();
    c.connection_started();
    c.subscribe(path).unwrap();
    c.handle(Message::new(MsgType::Hello, 0, 0x77));
    let sent = |c: &mut Client| -> Vec<Message> {
        let bytes = std::mem::take(c.output());
        let mut out = Vec::new();
        let mut rest = &bytes[..];
        while let Some(n) = mwan_ubus::message::frame_len(rest).unwrap() {
            out.push(Message::decode(&rest[..n]).unwrap());
            rest = &rest[n..];
        }
        out
    };
    let reply = |c: &mut Client, seq: u16, data: Option<Attr>, code: u32| -> Vec<Event> {
        let mut ev = Vec::new();
        if let Some(a) = data {
            ev.extend(c.handle(Message::new(MsgType::Data, seq, 0).with(a)));
        }
        ev.extend(c.handle(Message::new(MsgType::Status, seq, 0).with(Attr::Status(code))));
        ev
    };
    let add = sent(&mut c);
    assert_eq!(add[0].kind, MsgType::AddObject);
    reply(&mut c, add[0].seq, Some(Attr::ObjId(own)), 0);
    let lookup = sent(&mut c);
    assert_eq!(lookup[0].path(), Some(path));
    c.handle(
        Message::new(MsgType::Data, lookup[0].seq, 0)
            .with(Attr::ObjPath(path.into()))
            .with(Attr::ObjId(first))
            .with(Attr::ObjType(9))
            .with(Attr::Signature(Table::new())),
    );
    reply(&mut c, lookup[0].seq, None, 0);
    let sub = sent(&mut c);
    assert_eq!(
        (sub[0].kind, sub[0].target()),
        (MsgType::Subscribe, Some(first))
    );
    let ev = reply(&mut c, sub[0].seq, None, 0);
    assert!(matches!(&ev[..], [Event::Subscribed { target, .. }] if *target == first));

    // netifd goes away.
    let ev = c.handle(
        Message::new(MsgType::Unsubscribe, 1, 0)
            .with(Attr::ObjId(own))
            .with(Attr::Target(first)),
    );
    assert!(
        matches!(&ev[..], [Event::SubscriptionLost { path: p }] if p == path),
        "{ev:?}"
    );
    // We watch for it: a listener object, registered for ubus.object.add,
    // then one more LOOKUP (it may be back already).
    let add = sent(&mut c);
    assert_eq!(
        (add.len(), add[0].kind, add[0].path()),
        (1, MsgType::AddObject, None)
    );
    reply(&mut c, add[0].seq, Some(Attr::ObjId(listener)), 0);
    let next = sent(&mut c);
    assert_eq!(next[0].method(), Some("register"));
    assert_eq!(
        next[0].data().unwrap().get_str("pattern"),
        Some("ubus.object.add")
    );
    assert_eq!(
        (next[1].kind, next[1].path()),
        (MsgType::Lookup, Some(path))
    );
    reply(&mut c, next[0].seq, None, 0);
    let ev = reply(&mut c, next[1].seq, None, status::NOT_FOUND);
    assert!(ev.is_empty(), "{ev:?}");
    assert!(
        sent(&mut c).is_empty(),
        "nothing more until the object is back"
    );

    // netifd is back: subscribed to the new object, the event acknowledged.
    let ev = c.handle(
        Message::new(MsgType::Invoke, 1, 0)
            .with(Attr::ObjId(listener))
            .with(Attr::Method("ubus.object.add".into()))
            .with(Attr::Data(
                Table::new()
                    .with("id", Value::Int32(second as i32))
                    .with("path", Value::string(path)),
            )),
    );
    assert!(ev.is_empty(), "{ev:?}");
    let out = sent(&mut c);
    assert_eq!((out[0].kind, out[0].status()), (MsgType::Status, Some(0)));
    assert_eq!(
        (out[1].kind, out[1].obj_id(), out[1].target()),
        (MsgType::Subscribe, Some(own), Some(second))
    );
    let ev = reply(&mut c, out[1].seq, None, 0);
    assert!(matches!(&ev[..], [Event::Subscribed { target, .. }] if *target == second));
}
