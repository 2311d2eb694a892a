//! mwan-netlink: the data plane's I/O. rtnetlink (routes, FIB rules, links,
//! addresses, events), sysctls, the nft table and conntrack deletion.
//!
//! [`Rtnl`] is what mwand uses: observe our tagged routes and rules, apply
//! the ops `mwan_core::plan::diff` computed, tear everything down on stop.

pub mod conntrack;
pub mod error;
pub mod link;
pub mod nft;
pub mod route;
pub mod rule;
pub mod socket;
pub mod sysctl;

use mwan_core::config::Family;
use mwan_core::plan::{KernelObjects, Op};

pub use error::{KernelError, NetlinkError};
pub use link::{Event, Events, Snapshot};
pub use socket::{Socket, Tolerate};

/// rtnetlink for one protocol number (ours).
pub struct Rtnl {
    sock: Socket,
    protocol: u8,
    /// What the kernel holds of ours after the last fully successful
    /// [`Rtnl::sync`]; None when unknown (start, after a failure).
    applied: Option<KernelObjects>,
}

/// What an [`Rtnl::apply`] did.
#[derive(Debug, Default)]
pub struct ApplyReport {
    pub applied: usize,
    /// Requests the kernel refused; the others were applied. The next
    /// reconcile retries them (the plan is unchanged, so the diff is too).
    pub failed: Vec<KernelError>,
}

impl Rtnl {
    pub fn open(protocol: u8) -> Result<Self, NetlinkError> {
        Ok(Rtnl {
            sock: Socket::route()?,
            protocol,
            applied: None,
        })
    }

    /// Port id of the request socket (see [`Events::ignore_changes_by`]).
    pub fn pid(&self) -> u32 {
        self.sock.pid()
    }

    pub fn protocol(&self) -> u8 {
        self.protocol
    }

    pub fn socket(&mut self) -> &mut Socket {
        &mut self.sock
    }

    /// Every route and rule carrying our protocol, both families, sorted as
    /// a plan's objects are (so `diff` compares like with like).
    pub fn observe(&mut self) -> Result<KernelObjects, NetlinkError> {
        self.observe_tables(None)
    }

    /// Like [`Rtnl::observe`], with routes of the given tables only (after a
    /// link or address event only the WAN's and its policies' tables need
    /// a re-dump: the kernel sends no RTM_DELROUTE for IPv4 routes that
    /// vanish with a link). Rules are always dumped in full.
    pub fn observe_tables(
        &mut self,
        tables: Option<&[u32]>,
    ) -> Result<KernelObjects, NetlinkError> {
        let mut routes = Vec::new();
        let mut rules = Vec::new();
        for family in [Family::Ipv4, Family::Ipv6] {
            let filters: Vec<route::RouteFilter> = match tables {
                None => vec![route::RouteFilter {
                    table: None,
                    protocol: Some(self.protocol),
                }],
                Some(ts) => ts
                    .iter()
                    .map(|t| route::RouteFilter {
                        table: Some(*t),
                        protocol: Some(self.protocol),
                    })
                    .collect(),
            };
            for f in filters {
                routes.extend(
                    route::dump_routes(&mut self.sock, family, f)?
                        .into_iter()
                        .map(|r| r.route),
                );
            }
            rules.extend(
                rule::dump_rules(&mut self.sock, family)?
                    .into_iter()
                    .filter(|(_, p)| *p == self.protocol)
                    .map(|(r, _)| r),
            );
        }
        Ok(KernelObjects::sorted(routes, rules))
    }

    /// Apply ops in order, pipelined. Deleting what is gone and adding a
    /// rule that exists count as success; other refusals are reported with
    /// the object and errno, and the rest still go through.
    pub fn apply(&mut self, ops: &[Op]) -> Result<ApplyReport, NetlinkError> {
        // Whoever applies ops by hand makes the sync cache stale.
        self.applied = None;
        let reqs: Vec<(socket::Request, Tolerate)> = ops
            .iter()
            .map(|op| match op {
                Op::AddRoute(r) => (route::replace_request(r, self.protocol), Tolerate::Nothing),
                Op::DelRoute(r) => (route::delete_request(r, self.protocol), Tolerate::Missing),
                Op::AddRule(r) => (rule::add_request(r, self.protocol), Tolerate::Existing),
                Op::DelRule(r) => (rule::delete_request(r, self.protocol), Tolerate::Missing),
            })
            .collect();
        let results = self.sock.batch(&reqs)?;
        let mut report = ApplyReport::default();
        for r in results {
            match r {
                Ok(()) => report.applied += 1,
                Err(e) => report.failed.push(e),
            }
        }
        Ok(report)
    }

    /// Bring the kernel to `desired` with the fewest messages. With
    /// `reconcile` (start, a link/address event, one of ours deleted by
    /// someone else, events lost) the kernel is dumped first; otherwise the
    /// diff is against what the last successful sync left, so a failover
    /// costs only its own messages. Any failure forgets that state, so the
    /// next sync dumps again. Returns the ops sent and the report.
    pub fn sync(
        &mut self,
        desired: &KernelObjects,
        reconcile: bool,
    ) -> Result<(Vec<Op>, ApplyReport), NetlinkError> {
        let observed = match self.applied.take() {
            Some(applied) if !reconcile => applied,
            _ => self.observe()?,
        };
        let ops = mwan_core::plan::diff(desired, &observed);
        let report = self.apply(&ops)?;
        if report.failed.is_empty() {
            self.applied = Some(desired.clone());
        }
        Ok((ops, report))
    }

    /// Remove every route and rule of ours (stop, or cleanup after a crash).
    pub fn teardown(&mut self) -> Result<ApplyReport, NetlinkError> {
        self.applied = None;
        let observed = self.observe()?;
        self.apply(&mwan_core::plan::teardown(&observed))
    }
}

/// Run `f` on a thread that joined the network namespace `/run/netns/<name>`
/// (as `ip netns exec` does): netlink sockets and /proc/sys/net opened there
/// belong to that namespace. For tests and benchmarks; mwand itself runs in
/// the namespace it manages.
pub fn in_netns<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> Result<T, NetlinkError> {
    use std::os::fd::AsRawFd;
    let path = format!("/run/netns/{name}");
    let file = std::fs::File::open(&path).map_err(|e| NetlinkError::Io {
        context: format!("open network namespace {path}"),
        source: e,
    })?;
    std::thread::scope(|s| {
        s.spawn(move || {
            // SAFETY: setns on a valid fd only changes this thread's namespace.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                return Err(NetlinkError::Io {
                    context: format!("setns into {path}"),
                    source: std::io::Error::last_os_error(),
                });
            }
            Ok(f())
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}
