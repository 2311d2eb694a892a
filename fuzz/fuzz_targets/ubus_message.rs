//! ubus frames from ubusd (blobmsg inside), and what mwand makes of their
//! data: netifd interface states and events, procd service lists and
//! events, calls of the `mwan` object; and JSON text (history replies).
#![no_main]
use libfuzzer_sys::fuzz_target;
use mwan_ubus::blobmsg::Table;
use mwan_ubus::message::{frame_len, Message};
use mwan_ubus::{mwan_object, netifd, procd};

fn use_table(method: &str, t: &Table) {
    let _ = netifd::InterfaceState::parse(Some(method), t);
    let _ = netifd::InterfaceEvent::parse(t);
    let _ = netifd::parse_dump(t);
    let _ = netifd::parse_notification(method, t);
    let _ = procd::parse_list(t);
    let _ = procd::ProcdEvent::parse(method, t);
    let _ = mwan_object::request(method, t);
    let _ = mwan_object::response_from(method, 0, t);
    // The JSON text `mwanctl --json` prints, read back (deeper than the
    // reader's nesting limit it is an error, not a crash).
    let _ = Table::from_json_text(&t.to_json_text());
}

fuzz_target!(|data: &[u8]| {
    // JSON text, as mwand's history reply carries it.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Table::from_json_text(text);
    }
    // A bare blobmsg table, as the body of a DATA attribute.
    if let Ok(t) = Table::decode(data) {
        use_table("status", &t);
    }
    // A stream of ubus frames, as read from the socket.
    let mut rest = data;
    while let Ok(Some(len)) = frame_len(rest) {
        if len > rest.len() {
            break;
        }
        if let Ok(msg) = Message::decode(&rest[..len]) {
            let method = msg.method().unwrap_or("");
            let _ = (
                msg.status(),
                msg.obj_id(),
                msg.path(),
                msg.user(),
                msg.active(),
            );
            if let Some(t) = msg.data() {
                use_table(method, t);
            }
        }
        rest = &rest[len.max(1)..];
    }
});
