//! The impairment hop: runs in an ISP namespace and relays every Ethernet
//! frame (IPv4, IPv6, ARP, NDP, ...) between the customer-facing veth and the
//! veth to the ISP's gateway, through one `Shaper` per direction. One thread,
//! `ppoll` with a nanosecond timeout on a heap of pending frames; control
//! requests arrive as JSON lines on a unix socket.

use crate::shaper::{Impairment, Shaper, Verdict};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::ffi::CString;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// A request on the hop's control socket (one JSON line).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum HopRequest {
    Impair(Impairment),
    /// Drop everything in both directions; the link stays up.
    Cut,
    /// End a cut (impairment settings stay as they are).
    Restore,
    Status,
}

/// Counters of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectionStats {
    pub received: u64,
    pub forwarded: u64,
    /// Ethernet bytes (header + payload, no FCS) of the forwarded frames.
    pub forwarded_bytes: u64,
    pub lost: u64,
    pub cut: u64,
    pub queue_full: u64,
    pub send_errors: u64,
}

/// The ICMP echo (IPv4) of one identifier through the hop: the ground
/// truth of one prober's loss, whatever else crosses the hop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EchoCount {
    pub id: u16,
    /// Echo requests that reached the hop from the customer side.
    pub requests: u64,
    /// ... and that the hop passed on.
    pub requests_forwarded: u64,
    /// Echo replies with this identifier the hop passed to the customer.
    pub replies_forwarded: u64,
}

impl EchoCount {
    /// Round-trip loss in percent: requests whose reply never came through.
    pub fn loss_pct(&self) -> f64 {
        100.0 * (1.0 - self.replies_forwarded as f64 / self.requests.max(1) as f64)
    }
}

/// The ICMPv4 echo type (8 request, 0 reply) and identifier of an Ethernet
/// frame, if it is one.
fn icmp_echo(frame: &[u8]) -> Option<(u8, u16)> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ihl = usize::from(frame.get(14)? & 0x0f) * 4;
    if *frame.get(23)? != 1 {
        return None;
    }
    let icmp = frame.get(14 + ihl..14 + ihl + 6)?;
    matches!(icmp[0], 0 | 8).then(|| (icmp[0], u16::from_be_bytes([icmp[4], icmp[5]])))
}

/// What the hop reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HopStatus {
    pub impairment: Impairment,
    pub cut: bool,
    /// Router -> ISP.
    pub upstream: DirectionStats,
    /// ISP -> router.
    pub downstream: DirectionStats,
    /// Frames waiting in the hop now.
    pub pending: usize,
    /// ICMPv4 echo per identifier, since the hop started.
    #[serde(default)]
    pub echo: Vec<EchoCount>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HopReply {
    Ok(HopStatus),
    Error(String),
}

/// Sends one request to the hop listening on `socket` and returns its status.
pub fn request(socket: &Path, req: &HopRequest) -> io::Result<HopStatus> {
    let mut stream = UnixStream::connect(socket)
        .map_err(|e| io::Error::new(e.kind(), format!("connect {}: {e}", socket.display())))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = serde_json::to_string(req).map_err(io::Error::other)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply)?;
    match serde_json::from_str::<HopReply>(&reply) {
        Ok(HopReply::Ok(status)) => Ok(status),
        Ok(HopReply::Error(e)) => Err(io::Error::new(io::ErrorKind::InvalidInput, e)),
        Err(e) => Err(io::Error::other(format!(
            "bad reply from hop {reply:?}: {e}"
        ))),
    }
}

