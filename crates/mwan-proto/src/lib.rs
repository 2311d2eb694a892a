//! Messages shared by mwand, mwan-track and mwanctl, and their framing.
//!
//! Kept small on purpose: mwanctl and mwan-track link this crate, never the
//! controller. Every message is serde + bincode inside a frame that carries
//! [`PROTOCOL_VERSION`], so a tracker or CLI from another build is rejected
//! with a clear error instead of misparsed.
//!
//! bincode encodes serde data without field names: do not use
//! `skip_serializing_if`, `flatten`, untagged enums or `serde_json::Value`
//! in these types.

pub mod cgroup;
pub mod cli;
pub mod control;
pub mod frame;
pub mod track;

/// Bumped on every incompatible change of any message in this crate.
pub const PROTOCOL_VERSION: u16 = 3;
