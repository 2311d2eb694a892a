//! Adapter to the data plane (mwan_core::plan + mwan_netlink). INTERIM:
//! until those land it applies nothing and reads WAN facts from sysfs and
//! getifaddrs; it is replaced by plan -> diff -> apply through netlink.

use crate::engine::Engine;
use crate::wan::{Facts, Wan};
use mwan_core::config::Config;
use mwan_core::Millis;
use mwan_proto::control::RuleStatus;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::RawFd;

pub struct LinkEvent {
    pub device: String,
    pub carrier: Option<bool>,
}

pub struct Dataplane {
    enabled: bool,
    last_error: Option<String>,
}

fn addresses(device: &str) -> Vec<(IpAddr, u8)> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: cur walks the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated C string.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
        if name.to_bytes() != device.as_bytes() {
            continue;
        }
        // SAFETY: family tells which sockaddr variant this is.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        if family == libc::AF_INET {
            // SAFETY: AF_INET addresses are sockaddr_in.
            let (a, m) = unsafe {
                (
                    *(ifa.ifa_addr as *const libc::sockaddr_in),
                    *(ifa.ifa_netmask as *const libc::sockaddr_in),
                )
            };
            let addr = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            out.push((
                IpAddr::V4(addr),
                u32::from_be(m.sin_addr.s_addr).count_ones() as u8,
            ));
        }
    }
    // SAFETY: head came from getifaddrs.
    unsafe { libc::freeifaddrs(head) };
    out
}

fn gateway_v4(device: &str) -> Option<IpAddr> {
    let text = std::fs::read_to_string("/proc/net/route").ok()?;
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 3 && f[0] == device && f[1] == "00000000")
            .then(|| u32::from_str_radix(f[2], 16).ok())
            .flatten()
            .filter(|g| *g != 0)
            .map(|g| IpAddr::V4(Ipv4Addr::from(u32::from_be(g))))
    })
}

impl Dataplane {
    pub fn new(enabled: bool, _config: &Config) -> Result<Self, String> {
        Ok(Self {
            enabled,
            last_error: None,
        })
    }

    pub fn event_fd(&self) -> Option<RawFd> {
        None
    }

    pub fn read_events(&mut self) -> Vec<LinkEvent> {
        Vec::new()
    }

    pub fn facts(&self, _name: &str, device: Option<&str>) -> Facts {
        let Some(dev) = device else {
            return Facts::default();
        };
        let sys = |f: &str| std::fs::read_to_string(format!("/sys/class/net/{dev}/{f}")).ok();
        let addresses = addresses(dev);
        Facts {
            ifindex: sys("ifindex").and_then(|s| s.trim().parse().ok()),
            carrier: sys("carrier").map(|s| s.trim() == "1"),
            source: addresses.first().map(|a| a.0),
            addresses,
            gateway: gateway_v4(dev),
        }
    }

    pub fn tracker_mark(&self, _config: &Config, _name: &str) -> Option<u32> {
        None
    }

    pub fn on_wan_usable(&mut self, _config: &Config, _name: &str, _now: Millis) {}

    pub fn needs_reconcile(&mut self, _now: Millis) -> bool {
        false
    }

    pub fn apply(
        &mut self,
        _config: &Config,
        _engine: &Engine,
        _wans: &BTreeMap<String, Wan>,
        _now: Millis,
    ) {
        if self.enabled {
            self.last_error = Some("data plane not built into this mwand yet".into());
        }
    }

    pub fn reconfigure(&mut self, _config: &Config) {}

    pub fn rules(&self, config: &Config) -> Vec<RuleStatus> {
        config
            .rules
            .iter()
            .map(|r| RuleStatus {
                name: r.name.clone(),
                policy: format!("{:?}", r.use_policy),
                summary: String::new(),
            })
            .collect()
    }

    pub fn connected(&self) -> Vec<String> {
        Vec::new()
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.clone()
    }

    pub fn stop(&mut self) {}
}
