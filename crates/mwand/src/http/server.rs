//! The dashboard's listener inside mwand's mio loop: accepts, reads each
//! request into a bounded [`RequestReader`], answers with [`serve`], writes
//! as the socket accepts, closes. Never blocks: every socket is
//! non-blocking, reads and writes stop at WouldBlock, a request slower than
//! the timeout gets 408 on the timer, and at most [`MAX_CONNECTIONS`] are
//! open (one more is accepted and closed at once).
//!
//! The loop gives it a block of `1 + MAX_CONNECTIONS` tokens from `first`:
//! `first` is the listener, the rest the connection slots.

use super::{
    refusal_response, serve, Access, Api, Progress, RequestReader, MAX_CONNECTIONS,
    REQUEST_TIMEOUT_MS,
};
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use mwan_core::Millis;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    reader: RequestReader,
    /// The response, once there is one; `sent` bytes of it are written.
    out: Option<Vec<u8>>,
    sent: usize,
}

pub struct Server {
    listener: TcpListener,
    first: usize,
    slots: Vec<Option<Conn>>,
    access: Access,
    request_timeout: Millis,
}

/// What a pass over one connection leaves.
enum Next {
    Keep,
    Close,
}

impl Server {
    /// Binds `addr` (refused beyond loopback without a token, see
    /// [`super::check_bind`]) and registers the listener as `first`.
    pub fn bind(
        addr: SocketAddr,
        access: Access,
        registry: &Registry,
        first: Token,
    ) -> io::Result<Server> {
        super::check_bind(&addr, &access)
            .map_err(|e| io::Error::new(io::ErrorKind::PermissionDenied, e))?;
        let mut listener = TcpListener::bind(addr)?;
        registry.register(&mut listener, first, Interest::READABLE)?;
        Ok(Server {
            listener,
            first: first.0,
            slots: (0..MAX_CONNECTIONS).map(|_| None).collect(),
            access,
            request_timeout: REQUEST_TIMEOUT_MS,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Whether `token` is one of this server's.
    #[cfg(test)]
    pub fn owns(&self, token: Token) -> bool {
        (self.first..=self.first + MAX_CONNECTIONS).contains(&token.0)
    }

    /// Handles a readiness event of one of this server's tokens.
    pub fn ready(&mut self, registry: &Registry, token: Token, now: Millis, api: &mut dyn Api) {
        if token.0 == self.first {
            self.accept(registry, now);
            return;
        }
        let slot = token.0 - self.first - 1;
        let Some(conn) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let next = match conn.out {
            None => read(conn, &self.access, api),
            Some(_) => Next::Keep,
        };
        let next = match next {
            Next::Keep if conn.out.is_some() => write(conn, registry, token),
            other => other,
        };
        if let Next::Close = next {
            self.close(registry, slot);
        }
    }

    /// The earliest moment a slow request must be cut off.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.slots
            .iter()
            .flatten()
            .filter(|c| c.out.is_none())
            .map(|c| c.reader.deadline(self.request_timeout))
            .min()
    }

    /// Answers 408 to every request not complete in time, and closes it.
    pub fn tick(&mut self, registry: &Registry, now: Millis) {
        for slot in 0..self.slots.len() {
            let Some(conn) = self.slots[slot].as_mut() else {
                continue;
            };
            if conn.out.is_some() {
                continue;
            }
            let Some(refusal) = conn.reader.expired(now, self.request_timeout) else {
                continue;
            };
            // One try: a client this slow gets no second chance to read.
            if let Err(e) = conn.stream.write(&refusal_response(&refusal)) {
                log::debug!("http {}: 408 not sent: {e}", conn.peer);
            }
            self.close(registry, slot);
        }
    }

    fn accept(&mut self, registry: &Registry, now: Millis) {
        loop {
            let (mut stream, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("http accept: {e}");
                    return;
                }
            };
            let Some(slot) = self.slots.iter().position(Option::is_none) else {
                log::debug!("http {peer}: {MAX_CONNECTIONS} connections open, closed at once");
                continue;
            };
            let token = Token(self.first + 1 + slot);
            if let Err(e) = registry.register(&mut stream, token, Interest::READABLE) {
                log::warn!("http {peer}: {e}");
                continue;
            }
            self.slots[slot] = Some(Conn {
                stream,
                peer,
                reader: RequestReader::new(now),
                out: None,
                sent: 0,
            });
        }
    }

    fn close(&mut self, registry: &Registry, slot: usize) {
        if let Some(mut conn) = self.slots[slot].take() {
            if let Err(e) = registry.deregister(&mut conn.stream) {
                log::debug!("http {}: deregister: {e}", conn.peer);
            }
        }
    }
}

/// Reads until WouldBlock; once the request is complete or refused, puts
/// the response in `out`.
fn read(conn: &mut Conn, access: &Access, api: &mut dyn Api) -> Next {
    let mut buf = [0u8; 2048];
    loop {
        match conn.stream.read(&mut buf) {
            Ok(0) => return Next::Close,
            Ok(n) => match conn.reader.feed(&buf[..n]) {
                Progress::Incomplete => {}
                Progress::Complete(request) => {
                    conn.out = Some(serve(&request, &conn.peer, access, api));
                    return Next::Keep;
                }
                Progress::Refused(refusal) => {
                    log::debug!("http {}: {} {}", conn.peer, refusal.status, refusal.reason);
                    conn.out = Some(refusal_response(&refusal));
                    return Next::Keep;
                }
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Keep,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::debug!("http {}: read: {e}", conn.peer);
                return Next::Close;
            }
        }
    }
}

/// Writes what the socket takes; Close once all is written (one request
/// per connection) or the peer is gone.
fn write(conn: &mut Conn, registry: &Registry, token: Token) -> Next {
    let Some(out) = &conn.out else {
        return Next::Keep;
    };
    while conn.sent < out.len() {
        match conn.stream.write(&out[conn.sent..]) {
            Ok(0) => return Next::Close,
            Ok(n) => conn.sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return match registry.reregister(&mut conn.stream, token, Interest::WRITABLE) {
                    Ok(()) => Next::Keep,
                    Err(_) => Next::Close,
                };
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Next::Close,
        }
    }
    Next::Close
}

#[cfg(test)]
mod tests {
    use super::super::tests::Recorder;
    use super::*;
    use mio::{Events, Poll};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::{Duration, Instant};

