//! Probe packets built into and parsed from caller-owned buffers: pure
//! functions, no sockets, no allocation, unit-tested with hand-made bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Bytes of the tracker's random cookie at the start of every echo payload.
pub const COOKIE_LEN: usize = 8;

const ICMP4_ECHO_REQUEST: u8 = 8;
const ICMP4_ECHO_REPLY: u8 = 0;
const ICMP6_ECHO_REQUEST: u8 = 128;
const ICMP6_ECHO_REPLY: u8 = 129;

pub fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Writes an echo request (ICMP header + payload) into `out` and returns its
/// length. The payload is the cookie followed by a fixed pattern, at least
/// [`COOKIE_LEN`] bytes. For ICMPv6 the kernel fills in the checksum.
pub fn build_echo(
    out: &mut [u8],
    v6: bool,
    id: u16,
    seq: u16,
    cookie: &[u8; COOKIE_LEN],
    size: usize,
) -> usize {
    let payload = size.max(COOKIE_LEN);
    let len = 8 + payload;
    let pkt = &mut out[..len];
    pkt[0] = if v6 {
        ICMP6_ECHO_REQUEST
    } else {
        ICMP4_ECHO_REQUEST
    };
    pkt[1] = 0;
    pkt[2..4].fill(0);
    pkt[4..6].copy_from_slice(&id.to_be_bytes());
    pkt[6..8].copy_from_slice(&seq.to_be_bytes());
    pkt[8..8 + COOKIE_LEN].copy_from_slice(cookie);
    for (i, b) in pkt[8 + COOKIE_LEN..].iter_mut().enumerate() {
        *b = i as u8;
    }
    if !v6 {
        let c = checksum(pkt);
        pkt[2..4].copy_from_slice(&c.to_be_bytes());
    }
    len
}

/// What an ICMP packet received on a probe socket says about our probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpEvent {
    /// An echo reply carrying our cookie.
    Reply { id: u16, seq: u16 },
    /// An error quoting one of our echo requests to `dst`.
    Error {
        icmp_type: u8,
        icmp_code: u8,
        dst: IpAddr,
        id: u16,
        seq: u16,
    },
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn cookie_matches(payload: &[u8], cookie: &[u8; COOKIE_LEN]) -> bool {
    payload.get(..COOKIE_LEN) == Some(&cookie[..])
}

/// An echo reply's id and sequence if its payload carries our cookie.
fn our_reply(icmp: &[u8], cookie: &[u8; COOKIE_LEN]) -> Option<IcmpEvent> {
    let payload = icmp.get(8..)?;
    cookie_matches(payload, cookie).then_some(IcmpEvent::Reply {
        id: be16(icmp, 4)?,
        seq: be16(icmp, 6)?,
    })
}

/// The error event for an ICMP error of type `t` quoting `echo`, if that is
/// one of our echo requests: the quote must carry our cookie, as a reply
/// must. id and seq alone (a bare 8-byte quote) are easily forged, and a
/// forged error would fail a healthy WAN; a router that quotes so little
/// just leaves the probe to time out.
fn our_quoted_echo(
    icmp: &[u8],
    t: u8,
    dst: IpAddr,
    echo: &[u8],
    request: u8,
    cookie: &[u8; COOKIE_LEN],
) -> Option<IcmpEvent> {
    if *echo.first()? != request {
        return None;
    }
    if !cookie_matches(echo.get(8..)?, cookie) {
        return None;
    }
    Some(IcmpEvent::Error {
        icmp_type: t,
        icmp_code: icmp[1],
        dst,
        id: be16(echo, 4)?,
        seq: be16(echo, 6)?,
    })
}

/// Parses an IPv4 ICMP message. `with_ip_header`: raw sockets deliver the IP
/// header, datagram (ping) sockets do not.
pub fn parse_icmp4(
    buf: &[u8],
    with_ip_header: bool,
    cookie: &[u8; COOKIE_LEN],
) -> Option<IcmpEvent> {
    let icmp = if with_ip_header {
        let ihl = usize::from(buf.first()? & 0x0f) * 4;
        if ihl < 20 {
            return None;
        }
        buf.get(ihl..)?
    } else {
        buf
    };
    match *icmp.first()? {
        ICMP4_ECHO_REPLY => our_reply(icmp, cookie),
        t @ (3 | 11 | 12) => {
            let inner = icmp.get(8..)?;
            let ihl = usize::from(inner.first()? & 0x0f) * 4;
            if inner.len() < 20 || inner[0] >> 4 != 4 || ihl < 20 || inner[9] != 1 {
                return None;
            }
            let dst = Ipv4Addr::new(inner[16], inner[17], inner[18], inner[19]);
            our_quoted_echo(
                icmp,
                t,
                IpAddr::V4(dst),
                inner.get(ihl..)?,
                ICMP4_ECHO_REQUEST,
                cookie,
            )
        }
        _ => None,
    }
}

