//! Shared by the dataplane_* tests.

use mwan_testbed::{Role, Testbed};

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
