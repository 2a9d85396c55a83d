//! Formatting times: nanoseconds since the epoch as UTC text.

use std::fmt::Write as _;

/// `YYYY-MM-DD HH:MM:SS` in UTC for nanoseconds since the epoch.
#[must_use]
pub fn utc(time_nanos: i64) -> String {
    let secs = time_nanos.div_euclid(1_000_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// ISO 8601 with a `Z`, for machine-readable output.
#[must_use]
pub fn iso(time_nanos: i64) -> String {
    let mut s = utc(time_nanos).replacen(' ', "T", 1);
    let _ = write!(s, ".{:06}Z", time_nanos.rem_euclid(1_000_000_000) / 1000);
    s
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_795_765_800_000_000_000), "2026-11-27 07:50:00");
        assert_eq!(utc(951_782_400_000_000_000), "2000-02-29 00:00:00");
        assert_eq!(iso(1_500_000), "1970-01-01T00:00:00.001500Z");
    }
}
