//! Errors of the netlink adapters, with the object they concern.

use std::fmt;
use std::io;

/// The kernel refused one request.
#[derive(Clone, PartialEq, Eq)]
pub struct KernelError {
    /// Positive errno.
    pub errno: i32,
    /// The request, e.g. "replace route -4 0.0.0.0/0 table 1003 metric 0 via 192.0.2.1 ifindex 3".
    pub what: String,
    /// The kernel's extended ACK message, when it gave one.
    pub ext_ack: Option<String>,
}

impl KernelError {
    /// What an errno means for routes and rules, in words a user can act on.
    pub fn meaning(&self) -> &'static str {
        match self.errno {
            libc::ENOENT | libc::ESRCH => "no such object (already gone?)",
            libc::EEXIST => "an identical object already exists",
            libc::ENODEV => "the device does not exist (interface gone?)",
            libc::ENETUNREACH => "the gateway is not on a connected network of that device",
            libc::EINVAL => "the kernel rejected an attribute",
            libc::EPERM | libc::EACCES => "not permitted (mwand needs CAP_NET_ADMIN)",
            libc::ENOBUFS | libc::ENOMEM => "the kernel is out of memory or buffer space",
            libc::EOPNOTSUPP => "this kernel does not support it",
            libc::ERANGE => "a value is out of range",
            libc::EBUSY => "the object is busy",
            _ => "kernel error",
        }
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let os = io::Error::from_raw_os_error(self.errno);
        write!(
            f,
            "{}: {} (errno {}: {os})",
            self.what,
            self.meaning(),
            self.errno
        )?;
        if let Some(ext) = &self.ext_ack {
            write!(f, "; kernel says: {ext}")?;
        }
        Ok(())
    }
}

mwan_core::debug_as_display!(KernelError, NetlinkError);

impl std::error::Error for KernelError {}

pub enum NetlinkError {
    /// A socket call failed.
    Io { context: String, source: io::Error },
    /// The kernel answered a request with an error.
    Kernel(KernelError),
    /// The socket's receive buffer overflowed (ENOBUFS): events were lost,
    /// the caller must re-dump everything.
    Overrun,
    /// A message we could not parse.
    Malformed(String),
    /// Some requests of a batch failed; the others were applied.
    Partial(Vec<KernelError>),
    /// A sysctl could not be read or written.
    Sysctl { path: String, source: io::Error },
}

impl fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetlinkError::Io { context, source } => write!(f, "{context}: {source}"),
            NetlinkError::Kernel(e) => e.fmt(f),
            NetlinkError::Overrun => {
                f.write_str("netlink receive buffer overflowed; events were lost (resync needed)")
            }
            NetlinkError::Malformed(m) => write!(f, "malformed netlink message: {m}"),
            NetlinkError::Partial(errors) => {
                write!(f, "{} netlink request(s) failed", errors.len())?;
                for e in errors.iter().take(5) {
                    write!(f, "; {e}")?;
                }
                if errors.len() > 5 {
                    write!(f, "; and {} more", errors.len() - 5)?;
                }
                Ok(())
            }
            NetlinkError::Sysctl { path, source } => write!(f, "sysctl {path}: {source}"),
        }
    }
}

impl std::error::Error for NetlinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NetlinkError::Io { source, .. } | NetlinkError::Sysctl { source, .. } => Some(source),
            NetlinkError::Kernel(e) => Some(e),
            _ => None,
        }
    }
}
