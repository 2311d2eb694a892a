//! The sysctls the data plane needs while mwand runs, restored on stop.
//!
//! sysctls under /proc/sys/net belong to the network namespace of the
//! thread that opens them, like netlink sockets.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

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
    /// Where the old values are kept while we run (see [`Saved::persistent`]).
    state_file: Option<PathBuf>,
}

impl Saved {
    /// Like `Saved::default()`, but the old values also live in
    /// `state_file` (one `PATH<TAB>OLD` line each) until [`Saved::restore`].
    /// If the file is there at start, a previous run died before restoring:
    /// its old values are taken over, so a restart after a crash does not
    /// mistake our own settings for the admin's and still restores the
    /// originals on stop.
    pub fn persistent(state_file: &Path) -> Result<Self, NetlinkError> {
        let mut entries = Vec::new();
        match fs::read_to_string(state_file) {
            Ok(text) => {
                for line in text.lines().filter(|l| !l.is_empty()) {
                    let Some((path, old)) = line.split_once('\t') else {
                        return Err(NetlinkError::Malformed(format!(
                            "{}: line {line:?}: expected PATH<TAB>VALUE",
                            state_file.display()
                        )));
                    };
                    entries.push((path.to_string(), old.to_string()));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(NetlinkError::Sysctl {
                    path: state_file.display().to_string(),
                    source: e,
                })
            }
        }
        Ok(Saved {
            entries,
            state_file: Some(state_file.to_path_buf()),
        })
    }

    /// Start from old values a previous run recorded (e.g. read back from
    /// the comment of its nft table after a crash): [`Saved::set`] keeps
    /// them instead of recording our own settings as the originals.
    pub fn with_originals(entries: Vec<(String, String)>) -> Self {
        Saved {
            entries,
            state_file: None,
        }
    }

    /// (path, value before we set it), in the order they were set.
    pub fn originals(&self) -> &[(String, String)] {
        &self.entries
    }

    fn persist(&self) -> Result<(), NetlinkError> {
        let Some(file) = &self.state_file else {
            return Ok(());
        };
        let text: String = self
            .entries
            .iter()
            .map(|(p, v)| format!("{p}\t{v}\n"))
            .collect();
        fs::write(file, text).map_err(|e| NetlinkError::Sysctl {
            path: file.display().to_string(),
            source: e,
        })
    }

    /// Set `path` to `value`, remembering the old value the first time.
    pub fn set(&mut self, path: &str, value: &str) -> Result<(), NetlinkError> {
        let old = read(path)?;
        if !self.entries.iter().any(|(p, _)| p == path) {
            self.entries.push((path.to_string(), old.clone()));
            // Saved before we change anything: a crash right after still
            // leaves the original on record.
            self.persist()?;
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
    /// (and in the state file) for a later attempt.
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
            if let Some(file) = &self.state_file {
                match fs::remove_file(file) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        return Err(NetlinkError::Sysctl {
                            path: file.display().to_string(),
                            source: e,
                        })
                    }
                    _ => {}
                }
            }
            return Ok(());
        }
        kept.reverse();
        self.entries = kept;
        self.persist()?;
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

    /// Plain files stand in for /proc/sys entries.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mwan-sysctl-{}-{name}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_restart_after_a_crash_still_restores_the_originals() {
        let dir = scratch("crash");
        let knob = dir.join("hash_policy");
        let knob = knob.to_str().unwrap();
        let state = dir.join("sysctl.saved");
        fs::write(knob, "0\n").unwrap();

        let mut first = Saved::persistent(&state).unwrap();
        first.set(knob, "1").unwrap();
        assert_eq!(read(knob).unwrap(), "1");
        drop(first); // crash: no restore

        let mut second = Saved::persistent(&state).unwrap();
        second.set(knob, "1").unwrap();
        second.restore().unwrap();
        assert_eq!(read(knob).unwrap(), "0", "the admin's value, not ours");
        assert!(!state.exists(), "state file left after a clean stop");

        // Without a state file a clean start records the current value.
        let mut third = Saved::persistent(&state).unwrap();
        assert!(third.is_empty());
        third.set(knob, "1").unwrap();
        third.restore().unwrap();
        assert_eq!(read(knob).unwrap(), "0");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_garbled_state_file_is_named() {
        let dir = scratch("garbled");
        let state = dir.join("sysctl.saved");
        fs::write(&state, "no tab here\n").unwrap();
        let err = Saved::persistent(&state).unwrap_err().to_string();
        assert!(
            err.contains("sysctl.saved") && err.contains("PATH<TAB>VALUE"),
            "{err}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
