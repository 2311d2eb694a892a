//! The ubus socket in a mio loop: a non-blocking unix stream with a read
//! buffer that yields whole frames and a bounded write buffer, plus
//! [`Session`], which owns the [`Client`] state machine and reconnects with
//! backoff when ubusd goes away.
//!
//! Nothing here blocks: reads and writes stop at WouldBlock, and a peer that
//! stops reading is disconnected once [`MAX_PENDING_WRITE`] bytes pile up.

use crate::client::{Client, Event};
use crate::message::{frame_len, Message, MessageError};
use mio::net::UnixStream;
use mio::{Interest, Registry, Token};
use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Default socket of ubusd on OpenWrt.
pub const DEFAULT_SOCKET: &str = "/var/run/ubus/ubus.sock";
/// Unsent bytes allowed before the peer is considered stuck.
pub const MAX_PENDING_WRITE: usize = 4 << 20;
const READ_CHUNK: usize = 16 * 1024;

#[derive(Debug)]
pub enum ConnError {
    Io(io::Error),
    /// ubusd closed the socket.
    Closed,
    /// The peer sent bytes that are not a ubus frame.
    Protocol(MessageError),
    /// The peer did not read its replies; more than [`MAX_PENDING_WRITE`] bytes are queued.
    WriteBacklog(usize),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Io(e) => write!(f, "ubus socket error: {e}"),
            ConnError::Closed => f.write_str("ubusd closed the connection"),
            ConnError::Protocol(e) => write!(f, "ubus protocol error: {e}"),
            ConnError::WriteBacklog(n) => write!(
                f,
                "ubusd is not reading: {n} bytes queued (limit {MAX_PENDING_WRITE})"
            ),
        }
    }
}

impl std::error::Error for ConnError {}

impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> Self {
        ConnError::Io(e)
    }
}

/// A framed, non-blocking ubus socket.
#[derive(Debug)]
pub struct Connection {
    stream: UnixStream,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    wpos: usize,
}

impl Connection {
    pub fn connect(path: &Path) -> io::Result<Connection> {
        Ok(Connection::from_stream(UnixStream::connect(path)?))
    }

    pub fn from_stream(stream: UnixStream) -> Connection {
        Connection {
            stream,
            rbuf: Vec::new(),
            wbuf: Vec::new(),
            wpos: 0,
        }
    }

    pub fn stream_mut(&mut self) -> &mut UnixStream {
        &mut self.stream
    }

    pub fn wants_write(&self) -> bool {
        self.wpos < self.wbuf.len()
    }

    /// Queues bytes; call [`Connection::flush`] to write what the socket takes.
    pub fn queue(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        if self.wpos > 0 && self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        }
        self.wbuf.extend_from_slice(bytes);
        let backlog = self.wbuf.len() - self.wpos;
        if backlog > MAX_PENDING_WRITE {
            return Err(ConnError::WriteBacklog(backlog));
        }
        Ok(())
    }

    /// Writes until done or WouldBlock.
    pub fn flush(&mut self) -> Result<(), ConnError> {
        while self.wpos < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err(ConnError::Closed),
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if self.wpos == self.wbuf.len() {
            self.wbuf.clear();
            self.wpos = 0;
        }
        Ok(())
    }

    /// Reads until WouldBlock and returns every complete frame received.
    /// Frames are taken out after each chunk, so the buffer never holds
    /// more than one partial frame plus a chunk. EOF after the complete
    /// frames is reported as [`ConnError::Closed`] once they are returned.
    pub fn read_messages(&mut self, out: &mut Vec<Message>) -> Result<(), ConnError> {
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ConnError::Closed),
                Ok(n) => {
                    self.rbuf.extend_from_slice(&chunk[..n]);
                    self.take_frames(out)?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn take_frames(&mut self, out: &mut Vec<Message>) -> Result<(), ConnError> {
        let mut pos = 0;
        while let Some(len) = frame_len(&self.rbuf[pos..]).map_err(ConnError::Protocol)? {
            if self.rbuf.len() - pos < len {
                break;
            }
            out.push(Message::decode(&self.rbuf[pos..pos + len]).map_err(ConnError::Protocol)?);
            pos += len;
        }
        self.rbuf.drain(..pos);
        Ok(())
    }
}

/// Reconnect delays: 0.1 s doubling to 5 s, so a restarted ubusd is found
/// quickly without spinning while it is gone.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
const TICK: Duration = Duration::from_secs(1);

/// A ubus connection that lives in the caller's mio loop.
///
/// Loop integration: register nothing yourself; call [`Session::start`]
/// once, [`Session::ready`] for events on [`Session::token`],
/// [`Session::on_timeout`] when [`Session::next_timeout`] expires, and
/// [`Session::flush`] after issuing requests through [`Session::client`].
#[derive(Debug)]
pub struct Session {
    path: PathBuf,
    token: Token,
    client: Client,
    conn: Option<Connection>,
    writable_registered: bool,
    retry_at: Option<Instant>,
    backoff: Duration,
    next_tick: Option<Instant>,
    /// Why the last connection attempt or connection failed, for logs.
    pub last_error: Option<String>,
}