/// Parses an ICMPv6 message (sockets never deliver the IPv6 header).
pub fn parse_icmp6(icmp: &[u8], cookie: &[u8; COOKIE_LEN]) -> Option<IcmpEvent> {
    match *icmp.first()? {
        ICMP6_ECHO_REPLY => our_reply(icmp, cookie),
        t @ (1..=4) => {
            let inner = icmp.get(8..)?;
            if inner.len() < 40 || inner[0] >> 4 != 6 || inner[6] != 58 {
                return None;
            }
            let mut d = [0u8; 16];
            d.copy_from_slice(&inner[24..40]);
            our_quoted_echo(
                icmp,
                t,
                IpAddr::V6(Ipv6Addr::from(d)),
                &inner[40..],
                ICMP6_ECHO_REQUEST,
                cookie,
            )
        }
        _ => None,
    }
}

/// Our own echo request as returned by the error queue of a ping socket.
pub fn parse_own_echo(icmp: &[u8], cookie: &[u8; COOKIE_LEN]) -> Option<u16> {
    if !matches!(*icmp.first()?, ICMP4_ECHO_REQUEST | ICMP6_ECHO_REQUEST) {
        return None;
    }
    if icmp.get(8..8 + COOKIE_LEN).is_some_and(|p| p != cookie) {
        return None;
    }
    be16(icmp, 6)
}

pub const ARP_LEN: usize = 28;

/// ARP request (Ethernet/IPv4) for `target` from `sender`.
pub fn build_arp_request(mac: &[u8; 6], sender: Ipv4Addr, target: Ipv4Addr) -> [u8; ARP_LEN] {
    let mut p = [0u8; ARP_LEN];
    p[0..2].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
    p[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    p[4] = 6;
    p[5] = 4;
    p[6..8].copy_from_slice(&1u16.to_be_bytes()); // request
    p[8..14].copy_from_slice(mac);
    p[14..18].copy_from_slice(&sender.octets());
    // target hardware address stays zero
    p[24..28].copy_from_slice(&target.octets());
    p
}

/// An ARP reply to `us`: returns the address that answered.
pub fn parse_arp_reply(p: &[u8], us: Ipv4Addr) -> Option<Ipv4Addr> {
    if p.len() < ARP_LEN
        || be16(p, 0)? != 1
        || be16(p, 2)? != 0x0800
        || p[4] != 6
        || p[5] != 4
        || be16(p, 6)? != 2
    {
        return None;
    }
    let tpa = Ipv4Addr::new(p[24], p[25], p[26], p[27]);
    (tpa == us).then(|| Ipv4Addr::new(p[14], p[15], p[16], p[17]))
}

/// DNS query for `name` (A, or AAAA when `aaaa`) with id `id`; returns its length.
/// `out` must hold at least 18 + name length bytes.
pub fn build_dns_query(out: &mut [u8], id: u16, name: &str, aaaa: bool) -> usize {
    out[0..2].copy_from_slice(&id.to_be_bytes());
    out[2..4].copy_from_slice(&0x0100u16.to_be_bytes()); // recursion desired
    out[4..6].copy_from_slice(&1u16.to_be_bytes());
    out[6..12].fill(0);
    let mut at = 12;
    for label in name.split('.') {
        out[at] = label.len() as u8;
        out[at + 1..at + 1 + label.len()].copy_from_slice(label.as_bytes());
        at += 1 + label.len();
    }
    out[at] = 0;
    at += 1;
    out[at..at + 2].copy_from_slice(&(if aaaa { 28u16 } else { 1 }).to_be_bytes());
    out[at + 2..at + 4].copy_from_slice(&1u16.to_be_bytes());
    at + 4
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsVerdict {
    /// Not an answer to `query` (other id or question): ignore it.
    NotOurs,
    Good,
    /// Answer to our question but an error code, no address, or not `expect`.
    Bad,
}

fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *msg.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return Some(at + 2),
            l if l & 0xc0 == 0 => at += 1 + usize::from(l),
            _ => return None,
        }
    }
}

