//! Samples out: a bounded backlog, the controller connection (mwan-proto
//! frames over a unix stream, reconnect with backoff, replay) and JSON lines.
//!
//! Samples are kept as small `Copy` records and serialised through borrowed
//! mirror types that encode exactly like `mwan_proto::track::TrackerMessage`
//! (checked by a test), so a running tracker does not allocate per sample.

use mio::net::UnixStream;
use mio::{Interest, Registry, Token};
use mwan_proto::frame::{self, FrameReader};
use mwan_proto::track::{ControllerMessage, ProbeMethod, ProbeOutcome};
use serde::ser::{Serialize, Serializer};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::path::PathBuf;

/// One finished probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub target: u16,
    pub sent_at_us: u64,
    pub outcome: ProbeOutcome,
    pub round: u64,
    /// Loss reports: unicast packets the device received meanwhile.
    pub inbound_packets: Option<u32>,
    /// A confirmation burst's outcome (`Sample::confirmation`).
    pub confirmation: bool,
}

/// Field-for-field mirror of `mwan_proto::track::Sample` with a borrowed target.
#[derive(serde::Serialize)]
struct SampleRef<'a> {
    seq: u64,
    target: &'a str,
    method: ProbeMethod,
    sent_at_us: u64,
    outcome: ProbeOutcome,
    round: u64,
    inbound_packets: Option<u32>,
    confirmation: bool,
}

struct Batch<'a> {
    records: (&'a [Record], &'a [Record]),
    targets: &'a [String],
    method: ProbeMethod,
}

impl Serialize for Batch<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.records
                .0
                .iter()
                .chain(self.records.1)
                .map(|r| SampleRef {
                    seq: r.seq,
                    target: &self.targets[usize::from(r.target)],
                    method: self.method,
                    sent_at_us: r.sent_at_us,
                    outcome: r.outcome,
                    round: r.round,
                    inbound_packets: r.inbound_packets,
                    confirmation: r.confirmation,
                }),
        )
    }
}

/// Variant-for-variant mirror of `mwan_proto::track::TrackerMessage`.
#[derive(serde::Serialize)]
enum WireMessage<'a> {
    Hello {
        interface: &'a str,
        pid: u32,
        started_at_us: u64,
        dropped_samples: u64,
    },
    Samples(Batch<'a>),
    Trouble {
        message: &'a str,
    },
}

/// Samples per frame when replaying a backlog.
const BATCH: usize = 256;
const BACKOFF_MIN_MS: u64 = 100;
const BACKOFF_MAX_MS: u64 = 5000;

/// Bounded backlog of samples not yet written whole to the controller's
/// socket. The leading `in_flight` samples are encoded in the write buffer:
/// they leave the ring only once their frame is written, so a connection that
/// dies first loses none of them (they are replayed).
pub struct Backlog {
    ring: VecDeque<Record>,
    cap: usize,
    in_flight: usize,
    /// In-flight samples pushed out by overflow: lost if their write fails.
    evicted_in_flight: u64,
    /// Samples lost to overflow.
    pub dropped: u64,
}

impl Backlog {
    pub fn new(cap: usize) -> Self {
        Self {
            ring: VecDeque::with_capacity(cap),
            cap,
            in_flight: 0,
            evicted_in_flight: 0,
            dropped: 0,
        }
    }

    pub fn push(&mut self, r: Record) {
        if self.ring.len() == self.cap {
            self.ring.pop_front();
            if self.in_flight > 0 {
                self.in_flight -= 1;
                self.evicted_in_flight += 1;
            } else {
                self.dropped += 1;
            }
        }
        self.ring.push_back(r);
    }

    /// The oldest samples not in flight, at most `max`; they are in flight now.
    fn next_batch(&mut self, max: usize) -> (&[Record], &[Record]) {
        let n = (self.ring.len() - self.in_flight).min(max);
        let start = self.in_flight;
        self.in_flight += n;
        let (a, b) = self.ring.as_slices();
        if start + n <= a.len() {
            (&a[start..start + n], &b[..0])
        } else if start >= a.len() {
            (&b[start - a.len()..start - a.len() + n], &b[..0])
        } else {
            (&a[start..], &b[..start + n - a.len()])
        }
    }

    fn delivered(&mut self) {
        self.ring.drain(..self.in_flight);
        self.in_flight = 0;
        self.evicted_in_flight = 0;
    }

    fn undelivered(&mut self) {
        self.in_flight = 0;
        self.dropped += self.evicted_in_flight;
        self.evicted_in_flight = 0;
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.ring.len()
    }
}

