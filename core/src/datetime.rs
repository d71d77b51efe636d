//! Calendar values as MySQL has them: `DATE`, `DATETIME` (and `TIMESTAMP`,
//! which cascade keeps as a `DATETIME` in UTC) and `TIME`.
//!
//! Values are compact integers:
//! - a date is the number of days since 1970-01-01 (proleptic Gregorian,
//!   as MySQL), `0000-01-01 ..= 9999-12-31`;
//! - a datetime is the number of microseconds since 1970-01-01 00:00:00,
//!   within the same days;
//! - a time is a signed number of microseconds, within MySQL's
//!   `-838:59:59 ..= 838:59:59`.
//!
//! This module holds the pure functions on them: calendar arithmetic,
//! parsing MySQL's literal forms, formatting (`2024-01-01`,
//! `2024-01-01 10:00:00[.ffffff]`, `-01:02:03`), intervals, `EXTRACT`
//! fields and `DATE_FORMAT`. Nothing here knows about SQL values; an
//! invalid input is `None` (the caller turns it into NULL with a warning,
//! or error 1292, as MySQL does in that place).

/// Microseconds in a second.
pub const MICROS_PER_SEC: i64 = 1_000_000;
/// Microseconds in a day.
pub const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SEC;
/// The largest `TIME`: 838:59:59.
pub const MAX_TIME: i64 = (838 * 3600 + 59 * 60 + 59) * MICROS_PER_SEC;
/// Days of `0000-01-01`, the first date.
pub const MIN_DAYS: i64 = -719_528;
/// Days of `9999-12-31`, the last date.
pub const MAX_DAYS: i64 = 2_932_896;

/// Whether `y` is a leap year.
pub fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days in month `m` (1..=12) of year `y`.
pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of `y-m-d` (no validation; Howard Hinnant's
/// `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `(year, month, day)` of a day number (the inverse of
/// [`days_from_civil`]).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The day number of a valid date in MySQL's range, else `None` (month 0,
/// day 0, February 30th, year 10000, …).
pub fn make_date(y: i64, m: u32, d: u32) -> Option<i32> {
    if !(0..=9999).contains(&y) || !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    i32::try_from(days_from_civil(y, m, d)).ok()
}

/// Whether a day number is within `0000-01-01 ..= 9999-12-31`.
pub fn days_in_range(days: i64) -> bool {
    (MIN_DAYS..=MAX_DAYS).contains(&days)
}

/// Whether a datetime (microseconds) is within the date range.
pub fn datetime_in_range(micros: i64) -> bool {
    days_in_range(micros.div_euclid(MICROS_PER_DAY))
}

/// The broken-down fields of a datetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fields {
    /// Year (0..=9999).
    pub year: i64,
    /// Month (1..=12).
    pub month: u32,
    /// Day of the month (1..=31).
    pub day: u32,
    /// Hour (0..=23).
    pub hour: u32,
    /// Minute.
    pub minute: u32,
    /// Second.
    pub second: u32,
    /// Microseconds (0..=999_999).
    pub micro: u32,
}

impl Fields {
    /// The fields of a datetime in microseconds.
    pub fn of_datetime(micros: i64) -> Fields {
        let days = micros.div_euclid(MICROS_PER_DAY);
        let rem = micros.rem_euclid(MICROS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let secs = rem / MICROS_PER_SEC;
        Fields {
            year,
            month,
            day,
            hour: (secs / 3600) as u32,
            minute: (secs / 60 % 60) as u32,
            second: (secs % 60) as u32,
            micro: (rem % MICROS_PER_SEC) as u32,
        }
    }
    /// The fields of a date (midnight).
    pub fn of_date(days: i32) -> Fields {
        Fields::of_datetime(i64::from(days) * MICROS_PER_DAY)
    }
    /// Day number of the date part.
    pub fn days(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day)
    }
}

