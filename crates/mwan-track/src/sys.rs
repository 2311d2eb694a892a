//! Thin libc glue: clock, randomness, datagram I/O with addresses, device
//! facts, capabilities and signals. Nothing here allocates on the heap.

use std::io::{self, Read};
use std::mem::{size_of, zeroed, MaybeUninit};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// CLOCK_MONOTONIC in microseconds (the clock of every sample).
pub fn monotonic_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out pointer; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

pub fn random_bytes(buf: &mut [u8]) {
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: writes at most the remaining length into `buf`.
        let n =
            unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), buf.len() - filled, 0) };
        if n > 0 {
            filled += n as usize;
        } else if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            // getrandom cannot fail after boot on 3.17+; fall back to the clock.
            let t = monotonic_us().to_le_bytes();
            for (i, b) in buf[filled..].iter_mut().enumerate() {
                *b = t[i % 8] ^ (i as u8).wrapping_mul(151);
            }
            return;
        }
    }
}

fn sockaddr_to_ip(ss: &libc::sockaddr_storage) -> Option<IpAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: family says this is a sockaddr_in.
            let sin = unsafe { &*(ss as *const _ as *const libc::sockaddr_in) };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                sin.sin_addr.s_addr,
            ))))
        }
        libc::AF_INET6 => {
            // SAFETY: family says this is a sockaddr_in6.
            let sin6 = unsafe { &*(ss as *const _ as *const libc::sockaddr_in6) };
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

/// CLOCK_REALTIME in microseconds: only to pair with kernel receive
/// timestamps (SO_TIMESTAMPNS), which use that clock.
pub fn realtime_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// Asks the kernel to stamp every received packet (SO_TIMESTAMPNS).
pub fn enable_rx_timestamps(fd: RawFd) -> io::Result<()> {
    set_int_opt(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)
}

/// Asks for ICMP errors about our datagrams in the error queue
/// (IP_RECVERR / IPV6_RECVERR), signalled by EPOLLERR.
pub fn enable_recverr(fd: RawFd, v6: bool) -> io::Result<()> {
    if v6 {
        set_int_opt(fd, libc::SOL_IPV6, libc::IPV6_RECVERR, 1)
    } else {
        set_int_opt(fd, libc::SOL_IP, libc::IP_RECVERR, 1)
    }
}

/// A datagram read with recvmmsg(2): its length, the peer's IP address (if
/// IP) and the kernel's receive time (CLOCK_REALTIME us) if stamped.
#[derive(Debug, Clone, Copy, Default)]
pub struct Received {
    pub len: usize,
    pub from: Option<IpAddr>,
    pub rx_realtime_us: Option<u64>,
}

/// SO_TIMESTAMPNS_OLD / _NEW: 32-bit targets with a 64-bit time_t get the
/// new one; both carry a timespec, told apart by length.
const SCM_TIMESTAMPNS_OLD: libc::c_int = 35;
const SCM_TIMESTAMPNS_NEW: libc::c_int = 64;

/// Datagrams read per recvmmsg(2) call.
pub const RECV_BATCH: usize = 4;

/// Reads up to [`RECV_BATCH`] datagrams in one recvmmsg(2), datagram `i`
/// into `buf[i * slot..][..slot]`. Fewer than `RECV_BATCH` means the queue
/// is empty now, so an edge-triggered loop needs no extra call to see
/// `EAGAIN` (saves a syscall per reply).
pub fn recv_batch(
    fd: RawFd,
    buf: &mut [u8],
    slot: usize,
    out: &mut [Received; RECV_BATCH],
) -> io::Result<usize> {
    // SAFETY: all of these are plain old data, filled in below.
    let mut names: [libc::sockaddr_storage; RECV_BATCH] = unsafe { zeroed() };
    let mut controls = [[0u64; 8]; RECV_BATCH];
    let mut iovs: [libc::iovec; RECV_BATCH] = unsafe { zeroed() };
    let mut msgs: [libc::mmsghdr; RECV_BATCH] = unsafe { zeroed() };
    let slots = (buf.len() / slot).min(RECV_BATCH);
    for i in 0..slots {
        iovs[i] = libc::iovec {
            iov_base: buf[i * slot..].as_mut_ptr().cast(),
            iov_len: slot,
        };
        let m = &mut msgs[i].msg_hdr;
        m.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
        m.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        m.msg_iov = &mut iovs[i];
        m.msg_iovlen = 1;
        m.msg_control = controls[i].as_mut_ptr().cast();
        m.msg_controllen = size_of::<[u64; 8]>() as _;
    }
    // SAFETY: every header describes live buffers of the stated sizes.
    let n = cvt(unsafe {
        libc::recvmmsg(
            fd,
            msgs.as_mut_ptr(),
            slots as _,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    })? as usize;
    for i in 0..n {
        out[i] = Received {
            len: msgs[i].msg_len as usize,
            from: sockaddr_to_ip(&names[i]),
            rx_realtime_us: rx_timestamp(&msgs[i].msg_hdr),
        };
    }
    Ok(n)
}

/// The SO_TIMESTAMPNS stamp in a received message's control data.
fn rx_timestamp(msg: &libc::msghdr) -> Option<u64> {
    let mut stamp = None;
    // SAFETY: walking the control buffer the kernel just filled, with the libc macros.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            let h = &*c;
            if h.cmsg_level == libc::SOL_SOCKET
                && matches!(h.cmsg_type, SCM_TIMESTAMPNS_OLD | SCM_TIMESTAMPNS_NEW)
            {
                let data = libc::CMSG_DATA(c);
                let payload = h.cmsg_len as usize - (data as usize - c as usize);
                let (sec, nsec) = if payload >= 16 {
                    let d = data as *const i64;
                    (d.read_unaligned(), d.add(1).read_unaligned())
                } else {
                    let d = data as *const i32;
                    (
                        i64::from(d.read_unaligned()),
                        i64::from(d.add(1).read_unaligned()),
                    )
                };
                stamp = Some(sec as u64 * 1_000_000 + nsec as u64 / 1000);
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    stamp
}

/// sendto(2) to an IP address (port 0 for ICMP).
pub fn send_to(fd: RawFd, buf: &[u8], to: IpAddr) -> io::Result<usize> {
    let sa: socket2::SockAddr = SocketAddr::new(to, 0).into();
    // SAFETY: the SockAddr owns a valid address of the given length.
    cvt_size(unsafe {
        libc::sendto(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            sa.as_ptr().cast(),
            sa.len(),
        )
    })
}

/// A link-layer address for a packet socket: `protocol` (an ethertype,
/// host order) on device `ifindex`, to `hw_addr` when sending.
fn sockaddr_ll(protocol: u16, ifindex: u32, hw_addr: Option<[u8; 6]>) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain old data.
    let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol.to_be();
    sll.sll_ifindex = ifindex as i32;
    if let Some(hw) = hw_addr {
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&hw);
    }
    sll
}

/// A non-blocking `AF_PACKET` datagram socket for ethertype `protocol`
/// (host order): the kernel adds and strips the link-layer header.
pub fn packet_socket(protocol: u16) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call.
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            i32::from(protocol.to_be()),
        )
    })?;
    // SAFETY: fd was just created and is owned here.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Binds a packet socket to device `ifindex`, so it sees that device only.
