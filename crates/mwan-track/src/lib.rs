//! mwan-track: one per WAN. Probes the uplink natively (ICMP, ARP, TCP, UDP,
//! DNS, HTTP) from one event loop and streams samples to mwand.
//! Command line and capabilities: docs/tracker.md.

mod args;
mod burst;
mod packet;
mod report;
mod schedule;
mod sys;
mod timers;
mod tracker;

/// The probe-reply parsers, for the fuzz targets only (docs/fuzzing.md).
#[cfg(fuzzing)]
pub mod fuzzing {
    pub use crate::packet::*;
}

/// Debug builds count heap allocations, so tests can check that a running
/// tracker allocates nothing per probe (release builds use the plain
/// system allocator).
#[cfg(debug_assertions)]
pub mod alloc_count {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicU64, Ordering};

    static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

    pub fn allocations() -> u64 {
        ALLOCATIONS.load(Ordering::Relaxed)
    }

    struct Counting;

    // SAFETY: forwards to the system allocator unchanged.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: same contract as ours.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: same contract as ours.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: same contract as ours.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static COUNTING: Counting = Counting;
}

use std::process::ExitCode;

/// The `mwan-track` applet: `args` are the arguments after the program name.
pub fn main(args: impl IntoIterator<Item = String>) -> ExitCode {
    let a = match args::parse(args) {
        Ok(a) => a,
        Err(e @ (args::ArgsError::Help | args::ArgsError::Version)) => {
            println!("{e}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("mwan-track: error: {e}");
            return ExitCode::from(2);
        }
    };
    let interface = a.interface.clone();
    let mut a = a;
    let unresolved = args::resolve_names(&mut a, |name| {
        use std::net::ToSocketAddrs;
        (name, 0)
            .to_socket_addrs()
            .map(|it| it.map(|sa| sa.ip()).collect())
            .unwrap_or_default()
    });
    for t in &unresolved {
        eprintln!("mwan-track: {interface}: target '{t}' does not resolve; left out until the tracker restarts");
    }
    if a.targets.is_empty() {
        eprintln!(
            "mwan-track: {interface}: no target resolves; exiting so the supervisor retries later"
        );
        return ExitCode::from(1);
    }
    let user = a.user;
    let mut t = match tracker::Tracker::new(a) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("mwan-track: {interface}: {e}");
            return ExitCode::from(1);
        }
    };
    let keep = t.needed_capabilities();
    match sys::drop_capabilities(&keep, user) {
        Ok(eff) => eprintln!("mwan-track: {}; capabilities kept: {eff:#x}", t.describe()),
        // Asked to become a user and could not: never go on as root.
        Err(e) if user.is_some() => {
            eprintln!("mwan-track: {interface}: could not switch to uid:gid {user:?}: {e}");
            return ExitCode::from(1);
        }
        Err(e) => eprintln!("mwan-track: {interface}: could not drop capabilities: {e}"),
    }
    match t.run() {
        Ok(sig) => {
            eprintln!("mwan-track: {interface}: stopping on signal {sig}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mwan-track: {interface}: event loop failed: {e}");
            ExitCode::from(1)
        }
    }
}
