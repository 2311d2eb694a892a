//! Replays each captured conversation through our client state machine:
//! the client side must come out of `Client` byte for byte, and every reply
//! ubusd sent must be understood (turned into the right event).

mod common;

use common::{runs, Frame};
use mwan_ubus::blobmsg::{Table, Value};
use mwan_ubus::client::{Client, Event, MethodSpec};
use mwan_ubus::message::{Message, MsgType, EVENT_OBJECT_ID};
use std::collections::{BTreeMap, HashMap};

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

#[test]
fn client_side_of_every_cli_conversation_is_reproduced_byte_for_byte() {
    let mut conversations = 0;
    for run in runs() {
        for (conn, frames) in by_connection(&run) {
            let role = frames[0].role.as_str();
            if role == "procd" || role == "example-server" {
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
            conversations += 1;
        }
    }
    assert!(
        conversations >= 30,
        "only {conversations} conversations replayed"
    );
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
    // procd and the example server: our client, owning the same objects,
    // must answer the forwarded INVOKEs and publish NOTIFYs with the same
    // bytes they did, and understand ubusd's subscriber-count NOTIFYs.
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
        for (conn, frames) in by_connection(&run) {
            let role = frames[0].role.as_str();
            if role != "procd" && role != "example-server" {
                continue;
            }
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
                                .map(|(_, f)| f.bytes.clone())
                                .unwrap();
                            assert_eq!(hex(&answer), hex(&captured), "conn {conn}: {}", f.note);
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
                                active_seen.push((path.clone(), *active))
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