pub fn bind_packet_socket(fd: RawFd, protocol: u16, ifindex: u32) -> io::Result<()> {
    let sll = sockaddr_ll(protocol, ifindex, None);
    // SAFETY: valid sockaddr_ll of the given size.
    cvt(unsafe {
        libc::bind(
            fd,
            (&sll as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as u32,
        )
    })
    .map(drop)
}

/// sendto(2) of one frame's payload on a packet socket, to `hw_addr` on
/// device `ifindex`.
pub fn send_packet(
    fd: RawFd,
    buf: &[u8],
    protocol: u16,
    ifindex: u32,
    hw_addr: [u8; 6],
) -> io::Result<()> {
    let sll = sockaddr_ll(protocol, ifindex, Some(hw_addr));
    // SAFETY: valid buffer and address for the call.
    cvt_size(unsafe {
        libc::sendto(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
            (&sll as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as u32,
        )
    })
    .map(drop)
}

/// An ICMP error reported through a socket's error queue (IP_RECVERR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuedError {
    pub errno: i32,
    /// Some((type, code)) when the error came from an ICMP message.
    pub icmp: Option<(u8, u8)>,
    /// Bytes of the offending packet (our own probe) copied into the buffer.
    pub len: usize,
}

#[repr(C)]
struct SockExtendedErr {
    ee_errno: u32,
    ee_origin: u8,
    ee_type: u8,
    ee_code: u8,
    ee_pad: u8,
    ee_info: u32,
    ee_data: u32,
}

/// Reads one entry of the error queue; `WouldBlock` when it is empty.
pub fn recv_errqueue(fd: RawFd, buf: &mut [u8]) -> io::Result<QueuedError> {
    let mut control = [0u64; 64];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain old data; pointers set below stay valid during the call.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 64]>() as _;
    // SAFETY: msg describes valid buffers.
    let len =
        cvt_size(unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) })?;
    // SAFETY: walking the control buffer the kernel just filled, with the libc macros.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let h = &*c;
            if (h.cmsg_level == libc::SOL_IP && h.cmsg_type == libc::IP_RECVERR)
                || (h.cmsg_level == libc::SOL_IPV6 && h.cmsg_type == libc::IPV6_RECVERR)
            {
                let ee = (libc::CMSG_DATA(c) as *const SockExtendedErr).read_unaligned();
                let icmp = matches!(ee.ee_origin, 2 | 3).then_some((ee.ee_type, ee.ee_code));
                return Ok(QueuedError {
                    errno: ee.ee_errno as i32,
                    icmp,
                    len,
                });
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(QueuedError {
        errno: 0,
        icmp: None,
        len,
    })
}