/// Checks a DNS response against the `query` we sent.
pub fn check_dns_answer(msg: &[u8], query: &[u8], expect: Option<IpAddr>) -> DnsVerdict {
    let verdict = || -> Option<DnsVerdict> {
        if msg.get(..2)? != query.get(..2)? || *msg.get(2)? & 0x80 == 0 {
            return Some(DnsVerdict::NotOurs);
        }
        if be16(msg, 4)? != 1 || msg.get(12..query.len())? != &query[12..] {
            return Some(DnsVerdict::NotOurs);
        }
        if *msg.get(3)? & 0x0f != 0 {
            return Some(DnsVerdict::Bad);
        }
        let answers = be16(msg, 6)?;
        let mut at = query.len();
        let mut any = false;
        for _ in 0..answers {
            at = skip_name(msg, at)?;
            let rtype = be16(msg, at)?;
            let rdlen = usize::from(be16(msg, at + 8)?);
            let rdata = msg.get(at + 10..at + 10 + rdlen)?;
            at += 10 + rdlen;
            let addr = match (rtype, rdlen) {
                (1, 4) => IpAddr::V4(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3])),
                (28, 16) => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(rdata);
                    IpAddr::V6(Ipv6Addr::from(a))
                }
                _ => continue,
            };
            match expect {
                Some(e) if e != addr => {}
                _ => any = true,
            }
        }
        Some(if any {
            DnsVerdict::Good
        } else {
            DnsVerdict::Bad
        })
    };
    verdict().unwrap_or(DnsVerdict::Bad)
}

