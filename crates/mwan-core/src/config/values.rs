//! Parsers for single option values. Each returns the value or a message
//! saying what was expected; the caller adds file, line, section and option.

use super::model::{DurationMs, IpNet, MaskedIp, PortRange, Proto};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// UCI booleans as OpenWrt's `config_get_bool` reads them.
pub(crate) fn boolean(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "yes" | "on" | "true" | "enabled" => Ok(true),
        "0" | "no" | "off" | "false" | "disabled" => Ok(false),
        _ => Err(format!(
            "'{value}' is not a boolean: expected 1/0 (or yes/no, on/off, true/false, enabled/disabled)"
        )),
    }
}

/// A whole number within `min..=max`.
pub(crate) fn integer(value: &str, min: u64, max: u64) -> Result<u64, String> {
    let expected = || format!("expected a whole number from {min} to {max}");
    let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
    let n: u64 = match value.parse() {
        Ok(n) => n,
        Err(_) if digits => return Err(format!("{value} is out of range: {}", expected())),
        Err(_) => return Err(format!("'{value}' is not a whole number: {}", expected())),
    };
    if n < min || n > max {
        return Err(format!("{n} is out of range: {}", expected()));
    }
    Ok(n)
}

/// A hexadecimal (`0x3F00`) or decimal 32-bit number.
pub(crate) fn hex_or_decimal(value: &str) -> Result<u32, String> {
    let parsed = match value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => value.parse(),
    };
    parsed.map_err(|_| {
        format!("'{value}' is not a 32-bit number: expected hexadecimal like 0x3F00 or decimal")
    })
}

/// Seconds with up to three decimals (`10`, `0.2`, `1.25`) to milliseconds,
/// within `min_ms..=max_ms`.
pub(crate) fn seconds(
    value: &str,
    min_ms: DurationMs,
    max_ms: DurationMs,
) -> Result<DurationMs, String> {
    let expected = || {
        format!(
            "expected seconds from {} to {}, with up to 3 decimals (e.g. 10 or 0.2)",
            show_seconds(min_ms),
            show_seconds(max_ms)
        )
    };
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty())
        || !digits(whole)
        || !digits(fraction)
        || fraction.len() > 3
        || whole.len() > 9
    {
        return Err(format!("'{value}' is not a duration: {}", expected()));
    }
    let whole_ms = if whole.is_empty() {
        0
    } else {
        whole.parse::<u64>().unwrap_or(u64::MAX)
    } * 1000;
    let fraction_ms = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<3}").parse::<u64>().unwrap_or(0)
    };
    let ms = whole_ms + fraction_ms;
    if ms < min_ms || ms > max_ms {
        return Err(format!("{value} s is out of range: {}", expected()));
    }
    Ok(ms)
}

/// Milliseconds as the shortest decimal seconds (`200` -> `0.2`).
pub(crate) fn show_seconds(ms: DurationMs) -> String {
    let millis = ms % 1000;
    if millis == 0 {
        format!("{}", ms / 1000)
    } else {
        let s = format!("{}.{millis:03}", ms / 1000);
        s.trim_end_matches('0').to_string()
    }
}

/// A finite decimal number within `min..=max` (bounds inclusive unless
/// `min_exclusive`).
pub(crate) fn decimal(value: &str, min: f64, min_exclusive: bool, max: f64) -> Result<f64, String> {
    let low = if min_exclusive { "above" } else { "from" };
    let expected = || format!("expected a number {low} {min} up to {max}");
    let n: f64 = parse_f64(value)
        .filter(|n: &f64| n.is_finite())
        .ok_or_else(|| format!("'{value}' is not a number: {}", expected()))?;
    let too_low = if min_exclusive { n <= min } else { n < min };
    if too_low || n > max {
        return Err(format!("{value} is out of range: {}", expected()));
    }
    Ok(n)
}