/// `YYYY-MM-DD`.
pub fn format_date(days: i32) -> String {
    let (y, m, d) = civil_from_days(i64::from(days));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD hh:mm:ss`, with `.ffffff` when there are microseconds
/// (cascade does not keep a column's fractional-second precision: a
/// fraction always prints six digits).
pub fn format_datetime(micros: i64) -> String {
    let f = Fields::of_datetime(micros);
    let mut s = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        f.year, f.month, f.day, f.hour, f.minute, f.second
    );
    if f.micro != 0 {
        s.push_str(&format!(".{:06}", f.micro));
    }
    s
}

/// `[-]hh:mm:ss[.ffffff]` (hours may have three digits).
pub fn format_time(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let a = micros.unsigned_abs();
    let us = MICROS_PER_SEC as u64;
    let secs = a / us;
    let frac = a % us;
    let mut s = format!(
        "{sign}{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if frac != 0 {
        s.push_str(&format!(".{frac:06}"));
    }
    s
}

/// The numeric value of a date in a number context: `YYYYMMDD`.
pub fn date_number(days: i32) -> i64 {
    let (y, m, d) = civil_from_days(i64::from(days));
    y * 10_000 + i64::from(m) * 100 + i64::from(d)
}

/// The numeric value of a datetime: `YYYYMMDDhhmmss[.ffffff]`.
pub fn datetime_number(micros: i64) -> f64 {
    let f = Fields::of_datetime(micros);
    let whole = f.year * 10_000_000_000
        + i64::from(f.month) * 100_000_000
        + i64::from(f.day) * 1_000_000
        + i64::from(f.hour) * 10_000
        + i64::from(f.minute) * 100
        + i64::from(f.second);
    whole as f64 + f64::from(f.micro) / 1e6
}

/// The numeric value of a time: `[-]hhmmss[.ffffff]`.
pub fn time_number(micros: i64) -> f64 {
    let a = micros.unsigned_abs();
    let secs = (a / MICROS_PER_SEC as u64) as i64;
    let frac = (a % MICROS_PER_SEC as u64) as f64 / 1e6;
    let n = (secs / 3600) * 10_000 + (secs / 60 % 60) * 100 + secs % 60;
    let v = n as f64 + frac;
    if micros < 0 {
        -v
    } else {
        v
    }
}

/// What a string parsed as a date or datetime held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A date alone (day number).
    Date(i32),
    /// A date with a time (microseconds).
    DateTime(i64),
}

impl Parsed {
    /// As a datetime (a date is at midnight).
    pub fn micros(self) -> i64 {
        match self {
            Parsed::Date(d) => i64::from(d) * MICROS_PER_DAY,
            Parsed::DateTime(m) => m,
        }
    }
    /// The date part.
    pub fn days(self) -> i32 {
        match self {
            Parsed::Date(d) => d,
            // In range by construction, so the day number fits.
            Parsed::DateTime(m) => m.div_euclid(MICROS_PER_DAY) as i32,
        }
    }
}

/// A two-digit year as MySQL reads it: 70–99 → 19xx, 00–69 → 20xx.
fn two_digit_year(y: i64) -> i64 {
    if y < 70 {
        2000 + y
    } else {
        1900 + y
    }
}

/// Microseconds from the digits after a decimal point (rounded to six
/// digits, half up, as MySQL does); `None` if not all digits.
fn fraction_micros(digits: &str) -> Option<i64> {
    if digits.is_empty() {
        return Some(0);
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: i64 = 0;
    for (i, b) in digits.bytes().take(7).enumerate() {
        if i < 6 {
            v = v * 10 + i64::from(b - b'0');
        } else if b >= b'5' {
            v += 1;
        }
    }
    for _ in digits.len()..6 {
        v *= 10;
    }
    Some(v)
}

fn time_of_day(h: i64, mi: i64, s: i64, us: i64) -> Option<i64> {
    if !(0..24).contains(&h) || !(0..60).contains(&mi) || !(0..60).contains(&s) {
        return None;
    }
    Some(((h * 60 + mi) * 60 + s) * MICROS_PER_SEC + us)
}

fn date_time(days: i32, tod: i64) -> Option<Parsed> {
    let m = i64::from(days) * MICROS_PER_DAY + tod;
    // A fraction rounded up at 23:59:59.9999995 can reach the next day.
    datetime_in_range(m).then_some(Parsed::DateTime(m))
}

/// Parses a date or datetime as MySQL reads a string: `2024-01-05`,
/// `2024-1-5`, `24-01-05`, `2024/01/05`, `20240105`, `240105`,
/// `2024-01-05 10:20:30.5`, `2024-01-05T10:20`, `20240105102030`. Any
/// punctuation separates the date's parts and the time's; a date and its
/// time are separated by spaces or `T`. `None` for anything else, or for
/// an invalid date (`2024-02-30`, a zero date or month).
pub fn parse_datetime(s: &str) -> Option<Parsed> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (int_part, frac) = match s.split_once('.') {
        Some((a, b))
            if a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit()) =>
        {
            (a, Some(b))
        }
        _ => (s, None),
    };
    if int_part.bytes().all(|c| c.is_ascii_digit()) {
        return parse_digits(int_part, frac);
    }
    // Delimited: numbers separated by punctuation, with a space or `T`
    // between the date and the time.
    let bytes = s.as_bytes();
    let mut nums: Vec<(i64, usize)> = Vec::with_capacity(7);
    let mut i = 0;
    let mut date_end = None;
    let mut frac_digits: Option<&str> = None;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || i - start > 9 {
            return None;
        }
        let n: i64 = s[start..i].parse().ok()?;
        nums.push((n, i - start));
        if i == bytes.len() {
            break;
        }
        // A separator.
        if nums.len() == 3 && date_end.is_none() {
            // Between the date and the time: spaces or one `T`.
            let sep_start = i;
            while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
                i += 1;
            }
            if i == sep_start {
                if bytes[i] == b'T' {
                    i += 1;
                } else {
                    return None;
                }
            }
            date_end = Some(i);
            continue;
        }
        if nums.len() == 6 && bytes[i] == b'.' {
            frac_digits = Some(&s[i + 1..]);
            break;
        }
        if nums.len() >= 6 || !bytes[i].is_ascii_punctuation() {
            return None;
        }
        i += 1;
        if i == bytes.len() {
            return None;
        }
    }
    if nums.len() < 3 {
        return None;
    }
    let (y, ylen) = nums[0];
    let y = if ylen <= 2 { two_digit_year(y) } else { y };
    let month = u32::try_from(nums[1].0).ok()?;
    let day = u32::try_from(nums[2].0).ok()?;
    let days = make_date(y, month, day)?;
    if nums.len() == 3 {
        // `2024-01-05 ` was trimmed; a dangling `T` is not a date.
        return if date_end.is_some() {
            None
        } else {
            Some(Parsed::Date(days))
        };
    }
    let get = |k: usize| nums.get(k).map_or(0, |n| n.0);
    let us = fraction_micros(frac_digits.unwrap_or(""))?;
    date_time(days, time_of_day(get(3), get(4), get(5), us)?)
}

/// The digit-only forms: `YYYYMMDD`, `YYMMDD`, `YYYYMMDDhhmmss`,
/// `YYMMDDhhmmss` (a fraction only after a time).
fn parse_digits(d: &str, frac: Option<&str>) -> Option<Parsed> {
    let n = |a: usize, b: usize| d[a..b].parse::<i64>().ok();
    let (y, rest) = match d.len() {
        8 | 14 => (n(0, 4)?, 4),
        6 | 12 => (two_digit_year(n(0, 2)?), 2),
        _ => return None,
    };
    let month = u32::try_from(n(rest, rest + 2)?).ok()?;
    let day = u32::try_from(n(rest + 2, rest + 4)?).ok()?;
    let days = make_date(y, month, day)?;
    if d.len() == rest + 4 {
        return if frac.is_some() {
            None
        } else {
            Some(Parsed::Date(days))
        };
    }
    let t = rest + 4;
    let us = fraction_micros(frac.unwrap_or(""))?;
    date_time(
        days,
        time_of_day(n(t, t + 2)?, n(t + 2, t + 4)?, n(t + 4, t + 6)?, us)?,
    )
}

/// Parses a `TIME` as MySQL reads a string: `[-][D ]hh:mm[:ss[.f]]`,
/// `[-]hhmmss[.f]`, `mmss`, `ss`, or a datetime (whose time part is
/// taken). `None` when invalid or outside `±838:59:59`.
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b.trim_start()),
        None => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let (int_part, frac) = match body.split_once('.') {
        Some((a, b)) => (a, b),
        None => (body, ""),
    };
    let us = fraction_micros(frac)?;
    let micros = if int_part.bytes().all(|c| c.is_ascii_digit()) {
        if int_part.len() > 8 {
            // `20240105102030`: a datetime's time.
            return if neg {
                None
            } else {
                parse_datetime(s).map(|p| p.micros().rem_euclid(MICROS_PER_DAY))
            };
        }
        let v: i64 = int_part.parse().ok()?;
        let (h, m, sec) = (v / 10_000, v / 100 % 100, v % 100);
        if m >= 60 || sec >= 60 {
            return None;
        }
        ((h * 60 + m) * 60 + sec) * MICROS_PER_SEC + us
    } else if int_part.contains(':') {
        // `[D ]hh:mm[:ss]`.
        let (days, hms) = match int_part.split_once(' ') {
            Some((d, rest)) if d.bytes().all(|c| c.is_ascii_digit()) => {
                (d.parse::<i64>().ok()?, rest.trim())
            }
            Some(_) => {
                return if neg {
                    None
                } else {
                    parse_datetime(s).map(|p| p.micros().rem_euclid(MICROS_PER_DAY))
                }
            }
            None => (0, int_part),
        };
        let parts: Vec<&str> = hms.split(':').collect();
        if parts.len() > 3 || parts.iter().any(|p| p.is_empty() || p.len() > 7) {
            return None;
        }
        let num = |k: usize| -> Option<i64> {
            match parts.get(k) {
                Some(p) if p.bytes().all(|c| c.is_ascii_digit()) => p.parse().ok(),
                Some(_) => None,
                None => Some(0),
            }
        };
        let (h, m, sec) = (num(0)?, num(1)?, num(2)?);
        if m >= 60 || sec >= 60 || days > 34 {
            return None;
        }
        let us = if parts.len() == 3 {
            us
        } else if frac.is_empty() {
            0
        } else {
            return None;
        };
        (((days * 24 + h) * 60 + m) * 60 + sec) * MICROS_PER_SEC + us
    } else {
        return if neg {
            None
        } else {
            parse_datetime(s).map(|p| p.micros().rem_euclid(MICROS_PER_DAY))
        };
    };
    if micros > MAX_TIME + 999_999 || (micros > MAX_TIME && us == 0) {
        return None;
    }
    let micros = micros.min(MAX_TIME);
    Some(if neg { -micros } else { micros })
}

/// An `INTERVAL` unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    /// `MICROSECOND`
    Microsecond,
    /// `SECOND`
    Second,
    /// `MINUTE`
    Minute,
    /// `HOUR`
    Hour,
    /// `DAY`
    Day,
    /// `WEEK`
    Week,
    /// `MONTH`
    Month,
    /// `QUARTER`
    Quarter,
    /// `YEAR`
    Year,
    /// `SECOND_MICROSECOND` (`'ss.ffffff'`)
    SecondMicrosecond,
    /// `MINUTE_MICROSECOND` (`'mm:ss.ffffff'`)
    MinuteMicrosecond,
    /// `MINUTE_SECOND` (`'mm:ss'`)
    MinuteSecond,
    /// `HOUR_MICROSECOND` (`'hh:mm:ss.ffffff'`)
    HourMicrosecond,
    /// `HOUR_SECOND` (`'hh:mm:ss'`)
    HourSecond,
    /// `HOUR_MINUTE` (`'hh:mm'`)
    HourMinute,
    /// `DAY_MICROSECOND` (`'D hh:mm:ss.ffffff'`)
    DayMicrosecond,
    /// `DAY_SECOND` (`'D hh:mm:ss'`)
    DaySecond,
    /// `DAY_MINUTE` (`'D hh:mm'`)
    DayMinute,
    /// `DAY_HOUR` (`'D hh'`)
    DayHour,
    /// `YEAR_MONTH` (`'Y-M'`)
    YearMonth,
}

impl Unit {
    /// The unit named `s` (case-insensitive).
    pub fn parse(s: &str) -> Option<Unit> {
        use Unit::*;
        Some(match s.to_ascii_uppercase().as_str() {
            "MICROSECOND" | "MICROSECONDS" => Microsecond,
            "SECOND" | "SECONDS" => Second,
            "MINUTE" | "MINUTES" => Minute,
            "HOUR" | "HOURS" => Hour,
            "DAY" | "DAYS" => Day,
            "WEEK" | "WEEKS" => Week,
            "MONTH" | "MONTHS" => Month,
            "QUARTER" => Quarter,
            "YEAR" | "YEARS" => Year,
            "SECOND_MICROSECOND" => SecondMicrosecond,
            "MINUTE_MICROSECOND" => MinuteMicrosecond,
            "MINUTE_SECOND" => MinuteSecond,
            "HOUR_MICROSECOND" => HourMicrosecond,
            "HOUR_SECOND" => HourSecond,
            "HOUR_MINUTE" => HourMinute,
            "DAY_MICROSECOND" => DayMicrosecond,
            "DAY_SECOND" => DaySecond,
            "DAY_MINUTE" => DayMinute,
            "DAY_HOUR" => DayHour,
            "YEAR_MONTH" => YearMonth,
            _ => return None,
        })
    }
    /// The SQL name.
    pub fn name(self) -> &'static str {
        use Unit::*;
        match self {
            Microsecond => "MICROSECOND",
            Second => "SECOND",
            Minute => "MINUTE",
            Hour => "HOUR",
            Day => "DAY",
            Week => "WEEK",
            Month => "MONTH",
            Quarter => "QUARTER",
            Year => "YEAR",
            SecondMicrosecond => "SECOND_MICROSECOND",
            MinuteMicrosecond => "MINUTE_MICROSECOND",
            MinuteSecond => "MINUTE_SECOND",
            HourMicrosecond => "HOUR_MICROSECOND",
            HourSecond => "HOUR_SECOND",
            HourMinute => "HOUR_MINUTE",
            DayMicrosecond => "DAY_MICROSECOND",
            DaySecond => "DAY_SECOND",
            DayMinute => "DAY_MINUTE",
            DayHour => "DAY_HOUR",
            YearMonth => "YEAR_MONTH",
        }
    }
    /// A small code for carrying the unit as an integer argument.
    pub fn code(self) -> i64 {
        Unit::ALL.iter().position(|u| *u == self).unwrap_or(0) as i64
    }
    /// The unit of [`Unit::code`].
    pub fn from_code(c: i64) -> Option<Unit> {
        usize::try_from(c)
            .ok()
            .and_then(|i| Unit::ALL.get(i).copied())
    }
    const ALL: [Unit; 20] = {
        use Unit::*;
        [
            Microsecond,
            Second,
            Minute,
            Hour,
            Day,
            Week,
            Month,
            Quarter,
            Year,
            SecondMicrosecond,
            MinuteMicrosecond,
            MinuteSecond,
            HourMicrosecond,
            HourSecond,
            HourMinute,
            DayMicrosecond,
            DaySecond,
            DayMinute,
            DayHour,
            YearMonth,
        ]
    };
    /// Whether adding it to a `DATE` gives a `DATE` (days, weeks, months,
    /// quarters, years); the others give a `DATETIME`.
    pub fn keeps_date(self) -> bool {
        use Unit::*;
        matches!(self, Day | Week | Month | Quarter | Year | YearMonth)
    }
}

/// An interval: months and microseconds, applied in that order (as MySQL:
/// months first, the day clamped to the month's last).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Interval {
    /// Months (years × 12).
    pub months: i64,
    /// Microseconds (days × 86,400,000,000).
    pub micros: i64,
}

impl Interval {
    /// `INTERVAL n unit` for a whole number of a simple unit; `None` on
    /// overflow.
    pub fn of(unit: Unit, n: i64) -> Option<Interval> {
        use Unit::*;
        let us = |k: i64| {
            n.checked_mul(k)
                .map(|micros| Interval { months: 0, micros })
        };
        let mo = |k: i64| {
            n.checked_mul(k)
                .map(|months| Interval { months, micros: 0 })
        };
        match unit {
            Microsecond => us(1),
            Second => us(MICROS_PER_SEC),
            Minute => us(60 * MICROS_PER_SEC),
            Hour => us(3600 * MICROS_PER_SEC),
            Day => us(MICROS_PER_DAY),
            Week => us(7 * MICROS_PER_DAY),
            Month => mo(1),
            Quarter => mo(3),
            Year => mo(12),
            // A compound unit given one number takes it as its last part
            // (`INTERVAL 5 DAY_HOUR` is five hours), as MySQL.
            SecondMicrosecond | MinuteMicrosecond | HourMicrosecond | DayMicrosecond => us(1),
            MinuteSecond | HourSecond | DaySecond => us(MICROS_PER_SEC),
            HourMinute | DayMinute => us(60 * MICROS_PER_SEC),
            DayHour => us(3600 * MICROS_PER_SEC),
            YearMonth => mo(1),
        }
    }

    /// `INTERVAL 'text' unit`: a compound unit's parts (`'1 10:30:00'`
    /// `DAY_SECOND`, `'2-6'` `YEAR_MONTH`), or a number for a simple unit
    /// (`'1.5' SECOND`; other simple units round the number half away from
    /// zero, as MySQL). Parts are separated by any punctuation or spaces;
    /// fewer parts than the unit has fill from the right. A leading `-`
    /// negates the whole interval. `None` when not a number or too many
    /// parts.
    pub fn parse(unit: Unit, text: &str) -> Option<Interval> {
        use Unit::*;
        let t = text.trim();
        let (neg, body) = match t.strip_prefix('-') {
            Some(b) => (true, b.trim_start()),
            None => (false, t),
        };
        // Scales of each part, most significant first, in microseconds or
        // months.
        let (scales, months): (&[i64], bool) = match unit {
            Microsecond | Second | Minute | Hour | Day | Week | Month | Quarter | Year => {
                let v: f64 = body.parse().ok()?;
                let v = if neg { -v } else { v };
                return Interval::of_number(unit, v);
            }
            SecondMicrosecond => (&[MICROS_PER_SEC, 1], false),
            MinuteMicrosecond => (&[60 * MICROS_PER_SEC, MICROS_PER_SEC, 1], false),
            MinuteSecond => (&[60 * MICROS_PER_SEC, MICROS_PER_SEC], false),
            HourMicrosecond => (
                &[
                    3600 * MICROS_PER_SEC,
                    60 * MICROS_PER_SEC,
                    MICROS_PER_SEC,
                    1,
                ],
                false,
            ),
            HourSecond => (
                &[3600 * MICROS_PER_SEC, 60 * MICROS_PER_SEC, MICROS_PER_SEC],
                false,
            ),
            HourMinute => (&[3600 * MICROS_PER_SEC, 60 * MICROS_PER_SEC], false),
            DayMicrosecond => (
                &[
                    MICROS_PER_DAY,
                    3600 * MICROS_PER_SEC,
                    60 * MICROS_PER_SEC,
                    MICROS_PER_SEC,
                    1,
                ],
                false,
            ),
            DaySecond => (
                &[
                    MICROS_PER_DAY,
                    3600 * MICROS_PER_SEC,
                    60 * MICROS_PER_SEC,
                    MICROS_PER_SEC,
                ],
                false,
            ),
            DayMinute => (
                &[MICROS_PER_DAY, 3600 * MICROS_PER_SEC, 60 * MICROS_PER_SEC],
                false,
            ),
            DayHour => (&[MICROS_PER_DAY, 3600 * MICROS_PER_SEC], false),
            YearMonth => (&[12, 1], true),
        };
        let has_micro = matches!(
            unit,
            SecondMicrosecond | MinuteMicrosecond | HourMicrosecond | DayMicrosecond
        );
        let parts: Vec<&str> = body
            .split(|c: char| !c.is_ascii_digit())
            .filter(|p| !p.is_empty())
            .collect();
        if parts.is_empty() || parts.len() > scales.len() {
            return None;
        }
        let skip = scales.len() - parts.len();
        let mut total: i64 = 0;
        for (k, p) in parts.iter().enumerate() {
            let idx = skip + k;
            // The microsecond part is a fraction: `'1.5'` is 500,000 µs.
            let v = if has_micro && idx == scales.len() - 1 && parts.len() > 1 {
                fraction_micros(p)?
            } else {
                p.parse::<i64>().ok()?
            };
            total = total.checked_add(v.checked_mul(scales[idx])?)?;
        }
        let total = if neg { -total } else { total };
        Some(if months {
            Interval {
                months: total,
                micros: 0,
            }
        } else {
            Interval {
                months: 0,
                micros: total,
            }
        })
    }

    /// `INTERVAL x unit` for a number: seconds keep six decimals
    /// (`1.5 SECOND`), every other unit rounds half away from zero.
    pub fn of_number(unit: Unit, x: f64) -> Option<Interval> {
        if !x.is_finite() {
            return None;
        }
        if unit == Unit::Second {
            let us = (x * 1e6).round();
            if us.abs() >= 9.2e18 {
                return None;
            }
            return Some(Interval {
                months: 0,
                micros: us as i64,
            });
        }
        let r = x.round();
        if r.abs() >= 9.2e18 {
            return None;
        }
        Interval::of(unit, r as i64)
    }

    /// The interval negated (`DATE_SUB`); `None` on overflow.
    pub fn checked_neg(self) -> Option<Interval> {
        Some(Interval {
            months: self.months.checked_neg()?,
            micros: self.micros.checked_neg()?,
        })
    }
}

/// `micros + interval`, or `None` outside `0000-01-01 ..= 9999-12-31`.
pub fn add_interval(micros: i64, iv: Interval) -> Option<i64> {
    let mut m = micros;
    if iv.months != 0 {
        let f = Fields::of_datetime(m);
        let total = (f.year * 12 + i64::from(f.month) - 1).checked_add(iv.months)?;
        let (y, mo) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
        if !(0..=9999).contains(&y) {
            return None;
        }
        let d = f.day.min(days_in_month(y, mo));
        m = days_from_civil(y, mo, d) * MICROS_PER_DAY + m.rem_euclid(MICROS_PER_DAY);
    }
    let m = m.checked_add(iv.micros)?;
    datetime_in_range(m).then_some(m)
}

/// Day of the week, 0 = Monday … 6 = Sunday (`WEEKDAY()`).
pub fn weekday(days: i64) -> u32 {
    // 1970-01-01 was a Thursday (3).
    (days + 3).rem_euclid(7) as u32
}

/// Day of the year, 1-based (`DAYOFYEAR()`).
pub fn day_of_year(f: &Fields) -> u32 {
    (f.days() - days_from_civil(f.year, 1, 1) + 1) as u32
}

/// `WEEK(d)` in MySQL's default mode 0: weeks start on Sunday, week 1 is
/// the one with the year's first Sunday, days before it are week 0.
pub fn week_mode0(f: &Fields) -> u32 {
    let jan1 = days_from_civil(f.year, 1, 1);
    // Sunday-based day of the week of January 1st (0 = Sunday).
    let jan1_sun0 = (weekday(jan1) + 1) % 7;
    let first_sunday = i64::from((7 - jan1_sun0) % 7);
    let yday0 = f.days() - jan1;
    if yday0 < first_sunday {
        0
    } else {
        ((yday0 - first_sunday) / 7 + 1) as u32
    }
}

const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAY_NAMES: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// `MONTHNAME()`: `January` …
pub fn month_name(month: u32) -> &'static str {
    MONTH_NAMES[(month.clamp(1, 12) - 1) as usize]
}

/// `DAYNAME()` of a day number: `Monday` …
pub fn day_name(days: i64) -> &'static str {
    DAY_NAMES[weekday(days) as usize]
}

fn ordinal_suffix(d: u32) -> &'static str {
    match (d % 10, d % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    }
}

/// `DATE_FORMAT(d, fmt)` with MySQL's specifiers: `%Y %y %m %c %d %e %H %k
/// %h %I %l %i %s %S %f %p %M %b %W %a %D %j %w %U %T %r %%`. Any other
/// `%x` prints `x`, as MySQL.
pub fn date_format(f: &Fields, fmt: &str) -> String {
    let mut out = String::with_capacity(fmt.len() + 8);
    let mut it = fmt.chars();
    let h12 = if f.hour % 12 == 0 { 12 } else { f.hour % 12 };
    let ampm = if f.hour < 12 { "AM" } else { "PM" };
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(spec) = it.next() else {
            break;
        };
        let s = match spec {
            'Y' => format!("{:04}", f.year),
            'y' => format!("{:02}", f.year % 100),
            'm' => format!("{:02}", f.month),
            'c' => f.month.to_string(),
            'd' => format!("{:02}", f.day),
            'e' => f.day.to_string(),
            'D' => format!("{}{}", f.day, ordinal_suffix(f.day)),
            'H' => format!("{:02}", f.hour),
            'k' => f.hour.to_string(),
            'h' | 'I' => format!("{h12:02}"),
            'l' => h12.to_string(),
            'i' => format!("{:02}", f.minute),
            's' | 'S' => format!("{:02}", f.second),
            'f' => format!("{:06}", f.micro),
            'p' => ampm.to_string(),
            'M' => month_name(f.month).to_string(),
            'b' => month_name(f.month)[..3].to_string(),
            'W' => day_name(f.days()).to_string(),
            'a' => day_name(f.days())[..3].to_string(),
            'j' => format!("{:03}", day_of_year(f)),
            'w' => ((weekday(f.days()) + 1) % 7).to_string(),
            'U' => format!("{:02}", week_mode0(f)),
            'T' => format!("{:02}:{:02}:{:02}", f.hour, f.minute, f.second),
            'r' => format!("{h12:02}:{:02}:{:02} {ampm}", f.minute, f.second),
            other => other.to_string(),
        };
        out.push_str(&s);
    }
    out
}

