//! Durations (`500ms`, `1.5s`, `7d`) and sizes (`64MiB`, `1GB`) as written in the configuration.
//!
//! Both are a non-negative number (integer or decimal) followed by a unit, with optional spaces
//! between them. A bare number is refused: `100` could mean milliseconds or seconds, bytes or
//! megabytes, and guessing wrong is a silent, costly mistake. Arithmetic is exact (integer), so
//! `0.1s` is exactly 100 ms.

use std::time::Duration;

/// Splits `12.5ms` into (`12`, `5`, `ms`). Errors name the whole input.
fn split_number(s: &str) -> Result<(&str, &str, &str), NumErr> {
    let s = s.trim();
    if s.is_empty() {
        return Err(NumErr::Empty);
    }
    if s.starts_with('-') {
        return Err(NumErr::Negative);
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(num_end);
    let num = num.trim_end_matches('_');
    let unit = unit.trim_start();
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    let digits_ok = |p: &str| p.chars().all(|c| c.is_ascii_digit() || c == '_');
    if (int.is_empty() && frac.is_empty())
        || !digits_ok(int)
        || !digits_ok(frac)
        || frac.contains('.')
        || (num.contains('.') && frac.is_empty())
    {
        return Err(NumErr::NotANumber);
    }
    Ok((int, frac, unit))
}

enum NumErr {
    Empty,
    Negative,
    NotANumber,
}

/// `int.frac × scale`, exactly, truncated to an integer.
fn scaled(int: &str, frac: &str, scale: u128) -> Option<u128> {
    let mut v: u128 = 0;
    for c in int.chars().filter(|c| *c != '_') {
        v = v
            .checked_mul(10)?
            .checked_add(u128::from(c.to_digit(10)?))?;
    }
    v = v.checked_mul(scale)?;
    let mut num: u128 = 0;
    let mut den: u128 = 1;
    for c in frac.chars().filter(|c| *c != '_').take(30) {
        num = num * 10 + u128::from(c.to_digit(10)?);
        den *= 10;
    }
    v.checked_add(num.checked_mul(scale)? / den)
}

/// Parses a duration: a number and one of the units `ms`, `s`, `m`, `h`, `d`
/// (`500ms`, `10s`, `1.5s`, `5m`, `1h`, `7d`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    const UNITS: &str = "ms (milliseconds), s, m (minutes), h or d";
    let (int, frac, unit) = match split_number(s) {
        Ok(p) => p,
        Err(NumErr::Empty) => return Err("empty duration; write 500ms or 2s".into()),
        Err(NumErr::Negative) => return Err(format!("`{s}`: a duration cannot be negative")),
        Err(NumErr::NotANumber) => {
            return Err(format!(
                "`{s}` is not a duration; write a number and a unit: 500ms, 10s, 1.5s, 5m, 1h, 7d"
            ));
        }
    };
    let nanos_per: u128 = match unit {
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        "d" => 86_400 * 1_000_000_000,
        "" => {
            return Err(format!(
                "`{s}` has no unit; write 500ms or 2s (units: {UNITS})"
            ));
        }
        other => return Err(format!("`{s}`: unknown unit `{other}`; use {UNITS}")),
    };
    let nanos = scaled(int, frac, nanos_per).ok_or_else(|| format!("`{s}` is too long"))?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| format!("`{s}` is too long"))?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// Parses a size: a number and a unit, binary `B`, `KiB`, `MiB`, `GiB`, `TiB` or decimal `KB`,
/// `MB`, `GB`, `TB` (`64MiB`, `1GiB`, `500MB`). Fractions of a byte are dropped.
pub fn parse_size(s: &str) -> Result<u64, String> {
    const UNITS: &str = "B, KiB, MiB, GiB, TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000)";
    let (int, frac, unit) = match split_number(s) {
        Ok(p) => p,
        Err(NumErr::Empty) => return Err("empty size; write 64MiB or 1GiB".into()),
        Err(NumErr::Negative) => return Err(format!("`{s}`: a size cannot be negative")),
        Err(NumErr::NotANumber) => {
            return Err(format!(
                "`{s}` is not a size; write a number and a unit: 512KiB, 64MiB, 1GiB"
            ));
        }
    };
    let scale: u128 = match unit {
        "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        "" => {
            return Err(format!(
                "`{s}` has no unit; write 64MiB or 1GiB (units: {UNITS})"
            ));
        }
        other => return Err(format!("`{s}`: unknown unit `{other}`; use {UNITS}")),
    };
    let v = scaled(int, frac, scale).ok_or_else(|| format!("`{s}` is too large"))?;
    u64::try_from(v).map_err(|_| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("10s"), Ok(ms(10_000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1_500)));
        assert_eq!(parse_duration("0.1s"), Ok(ms(100)));
        assert_eq!(parse_duration("5m"), Ok(ms(300_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("7d"), Ok(ms(7 * 86_400_000)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(" 250 ms "), Ok(ms(250)));
        assert_eq!(parse_duration("1_000ms"), Ok(ms(1_000)));
        assert_eq!(parse_duration("0.0005s"), Ok(Duration::from_micros(500)));
    }

    #[test]
    fn bad_durations_say_what_to_write() {
        let e = parse_duration("500").unwrap_err();
        assert!(e.contains("no unit") && e.contains("500ms or 2s"), "{e}");
        assert!(parse_duration("").unwrap_err().contains("500ms"));
        assert!(parse_duration("-1s").unwrap_err().contains("negative"));
        let e = parse_duration("10us").unwrap_err();
        assert!(e.contains("unknown unit `us`"), "{e}");
        assert!(parse_duration("10 S").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("ms").unwrap_err().contains("not a duration"));
        assert!(parse_duration("1.2.3s").is_err());
        assert!(parse_duration("1.s").is_err());
        assert!(parse_duration("1h30m").is_err());
        assert!(
            parse_duration("99999999999999999999999d")
                .unwrap_err()
                .contains("too long")
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0B"), Ok(0));
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("2TiB"), Ok(2 << 40));
        assert_eq!(parse_size("10KB"), Ok(10_000));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
    }

    #[test]
    fn bad_sizes_say_what_to_write() {
        let e = parse_size("1024").unwrap_err();
        assert!(e.contains("no unit") && e.contains("64MiB"), "{e}");
        assert!(
            parse_size("1gib")
                .unwrap_err()
                .contains("unknown unit `gib`")
        );
        assert!(parse_size("-1MiB").unwrap_err().contains("negative"));
        assert!(parse_size("99999999TiB").unwrap_err().contains("too large"));
        assert!(parse_size("MiB").is_err());
    }
}