/// Reads a number as `str::parse::<f64>` does (`[+-]digits[.digits][e[+-]digits]`,
/// either side of the point may be empty; no `inf` or `nan`: `decimal`
/// rejects those anyway) without linking std's float parser, whose tables
/// and code are ~14 KB of the executable (docs/footprint.md). With up to
/// 19 significant digits and an exponent within ±38 (what `{}` prints for
/// any f64 from 1e-19 up, and every sane option value) the result is std's
/// bit for bit; past that it may differ in its last bits.
pub fn parse_f64(text: &str) -> Option<f64> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (number, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut exp10: i64 = match exponent {
        None => 0,
        Some(e) => {
            let (sign, digits) = match e.as_bytes().first() {
                Some(b'-') => (-1, &e[1..]),
                Some(b'+') => (1, &e[1..]),
                _ => (1, e),
            };
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Beyond ±10^6 the value is 0 or infinite either way.
            sign * digits
                .parse::<u32>()
                .map_or(1_000_000, |n| n.min(1_000_000)) as i64
        }
    };
    let mut mantissa: u64 = 0;
    for (in_fraction, b) in whole
        .bytes()
        .map(|b| (false, b))
        .chain(fraction.bytes().map(|b| (true, b)))
    {
        if !b.is_ascii_digit() {
            return None;
        }
        if mantissa < 1_000_000_000_000_000_000 {
            mantissa = mantissa * 10 + u64::from(b - b'0');
            exp10 -= i64::from(in_fraction);
        } else {
            // A 20th significant digit and later: only the magnitude counts.
            exp10 += i64::from(!in_fraction);
        }
    }
    let magnitude = exact(mantissa, exp10)
        .unwrap_or_else(|| mantissa as f64 * 10f64.powi(exp10.clamp(-400, 400) as i32));
    Some(if negative { -magnitude } else { magnitude })
}

/// `mantissa * 10^exp10`, correctly rounded, when the power of ten fits
/// in a u128 (|exp10| <= 38): an integer product cast once, or a binary
/// long division carried to 67 bits with a sticky bit for the rest, so the
/// one rounding of the cast is the rounding of the exact quotient.
fn exact(mantissa: u64, exp10: i64) -> Option<f64> {
    let power = 10u128.checked_pow(u32::try_from(exp10.unsigned_abs()).ok()?)?;
    if exp10 >= 0 || mantissa == 0 {
        return Some(u128::from(mantissa).checked_mul(power)? as f64);
    }
    let mut quotient = u128::from(mantissa) / power;
    let mut remainder = u128::from(mantissa) % power;
    let mut shift: u64 = 0;
    while quotient < 1 << 66 {
        remainder <<= 1;
        quotient <<= 1;
        if remainder >= power {
            remainder -= power;
            quotient |= 1;
        }
        shift += 1;
    }
    let rounded = (quotient | u128::from(remainder != 0)) as f64;
    // 2^-shift (shift < 200): exact, so is the product.
    Some(rounded * f64::from_bits((1023 - shift) << 52))
}

/// Byte counts with an optional decimal suffix k, M, G (1k = 1000).
pub(crate) fn bytes(value: &str) -> Result<u64, String> {
    let (number, factor) = match value.char_indices().last() {
        Some((i, 'k' | 'K')) => (&value[..i], 1_000),
        Some((i, 'm' | 'M')) => (&value[..i], 1_000_000),
        Some((i, 'g' | 'G')) => (&value[..i], 1_000_000_000),
        _ => (value, 1),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            format!("'{value}' is not a byte count: expected a positive whole number, optionally with k, M or G (1k = 1000)")
        })
}

/// mwan3 port syntax: `80`, `80,443`, `1024:65535`, `1024-65535`, and
/// blank-separated lists (`'27000:28999 3478'`).
pub(crate) fn ports(value: &str) -> Result<Vec<PortRange>, String> {
    let expected = "expected ports or ranges like 80, 80,443, 1024:65535 or '27000:28999 3478'";
    let mut out = Vec::new();
    for item in split_list(value) {
        let one = |s: &str| -> Result<u16, String> {
            s.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("'{s}' is not a port (1-65535): {expected}"))
        };
        let range = match item.split_once([':', '-']) {
            Some((a, b)) => PortRange {
                first: one(a)?,
                last: one(b)?,
            },
            None => {
                let p = one(item)?;
                PortRange { first: p, last: p }
            }
        };
        if range.first > range.last {
            return Err(format!(
                "port range '{item}' runs backwards: expected FIRST:LAST with FIRST <= LAST"
            ));
        }
        out.push(range);
    }
    if out.is_empty() {
        return Err(format!("empty port list: {expected}"));
    }
    Ok(out)
}

