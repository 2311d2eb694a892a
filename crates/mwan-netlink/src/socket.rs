//! One thin netlink socket: request/ACK with sequence numbers checked,
//! multipart dumps read until NLMSG_DONE, pipelined batches, extended ACK
//! and strict checking on. Messages are built with [`MsgBuilder`] and read
//! with [`attrs`]; neli provides the socket itself (bind, options, I/O).
//!
//! We encode messages by hand rather than through neli's typed structs: the
//! bytes must match iproute2's for the golden tests, neli's route attribute
//! enum lacks several attributes on musl (OpenWrt's libc), and a byte writer
//! is smaller than the generic code the typed builders monomorphise into.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use neli::consts::socket::{Msg, NlFamily};
use neli::socket::NlSocket;
use neli::utils::Groups;

use crate::error::{KernelError, NetlinkError};

pub const NLMSG_HDRLEN: usize = 16;
pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_MULTI: u16 = 0x2;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_REPLACE: u16 = 0x100;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
/// In an error message: the original request was capped (only its header echoed).
const NLM_F_CAPPED: u16 = 0x100;
/// In an error message: extended ACK TLVs follow.
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;

const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;

/// Builds one netlink message: header, fixed family header, attributes.
#[derive(Debug, Clone)]
pub struct MsgBuilder {
    buf: Vec<u8>,
}

impl MsgBuilder {
    pub fn new(msg_type: u16, flags: u16) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&msg_type.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&[0u8; 8]); // seq, pid: set when sent
        MsgBuilder { buf }
    }

    /// Append raw bytes (the family header), padded to 4.
    pub fn bytes(&mut self, data: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    pub fn attr(&mut self, attr_type: u16, payload: &[u8]) -> &mut Self {
        let len = 4 + payload.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&attr_type.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.pad();
        self
    }

    pub fn attr_u8(&mut self, attr_type: u16, v: u8) -> &mut Self {
        self.attr(attr_type, &[v])
    }

    pub fn attr_u32(&mut self, attr_type: u16, v: u32) -> &mut Self {
        self.attr(attr_type, &v.to_ne_bytes())
    }

    pub fn attr_str(&mut self, attr_type: u16, s: &str) -> &mut Self {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.attr(attr_type, &v)
    }

    /// Start a nested attribute (or an rtnexthop-like block); returns its
    /// offset for [`MsgBuilder::end_nested`].
    pub fn begin_nested(&mut self, attr_type: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&attr_type.to_ne_bytes());
        at
    }

    /// Close a nested attribute opened at `at`: write its length.
    pub fn end_nested(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// Current length (to patch structures with a length prefix).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.len() == NLMSG_HDRLEN
    }

    /// Overwrite bytes at an offset (for length fields of inner structs).
    pub fn patch(&mut self, at: usize, data: &[u8]) {
        self.buf[at..at + data.len()].copy_from_slice(data);
    }

    fn pad(&mut self) {
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
    }

    /// The bytes sent for a request: NLM_F_REQUEST|NLM_F_ACK added, pid 0.
    pub fn request_bytes(&self, seq: u32) -> Vec<u8> {
        let mut m = self.clone();
        let flags = u16::from_ne_bytes([m.buf[6], m.buf[7]]) | NLM_F_REQUEST | NLM_F_ACK;
        m.patch(6, &flags.to_ne_bytes());
        m.finish(seq, 0)
    }

    /// The finished message with `seq` and `pid` (0 lets the kernel route it).
    pub fn finish(&self, seq: u32, pid: u32) -> Vec<u8> {
        let mut out = self.buf.clone();
        let len = out.len() as u32;
        out[0..4].copy_from_slice(&len.to_ne_bytes());
        out[8..12].copy_from_slice(&seq.to_ne_bytes());
        out[12..16].copy_from_slice(&pid.to_ne_bytes());
        out
    }
}

