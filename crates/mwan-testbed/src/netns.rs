//! Thin helpers to run `ip`/`nft` and to act inside a named network
//! namespace. The testbed may exec these tools (it is test infrastructure);
//! mwand never does.

use std::fs;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A failed setup or teardown step, with what was attempted.
#[derive(Debug)]
pub struct CommandError {
    pub what: String,
    pub detail: String,
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.detail)
    }
}

impl std::error::Error for CommandError {}

fn io_error(what: &str, e: io::Error) -> CommandError {
    CommandError {
        what: what.to_string(),
        detail: e.to_string(),
    }
}

fn check(what: String, out: io::Result<Output>) -> Result<Output, CommandError> {
    let out = out.map_err(|e| io_error(&what, e))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(CommandError {
            what,
            detail: format!(
                "{} ({})",
                String::from_utf8_lossy(&out.stderr).trim(),
                out.status
            ),
        })
    }
}

/// Runs `program args...`, feeding `input` on stdin; fails on non-zero exit.
pub fn run(program: &str, args: &[&str], input: Option<&str>) -> Result<Output, CommandError> {
    let what = format!("{program} {}", args.join(" "));
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = cmd.spawn().and_then(|mut child| {
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(text.as_bytes())?;
        }
        child.wait_with_output()
    });
    check(what, out)
}

/// Runs a batch of `ip` commands (one per line) inside namespace `ns`.
pub fn ip_batch(ns: &str, lines: &[String]) -> Result<(), CommandError> {
    let mut text = lines.join("\n");
    text.push('\n');
    run("ip", &["-n", ns, "-batch", "-"], Some(&text)).map(|_| ())
}

/// Loads an nft ruleset (as `nft -f` text) inside namespace `ns`.
pub fn nft_load(ns: &str, ruleset: &str) -> Result<(), CommandError> {
    run(
        "ip",
        &["netns", "exec", ns, "nft", "-f", "-"],
        Some(ruleset),
    )
    .map(|_| ())
}

/// Names of all network namespaces `ip netns` knows.
pub fn list_namespaces() -> Vec<String> {
    match fs::read_dir("/run/netns") {
        Ok(dir) => dir
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Pids of processes whose network namespace is `ns`.
/// Waits (at most 5 s) until `child` runs in namespace `ns` or has exited.
pub fn wait_entered(child: &mut std::process::Child, ns: &str) {
    use std::os::unix::fs::MetadataExt;
    let Ok(target) = std::fs::metadata(format!("/run/netns/{ns}")).map(|m| m.ino()) else {
        return;
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        let inside = std::fs::metadata(format!("/proc/{}/ns/net", child.id()))
            .is_ok_and(|m| m.ino() == target);
        if inside || !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

pub fn namespace_pids(ns: &str) -> Vec<i32> {
    match run("ip", &["netns", "pids", ns], None) {
        Ok(out) => String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Runs `f` on a fresh thread that has joined namespace `ns`; the calling
/// thread's namespace is untouched (setns affects only the calling thread).
pub fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, CommandError> {
    let what = format!("enter namespace {ns}");
    let path = Path::new("/run/netns").join(ns);
    let file = fs::File::open(&path).map_err(|e| io_error(&what, e))?;
    let handle = std::thread::spawn(move || -> io::Result<T> {
        // SAFETY: setns on a valid namespace fd; affects only this thread.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        f()
    });
    match handle.join() {
        Ok(result) => result.map_err(|e| io_error(&what, e)),
        Err(_) => Err(CommandError {
            what,
            detail: "worker thread panicked".to_string(),
        }),
    }
}

/// Writes sysctls (`(path under /proc/sys, value)`) inside namespace `ns`.
pub fn sysctls(ns: &str, settings: Vec<(String, String)>) -> Result<(), CommandError> {
    in_netns(ns, move || {
        for (key, value) in &settings {
            fs::write(Path::new("/proc/sys").join(key), value).map_err(|e| {
                io::Error::new(e.kind(), format!("write {value} to /proc/sys/{key}: {e}"))
            })?;
        }
        Ok(())
    })
}

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_STXCSUM: u32 = 0x17;

#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

#[repr(C)]
struct IfreqData {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

/// Turns off TX checksum offload (and with it TSO) on `devices` in `ns`.
///
/// The impairment hop relays frames through packet sockets; a frame whose
/// checksum was left to "hardware" would arrive with a bad checksum.
pub fn disable_tx_offload(ns: &str, devices: Vec<String>) -> Result<(), CommandError> {
    in_netns(ns, move || {
        // SAFETY: plain socket for the ioctl, closed by OwnedFd.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, owned descriptor.
        let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        for dev in &devices {
            let mut value = EthtoolValue {
                cmd: ETHTOOL_STXCSUM,
                data: 0,
            };
            let mut req = IfreqData {
                name: [0; libc::IFNAMSIZ],
                data: &mut value as *mut EthtoolValue as *mut libc::c_void,
                _pad: [0; 16],
            };
            for (dst, src) in req
                .name
                .iter_mut()
                .zip(dev.bytes().take(libc::IFNAMSIZ - 1))
            {
                *dst = src as libc::c_char;
            }
            // SAFETY: req is a valid ifreq with ifr_data pointing at value.
            if unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL as _, &mut req) } != 0 {
                let e = io::Error::last_os_error();
                return Err(io::Error::new(
                    e.kind(),
                    format!("{dev}: tx-checksum off: {e}"),
                ));
            }
        }
        Ok(())
    })
}
