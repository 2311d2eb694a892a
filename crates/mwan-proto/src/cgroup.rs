//! The cgroups of `mwanctl use WAN -- CMD`: `mwan/<wan>` below the root of
//! the cgroup v2 hierarchy. mwand makes them and puts each one's id in an
//! nft rule (`socket cgroupv2 level 2`) that sends its sockets to the WAN;
//! mwanctl moves itself into one and execs CMD, so CMD and its children
//! (static binaries too) use that WAN and nobody else's traffic changes.
//!
//! The hierarchy is where /proc/self/mountinfo shows its root mounted
//! (OpenWrt: /sys/fs/cgroup; hybrid systems: /sys/fs/cgroup/unified); in a
//! mount namespace without one (`ip netns exec` remounts /sys) it is
//! mounted at [`FALLBACK_MOUNT`]: the same hierarchy, so the same ids.

use std::io;
use std::path::{Path, PathBuf};

/// Where the cgroup2 hierarchy is mounted when no mount of it is found.
pub const FALLBACK_MOUNT: &str = "/var/run/mwan-cgroup2";
/// `socket cgroupv2 level` of `mwan/<wan>`.
pub const USE_LEVEL: u32 = 2;

/// `mwan/<wan>`, below the hierarchy's root.
pub fn use_path(wan: &str) -> String {
    format!("mwan/{wan}")
}

/// The mount point of the cgroup2 hierarchy's root in one mountinfo text.
fn mount_in(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (mount, fs) = line.split_once(" - ")?;
        let fields: Vec<&str> = mount.split(' ').collect();
        if !fs.starts_with("cgroup2 ") || fields.get(3) != Some(&"/") {
            return None;
        }
        fields.get(4).map(PathBuf::from)
    })
}

/// The cgroup2 root: a mount of it, or one made at [`FALLBACK_MOUNT`].
pub fn root() -> io::Result<PathBuf> {
    if let Some(p) = mount_in(&std::fs::read_to_string("/proc/self/mountinfo")?) {
        return Ok(p);
    }
    std::fs::create_dir_all(FALLBACK_MOUNT)?;
    let c = |s: &str| std::ffi::CString::new(s).map_err(io::Error::other);
    let (src, target, fs) = (c("cgroup2")?, c(FALLBACK_MOUNT)?, c("cgroup2")?);
    // SAFETY: NUL-terminated strings that outlive the call; no data.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fs.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PathBuf::from(FALLBACK_MOUNT))
}

/// The cgroup id of directory `path` of a cgroup2 mount (what nft's
/// `socket cgroupv2` compares): its kernfs file handle, 8 bytes.
pub fn id(path: &Path) -> io::Result<u64> {
    #[repr(C)]
    struct Handle {
        bytes: libc::c_uint,
        kind: libc::c_int,
        id: [u8; 8],
    }
    let mut h = Handle {
        bytes: 8,
        kind: 0,
        id: [0; 8],
    };
    let mut mount_id = 0;
    let p =
        std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(io::Error::other)?;
    // SAFETY: `h` has room for the 8 bytes announced in `bytes`.
    let rc = unsafe {
        libc::name_to_handle_at(
            libc::AT_FDCWD,
            p.as_ptr(),
            (&mut h as *mut Handle).cast(),
            &mut mount_id,
            0,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::from_ne_bytes(h.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hierarchys_root_mount_is_found_not_a_sub_mount() {
        let info = "\
25 1 0:22 / / rw - ext4 /dev/sda1 rw
30 25 0:26 /sub /mnt/sub rw - cgroup2 cgroup2 rw
31 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
";
        assert_eq!(
            mount_in(info),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(mount_in("25 1 0:22 / / rw - ext4 /dev/sda1 rw\n"), None);
    }
}
