//! A strict RFC 3339 timestamp parser: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`
//! to seconds since the Unix epoch. Enough for expiry dates; a date without
//! a time or without an offset is refused rather than guessed.

/// Seconds since the epoch, or `None` when `s` is not a full RFC 3339
/// date-time. Fractional seconds are accepted and dropped; a leap second
/// (`:60`) is read as the following second.
pub fn parse(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let (date, rest) = b.split_at_checked(10)?;
    let (year, month, day) = parse_date(date)?;
    let (&sep, rest) = rest.split_first()?;
    if !matches!(sep, b'T' | b't' | b' ') {
        return None;
    }
    let (time, mut rest) = rest.split_at_checked(8)?;
    let (hour, minute, second) = parse_time(time)?;
    if let Some(frac) = rest.strip_prefix(b".") {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        rest = frac.get(digits..)?;
    }
    let offset = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = two(*h1, *h2)?;
            let m = two(*m1, *m2)?;
            if h > 23 || m > 59 {
                return None;
            }
            let o = i64::from(h * 3600 + m * 60);
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset)
}

fn parse_date(d: &[u8]) -> Option<(i64, u32, u32)> {
    let [y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2] = d else {
        return None;
    };
    let year = i64::from(two(*y1, *y2)? * 100 + two(*y3, *y4)?);
    let month = two(*m1, *m2)?;
    let day = two(*d1, *d2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some((year, month, day))
}

fn parse_time(t: &[u8]) -> Option<(u32, u32, u32)> {
    let [h1, h2, b':', m1, m2, b':', s1, s2] = t else {
        return None;
    };
    let (h, m, s) = (two(*h1, *h2)?, two(*m1, *m2)?, two(*s1, *s2)?);
    (h <= 23 && m <= 59 && s <= 60).then_some((h, m, s))
}

fn two(a: u8, b: u8) -> Option<u32> {
    (a.is_ascii_digit() && b.is_ascii_digit())
        .then(|| u32::from(a - b'0') * 10 + u32::from(b - b'0'))
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Howard
/// Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn timestamps() {
        assert_eq!(parse("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse("2027-01-01T00:00:00Z"), Some(1_798_761_600));
        assert_eq!(parse("2009-02-13T23:31:30Z"), Some(1_234_567_890));
        assert_eq!(parse("2009-02-14T00:31:30+01:00"), Some(1_234_567_890));
        assert_eq!(parse("2009-02-13T22:31:30.123-01:00"), Some(1_234_567_890));
        assert_eq!(parse("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        assert_eq!(parse("1969-12-31T23:59:59Z"), Some(-1));
        for bad in [
            "2027-01-01",
            "2027-01-01T00:00:00",
            "2023-02-29T00:00:00Z",
            "2027-13-01T00:00:00Z",
            "2027-01-01T24:00:00Z",
            "2027-01-01T00:00:00.Z",
            "2027-01-01T00:00:00+0100",
            "2027-01-01T00:00:00Z ",
            "２０２７-01-01T00:00:00Z",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