/// The status code of an HTTP response head, once its first line is complete.
pub fn http_status(head: &[u8]) -> Option<Result<u16, ()>> {
    let line_end = head.iter().position(|&b| b == b'\n')?;
    let line = &head[..line_end];
    let ok = || -> Option<u16> {
        if !line.starts_with(b"HTTP/") {
            return None;
        }
        let sp = line.iter().position(|&b| b == b' ')?;
        let code = line.get(sp + 1..sp + 4)?;
        std::str::from_utf8(code).ok()?.parse().ok()
    };
    Some(ok().ok_or(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOKIE: [u8; 8] = *b"mwan-ck!";

    fn ipv4_header(proto: u8, src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0];
        h.extend_from_slice(&src);
        h.extend_from_slice(&dst);
        h
    }

    #[test]
    fn echo_checksum_verifies() {
        let mut buf = [0u8; 100];
        let n = build_echo(&mut buf, false, 0x1234, 7, &COOKIE, 56);
        assert_eq!(n, 64);
        assert_eq!(checksum(&buf[..n]), 0, "a valid ICMP checksum sums to zero");
        // odd length too
        let n = build_echo(&mut buf, false, 1, 2, &COOKIE, 9);
        assert_eq!(checksum(&buf[..n]), 0);
        // tiny sizes still carry the cookie
        assert_eq!(build_echo(&mut buf, true, 1, 2, &COOKIE, 0), 8 + COOKIE_LEN);
    }

    #[test]
    fn v4_reply_and_foreign_cookie() {
        let mut req = [0u8; 64];
        let n = build_echo(&mut req, false, 0x1234, 9, &COOKIE, 56);
        let mut reply = ipv4_header(1, [192, 0, 2, 1], [198, 51, 100, 2]);
        let mut icmp = req[..n].to_vec();
        icmp[0] = 0;
        reply.extend_from_slice(&icmp);
        assert_eq!(
            parse_icmp4(&reply, true, &COOKIE),
            Some(IcmpEvent::Reply { id: 0x1234, seq: 9 })
        );
        assert_eq!(
            parse_icmp4(&icmp, false, &COOKIE),
            Some(IcmpEvent::Reply { id: 0x1234, seq: 9 })
        );
        assert_eq!(
            parse_icmp4(&reply, true, b"otherone"),
            None,
            "another tracker's reply"
        );
        assert_eq!(parse_icmp4(&reply[..25], true, &COOKIE), None, "truncated");
    }

    #[test]
    fn v4_unreachable_quotes_our_request() {
        let mut req = [0u8; 64];
        let n = build_echo(&mut req, false, 0x4321, 77, &COOKIE, 56);
        let mut pkt = ipv4_header(1, [198, 51, 100, 1], [198, 51, 100, 2]);
        pkt.extend_from_slice(&[3, 1, 0, 0, 0, 0, 0, 0]);
        pkt.extend_from_slice(&ipv4_header(1, [198, 51, 100, 2], [192, 0, 2, 9]));
        pkt.extend_from_slice(&req[..8]);
        // Only 8 bytes quoted: id and seq can be guessed or seen by anyone
        // on the path, so a forged error must not fail a healthy WAN.
        assert_eq!(parse_icmp4(&pkt, true, &COOKIE), None, "no cookie quoted");
        pkt.extend_from_slice(&req[8..8 + COOKIE_LEN]);
        assert_eq!(
            parse_icmp4(&pkt, true, &COOKIE),
            Some(IcmpEvent::Error {
                icmp_type: 3,
                icmp_code: 1,
                dst: "192.0.2.9".parse().unwrap(),
                id: 0x4321,
                seq: 77
            })
        );
        pkt.extend_from_slice(&req[8 + COOKIE_LEN..n]);
        assert!(parse_icmp4(&pkt, true, &COOKIE).is_some());
        assert_eq!(parse_icmp4(&pkt, true, b"otherone"), None);
    }

    #[test]
    fn v6_reply_and_error() {
        let mut req = [0u8; 64];
        let n = build_echo(&mut req, true, 5, 6, &COOKIE, 16);
        let mut reply = req[..n].to_vec();
        reply[0] = 129;
        assert_eq!(
            parse_icmp6(&reply, &COOKIE),
            Some(IcmpEvent::Reply { id: 5, seq: 6 })
        );
        let dst: Ipv6Addr = "2001:db8::9".parse().unwrap();
        let mut err = vec![1, 3, 0, 0, 0, 0, 0, 0, 0x60, 0, 0, 0, 0, 0, 58, 64];
        err.extend_from_slice(&[0; 16]);
        err.extend_from_slice(&dst.octets());
        err.extend_from_slice(&req[..n]);
        assert_eq!(
            parse_icmp6(&err, &COOKIE),
            Some(IcmpEvent::Error {
                icmp_type: 1,
                icmp_code: 3,
                dst: IpAddr::V6(dst),
                id: 5,
                seq: 6
            })
        );
        assert_eq!(parse_own_echo(&req[..n], &COOKIE), Some(6));
    }

    #[test]
    fn arp_round_trip() {
        let mac = [2, 0, 0, 0, 0, 1];
        let us = Ipv4Addr::new(198, 51, 100, 2);
        let gw = Ipv4Addr::new(198, 51, 100, 1);
        let mut p = build_arp_request(&mac, us, gw);
        assert_eq!(parse_arp_reply(&p, us), None, "a request is not a reply");
        p[7] = 2;
        p[14..18].copy_from_slice(&gw.octets());
        p[24..28].copy_from_slice(&us.octets());
        assert_eq!(parse_arp_reply(&p, us), Some(gw));
        assert_eq!(parse_arp_reply(&p, Ipv4Addr::new(198, 51, 100, 3)), None);
    }

    fn dns_answer(query: &[u8], rcode: u8, addrs: &[IpAddr]) -> Vec<u8> {
        let mut m = query.to_vec();
        m[2] |= 0x80;
        m[3] = 0x80 | rcode;
        m[6..8].copy_from_slice(&(addrs.len() as u16).to_be_bytes());
        for a in addrs {
            m.extend_from_slice(&[0xc0, 12]);
            let (t, data): (u16, Vec<u8>) = match a {
                IpAddr::V4(v) => (1, v.octets().to_vec()),
                IpAddr::V6(v) => (28, v.octets().to_vec()),
            };
            m.extend_from_slice(&t.to_be_bytes());
            m.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
            m.extend_from_slice(&(data.len() as u16).to_be_bytes());
            m.extend_from_slice(&data);
        }
        m
    }

    #[test]
    fn dns_answers_are_checked() {
        let mut q = [0u8; 300];
        let n = build_dns_query(&mut q, 0xbeef, "www.example.com", false);
        let q = &q[..n];
        let good: IpAddr = "192.0.2.80".parse().unwrap();
        let other: IpAddr = "192.0.2.81".parse().unwrap();
        assert_eq!(
            check_dns_answer(&dns_answer(q, 0, &[good]), q, Some(good)),
            DnsVerdict::Good
        );
        assert_eq!(
            check_dns_answer(&dns_answer(q, 0, &[other, good]), q, None),
            DnsVerdict::Good
        );
        assert_eq!(
            check_dns_answer(&dns_answer(q, 0, &[other]), q, Some(good)),
            DnsVerdict::Bad
        );
        assert_eq!(
            check_dns_answer(&dns_answer(q, 3, &[]), q, None),
            DnsVerdict::Bad,
            "NXDOMAIN"
        );
        assert_eq!(
            check_dns_answer(&dns_answer(q, 0, &[]), q, None),
            DnsVerdict::Bad,
            "no records"
        );
        let mut foreign = dns_answer(q, 0, &[good]);
        foreign[1] ^= 1;
        assert_eq!(check_dns_answer(&foreign, q, None), DnsVerdict::NotOurs);
        let mut truncated = dns_answer(q, 0, &[good]);
        truncated.truncate(truncated.len() - 2);
        assert_eq!(check_dns_answer(&truncated, q, None), DnsVerdict::Bad);
        assert_eq!(
            check_dns_answer(q, q, None),
            DnsVerdict::NotOurs,
            "our own query echoed"
        );
    }

    #[test]
    fn http_status_lines() {
        assert_eq!(http_status(b"HTTP/1.0 200 OK\r\n"), Some(Ok(200)));
        assert_eq!(http_status(b"HTTP/1.1 503 Busy\r\nX: y"), Some(Ok(503)));
        assert_eq!(http_status(b"HTTP/1.1 20"), None, "line not complete yet");
        assert_eq!(http_status(b"SSH-2.0-OpenSSH\r\n"), Some(Err(())));
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            // Whatever arrives on a probe socket, parsing never panics.
            #[test]
            fn parsers_take_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..700), raw in any::<bool>()) {
                let us = Ipv4Addr::new(198, 51, 100, 2);
                let _ = parse_icmp4(&bytes, raw, &COOKIE);
                let _ = parse_icmp6(&bytes, &COOKIE);
                let _ = parse_own_echo(&bytes, &COOKIE);
                let _ = parse_arp_reply(&bytes, us);
                let _ = http_status(&bytes);
                let mut q = [0u8; 300];
                let n = build_dns_query(&mut q, 7, "probe.example.net", raw);
                let _ = check_dns_answer(&bytes, &q[..n], None);
            }

            // An ICMP error quoting our request, cut anywhere, never panics,
            // and is recognised once the quote holds id, seq and our cookie.
            #[test]
            fn truncated_icmp_errors(cut in 0usize..120, v6 in any::<bool>()) {
                let mut req = [0u8; 64];
                let n = build_echo(&mut req, v6, 0x4321, 77, &COOKIE, 16);
                let pkt = if v6 {
                    let mut p = vec![1, 3, 0, 0, 0, 0, 0, 0, 0x60, 0, 0, 0, 0, 0, 58, 64];
                    p.extend_from_slice(&[0; 32]);
                    p.extend_from_slice(&req[..n]);
                    p
                } else {
                    let mut p = ipv4_header(1, [198, 51, 100, 1], [198, 51, 100, 2]);
                    p.extend_from_slice(&[3, 1, 0, 0, 0, 0, 0, 0]);
                    p.extend_from_slice(&ipv4_header(1, [198, 51, 100, 2], [192, 0, 2, 9]));
                    p.extend_from_slice(&req[..n]);
                    p
                };
                let cut = cut.min(pkt.len());
                let ev = if v6 { parse_icmp6(&pkt[..cut], &COOKIE) } else { parse_icmp4(&pkt[..cut], true, &COOKIE) };
                let whole_quote = pkt.len() - n + 8 + COOKIE_LEN;
                prop_assert_eq!(ev.is_some(), cut >= whole_quote);
            }

            // A DNS answer that starts like ours but is cut anywhere is Bad or NotOurs, never Good.
            #[test]
            fn truncated_dns_answers_are_never_good(cut in 0usize..80) {
                let mut q = [0u8; 300];
                let n = build_dns_query(&mut q, 0x1234, "probe.example.net", false);
                let full = dns_answer(&q[..n], 0, &["192.0.2.80".parse().unwrap()]);
                let cut = cut.min(full.len() - 1);
                prop_assert_ne!(check_dns_answer(&full[..cut], &q[..n], None), DnsVerdict::Good);
            }
        }
    }
}
