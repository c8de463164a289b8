//! C-compatible number and address parsing/printing, so rvsadm accepts and
//! prints exactly what ipvsadm does: `strtol`-style integers, `atoi`,
//! glibc `inet_aton` (shorthand forms, octal and hex parts, trailing
//! whitespace), `inet_pton` for IPv6 and glibc's `inet_ntop` for IPv6.

use std::net::{Ipv4Addr, Ipv6Addr};

/// `strtol(s, &end, 10)` that must consume the whole string: optional
/// leading whitespace, optional sign, at least one digit, nothing after.
/// `None` on any leftover character or on overflow of a 64-bit `long`.
pub fn strtol_full(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && is_c_space(b[i]) {
        i += 1;
    }
    let mut negative = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        negative = b[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut value: i128 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        value = value * 10 + i128::from(b[i] - b'0');
        if value > i128::from(i64::MAX) + 1 {
            value = i128::from(i64::MAX) + 2; // saturate: ERANGE
        }
        i += 1;
    }
    if i == start || i != b.len() {
        return None;
    }
    let value = if negative { -value } else { value };
    i64::try_from(value).ok()
}

/// ipvsadm's `string_to_number`: a whole-string decimal within `[min, max]`.
pub fn number_in_range(s: &str, min: i64, max: i64) -> Option<i64> {
    strtol_full(s).filter(|n| (min..=max).contains(n))
}

/// C `atoi`: leading whitespace, optional sign, digits up to the first
/// non-digit; 0 when there are none. Saturates instead of overflowing.
pub fn atoi(s: &str) -> i64 {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && is_c_space(b[i]) {
        i += 1;
    }
    let mut negative = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        negative = b[i] == b'-';
        i += 1;
    }
    let mut value: i64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        value = value
            .saturating_mul(10)
            .saturating_add(i64::from(b[i] - b'0'));
        i += 1;
    }
    if negative {
        -value
    } else {
        value
    }
}

/// `isspace` in the C locale.
pub fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// glibc `inet_aton`: `a.b.c.d`, `a.b.c` (c is 16 bits), `a.b` (b is 24
/// bits) or `a` (32 bits); each part decimal, octal (`0` prefix) or hex
/// (`0x`); anything after a whitespace character is ignored.
pub fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    const MAX_LAST: [u64; 4] = [0xffff_ffff, 0x00ff_ffff, 0xffff, 0xff];
    let b = s.as_bytes();
    let mut i = 0;
    let mut parts: Vec<u64> = Vec::with_capacity(4);
    let last;
    loop {
        if i >= b.len() || !b[i].is_ascii_digit() {
            return None;
        }
        let (value, used) = strtoul_base0(&b[i..])?;
        i += used;
        if value > 0xffff_ffff {
            return None;
        }
        if i < b.len() && b[i] == b'.' {
            if parts.len() > 2 || value > 0xff {
                return None;
            }
            parts.push(value);
            i += 1;
        } else {
            last = value;
            break;
        }
    }
    if i < b.len() && !is_c_space(b[i]) {
        return None;
    }
    if last > MAX_LAST[parts.len()] {
        return None;
    }
    let mut word: u32 = 0;
    for (n, part) in parts.iter().enumerate() {
        word |= (*part as u32) << (24 - 8 * n);
    }
    Some(Ipv4Addr::from(word | last as u32))
}

/// `strtoul(s, &end, 0)` on a string that starts with a digit: returns the
/// value (saturated on overflow, then rejected by the caller's range check)
/// and the number of bytes used.
fn strtoul_base0(b: &[u8]) -> Option<(u64, usize)> {
    let (radix, mut i) =
        if b.len() >= 3 && b[0] == b'0' && (b[1] | 0x20) == b'x' && b[2].is_ascii_hexdigit() {
            (16u32, 2usize)
        } else if b[0] == b'0' {
            (8, 0)
        } else {
            (10, 0)
        };
    let mut value: u64 = 0;
    let start = i;
    while i < b.len() {
        let Some(d) = (b[i] as char).to_digit(radix) else {
            break;
        };
        value = value
            .saturating_mul(u64::from(radix))
            .saturating_add(u64::from(d));
        i += 1;
    }
    if i == start {
        return None;
    }
    Some((value, i))
}

