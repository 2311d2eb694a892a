//! Release builds of `mwan` leave out the unwind tables (.eh_frame and its
//! index, ~180 KB of the ~1.4 MB on x86_64, docs/footprint.md).
//!
//! The workspace builds releases with panic=abort, so nothing unwinds: the
//! tables would only feed a backtrace that RUST_BACKTRACE asks for. rustc
//! cannot drop them itself (std comes prebuilt with them, and fat LTO
//! merges its "uwtable" flag into every function), so the linker discards
//! them, through an INSERT script that GNU ld and lld both read. Set
//! MWAN_KEEP_UNWIND_TABLES=1 to keep them.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=MWAN_KEEP_UNWIND_TABLES");
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    if !release || !linux || std::env::var_os("MWAN_KEEP_UNWIND_TABLES").is_some() {
        return;
    }
    let script = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("discard-unwind-tables.ld");
    std::fs::write(
        &script,
        "SECTIONS { /DISCARD/ : { *(.eh_frame) *(.eh_frame_hdr) } } INSERT AFTER .text;\n",
    )
    .expect("write the linker script into OUT_DIR");
    println!("cargo:rustc-link-arg-bin=mwan=-Wl,-T,{}", script.display());
    println!("cargo:rustc-link-arg-bin=mwan=-Wl,--no-eh-frame-hdr");
}
