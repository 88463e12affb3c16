//! Number parsing that accepts exactly what Redis accepts, or less.
//!
//! Effects are validated before any is applied, so a value this module
//! accepts must never be one Redis then rejects half-way through an entry.

/// Redis' `string2ll`: optional `-`, digits, no `+`, no leading zeros, no `-0`.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits {
        [] => return None,
        [b'0'] => return (!neg).then_some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    let magnitude = parse_u64_digits(digits)?;
    if neg {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Plain decimal digits (leading zeros allowed), as in stream IDs.
pub fn parse_u64_digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        acc.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Redis reads long doubles into a buffer of this many bytes
/// (MAX_LONG_DOUBLE_CHARS), its terminator included: the longest float text
/// it takes is one byte shorter.
pub const MAX_FLOAT_CHARS: usize = 5 * 1024 - 1;

/// A float as Redis' `string2ld` reads it, through an `f64`.
///
/// Redis computes in `long double`, whose range is wider than `f64`'s, so an
/// `f64` that is finite here is finite there. Values `f64` cannot hold
/// (hex floats, magnitudes past 1e308) are refused: stricter, never looser.
/// `inf` is returned as is (callers decide); `nan` is refused.
pub fn parse_float(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s.len() > MAX_FLOAT_CHARS || s[0].is_ascii_whitespace() {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    let value: f64 = text.parse().ok()?;
    if value.is_nan() || (value == 0.0 && underflows(text)) {
        return None;
    }
    Some(value)
}

/// A sorted-set score as Redis' `string2d` reads it: like [`parse_float`],
/// but a finite number too large for a double is refused rather than
/// taken as infinite (only `inf` itself is infinite).
pub fn parse_score(s: &[u8]) -> Option<f64> {
    let value = parse_float(s)?;
    match value.is_infinite() && !s.iter().any(|b| b.eq_ignore_ascii_case(&b'i')) {
        true => None,
        false => Some(value),
    }
}

/// A non-zero mantissa that parsed to zero: strtold may report ERANGE on it.
fn underflows(text: &str) -> bool {
    let mantissa = text.split(['e', 'E']).next().unwrap_or("");
    mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b))
}

/// `n` in decimal at the end of `buf`, without going through `fmt` (IDs
/// and counters are formatted per entry).
pub fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    // Two digits per division: a millisecond ID part has 13.
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + n as u8;
    }
    &buf[i..]
}

/// "00" to "99", two bytes each.
const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// `n` in decimal (an i64 takes at most 20 bytes, sign included).
pub fn format_i64(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let len = format_u64(n.unsigned_abs(), buf).len();
    let start = buf.len() - len;
    if n >= 0 {
        return &buf[start..];
    }
    buf[start - 1] = b'-';
    &buf[start - 1..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_display() {
        for n in [0, 7, -7, 10, -10, i64::MAX, i64::MIN, 1_234_567_890] {
            assert_eq!(format_i64(n, &mut [0; 20]), n.to_string().as_bytes());
        }
        assert_eq!(
            format_u64(u64::MAX, &mut [0; 20]),
            u64::MAX.to_string().as_bytes()
        );
        let mut n = 1u64;
        while let Some(next) = n.checked_mul(3) {
            for m in [n - 1, n, n + 1, n / 3 * 10] {
                assert_eq!(format_u64(m, &mut [0; 20]), m.to_string().as_bytes());
            }
            n = next;
        }
    }

    #[test]
    fn i64_matches_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-5"), Some(-5));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            "",
            "-",
            "+5",
            "05",
            "-0",
            " 5",
            "5 ",
            "1.0",
            "9223372036854775808",
            "0x10",
            "-9223372036854775809",
            "99999999999999999999999",
        ] {
            assert_eq!(parse_i64(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn float_is_never_looser_than_string2ld() {
        assert_eq!(parse_float(b"1.5"), Some(1.5));
        assert_eq!(parse_float(b"-3"), Some(-3.0));
        assert_eq!(parse_float(b"1e3"), Some(1000.0));
        assert_eq!(parse_float(b"0"), Some(0.0));
        assert_eq!(parse_float(b"0.000e-999"), Some(0.0));
        assert_eq!(parse_float(b"inf"), Some(f64::INFINITY));
        for bad in ["", " 1", "1 ", "nan", "abc", "1e-5000", "0x1p3", "1,5"] {
            assert_eq!(parse_float(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(parse_float(&vec![b'1'; 6000]), None);
    }

    #[test]
    fn float_text_is_as_long_as_redis_takes() {
        let mut text = vec![b'0'; MAX_FLOAT_CHARS - 1];
        text.push(b'1');
        assert_eq!(parse_float(&text), Some(1.0));
        text.insert(0, b'0'); // 5120 bytes: string2ld refuses it
        assert_eq!(parse_float(&text), None);
    }
}
