//! Control-socket requests (mwanctl, scripts, a hostile local user) as
//! mwand reads them, and replies as mwanctl reads them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mwan_proto::control::{Request, Response};
use mwan_proto::frame::FrameReader;

fuzz_target!(|data: &[u8]| {
    let cut = data
        .first()
        .map_or(0, |&b| usize::from(b) % (data.len() + 1));
    let mut requests = FrameReader::new();
    let mut responses = FrameReader::new();
    for part in [&data[..cut], &data[cut..]] {
        requests.extend(part);
        responses.extend(part);
        while let Ok(Some(_)) = requests.next::<Request>() {}
        while let Ok(Some(_)) = responses.next::<Response>() {}
    }
});
