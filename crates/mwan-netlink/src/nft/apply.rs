//! [`Nft`]: the socket that installs table `inet mwan` and keeps it as
//! wanted (observe, replace, ensure, flush sets, delete).

use mwan_core::plan::nft::{NftTable, TABLE};
use neli::consts::socket::NlFamily;

use super::batch::{delete_table_request, flush_set_requests, plan_tag, replace_requests_tagged};
use super::messages::parse_table_comment;
use super::observed::{drift, Drift, Observed};
use super::wire::*;
use crate::error::{KernelError, NetlinkError};
use crate::socket::{self, attr_str, attrs, Socket};

/// The nf_tables side of mwand: one NETLINK_NETFILTER socket.
pub struct Nft {
    sock: Socket,
    /// The table this socket last installed: [`Nft::ensure`] replaces when
    /// the wanted table differs from it (a config change of the same shape
    /// has the same chains, sets and rule counts, which a dump compares).
    applied: Option<NftTable>,
    /// Stored in the table whenever this socket creates it.
    comment: Option<String>,
}

/// Did a replacement happen, and with how many messages?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplaceReport {
    pub messages: usize,
    pub rules: usize,
}

impl Nft {
    pub fn open() -> Result<Self, NetlinkError> {
        Ok(Nft {
            sock: Socket::open(NlFamily::Netfilter, &[])?,
            applied: None,
            comment: None,
        })
    }

    /// A comment to store in table `inet mwan` whenever this socket creates
    /// it (`nft list table` shows it): state that must outlive a crash of
    /// mwand lives with the kernel object it belongs to. An existing table
    /// keeps the comment it was created with.
    pub fn set_table_comment(&mut self, comment: &str) -> Result<(), NetlinkError> {
        if comment.len() > TABLE_COMMENT_MAX {
            return Err(NetlinkError::Malformed(format!(
                "table comment of {} bytes: expected at most {TABLE_COMMENT_MAX}",
                comment.len()
            )));
        }
        self.comment = Some(comment.to_string());
        Ok(())
    }

    /// The comment of table `inet mwan` in the kernel; None when the table
    /// or its comment is missing.
    pub fn table_comment(&mut self) -> Result<Option<String>, NetlinkError> {
        let msgs = self.sock.dump(
            &nft_msg(NFT_MSG_GETTABLE, 0),
            "dump nf_tables tables (inet)",
        )?;
        for msg in msgs {
            let a = attrs(&msg.payload, 4);
            let get = |t: u16| a.iter().find(|(ty, _)| *ty == t).map(|(_, p)| *p);
            if msg.payload.first() == Some(&NFPROTO_INET)
                && get(NFTA_TABLE_NAME).map(attr_str).as_deref() == Some(TABLE)
            {
                return Ok(get(NFTA_TABLE_USERDATA).and_then(parse_table_comment));
            }
        }
        Ok(None)
    }

    fn dump(&mut self, msg: u16, what: &str) -> Result<Vec<socket::RawMsg>, NetlinkError> {
        let mut m = nft_msg(msg, 0);
        // Kernels filter set and rule dumps by table; chains we filter here.
        m.attr_str(1, TABLE);
        self.sock.dump(&m, what)
    }

    /// Dump table `inet mwan`: `None` if it does not exist.
    pub fn observe(&mut self) -> Result<Option<Observed>, NetlinkError> {
        let mut get = nft_msg(NFT_MSG_GETTABLE, 0);
        get.attr_str(NFTA_TABLE_NAME, TABLE);
        match self
            .sock
            .request(&get, "get table inet mwan", socket::Tolerate::Nothing)
        {
            Ok(()) => {}
            Err(NetlinkError::Kernel(e)) if e.errno == libc::ENOENT => return Ok(None),
            Err(e) => return Err(e),
        }
        let chains = self.dump(NFT_MSG_GETCHAIN, "dump chains of inet mwan")?;
        let rules = self.dump(NFT_MSG_GETRULE, "dump rules of inet mwan")?;
        let sets = self.dump(NFT_MSG_GETSET, "dump sets of inet mwan")?;
        Ok(Some(Observed::from_dumps(&chains, &rules, &sets)))
    }

    /// Replace the table's content by `want` in one transaction: all or
    /// nothing. Sets that keep their definition keep their elements.
    pub fn replace(&mut self, want: &NftTable) -> Result<ReplaceReport, NetlinkError> {
        let observed = self.observe()?;
        self.replace_observed(want, observed.as_ref(), None)
    }

    /// `tag`: the [`plan_tag`] every rule carries ([`Nft::ensure`]); None
    /// sends exactly what `nft -f` would.
    fn replace_observed(
        &mut self,
        want: &NftTable,
        observed: Option<&Observed>,
        tag: Option<&str>,
    ) -> Result<ReplaceReport, NetlinkError> {
        let reqs = replace_requests_tagged(want, observed, self.comment.as_deref(), tag);
        self.applied = None;
        self.sock.transaction(NFNL_SUBSYS_NFTABLES, &reqs)?;
        self.applied = Some(want.clone());
        Ok(ReplaceReport {
            messages: reqs.len(),
            rules: want.rule_count(),
        })
    }

    /// Reconcile: replace if `want` is not what this socket installed last
    /// (config change) or if the kernel's table drifted from it (deleted,
    /// chains flushed, sets redefined); otherwise send nothing. On the first
    /// call (a restarted mwand) a table whose rules carry `want`'s
    /// [`plan_tag`] and that shows no drift is adopted as it is: nothing is
    /// written and the sets keep their elements.
    pub fn ensure(&mut self, want: &NftTable) -> Result<Option<ReplaceReport>, NetlinkError> {
        let observed = self.observe()?;
        let known = match &self.applied {
            Some(applied) => applied == want,
            None => observed
                .as_ref()
                .and_then(|o| o.plan_tag.as_deref())
                .is_some_and(|t| t == plan_tag(want)),
        };
        if known && drift(want, observed.as_ref()) == Drift::None {
            self.applied = Some(want.clone());
            return Ok(None);
        }
        let tag = plan_tag(want);
        self.replace_observed(want, observed.as_ref(), Some(&tag))
            .map(Some)
    }

    /// Empty sets (a dead WAN's sticky sets), in one transaction. A set that
    /// does not exist is an error naming it (the caller's table is stale).
    pub fn flush_sets(&mut self, sets: &[String]) -> Result<(), NetlinkError> {
        if sets.is_empty() {
            return Ok(());
        }
        self.sock
            .transaction(NFNL_SUBSYS_NFTABLES, &flush_set_requests(sets))
    }

    /// Remove table `inet mwan` (stop). Absent already is success.
    pub fn delete_table(&mut self) -> Result<(), NetlinkError> {
        self.applied = None;
        match self
            .sock
            .transaction(NFNL_SUBSYS_NFTABLES, &[delete_table_request()])
        {
            Err(NetlinkError::Kernel(KernelError { errno, .. })) if errno == libc::ENOENT => Ok(()),
            other => other,
        }
    }
}

impl Nft {
    /// This socket's netlink port id: nf_tables stamps the notifications of
    /// our own transactions with it ([`NftWatch::ignore_changes_by`]).
    pub fn pid(&self) -> u32 {
        self.sock.pid()
    }
}
