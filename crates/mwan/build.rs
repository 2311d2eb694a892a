//! How release builds of `mwan` are linked (figures in docs/footprint.md).
//!
//! 1. Without unwind tables (.eh_frame, its index and the LSDAs in
//!    .gcc_except_table, ~185 KB of ~1.4 MB on
//!    x86_64). The workspace builds releases with panic=abort, so nothing
//!    unwinds: the tables would only feed a backtrace that RUST_BACKTRACE
//!    asks for. rustc cannot leave them out itself (std comes prebuilt with
//!    them, and fat LTO merges its "uwtable" flag into every function), so
//!    the linker discards them, through an INSERT script that GNU ld and
//!    lld both read. MWAN_KEEP_UNWIND_TABLES=1 keeps them.
//! 2. As a position-dependent executable (-no-pie). A PIE's loader patches
//!    every pointer in .data.rel.ro at start, which turns those ~32 KB into
//!    private memory in every process: one executable for all programs
//!    made each tracker's RssAnon grow by 20 kB that way. Without PIE they
//!    stay shared page cache, and the ~32 KB of relocations leave the file.
//!    The cost: the executable's own code sits at a fixed address (shared
//!    libraries, heap and stack stay randomised). MWAN_PIE=1 builds a PIE.
//! 3. With identical code folding (--icf=all) when rust-lld links, as it
//!    does by default for x86_64-unknown-linux-gnu since Rust 1.90 (in
//!    toolchains that ship it: rustup's, not every distribution's): generic
//!    code instantiated for types of the same layout often compiles to the
//!    same bytes, and lld keeps one copy (-17.7 KB). GNU ld has no such
//!    option, so other linkers (the cross builds' gcc + ld, older rustc)
//!    link as before. MWAN_NO_ICF=1 leaves it out.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=MWAN_KEEP_UNWIND_TABLES");
    println!("cargo:rerun-if-env-changed=MWAN_PIE");
    println!("cargo:rerun-if-env-changed=MWAN_NO_ICF");
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    if !release || !linux {
        return;
    }
    if std::env::var_os("MWAN_KEEP_UNWIND_TABLES").is_none() {
        let script = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
            .join("discard-unwind-tables.ld");
        std::fs::write(
            &script,
            "SECTIONS { /DISCARD/ : { *(.eh_frame) *(.eh_frame_hdr) *(.gcc_except_table*) } } INSERT AFTER .text;\n",
        )
        .expect("write the linker script into OUT_DIR");
        println!("cargo:rustc-link-arg-bin=mwan=-Wl,-T,{}", script.display());
        println!("cargo:rustc-link-arg-bin=mwan=-Wl,--no-eh-frame-hdr");
    }
    if std::env::var_os("MWAN_PIE").is_none() {
        println!("cargo:rustc-link-arg-bin=mwan=-no-pie");
    }
    if std::env::var_os("MWAN_NO_ICF").is_none() && links_with_lld() {
        println!("cargo:rustc-link-arg-bin=mwan=-Wl,--icf=all");
    }
}

/// Whether lld links the executable: RUSTFLAGS ask for it, or rustc's own
/// default does (x86_64-unknown-linux-gnu since 1.90, when the toolchain
/// ships rust-lld) and neither RUSTFLAGS nor a configured linker say
/// otherwise.
fn links_with_lld() -> bool {
    let rustflags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let flags: Vec<&str> = rustflags.split('\x1f').collect();
    if flags.iter().any(|flag| flag.contains("-fuse-ld=lld")) {
        return true;
    }
    let linker_chosen = std::env::var_os("RUSTC_LINKER").is_some()
        || flags.iter().any(|flag| {
            flag.contains("linker=")
                || flag.contains("linker-features")
                || flag.contains("linker-flavor")
                || flag.contains("link-self-contained")
                || flag.contains("-fuse-ld")
        });
    std::env::var("TARGET").as_deref() == Ok("x86_64-unknown-linux-gnu")
        && !linker_chosen
        && rustc_minor_version().is_some_and(|minor| minor >= 90)
        && ships_rust_lld()
}

/// Whether the toolchain has the lld that rustc links with by default.
fn ships_rust_lld() -> bool {
    let Some(rustc) = std::env::var_os("RUSTC") else {
        return false;
    };
    let Ok(output) = std::process::Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
    else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_string();
    PathBuf::from(sysroot)
        .join("lib/rustlib/x86_64-unknown-linux-gnu/bin/gcc-ld/ld.lld")
        .exists()
}

/// The minor version of the rustc that cargo builds with (95 for 1.95.0).
fn rustc_minor_version() -> Option<u32> {
    let rustc = std::env::var_os("RUSTC")?;
    let output = std::process::Command::new(rustc).arg("-vV").output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let release = text
        .lines()
        .find_map(|line| line.strip_prefix("release: "))?;
    let mut parts = release.split('.');
    match (parts.next()?, parts.next()?) {
        ("1", minor) => minor.parse().ok(),
        _ => None,
    }
}
