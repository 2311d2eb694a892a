//! Traffic a LAN host keeps on the router's active WAN, for the
//! confirmation-burst tests and bench-failover (issue 14): a paced one-way
//! UDP upload from a thread inside the LAN namespace, and a fast ping.

use mwan_testbed::{Role, Testbed};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Enters the LAN namespace `ns` on the calling thread only.
fn enter_netns(ns: &str) {
    let f = std::fs::File::open(format!("/run/netns/{ns}")).expect("LAN namespace");
    // SAFETY: setns on a valid namespace fd; affects only this thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        panic!("setns {ns}: {}", std::io::Error::last_os_error());
    }
}

/// UDP datagrams to `to` at `rate_kbit` (IP packets of `packet_bytes`),
/// paced every millisecond, nothing ever coming back: a one-way upload.
pub struct UdpUpload {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl UdpUpload {
    pub fn start(tb: &Testbed, to: SocketAddr, rate_kbit: u64, packet_bytes: usize) -> UdpUpload {
        let ns = tb.lan_ns().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (flag, count) = (stop.clone(), sent.clone());
        let thread = std::thread::spawn(move || {
            enter_netns(&ns);
            let sock = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp socket");
            let payload = vec![0x5au8; packet_bytes.saturating_sub(28)];
            let bytes_per_ms = rate_kbit as f64 / 8.0;
            let start = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                let due = (start.elapsed().as_secs_f64() * 1000.0 * bytes_per_ms
                    / packet_bytes as f64) as u64;
                while count.load(Ordering::Relaxed) < due {
                    // A full socket buffer (ENOBUFS) is the line's limit.
                    sock.send_to(&payload, to).ok();
                    count.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        UdpUpload {
            stop,
            sent,
            thread: Some(thread),
        }
    }

    /// Datagrams sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

impl Drop for UdpUpload {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().ok();
        }
    }
}

/// `ping -i 0.01` from the LAN to `to`: two-way traffic on the active WAN,
/// 100 packets a second each way. Stopped (by its pid) when dropped.
pub struct LanPing {
    child: Child,
}

impl LanPing {
    pub fn start(tb: &Testbed, to: std::net::IpAddr) -> LanPing {
        let child = tb
            .command(Role::Lan, &["ping", "-q", "-i", "0.01", &to.to_string()])
            .expect("ping command")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ping");
        LanPing { child }
    }
}

impl Drop for LanPing {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