/// A field for `EXTRACT(unit FROM d)`: the simple units and the compound
/// ones MySQL concatenates (`YEAR_MONTH` 202401, `DAY_HOUR` 510, …).
pub fn extract(unit: Unit, f: &Fields) -> i64 {
    use Unit::*;
    let (y, mo, d) = (f.year, i64::from(f.month), i64::from(f.day));
    let (h, mi, s, us) = (
        i64::from(f.hour),
        i64::from(f.minute),
        i64::from(f.second),
        i64::from(f.micro),
    );
    match unit {
        Microsecond => us,
        Second => s,
        Minute => mi,
        Hour => h,
        Day => d,
        Week => i64::from(week_mode0(f)),
        Month => mo,
        Quarter => (mo + 2) / 3,
        Year => y,
        SecondMicrosecond => s * 1_000_000 + us,
        MinuteMicrosecond => (mi * 100 + s) * 1_000_000 + us,
        MinuteSecond => mi * 100 + s,
        HourMicrosecond => ((h * 100 + mi) * 100 + s) * 1_000_000 + us,
        HourSecond => (h * 100 + mi) * 100 + s,
        HourMinute => h * 100 + mi,
        DayMicrosecond => (((d * 100 + h) * 100 + mi) * 100 + s) * 1_000_000 + us,
        DaySecond => ((d * 100 + h) * 100 + mi) * 100 + s,
        DayMinute => (d * 100 + h) * 100 + mi,
        DayHour => d * 100 + h,
        YearMonth => y * 100 + mo,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> i32 {
        match parse_datetime(s) {
            Some(Parsed::Date(d)) => d,
            other => panic!("{s}: {other:?}"),
        }
    }
    fn dt(s: &str) -> i64 {
        match parse_datetime(s) {
            Some(Parsed::DateTime(m)) => m,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn civil_round_trips_over_the_whole_range() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(0, 1, 1), MIN_DAYS);
        assert_eq!(days_from_civil(9999, 12, 31), MAX_DAYS);
        let mut prev = None;
        for z in (MIN_DAYS..=MAX_DAYS).step_by(97) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
            assert!(d >= 1 && d <= days_in_month(y, m));
            if let Some(p) = prev {
                assert!(z > p);
            }
            prev = Some(z);
        }
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn validity_follows_the_calendar() {
        assert!(make_date(2024, 2, 29).is_some());
        assert!(make_date(2023, 2, 29).is_none());
        assert!(make_date(1900, 2, 29).is_none());
        assert!(make_date(2000, 2, 29).is_some());
        assert!(make_date(2024, 4, 31).is_none());
        assert!(make_date(2024, 0, 1).is_none());
        assert!(make_date(2024, 1, 0).is_none());
        assert!(make_date(10_000, 1, 1).is_none());
    }

    #[test]
    fn parses_mysql_date_forms() {
        let d = date("2024-01-05");
        assert_eq!(format_date(d), "2024-01-05");
        for s in [
            "2024-1-5",
            "2024/01/05",
            "24-01-05",
            "20240105",
            "240105",
            " 2024-01-05 ",
            "2024.01.05",
        ] {
            assert_eq!(date(s), d, "{s}");
        }
        assert_eq!(format_date(date("69-12-31")), "2069-12-31");
        assert_eq!(format_date(date("70-01-01")), "1970-01-01");
        for bad in [
            "",
            "2024-02-30",
            "2024-13-01",
            "0000-00-00",
            "2024-01",
            "abc",
            "2024-01-05x",
            "2024--01-05",
            "2024-01-05T",
            "1234567",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn parses_mysql_datetime_forms() {
        let m = dt("2024-01-05 10:20:30");
        assert_eq!(format_datetime(m), "2024-01-05 10:20:30");
        assert_eq!(dt("2024-01-05T10:20:30"), m);
        assert_eq!(dt("20240105102030"), m);
        assert_eq!(dt("2024-01-05 10.20.30"), m);
        assert_eq!(
            format_datetime(dt("2024-01-05 10:20")),
            "2024-01-05 10:20:00"
        );
        assert_eq!(
            format_datetime(dt("2024-01-05 10:20:30.5")),
            "2024-01-05 10:20:30.500000"
        );
        assert_eq!(
            format_datetime(dt("2024-01-05 10:20:30.1234567")),
            "2024-01-05 10:20:30.123457"
        );
        assert_eq!(
            format_datetime(dt("1969-12-31 23:59:59")),
            "1969-12-31 23:59:59"
        );
        for bad in [
            "2024-01-05 24:00:00",
            "2024-01-05 10:60",
            "2024-01-05 10:20:30.x",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn times_parse_and_print() {
        let t = |s: &str| parse_time(s).map(format_time);
        assert_eq!(t("10:20:30").as_deref(), Some("10:20:30"));
        assert_eq!(t("-1:2:3").as_deref(), Some("-01:02:03"));
        assert_eq!(t("838:59:59").as_deref(), Some("838:59:59"));
        assert_eq!(t("1 02:00:00").as_deref(), Some("26:00:00"));
        assert_eq!(t("102030").as_deref(), Some("10:20:30"));
        assert_eq!(t("10:20").as_deref(), Some("10:20:00"));
        assert_eq!(t("30").as_deref(), Some("00:00:30"));
        assert_eq!(t("10:20:30.25").as_deref(), Some("10:20:30.250000"));
        assert_eq!(t("2024-01-05 10:20:30").as_deref(), Some("10:20:30"));
        assert_eq!(t("839:00:00"), None);
        assert_eq!(t("10:61:00"), None);
        assert_eq!(t("abc"), None);
    }

    #[test]
    fn numbers_of_calendar_values() {
        assert_eq!(date_number(date("2024-01-05")), 20_240_105);
        assert_eq!(
            datetime_number(dt("2024-01-05 10:20:30")),
            20_240_105_102_030.0
        );
        assert_eq!(time_number(-parse_time("01:02:03").unwrap()), -10_203.0);
    }

    #[test]
    fn intervals_add_months_then_micros_and_clamp_the_day() {
        let d = |s: &str| parse_datetime(s).unwrap().micros();
        let add = |s: &str, iv: Interval| add_interval(d(s), iv).map(format_datetime);
        let of = |u: Unit, n: i64| Interval::of(u, n).unwrap();
        assert_eq!(
            add("2024-01-31", of(Unit::Month, 1)).as_deref(),
            Some("2024-02-29 00:00:00")
        );
        assert_eq!(
            add("2023-01-31", of(Unit::Month, 1)).as_deref(),
            Some("2023-02-28 00:00:00")
        );
        assert_eq!(
            add("2024-02-29", of(Unit::Year, -1)).as_deref(),
            Some("2023-02-28 00:00:00")
        );
        assert_eq!(
            add("2024-01-01", of(Unit::Day, -1)).as_deref(),
            Some("2023-12-31 00:00:00")
        );
        assert_eq!(
            add("2024-01-01 23:59:59", of(Unit::Second, 1)).as_deref(),
            Some("2024-01-02 00:00:00")
        );
        assert_eq!(
            add("2024-03-31", of(Unit::Quarter, 1)).as_deref(),
            Some("2024-06-30 00:00:00")
        );
        assert_eq!(add("9999-12-31", of(Unit::Day, 1)), None);
        assert_eq!(add("0000-01-01", of(Unit::Day, -1)), None);
        assert_eq!(add("2024-01-01", of(Unit::Year, 10_000)), None);
        assert!(Interval::of(Unit::Week, i64::MAX).is_none());
    }

    #[test]
    fn interval_strings_fill_from_the_right() {
        let p = |u: Unit, s: &str| Interval::parse(u, s);
        assert_eq!(
            p(Unit::DaySecond, "1 10:30:05").map(|i| i.micros),
            Some(MICROS_PER_DAY + (10 * 3600 + 30 * 60 + 5) * MICROS_PER_SEC)
        );
        assert_eq!(
            p(Unit::DaySecond, "30:05").map(|i| i.micros),
            Some((30 * 60 + 5) * MICROS_PER_SEC)
        );
        assert_eq!(p(Unit::YearMonth, "2-6").map(|i| i.months), Some(30));
        assert_eq!(p(Unit::YearMonth, "-1-1").map(|i| i.months), Some(-13));
        assert_eq!(
            p(Unit::SecondMicrosecond, "1.5").map(|i| i.micros),
            Some(1_500_000)
        );
        assert_eq!(p(Unit::Second, "1.5").map(|i| i.micros), Some(1_500_000));
        assert_eq!(
            p(Unit::Day, "1.5").map(|i| i.micros),
            Some(2 * MICROS_PER_DAY)
        );
        assert_eq!(p(Unit::HourMinute, "1:2:3"), None);
        assert_eq!(p(Unit::Day, "x"), None);
    }

    #[test]
    fn weekdays_weeks_and_formats() {
        let f = Fields::of_datetime(
            parse_datetime("2024-01-05 14:07:09.000123")
                .unwrap()
                .micros(),
        );
        assert_eq!(day_name(f.days()), "Friday");
        assert_eq!(weekday(f.days()), 4);
        assert_eq!(
            date_format(&f, "%Y-%m-%d %H:%i:%s.%f %p %W %a %M %b %D %j %w %y %c %e %k %l %h %T %r %%x %Q"),
            "2024-01-05 14:07:09.000123 PM Friday Fri January Jan 5th 005 5 24 1 5 14 2 02 14:07:09 02:07:09 PM %x Q"
        );
        // 2024-01-01 is a Monday: the first Sunday is the 7th.
        let w = |s: &str| week_mode0(&Fields::of_datetime(parse_datetime(s).unwrap().micros()));
        assert_eq!(w("2024-01-06"), 0);
        assert_eq!(w("2024-01-07"), 1);
        assert_eq!(w("2024-12-31"), 52);
        // 2023-01-01 is a Sunday.
        assert_eq!(w("2023-01-01"), 1);
        assert_eq!(ordinal_suffix(11), "th");
        assert_eq!(ordinal_suffix(22), "nd");
        assert_eq!(extract(Unit::YearMonth, &f), 202_401);
        assert_eq!(extract(Unit::Quarter, &f), 1);
        assert_eq!(extract(Unit::DayHour, &f), 514);
        assert_eq!(extract(Unit::Microsecond, &f), 123);
    }

    #[test]
    fn unit_codes_round_trip() {
        for u in Unit::ALL {
            assert_eq!(Unit::from_code(u.code()), Some(u));
            assert_eq!(Unit::parse(u.name()), Some(u));
        }
        assert_eq!(Unit::from_code(99), None);
    }
}
