//! One-shot blocking ubus calls for command-line tools (mwanctl) and tests:
//! connect, wait for HELLO, LOOKUP + INVOKE, collect the reply, close.
//! Never used inside mwand's event loop.

use crate::blobmsg::Table;
use crate::client::{Client, Event};
use crate::message::{frame_len, status, Message};
use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub enum CallError {
    Connect(io::Error),
    Io(io::Error),
    Protocol(String),
    Timeout,
    /// ubus answered with a non-zero status.
    Status(u32),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Connect(e) => write!(f, "cannot connect to ubus: {e}"),
            CallError::Io(e) => write!(f, "ubus socket error: {e}"),
            CallError::Protocol(e) => write!(f, "ubus protocol error: {e}"),
            CallError::Timeout => f.write_str("ubus request timed out"),
            CallError::Status(code) => {
                write!(f, "ubus status {code} ({})", status::name(*code))
            }
        }
    }
}

impl std::error::Error for CallError {}

/// A blocking connection, for tools that make a few calls and exit.
pub struct BlockingClient {
    stream: UnixStream,
    client: Client,
    rbuf: Vec<u8>,
    timeout: Duration,
}

impl BlockingClient {
    pub fn connect(socket: &Path, timeout: Duration) -> Result<BlockingClient, CallError> {
        let stream = UnixStream::connect(socket).map_err(CallError::Connect)?;
        let mut client = Client::new();
        client.connection_started();
        let mut me = BlockingClient {
            stream,
            client,
            rbuf: Vec::new(),
            timeout,
        };
        let deadline = Instant::now() + timeout;
        while !me.client.is_ready() {
            me.step(deadline)?;
        }
        Ok(me)
    }

    /// Reads one chunk and feeds every complete frame to the client.
    fn step(&mut self, deadline: Instant) -> Result<Vec<Event>, CallError> {
        let out = std::mem::take(self.client.output());
        self.stream.write_all(&out).map_err(CallError::Io)?;
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(CallError::Timeout)?;
        self.stream
            .set_read_timeout(Some(left))
            .map_err(CallError::Io)?;
        let mut chunk = [0u8; 16 * 1024];
        let n = match self.stream.read(&mut chunk) {
            Ok(0) => return Err(CallError::Protocol("ubusd closed the connection".into())),
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(CallError::Timeout)
            }
            Err(e) => return Err(CallError::Io(e)),
        };
        self.rbuf.extend_from_slice(&chunk[..n]);
        let mut events = Vec::new();
        loop {
            let len = match frame_len(&self.rbuf) {
                Ok(Some(len)) if len <= self.rbuf.len() => len,
                Ok(_) => break,
                Err(e) => return Err(CallError::Protocol(e.to_string())),
            };
            let msg = Message::decode(&self.rbuf[..len])
                .map_err(|e| CallError::Protocol(e.to_string()))?;
            self.rbuf.drain(..len);
            events.extend(self.client.handle(msg));
        }
        Ok(events)
    }

    /// `ubus call path method data`: the reply's data (empty table if none).
    pub fn call(&mut self, path: &str, method: &str, data: Table) -> Result<Table, CallError> {
        self.client
            .call(path, method, data, REPLY_TAG)
            .map_err(|e| CallError::Protocol(e.to_string()))?;
        self.wait_reply()
    }

    /// INVOKE of a known object id (1 = ubusd's event object).
    pub fn invoke(&mut self, obj: u32, method: &str, data: Table) -> Result<Table, CallError> {
        self.client
            .invoke(obj, method, data, REPLY_TAG)
            .map_err(|e| CallError::Protocol(e.to_string()))?;
        self.wait_reply()
    }

    /// `ubus send id data`, waiting for ubusd's acknowledgement.
    pub fn send_event(&mut self, id: &str, data: Table) -> Result<(), CallError> {
        let body = Table::new()
            .with("id", crate::blobmsg::Value::string(id))
            .with("data", crate::blobmsg::Value::Table(data));
        self.invoke(crate::message::EVENT_OBJECT_ID, "send", body)
            .map(|_| ())
    }

    fn wait_reply(&mut self) -> Result<Table, CallError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            for ev in self.step(deadline)? {
                if let Event::Reply {
                    tag: REPLY_TAG,
                    status: code,
                    data,
                } = ev
                {
                    if code != status::OK {
                        return Err(CallError::Status(code));
                    }
                    return Ok(data.into_iter().next().unwrap_or_default());
                }
            }
        }
    }
}

const REPLY_TAG: u64 = 1;

/// Connects, calls, disconnects.
pub fn call(
    socket: &Path,
    path: &str,
    method: &str,
    data: Table,
    timeout: Duration,
) -> Result<Table, CallError> {
    BlockingClient::connect(socket, timeout)?.call(path, method, data)
}
