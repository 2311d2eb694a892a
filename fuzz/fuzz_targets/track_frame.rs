//! Tracker frames in both directions: what mwand reads from a tracker's
//! socket (TrackerMessage) and what a tracker reads from mwand
//! (ControllerMessage). The input is split in two reads to exercise the
//! reader's buffering.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mwan_proto::frame::FrameReader;
use mwan_proto::track::{ControllerMessage, TrackerMessage};

fuzz_target!(|data: &[u8]| {
    let cut = data
        .first()
        .map_or(0, |&b| usize::from(b) % (data.len() + 1));
    let mut from_tracker = FrameReader::new();
    let mut from_controller = FrameReader::new();
    for part in [&data[..cut], &data[cut..]] {
        from_tracker.extend(part);
        from_controller.extend(part);
        while let Ok(Some(_)) = from_tracker.next::<TrackerMessage>() {}
        while let Ok(Some(_)) = from_controller.next::<ControllerMessage>() {}
    }
});
