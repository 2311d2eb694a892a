//! A misbehaving peer never takes the client down: arbitrary bytes decode
//! to an error or a message, never a panic; arbitrary values round-trip;
//! a peer sending garbage gets disconnected, and the session reconnects.

use mwan_ubus::blobmsg::{Table, Value};
use mwan_ubus::client::{Client, Event};
use mwan_ubus::message::{frame_len, Message};
use mwan_ubus::Session;
use proptest::prelude::*;
use std::io::Write;
use std::time::{Duration, Instant};

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Unspec),
        "[^\\x00]{0,12}".prop_map(Value::String),
        any::<i8>().prop_map(Value::Int8),
        any::<i16>().prop_map(Value::Int16),
        any::<i32>().prop_map(Value::Int32),
        any::<i64>().prop_map(Value::Int64),
        any::<f64>()
            .prop_filter("NaN never equals itself", |f| !f.is_nan())
            .prop_map(Value::Double),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{0,8}", inner), 0..4)
                .prop_map(|v| Value::Table(Table(v))),
        ]
    })
}

proptest! {
    #[test]
    fn tables_round_trip(items in prop::collection::vec(("[a-z.-]{0,10}", value()), 0..6)) {
        let t = Table(items);
        let mut bytes = Vec::new();
        t.encode_into(&mut bytes).unwrap();
        prop_assert_eq!(bytes.len() % 4, 0);
        prop_assert_eq!(Table::decode(&bytes).unwrap(), t);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _table = Table::decode(&bytes);
        let _msg = Message::decode(&bytes);
        let _len = frame_len(&bytes);
        let mut c = Client::new();
        c.connection_started();
        if let Ok(m) = Message::decode(&bytes) {
            let _events = c.handle(m);
        }
    }

    #[test]
    fn corrupted_valid_frames_never_panic(flip in 0usize..200, bit in 0u8..8) {
        let data = Table::new()
            .with("name", Value::string("demo"))
            .with("instances", Value::Table(Table::new().with("i1", Value::Table(Table::new()
                .with("command", Value::Array(vec![Value::string("/bin/sleep"), Value::string("1")]))))));
        let mut bytes = Message::invoke(2, 0x1234, "set", data).encode().unwrap();
        let i = flip % bytes.len();
        bytes[i] ^= 1 << bit;
        if let Ok(m) = Message::decode(&bytes) {
            let mut c = Client::new();
            c.connection_started();
            let _events = c.handle(m);
        }
    }
}

#[test]
fn nul_bytes_are_refused_when_encoding() {
    let mut out = Vec::new();
    let e = Table::new()
        .with("a", Value::string("x\0y"))
        .encode_into(&mut out)
        .unwrap_err();
    assert!(e.to_string().contains("NUL"), "{e}");
    assert!(Table::new()
        .with("a\0", Value::Int8(1))
        .encode_into(&mut out)
        .is_err());
    assert!(Message::lookup(1, Some("bad\0path")).encode().is_err());
}

#[test]
fn a_peer_sending_garbage_is_dropped_and_the_session_reconnects() {
    let dir = std::env::temp_dir().join(format!("mwan-ubus-garbage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ubus.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        // First connection: a frame with version 7, then nothing sensible.
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(&[7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4]).unwrap();
        // Second connection: a proper HELLO.
        let (mut s2, _) = listener.accept().unwrap();
        s2.write_all(
            &Message::new(mwan_ubus::MsgType::Hello, 0, 0x42)
                .encode()
                .unwrap(),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        drop(s);
    });
    let mut poll = mio::Poll::new().unwrap();
    let mut events = mio::Events::with_capacity(8);
    let mut session = Session::new(&path, mio::Token(1), Client::new());
    let mut seen = session.start(poll.registry(), Instant::now());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen
        .iter()
        .any(|e| matches!(e, Event::Connected { client_id: 0x42 }))
    {
        assert!(
            Instant::now() < deadline,
            "no reconnect: {seen:?} ({:?})",
            session.last_error
        );
        poll.poll(&mut events, Some(Duration::from_millis(20)))
            .unwrap();
        let now = Instant::now();
        for ev in events.iter() {
            seen.extend(session.ready(poll.registry(), ev, now));
        }
        seen.extend(session.on_timeout(poll.registry(), now));
    }
    server.join().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn requests_while_disconnected_are_bounded_and_failed_on_loss() {
    let mut c = Client::new();
    for tag in 0..mwan_ubus::client::MAX_DEFERRED as u64 {
        c.call("service", "list", Table::new(), tag).unwrap();
    }
    assert!(matches!(
        c.call("service", "list", Table::new(), 999),
        Err(mwan_ubus::client::ClientError::NotConnected)
    ));
    let events = c.connection_lost();
    let failed = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Reply {
                    status: mwan_ubus::message::status::CONNECTION_FAILED,
                    ..
                }
            )
        })
        .count();
    assert_eq!(failed, mwan_ubus::client::MAX_DEFERRED);
}

#[test]
fn frames_split_across_reads_are_reassembled() {
    let (a, mut b) = mio::net::UnixStream::pair().unwrap();
    let mut conn = mwan_ubus::Connection::from_stream(a);
    let frame = Message::invoke(3, 7, "status", Table::new().with("x", Value::string("y")))
        .encode()
        .unwrap();
    let two: Vec<u8> = frame.iter().chain(frame.iter()).copied().collect();
    let mut got = Vec::new();
    // One byte short of the first frame, then the rest and the whole second one.
    b.write_all(&two[..frame.len() - 1]).unwrap();
    conn.read_messages(&mut got).unwrap();
    assert!(got.is_empty());
    b.write_all(&two[frame.len() - 1..]).unwrap();
    conn.read_messages(&mut got).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].method(), Some("status"));
    // EOF after a complete frame: the frame first, then Closed.
    b.write_all(&frame).unwrap();
    drop(b);
    let mut last = Vec::new();
    assert!(matches!(
        conn.read_messages(&mut last),
        Err(mwan_ubus::conn::ConnError::Closed)
    ));
    assert_eq!(last.len(), 1);
}

#[test]
fn a_peer_that_stops_reading_never_blocks_us_and_is_given_up_on() {
    // The other end never reads: our writes stop at WouldBlock (flush
    // returns), the rest waits in the buffer, and past MAX_PENDING_WRITE
    // the connection reports the backlog (the Session then drops it and
    // reconnects) instead of growing without end or blocking the loop.
    let (a, _silent) = mio::net::UnixStream::pair().unwrap();
    let mut conn = mwan_ubus::Connection::from_stream(a);
    let frame = Message::invoke(
        1,
        7,
        "status",
        Table::new().with("pad", Value::string("x".repeat(4000))),
    )
    .encode()
    .unwrap();
    let mut queued = 0usize;
    let err = loop {
        match conn.queue(&frame).and_then(|()| conn.flush()) {
            Ok(()) => queued += frame.len(),
            Err(e) => break e,
        }
        assert!(
            queued <= 2 * mwan_ubus::conn::MAX_PENDING_WRITE,
            "no backlog error after {queued} bytes"
        );
    };
    assert!(
        matches!(err, mwan_ubus::conn::ConnError::WriteBacklog(n) if n > mwan_ubus::conn::MAX_PENDING_WRITE),
        "{err}"
    );
    assert!(
        conn.wants_write(),
        "bytes still waiting, none lost silently"
    );
}
