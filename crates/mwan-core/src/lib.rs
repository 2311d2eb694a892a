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

/// `impl Debug` as the type's `Display`, for error types: `std::error::Error`
/// needs Debug, and every `dyn Error` links it, so a derived Debug of an
/// error (and of all it holds) is code that only `{:?}` would ever print
/// (docs/footprint.md).
#[macro_export]
macro_rules! debug_as_display {
    ($($error:ty),+) => {$(
        impl ::std::fmt::Debug for $error {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(self, f)
            }
        }
    )+};
}

/// Monotonic time in milliseconds since an origin the caller chooses.
/// The core never reads a clock; the event loops pass `now` in.
pub type Millis = u64;
