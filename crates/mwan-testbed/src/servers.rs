//! The internet namespace's services, in one mio loop: TCP echo (7), sink
//! (9), source (19), HTTP (80, answers with the client's address) and a DNS
//! responder (UDP 53) for one fixed name.

use crate::plan::Targets;
use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Service {
    Echo,
    Sink,
    Source,
    Http,
}

struct Conn {
    stream: TcpStream,
    service: Service,
    peer: SocketAddr,
    /// Bytes still to send.
    out: Vec<u8>,
    /// Request bytes (HTTP only).
    request: Vec<u8>,
    /// Close once `out` is empty.
    closing: bool,
}

/// Most bytes an echo connection buffers before it stops reading.
const ECHO_BACKLOG: usize = 1 << 20;
const SOURCE_CHUNK: [u8; 16 * 1024] = [b'x'; 16 * 1024];
const FIRST_CONN: usize = 1000;

/// Binds every service on the target addresses, touches `ready`, then
/// serves until killed.
pub fn run(targets: &Targets, ready: &Path) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let mut listeners: Vec<(TcpListener, Service)> = Vec::new();
    let groups = [
        (&targets.tcp_echo, Service::Echo),
        (&targets.tcp_sink, Service::Sink),
        (&targets.tcp_source, Service::Source),
        (&targets.http, Service::Http),
    ];
    for (addrs, service) in groups {
        for addr in addrs.iter() {
            let mut l = TcpListener::bind(*addr)
                .map_err(|e| io::Error::new(e.kind(), format!("bind tcp {addr}: {e}")))?;
            set_loss_based_congestion_control(&l);
            poll.registry()
                .register(&mut l, Token(listeners.len()), Interest::READABLE)?;
            listeners.push((l, service));
        }
    }
    let mut dns: Vec<UdpSocket> = Vec::new();
    for addr in &targets.dns_server {
        let mut s = UdpSocket::bind(*addr)
            .map_err(|e| io::Error::new(e.kind(), format!("bind udp {addr}: {e}")))?;
        poll.registry()
            .register(&mut s, Token(500 + dns.len()), Interest::READABLE)?;
        dns.push(s);
    }
    std::fs::write(ready, b"ready\n")?;
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut events = Events::with_capacity(256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in events.iter() {
            let t = ev.token().0;
            if t < listeners.len() {
                accept_all(&mut poll, &listeners[t], &mut conns)?;
            } else if (500..500 + dns.len()).contains(&t) {
                answer_dns(&dns[t - 500], targets, &mut buf);
            } else if t >= FIRST_CONN {
                let slot = t - FIRST_CONN;
                let done = match conns.get_mut(slot).and_then(|c| c.as_mut()) {
                    Some(conn) => drive(conn, &mut buf).unwrap_or(true),
                    None => false,
                };
                if done {
                    if let Some(mut conn) = conns[slot].take() {
                        if let Err(e) = poll.registry().deregister(&mut conn.stream) {
                            eprintln!("deregister: {e}");
                        }
                    }
                }
            }
        }
    }
}

/// Most internet servers run a loss-based congestion control (CUBIC); one
/// that fills a capped link's queue is what makes bufferbloat visible. The
/// namespace default is whatever the host has (often BBR, which avoids
/// filling queues) and a namespace may not change it, but a socket owner
/// with CAP_NET_ADMIN may. Accepted sockets inherit it from the listener.
fn set_loss_based_congestion_control(listener: &TcpListener) {
    use std::os::fd::AsRawFd;
    let name = b"cubic";
    // SAFETY: setsockopt with a valid buffer and length.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            name.as_ptr() as *const libc::c_void,
            name.len() as libc::socklen_t,
        )
    };
    if rc != 0 {
        eprintln!("TCP_CONGESTION cubic: {}", io::Error::last_os_error());
    }
}