fn ifreq_for(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain old data.
    let mut ifr: libc::ifreq = unsafe { zeroed() };
    for (d, s) in ifr
        .ifr_name
        .iter_mut()
        .zip(name.bytes().take(libc::IFNAMSIZ - 1))
    {
        *d = s as libc::c_char;
    }
    ifr
}

/// Device facts through interface ioctls, on one datagram socket kept open
/// (the tracker asks every few seconds; no socket per question).
pub struct DeviceQuery {
    fd: OwnedFd,
}

impl DeviceQuery {
    pub fn new() -> io::Result<DeviceQuery> {
        // SAFETY: plain socket(2) call.
        let fd =
            cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
        // SAFETY: fd was just created and is owned here.
        Ok(DeviceQuery {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    fn ifreq(&self, name: &str, req: libc::Ioctl) -> io::Result<libc::ifreq> {
        let mut ifr = ifreq_for(name);
        // SAFETY: ifr is a valid ifreq for these requests.
        cvt(unsafe { libc::ioctl(self.fd.as_raw_fd(), req, &mut ifr) })?;
        Ok(ifr)
    }

    /// The device's ifindex, or `None` when it does not exist (now).
    pub fn ifindex(&self, name: &str) -> Option<u32> {
        let ifr = self.ifreq(name, libc::SIOCGIFINDEX).ok()?;
        // SAFETY: SIOCGIFINDEX fills the ifindex member.
        Some(unsafe { ifr.ifr_ifru.ifru_ifindex } as u32)
    }

    /// Ethernet address, `None` if the device has none (PPP, tun, wireguard).
    pub fn hw_addr(&self, name: &str) -> Option<[u8; 6]> {
        let ifr = self.ifreq(name, libc::SIOCGIFHWADDR).ok()?;
        // SAFETY: SIOCGIFHWADDR fills the hwaddr member.
        let sa = unsafe { ifr.ifr_ifru.ifru_hwaddr };
        if sa.sa_family != libc::ARPHRD_ETHER {
            return None;
        }
        let mut mac = [0u8; 6];
        for (d, s) in mac.iter_mut().zip(sa.sa_data.iter()) {
            *d = *s as u8;
        }
        Some(mac)
    }

    /// The device's primary IPv4 address.
    pub fn ipv4(&self, name: &str) -> Option<Ipv4Addr> {
        let ifr = self.ifreq(name, libc::SIOCGIFADDR).ok()?;
        // SAFETY: SIOCGIFADDR fills ifru_addr with a sockaddr_in.
        let sin = unsafe {
            *(&ifr.ifr_ifru.ifru_addr as *const libc::sockaddr as *const libc::sockaddr_in)
        };
        Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
    }
}

/// Calls `line` for every line of a small /proc file, reading through a
/// stack buffer (lines longer than 255 bytes are skipped).
fn for_each_proc_line(path: &str, mut line: impl FnMut(&str) -> bool) {
    let Ok(mut f) = std::fs::File::open(path) else {
        return;
    };
    let mut buf = [0u8; 4096];
    let mut keep = 0;
    loop {
        let n = match f.read(&mut buf[keep..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let filled = keep + n;
        let mut start = 0;
        while let Some(pos) = buf[start..filled].iter().position(|&b| b == b'\n') {
            if let Ok(s) = std::str::from_utf8(&buf[start..start + pos]) {
                if line(s) {
                    return;
                }
            }
            start += pos + 1;
        }
        buf.copy_within(start..filled, 0);
        keep = filled - start;
        if keep > 255 {
            keep = 0;
        }
    }
}

/// The device's first usable global IPv6 address (not tentative, deprecated
/// or failed DAD), from /proc/net/if_inet6.
pub fn device_ipv6(name: &str) -> Option<Ipv6Addr> {
    let mut found = None;
    for_each_proc_line("/proc/net/if_inet6", |l| {
        let mut f = l.split_whitespace();
        let (Some(hex), Some(_idx), Some(_plen), Some(scope), Some(flags), Some(dev)) =
            (f.next(), f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            return false;
        };
        let flags = u32::from_str_radix(flags, 16).unwrap_or(0xff);
        if dev != name || scope != "00" || flags & (0x08 | 0x20 | 0x40) != 0 || hex.len() != 32 {
            return false;
        }
        found = u128::from_str_radix(hex, 16).ok().map(Ipv6Addr::from);
        found.is_some()
    });
    found
}

/// Unicast packets the device has received: its sysfs `rx_packets` minus
/// `multicast` (multicast and, with most drivers, broadcast noise such as
/// router advertisements and ARP requests says nothing about the uplink).
/// Both files stay open and are re-read with pread: two syscalls and no
/// allocation per reading. After the device is re-created the old files
/// fail to read (ENODEV) until [`InboundCounter::open`] is called again.
pub struct InboundCounter {
    files: Option<[std::fs::File; 2]>,
    /// `tx_packets`: what left, for the traffic watch (crate::burst).
    tx: Option<std::fs::File>,
}

impl InboundCounter {
    /// Opens `dev`'s counters; without them (no such device, no sysfs)
    /// every reading is `None` and losses carry no inbound count.
    pub fn open(dev: &str) -> InboundCounter {
        let file = |name: &str| {
            std::fs::File::open(format!("/sys/class/net/{dev}/statistics/{name}")).ok()
        };
        InboundCounter {
            files: file("rx_packets")
                .zip(file("multicast"))
                .map(|(a, b)| [a, b]),
            tx: file("tx_packets"),
        }
    }

    /// Packets the device has sent, if the counter can be read.
    pub fn sent(&self) -> Option<u64> {
        read_counter(self.tx.as_ref()?)
    }

    /// The count now, if the counters can be read.
    pub fn read(&self) -> Option<u64> {
        let [rx, multicast] = self.files.as_ref()?;
        Some(read_counter(rx)?.saturating_sub(read_counter(multicast)?))
    }
}

/// A sysfs counter file's decimal value.
fn read_counter(f: &std::fs::File) -> Option<u64> {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 24];
    let n = f.read_at(&mut buf, 0).ok()?;
    std::str::from_utf8(&buf[..n]).ok()?.trim_end().parse().ok()
}

/// Packets counted between two readings of an [`InboundCounter`] (`None`
/// if either is missing). A counter that went back (32-bit wrap, device
/// re-created) is taken as traffic: the safe side, it only delays a verdict.
pub fn inbound_between(before: Option<u64>, after: Option<u64>) -> Option<u32> {
    let (before, after) = (before?, after?);
    Some(u32::try_from(after.wrapping_sub(before)).unwrap_or(u32::MAX))
}

/// The IPv4 default gateway through `dev` in the main table (/proc/net/route).
pub fn default_gateway_v4(dev: &str) -> Option<Ipv4Addr> {
    let mut found = None;
    for_each_proc_line("/proc/net/route", |l| {
        let mut f = l.split_whitespace();
        let (Some(iface), Some(dst), Some(gw)) = (f.next(), f.next(), f.next()) else {
            return false;
        };
        if iface != dev || dst != "00000000" {
            return false;
        }
        found = u32::from_str_radix(gw, 16)
            .ok()
            .filter(|&g| g != 0)
            .map(|g| Ipv4Addr::from(u32::from_be(g)));
        found.is_some()
    });
    found
}

pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_NET_RAW: u32 = 13;

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

/// Keeps only the capabilities in `keep` (bit numbers), which the tracker
/// needs to re-open its sockets, and drops every other one from the
/// effective, permitted, inheritable, ambient and bounding sets. Also sets
/// no_new_privs. With `user` (uid, gid) it also becomes that user, with no
/// supplementary groups, keeping `keep` across the switch (PR_SET_KEEPCAPS).
/// Returns the effective set that remains.
pub fn drop_capabilities(keep: &[u32], user: Option<(u32, u32)>) -> io::Result<u64> {
    let keep_mask: u64 = keep.iter().fold(0, |m, &c| m | 1 << c);
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
        for cap in 0..64u32 {
            if keep_mask & (1 << cap) == 0
                && libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) != 0
            {
                // EINVAL past the last capability; EPERM without CAP_SETPCAP
                // (then there is nothing in the bounding set we could add back anyway).
                if io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
                    break;
                }
            }
        }
    }
    if let Some((uid, gid)) = user {
        // SAFETY: prctl, setgroups and setres[ug]id with plain integers.
        unsafe {
            // After the bounding set (CAP_SETPCAP) and before the effective
            // set loses CAP_SETUID/CAP_SETGID; permitted survives the switch.
            cvt(libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0))?;
            cvt(libc::setgroups(0, std::ptr::null()))?;
            cvt(libc::setresgid(gid, gid, gid))?;
            cvt(libc::setresuid(uid, uid, uid))?;
        }
    }
    let mut hdr = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget with a v3 header and two data structs.
    cvt(unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) as libc::c_int })?;
    for (i, d) in data.iter_mut().enumerate() {
        let k = (keep_mask >> (32 * i)) as u32;
        d.permitted &= k;
        d.effective = d.permitted;
        d.inheritable = 0;
    }
    // SAFETY: capset with a v3 header and two data structs.
    cvt(unsafe { libc::syscall(libc::SYS_capset, &hdr, data.as_ptr()) as libc::c_int })?;
    // SAFETY: prctl with integer arguments.
    cvt(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    Ok(u64::from(data[0].effective) | u64::from(data[1].effective) << 32)
}

