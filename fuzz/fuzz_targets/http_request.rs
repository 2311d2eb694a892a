//! mwand's HTTP request reader (the dashboard's listener): bytes from any
//! client, in two reads, then routing and the JSON body of a write.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mwand::fuzzing::*;

fuzz_target!(|data: &[u8]| {
    let cut = data
        .first()
        .map_or(0, |&b| usize::from(b) % (data.len() + 1));
    let mut reader = RequestReader::new(0);
    for part in [&data[..cut], &data[cut..]] {
        if let Progress::Complete(request) = reader.feed(part) {
            let peer = "192.0.2.9:4000".parse().expect("address");
            let access = Access {
                token: Some("secret".into()),
            };
            let _ = route(&request, &peer, &access);
            let _ = parse_object(&request.body);
            break;
        }
    }
    let _ = parse_object(data);
});
