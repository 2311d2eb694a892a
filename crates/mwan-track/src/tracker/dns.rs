//! DNS (`nslookup`): a query per probe on the target's connected UDP
//! socket (`udp.rs`), id = sequence xor a random key; the answer must echo
//! our id and question and hold an A/AAAA record (`--dns-expect`'s if set).

use super::probes::{Outgoing, Probes};
use super::socket::OpenFailure;
use super::udp::TargetSockets;
use super::ProbeMethod;
use crate::args::Args;
use crate::packet::{self, DnsVerdict};
use crate::sys;
use mio::Token;
use mwan_proto::track::ProbeOutcome;
use std::io;

pub(super) struct Dns {
    sockets: TargetSockets,
    /// Query id = sequence xor this (random per tracker).
    key: u16,
    /// The query being sent, or rebuilt to check an answer against.
    query: Vec<u8>,
}

impl Dns {
    pub(super) fn new(config: &Args) -> Dns {
        let mut key = [0u8; 2];
        sys::random_bytes(&mut key);
        Dns {
            sockets: TargetSockets::new(config.targets.len()),
            key: u16::from_le_bytes(key),
            query: vec![0; 64 + config.dns_name.len()],
        }
    }
}

/// Writes the query of probe `seq` into `out`; returns its length.
fn build_query(out: &mut [u8], config: &Args, key: u16, seq: u16) -> usize {
    let aaaa = config.dns_expect.is_some_and(|e| e.is_ipv6());
    packet::build_dns_query(out, seq ^ key, &config.dns_name, aaaa)
}

impl ProbeMethod for Dns {
    fn open(&mut self, probes: &mut Probes) -> Result<(), OpenFailure> {
        self.sockets.open(probes)
    }

    fn missing(&self, _probes: &Probes) -> bool {
        self.sockets.missing()
    }

    fn transmit(&mut self, probes: &mut Probes, probe: Outgoing) -> io::Result<()> {
        let len = build_query(&mut self.query, &probes.config, self.key, probe.seq);
        self.sockets.send(probes, probe.target, &self.query[..len])
    }

    fn on_readable(&mut self, probes: &mut Probes, token: Token, errored: bool) {
        let key = self.key;
        let query = &mut self.query;
        self.sockets.on_readable(
            probes,
            token,
            errored,
            &|quoted| {
                quoted
                    .get(..2)
                    .map(|b| u16::from_be_bytes([b[0], b[1]]) ^ key)
            },
            &mut |probes, t, answer, now| {
                if answer.len() < 2 {
                    return;
                }
                let seq = u16::from_be_bytes([answer[0], answer[1]]) ^ key;
                let Some(si) = probes.target_addrs[t].and_then(|a| probes.slot_for(seq, a)) else {
                    return;
                };
                let len = build_query(query, &probes.config, key, seq);
                match packet::check_dns_answer(answer, &query[..len], probes.config.dns_expect) {
                    DnsVerdict::NotOurs => {}
                    DnsVerdict::Good => probes.reply(si, now, None),
                    DnsVerdict::Bad => probes.finish(si, ProbeOutcome::BadAnswer),
                }
            },
        );
    }
}
