//! Conntrack entries pinned to a WAN, deleted through ctnetlink.
//!
//! A WAN that became unusable keeps its connections' pins (its pin mark in
//! their ct mark) until they are deleted: then the clients' next packets
//! create fresh entries that the policies send through a live WAN. We delete
//! with ONE IPCTNL_MSG_CT_DELETE carrying CTA_MARK + CTA_MARK_MASK: the
//! kernel flushes only entries whose `ct mark & mask == mark`, in both
//! families. The whole table is never flushed.
//!
//! Offloaded flows (fw4's `flow_offloading`) keep their entry and its mark.
//! Since Linux 6.4 ctnetlink deletes them like others and the flowtable's GC
//! drops the flow; older kernels skip `IPS_OFFLOAD` entries in a flush, and
//! the flowtable tears such a flow down once its cached route is stale (the
//! WAN's routes change first). [`Conntrack::delete_by_mark`] reports
//! what is left; call it again a couple of seconds later while that is not 0. See
//! docs/dataplane-nft.md.

use neli::consts::socket::NlFamily;

use crate::error::NetlinkError;
use crate::socket::{MsgBuilder, Socket, Tolerate};

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const CTA_MARK: u16 = 8;
const CTA_MARK_MASK: u16 = 21;

fn ct_msg(msg: u16, mark: u32, mask: u32) -> MsgBuilder {
    let mut m = MsgBuilder::new((NFNL_SUBSYS_CTNETLINK << 8) | msg, 0);
    // nfgenmsg: AF_UNSPEC, NFNETLINK_V0 (both families), res_id 0.
    m.bytes(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    m.attr(CTA_MARK, &mark.to_be_bytes());
    m.attr(CTA_MARK_MASK, &mask.to_be_bytes());
    m
}

/// The delete-by-mark request (for golden tests and for callers that
/// batch it with other netfilter work).
pub fn delete_request(mark: u32, mask: u32) -> MsgBuilder {
    ct_msg(IPCTNL_MSG_CT_DELETE, mark, mask)
}

/// What one deletion did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushReport {
    /// Entries with the mark before.
    pub before: usize,
    /// Entries with the mark after: offloaded flows not yet torn down, or
    /// connections that just started.
    pub remaining: usize,
}

impl FlushReport {
    pub fn deleted(&self) -> usize {
        self.before.saturating_sub(self.remaining)
    }
}

pub struct Conntrack {
    sock: Socket,
}

impl Conntrack {
    pub fn open() -> Result<Self, NetlinkError> {
        Ok(Conntrack {
            sock: Socket::open(NlFamily::Netfilter, &[])?,
        })
    }

    /// How many entries (both families) have `ct mark & mask == mark`.
    pub fn count_by_mark(&mut self, mark: u32, mask: u32) -> Result<usize, NetlinkError> {
        let msgs = self.sock.dump(
            &ct_msg(IPCTNL_MSG_CT_GET, mark, mask),
            &format!("dump conntrack entries with mark {mark:#x}/{mask:#x}"),
        )?;
        Ok(msgs.len())
    }

    /// Delete the entries with `ct mark & mask == mark` (one WAN's pins):
    /// one message. The kernel walks the whole conntrack hash for it (a few
    /// ms on a large table).
    pub fn delete_by_mark_uncounted(&mut self, mark: u32, mask: u32) -> Result<(), NetlinkError> {
        if mark & !mask != 0 || mark == 0 {
            // mark 0 would flush every connection without a pin: never.
            return Err(NetlinkError::Malformed(format!(
                "refusing to delete conntrack entries by mark {mark:#x}/{mask:#x}: \
                 expected a non-zero mark inside the mask"
            )));
        }
        self.sock.request(
            &delete_request(mark, mask),
            &format!("delete conntrack entries with mark {mark:#x}/{mask:#x}"),
            // Nothing matched.
            Tolerate::Missing,
        )
    }

    /// [`Conntrack::delete_by_mark_uncounted`] with a count before and after (two
    /// more walks of the table), for logs, status and tests.
    pub fn delete_by_mark(&mut self, mark: u32, mask: u32) -> Result<FlushReport, NetlinkError> {
        let before = self.count_by_mark(mark, mask)?;
        self.delete_by_mark_uncounted(mark, mask)?;
        let remaining = self.count_by_mark(mark, mask)?;
        Ok(FlushReport { before, remaining })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::{attrs, split_messages};

    #[test]
    fn delete_request_carries_mark_and_mask_big_endian() {
        let b = delete_request(0x200, 0x3f00).finish(7, 0);
        let m = &split_messages(&b).unwrap()[0];
        assert_eq!(m.msg_type, 0x0102);
        assert_eq!(&m.payload[..4], &[0, 0, 0, 0]);
        let a = attrs(&m.payload, 4);
        assert_eq!(a, vec![(8, &[0, 0, 2, 0][..]), (21, &[0, 0, 0x3f, 0][..])]);
    }

    #[test]
    fn zero_or_foreign_marks_are_refused_before_any_io() {
        // No socket needed: the check comes first. Build one only if we can.
        if let Ok(mut ct) = Conntrack::open() {
            assert!(ct.delete_by_mark_uncounted(0, 0x3f00).is_err());
            assert!(ct.delete_by_mark(0x1, 0x3f00).is_err());
        }
    }
}
