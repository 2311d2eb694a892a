//! The data plane's errors: what mwand was doing, the cause chained
//! (`source()`), and a class a user and a script can tell apart
//! ([`DataplaneErrorKind`] in status). Each `Display` says only its own
//! part; [`crate::daemon::report`] prints the chain.

use mwan_core::plan::nft::NftPlanError;
use mwan_core::plan::PlanError;
use mwan_netlink::{KernelError, NetlinkError};
use mwan_proto::control::DataplaneErrorKind;
use std::fmt;

pub enum DataplaneError {
    /// A netlink socket or the first read of the kernel at start.
    Open {
        what: &'static str,
        source: NetlinkError,
    },
    /// The core could not build the plan (a bug).
    Plan(PlanError),
    /// The core could not build table `inet mwan` (a bug).
    NftPlan(NftPlanError),
    /// The nf_tables socket cannot be opened at start: routes work, but
    /// connections are not pinned.
    NftUnavailable(NetlinkError),
    /// Putting table `inet mwan` in place failed.
    Nft(NetlinkError),
    /// Reading our routes and rules failed.
    Observe(NetlinkError),
    /// The kernel refused some of a batch; the others were applied.
    Refused {
        failed: usize,
        total: usize,
        first: KernelError,
    },
    /// Sending a batch of route and rule changes failed.
    Apply { ops: usize, source: NetlinkError },
    /// A WAN's sticky sets, pinned connections, or their count.
    Wan {
        wan: String,
        doing: WanStep,
        source: NetlinkError,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WanStep {
    EmptyStickySets,
    FlushPinned,
    CountPinned,
}

/// errnos with which nf_tables says a feature (the subsystem, an
/// expression, a set type) is missing from this kernel.
fn nft_feature_missing(errno: i32) -> bool {
    matches!(
        errno,
        libc::EOPNOTSUPP | libc::EAFNOSUPPORT | libc::EPROTONOSUPPORT | libc::ENOENT
    )
}

/// A netlink failure's class: a refusal when the kernel answered with an
/// error, else the socket or its data failed.
fn netlink_kind(e: &NetlinkError) -> DataplaneErrorKind {
    match e {
        NetlinkError::Kernel(_) | NetlinkError::Partial(_) => DataplaneErrorKind::KernelRefused,
        NetlinkError::Io { .. }
        | NetlinkError::Overrun
        | NetlinkError::Malformed(_)
        | NetlinkError::Sysctl { .. } => DataplaneErrorKind::KernelUnreadable,
    }
}

impl DataplaneError {
    /// A refusal that only says the kernel is not there yet: a gateway
    /// written a moment before its device's address (netifd restarting or
    /// bringing a WAN up reports the address as it adds it), or a device
    /// netifd is recreating. The next pass, at the address event or the
    /// housekeeping reconcile, succeeds: worth no error in the log.
    pub fn is_transient(&self) -> bool {
        let DataplaneError::Refused { first, .. } = self else {
            return false;
        };
        let invalid_gateway = first
            .ext_ack
            .as_deref()
            .is_some_and(|m| m.contains("invalid gateway"));
        match first.errno {
            libc::EINVAL | libc::ENETUNREACH => invalid_gateway,
            libc::ENODEV => true,
            _ => false,
        }
    }

    pub fn kind(&self) -> DataplaneErrorKind {
        match self {
            DataplaneError::Plan(_) | DataplaneError::NftPlan(_) => DataplaneErrorKind::Plan,
            DataplaneError::NftUnavailable(_) => DataplaneErrorKind::NftablesMissing,
            DataplaneError::Nft(NetlinkError::Kernel(k)) if nft_feature_missing(k.errno) => {
                DataplaneErrorKind::NftablesMissing
            }
            DataplaneError::Nft(e) | DataplaneError::Apply { source: e, .. } => netlink_kind(e),
            DataplaneError::Refused { .. } => DataplaneErrorKind::KernelRefused,
            DataplaneError::Open { .. } | DataplaneError::Observe(_) => {
                DataplaneErrorKind::KernelUnreadable
            }
            DataplaneError::Wan { source, .. } => netlink_kind(source),
        }
    }
}

impl fmt::Display for DataplaneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataplaneError::Open { what, .. } => f.write_str(what),
            DataplaneError::Plan(_) => f.write_str("cannot plan"),
            DataplaneError::NftPlan(_) => f.write_str("cannot build nft table inet mwan"),
            DataplaneError::NftUnavailable(_) => {
                f.write_str("nf_tables unavailable, connections are not pinned")
            }
            DataplaneError::Nft(_) => f.write_str("nft table inet mwan"),
            DataplaneError::Observe(_) => f.write_str("reading our routes and rules"),
            DataplaneError::Refused { failed, total, .. } => write!(
                f,
                "{failed} of {total} change(s) refused by the kernel (retried on the next reconcile); first"
            ),
            DataplaneError::Apply { ops, .. } => write!(f, "applying {ops} change(s)"),
            DataplaneError::Wan { wan, doing, .. } => {
                let doing = match doing {
                    WanStep::EmptyStickySets => "emptying its sticky sets",
                    WanStep::FlushPinned => "flushing its pinned connections",
                    WanStep::CountPinned => "counting its pinned connections",
                };
                write!(f, "{wan}: {doing}")
            }
        }
    }
}