/// One received netlink message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMsg {
    pub msg_type: u16,
    pub flags: u16,
    pub seq: u32,
    /// Port id the message is addressed to (ours for replies, 0 for events).
    pub pid: u32,
    /// Everything after the netlink header.
    pub payload: Vec<u8>,
}

/// Split a datagram into messages.
pub fn split_messages(mut data: &[u8]) -> Result<Vec<RawMsg>, NetlinkError> {
    let mut out = Vec::new();
    while data.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes(data[0..4].try_into().expect("4 bytes")) as usize;
        if len < NLMSG_HDRLEN || len > data.len() {
            return Err(NetlinkError::Malformed(format!(
                "netlink message length {len} with {} bytes left",
                data.len()
            )));
        }
        out.push(RawMsg {
            msg_type: u16::from_ne_bytes([data[4], data[5]]),
            flags: u16::from_ne_bytes([data[6], data[7]]),
            seq: u32::from_ne_bytes(data[8..12].try_into().expect("4 bytes")),
            pid: u32::from_ne_bytes(data[12..16].try_into().expect("4 bytes")),
            payload: data[NLMSG_HDRLEN..len].to_vec(),
        });
        let aligned = (len + 3) & !3;
        data = &data[aligned.min(data.len())..];
    }
    Ok(out)
}

/// Attributes of a message body after a fixed header of `skip` bytes:
/// (type without flag bits, payload).
pub fn attrs(body: &[u8], skip: usize) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut data = body.get(skip..).unwrap_or(&[]);
    while data.len() >= 4 {
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let ty = u16::from_ne_bytes([data[2], data[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > data.len() {
            break;
        }
        out.push((ty, &data[4..len]));
        let aligned = (len + 3) & !3;
        data = &data[aligned.min(data.len())..];
    }
    out
}

pub fn attr_u32(payload: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(payload.get(..4)?.try_into().ok()?))
}

pub fn attr_str(payload: &[u8]) -> String {
    let end = payload
        .iter()
        .position(|b| *b == 0)
        .unwrap_or(payload.len());
    String::from_utf8_lossy(&payload[..end]).into_owned()
}

/// Mark an attribute type as nested (what the kernel expects for some).
pub const fn nested(attr_type: u16) -> u16 {
    attr_type | NLA_F_NESTED
}

/// A request to send in a batch, with the description used in errors.
#[derive(Debug, Clone)]
pub struct Request {
    pub msg: MsgBuilder,
    /// "replace route -4 0.0.0.0/0 table 1003 ..." for error messages.
    pub what: String,
}

/// Errnos that mean "already in the wanted state" for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tolerate {
    Nothing,
    /// Deleting something already gone.
    Missing,
    /// Adding something already there (rules have no REPLACE).
    Existing,
}

/// A netlink socket of one protocol family.
pub struct Socket {
    sock: NlSocket,
    pid: u32,
    seq: u32,
    buf: Vec<u8>,
}

/// Receive buffer: large enough for any single datagram the kernel sends
/// (dumps fill up to 32 KiB per datagram).
const RECV_BUF: usize = 64 * 1024;
/// Send at most this many bytes per sendmsg in a batch, so the ACKs of one
/// chunk fit the socket's receive buffer.
const BATCH_BYTES: usize = 16 * 1024;

impl Socket {
    /// rtnetlink, for requests and dumps.
    pub fn route() -> Result<Self, NetlinkError> {
        Self::open(NlFamily::Route, &[])
    }

