//! One request, one reply over mwand's control socket.

use mwan_proto::control::{Request, Response};
use mwan_proto::frame::{self, FrameReader};
use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A reload re-reads the config and may restart trackers: allow it time.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub enum ClientError {
    Connect {
        socket: PathBuf,
        source: io::Error,
    },
    Io {
        socket: PathBuf,
        source: io::Error,
    },
    Protocol(frame::FrameError),
    Closed,
    /// The request went out but no reply came within the timeout.
    NoReply {
        socket: PathBuf,
        after: Duration,
    },
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect { socket, source } => {
                let hint = match source.kind() {
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                        " (is mwand running? use --run-dir to reach one started with another --run-dir)"
                    }
                    io::ErrorKind::PermissionDenied => " (the control socket is for root only)",
                    _ => "",
                };
                write!(f, "cannot connect to {}: {source}{hint}", socket.display())
            }
            ClientError::Io { socket, source } => {
                write!(f, "talking to mwand at {}: {source}", socket.display())
            }
            ClientError::Protocol(e) => write!(f, "mwand's reply: {e}"),
            ClientError::Closed => write!(
                f,
                "mwand closed the connection without replying (refused by peer credentials? see its log)"
            ),
            ClientError::NoReply { socket, after } => write!(
                f,
                "mwand did not answer within {} s at {} (busy or hung? see its log)",
                after.as_secs_f32(),
                socket.display()
            ),
        }
    }
}

pub fn call(socket: &Path, request: &Request) -> Result<Response, ClientError> {
    call_within(socket, request, REPLY_TIMEOUT)
}

fn call_within(
    socket: &Path,
    request: &Request,
    timeout: Duration,
) -> Result<Response, ClientError> {
    let io_err = |source| ClientError::Io {
        socket: socket.to_path_buf(),
        source,
    };
    let mut stream = UnixStream::connect(socket).map_err(|source| ClientError::Connect {
        socket: socket.to_path_buf(),
        source,
    })?;
    stream.set_read_timeout(Some(timeout)).map_err(io_err)?;
    let bytes = frame::encode(request).map_err(ClientError::Protocol)?;
    // mwand refuses a caller it does not allow before reading its request:
    // the write may then fail (EPIPE) while the reason waits to be read.
    let write_failed = stream.write_all(&bytes).err();
    let mut reader = FrameReader::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(resp) = reader.next::<Response>().map_err(ClientError::Protocol)? {
            return Ok(resp);
        }
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(source) => {
                return Err(match (write_failed, source.kind()) {
                    (Some(write), _) => io_err(write),
                    // A read timeout shows as EAGAIN (WouldBlock) on unix sockets.
                    (None, io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                        ClientError::NoReply {
                            socket: socket.to_path_buf(),
                            after: timeout,
                        }
                    }
                    (None, _) => io_err(source),
                });
            }
        };
        if n == 0 {
            return Err(write_failed.map_or(ClientError::Closed, io_err));
        }
        reader.extend(&buf[..n]);
    }
}

/// The same request through ubus (`ubus call mwan <method>`), for an mwand
/// reached that way on OpenWrt (docs/ubus.md).
pub fn call_ubus(socket: &Path, request: &Request) -> Result<Response, String> {
    use mwan_ubus::blocking::{self, CallError};
    use mwan_ubus::message::status;
    use mwan_ubus::mwan_object;
    let (method, args) = mwan_object::call_for(request);
    match blocking::call(socket, "mwan", method, args, REPLY_TIMEOUT) {
        Ok(body) => mwan_object::response_from(method, status::OK, &body)
            .map_err(|e| format!("mwand's ubus reply: {e}")),
        Err(CallError::Status(code)) => Ok(Response::Error {
            message: format!(
                "ubus call mwan {method} failed with status {code} ({})",
                status::name(code)
            ),
        }),
        Err(e) => Err(format!("ubus {}: {e}", socket.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn silent_daemon_is_reported_as_no_reply() {
        let dir = std::env::temp_dir().join(format!("mwanctl-noreply-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("control.sock");
        if path.exists() {
            std::fs::remove_file(&path).unwrap();
        }
        let listener = UnixListener::bind(&path).unwrap();
        // Accepted by the kernel's backlog, never answered.
        let err = call_within(&path, &Request::Status, Duration::from_millis(200)).unwrap_err();
        drop(listener);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(matches!(err, ClientError::NoReply { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with("mwand did not answer within 0.2 s"),
            "{text}"
        );
        assert!(!text.contains("os error"), "{text}");
    }
}
