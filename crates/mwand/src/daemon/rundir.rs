//! The run dir holds the control and tracker sockets. mwand makes it
//! itself, owned by its uid and closed to others (0700; 0711 with
//! `--allow-uid`, so allowed uids can reach the control socket by name),
//! or refuses one another uid owns or others may write: whoever controls
//! it could keep mwand from starting or put their own tracker socket there.
//! Removed while mwand runs, it is made again with both sockets
//! (housekeeping checks), so restarted trackers and mwanctl find them.
//! Every directory above it must let the tracker user pass (x), or the
//! unprivileged trackers never reach their socket and each WAN goes
//! offline at its silence limit: mwand refuses to start, naming the
//! directory (a `mktemp -d` parent is 0700).

use super::{bind_socket, Daemon, DaemonError, CONTROL, TRACK};
use crate::supervisor::TrackerUser;
use crate::Options;
use mio::net::UnixListener;
use mio::Interest;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// Makes `dir` (0700, or 0711 when `others_connect`), or checks that an
/// existing one is a directory of ours that only we may write.
pub fn prepare(dir: &Path, others_connect: bool) -> io::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(meta) => check(&meta),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mode = if others_connect { 0o711 } else { 0o700 };
            std::fs::DirBuilder::new().mode(mode).create(dir)?;
            // The umask may have taken bits we want (o+x).
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        }
        Err(e) => Err(e),
    }
}

