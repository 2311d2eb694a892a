//! The probes in flight and where their outcomes go. Every probe method
//! works against this: it reads the configuration, binding and targets,
//! finds the probe an answer belongs to (`slot_for`, `oldest_for`) and ends
//! it (`reply`, `finish`).

use super::tcp::Conn;
use super::TIMER_PROBE;
use crate::args::Args;
use crate::report::{self, Backlog, Record};
use crate::timers::Deadlines;
use mio::Poll;
use mwan_proto::track::ProbeOutcome;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// In-flight probe slots; a probe's slot is its sequence number modulo this
/// (a power of two dividing 2^16, so the mapping survives wrap-around).
pub(super) const SLOTS: usize = 128;

/// A probe about to leave: its slot (taken and stamped), its target's
/// index and its sequence number.
#[derive(Clone, Copy)]
pub(super) struct Outgoing {
    pub(super) slot: usize,
    pub(super) target: usize,
    pub(super) seq: u16,
}

#[derive(Default)]
pub(super) struct Slot {
    active: bool,
    target: u16,
    seq: u16,
    sent_at_us: u64,
    /// CLOCK_REALTIME at send, paired with kernel receive timestamps.
    sent_realtime_us: u64,
    round: u64,
    /// The probe's own connection (TCP, HTTP), closed when it ends.
    conn: Option<Conn>,
    /// The device's inbound unicast count when the probe left, and the
    /// tracker's own timely answers by then.
    inbound_at_send: Option<u64>,
    answers_at_send: u64,
    /// Already reported lost at the controller's timeout: the slot stays
    /// open until the `--timeout` cap, and only an answer is reported (a
    /// late reply).
    reported: bool,
    /// A probe of the confirmation burst: it is reported only through
    /// the burst's one outcome ([`BurstTally`]).
    burst: bool,
}

/// The confirmation burst in progress (crate::burst): one outcome for all
/// its probes, an answer as soon as one comes, a loss once all are lost.
#[derive(Default)]
pub(super) struct BurstTally {
    /// Probes still to send.
    pub(super) to_send: u32,
    in_flight: u32,
    /// Its outcome is recorded: the probes left end silently.
    pub(super) done: bool,
    /// The inbound count when it began: an unanswered burst reports
    /// everything that arrived meanwhile, answers to the rounds' probes
    /// included (a link that answers them is not dead, whatever became of
    /// the burst: seen under a one-way upload keeping a 1 s queue full).
    inbound_at_start: Option<u64>,
    /// It went unanswered, not yet told to the traffic watch.
    pub(super) unanswered: bool,
}

/// Addresses and device facts the probes are bound to.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Binding {
    pub(super) ifindex: Option<u32>,
    pub(super) src4: Option<Ipv4Addr>,
    pub(super) src6: Option<Ipv6Addr>,
}

/// Everything of the tracker but its method's sockets and the controller
/// connection: the state a probe method reads and ends probes in.
pub(super) struct Probes {
    /// The command line the tracker was started with.
    pub(super) config: Args,
    pub(super) poll: Poll,
    /// Every deadline of the tracker: the loop's own and one per slot.
    pub(super) timers: Deadlines,
    pub(super) binding: Binding,
    /// Each target's address (`None`: an ARP `gateway` not yet known).
    pub(super) target_addrs: Vec<Option<IpAddr>>,
    pub(super) target_names: Vec<String>,
    slots: Vec<Slot>,
    /// When a probe is reported lost (`--timeout`, then `SetTimeout`).
    pub(super) timeout_us: u64,
    /// How long a probe's slot stays open for an answer: `--timeout`, or
    /// `timeout_us` if longer. Between the two, an answer is reported as a
    /// second sample (a reply) for a probe already reported lost.
    cap_us: u64,
    /// The device's inbound packet counter (re-opened with the binding).
    pub(super) inbound: crate::sys::InboundCounter,
    /// Answers to our probes within their report timeout, ever: they are
    /// not counted as inbound traffic (an answer to a probe sent before a
    /// cut may arrive just after it).
    timely_answers: u64,
    /// Number of the next sample.
    pub(super) sample_seq: u64,
    /// Probes sent, ever (left out of the device's sent packets when the
    /// traffic watch looks for traffic).
    pub(super) probes_sent: u64,
    /// Recent high of the round trip (crate::burst::rtt_high).
    pub(super) rtt_high_us: u64,
    pub(super) burst: BurstTally,
    /// Samples not yet written to the controller (only kept with one).
    pub(super) backlog: Backlog,
    to_controller: bool,
    /// The JSON line buffer for `--stdout`.
    line: Vec<u8>,
    /// stdout was closed: the tracker stops.
    pub(super) stop: bool,
}