/// Items of a comma- and/or blank-separated list.
pub(crate) fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

/// One src_ip/dest_ip item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum AddressMatch {
    Net(IpNet),
    Masked(MaskedIp),
}

impl AddressMatch {
    pub fn is_ipv4(&self) -> bool {
        match self {
            AddressMatch::Net(n) => n.addr.is_ipv4(),
            AddressMatch::Masked(m) => m.addr.is_ipv4(),
        }
    }
}

/// `ADDR`, `ADDR/PREFIX` or `ADDR/NETMASK` (IPv4 dotted or IPv6 form). A
/// netmask that is a prefix becomes one; any other mask is kept as a mask.
pub(crate) fn address_match(item: &str) -> Result<AddressMatch, String> {
    let expected =
        "expected an address, ADDR/PREFIX or ADDR/NETMASK (e.g. 192.0.2.0/24, 2001:db8::/32)";
    let (addr_text, suffix) = match item.split_once('/') {
        Some((a, s)) => (a, Some(s)),
        None => (item, None),
    };
    let addr: IpAddr = addr_text
        .parse()
        .map_err(|_| format!("'{item}' is not an IP address or prefix: {expected}"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let Some(suffix) = suffix else {
        return Ok(AddressMatch::Net(IpNet {
            addr,
            prefix_len: max,
        }));
    };
    if let Ok(prefix_len) = suffix.parse::<u8>() {
        if prefix_len > max {
            return Err(format!(
                "prefix length {prefix_len} in '{item}' is too long: expected 0 to {max}"
            ));
        }
        return Ok(AddressMatch::Net(IpNet {
            addr: network(addr, prefix_len),
            prefix_len,
        }));
    }
    let mask: IpAddr = suffix.parse().map_err(|_| {
        format!("'{suffix}' in '{item}' is neither a prefix length nor a netmask: {expected}")
    })?;
    if mask.is_ipv4() != addr.is_ipv4() {
        return Err(format!(
            "netmask '{suffix}' in '{item}' is not of the address's family: {expected}"
        ));
    }
    let bits = to_bits(mask);
    let ones = bits.leading_ones();
    // Contiguous iff every one bit is at the top.
    if ones == 128 || bits << ones == 0 {
        let prefix_len = ones as u8;
        return Ok(AddressMatch::Net(IpNet {
            addr: network(addr, prefix_len),
            prefix_len,
        }));
    }
    Ok(AddressMatch::Masked(MaskedIp {
        addr: from_bits(to_bits(addr) & bits, addr.is_ipv4()),
        mask,
    }))
}

/// Address bits left-aligned in a u128 (IPv4 in the top 32 bits).
fn to_bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)) << 96,
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_bits(bits: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from((bits >> 96) as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(bits))
    }
}

/// The network address of `addr/prefix_len` (host bits cleared), as iptables
/// and nft use it.
fn network(addr: IpAddr, prefix_len: u8) -> IpAddr {
    let keep = match prefix_len {
        0 => 0,
        n => u128::MAX << (128 - u32::from(n.min(128))),
    };
    from_bits(to_bits(addr) & keep, addr.is_ipv4())
}

/// Host names as the resolver takes them: dot-separated labels of letters,
/// digits and '-', not starting or ending with '-'.
pub(crate) fn is_host_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && !name.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// Protocol names iptables/nft know for mwan3 rules, and their numbers.
const PROTOCOLS: &[(&str, u8)] = &[
    ("icmp", 1),
    ("igmp", 2),
    ("ipencap", 4),
    ("tcp", 6),
    ("udp", 17),
    ("ipv6", 41),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("icmpv6", 58),
    ("ipv6-icmp", 58),
    ("sctp", 132),
    ("udplite", 136),
];