    /// A real loop on its own thread: mio, the server, the timer. Returns
    /// the address, a stop flag and the thread.
    fn run_server(
        timeout: Millis,
    ) -> (
        SocketAddr,
        Arc<AtomicBool>,
        std::thread::JoinHandle<Vec<String>>,
    ) {
        run_server_with(timeout, Recorder::default())
    }

    /// The server with `api` behind it; the thread returns what was asked.
    fn run_server_with(
        timeout: Millis,
        mut api: Recorder,
    ) -> (
        SocketAddr,
        Arc<AtomicBool>,
        std::thread::JoinHandle<Vec<String>>,
    ) {
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut poll = Poll::new().unwrap_or_else(|e| panic!("{e}"));
            let addr: SocketAddr = "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"));
            let mut server = Server::bind(addr, Access { token: None }, poll.registry(), Token(10))
                .unwrap_or_else(|e| panic!("{e}"));
            server.request_timeout = timeout;
            tx.send(server.local_addr().unwrap_or_else(|e| panic!("{e}")))
                .unwrap_or_else(|e| panic!("{e}"));
            let start = Instant::now();
            let now = || start.elapsed().as_millis() as Millis;
            let mut events = Events::with_capacity(64);
            while !stop_flag.load(Ordering::Relaxed) {
                let wait = server
                    .next_deadline()
                    .map_or(50, |d| d.saturating_sub(now()).min(50));
                poll.poll(&mut events, Some(Duration::from_millis(wait)))
                    .unwrap_or_else(|e| panic!("{e}"));
                for event in &events {
                    assert!(server.owns(event.token()), "{:?}", event.token());
                    server.ready(poll.registry(), event.token(), now(), &mut api);
                }
                server.tick(poll.registry(), now());
            }
            api.asked
        });
        let addr = rx.recv().unwrap_or_else(|e| panic!("{e}"));
        (addr, stop, thread)
    }

    fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        try_exchange(addr, request).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_exchange(addr: SocketAddr, request: &[u8]) -> io::Result<String> {
        let mut s = std::net::TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(request)?;
        let mut reply = String::new();
        s.read_to_string(&mut reply)?;
        Ok(reply)
    }

    #[test]
    fn a_slow_client_neither_stalls_the_loop_nor_keeps_its_slot() {
        let (addr, stop, thread) = run_server(400);
        let mut slow = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
        slow.write_all(b"GET /api/sta")
            .unwrap_or_else(|e| panic!("{e}"));
        // Served meanwhile.
        let reply = exchange(addr, b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        // The slow one is answered 408 and closed.
        slow.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut text = String::new();
        slow.read_to_string(&mut text)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            text.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "{text}"
        );
        stop.store(true, Ordering::Relaxed);
        let asked = thread
            .join()
            .unwrap_or_else(|_| panic!("server thread panicked"));
        assert_eq!(asked, ["status"]);
    }

    #[test]
    fn connections_beyond_the_bound_are_closed_at_once() {
        let (addr, stop, thread) = run_server(60_000);
        let idle: Vec<std::net::TcpStream> = (0..MAX_CONNECTIONS)
            .map(|_| std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}")))
            .collect();
        // The next one is accepted and closed: EOF or a reset, no reply.
        let mut extra = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
        extra
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut reply = Vec::new();
        let read = extra
            .write_all(b"GET /api/status HTTP/1.1\r\n\r\n")
            .and_then(|()| extra.read_to_end(&mut reply));
        match read {
            Ok(_) => assert!(reply.is_empty(), "{}", String::from_utf8_lossy(&reply)),
            Err(e) => assert!(
                matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
                ),
                "{e}"
            ),
        }
        // One idle client leaves: its slot serves again.
        drop(idle);
        let mut reply = String::new();
        // Until the server has seen the closes, a new connection is still
        // beyond the bound: closed at once (EOF or a reset).
        for _ in 0..100 {
            reply = try_exchange(addr, b"GET /api/status HTTP/1.1\r\n\r\n").unwrap_or_default();
            if !reply.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply:?}");
        stop.store(true, Ordering::Relaxed);
        thread
            .join()
            .unwrap_or_else(|_| panic!("server thread panicked"));
    }

    /// Over a real socket: the page is the gzip of its source, a write
    /// goes through, a GET on a write and an oversized body are refused.
    /// (A browser reads the page too: `chromium_renders_...` below.)
    #[test]
    fn sockets_get_the_page_and_the_refusals() {
        let (addr, stop, thread) = run_server(5_000);
        let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
        s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip\r\n\r\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let mut reply = Vec::new();
        s.read_to_end(&mut reply).unwrap_or_else(|e| panic!("{e}"));
        let split = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4;
        let head = String::from_utf8_lossy(&reply[..split]);
        assert!(head.contains("Content-Encoding: gzip\r\n"), "{head}");
        let page = super::super::tests::pipe("gzip", &["-dc"], &reply[split..]).stdout;
        let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/index.html");
        assert!(
            page == std::fs::read(web).unwrap_or_default(),
            "page differs from web/index.html"
        );
        let write =
            b"POST /api/restart HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                      Content-Length: 20\r\n\r\n{\"interface\":\"wan1\"}";
        let done = exchange(addr, write);
        assert!(
            done.ends_with("\r\n\r\n{\"ok\":true,\"message\":\"done\"}"),
            "{done}"
        );
        let get_write = exchange(addr, b"GET /api/restart HTTP/1.1\r\n\r\n");
        assert!(get_write.starts_with("HTTP/1.1 405 "), "{get_write}");
        // Refused from the header alone, before any body is sent.
        let reply = exchange(addr, b"POST /api/restart HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2000\r\n\r\n");
        assert!(reply.starts_with("HTTP/1.1 413 "), "{reply}");
        stop.store(true, Ordering::Relaxed);
        let asked = thread
            .join()
            .unwrap_or_else(|_| panic!("server thread panicked"));
        assert_eq!(asked, ["Restart { interface: \"wan1\" }"]);
    }

    /// Debian's chromium loads the page from this server under its CSP,
    /// runs the script and renders what the API gives (canned here).
    /// Part of `make web-test`, not of `cargo test`: it needs chromium.
    #[test]
    #[ignore = "needs chromium: make web-test"]
    fn chromium_renders_the_page_served_by_this_server() {
        let (addr, stop, thread) = run_server_with(5_000, Recorder::canned());
        let profile = std::env::temp_dir().join(format!("mwan-chromium-{}", std::process::id()));
        let out = std::process::Command::new("/usr/bin/chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--virtual-time-budget=4000",
                "--dump-dom",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("http://{addr}/"))
            .output()
            .unwrap_or_else(|e| panic!("/usr/bin/chromium: {e} (apt-get install chromium)"));
        let removed = std::fs::remove_dir_all(&profile);
        let dom = String::from_utf8_lossy(&out.stdout);
        stop.store(true, Ordering::Relaxed);
        let asked = thread
            .join()
            .unwrap_or_else(|_| panic!("server thread panicked"));
        assert!(removed.is_ok(), "{removed:?}");
        for want in [
            "data-wan=\"wan1\" data-state=\"online\"",
            "12.5 ms",
            "policy balanced uses wan1",
            "online -&gt; offline",
        ] {
            assert!(dom.contains(want), "no '{want}' in the DOM:\n{dom}");
        }
        for call in ["status", "explain", "history 0"] {
            assert!(asked.iter().any(|a| a == call), "{asked:?}");
        }
    }
}
