//! Shared by the dataplane_* tests (and field_bugs).
#![allow(dead_code)] // each test file uses a different part

use mwan_netlink::in_netns;
use mwan_testbed::{Role, Testbed};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(3);

/// Everything the data plane may touch in the router namespace: FIB rules,
/// every routing table (both families), the sysctls mwand sets, the whole
/// nft ruleset. Equal before start and after stop = no trace.
pub fn router_state(tb: &Testbed) -> String {
    let mut s = String::new();
    for args in [
        "ip -4 rule",
        "ip -6 rule",
        "ip -4 route show table all",
        "ip -6 route show table all",
        "sysctl net.ipv4.fib_multipath_hash_policy net.ipv6.fib_multipath_hash_policy net.ipv4.conf.all.src_valid_mark",
        "nft list ruleset",
    ] {
        let argv: Vec<&str> = args.split_whitespace().collect();
        s += &tb.exec_ok(Role::Router, &argv).expect("dump router state");
    }
    s
}

/// Echoes what each client sends, on threads of their own.
pub fn serve_echo(listener: TcpListener) {
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 512];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
}

/// One TCP exchange from the internet namespace: sends `ping\n`, returns
/// the 5 bytes echoed (or the error).
pub fn connect_from_internet(tb: &Testbed, addr: SocketAddr) -> Result<String, String> {
    in_netns(tb.internet_ns(), || {
        let mut s = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s.write_all(b"ping\n").map_err(|e| e.to_string())?;
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    })
    .unwrap()
}
