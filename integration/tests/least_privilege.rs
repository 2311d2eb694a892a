//! Trackers run without root (issue 13, least privilege): under the
//! embedded supervisor a running tracker has an unprivileged uid and gid,
//! only CAP_NET_RAW and CAP_NET_ADMIN (it is given a fwmark) in its
//! effective, permitted, bounding and ambient sets, and still probes: its
//! WAN comes online.

mod mwand_harness;

use mwand_harness::*;

/// A line of /proc/PID/status, without its label.
fn status_field(pid: u64, field: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("tracker status");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

fn caps(pid: u64, field: &str) -> u64 {
    u64::from_str_radix(&status_field(pid, field), 16).expect("hex capability set")
}

#[test]
fn embedded_trackers_run_unprivileged_with_net_raw_and_net_admin_only() {
    let Some((_tb, m, s)) = two_wans_online() else {
        return;
    };
    const NET_ADMIN_AND_RAW: u64 = 1 << 12 | 1 << 13;
    for wan in ["wan1", "wan2"] {
        let pid = tracker_pid(&s, wan).expect("tracker pid");
        let uids: Vec<u32> = status_field(pid, "Uid")
            .split_whitespace()
            .map(|u| u.parse().unwrap())
            .collect();
        let gids: Vec<u32> = status_field(pid, "Gid")
            .split_whitespace()
            .map(|g| g.parse().unwrap())
            .collect();
        assert_eq!(uids.len(), 4);
        assert!(
            uids.iter().all(|&u| u != 0 && u == uids[0]),
            "{wan}: Uid {uids:?}"
        );
        assert!(
            gids.iter().all(|&g| g != 0 && g == gids[0]),
            "{wan}: Gid {gids:?}"
        );
        assert_eq!(
            status_field(pid, "Groups"),
            "",
            "{wan}: supplementary groups"
        );
        for set in ["CapEff", "CapPrm", "CapBnd"] {
            assert_eq!(caps(pid, set), NET_ADMIN_AND_RAW, "{wan}: {set}");
        }
        // The ambient and inheritable sets carried the two across exec; the
        // tracker clears both once its sockets are open.
        assert_eq!(caps(pid, "CapInh"), 0, "{wan}: CapInh");
        assert_eq!(caps(pid, "CapAmb"), 0, "{wan}: CapAmb");
        assert_eq!(status_field(pid, "NoNewPrivs"), "1", "{wan}");
        eprintln!(
            "{wan}: tracker pid {pid} Uid {uids:?} CapEff {:#x} CapPrm {:#x} CapBnd {:#x} CapAmb {:#x}",
            caps(pid, "CapEff"),
            caps(pid, "CapPrm"),
            caps(pid, "CapBnd"),
            caps(pid, "CapAmb")
        );
    }
    assert!(all_online(&s), "{s:#}");
    // Probing goes on as the unprivileged user: still online later.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let s = m.status();
    assert!(all_online(&s), "{s:#}");
}