/// The controller connection. Owns its write buffer; samples leave the
/// backlog only when the frame holding them is written whole.
pub struct Controller {
    path: PathBuf,
    token: Token,
    stream: Option<UnixStream>,
    out: Vec<u8>,
    written: usize,
    /// End of the samples frame in `out` (0: none).
    samples_end: usize,
    reader: FrameReader,
    backoff_ms: u64,
    /// Writable interest is asked for only while a write is pending: a unix
    /// socket signals writable again each time the peer reads, which would
    /// otherwise wake the loop once per sample.
    wants_writable: bool,
    pub connects: u64,
}

impl Controller {
    pub fn new(path: PathBuf, token: Token) -> Self {
        Self {
            path,
            token,
            stream: None,
            out: Vec::with_capacity(16 * 1024),
            written: 0,
            samples_end: 0,
            reader: FrameReader::new(),
            backoff_ms: BACKOFF_MIN_MS,
            wants_writable: false,
            connects: 0,
        }
    }

    fn interest(&mut self, registry: &Registry, writable: bool) -> io::Result<()> {
        if writable == self.wants_writable {
            return Ok(());
        }
        let Some(stream) = self.stream.as_mut() else {
            return Ok(());
        };
        let interest = if writable {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        registry.reregister(stream, self.token, interest)?;
        self.wants_writable = writable;
        Ok(())
    }

    /// Tries to connect; on failure returns the delay before the next try.
    pub fn connect(
        &mut self,
        registry: &Registry,
        hello: Hello<'_>,
        backlog: &Backlog,
    ) -> Result<(), u64> {
        let attempt = UnixStream::connect(&self.path).and_then(|mut s| {
            registry.register(&mut s, self.token, Interest::READABLE)?;
            Ok(s)
        });
        match attempt {
            Ok(s) => {
                self.stream = Some(s);
                self.wants_writable = false;
                self.connects += 1;
                self.out.clear();
                self.written = 0;
                self.samples_end = 0;
                self.reader = FrameReader::new();
                self.backoff_ms = BACKOFF_MIN_MS;
                let msg = WireMessage::Hello {
                    interface: hello.interface,
                    pid: std::process::id(),
                    started_at_us: hello.started_at_us,
                    dropped_samples: backlog.dropped,
                };
                frame::encode_into(&msg, &mut self.out).map_err(|_| BACKOFF_MAX_MS)?;
                Ok(())
            }
            Err(_) => {
                let delay = self.backoff_ms;
                self.backoff_ms = (self.backoff_ms * 2).min(BACKOFF_MAX_MS);
                Err(delay)
            }
        }
    }

    fn disconnect(&mut self, registry: &Registry, backlog: &mut Backlog) {
        if let Some(mut s) = self.stream.take() {
            if let Err(e) = registry.deregister(&mut s) {
                eprintln!("mwan-track: deregistering the controller socket: {e}");
            }
        }
        if self.samples_end > 0 && self.written >= self.samples_end {
            backlog.delivered();
        } else {
            // Replayed after the next Hello.
            backlog.undelivered();
        }
        self.out.clear();
        self.written = 0;
        self.samples_end = 0;
    }

    /// Queues a Trouble message (best effort; only while connected).
    pub fn trouble(&mut self, message: &str) {
        if self.stream.is_some()
            && frame::encode_into(&WireMessage::Trouble { message }, &mut self.out).is_err()
        {
            eprintln!("mwan-track: cannot encode trouble message");
        }
    }

    /// Writes what is buffered, then the backlog, until done or the socket is
    /// full; `Some(reason)` when the connection broke.
    pub fn flush(
        &mut self,
        registry: &Registry,
        backlog: &mut Backlog,
        targets: &[String],
        method: ProbeMethod,
    ) -> Option<String> {
        loop {
            let stream = self.stream.as_mut()?;
            if self.written < self.out.len() {
                let result = match stream.write(&self.out[self.written..]) {
                    Ok(0) => Err(io::Error::from(io::ErrorKind::WriteZero)),
                    other => other,
                };
                match result {
                    Ok(n) => {
                        self.written += n;
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if let Err(e) = self.interest(registry, true) {
                            self.disconnect(registry, backlog);
                            return Some(format!("epoll: {e}"));
                        }
                        return None;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.disconnect(registry, backlog);
                        return Some(format!("write: {e}"));
                    }
                }
            }
            self.out.clear();
            self.written = 0;
            if self.samples_end > 0 {
                backlog.delivered();
                self.samples_end = 0;
            }
            if backlog.ring.is_empty() {
                if let Err(e) = self.interest(registry, false) {
                    self.disconnect(registry, backlog);
                    return Some(format!("epoll: {e}"));
                }
                return None;
            }
            let records = backlog.next_batch(BATCH);
            let n = records.0.len() + records.1.len();
            let msg = WireMessage::Samples(Batch {
                records,
                targets,
                method,
            });
            if let Err(e) = frame::encode_into(&msg, &mut self.out) {
                eprintln!("mwan-track: dropping {n} samples that cannot be encoded: {e}");
                backlog.delivered();
                backlog.dropped += n as u64;
                self.out.clear();
            } else {
                self.samples_end = self.out.len();
            }
        }
    }

    /// Reads controller messages; `Some(reason)` when the controller went away.
    pub fn read(
        &mut self,
        registry: &Registry,
        backlog: &mut Backlog,
        mut on_msg: impl FnMut(ControllerMessage),
    ) -> Option<String> {
        let mut buf = [0u8; 512];
        loop {
            let stream = self.stream.as_mut()?;
            match stream.read(&mut buf) {
                Ok(0) => {
                    self.disconnect(registry, backlog);
                    return Some("controller closed the connection".into());
                }
                Ok(n) => {
                    self.reader.extend(&buf[..n]);
                    loop {
                        match self.reader.next::<ControllerMessage>() {
                            Ok(Some(m)) => on_msg(m),
                            Ok(None) => break,
                            Err(e) => {
                                self.disconnect(registry, backlog);
                                return Some(format!("bad frame from controller: {e}"));
                            }
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.disconnect(registry, backlog);
                    return Some(format!("read: {e}"));
                }
            }
        }
    }
}

pub struct Hello<'a> {
    pub interface: &'a str,
    pub started_at_us: u64,
}

pub fn method_name(m: ProbeMethod) -> &'static str {
    match m {
        ProbeMethod::IcmpEcho => "icmp_echo",
        ProbeMethod::Arp => "arp",
        ProbeMethod::TcpConnect => "tcp_connect",
        ProbeMethod::Udp => "udp",
        ProbeMethod::Dns => "dns",
        ProbeMethod::Http => "http",
    }
}

fn json_str(out: &mut Vec<u8>, s: &str) -> io::Result<()> {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32)?,
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
    Ok(())
}

