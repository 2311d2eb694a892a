//! mwan-core: every decision mwand makes, as pure functions.
//!
//! Nothing here touches a socket, a file descriptor other than reading a
//! config file's text, or the clock: time comes in as an argument
//! ([`Millis`], milliseconds since an arbitrary monotonic origin). That keeps
//! the health machine, scoring, policy resolution and the network plan
//! testable with tables of cases and seeded simulations.

pub mod auto;
pub mod config;
pub mod flush;
pub mod health;
pub mod history;
pub mod log_limit;
pub mod plan;
pub mod policy;
pub mod quality;
pub mod sort;
pub mod startup;
pub mod token;
pub mod tracker_control;

/// Monotonic time in milliseconds since an origin the caller chooses.
/// The core never reads a clock; the event loops pass `now` in.
pub type Millis = u64;
