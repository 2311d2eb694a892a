//! A non-blocking, length-framed unix stream connection (control clients and
//! trackers alike): read until WouldBlock into a FrameReader, queue replies
//! and flush them as the socket accepts them.

use mio::net::UnixStream;
use mio::{Interest, Registry, Token};
use mwan_proto::frame::{self, FrameError, FrameReader};
use serde::{de::DeserializeOwned, Serialize};
use std::io::{self, Read, Write};

/// A peer that never reads its replies is cut off past this many queued bytes.
const MAX_OUTPUT: usize = 4 << 20;

pub struct Conn {
    pub stream: UnixStream,
    pub token: Token,
    reader: FrameReader,
    out: Vec<u8>,
    /// Peer closed its side (or we gave up on it): drop once `out` is flushed.
    pub closing: bool,
    writable_registered: bool,
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
        }
    }

    /// Reads everything the socket has, until WouldBlock.
    pub fn fill(&mut self) -> ReadOutcome {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return ReadOutcome::Gone,
                Ok(n) => self.reader.extend(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadOutcome::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("connection read error: {e}");
                    return ReadOutcome::Gone;
                }
            }
        }
    }

    pub fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        self.reader.next()
    }

    pub fn queue<T: Serialize>(&mut self, msg: &T) -> Result<(), FrameError> {
        if self.out.len() > MAX_OUTPUT {
            self.closing = true;
            return Err(FrameError::TooLarge(self.out.len()));
        }
        frame::encode_into(msg, &mut self.out)
    }

    /// Writes what the socket accepts; asks for WRITABLE while some remains.
    /// Returns false when the peer is gone.
    pub fn flush(&mut self, registry: &Registry) -> bool {
        while !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(0) => return false,
                Ok(n) => {
                    self.out.drain(..n);
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
    Ok(cred.uid)
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