fn check(meta: &std::fs::Metadata) -> io::Result<()> {
    // SAFETY: geteuid has no failure mode and touches no memory.
    let me = unsafe { libc::geteuid() };
    let refuse = |why: String| {
        Err(io::Error::other(format!(
            "{why}: remove it or choose another --run-dir"
        )))
    };
    if !meta.is_dir() {
        return refuse("not a directory".into());
    }
    if meta.uid() != me {
        return refuse(format!(
            "owned by uid {}, not by mwand's uid {me}",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return refuse(format!(
            "others may write it (mode {:o})",
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

/// Whether `uid`:`gid` (no supplementary groups: the trackers drop them)
/// may pass through a directory of `mode` owned by `owner`:`group`.
fn traversable(mode: u32, owner: u32, group: u32, uid: u32, gid: u32) -> bool {
    let bit = if uid == owner {
        0o100
    } else if gid == group {
        0o010
    } else {
        0o001
    };
    mode & bit != 0
}

/// Checks that the tracker user can pass through every directory above
/// `dir` (which exists); the error names the first that it cannot.
fn reachable_by(dir: &Path, user: TrackerUser) -> io::Result<()> {
    // A relative --run-dir ends in "": the working directory is not checked.
    for above in dir
        .ancestors()
        .skip(1)
        .filter(|p| !p.as_os_str().is_empty())
    {
        let meta = std::fs::metadata(above)?;
        if !traversable(meta.mode(), meta.uid(), meta.gid(), user.uid, user.gid) {
            return Err(io::Error::other(format!(
                "{} (mode {:o}) does not let the tracker user pass: its trackers could never \
                 reach track.sock",
                above.display(),
                meta.mode() & 0o7777
            )));
        }
    }
    Ok(())
}

/// Prepares the run dir and binds the control and tracker sockets in it.
/// With a `tracker` user (trackers run unprivileged) the dir is open to
/// its group (0710, or 0711 with `--allow-uid`) and so is the tracker
/// socket (0660); the control socket stays root's alone.
pub(super) fn bind_listeners(
    opts: &Options,
    tracker: Option<TrackerUser>,
) -> Result<(UnixListener, UnixListener), DaemonError> {
    let others_connect = !opts.allow_uids.is_empty();
    prepare(&opts.run_dir, others_connect)
        .map_err(|e| DaemonError::RunDir(opts.run_dir.clone(), e))?;
    if let Some(user) = tracker {
        reachable_by(&opts.run_dir, user)
            .map_err(|e| DaemonError::RunDir(opts.run_dir.clone(), e))?;
    }
    let control_path = opts.run_dir.join("control.sock");
    let control = bind_socket(&control_path)?;
    if others_connect {
        // Non-root uids must be able to connect at all; who may steer
        // is then decided per connection by SO_PEERCRED (accept).
        std::fs::set_permissions(&control_path, std::fs::Permissions::from_mode(0o666))
            .map_err(|e| DaemonError::RunDir(control_path.clone(), e))?;
    }
    let track_path = opts.run_dir.join("track.sock");
    let track = bind_socket(&track_path)?;
    if let Some(gid) = tracker.map(|u| u.gid) {
        let mode = if others_connect { 0o711 } else { 0o710 };
        open_to_group(&opts.run_dir, gid, mode)
            .map_err(|e| DaemonError::RunDir(opts.run_dir.clone(), e))?;
        open_to_group(&track_path, gid, 0o660)
            .map_err(|e| DaemonError::RunDir(track_path.clone(), e))?;
    }
    Ok((control, track))
}

fn open_to_group(path: &Path, gid: u32, mode: u32) -> io::Result<()> {
    std::os::unix::fs::chown(path, None, Some(gid))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

impl Daemon {
    /// Housekeeping: if either socket is gone (run dir removed), makes the
    /// run dir and both sockets again.
    pub(super) fn restore_sockets_if_gone(&mut self) {
        let control_path = self.opts.run_dir.join("control.sock");
        let present = |p: &Path| std::fs::symlink_metadata(p).is_ok();
        if present(&control_path) && present(&self.track_path) {
            return;
        }
        log::warn!(
            "{}: a socket is gone; making the run dir and sockets again",
            self.opts.run_dir.display()
        );
        // Ours: the sockets still there would answer bind_socket's check.
        for path in [&control_path, &self.track_path] {
            if let Err(e) = std::fs::remove_file(path) {
                log::debug!("remove {}: {e}", path.display());
            }
        }
        let (mut control, mut track) = match bind_listeners(&self.opts, self.supervisor.user()) {
            Ok(l) => l,
            Err(e) => {
                self.peer_warn(format_args!("cannot make the sockets again: {e}"));
                return;
            }
        };
        let registry = self.poll.registry();
        for old in [&mut self.control_listener, &mut self.track_listener] {
            if let Err(e) = registry.deregister(old) {
                log::debug!("deregister listener: {e}");
            }
        }
        for (new, token) in [(&mut control, CONTROL), (&mut track, TRACK)] {
            if let Err(e) = registry.register(new, token, Interest::READABLE) {
                log::error!("cannot listen on the new socket: {e}");
            }
        }
        self.control_listener = control;
        self.track_listener = track;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_dir_others_may_write_or_own_is_refused() {
        let base = std::env::temp_dir().join(format!("mwand-rundir-{}", std::process::id()));
        let dir = base.join("run");
        prepare(&dir, false).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        prepare(&dir, false).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = prepare(&dir, false).unwrap_err().to_string();
        assert!(err.contains("others may write it (mode 777)"), "{err}");
        std::fs::remove_dir(&dir).unwrap();
        std::fs::write(&dir, "").unwrap();
        let err = prepare(&dir, false).unwrap_err().to_string();
        assert!(err.contains("not a directory"), "{err}");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_directory_is_passed_by_the_owner_group_or_other_bit_that_applies() {
        // (mode, owner, group, uid, gid, passes)
        let table = [
            (0o700, 0, 0, 65534, 65534, false),
            (0o711, 0, 0, 65534, 65534, true),
            (0o710, 0, 65534, 65534, 65534, true),
            (0o701, 0, 65534, 65534, 65534, false),
            (0o071, 65534, 0, 65534, 0, false),
            (0o100, 65534, 0, 65534, 0, true),
            (0o755, 1000, 1000, 65534, 65534, true),
        ];
        for (mode, owner, group, uid, gid, passes) in table {
            assert_eq!(
                traversable(mode, owner, group, uid, gid),
                passes,
                "{mode:o} {owner}:{group} for {uid}:{gid}"
            );
        }
    }

    #[test]
    fn a_closed_directory_above_the_run_dir_is_named() {
        let base = std::env::temp_dir().join(format!("mwand-reach-{}", std::process::id()));
        let dir = base.join("closed/run");
        std::fs::create_dir_all(&dir).unwrap();
        let closed = base.join("closed");
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
        let other = TrackerUser {
            uid: 4_000_000,
            gid: 4_000_000,
        };
        let err = reachable_by(&dir, other).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{} (mode 700", closed.display())),
            "{err}"
        );
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o711)).unwrap();
        // Directories above the base (/tmp and /) let others pass.
        reachable_by(&dir, other).unwrap();
        std::fs::remove_dir_all(&base).unwrap();
    }
}
