//! Record and checkpoint times: RFC 3339 in UTC with milliseconds.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds since 1970-01-01T00:00:00Z, between the epoch and the end of year 9999.
///
/// The only text form is `YYYY-MM-DDTHH:MM:SS.mmmZ` (24 characters). Parsing accepts nothing
/// else (no offsets, no lowercase `t`/`z`, no missing or extra fraction digits), so a time has
/// one spelling and the canonical hash, which covers the millisecond count, cannot drift from
/// the text an export shows.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

/// A time that is not in the `YYYY-MM-DDTHH:MM:SS.mmmZ` form or out of range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("time `{0}` is not of the form YYYY-MM-DDTHH:MM:SS.mmmZ in UTC")]
    Format(String),
    #[error("time `{0}` is not a valid calendar date and time")]
    Calendar(String),
    #[error("time {0} ms after the epoch is after 9999-12-31T23:59:59.999Z")]
    OutOfRange(u64),
    #[error("time is before 1970-01-01T00:00:00Z")]
    BeforeEpoch,
}

const MS_PER_DAY: u64 = 86_400_000;
/// 9999-12-31T23:59:59.999Z.
const MAX_MILLIS: u64 = 253_402_300_799_999;

impl Timestamp {
    pub const EPOCH: Timestamp = Timestamp(0);

    pub fn from_unix_millis(millis: u64) -> Result<Self, TimestampError> {
        if millis > MAX_MILLIS {
            return Err(TimestampError::OutOfRange(millis));
        }
        Ok(Timestamp(millis))
    }

    pub const fn unix_millis(&self) -> u64 {
        self.0
    }

    /// Truncates to whole milliseconds.
    pub fn from_system_time(time: SystemTime) -> Result<Self, TimestampError> {
        let since = time
            .duration_since(UNIX_EPOCH)
            .map_err(|_| TimestampError::BeforeEpoch)?;
        let millis = u64::try_from(since.as_millis()).unwrap_or(u64::MAX);
        Self::from_unix_millis(millis)
    }

    /// The wall clock now. A clock before 1970 or after 9999 gives the nearest end of the range.
    pub fn now() -> Self {
        match Self::from_system_time(SystemTime::now()) {
            Ok(time) => time,
            Err(TimestampError::BeforeEpoch) => Timestamp(0),
            Err(_) => Timestamp(MAX_MILLIS),
        }
    }

    /// Time elapsed from `earlier` to `self`, zero when `earlier` is later.
    pub fn since(&self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// Parses the strict RFC 3339 form `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        let format_error = || TimestampError::Format(text.chars().take(40).collect());
        let bytes = text.as_bytes();
        if bytes.len() != 24 {
            return Err(format_error());
        }
        let separators = [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
        ];
        for (at, expected) in separators {
            if bytes.get(at) != Some(&expected) {
                return Err(format_error());
            }
        }
        if bytes.get(23) != Some(&b'Z') {
            return Err(format_error());
        }
        let number = |from: usize, to: usize| -> Result<u64, TimestampError> {
            let digits = bytes.get(from..to).ok_or_else(format_error)?;
            digits.iter().try_fold(0u64, |acc, &b| {
                if b.is_ascii_digit() {
                    Ok(acc * 10 + u64::from(b - b'0'))
                } else {
                    Err(format_error())
                }
            })
        };
        let year = number(0, 4)?;
        let month = number(5, 7)?;
        let day = number(8, 10)?;
        let hour = number(11, 13)?;
        let minute = number(14, 16)?;
        let second = number(17, 19)?;
        let millis = number(20, 23)?;

        let calendar_error = || TimestampError::Calendar(text.to_owned());
        if year < 1970
            || !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return Err(calendar_error());
        }
        let days = days_from_civil(year, month, day);
        let total = days * MS_PER_DAY + ((hour * 60 + minute) * 60 + second) * 1000 + millis;
        Self::from_unix_millis(total)
    }
}

fn is_leap(year: u64) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given date of the proleptic Gregorian calendar, for years from
/// 1970 on. Counts in 400-year eras that start on March 1st, so February's length only matters
/// at the end of an era year.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year % 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719_468 days lie between 0000-03-01 and 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = civil_from_days(self.0 / MS_PER_DAY);
        let in_day = self.0 % MS_PER_DAY;
        let (hour, minute) = (in_day / 3_600_000, in_day / 60_000 % 60);
        let (second, millis) = (in_day / 1000 % 60, in_day % 1000);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z"
        )
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_instants_format_as_expected() {
        assert_eq!(Timestamp::EPOCH.to_string(), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day in a year divisible by 400) at 12:34:56.789.
        let leap = Timestamp::from_unix_millis(951_827_696_789).unwrap();
        assert_eq!(leap.to_string(), "2000-02-29T12:34:56.789Z");
        let last = Timestamp::from_unix_millis(MAX_MILLIS).unwrap();
        assert_eq!(last.to_string(), "9999-12-31T23:59:59.999Z");
        assert!(Timestamp::from_unix_millis(MAX_MILLIS + 1).is_err());
    }

    #[test]
    fn parsing_is_strict() {
        assert_eq!(
            Timestamp::parse("2000-02-29T12:34:56.789Z")
                .unwrap()
                .unix_millis(),
            951_827_696_789
        );
        for bad in [
            "2000-02-29T12:34:56Z",
            "2000-02-29T12:34:56.7890Z",
            "2000-02-29t12:34:56.789Z",
            "2000-02-29T12:34:56.789z",
            "2000-02-29T12:34:56.789+00:00",
            "1900-02-29T12:34:56.789Z",
            "2001-02-29T12:34:56.789Z",
            "2000-13-01T00:00:00.000Z",
            "2000-04-31T00:00:00.000Z",
            "2000-01-01T24:00:00.000Z",
            "2000-01-01T23:60:00.000Z",
            "2000-01-01T23:59:60.000Z",
            "1969-12-31T23:59:59.999Z",
            "+000-01-01T00:00:00.000Z",
            "2000-01-01T00:00:00.00é",
            "",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    proptest! {
        #[test]
        fn text_form_round_trips(millis in 0..=MAX_MILLIS) {
            let time = Timestamp::from_unix_millis(millis).unwrap();
            let text = time.to_string();
            prop_assert_eq!(text.len(), 24);
            prop_assert_eq!(Timestamp::parse(&text), Ok(time));
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,30}") {
            let _ = Timestamp::parse(&text);
        }
    }
}