fn last_error(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// A packet socket bound to one device, receiving every frame it gets and
/// none that this host sends.
struct Port {
    fd: OwnedFd,
}

impl Port {
    fn open(device: &str) -> io::Result<Port> {
        let cname = CString::new(device).map_err(io::Error::other)?;
        // SAFETY: if_nametoindex on a valid C string.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(last_error(&format!("device {device}")));
        }
        // Protocol 0 receives nothing until bound, so no other device's
        // frames slip in between socket() and bind().
        // SAFETY: plain socket(2).
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if raw < 0 {
            return Err(last_error("packet socket"));
        }
        // SAFETY: raw is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let one: libc::c_int = 1;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &one)?;
        // Kernel arrival stamps: a frame's delay counts from when it arrived,
        // not from when this process got round to reading it.
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &one)?;
        let bufsize: libc::c_int = 4 << 20;
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &bufsize)?;
        setsockopt(&fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, &bufsize)?;
        let mreq = libc::packet_mreq {
            mr_ifindex: ifindex as libc::c_int,
            mr_type: libc::PACKET_MR_PROMISC as u16,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)?;
        // SAFETY: zeroed sockaddr_ll is a valid starting value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        addr.sll_ifindex = ifindex as libc::c_int;
        // SAFETY: addr is a valid sockaddr_ll of the given size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &addr as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(last_error(&format!("bind packet socket to {device}")));
        }
        Ok(Port { fd })
    }

    /// Next frame into `buf` with its kernel arrival time (CLOCK_REALTIME
    /// ns, if the kernel gave one); `None` when nothing is waiting.
    fn recv(&self, buf: &mut [u8]) -> io::Result<Option<(usize, Option<u64>)>> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        let mut control = [0u64; 8];
        // SAFETY: zeroed msghdr is valid; we point it at live buffers.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: msg describes valid buffers for the call's duration.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock {
                Ok(None)
            } else {
                Err(e)
            };
        }
        let mut stamp = None;
        // SAFETY: walking the control buffer the kernel filled, with the
        // libc CMSG helpers.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET
                    && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
                {
                    let ts =
                        std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::timespec);
                    stamp = Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        Ok(Some((n as usize, stamp)))
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: frame is valid for frame.len() bytes.
        let n = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: value points at a live T of the given size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            value as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(last_error(&format!("setsockopt {level}/{name}")));
    }
    Ok(())
}

fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A frame waiting for its departure time.
struct Pending {
    due: u64,
    seq: u64,
    /// Index of the port it leaves by.
    out: usize,
    frame: Vec<u8>,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    // Reversed: BinaryHeap is a max-heap, we want the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

const CUSTOMER: usize = 0;
const PROVIDER: usize = 1;
/// Frames read per port per wake-up, so one busy direction cannot starve
/// the other or the timer.
const BURST: usize = 64;
/// Frames the hop holds at most (delay x rate could otherwise grow without
/// bound, e.g. seconds of delay on an uncapped bulk flow); beyond it frames
/// count as `queue_full`.
const MAX_PENDING: usize = 65_536;

struct Hop {
    ports: [Port; 2],
    /// Shaper for frames arriving on port i.
    shapers: [Shaper; 2],
    /// Counters for frames arriving on port i (0 = upstream).
    stats: [DirectionStats; 2],
    echo: std::collections::BTreeMap<u16, EchoCount>,
    impairment: Impairment,
    cut: bool,
    heap: BinaryHeap<Pending>,
    seq: u64,
    start: Instant,
}

impl Hop {
    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn read_port(&mut self, from: usize, buf: &mut [u8]) {
        let out = 1 - from;
        for _ in 0..BURST {
            let (len, stamp) = match self.ports[from].recv(buf) {
                Ok(Some(x)) => x,
                Ok(None) => return,
                Err(e) => {
                    // ENETDOWN while the link is down, reported once.
                    log::debug!("recv on port {from}: {e}");
                    return;
                }
            };
            self.stats[from].received += 1;
            if let Some((8, id)) = icmp_echo(&buf[..len]).filter(|_| from == CUSTOMER) {
                self.echo_count(id).requests += 1;
            }
            if self.cut {
                self.stats[from].cut += 1;
                continue;
            }
            if self.impairment.is_clear() && self.heap.is_empty() {
                self.send(out, from, &buf[..len]);
                continue;
            }
            let now = self.now();
            let arrived = match stamp {
                Some(stamp) => now.saturating_sub(realtime_ns().saturating_sub(stamp)),
                None => now,
            };
            match self.shapers[from].admit(arrived, len) {
                Verdict::Lost => self.stats[from].lost += 1,
                Verdict::QueueFull => self.stats[from].queue_full += 1,
                Verdict::Deliver(_) if self.heap.len() >= MAX_PENDING => {
                    self.stats[from].queue_full += 1
                }
                Verdict::Deliver(due) => {
                    self.seq += 1;
                    self.heap.push(Pending {
                        due,
                        seq: self.seq,
                        out,
                        frame: buf[..len].to_vec(),
                    });
                }
            }
        }
    }