fn accept_all(
    poll: &mut Poll,
    (listener, service): &(TcpListener, Service),
    conns: &mut Vec<Option<Conn>>,
) -> io::Result<()> {
    loop {
        let (mut stream, peer) = match listener.accept() {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => {
                eprintln!("accept: {e}");
                return Ok(());
            }
        };
        let slot = conns.iter().position(|c| c.is_none()).unwrap_or_else(|| {
            conns.push(None);
            conns.len() - 1
        });
        poll.registry().register(
            &mut stream,
            Token(FIRST_CONN + slot),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let mut conn = Conn {
            stream,
            service: *service,
            peer,
            out: Vec::new(),
            request: Vec::new(),
            closing: false,
        };
        let mut scratch = [0u8; 0];
        // Nothing to read yet; a source starts sending at once.
        if drive(&mut conn, &mut scratch).unwrap_or(true) {
            continue;
        }
        conns[slot] = Some(conn);
    }
}

/// Reads and writes until the socket would block; true when finished.
fn drive(conn: &mut Conn, buf: &mut [u8]) -> io::Result<bool> {
    if !buf.is_empty() {
        loop {
            if conn.service == Service::Echo && conn.out.len() > ECHO_BACKLOG {
                break;
            }
            match conn.stream.read(buf) {
                Ok(0) => {
                    if conn.out.is_empty() {
                        return Ok(true);
                    }
                    conn.closing = true;
                    break;
                }
                Ok(n) => match conn.service {
                    Service::Echo => conn.out.extend_from_slice(&buf[..n]),
                    Service::Sink | Service::Source => {}
                    Service::Http => {
                        conn.request.extend_from_slice(&buf[..n]);
                        if conn.request.len() > 16 * 1024 {
                            return Ok(true);
                        }
                        if conn.out.is_empty() && has_header_end(&conn.request) {
                            conn.out = http_response(&conn.request, conn.peer.ip());
                            conn.closing = true;
                        }
                    }
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Ok(true),
            }
        }
    }
    loop {
        if conn.service == Service::Source && !conn.closing && conn.out.is_empty() {
            conn.out.extend_from_slice(&SOURCE_CHUNK);
        }
        if conn.out.is_empty() {
            break;
        }
        match conn.stream.write(&conn.out) {
            Ok(n) => {
                conn.out.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Ok(true),
        }
    }
    Ok(conn.closing && conn.out.is_empty())
}

fn has_header_end(req: &[u8]) -> bool {
    req.windows(4).any(|w| w == b"\r\n\r\n") || req.windows(2).any(|w| w == b"\n\n")
}

fn http_response(req: &[u8], client: IpAddr) -> Vec<u8> {
    let client = match client {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    let (status, body) = if req.starts_with(b"GET ") || req.starts_with(b"HEAD ") {
        ("200 OK", format!("{client}\n"))
    } else {
        ("405 Method Not Allowed", "only GET and HEAD\n".to_string())
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !req.starts_with(b"HEAD ") {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

fn answer_dns(sock: &UdpSocket, targets: &Targets, buf: &mut [u8]) {
    loop {
        let (n, peer) = match sock.recv_from(buf) {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => {
                eprintln!("dns recv: {e}");
                return;
            }
        };
        if let Some(reply) = dns_reply(&buf[..n], targets) {
            if let Err(e) = sock.send_to(&reply, peer) {
                eprintln!("dns send to {peer}: {e}");
            }
        }
    }
}

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;

/// Builds the answer to a DNS query; `None` for something that is not one.
pub fn dns_reply(query: &[u8], targets: &Targets) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    // Question: labels, then type and class.
    let mut pos = 12;
    let mut name = String::new();
    loop {
        let len = *query.get(pos)? as usize;
        pos += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        let label = query.get(pos..pos + len)?;
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(&String::from_utf8_lossy(label));
        pos += len;
    }
    let qtype = u16::from_be_bytes([*query.get(pos)?, *query.get(pos + 1)?]);
    let question_end = pos + 4;
    let question = query.get(12..question_end)?;
    let known = name.eq_ignore_ascii_case(&targets.dns_name);
    let rdata: Option<Vec<u8>> = match (known, qtype) {
        (true, TYPE_A) => Some(targets.dns_answer_v4.octets().to_vec()),
        (true, TYPE_AAAA) => Some(targets.dns_answer_v6.octets().to_vec()),
        _ => None,
    };
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&query[0..2]);
    // QR, AA, RD copied; RA; rcode 3 (NXDOMAIN) for an unknown name.
    out.push(0x84 | (query[2] & 0x01));
    out.push(0x80 | if known { 0 } else { 3 });
    out.extend_from_slice(&[0, 1, 0, rdata.is_some() as u8, 0, 0, 0, 0]);
    out.extend_from_slice(question);
    if let Some(rdata) = rdata {
        out.extend_from_slice(&[0xc0, 12]); // pointer to the question's name
        out.extend_from_slice(&qtype.to_be_bytes());
        out.extend_from_slice(&[0, 1, 0, 0, 0, 60]); // class IN, TTL 60
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&rdata);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        q
    }

    #[test]
    fn dns_answers_the_fixed_name_and_refuses_others() {
        let t = crate::plan::targets();
        let r = dns_reply(&query("Probe.Example.net", TYPE_A), &t).unwrap();
        assert_eq!(&r[0..2], &[0x12, 0x34]);
        assert_eq!(r[3] & 0x0f, 0);
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1);
        assert_eq!(&r[r.len() - 4..], &t.dns_answer_v4.octets());
        let r = dns_reply(&query("probe.example.net", TYPE_AAAA), &t).unwrap();
        assert_eq!(&r[r.len() - 16..], &t.dns_answer_v6.octets());
        let r = dns_reply(&query("other.example.net", TYPE_A), &t).unwrap();
        assert_eq!(r[3] & 0x0f, 3);
        assert!(dns_reply(&[1, 2, 3], &t).is_none());
    }

    #[test]
    fn http_names_the_client() {
        let r = http_response(b"GET / HTTP/1.0\r\n\r\n", "198.51.100.2".parse().unwrap());
        let text = String::from_utf8(r).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK"));
        assert!(text.ends_with("\r\n\r\n198.51.100.2\n"));
    }
}