    /// A socket of `family`, subscribed to `groups` (group numbers, e.g.
    /// RTNLGRP_LINK), with extended ACK and (rtnetlink) strict checking on.
    pub fn open(family: NlFamily, groups: &[u32]) -> Result<Self, NetlinkError> {
        let io_err = |what: &str| {
            let what = what.to_string();
            move |e: io::Error| NetlinkError::Io {
                context: what.clone(),
                source: e,
            }
        };
        let sock = NlSocket::connect(family, None, Groups::empty())
            .map_err(io_err("open netlink socket"))?;
        sock.enable_ext_ack(true)
            .map_err(io_err("enable NETLINK_EXT_ACK"))?;
        if family == NlFamily::Route {
            sock.enable_strict_checking(true)
                .map_err(io_err("enable NETLINK_GET_STRICT_CHK"))?;
        }
        if !groups.is_empty() {
            sock.add_mcast_membership(Groups::new_groups(groups))
                .map_err(io_err("join netlink multicast groups"))?;
            // Event sockets must not lose events quietly; a bigger buffer makes
            // ENOBUFS (then a full resync) rare.
            sock.set_recv_buffer_size(1 << 20)
                .map_err(io_err("set SO_RCVBUF"))?;
        }
        if groups.is_empty() {
            // A request socket must never block mwand's loop for good, even
            // if an answer got lost.
            set_recv_timeout(&sock, REPLY_TIMEOUT).map_err(io_err("set SO_RCVTIMEO"))?;
        }
        let pid = sock
            .pid()
            .map_err(io_err("getsockname on netlink socket"))?;
        Ok(Socket {
            sock,
            pid,
            seq: 1,
            buf: vec![0; RECV_BUF],
        })
    }

