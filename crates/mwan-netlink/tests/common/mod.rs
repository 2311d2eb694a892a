//! Throwaway network namespaces for the tests (real kernel, no mocks).
#![allow(dead_code)]

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Whether we can create network namespaces. Under CI=true a missing
/// capability fails loudly; elsewhere the test prints why and skips.
pub fn require_netns() -> bool {
    // One definition of "can we make namespaces, and what if not" for the
    // whole project: it panics under CI=true and prints skips uncaptured.
    mwan_testbed::require_netns()
}

/// A network namespace with two veth WAN-side devices, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!(
            "mnl{tag}{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        run(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.ip("link set lo up");
        ns
    }

    /// `ip -n <ns> <args>`; panics with ip's message on failure.
    pub fn ip(&self, args: &str) -> String {
        let mut argv = vec!["ip", "-n", &self.name];
        argv.extend(args.split_whitespace());
        run(&argv)
    }

    /// Run a command inside the namespace.
    pub fn exec(&self, argv: &[&str]) -> std::process::Output {
        let mut full = vec!["netns", "exec", &self.name];
        full.extend_from_slice(argv);
        Command::new("ip")
            .args(&full)
            .output()
            .expect("run ip netns exec")
    }

    /// Two veth pairs d0/p0 (192.0.2.2/30, 2001:db8:1::2/64) and d1/p1
    /// (198.51.100.2/30, 2001:db8:2::2/64), all up.
    pub fn with_two_links(self) -> Netns {
        for i in 0..2 {
            self.ip(&format!("link add d{i} type veth peer name p{i}"));
            self.ip(&format!("link set d{i} up"));
            self.ip(&format!("link set p{i} up"));
        }
        self.ip("addr add 192.0.2.2/30 dev d0");
        self.ip("addr add 198.51.100.2/30 dev d1");
        self.ip("-6 addr add 2001:db8:1::2/64 dev d0 nodad");
        self.ip("-6 addr add 2001:db8:2::2/64 dev d1 nodad");
        self
    }

    pub fn ifindex(&self, dev: &str) -> u32 {
        let out = self.ip(&format!("-j link show dev {dev}"));
        let at = out.find("\"ifindex\":").expect("ifindex in ip -j output") + 10;
        out[at..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect::<String>()
            .parse()
            .expect("number")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let status = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("warning: could not delete network namespace {}", self.name);
        }
    }
}

pub fn run(argv: &[&str]) -> String {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{argv:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