impl Session {
    pub fn new(path: impl Into<PathBuf>, token: Token, client: Client) -> Session {
        Session {
            path: path.into(),
            token,
            client,
            conn: None,
            writable_registered: false,
            retry_at: None,
            backoff: BACKOFF_MIN,
            next_tick: None,
            last_error: None,
        }
    }

    pub fn token(&self) -> Token {
        self.token
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    pub fn is_connected(&self) -> bool {
        self.conn.is_some() && self.client.is_ready()
    }

    /// First connection attempt; on failure a retry is scheduled.
    pub fn start(&mut self, registry: &Registry, now: Instant) -> Vec<Event> {
        self.try_connect(registry, now)
    }

    fn try_connect(&mut self, registry: &Registry, now: Instant) -> Vec<Event> {
        self.retry_at = None;
        let attempt = Connection::connect(&self.path).and_then(|mut c| {
            registry.register(c.stream_mut(), self.token, Interest::READABLE)?;
            Ok(c)
        });
        match attempt {
            Ok(c) => {
                self.conn = Some(c);
                self.writable_registered = false;
                self.client.connection_started();
                self.next_tick = Some(now + TICK);
                Vec::new()
            }
            Err(e) => {
                self.last_error = Some(format!("connect {}: {e}", self.path.display()));
                self.schedule_retry(now);
                Vec::new()
            }
        }
    }

    fn schedule_retry(&mut self, now: Instant) {
        self.retry_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    fn drop_connection(&mut self, registry: &Registry, why: String, now: Instant) -> Vec<Event> {
        if let Some(mut c) = self.conn.take() {
            if let Err(e) = registry.deregister(c.stream_mut()) {
                log::debug!("ubus: deregister after loss: {e}");
            }
        }
        self.last_error = Some(why);
        self.backoff = BACKOFF_MIN;
        self.schedule_retry(now);
        self.client.connection_lost()
    }

    /// Handles readiness on [`Session::token`].
    pub fn ready(
        &mut self,
        registry: &Registry,
        event: &mio::event::Event,
        now: Instant,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        let Some(conn) = self.conn.as_mut() else {
            return events;
        };
        let mut result = Ok(());
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            let mut msgs = Vec::new();
            result = conn.read_messages(&mut msgs);
            for m in msgs {
                events.extend(self.client.handle(m));
            }
        }
        if let Err(e) = result {
            events.extend(self.drop_connection(registry, e.to_string(), now));
            return events;
        }
        if self.client.is_ready() {
            // A successful exchange resets the backoff.
            self.backoff = BACKOFF_MIN;
        }
        events.extend(self.flush(registry, now));
        events
    }

    /// Moves the client's output to the socket and writes what it takes.
    pub fn flush(&mut self, registry: &Registry, now: Instant) -> Vec<Event> {
        let Some(conn) = self.conn.as_mut() else {
            return Vec::new();
        };
        let out = std::mem::take(self.client.output());
        let result = conn.queue(&out).and_then(|()| conn.flush()).and_then(|()| {
            let want = conn.wants_write();
            if want != self.writable_registered {
                let interest = if want {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                registry.reregister(conn.stream_mut(), self.token, interest)?;
                self.writable_registered = want;
            }
            Ok(())
        });
        match result {
            Ok(()) => Vec::new(),
            Err(e) => self.drop_connection(registry, e.to_string(), now),
        }
    }

    /// When the loop should wake up for this session (retry or request timeouts).
    pub fn next_timeout(&self, now: Instant) -> Option<Duration> {
        [self.retry_at, self.next_tick]
            .into_iter()
            .flatten()
            .min()
            .map(|t| t.saturating_duration_since(now))
    }

    /// Reconnects when due and ages pending requests.
    pub fn on_timeout(&mut self, registry: &Registry, now: Instant) -> Vec<Event> {
        let mut events = Vec::new();
        if self.retry_at.is_some_and(|t| t <= now) {
            events.extend(self.try_connect(registry, now));
        }
        if let Some(t) = self.next_tick.filter(|t| *t <= now) {
            let next = if t + TICK <= now {
                now + TICK
            } else {
                t + TICK
            };
            self.next_tick = self.conn.as_ref().map(|_| next);
            events.extend(self.client.tick());
        }
        events.extend(self.flush(registry, now));
        events
    }

    /// Closes the socket (clean shutdown); nothing is retried.
    pub fn close(&mut self, registry: &Registry) -> Vec<Event> {
        if let Some(mut c) = self.conn.take() {
            if let Err(e) = c.flush() {
                log::debug!("ubus: final flush: {e}");
            }
            if let Err(e) = registry.deregister(c.stream_mut()) {
                log::debug!("ubus: deregister: {e}");
            }
        }
        self.retry_at = None;
        self.next_tick = None;
        self.client.connection_lost()
    }
}
