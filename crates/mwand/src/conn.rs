//! A non-blocking, length-framed unix stream connection (control clients and
//! trackers alike): read until WouldBlock into a FrameReader, queue replies
//! and flush them as the socket accepts them.

use crate::clock::now_ms;
use mio::net::UnixStream;
use mio::{Interest, Registry, Token};
use mwan_core::Millis;
use mwan_proto::frame::{self, FrameError, FrameReader};
use serde::{de::DeserializeOwned, Serialize};
use std::io::{self, Read, Write};

/// A peer that never reads its replies is cut off past this many queued bytes.
const MAX_OUTPUT: usize = 4 << 20;
/// Bytes read from one connection per pass: one busy peer cannot hold the
/// loop, and what it sent beyond waits in its socket (it blocks, not us).
const READ_BUDGET: usize = 64 * 1024;
/// Past this much queued output no further request is taken: a peer that
/// does not read its replies stops being served until it does.
const OUTPUT_BACKLOG: usize = 64 * 1024;

pub struct Conn {
    pub stream: UnixStream,
    pub token: Token,
    reader: FrameReader,
    out: Vec<u8>,
    /// Peer closed its side (or we gave up on it): drop once `out` is flushed.
    pub closing: bool,
    writable_registered: bool,
    /// The last pass stopped at its read budget: bytes may be waiting
    /// that no new event will announce (edge-triggered).
    unread: bool,
    /// When a byte last moved either way (idle timeout).
    pub last_active: Millis,
}

/// What a read pass saw.
pub enum ReadOutcome {
    Open,
    /// EOF or a fatal socket error: the peer is gone.
    Gone,
}

impl Conn {
    pub fn new(stream: UnixStream, token: Token) -> Self {
        Self {
            stream,
            token,
            reader: FrameReader::new(),
            out: Vec::new(),
            closing: false,
            writable_registered: false,
            unread: false,
            last_active: now_ms(),
        }
    }

    /// Reads what the socket has, until WouldBlock or [`READ_BUDGET`]
    /// bytes. Nothing is read from a closing connection, or while whole
    /// requests or unsent replies are still waiting.
    pub fn fill(&mut self) -> ReadOutcome {
        if self.closing || self.reader.has_frame() || self.out.len() > OUTPUT_BACKLOG {
            return ReadOutcome::Open;
        }
        let mut buf = [0u8; 16 * 1024];
        let mut budget = READ_BUDGET;
        self.unread = false;
        loop {
            if budget == 0 {
                self.unread = true;
                return ReadOutcome::Open;
            }
            let want = budget.min(buf.len());
            match self.stream.read(&mut buf[..want]) {
                Ok(0) => return ReadOutcome::Gone,
                Ok(n) => {
                    self.reader.extend(&buf[..n]);
                    budget -= n;
                    self.last_active = now_ms();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadOutcome::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("connection read error: {e}");
                    return ReadOutcome::Gone;
                }
            }
        }
    }

    /// The next whole request, None when none is buffered or the peer has
    /// not read enough of its replies to be given more.
    pub fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        if self.closing || self.out.len() > OUTPUT_BACKLOG {
            return Ok(None);
        }
        self.reader.next()
    }

    /// Queues a message. Past [`MAX_OUTPUT`] unsent bytes the peer is cut
    /// off: what was queued is dropped and the connection is closing.
    pub fn queue<T: Serialize>(&mut self, msg: &T) -> Result<(), FrameError> {
        if self.out.len() > MAX_OUTPUT {
            self.closing = true;
            let queued = self.out.len();
            self.out = Vec::new();
            return Err(FrameError::TooLarge(queued));
        }
        frame::encode_into(msg, &mut self.out)
    }

    /// Work is waiting that no socket event will announce: whole requests
    /// buffered, or bytes left behind by the read budget. (A peer behind
    /// on its replies is woken by WRITABLE once they drain.)
    pub fn has_work(&self) -> bool {
        !self.closing
            && self.out.len() <= OUTPUT_BACKLOG
            && (self.unread || self.reader.has_frame())
    }

    /// Writes what the socket accepts; asks for WRITABLE while some remains.
    /// Returns false when the peer is gone.
    pub fn flush(&mut self, registry: &Registry) -> bool {
        while !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(0) => return false,
                Ok(n) => {
                    self.out.drain(..n);
                    self.last_active = now_ms();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("connection write error: {e}");
                    return false;
                }
            }
        }
        let want_writable = !self.out.is_empty();
        if want_writable != self.writable_registered {
            let interest = if want_writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if let Err(e) = registry.reregister(&mut self.stream, self.token, interest) {
                log::warn!("cannot change connection interest: {e}");
                return false;
            }
            self.writable_registered = want_writable;
        }
        true
    }

    pub fn drained(&self) -> bool {
        self.out.is_empty()
    }
}

/// Uid of the process on the other end of a unix socket (SO_PEERCRED).
pub fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    peer_cred(stream).map(|c| c.uid)
}

/// Pid of the process that connected (SO_PEERCRED: the kernel's word, not
/// the peer's). None when that process is outside our pid namespace.
pub fn peer_pid(stream: &UnixStream) -> io::Result<Option<u32>> {
    peer_cred(stream).map(|c| u32::try_from(c.pid).ok().filter(|&p| p > 0))
}

fn peer_cred(stream: &UnixStream) -> io::Result<libc::ucred> {
    use std::os::fd::AsRawFd;
    // SAFETY: ucred is plain data; getsockopt fills at most `len` bytes.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: valid fd, option and buffer of `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred)
}

/// Tells a refused control peer why, then the caller drops the stream. One
/// small frame fits a fresh socket's buffer, so this write neither blocks
/// nor comes up short.
pub fn refuse(stream: &mut UnixStream, message: String) {
    let reply = mwan_proto::control::Response::Error { message };
    match frame::encode(&reply) {
        Ok(bytes) => {
            if let Err(e) = stream.write_all(&bytes) {
                log::debug!("cannot tell a refused control peer why: {e}");
            }
        }
        Err(e) => log::debug!("cannot encode the refusal: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pass_reads_at_most_its_budget_and_remembers_the_rest() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let requests = frame::encode(&42u32).unwrap().repeat(4096);
        let mut sent = 0;
        while sent < 2 * READ_BUDGET {
            match theirs.write(&requests) {
                Ok(n) => sent += n,
                Err(e) => panic!("socket took only {sent} bytes: {e}"),
            }
        }
        let mut c = Conn::new(ours, Token(0));
        assert!(matches!(c.fill(), ReadOutcome::Open));
        assert_eq!(c.reader.pending(), READ_BUDGET);
        assert!(
            c.has_work(),
            "bytes left in the socket must be served next turn"
        );
    }

    #[test]
    fn a_peer_that_reads_no_replies_gets_no_more_and_is_cut_off_past_the_cap() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        theirs.write_all(&frame::encode(&7u32).unwrap()).unwrap();
        let mut c = Conn::new(ours, Token(0));
        c.fill();
        let reply = vec![0u8; OUTPUT_BACKLOG + 1];
        c.queue(&reply).unwrap();
        assert_eq!(c.next::<u32>().unwrap(), None, "served while behind");
        assert!(!c.has_work());
        while c.queue(&reply).is_ok() {}
        assert!(c.closing && c.drained(), "kept {} bytes", c.out.len());
        assert_eq!(c.next::<u32>().unwrap(), None);
    }
}
