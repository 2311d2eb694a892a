//! Per-WAN health with mwan3's semantics (probe rounds, reliability, up/down
//! counters, failure/recovery intervals, check_quality).

use serde::{Deserialize, Serialize};

/// A WAN's tracking state, as mwan3 names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LinkState {
    /// No samples yet (or tracker silent too long).
    Unknown,
    Online,
    /// Failing rounds seen, not yet `down` of them.
    Disconnecting,
    Offline,
    /// Successful rounds seen, not yet `up` of them.
    Connecting,
    Disabled,
}
