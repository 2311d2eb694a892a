//! Tracker <-> controller messages.
//!
//! Times are CLOCK_MONOTONIC microseconds: tracker and controller share the
//! host's monotonic clock, so a sample keeps its meaning across a controller
//! restart (the tracker replays its backlog on reconnect).

use serde::{Deserialize, Serialize};

/// Probe method as sent on the wire (mirrors mwan3's `track_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProbeMethod {
    IcmpEcho,
    Arp,
    TcpConnect,
    Udp,
    Dns,
    Http,
}

/// What became of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProbeOutcome {
    /// Answered; round-trip time in microseconds.
    Reply { rtt_us: u32 },
    /// No answer within the probe timeout.
    Timeout,
    /// ICMP/ICMPv6 destination unreachable (or time exceeded) with its type and code.
    Unreachable { icmp_type: u8, icmp_code: u8 },
    /// TCP RST / ICMP port unreachable for UDP.
    Refused,
    /// An answer arrived but was wrong (DNS without the expected record, HTTP error status...).
    BadAnswer,
    /// The probe could not be sent (errno), e.g. ENETUNREACH, ENODEV.
    SendError { errno: i32 },
}

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// Tracker-local sequence number of this sample, counting from 0 at tracker start.
    pub seq: u64,
    /// Target as configured (address or host name).
    pub target: String,
    pub method: ProbeMethod,
    /// CLOCK_MONOTONIC microseconds at send.
    pub sent_at_us: u64,
    pub outcome: ProbeOutcome,
    /// Probe round this sample belongs to (all targets × count of one interval).
    pub round: u64,
    /// For a loss reported at the controller's timeout: unicast packets the
    /// device received from the probe's send to this report (`None`: not a
    /// loss, or the device's counters could not be read). Zero says the
    /// link delivered nothing, so no queue is holding the answer.
    #[serde(default)]
    pub inbound_packets: Option<u32>,
    /// The outcome of a confirmation burst (several fast probes to every
    /// target, sent when the WAN's traffic stopped coming back), not of
    /// one probe: `Reply` with the first answer's RTT, or `Timeout` when
    /// none of them was answered (docs/tracker.md, "Confirmation bursts"),
    /// then with `inbound_packets` received meanwhile (other than answers).
    /// Protocol version 3.
    #[serde(default)]
    pub confirmation: bool,
}

/// Tracker -> controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrackerMessage {
    /// First message on every connection.
    Hello {
        interface: String,
        pid: u32,
        /// CLOCK_MONOTONIC microseconds when the tracker started.
        started_at_us: u64,
        /// Samples dropped from the backlog while no controller was connected.
        dropped_samples: u64,
    },
    Samples(Vec<Sample>),
    /// The tracker cannot probe at all (device missing, no address...).
    Trouble {
        message: String,
    },
}

/// Controller -> tracker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerMessage {
    /// Probe every `interval_ms` from now on (failure/recovery intervals).
    SetInterval { interval_ms: u64 },
    /// Use this per-probe timeout (derived from measured RTT, bounded by config).
    SetTimeout { timeout_ms: u64 },
}