    fn send(&mut self, out: usize, from: usize, frame: &[u8]) {
        match self.ports[out].send(frame) {
            Ok(()) => {
                self.stats[from].forwarded += 1;
                self.stats[from].forwarded_bytes += frame.len() as u64;
                match (icmp_echo(frame), from) {
                    (Some((8, id)), CUSTOMER) => self.echo_count(id).requests_forwarded += 1,
                    (Some((0, id)), PROVIDER) => self.echo_count(id).replies_forwarded += 1,
                    _ => {}
                }
            }
            Err(e) => {
                self.stats[from].send_errors += 1;
                log::debug!("send on port {out}: {e}");
            }
        }
    }

    fn echo_count(&mut self, id: u16) -> &mut EchoCount {
        self.echo.entry(id).or_insert(EchoCount {
            id,
            ..EchoCount::default()
        })
    }

    /// Sends every frame that is due; returns the wait until the next one.
    fn flush_due(&mut self) -> Option<u64> {
        loop {
            let now = self.now();
            match self.heap.peek() {
                Some(p) if p.due <= now => {
                    if let Some(p) = self.heap.pop() {
                        if self.cut {
                            self.stats[1 - p.out].cut += 1;
                        } else {
                            self.send(p.out, 1 - p.out, &p.frame);
                        }
                    }
                }
                Some(p) => return Some(p.due - now),
                None => return None,
            }
        }
    }

    fn handle(&mut self, req: HopRequest) -> HopReply {
        match req {
            HopRequest::Impair(imp) => {
                if let Err(e) = imp.validate() {
                    return HopReply::Error(e);
                }
                self.impairment = imp;
                for s in &mut self.shapers {
                    s.configure(&imp);
                }
            }
            HopRequest::Cut => self.cut = true,
            HopRequest::Restore => self.cut = false,
            HopRequest::Status => {}
        }
        HopReply::Ok(HopStatus {
            impairment: self.impairment,
            cut: self.cut,
            upstream: self.stats[CUSTOMER],
            downstream: self.stats[PROVIDER],
            pending: self.heap.len(),
            echo: self.echo.values().copied().collect(),
        })
    }
}

/// A control connection being read.
struct Client {
    stream: UnixStream,
    buf: Vec<u8>,
}

/// Runs the hop until killed.
pub fn run(customer: &str, provider: &str, socket: &Path, seed: u64) -> io::Result<()> {
    // Timer precision matters more than power here: 1 us slack.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong) };
    // On a loaded machine a normal-priority hop wakes late and adds delay
    // and jitter of its own; a real-time class keeps it on time. The hop
    // sleeps between frames, so it cannot starve the machine.
    let param = libc::sched_param { sched_priority: 10 };
    // SAFETY: sched_setscheduler on this process with a valid param.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
        log::warn!(
            "no real-time priority ({}); timing may suffer under load",
            io::Error::last_os_error()
        );
    }
    let imp = Impairment::default();
    let mut hop = Hop {
        ports: [Port::open(customer)?, Port::open(provider)?],
        shapers: [
            Shaper::new(seed, &imp),
            Shaper::new(seed ^ 0x5555_5555, &imp),
        ],
        stats: Default::default(),
        echo: Default::default(),
        impairment: imp,
        cut: false,
        heap: BinaryHeap::new(),
        seq: 0,
        start: Instant::now(),
    };
    if socket.exists() {
        std::fs::remove_file(socket)?;
    }
    let listener = UnixListener::bind(socket)
        .map_err(|e| io::Error::new(e.kind(), format!("bind {}: {e}", socket.display())))?;
    listener.set_nonblocking(true)?;
    let mut clients: Vec<Client> = Vec::new();
    let mut buf = vec![0u8; 65536];
    log::info!(
        "hop {customer} <-> {provider} ready on {}",
        socket.display()
    );
    loop {
        let wait = hop.flush_due();
        let mut fds: Vec<libc::pollfd> = [
            hop.ports[0].fd.as_raw_fd(),
            hop.ports[1].fd.as_raw_fd(),
            listener.as_raw_fd(),
        ]
        .iter()
        .chain(
            clients
                .iter()
                .map(|c| c.stream.as_raw_fd())
                .collect::<Vec<RawFd>>()
                .iter(),
        )
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
        let ts = wait.map(|ns| libc::timespec {
            tv_sec: (ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (ns % 1_000_000_000) as libc::c_long,
        });
        // SAFETY: fds is a valid array; ts is None or a valid timespec.
        let rc = unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                ts.as_ref()
                    .map_or(std::ptr::null(), |t| t as *const libc::timespec),
                std::ptr::null(),
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for port in [CUSTOMER, PROVIDER] {
            if fds[port].revents != 0 {
                hop.read_port(port, &mut buf);
            }
        }
        if fds[2].revents != 0 {
            loop {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(true)?;
                        clients.push(Client {
                            stream,
                            buf: Vec::new(),
                        });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        log::warn!("accept: {e}");
                        break;
                    }
                }
            }
        }
        let ready: Vec<bool> = fds[3..].iter().map(|f| f.revents != 0).collect();
        let mut keep = Vec::with_capacity(clients.len());
        for (mut client, ready) in clients
            .drain(..)
            .zip(ready.into_iter().chain(std::iter::repeat(false)))
        {
            if !ready || serve_client(&mut hop, &mut client) {
                keep.push(client);
            }
        }
        clients = keep;
    }
}

