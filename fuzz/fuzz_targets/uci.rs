//! The UCI reader and validation (mwan_core::config::parse): whatever a
//! hand-edited /etc/config/mwan3 holds must give a config or diagnostics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(loaded) = mwan_core::config::parse("/etc/config/mwan3", &text) {
        // What check and status print from an accepted config.
        let _ = mwan_core::config::summary(&loaded.config);
        let _ = mwan_core::config::render(&loaded.config);
    }
});
