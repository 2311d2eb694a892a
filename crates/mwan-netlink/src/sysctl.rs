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
    /// Start from old values a previous run recorded (e.g. read back from
    /// the comment of its nft table after a crash): [`Saved::set`] keeps
    /// them instead of recording our own settings as the originals.
    pub fn with_originals(entries: Vec<(String, String)>) -> Self {
        Saved { entries }
    }

    /// (path, value before we set it), in the order they were set.
    pub fn originals(&self) -> &[(String, String)] {
        &self.entries
    }

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
    /// reports them all. What could not be written back stays on record
    /// for a later attempt.
    pub fn restore(&mut self) -> Result<(), NetlinkError> {
        let mut failures = Vec::new();
        let mut kept = Vec::new();
        while let Some((path, old)) = self.entries.pop() {
            if let Err(e) = write(&path, &old) {
                failures.push(e.to_string());
                kept.push((path, old));
            }
        }
        if failures.is_empty() {
            return Ok(());
        }
        kept.reverse();
        self.entries = kept;
        Err(NetlinkError::Malformed(format!(
            "restoring sysctls: {}",
            failures.join("; ")
        )))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// Plain files stand in for /proc/sys entries.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mwan-sysctl-{}-{name}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn originals_are_recorded_once_and_restored_last_first() {
        let dir = scratch("restore");
        let knob = dir.join("hash_policy");
        let knob = knob.to_str().unwrap();
        fs::write(knob, "0\n").unwrap();
        let mut saved = Saved::default();
        saved.set(knob, "1").unwrap();
        saved.set(knob, "2").unwrap();
        assert_eq!(read(knob).unwrap(), "2");
        assert_eq!(saved.originals(), [(knob.to_string(), "0".to_string())]);
        saved.restore().unwrap();
        assert_eq!(read(knob).unwrap(), "0", "the admin's value, not ours");
        assert!(saved.is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn originals_from_a_crashed_run_win_over_what_is_found() {
        let dir = scratch("adopt");
        let knob = dir.join("hash_policy");
        let knob = knob.to_str().unwrap();
        fs::write(knob, "1\n").unwrap(); // left set by a crashed mwand
        let mut saved = Saved::with_originals(vec![(knob.to_string(), "0".to_string())]);
        saved.set(knob, "1").unwrap();
        saved.restore().unwrap();
        assert_eq!(read(knob).unwrap(), "0");
        fs::remove_dir_all(&dir).unwrap();
    }
}