impl Probes {
    pub(super) fn new(
        config: Args,
        poll: Poll,
        timers: Deadlines,
        target_addrs: Vec<Option<IpAddr>>,
    ) -> Probes {
        Probes {
            target_names: config.targets.iter().map(|t| t.text.clone()).collect(),
            target_addrs,
            slots: (0..SLOTS).map(|_| Slot::default()).collect(),
            timeout_us: config.timeout_ms * 1000,
            cap_us: config.timeout_ms * 1000,
            inbound: crate::sys::InboundCounter::open(&config.device),
            timely_answers: 0,
            sample_seq: 0,
            probes_sent: 0,
            rtt_high_us: 0,
            burst: BurstTally::default(),
            backlog: Backlog::new(config.backlog),
            to_controller: config.controller.is_some(),
            line: Vec::with_capacity(256),
            stop: false,
            binding: Binding::default(),
            poll,
            timers,
            config,
        }
    }

    /// Whether any target is of the family (IPv6 if `v6`).
    pub(super) fn has_family(&self, v6: bool) -> bool {
        self.target_addrs
            .iter()
            .flatten()
            .any(|a| a.is_ipv6() == v6)
    }

    /// The address of target `t`; `EDESTADDRREQ` when it has none.
    pub(super) fn target_addr(&self, t: usize) -> io::Result<IpAddr> {
        self.target_addrs[t].ok_or_else(|| io::Error::from_raw_os_error(libc::EDESTADDRREQ))
    }

    /// The target probed from slot `si`.
    pub(super) fn target_of(&self, si: usize) -> usize {
        usize::from(self.slots[si].target)
    }

    /// The answers to our probes within their timeout, ever (left out of
    /// the device's received packets when the traffic watch looks for
    /// traffic).
    pub(super) fn timely_answers(&self) -> u64 {
        self.timely_answers
    }

    /// A confirmation burst of `probes` begins (one left over from an
    /// earlier burst ends silently).
    pub(super) fn begin_burst(&mut self, probes: u32) {
        self.burst = BurstTally {
            to_send: probes,
            inbound_at_start: self.inbound.read(),
            ..BurstTally::default()
        };
    }

    /// Takes the slot of probe `seq` to `target` (ending, as lost, the
    /// probe that still held it), stamps the send time and arms its
    /// timeout (a burst probe's is crate::burst::burst_timeout_us). Call
    /// just before the probe is transmitted.
    pub(super) fn start(&mut self, target: usize, seq: u16, round: u64, burst: bool) -> Outgoing {
        let si = usize::from(seq) % SLOTS;
        if self.slots[si].active {
            // More probes in flight than slots: the oldest gives up early.
            self.finish(si, ProbeOutcome::Timeout);
        }
        let slot = &mut self.slots[si];
        slot.active = true;
        slot.reported = false;
        slot.target = target as u16;
        slot.seq = seq;
        slot.round = round;
        slot.inbound_at_send = self.inbound.read();
        slot.answers_at_send = self.timely_answers;
        slot.burst = burst;
        let sent_at = crate::sys::monotonic_us();
        slot.sent_at_us = sent_at;
        slot.sent_realtime_us = crate::sys::realtime_us();
        self.probes_sent += 1;
        let timeout = if burst {
            self.burst.to_send = self.burst.to_send.saturating_sub(1);
            self.burst.in_flight += 1;
            crate::burst::burst_timeout_us(self.rtt_high_us, self.cap_us.max(self.timeout_us))
        } else {
            self.timeout_us
        };
        self.timers.arm(TIMER_PROBE + si, sent_at + timeout);
        Outgoing {
            slot: si,
            target,
            seq,
        }
    }

    /// Gives the probe in slot `si` its own connection (closed when it ends).
    pub(super) fn set_conn(&mut self, si: usize, conn: Conn) {
        self.slots[si].conn = Some(conn);
    }

    /// The connection of the probe in slot `si`, if it has one.
    pub(super) fn conn_mut(&mut self, si: usize) -> Option<&mut Conn> {
        self.slots[si].conn.as_mut()
    }

    /// Ends a probe with an answer. The round-trip time comes from the
    /// kernel's receive stamp when there is one (so a busy event loop does not
    /// inflate it), else from the monotonic clock now; a stamp that disagrees
    /// with the monotonic clock (CLOCK_REALTIME stepped) is ignored.
    pub(super) fn reply(&mut self, si: usize, now: u64, rx_realtime_us: Option<u64>) {
        let slot = &self.slots[si];
        let mono = now.saturating_sub(slot.sent_at_us);
        let rtt = match rx_realtime_us.map(|rx| rx as i64 - slot.sent_realtime_us as i64) {
            Some(r)
                if r >= 0
                    && r as u64 <= mono + 1000
                    && mono - (r as u64).min(mono) <= 1_000_000 =>
            {
                r as u64
            }
            _ => mono,
        };
        self.rtt_high_us = crate::burst::rtt_high(self.rtt_high_us, rtt);
        self.finish(
            si,
            ProbeOutcome::Reply {
                rtt_us: rtt.min(u64::from(u32::MAX)) as u32,
            },
        );
    }