/// Blocks SIGTERM/SIGINT/SIGHUP and returns a non-blocking signalfd for them,
/// so the event loop sees signals as readable events.
pub fn termination_signalfd() -> io::Result<OwnedFd> {
    // SAFETY: sigset manipulation on a local set, then sigprocmask/signalfd.
    unsafe {
        let mut set = MaybeUninit::<libc::sigset_t>::zeroed().assume_init();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        cvt(libc::sigprocmask(
            libc::SIG_BLOCK,
            &set,
            std::ptr::null_mut(),
        ))?;
        let fd = cvt(libc::signalfd(
            -1,
            &set,
            libc::SFD_NONBLOCK | libc::SFD_CLOEXEC,
        ))?;
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Drains a signalfd; returns the last signal number read, if any.
pub fn read_signals(fd: RawFd) -> Option<u32> {
    let mut last = None;
    loop {
        // SAFETY: signalfd_siginfo is plain old data, read whole.
        let mut info: libc::signalfd_siginfo = unsafe { zeroed() };
        let n = unsafe {
            libc::read(
                fd,
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                size_of::<libc::signalfd_siginfo>(),
            )
        };
        if n != size_of::<libc::signalfd_siginfo>() as isize {
            return last;
        }
        last = Some(info.ssi_signo);
    }
}

/// `setsockopt(fd, level, name, &int)`.
pub fn set_int_opt(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    set_bytes_opt(fd, level, name, &value.to_ne_bytes())
}

/// `setsockopt(fd, level, name, bytes)`.
pub fn set_bytes_opt(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &[u8],
) -> io::Result<()> {
    // SAFETY: pointer and length of a live slice.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            value.as_ptr().cast(),
            value.len() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// The pending error of a socket (SO_ERROR), 0 when none.
pub fn take_socket_error(fd: RawFd) -> i32 {
    let mut err: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: out pointer to a local int.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r < 0 {
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    } else {
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_counts_are_differences_and_odd_ones_count_as_traffic() {
        assert_eq!(inbound_between(Some(5), Some(9)), Some(4));
        assert_eq!(inbound_between(Some(9), Some(9)), Some(0));
        // A counter that went back (wrap, new device): taken as traffic.
        assert_eq!(inbound_between(Some(9), Some(5)), Some(u32::MAX));
        assert_eq!(inbound_between(None, Some(5)), None);
        assert_eq!(inbound_between(Some(5), None), None);
    }

    #[test]
    fn counters_of_a_real_device_read_and_a_missing_one_do_not() {
        // Every network namespace has lo, and sysfs shows it.
        let lo = InboundCounter::open("lo");
        assert!(lo.read().is_some());
        assert!(lo.sent().is_some());
        assert_eq!(InboundCounter::open("no-such-dev0").read(), None);
        assert_eq!(InboundCounter::open("no-such-dev0").sent(), None);
    }
}
