//! Command line (the contract with mwand, documented in docs/tracker.md).
//!
//! A small hand parser instead of clap: the tracker ships once per router and
//! clap's derive + help machinery costs more flash than the whole prober
//! (figures in docs/tracker.md). Every error names the option, what was
//! given and what was expected; `main` turns it into exit status 2.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

/// How probes are made; several mwan3 `track_method` names map to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Icmp,
    Arp,
    Tcp,
    Udp,
    Dns,
    Http,
}

impl Method {
    fn parse(s: &str) -> Option<Method> {
        Some(match s {
            "ping" | "nping-icmp" | "icmp" => Method::Icmp,
            "arping" | "nping-arp" | "arp" => Method::Arp,
            "nping-tcp" | "tcp" => Method::Tcp,
            "nping-udp" | "udp" => Method::Udp,
            "nslookup" | "dns" => Method::Dns,
            "httping" | "http" => Method::Http,
            _ => return None,
        })
    }

    pub fn default_port(self) -> u16 {
        match self {
            Method::Tcp | Method::Http => 80,
            Method::Udp => 40125, // nping's default UDP port
            Method::Dns => 53,
            Method::Icmp | Method::Arp => 0,
        }
    }

    pub fn wire(self) -> mwan_proto::track::ProbeMethod {
        use mwan_proto::track::ProbeMethod as P;
        match self {
            Method::Icmp => P::IcmpEcho,
            Method::Arp => P::Arp,
            Method::Tcp => P::TcpConnect,
            Method::Udp => P::Udp,
            Method::Dns => P::Dns,
            Method::Http => P::Http,
        }
    }
}

/// Probe budget for metered links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    ProbesPerMinute(u32),
    BytesPerDay(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// As written on the command line; reported in every sample.
    pub text: String,
    /// `None` for the ARP target `gateway` until it is learnt, and for a
    /// host name until [`resolve_names`] has run.
    pub addr: Option<IpAddr>,
    /// The host name to resolve, when the target named one (mwan3 configs
    /// use `track_ip 'google.com'`).
    pub name: Option<String>,
    pub port: u16,
    /// HTTP request path (HTTP only).
    pub path: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    pub interface: String,
    pub device: String,
    pub method: Method,
    pub targets: Vec<Target>,
    pub count: u32,
    pub size: usize,
    pub max_ttl: u32,
    pub timeout_ms: u64,
    pub interval_ms: u64,
    pub mark: Option<u32>,
    pub source4: Option<Ipv4Addr>,
    pub source6: Option<Ipv6Addr>,
    pub gateway: Option<IpAddr>,
    pub dns_name: String,
    pub dns_expect: Option<IpAddr>,
    pub budget: Option<Budget>,
    pub controller: Option<PathBuf>,
    pub stdout: bool,
    pub backlog: usize,
    /// uid and gid to run as once the sockets are open (`--user UID:GID`):
    /// procd starts trackers as root, and its own `user` would drop every
    /// capability (it applies `capabilities` only through ujail).
    pub user: Option<(u32, u32)>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ArgsError {
    Help,
    Version,
    Invalid(String),
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgsError::Help => f.write_str(USAGE),
            ArgsError::Version => write!(f, "mwan-track {}", env!("CARGO_PKG_VERSION")),
            ArgsError::Invalid(m) => write!(f, "{m}\n(try --help)"),
        }
    }
}

pub const USAGE: &str = "\
usage: mwan-track --interface NAME --device DEV --method METHOD --target T [--target T]...
                  [--count N] [--size BYTES] [--max-ttl N] [--timeout DUR] [--interval DUR]
                  [--mark MARK] [--source ADDR]... [--gateway ADDR]
                  [--dns-name NAME] [--dns-expect ADDR]
                  [--budget-ppm N | --budget-bytes-day N]
                  [--controller PATH] [--stdout] [--backlog N] [--user UID:GID]

METHOD: ping nping-icmp arping nping-arp nping-tcp nping-udp nslookup httping
T: an IP address or host name (resolved once at start); HOST:PORT or [V6]:PORT
   for nping-tcp/nping-udp/nslookup; http://HOST[:PORT]/PATH for httping;
   'gateway' for arping
DUR: milliseconds (500), or with a unit (500ms, 2s, 0.2s)
See docs/tracker.md.";

fn invalid(opt: &str, got: &str, expected: &str) -> ArgsError {
    ArgsError::Invalid(format!("{opt}: expected {expected}, got '{got}'"))
}