    /// Ends a probe: records the sample, frees the slot. For a probe
    /// already reported lost only an answer is recorded (a late reply).
    pub(super) fn finish(&mut self, si: usize, outcome: ProbeOutcome) {
        let slot = &mut self.slots[si];
        if !slot.active {
            return;
        }
        slot.active = false;
        let news = !slot.reported || matches!(outcome, ProbeOutcome::Reply { .. });
        if !slot.reported && matches!(outcome, ProbeOutcome::Reply { .. }) {
            self.timely_answers += 1;
        }
        if let Some(mut c) = slot.conn.take() {
            if let Err(e) = self.poll.registry().deregister(&mut c.stream) {
                eprintln!("mwan-track: deregister: {e}");
            }
        }
        self.timers.cancel(TIMER_PROBE + si);
        if slot.burst {
            self.burst_probe_ended(si, outcome);
        } else if news {
            self.record(si, outcome, None, false);
        }
    }

    /// A burst probe ended: the burst's outcome is the first answer, or a
    /// loss once every probe of it is sent and lost.
    fn burst_probe_ended(&mut self, si: usize, outcome: ProbeOutcome) {
        let b = &mut self.burst;
        b.in_flight = b.in_flight.saturating_sub(1);
        if b.done {
            return;
        }
        let answered = matches!(outcome, ProbeOutcome::Reply { .. });
        if answered {
            b.done = true;
            self.record(si, outcome, None, true);
        } else if b.in_flight == 0 && b.to_send == 0 {
            b.done = true;
            b.unanswered = true;
            let at = b.inbound_at_start;
            let inbound = crate::sys::inbound_between(at, self.inbound.read());
            self.record(si, ProbeOutcome::Timeout, inbound, true);
        }
    }

    /// A probe's timeout passed: report it lost, with the unicast packets
    /// the device received meanwhile other than timely answers to our own
    /// probes (the controller tells a silent link from a busy one by them). Its slot stays open until the cap, so an
    /// answer after the timeout still teaches the controller the link's
    /// RTT (and may withdraw a failure); past the cap the slot is freed
    /// without another sample.
    pub(super) fn on_timeout(&mut self, si: usize, now: u64) {
        let slot = &self.slots[si];
        if !slot.active {
            return;
        }
        if slot.reported || slot.burst {
            self.finish(si, ProbeOutcome::Timeout);
            return;
        }
        let inbound = self.inbound_since(slot.inbound_at_send, slot.answers_at_send);
        let close_at = slot.sent_at_us + self.cap_us.max(self.timeout_us);
        self.record(si, ProbeOutcome::Timeout, inbound, false);
        if close_at <= now {
            self.slots[si].reported = true;
            self.finish(si, ProbeOutcome::Timeout);
            return;
        }
        self.slots[si].reported = true;
        self.timers.arm(TIMER_PROBE + si, close_at);
    }

    /// Unicast packets the device received since it counted `inbound_at`,
    /// less our timely answers since there were `answers_at`.
    fn inbound_since(&self, inbound_at: Option<u64>, answers_at: u64) -> Option<u32> {
        let answers = self.timely_answers - answers_at;
        crate::sys::inbound_between(inbound_at, self.inbound.read())
            .map(|n| n.saturating_sub(u32::try_from(answers).unwrap_or(u32::MAX)))
    }

    /// One sample of the probe in slot `si` to stdout and the backlog.
    fn record(
        &mut self,
        si: usize,
        outcome: ProbeOutcome,
        inbound_packets: Option<u32>,
        confirmation: bool,
    ) {
        let slot = &self.slots[si];
        let rec = Record {
            seq: self.sample_seq,
            target: slot.target,
            sent_at_us: slot.sent_at_us,
            outcome,
            round: slot.round,
            inbound_packets,
            confirmation,
        };
        self.sample_seq += 1;
        if self.config.stdout {
            report::json_line(
                &mut self.line,
                &rec,
                &self.target_names[usize::from(rec.target)],
                self.config.method.wire(),
            );
            let mut out = io::stdout().lock();
            if let Err(e) = out.write_all(&self.line).and_then(|()| out.flush()) {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    self.stop = true;
                }
            }
        }
        if self.to_controller {
            self.backlog.push(rec);
        }
    }

    /// The oldest in-flight probe to `target` (for answers that carry no sequence).
    pub(super) fn oldest_for(&self, target: usize) -> Option<usize> {
        (0..SLOTS)
            .filter(|&i| self.slots[i].active && usize::from(self.slots[i].target) == target)
            .min_by_key(|&i| self.slots[i].sent_at_us)
    }

    /// The in-flight slot for sequence `seq` sent to `addr`.
    pub(super) fn slot_for(&self, seq: u16, addr: IpAddr) -> Option<usize> {
        let si = usize::from(seq) % SLOTS;
        let s = &self.slots[si];
        (s.active && s.seq == seq && self.target_addrs[usize::from(s.target)] == Some(addr))
            .then_some(si)
    }

    /// The in-flight slot for sequence `seq`, whatever its target (for
    /// answers the kernel already matched to our socket).
    pub(super) fn slot_for_seq(&self, seq: u16) -> Option<usize> {
        let si = usize::from(seq) % SLOTS;
        let s = &self.slots[si];
        (s.active && s.seq == seq).then_some(si)
    }
}