mwan_core::debug_as_display!(DataplaneError);

impl std::error::Error for DataplaneError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DataplaneError::Open { source, .. }
            | DataplaneError::Apply { source, .. }
            | DataplaneError::Wan { source, .. }
            | DataplaneError::Nft(source)
            | DataplaneError::NftUnavailable(source)
            | DataplaneError::Observe(source) => Some(source),
            DataplaneError::Plan(e) => Some(e),
            DataplaneError::NftPlan(e) => Some(e),
            DataplaneError::Refused { first, .. } => Some(first),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::report;

    fn refusal(errno: i32) -> KernelError {
        KernelError {
            errno,
            what: "add rule".into(),
            ext_ack: None,
        }
    }

    #[test]
    fn a_gateway_before_its_address_is_transient() {
        let refused = |errno, ext_ack: Option<&str>| DataplaneError::Refused {
            failed: 1,
            total: 3,
            first: KernelError {
                ext_ack: ext_ack.map(str::to_string),
                ..refusal(errno)
            },
        };
        let gateway = Some("Nexthop has invalid gateway");
        assert!(refused(libc::EINVAL, gateway).is_transient());
        assert!(refused(libc::ENETUNREACH, gateway).is_transient());
        assert!(refused(libc::ENODEV, None).is_transient());
        assert!(
            !refused(libc::EINVAL, Some("Invalid prefix for given prefix length")).is_transient()
        );
        assert!(!refused(libc::EINVAL, None).is_transient());
        assert!(!refused(libc::EPERM, None).is_transient());
    }

    #[test]
    fn each_error_keeps_its_class() {
        let io = || NetlinkError::Io {
            context: "recv".into(),
            source: std::io::Error::from_raw_os_error(libc::EBADF),
        };
        let cases = [
            (
                DataplaneError::NftUnavailable(io()),
                DataplaneErrorKind::NftablesMissing,
            ),
            (
                DataplaneError::Nft(NetlinkError::Kernel(refusal(libc::EOPNOTSUPP))),
                DataplaneErrorKind::NftablesMissing,
            ),
            (
                DataplaneError::Nft(NetlinkError::Kernel(refusal(libc::EPERM))),
                DataplaneErrorKind::KernelRefused,
            ),
            (
                DataplaneError::Nft(io()),
                DataplaneErrorKind::KernelUnreadable,
            ),
            (
                DataplaneError::Refused {
                    failed: 1,
                    total: 2,
                    first: refusal(libc::EEXIST),
                },
                DataplaneErrorKind::KernelRefused,
            ),
            (
                DataplaneError::Observe(io()),
                DataplaneErrorKind::KernelUnreadable,
            ),
            (
                DataplaneError::Wan {
                    wan: "wan1".into(),
                    doing: WanStep::FlushPinned,
                    source: NetlinkError::Kernel(refusal(libc::EPERM)),
                },
                DataplaneErrorKind::KernelRefused,
            ),
            (
                DataplaneError::Apply {
                    ops: 3,
                    source: NetlinkError::Overrun,
                },
                DataplaneErrorKind::KernelUnreadable,
            ),
        ];
        for (e, kind) in cases {
            assert_eq!(e.kind(), kind, "{}", report(&e));
        }
    }

    #[test]
    fn the_report_reads_as_the_messages_did_before_the_errors_were_typed() {
        let e = DataplaneError::Refused {
            failed: 1,
            total: 4,
            first: refusal(libc::EEXIST),
        };
        assert_eq!(
            report(&e),
            "1 of 4 change(s) refused by the kernel (retried on the next reconcile); first: \
             add rule: an identical object already exists (errno 17: File exists (os error 17))"
        );
        let e = DataplaneError::Wan {
            wan: "wan2".into(),
            doing: WanStep::CountPinned,
            source: NetlinkError::Io {
                context: "dump conntrack".into(),
                source: std::io::Error::from_raw_os_error(libc::EBADF),
            },
        };
        // NetlinkError prints its io::Error itself: the chain does not
        // repeat it.
        assert_eq!(
            report(&e),
            "wan2: counting its pinned connections: dump conntrack: Bad file descriptor (os error 9)"
        );
    }
}