/// Milliseconds from `500`, `500ms`, `2s` or `0.2s`, rounded to the
/// nearest (half up). Decimal digits, not floats: std's float parser is
/// ~14 KB of the executable (docs/footprint.md).
pub fn parse_duration_ms(s: &str) -> Option<u64> {
    let (num, places) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 3)
    } else {
        (s, 0)
    };
    let (whole, fraction) = num.split_once('.').unwrap_or((num, ""));
    if (whole.is_empty() && fraction.is_empty())
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // The whole part and `places` fraction digits make whole milliseconds.
    let digits = whole
        .bytes()
        .chain(fraction.bytes().chain(std::iter::repeat(b'0')).take(places));
    let mut ms: u64 = 0;
    for b in digits {
        ms = ms.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    if fraction.as_bytes().get(places).is_some_and(|&b| b >= b'5') {
        ms += 1;
    }
    (ms <= 86_400_000).then_some(ms)
}

fn parse_num<T: std::str::FromStr + PartialOrd + fmt::Display + Copy>(
    opt: &str,
    s: &str,
    lo: T,
    hi: T,
) -> Result<T, ArgsError> {
    match s.parse::<T>() {
        Ok(v) if v >= lo && v <= hi => Ok(v),
        _ => Err(invalid(opt, s, &format!("a whole number {lo}..={hi}"))),
    }
}

fn parse_mark(s: &str) -> Option<u32> {
    // `0x100` or `0x100/0xff00` (the mask part is the controller's business).
    let s = s.split('/').next()?;
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// A DNS host name as RFC 1123 allows it (letters, digits, hyphens, dots).
fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.parse::<IpAddr>().is_err()
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// An address, or a host name to resolve later.
#[derive(Debug, Clone, PartialEq)]
enum Host {
    Addr(IpAddr),
    Name(String),
}

/// `HOST` or `HOST:PORT` where HOST is an address or a host name, or
/// `[V6]:PORT`.
fn parse_host_or_name(s: &str, default_port: u16) -> Option<(Host, u16)> {
    if let Some((ip, port)) = parse_host_port(s, default_port) {
        return Some((Host::Addr(ip), port));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (s, default_port),
    };
    is_host_name(host).then(|| (Host::Name(host.to_string()), port))
}

/// `ADDR`, `ADDR:PORT` or `[V6]:PORT` (a bare v6 address has no port).
fn parse_host_port(s: &str, default_port: u16) -> Option<(IpAddr, u16)> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some((ip, default_port));
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (host, tail) = rest.split_once(']')?;
        let ip: Ipv6Addr = host.parse().ok()?;
        let port = match tail {
            "" => default_port,
            t => t.strip_prefix(':')?.parse().ok()?,
        };
        return Some((IpAddr::V6(ip), port));
    }
    let (host, port) = s.rsplit_once(':')?;
    Some((IpAddr::V4(host.parse().ok()?), port.parse().ok()?))
}

fn parse_target(method: Method, s: &str) -> Result<Target, ArgsError> {
    let opt = "--target";
    let mut path = String::from("/");
    let (host, port) = match method {
        Method::Icmp => match parse_host_or_name(s, 0) {
            Some((host, 0)) => (Some(host), 0),
            _ => return Err(invalid(opt, s, "an IP address or a host name")),
        },
        Method::Arp if s == "gateway" => (None, 0),
        Method::Arp => match s.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => (Some(Host::Addr(IpAddr::V4(ip))), 0),
            _ => {
                return Err(invalid(
                    opt,
                    s,
                    "an IPv4 address or 'gateway' (ARP is IPv4 only)",
                ))
            }
        },
        Method::Http => {
            if s.starts_with("https://") {
                return Err(ArgsError::Invalid(format!(
                    "{opt}: '{s}': https is not supported, TLS is not built into mwan-track; use an http:// target or another method"
                )));
            }
            let rest = s.strip_prefix("http://").unwrap_or(s);
            let (hostport, p) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            path = p.to_string();
            let (host, port) = parse_host_or_name(hostport, 80)
                .ok_or_else(|| invalid(opt, s, "http://HOST[:PORT][/PATH]"))?;
            (Some(host), port)
        }
        Method::Tcp | Method::Udp | Method::Dns => {
            let (host, port) = parse_host_or_name(s, method.default_port())
                .ok_or_else(|| invalid(opt, s, "HOST, HOST:PORT or [V6ADDR]:PORT"))?;
            (Some(host), port)
        }
    };
    if port == 0 && !matches!(method, Method::Icmp | Method::Arp) {
        return Err(invalid(opt, s, "a port 1..=65535"));
    }
    let (addr, name) = match host {
        Some(Host::Addr(ip)) => (Some(ip), None),
        Some(Host::Name(n)) => (None, Some(n)),
        None => (None, None),
    };
    Ok(Target {
        text: s.to_string(),
        addr,
        name,
        port,
        path,
    })
}