/// Reads what a control client sent; answers once a full line is in.
/// Returns whether to keep the connection.
fn serve_client(hop: &mut Hop, client: &mut Client) -> bool {
    let mut chunk = [0u8; 1024];
    loop {
        match client.stream.read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => client.buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => return false,
        }
        if client.buf.len() > 64 * 1024 {
            return false;
        }
    }
    let Some(end) = client.buf.iter().position(|&b| b == b'\n') else {
        return true;
    };
    let reply = match serde_json::from_slice::<HopRequest>(&client.buf[..end]) {
        Ok(req) => hop.handle(req),
        Err(e) => HopReply::Error(format!("bad request: {e}")),
    };
    match serde_json::to_string(&reply) {
        Ok(mut text) => {
            text.push('\n');
            // A tiny reply into an empty socket buffer: a short write here
            // only means the client went away.
            if let Err(e) = client.stream.write_all(text.as_bytes()) {
                log::debug!("control reply: {e}");
            }
        }
        Err(e) => log::warn!("encode reply: {e}"),
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 (no options) + ICMP header with `icmp_type` and `id`.
    fn frame(ethertype: [u8; 2], protocol: u8, icmp_type: u8, id: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12..14].copy_from_slice(&ethertype);
        f[14] = 0x45;
        f[23] = protocol;
        f[34] = icmp_type;
        f[38..40].copy_from_slice(&id.to_be_bytes());
        f
    }

    #[test]
    fn echo_frames_are_told_by_type_and_identifier() {
        assert_eq!(icmp_echo(&frame([8, 0], 1, 8, 4242)), Some((8, 4242)));
        assert_eq!(icmp_echo(&frame([8, 0], 1, 0, 7)), Some((0, 7)));
        assert_eq!(icmp_echo(&frame([8, 0], 1, 3, 7)), None, "unreachable");
        assert_eq!(icmp_echo(&frame([8, 0], 17, 8, 7)), None, "UDP");
        assert_eq!(icmp_echo(&frame([0x86, 0xdd], 1, 8, 7)), None, "IPv6");
        assert_eq!(icmp_echo(&frame([8, 0], 1, 8, 7)[..36]), None, "truncated");
        let e = EchoCount {
            id: 1,
            requests: 1000,
            requests_forwarded: 950,
            replies_forwarded: 900,
        };
        assert!((e.loss_pct() - 10.0).abs() < 1e-9);
    }
}