fn write_json(out: &mut Vec<u8>, r: &Record, target: &str, method: ProbeMethod) -> io::Result<()> {
    write!(out, "{{\"seq\":{},\"target\":", r.seq)?;
    json_str(out, target)?;
    write!(
        out,
        ",\"method\":\"{}\",\"sent_at_us\":{},\"round\":{},\"outcome\":",
        method_name(method),
        r.sent_at_us,
        r.round
    )?;
    match r.outcome {
        ProbeOutcome::Reply { rtt_us } => write!(out, "\"reply\",\"rtt_us\":{rtt_us}")?,
        ProbeOutcome::Timeout => out.extend_from_slice(b"\"timeout\""),
        ProbeOutcome::Unreachable {
            icmp_type,
            icmp_code,
        } => write!(
            out,
            "\"unreachable\",\"icmp_type\":{icmp_type},\"icmp_code\":{icmp_code}"
        )?,
        ProbeOutcome::Refused => out.extend_from_slice(b"\"refused\""),
        ProbeOutcome::BadAnswer => out.extend_from_slice(b"\"bad_answer\""),
        ProbeOutcome::SendError { errno } => write!(out, "\"send_error\",\"errno\":{errno}")?,
    }
    if let Some(n) = r.inbound_packets {
        write!(out, ",\"inbound_packets\":{n}")?;
    }
    if r.confirmation {
        out.extend_from_slice(b",\"confirmation\":true");
    }
    out.extend_from_slice(b"}\n");
    Ok(())
}