/// Resolves host-name targets once, at start, with `resolve` (getaddrinfo
/// in the binary). A tracker is its own process, so a slow resolver delays
/// only this WAN's first probe, never the controller. The address family
/// follows the WAN's source addresses when only one family is known.
/// Names that do not resolve are dropped and returned, so the caller can
/// say so; the tracker re-resolves only when restarted (docs/tracker.md).
pub fn resolve_names(a: &mut Args, mut resolve: impl FnMut(&str) -> Vec<IpAddr>) -> Vec<String> {
    let want_v6 = match (a.source4, a.source6) {
        (None, Some(_)) => Some(true),
        (Some(_), None) => Some(false),
        _ => None,
    };
    let mut unresolved = Vec::new();
    a.targets.retain_mut(|t| {
        let Some(name) = &t.name else { return true };
        let addrs = resolve(name);
        let pick = addrs
            .iter()
            .find(|ip| want_v6.is_none_or(|v6| ip.is_ipv6() == v6))
            .copied();
        match pick {
            Some(ip) => {
                t.addr = Some(ip);
                true
            }
            None => {
                unresolved.push(t.text.clone());
                false
            }
        }
    });
    unresolved
}

/// Parses the arguments after the program name.
pub fn parse<I: IntoIterator<Item = String>>(argv: I) -> Result<Args, ArgsError> {
    let mut interface = None;
    let mut device = None;
    let mut method = None;
    let mut raw_targets: Vec<String> = Vec::new();
    let mut a = Args {
        interface: String::new(),
        device: String::new(),
        method: Method::Icmp,
        targets: Vec::new(),
        count: 1,
        size: 56,
        max_ttl: 60,
        timeout_ms: 2000,
        interval_ms: 5000,
        mark: None,
        source4: None,
        source6: None,
        gateway: None,
        // mwan3 runs `nslookup www.google.com TARGET`.
        dns_name: String::from("www.google.com"),
        dns_expect: None,
        budget: None,
        controller: None,
        stdout: false,
        backlog: 2048,
        user: None,
    };
    let mut it = argv.into_iter();
    while let Some(arg) = it.next() {
        let (opt, inline) = match arg.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        match opt.as_str() {
            "-h" | "--help" => return Err(ArgsError::Help),
            "-V" | "--version" => return Err(ArgsError::Version),
            "--stdout" => {
                a.stdout = true;
                continue;
            }
            _ => {}
        }
        let known = [
            "--interface",
            "--device",
            "--method",
            "--target",
            "--count",
            "--size",
            "--max-ttl",
            "--timeout",
            "--interval",
            "--mark",
            "--source",
            "--gateway",
            "--dns-name",
            "--dns-expect",
            "--budget-ppm",
            "--budget-bytes-day",
            "--controller",
            "--backlog",
            "--user",
        ];
        if !known.contains(&opt.as_str()) {
            return Err(ArgsError::Invalid(format!("unknown option '{opt}'")));
        }
        let val = match inline.or_else(|| it.next()) {
            Some(v) => v,
            None => return Err(ArgsError::Invalid(format!("{opt}: missing value"))),
        };
        let v = val.as_str();
        match opt.as_str() {
            "--interface" => interface = Some(val.clone()),
            "--device" => {
                if v.is_empty() || v.len() > 15 || v.contains('/') {
                    return Err(invalid(&opt, v, "a kernel device name of 1..=15 characters"));
                }
                device = Some(val.clone())
            }
            "--method" => {
                method = Some(Method::parse(v).ok_or_else(|| {
                    invalid(&opt, v, "one of ping, nping-icmp, arping, nping-arp, nping-tcp, nping-udp, nslookup, httping")
                })?)
            }
            "--target" => raw_targets.push(val.clone()),
            "--count" => a.count = parse_num(&opt, v, 1u32, 100)?,
            "--size" => a.size = parse_num(&opt, v, 0usize, 65_000)?,
            "--max-ttl" => a.max_ttl = parse_num(&opt, v, 1u32, 255)?,
            "--timeout" | "--interval" => {
                let ms = parse_duration_ms(v)
                    .filter(|&ms| ms >= 10)
                    .ok_or_else(|| invalid(&opt, v, "a duration of at least 10ms (500, 500ms, 2s, 0.2s)"))?;
                if opt == "--timeout" {
                    a.timeout_ms = ms
                } else {
                    a.interval_ms = ms
                }
            }
            "--mark" => a.mark = Some(parse_mark(v).ok_or_else(|| invalid(&opt, v, "a fwmark such as 0x3e00"))?),
            "--source" => match v.parse::<IpAddr>() {
                Ok(IpAddr::V4(ip)) => a.source4 = Some(ip),
                Ok(IpAddr::V6(ip)) => a.source6 = Some(ip),
                Err(_) => return Err(invalid(&opt, v, "an IPv4 or IPv6 address")),
            },
            "--gateway" => a.gateway = Some(v.parse().map_err(|_| invalid(&opt, v, "an IP address"))?),
            "--dns-name" => {
                if v.is_empty() || v.len() > 253 || v.split('.').any(|l| l.is_empty() || l.len() > 63) {
                    return Err(invalid(&opt, v, "a DNS name such as www.example.com"));
                }
                a.dns_name = v.trim_end_matches('.').to_string()
            }
            "--dns-expect" => a.dns_expect = Some(v.parse().map_err(|_| invalid(&opt, v, "an IP address"))?),
            "--budget-ppm" => a.budget = Some(Budget::ProbesPerMinute(parse_num(&opt, v, 1u32, 60_000)?)),
            "--budget-bytes-day" => a.budget = Some(Budget::BytesPerDay(parse_num(&opt, v, 1000u64, u64::MAX)?)),
            "--controller" => a.controller = Some(PathBuf::from(v)),
            "--backlog" => a.backlog = parse_num(&opt, v, 16usize, 1 << 20)?,
            "--user" => {
                a.user = Some(
                    v.split_once(':')
                        .and_then(|(u, g)| Some((u.parse().ok()?, g.parse().ok()?)))
                        .ok_or_else(|| invalid(&opt, v, "numeric UID:GID such as 1000:1000"))?,
                )
            }
            _ => unreachable!("option list checked above"),
        }
    }
    a.interface = interface.ok_or_else(|| {
        ArgsError::Invalid("--interface is required (the mwan interface name)".into())
    })?;
    a.device = device.ok_or_else(|| {
        ArgsError::Invalid("--device is required (the WAN's kernel device)".into())
    })?;
    a.method = method.ok_or_else(|| ArgsError::Invalid("--method is required".into()))?;
    if raw_targets.is_empty() {
        return Err(ArgsError::Invalid(
            "at least one --target is required".into(),
        ));
    }
    if raw_targets.len() > 64 {
        return Err(ArgsError::Invalid(format!(
            "at most 64 targets, got {}",
            raw_targets.len()
        )));
    }
    for t in &raw_targets {
        a.targets.push(parse_target(a.method, t)?);
    }
    if a.controller.is_none() && !a.stdout {
        return Err(ArgsError::Invalid(
            "nothing to report to: give --controller PATH and/or --stdout".into(),
        ));
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Args, ArgsError> {
        parse(s.split_whitespace().map(String::from))
    }

    const BASE: &str = "--interface wan --device eth1 --stdout";

    #[test]
    fn user_is_numeric_uid_and_gid() {
        let a = |u: &str| {
            p(&format!(
                "{BASE} --method ping --target 192.0.2.1 --user {u}"
            ))
        };
        assert_eq!(a("3999:3998").unwrap().user, Some((3999, 3998)));
        for bad in ["mwan", "3999", "3999:", ":1", "-1:1"] {
            assert!(a(bad).is_err(), "--user {bad} accepted");
        }
    }

    #[test]
    fn host_names_are_kept_for_resolution_and_resolved_by_family() {
        let mut a = p(&format!(
            "{BASE} --method ping --target google.com --target 192.0.2.1 --target nope.invalid --source 198.51.100.2"
        ))
        .unwrap();
        assert_eq!(a.targets[0].name.as_deref(), Some("google.com"));
        assert_eq!(a.targets[0].addr, None);
        let dropped = resolve_names(&mut a, |name| match name {
            "google.com" => vec!["2001:db8::5".parse().unwrap(), "192.0.2.5".parse().unwrap()],
            _ => vec![],
        });
        assert_eq!(dropped, vec!["nope.invalid".to_string()]);
        let addrs: Vec<_> = a
            .targets
            .iter()
            .map(|t| t.addr.unwrap().to_string())
            .collect();
        assert_eq!(
            addrs,
            ["192.0.2.5", "192.0.2.1"],
            "v4 source picks the v4 answer"
        );
    }

    #[test]
    fn host_names_with_ports_and_urls() {
        let a = p(&format!(
            "{BASE} --method nping-tcp --target example.net:443"
        ))
        .unwrap();
        assert_eq!(
            (a.targets[0].name.as_deref(), a.targets[0].port),
            (Some("example.net"), 443)
        );
        let a = p(&format!(
            "{BASE} --method httping --target http://example.net:8080/x"
        ))
        .unwrap();
        assert_eq!(a.targets[0].name.as_deref(), Some("example.net"));
        assert_eq!(
            (a.targets[0].port, a.targets[0].path.as_str()),
            (8080, "/x")
        );
        for bad in ["-bad.example", "a..b", "exa mple", "x_y.example"] {
            assert!(
                p(&format!("{BASE} --method ping --target {bad}")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("500"), Some(500));
        assert_eq!(parse_duration_ms("500ms"), Some(500));
        assert_eq!(parse_duration_ms("2s"), Some(2000));
        assert_eq!(parse_duration_ms("0.2s"), Some(200));
        assert_eq!(parse_duration_ms("-1"), None);
        assert_eq!(parse_duration_ms("s"), None);
        assert_eq!(parse_duration_ms("1e3"), None);
        assert_eq!(parse_duration_ms(".5"), Some(1));
        assert_eq!(parse_duration_ms("1.2344s"), Some(1234));
        assert_eq!(parse_duration_ms("1.2346s"), Some(1235));
        assert_eq!(parse_duration_ms("86400s"), Some(86_400_000));
        assert_eq!(parse_duration_ms("86400.001s"), None);
        assert_eq!(parse_duration_ms("."), None);
        assert_eq!(parse_duration_ms("1.2.3"), None);
        assert_eq!(parse_duration_ms("99999999999999999999999"), None);
    }

    #[test]
    fn full_icmp_line() {
        let a = p(&format!(
            "{BASE} --method ping --target 192.0.2.1 --target=2001:db8::1 --count 2 --interval 0.5s --timeout 800 --mark 0x3e00 --controller /run/mwan/track.sock"
        ))
        .unwrap();
        assert_eq!(a.method, Method::Icmp);
        assert_eq!(a.targets.len(), 2);
        assert_eq!(a.targets[1].addr, Some("2001:db8::1".parse().unwrap()));
        assert_eq!((a.count, a.interval_ms, a.timeout_ms), (2, 500, 800));
        assert_eq!(a.mark, Some(0x3e00));
    }

    #[test]
    fn targets_per_method() {
        let a = p(&format!("{BASE} --method nping-tcp --target 192.0.2.1:443 --target [2001:db8::1]:22 --target 192.0.2.2")).unwrap();
        assert_eq!(
            a.targets.iter().map(|t| t.port).collect::<Vec<_>>(),
            vec![443, 22, 80]
        );
        let a = p(&format!(
            "{BASE} --method httping --target http://192.0.2.1:8080/health"
        ))
        .unwrap();
        assert_eq!(
            (a.targets[0].port, a.targets[0].path.as_str()),
            (8080, "/health")
        );
        let a = p(&format!("{BASE} --method arping --target gateway")).unwrap();
        assert_eq!(a.targets[0].addr, None);
    }

    #[test]
    fn errors_name_the_option() {
        let e = p(&format!(
            "{BASE} --method httping --target https://192.0.2.1/"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("TLS is not built"), "{e}");
        let e = p(&format!(
            "{BASE} --method ping --target 192.0.2.1 --count x"
        ))
        .unwrap_err();
        assert!(e.to_string().starts_with("--count: expected"), "{e}");
        let e = p(&format!("{BASE} --method ping --target host_.example")).unwrap_err();
        assert!(e.to_string().contains("IP address or a host name"), "{e}");
        let e = p(&format!("{BASE} --method arping --target 2001:db8::1")).unwrap_err();
        assert!(e.to_string().contains("IPv4"), "{e}");
        assert!(matches!(
            p(&format!("{BASE} --method ping")),
            Err(ArgsError::Invalid(_))
        ));
        assert!(matches!(
            p("--interface wan --device eth1 --method ping --target 192.0.2.1"),
            Err(ArgsError::Invalid(_))
        ));
        assert!(matches!(
            p(&format!("{BASE} --bogus 1")),
            Err(ArgsError::Invalid(_))
        ));
        assert!(matches!(
            p(&format!("{BASE} --method smoke --target 192.0.2.1")),
            Err(ArgsError::Invalid(_))
        ));
        assert_eq!(p("--help"), Err(ArgsError::Help));
    }
}
