//! The sysctls the data plane needs while mwand runs, restored on stop.
//!
//! sysctls under /proc/sys/net belong to the network namespace of the
//! thread that opens them, like netlink sockets.

use std::fs;
use std::io;

use crate::error::NetlinkError;

pub const HASH_POLICY_V4: &str = "/proc/sys/net/ipv4/fib_multipath_hash_policy";
pub const HASH_POLICY_V6: &str = "/proc/sys/net/ipv6/fib_multipath_hash_policy";
/// rp_filter's reverse lookup uses the packet mark only with this on, so
/// strict rp_filter keeps accepting replies on a WAN chosen by mark.
pub const SRC_VALID_MARK: &str = "/proc/sys/net/ipv4/conf/all/src_valid_mark";
/// Layer-4 hash: multipath balances flows by 5-tuple, not by address pair.
pub const HASH_L4: &str = "1";

pub fn read(path: &str) -> Result<String, NetlinkError> {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| NetlinkError::Sysctl {
            path: path.to_string(),
            source: e,
        })
}

pub fn write(path: &str, value: &str) -> Result<(), NetlinkError> {
    fs::write(path, value).map_err(|e| NetlinkError::Sysctl {
        path: path.to_string(),
        source: e,
    })
}

/// Values set by us with what they were before.
#[derive(Debug, Default)]
pub struct Saved {
    entries: Vec<(String, String)>,
}

impl Saved {
    /// Set `path` to `value`, remembering the old value the first time.
    pub fn set(&mut self, path: &str, value: &str) -> Result<(), NetlinkError> {
        let old = read(path)?;
        if !self.entries.iter().any(|(p, _)| p == path) {
            self.entries.push((path.to_string(), old.clone()));
        }
        if old != value {
            write(path, value)?;
        }
        Ok(())
    }

    /// Set what the data plane needs: L4 multipath hashing for both families
    /// and src_valid_mark. A missing IPv6 sysctl (IPv6 disabled) is skipped.
    pub fn apply_dataplane_defaults(&mut self) -> Result<(), NetlinkError> {
        self.set(HASH_POLICY_V4, HASH_L4)?;
        match self.set(HASH_POLICY_V6, HASH_L4) {
            Err(NetlinkError::Sysctl { source, .. })
                if source.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
        self.set(SRC_VALID_MARK, "1")
    }

    /// Put every value back (last set first); keeps going past failures and
    /// reports them all.
    pub fn restore(&mut self) -> Result<(), NetlinkError> {
        let mut failures = Vec::new();
        while let Some((path, old)) = self.entries.pop() {
            if let Err(e) = write(&path, &old) {
                failures.push(e.to_string());
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(NetlinkError::Malformed(format!(
                "restoring sysctls: {}",
                failures.join("; ")
            )))
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