/// One sample as a JSON line into `out` (hand-written: serde_json is not
/// linked into the tracker). Writing into a Vec cannot fail; should it, the
/// line is left empty rather than half-written.
pub fn json_line(out: &mut Vec<u8>, r: &Record, target: &str, method: ProbeMethod) {
    out.clear();
    if write_json(out, r, target, method).is_err() {
        out.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mwan_proto::track::{Sample, TrackerMessage};

    fn rec(seq: u64, outcome: ProbeOutcome) -> Record {
        Record {
            seq,
            target: (seq % 2) as u16,
            sent_at_us: 1000 + seq,
            outcome,
            round: seq / 2,
            inbound_packets: (outcome == ProbeOutcome::Timeout).then_some(seq as u32),
            confirmation: seq == 4,
        }
    }

    #[test]
    fn borrowed_encoding_decodes_as_proto_messages() {
        let targets = vec!["192.0.2.1".to_string(), "2001:db8::1".to_string()];
        let mut ring = VecDeque::with_capacity(4);
        // wrap the ring so both slices are used
        for i in 0..6 {
            if ring.len() == 4 {
                ring.pop_front();
            }
            ring.push_back(rec(
                i,
                match i % 3 {
                    0 => ProbeOutcome::Reply { rtt_us: 1234 },
                    1 => ProbeOutcome::Timeout,
                    _ => ProbeOutcome::Unreachable {
                        icmp_type: 3,
                        icmp_code: 1,
                    },
                },
            ));
        }
        let (a, b) = ring.as_slices();
        let mut wire = Vec::new();
        frame::encode_into(
            &WireMessage::Hello {
                interface: "wan",
                pid: 7,
                started_at_us: 9,
                dropped_samples: 2,
            },
            &mut wire,
        )
        .unwrap();
        frame::encode_into(
            &WireMessage::Samples(Batch {
                records: (a, b),
                targets: &targets,
                method: ProbeMethod::IcmpEcho,
            }),
            &mut wire,
        )
        .unwrap();
        frame::encode_into(
            &WireMessage::Trouble {
                message: "no address",
            },
            &mut wire,
        )
        .unwrap();
        let mut r = FrameReader::new();
        r.extend(&wire);
        assert_eq!(
            r.next::<TrackerMessage>().unwrap(),
            Some(TrackerMessage::Hello {
                interface: "wan".into(),
                pid: 7,
                started_at_us: 9,
                dropped_samples: 2
            })
        );
        let expected: Vec<Sample> = ring
            .iter()
            .map(|r| Sample {
                seq: r.seq,
                target: targets[r.target as usize].clone(),
                method: ProbeMethod::IcmpEcho,
                sent_at_us: r.sent_at_us,
                outcome: r.outcome,
                round: r.round,
                inbound_packets: r.inbound_packets,
                confirmation: r.confirmation,
            })
            .collect();
        assert_eq!(
            r.next::<TrackerMessage>().unwrap(),
            Some(TrackerMessage::Samples(expected))
        );
        assert_eq!(
            r.next::<TrackerMessage>().unwrap(),
            Some(TrackerMessage::Trouble {
                message: "no address".into()
            })
        );
    }

    #[test]
    fn backlog_drops_oldest_and_counts() {
        let mut b = Backlog::new(3);
        for i in 0..5 {
            b.push(rec(i, ProbeOutcome::Timeout));
        }
        assert_eq!(b.len(), 3);
        assert_eq!(b.dropped, 2);
        assert_eq!(b.ring.front().unwrap().seq, 2);
    }

    #[test]
    fn in_flight_samples_stay_until_delivered() {
        let mut b = Backlog::new(4);
        for i in 0..3 {
            b.push(rec(i, ProbeOutcome::Timeout));
        }
        let (x, y) = b.next_batch(2);
        assert_eq!(x.len() + y.len(), 2);
        b.undelivered();
        assert_eq!(b.len(), 3, "a failed write keeps its samples");
        let (x, _) = b.next_batch(10);
        assert_eq!(x.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![0, 1, 2]);
        // overflow evicts in-flight samples: lost only if that write fails
        b.push(rec(3, ProbeOutcome::Timeout));
        b.push(rec(4, ProbeOutcome::Timeout));
        b.push(rec(5, ProbeOutcome::Timeout));
        assert_eq!(b.dropped, 0);
        b.undelivered();
        assert_eq!(b.dropped, 2);
        let (x, y) = b.next_batch(10);
        let seqs: Vec<u64> = x.iter().chain(y).map(|r| r.seq).collect();
        assert_eq!(seqs, vec![2, 3, 4, 5]);
        b.delivered();
        assert_eq!(b.len(), 0);
        // a wrapped ring hands out the right records after a partial batch
        for i in 6..10 {
            b.push(rec(i, ProbeOutcome::Timeout));
        }
        let _ = b.next_batch(3);
        let (x, y) = b.next_batch(3);
        assert_eq!(
            x.iter().chain(y).map(|r| r.seq).collect::<Vec<_>>(),
            vec![9]
        );
    }

    #[test]
    fn json_lines() {
        let mut out = Vec::new();
        json_line(
            &mut out,
            &rec(
                3,
                ProbeOutcome::Unreachable {
                    icmp_type: 3,
                    icmp_code: 13,
                },
            ),
            "a\"b",
            ProbeMethod::Udp,
        );
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "{\"seq\":3,\"target\":\"a\\\"b\",\"method\":\"udp\",\"sent_at_us\":1003,\"round\":1,\"outcome\":\"unreachable\",\"icmp_type\":3,\"icmp_code\":13}\n"
        );
        json_line(
            &mut out,
            &rec(5, ProbeOutcome::Timeout),
            "t",
            ProbeMethod::IcmpEcho,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"seq\":5,\"target\":\"t\",\"method\":\"icmp_echo\",\"sent_at_us\":1005,\"round\":2,\"outcome\":\"timeout\",\"inbound_packets\":5}\n"
        );
    }
}
