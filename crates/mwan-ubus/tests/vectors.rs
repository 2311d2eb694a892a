//! Byte-for-byte checks against every capture in ../shared/ubus-vectors/.

mod common;

use common::{all_vector_files, load_frames};
use mwan_ubus::message::{frame_len, Message, MsgType};

#[test]
fn every_frame_decodes_and_reencodes_to_the_same_bytes() {
    let files = all_vector_files();
    // Exact numbers: a capture added, removed or cut short must be noticed.
    assert_eq!(
        files.len(),
        25,
        "capture files in {:?}",
        common::vectors_dir()
    );
    let mut frames = 0;
    for file in &files {
        let in_file = load_frames(file);
        assert!(!in_file.is_empty(), "{}: no frames", file.display());
        eprintln!(
            "{}: {} frames",
            file.file_name().unwrap().to_string_lossy(),
            in_file.len()
        );
        for f in in_file {
            assert_eq!(
                frame_len(&f.bytes).unwrap(),
                Some(f.bytes.len()),
                "{}: frame length of {}",
                file.display(),
                f.note
            );
            let msg = Message::decode(&f.bytes)
                .unwrap_or_else(|e| panic!("{}: cannot decode {}: {e}", file.display(), f.note));
            assert_eq!(msg.seq, f.seq, "{}: {}", file.display(), f.note);
            assert_eq!(msg.kind.to_u8(), f.kind, "{}: {}", file.display(), f.note);
            let again = msg.encode().unwrap();
            assert_eq!(
                again,
                f.bytes,
                "{}: re-encoding differs for {}",
                file.display(),
                f.note
            );
            // The decoded data must agree with the capture's own decoding.
            if let Some(expected) = f.data_json.as_ref() {
                let data = msg.data().expect("DATA attribute");
                assert_eq!(&data.to_json(), expected, "{}: {}", file.display(), f.note);
            }
            frames += 1;
        }
    }
    assert_eq!(frames, 445, "frames checked");
}

#[test]
fn builders_reproduce_every_client_request() {
    // Every request a client sent must come out of our builders byte for byte.
    let mut checked = 0;
    for file in all_vector_files() {
        for f in load_frames(&file) {
            if f.dir != "client->ubusd" {
                continue;
            }
            let m = Message::decode(&f.bytes).unwrap();
            let built = match m.kind {
                MsgType::Lookup => Message::lookup(m.seq, m.path()),
                MsgType::AddObject => Message::add_object(
                    m.seq,
                    m.path()
                        .map(|p| (p, m.signature().cloned().unwrap_or_default())),
                ),
                MsgType::Invoke => Message::invoke(
                    m.seq,
                    m.obj_id().unwrap(),
                    m.method().unwrap(),
                    m.data().cloned().unwrap(),
                ),
                MsgType::Subscribe => {
                    Message::subscribe(m.seq, m.obj_id().unwrap(), m.target().unwrap())
                }
                MsgType::Notify => Message::notify(
                    m.seq,
                    m.obj_id().unwrap(),
                    m.method().unwrap(),
                    m.data().cloned().unwrap(),
                ),
                MsgType::Data => Message::reply_data(
                    m.seq,
                    m.peer,
                    m.obj_id().unwrap(),
                    m.data().cloned().unwrap(),
                ),
                MsgType::Status => {
                    Message::reply_status(m.seq, m.peer, m.obj_id().unwrap(), m.status().unwrap())
                }
                other => panic!("{}: unexpected client frame type {other:?}", file.display()),
            };
            assert_eq!(
                built.encode().unwrap(),
                f.bytes,
                "{}: {}",
                file.display(),
                f.note
            );
            checked += 1;
        }
    }
    // Every client->ubusd frame of the 25 files (see README's counts).
    assert_eq!(checked, 185, "client frames checked");
}
