//! mwan-track: one per WAN. Probes the uplink natively (ICMP, ARP, TCP, UDP,
//! DNS, HTTP) from one event loop and streams samples to mwand.
//! Command line and capabilities: docs/tracker.md.

mod args;
mod packet;
mod report;
mod sys;
mod timers;
mod tracker;

use std::process::ExitCode;

fn main() -> ExitCode {
    let a = match args::parse(std::env::args().skip(1)) {
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
    let mut t = match tracker::Tracker::new(a) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("mwan-track: {interface}: {e}");
            return ExitCode::from(1);
        }
    };
    let keep = t.needed_capabilities();
    match sys::drop_capabilities(&keep) {
        Ok(eff) => eprintln!("mwan-track: {}; capabilities kept: {eff:#x}", t.describe()),
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