/// `inet_pton(AF_INET6, ...)`.
pub fn inet_pton6(s: &str) -> Option<Ipv6Addr> {
    s.parse::<Ipv6Addr>().ok()
}

/// glibc `inet_ntop(AF_INET6, ...)`: lowercase hex, the first longest run
/// of two or more zero groups compressed, and `::a.b.c.d` / `::ffff:a.b.c.d`
/// for IPv4-compatible and IPv4-mapped addresses.
pub fn inet_ntop6(addr: &Ipv6Addr) -> String {
    let words = addr.segments();
    let mut best: Option<(usize, usize)> = None;
    let mut cur: Option<(usize, usize)> = None;
    for (i, w) in words.iter().enumerate() {
        if *w == 0 {
            cur = Some(match cur {
                Some((base, len)) => (base, len + 1),
                None => (i, 1),
            });
        } else if let Some(c) = cur.take() {
            if best.is_none_or(|b| c.1 > b.1) {
                best = Some(c);
            }
        }
    }
    if let Some(c) = cur {
        if best.is_none_or(|b| c.1 > b.1) {
            best = Some(c);
        }
    }
    let best = best.filter(|b| b.1 >= 2);
    let mut out = String::new();
    let mut i = 0;
    while i < 8 {
        if let Some((base, len)) = best {
            if i == base {
                out.push(':');
                i += len;
                if i == 8 {
                    out.push(':');
                }
                continue;
            }
        }
        if i != 0 {
            out.push(':');
        }
        let embedded = i == 6
            && best.is_some_and(|(base, len)| {
                base == 0 && (len == 6 || (len == 5 && words[5] == 0xffff))
            });
        if embedded {
            let o = addr.octets();
            out.push_str(&format!("{}.{}.{}.{}", o[12], o[13], o[14], o[15]));
            break;
        }
        out.push_str(&format!("{:x}", words[i]));
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aton_forms() {
        assert_eq!(
            inet_aton("198.51.25615"),
            Some(Ipv4Addr::new(198, 51, 100, 15))
        );
        assert_eq!(
            inet_aton("198.51.100.020"),
            Some(Ipv4Addr::new(198, 51, 100, 16))
        );
        assert_eq!(inet_aton("0x7f.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(inet_aton("1"), Some(Ipv4Addr::new(0, 0, 0, 1)));
        assert_eq!(inet_aton("1.2.3.4 junk"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(inet_aton("1.2.3.256"), None);
        assert_eq!(inet_aton("1.2.3.4.5"), None);
        assert_eq!(inet_aton("1.2.3."), None);
        assert_eq!(inet_aton("08"), None);
        assert_eq!(inet_aton("0x"), None);
        assert_eq!(inet_aton("4294967296"), None);
        assert_eq!(inet_aton("4294967295"), Some(Ipv4Addr::BROADCAST));
        assert_eq!(inet_aton(""), None);
        assert_eq!(inet_aton("not..an"), None);
    }

    #[test]
    fn strtol_rules() {
        assert_eq!(strtol_full(" +12"), Some(12));
        assert_eq!(strtol_full("-1"), Some(-1));
        assert_eq!(strtol_full("12 "), None);
        assert_eq!(strtol_full(""), None);
        assert_eq!(strtol_full("99999999999999999999"), None);
        assert_eq!(atoi("64abc"), 64);
        assert_eq!(atoi("x"), 0);
    }

    #[test]
    fn ntop6_like_glibc() {
        let p = |s: &str| inet_ntop6(&s.parse().expect("v6"));
        assert_eq!(p("2001:db8::80"), "2001:db8::80");
        assert_eq!(p("::"), "::");
        assert_eq!(p("::1"), "::1");
        assert_eq!(p("::ffff:1.2.3.4"), "::ffff:1.2.3.4");
        assert_eq!(p("::102:304"), "::1.2.3.4");
        assert_eq!(p("1:0:1:0:0:1:0:0"), "1:0:1::1:0:0");
        assert_eq!(p("1:0:0:1:0:0:1:1"), "1::1:0:0:1:1");
        assert_eq!(p("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");
        assert_eq!(p("fe80::"), "fe80::");
    }
}