    /// Our port id: the kernel puts it in the notifications of changes we
    /// requested.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn set_nonblocking(&self) -> Result<(), NetlinkError> {
        self.sock.nonblock().map_err(|e| NetlinkError::Io {
            context: "set netlink socket non-blocking".into(),
            source: e,
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    fn send_bytes(&self, data: &[u8], what: &str) -> Result<(), NetlinkError> {
        let sent = self
            .sock
            .send(data, Msg::empty())
            .map_err(|e| NetlinkError::Io {
                context: format!("send {what}"),
                source: e,
            })?;
        if sent != data.len() {
            return Err(NetlinkError::Malformed(format!(
                "short netlink send for {what}: {sent} of {}",
                data.len()
            )));
        }
        Ok(())
    }

    /// Receive one datagram (blocking unless set non-blocking).
    pub fn recv(&mut self) -> Result<Vec<RawMsg>, NetlinkError> {
        let (n, _) = self
            .sock
            .recv(&mut self.buf[..], Msg::empty())
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ENOBUFS) {
                    NetlinkError::Overrun
                } else {
                    NetlinkError::Io {
                        context: "receive from netlink socket".into(),
                        source: e,
                    }
                }
            })?;
        split_messages(&self.buf[..n])
    }

    /// Send one request with NLM_F_ACK and wait for its ACK.
    pub fn request(
        &mut self,
        msg: &MsgBuilder,
        what: &str,
        tolerate: Tolerate,
    ) -> Result<(), NetlinkError> {
        let req = Request {
            msg: msg.clone(),
            what: what.to_string(),
        };
        match self.batch(&[(req, tolerate)])?.pop() {
            Some(Err(e)) => Err(NetlinkError::Kernel(e)),
            _ => Ok(()),
        }
    }

    /// Send many requests pipelined (several per sendmsg) and collect one
    /// result per request, in order. The kernel processes each message on
    /// its own, so one failure does not stop the others.
    pub fn batch(
        &mut self,
        reqs: &[(Request, Tolerate)],
    ) -> Result<Vec<Result<(), KernelError>>, NetlinkError> {
        let mut results: Vec<Option<Result<(), KernelError>>> = vec![None; reqs.len()];
        let mut start = 0;
        while start < reqs.len() {
            let mut chunk = Vec::new();
            let mut seqs = Vec::new();
            let mut end = start;
            while end < reqs.len() && (chunk.is_empty() || chunk.len() < BATCH_BYTES) {
                let seq = self.next_seq();
                chunk.extend_from_slice(&reqs[end].0.msg.request_bytes(seq));
                seqs.push(seq);
                end += 1;
            }
            self.send_bytes(&chunk, &reqs[start].0.what)?;
            let mut pending = seqs.len();
            while pending > 0 {
                for msg in self.recv()? {
                    if msg.pid != self.pid {
                        continue;
                    }
                    let Some(i) = seqs.iter().position(|s| *s == msg.seq) else {
                        // A reply to an earlier, abandoned request: not ours to judge.
                        continue;
                    };
                    if msg.msg_type != NLMSG_ERROR {
                        continue;
                    }
                    let slot = &mut results[start + i];
                    if slot.is_some() {
                        continue;
                    }
                    let (req, tolerate) = &reqs[start + i];
                    *slot = Some(match parse_error(&msg) {
                        None => Ok(()),
                        Some((errno, _)) if tolerated(errno, *tolerate) => Ok(()),
                        Some((errno, ext)) => Err(KernelError {
                            errno,
                            what: req.what.clone(),
                            ext_ack: ext,
                        }),
                    });
                    pending -= 1;
                }
            }
            start = end;
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every request answered"))
            .collect())
    }

    /// Send `reqs` as ONE nfnetlink transaction: NFNL_MSG_BATCH_BEGIN
    /// (res_id = `subsys`), the requests, NFNL_MSG_BATCH_END, all in one
    /// sendmsg (the send buffer is raised to fit). The kernel applies all of
    /// it or nothing. It reports every refused request, and the last request
    /// asks for an ACK: after the batch it delivers those answers together,
    /// so the last one's answer ends the wait. ACKs for every request of a
    /// big batch would overflow the receive buffer. The result is the first
    /// refusal, if any. (Added by the nft helper for nf_tables; see `nft.rs`.)
    pub fn transaction(&mut self, subsys: u16, reqs: &[Request]) -> Result<(), NetlinkError> {
        const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
        const NFNL_MSG_BATCH_END: u16 = 0x11;
        let marker = |ty: u16| {
            let mut m = MsgBuilder::new(ty, NLM_F_REQUEST);
            // nfgenmsg: family AF_UNSPEC, version 0, res_id (big endian).
            m.bytes(&[0, 0, (subsys >> 8) as u8, subsys as u8]);
            m
        };
        let begin_seq = self.next_seq();
        let mut data = marker(NFNL_MSG_BATCH_BEGIN).finish(begin_seq, 0);
        let mut seqs = Vec::with_capacity(reqs.len());
        for (i, r) in reqs.iter().enumerate() {
            let seq = self.next_seq();
            let mut bytes = r.msg.request_bytes(seq);
            if i + 1 < reqs.len() {
                let flags = u16::from_ne_bytes([bytes[6], bytes[7]]) & !NLM_F_ACK;
                bytes[6..8].copy_from_slice(&flags.to_ne_bytes());
            }
            data.extend_from_slice(&bytes);
            seqs.push(seq);
        }
        let end_seq = self.next_seq();
        data.extend_from_slice(&marker(NFNL_MSG_BATCH_END).finish(end_seq, 0));
        let what = reqs
            .first()
            .map(|r| r.what.as_str())
            .unwrap_or("empty batch");
        if data.len() > BATCH_BYTES {
            self.grow_send_buffer(data.len())?;
        }
        self.send_bytes(&data, what)?;
        let last_seq = seqs.last().copied();
        let mut first_error: Option<KernelError> = None;
        let mut done = last_seq.is_none();
        while !done {
            for msg in self.recv()? {
                if msg.pid != self.pid || msg.msg_type != NLMSG_ERROR {
                    continue;
                }
                let error = parse_error(&msg);
                if msg.seq == begin_seq || msg.seq == end_seq {
                    // The batch itself was refused (no memory, bad framing).
                    let (errno, ext_ack) = error.unwrap_or((libc::EPROTO, None));
                    return Err(NetlinkError::Kernel(KernelError {
                        errno,
                        what: format!("nfnetlink batch starting with {what}"),
                        ext_ack,
                    }));
                }
                let Some(i) = seqs.iter().position(|s| *s == msg.seq) else {
                    continue;
                };
                done |= Some(msg.seq) == last_seq;
                if let (Some((errno, ext_ack)), None) = (error, &first_error) {
                    first_error = Some(KernelError {
                        errno,
                        what: reqs[i].what.clone(),
                        ext_ack,
                    });
                }
            }
        }
        match first_error {
            Some(e) => Err(NetlinkError::Kernel(e)),
            None => Ok(()),
        }
    }

    /// Make room for one datagram of `len` bytes: SO_SNDBUFFORCE (mwand has
    /// CAP_NET_ADMIN), else SO_SNDBUF (capped by net.core.wmem_max).
    fn grow_send_buffer(&self, len: usize) -> Result<(), NetlinkError> {
        // The kernel doubles the value and needs some room for the skb.
        let size = (len + 64 * 1024).min(i32::MAX as usize / 2) as libc::c_int;
        let fd = self.sock.as_raw_fd();
        let set = |opt: libc::c_int| {
            // SAFETY: setsockopt with a valid fd and a c_int option value.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    opt,
                    (&size as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            }
        };
        if set(libc::SO_SNDBUFFORCE) == 0 || set(libc::SO_SNDBUF) == 0 {
            Ok(())
        } else {
            Err(NetlinkError::Io {
                context: format!("raise the netlink send buffer to {len} bytes"),
                source: io::Error::last_os_error(),
            })
        }
    }

    /// Dump: send `msg` with NLM_F_DUMP and collect the replies until DONE.
    pub fn dump(&mut self, msg: &MsgBuilder, what: &str) -> Result<Vec<RawMsg>, NetlinkError> {
        let seq = self.next_seq();
        let mut m = msg.clone();
        let flags = u16::from_ne_bytes([m.buf[6], m.buf[7]]) | NLM_F_REQUEST | NLM_F_DUMP;
        m.patch(6, &flags.to_ne_bytes());
        self.send_bytes(&m.finish(seq, 0), what)?;
        let mut out = Vec::new();
        loop {
            for msg in self.recv()? {
                if msg.seq != seq || msg.pid != self.pid {
                    continue;
                }
                match msg.msg_type {
                    NLMSG_DONE => {
                        // DONE carries an int error (e.g. EINTR: dump interrupted).
                        let err = msg
                            .payload
                            .get(..4)
                            .map(|b| i32::from_ne_bytes(b.try_into().expect("4")));
                        if let Some(e) = err.filter(|e| *e < 0) {
                            return Err(NetlinkError::Kernel(KernelError {
                                errno: -e,
                                what: what.into(),
                                ext_ack: None,
                            }));
                        }
                        return Ok(out);
                    }
                    NLMSG_ERROR => match parse_error(&msg) {
                        Some((errno, ext)) => {
                            return Err(NetlinkError::Kernel(KernelError {
                                errno,
                                what: what.into(),
                                ext_ack: ext,
                            }))
                        }
                        None => return Ok(out),
                    },
                    NLMSG_NOOP => {}
                    NLMSG_OVERRUN => return Err(NetlinkError::Overrun),
                    _ => out.push(msg),
                }
            }
        }
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

/// Longest wait for the kernel's answer to a request or dump chunk.
const REPLY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

fn set_recv_timeout(sock: &NlSocket, timeout: std::time::Duration) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: valid fd, pointer to a live timeval of the size given.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn tolerated(errno: i32, tolerate: Tolerate) -> bool {
    match tolerate {
        Tolerate::Nothing => false,
        // ESRCH: IPv4 route delete of a missing route; ENOENT: rules, IPv6.
        Tolerate::Missing => errno == libc::ENOENT || errno == libc::ESRCH,
        Tolerate::Existing => errno == libc::EEXIST,
    }
}

/// An NLMSG_ERROR: None for an ACK (error 0), else (errno, extended ACK text).
pub fn parse_error(msg: &RawMsg) -> Option<(i32, Option<String>)> {
    let code = i32::from_ne_bytes(msg.payload.get(..4)?.try_into().ok()?);
    if code == 0 {
        return None;
    }
    let mut ext = None;
    if msg.flags & NLM_F_ACK_TLVS != 0 {
        // nlmsgerr = error + the original header (+ its payload unless capped).
        let orig_len = if msg.flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            msg.payload
                .get(4..8)
                .and_then(|b| b.try_into().ok())
                .map(|b| u32::from_ne_bytes(b) as usize)
                .unwrap_or(NLMSG_HDRLEN)
        };
        // Saturating: the length is the sender's word (a 32-bit router's
        // usize would wrap on 0xffffffff).
        let tlv_start = orig_len.saturating_add(4 + 3) & !3;
        ext = attrs(&msg.payload, tlv_start)
            .into_iter()
            .find(|(t, _)| *t == NLMSGERR_ATTR_MSG)
            .map(|(_, p)| attr_str(p));
    }
    // Saturating: i32::MIN has no negation (found by fuzz/netlink).
    Some((code.saturating_neg(), ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_pads_and_nests() {
        let mut m = MsgBuilder::new(32, NLM_F_CREATE);
        m.bytes(&[2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
        let at = m.begin_nested(nested(9));
        m.attr_u8(1, 7);
        m.end_nested(at);
        m.attr_str(3, "eth0");
        let out = m.finish(5, 0);
        assert_eq!(out.len() % 4, 0);
        assert_eq!(
            u32::from_ne_bytes(out[0..4].try_into().unwrap()) as usize,
            out.len()
        );
        let msgs = split_messages(&out).unwrap();
        assert_eq!(msgs[0].seq, 5);
        let a = attrs(&msgs[0].payload, 12);
        assert_eq!(a[0].0, 9);
        assert_eq!(attrs(a[0].1, 0), vec![(1, &[7u8][..])]);
        assert_eq!(attr_str(a[1].1), "eth0");
    }

    #[test]
    fn error_with_extended_ack_is_read() {
        // error -22, capped original header, then NLMSGERR_ATTR_MSG "bad".
        let mut payload = (-22i32).to_ne_bytes().to_vec();
        payload.extend_from_slice(&[0u8; 16]);
        payload.extend_from_slice(&8u16.to_ne_bytes());
        payload.extend_from_slice(&1u16.to_ne_bytes());
        payload.extend_from_slice(b"bad\0");
        let msg = RawMsg {
            msg_type: NLMSG_ERROR,
            flags: NLM_F_CAPPED | NLM_F_ACK_TLVS,
            seq: 1,
            pid: 0,
            payload,
        };
        assert_eq!(parse_error(&msg), Some((22, Some("bad".into()))));
        let ack = RawMsg {
            msg_type: NLMSG_ERROR,
            flags: 0,
            seq: 1,
            pid: 0,
            payload: vec![0; 20],
        };
        assert_eq!(parse_error(&ack), None);
    }

    /// fuzz/netlink: an error code of i32::MIN overflowed its negation, and
    /// an original-message length near u32::MAX overflowed on 32 bits.
    #[test]
    fn error_with_extreme_code_or_length_is_read_not_a_panic() {
        let mut payload = i32::MIN.to_ne_bytes().to_vec();
        payload.extend_from_slice(&u32::MAX.to_ne_bytes());
        payload.extend_from_slice(&[0u8; 12]);
        let msg = RawMsg {
            msg_type: NLMSG_ERROR,
            flags: NLM_F_ACK_TLVS,
            seq: 1,
            pid: 0,
            payload,
        };
        assert_eq!(parse_error(&msg), Some((i32::MAX, None)));
    }

    #[test]
    fn truncated_datagram_is_an_error_not_a_panic() {
        let mut m = MsgBuilder::new(16, 0).finish(1, 0);
        m[0] = 200;
        assert!(matches!(
            split_messages(&m),
            Err(NetlinkError::Malformed(_))
        ));
    }
}