/// One protocol: a name or a number 0-255.
pub(crate) fn protocol(item: &str) -> Result<Proto, String> {
    let lower = item.to_ascii_lowercase();
    match lower.as_str() {
        "all" => return Ok(Proto::All),
        "tcp" => return Ok(Proto::Tcp),
        "udp" => return Ok(Proto::Udp),
        "icmp" => return Ok(Proto::Icmp),
        _ => {}
    }
    if let Some((_, n)) = PROTOCOLS.iter().find(|(name, _)| *name == lower) {
        return Ok(Proto::Number(*n));
    }
    match lower.parse::<u8>() {
        Ok(0) => Ok(Proto::All),
        Ok(1) => Ok(Proto::Icmp),
        Ok(6) => Ok(Proto::Tcp),
        Ok(17) => Ok(Proto::Udp),
        Ok(n) => Ok(Proto::Number(n)),
        Err(_) => Err(format!(
            "unknown protocol '{item}': expected all, tcp, udp, icmp, a name from /etc/protocols ({}) or a number 0-255",
            PROTOCOLS.iter().map(|(n, _)| *n).filter(|n| !matches!(*n, "tcp" | "udp" | "icmp")).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// The name a protocol is written back as.
pub(crate) fn protocol_name(proto: Proto) -> String {
    match proto {
        Proto::All => "all".into(),
        Proto::Tcp => "tcp".into(),
        Proto::Udp => "udp".into(),
        Proto::Icmp => "icmp".into(),
        Proto::Number(n) => PROTOCOLS
            .iter()
            .find(|(_, number)| *number == n)
            .map_or_else(|| n.to_string(), |(name, _)| (*name).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_std_reads_them() {
        for text in [
            "0",
            "1",
            "-1",
            "+1",
            "0.5",
            ".5",
            "5.",
            "-.25",
            "1e3",
            "1E-3",
            "2.5e+2",
            "007",
            "0.1",
            "0.3",
            "123456.789",
            "1e22",
            "1e-22",
            "9007199254740993",
            "1e23",
            "1.5e-300",
            "1e400",
            "-1e400",
            "1e-400",
            "12345678901234567890123",
            "0.000000000000000000000001",
        ] {
            let std: f64 = text.parse().unwrap();
            let ours = parse_f64(text).unwrap_or_else(|| panic!("{text} rejected"));
            let close = (ours - std).abs() <= std.abs() * 4.0 * f64::EPSILON;
            assert!(ours == std || close, "{text}: {ours} against std's {std}");
        }
        for text in [
            "", ".", "-", "+", "e3", "1e", "1e+", "1.2.3", "1_0", " 1", "inf", "NaN", "--1", "0x10",
        ] {
            assert_eq!(parse_f64(text), None, "{text:?} accepted");
            assert!(
                text.parse::<f64>().map_or(true, |n| !n.is_finite()),
                "{text:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn short_decimals_are_std_bit_for_bit(
            negative: bool,
            whole in 0u64..10_000_000,
            fraction in 0u64..100_000_000,
            places in 0usize..9,
            exp in proptest::option::of(-13i32..14),
        ) {
            let fraction = format!("{fraction:08}");
            let mut text = format!("{}{whole}", if negative { "-" } else { "" });
            if places > 0 {
                text = format!("{text}.{}", &fraction[..places]);
            }
            if let Some(e) = exp {
                text = format!("{text}e{e}");
            }
            let std: f64 = text.parse().unwrap();
            proptest::prop_assert_eq!(parse_f64(&text).map(f64::to_bits), Some(std.to_bits()), "{}", text);
        }

        #[test]
        fn printed_floats_read_back_exactly(bits: u64) {
            let n = f64::from_bits(bits);
            if n == 0.0 || (1e-19..1e38).contains(&n.abs()) {
                let text = format!("{n}");
                proptest::prop_assert_eq!(parse_f64(&text).map(f64::to_bits), Some(n.to_bits()), "{}", text);
            }
        }
    }

    #[test]
    fn durations() {
        assert_eq!(seconds("10", 1, 3_600_000), Ok(10_000));
        assert_eq!(seconds("0.2", 1, 3_600_000), Ok(200));
        assert_eq!(seconds(".5", 1, 3_600_000), Ok(500));
        assert_eq!(seconds("1.25", 1, 3_600_000), Ok(1250));
        assert!(seconds("0.0001", 1, 3_600_000).is_err());
        assert!(seconds("0", 1, 3_600_000).is_err());
        assert!(seconds("1s", 1, 3_600_000).is_err());
        assert!(seconds("", 1, 3_600_000).is_err());
        assert!(seconds(".", 1, 3_600_000).is_err());
        assert_eq!(show_seconds(200), "0.2");
        assert_eq!(show_seconds(1250), "1.25");
        assert_eq!(show_seconds(4000), "4");
    }

    #[test]
    fn integers() {
        assert_eq!(integer("7", 1, 10), Ok(7));
        assert!(integer("99999999999999999999", 1, 10)
            .unwrap_err()
            .contains("out of range"));
        assert!(integer("11", 1, 10).unwrap_err().contains("out of range"));
        assert!(integer("-1", 1, 10)
            .unwrap_err()
            .contains("not a whole number"));
        assert!(integer("", 1, 10)
            .unwrap_err()
            .contains("not a whole number"));
    }

    #[test]
    fn port_lists() {
        let r = |a, b| PortRange { first: a, last: b };
        assert_eq!(ports("80,443"), Ok(vec![r(80, 80), r(443, 443)]));
        assert_eq!(ports("1024:65535"), Ok(vec![r(1024, 65535)]));
        assert_eq!(
            ports("27000:28999 3478"),
            Ok(vec![r(27000, 28999), r(3478, 3478)])
        );
        assert_eq!(ports("5000-5010"), Ok(vec![r(5000, 5010)]));
        assert!(ports("0").is_err());
        assert!(ports("70000").is_err());
        assert!(ports("90:80").is_err());
        assert!(ports("http").is_err());
    }

    #[test]
    fn addresses_and_masks() {
        let net = |s: &str, p| {
            AddressMatch::Net(IpNet {
                addr: s.parse().unwrap(),
                prefix_len: p,
            })
        };
        assert_eq!(address_match("0.0.0.0/0"), Ok(net("0.0.0.0", 0)));
        assert_eq!(address_match("192.0.2.7/24"), Ok(net("192.0.2.0", 24)));
        assert_eq!(address_match("192.0.2.7"), Ok(net("192.0.2.7", 32)));
        assert_eq!(
            address_match("192.0.2.0/255.255.255.0"),
            Ok(net("192.0.2.0", 24))
        );
        assert_eq!(address_match("::/0"), Ok(net("::", 0)));
        assert_eq!(address_match("2001:db8::1/32"), Ok(net("2001:db8::", 32)));
        assert_eq!(
            address_match("0.0.0.1/0.0.0.1"),
            Ok(AddressMatch::Masked(MaskedIp {
                addr: "0.0.0.1".parse().unwrap(),
                mask: "0.0.0.1".parse().unwrap()
            }))
        );
        assert!(address_match("192.0.2.0/33").is_err());
        assert!(address_match("example.com").is_err());
        assert!(address_match("192.0.2.0/ffff::").is_err());
    }

    #[test]
    fn protocols_and_names() {
        assert_eq!(protocol("TCP"), Ok(Proto::Tcp));
        assert_eq!(protocol("gre"), Ok(Proto::Number(47)));
        assert_eq!(protocol("17"), Ok(Proto::Udp));
        assert!(protocol("tcpx").is_err());
        assert!(is_host_name("www.baidu.com"));
        assert!(!is_host_name("1.2.3"));
        assert!(!is_host_name("-bad.com"));
    }
}
