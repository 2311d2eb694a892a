//! [`NftWatch`]: notifications of changes someone else made to table
//! `inet mwan`.

use mwan_core::plan::nft::TABLE;
use neli::consts::socket::NlFamily;

use super::wire::{NFNL_SUBSYS_NFTABLES, NFPROTO_INET};
use crate::error::NetlinkError;
use crate::socket::{attr_str, attrs, RawMsg, Socket};

/// nf_tables multicast group (NFNLGRP_NFTABLES).
pub(super) const NFNLGRP_NFTABLES: u32 = 7;
pub(super) const NFT_MSG_NEWGEN: u16 = 16;

/// Notifications of changes to table `inet mwan` made by someone else (an
/// admin's `nft`, an `fw4` reload that flushed the ruleset): mwand puts the
/// socket in its poll set and runs [`Nft::ensure`] when [`NftWatch::read`]
/// says so, instead of waiting for the periodic reconcile.
pub struct NftWatch {
    sock: Socket,
    ignore_pid: Option<u32>,
}

impl NftWatch {
    pub fn subscribe() -> Result<Self, NetlinkError> {
        let sock = Socket::open(NlFamily::Netfilter, &[NFNLGRP_NFTABLES])?;
        sock.set_nonblocking()?;
        Ok(NftWatch {
            sock,
            ignore_pid: None,
        })
    }

    /// Skip notifications caused by the socket with this port id ([`Nft::pid`]).
    pub fn ignore_changes_by(&mut self, pid: u32) {
        self.ignore_pid = Some(pid);
    }

    /// Drain what is queued; true if someone else changed table `inet
    /// mwan` (or events were lost, so it may have). Returns at once.
    pub fn read(&mut self) -> Result<bool, NetlinkError> {
        let mut touched = false;
        loop {
            match self.sock.recv() {
                Ok(msgs) => touched |= msgs.iter().any(|m| concerns_our_table(m, self.ignore_pid)),
                Err(NetlinkError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::WouldBlock =>
                {
                    return Ok(touched)
                }
                Err(NetlinkError::Overrun) => touched = true,
                Err(e) => return Err(e),
            }
        }
    }
}

/// A notification of a change to table `inet mwan` not made by `ignore_pid`.
pub fn concerns_our_table(m: &RawMsg, ignore_pid: Option<u32>) -> bool {
    if m.msg_type >> 8 != NFNL_SUBSYS_NFTABLES
        || m.msg_type & 0xff == NFT_MSG_NEWGEN
        || m.payload.first() != Some(&NFPROTO_INET)
        || ignore_pid.is_some_and(|p| p != 0 && p == m.pid)
    {
        return false;
    }
    // Attribute 1 names the table in table, chain, rule, set and set
    // element messages alike.
    attrs(&m.payload, 4)
        .iter()
        .any(|(t, p)| *t == 1 && attr_str(p) == TABLE)
}

impl std::os::fd::AsRawFd for NftWatch {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.sock.as_raw_fd()
    }
}
