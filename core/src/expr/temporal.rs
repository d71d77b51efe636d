//! The date and time functions (`DATE()`, `YEAR()`, `DATE_ADD`,
//! `DATEDIFF`, `EXTRACT`, `DATE_FORMAT`, `UNIX_TIMESTAMP`, …) and casts to
//! `DATE` / `DATETIME` / `TIME`, on [`Value`]s. The calendar itself is in
//! [`crate::datetime`].
//!
//! As in MySQL, an argument that is no valid date makes the function NULL
//! with a warning (1292 "Incorrect datetime value"), and a result outside
//! `0000-01-01 ..= 9999-12-31` is NULL with a warning too. `NOW()`,
//! `CURDATE()`, `CURTIME()` and `UNIX_TIMESTAMP()` are not here: the
//! planner reads the host's wall clock once per statement and puts their
//! value in as a constant, so they are fixed for the whole statement.

use crate::data::{DataType, Value};
use crate::datetime::{self, Fields, Interval, Parsed, Unit, MICROS_PER_DAY, MICROS_PER_SEC};
use crate::decimal::Dec;

use super::{EvalCx, ExecError};

/// A date or time function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemporalFn {
    /// `DATE(x)`: the date part.
    Date,
    /// `TIME(x)`: the time part.
    Time,
    /// `YEAR(x)`
    Year,
    /// `MONTH(x)`
    Month,
    /// `DAY(x)` / `DAYOFMONTH(x)`
    Day,
    /// `HOUR(x)` (of a time too)
    Hour,
    /// `MINUTE(x)`
    Minute,
    /// `SECOND(x)`
    Second,
    /// `MICROSECOND(x)`
    Microsecond,
    /// `QUARTER(x)`
    Quarter,
    /// `WEEK(x)` (mode 0)
    Week,
    /// `DAYOFWEEK(x)`: 1 = Sunday … 7 = Saturday
    DayOfWeek,
    /// `WEEKDAY(x)`: 0 = Monday … 6 = Sunday
    WeekDay,
    /// `DAYOFYEAR(x)`
    DayOfYear,
    /// `DAYNAME(x)`
    DayName,
    /// `MONTHNAME(x)`
    MonthName,
    /// `LAST_DAY(x)`
    LastDay,
    /// `DATE_ADD(d, INTERVAL n unit)` / `d + INTERVAL n unit` (args: d, n,
    /// unit code).
    DateAdd,
    /// `DATE_SUB(d, INTERVAL n unit)` / `d - INTERVAL n unit`.
    DateSub,
    /// `DATEDIFF(a, b)`: days from `b` to `a`.
    DateDiff,
    /// `TIMEDIFF(a, b)`
    TimeDiff,
    /// `EXTRACT(unit FROM d)` (args: unit code, d).
    Extract,
    /// `DATE_FORMAT(d, fmt)`
    DateFormat,
    /// `UNIX_TIMESTAMP(d)` (the one-argument form; the zero-argument form
    /// is a constant of the statement).
    UnixTimestamp,
    /// `FROM_UNIXTIME(n[, fmt])`
    FromUnixtime,
}

impl TemporalFn {
    /// The function of a SQL name with its arity bounds.
    pub fn by_name(name: &str) -> Option<(TemporalFn, usize, usize)> {
        use TemporalFn::*;
        Some(match name {
            "date" => (Date, 1, 1),
            "time" => (Time, 1, 1),
            "year" => (Year, 1, 1),
            "month" => (Month, 1, 1),
            "day" | "dayofmonth" => (Day, 1, 1),
            "hour" => (Hour, 1, 1),
            "minute" => (Minute, 1, 1),
            "second" => (Second, 1, 1),
            "microsecond" => (Microsecond, 1, 1),
            "quarter" => (Quarter, 1, 1),
            "week" => (Week, 1, 1),
            "dayofweek" => (DayOfWeek, 1, 1),
            "weekday" => (WeekDay, 1, 1),
            "dayofyear" => (DayOfYear, 1, 1),
            "dayname" => (DayName, 1, 1),
            "monthname" => (MonthName, 1, 1),
            "last_day" => (LastDay, 1, 1),
            "datediff" => (DateDiff, 2, 2),
            "timediff" => (TimeDiff, 2, 2),
            "date_format" => (DateFormat, 2, 2),
            "unix_timestamp" => (UnixTimestamp, 1, 1),
            "from_unixtime" => (FromUnixtime, 1, 2),
            _ => return None,
        })
    }

    /// The SQL name (for EXPLAIN).
    pub fn name(self) -> &'static str {
        use TemporalFn::*;
        match self {
            Date => "date",
            Time => "time",
            Year => "year",
            Month => "month",
            Day => "dayofmonth",
            Hour => "hour",
            Minute => "minute",
            Second => "second",
            Microsecond => "microsecond",
            Quarter => "quarter",
            Week => "week",
            DayOfWeek => "dayofweek",
            WeekDay => "weekday",
            DayOfYear => "dayofyear",
            DayName => "dayname",
            MonthName => "monthname",
            LastDay => "last_day",
            DateAdd => "date_add",
            DateSub => "date_sub",
            DateDiff => "datediff",
            TimeDiff => "timediff",
            Extract => "extract",
            DateFormat => "date_format",
            UnixTimestamp => "unix_timestamp",
            FromUnixtime => "from_unixtime",
        }
    }

    /// The result type given the argument types (`unit` is the interval
    /// unit of `DATE_ADD` / `DATE_SUB`).
    pub fn data_type(self, args: &[DataType], unit: Option<Unit>) -> DataType {
        use TemporalFn::*;
        let first = args.first().copied().unwrap_or(DataType::Null);
        match self {
            Date | LastDay => DataType::Date,
            Time | TimeDiff => DataType::Time,
            DayName | MonthName | DateFormat => DataType::Text,
            DateAdd | DateSub => match (first, unit) {
                (DataType::Null, _) => DataType::Null,
                (DataType::Date, Some(u)) if u.keeps_date() => DataType::Date,
                (DataType::Date | DataType::DateTime, _) => DataType::DateTime,
                (DataType::Time, Some(u)) if !u.keeps_date() || u == Unit::Day => DataType::Time,
                // A string (or number) in, a string out, as MySQL.
                _ => DataType::Text,
            },
            FromUnixtime if args.len() == 2 => DataType::Text,
            FromUnixtime => DataType::DateTime,
            _ => DataType::Int,
        }
    }
}

/// A warning for an argument that is no date ("Incorrect datetime value"),
/// and NULL.
fn bad(cx: &mut EvalCx) -> Value {
    cx.warnings += 1;
    Value::Null
}

/// The date-or-datetime fields of an argument; `None` (after counting a
/// warning, unless NULL) when it is no date.
/// A `TIME` has no date: cascade answers NULL with a warning where MySQL
/// would take today's.
fn fields(v: &Value, cx: &mut EvalCx) -> Option<Fields> {
    match v.to_parsed() {
        Some(p) => Some(Fields::of_datetime(p.micros())),
        None if v.is_null() => None,
        None => {
            cx.warnings += 1;
            None
        }
    }
}

/// Calls a date or time function on evaluated arguments.
pub fn call(f: TemporalFn, a: &[Value], cx: &mut EvalCx) -> Result<Value, ExecError> {
    use TemporalFn::*;
    let arg = |i: usize| a.get(i).cloned().unwrap_or(Value::Null);
    let first = arg(0);
    if first.is_null() && !matches!(f, Extract) {
        return Ok(Value::Null);
    }
    let int = |x: i64| Ok(Value::Int(x));
    Ok(match f {
        Date => match first.to_date() {
            Some(d) => Value::Date(d),
            None => bad(cx),
        },
        Time => match first.to_time() {
            Some(t) => Value::Time(t),
            None => bad(cx),
        },
        Hour | Minute | Second | Microsecond => {
            // `HOUR('10:20:30')` reads the text as a time, as MySQL.
            let Some(t) = first.to_time() else {
                return Ok(bad(cx));
            };
            let a = t.unsigned_abs() as i64;
            let secs = a / MICROS_PER_SEC;
            return int(match f {
                Hour => secs / 3600,
                Minute => secs / 60 % 60,
                Second => secs % 60,
                _ => a % MICROS_PER_SEC,
            });
        }
        Year | Month | Day | Quarter | Week | DayOfWeek | WeekDay | DayOfYear | DayName
        | MonthName | LastDay => {
            let Some(fl) = fields(&first, cx) else {
                return Ok(Value::Null);
            };
            match f {
                Year => Value::Int(fl.year),
                Month => Value::Int(i64::from(fl.month)),
                Day => Value::Int(i64::from(fl.day)),
                Quarter => Value::Int(i64::from(fl.month.div_ceil(3))),
                Week => Value::Int(i64::from(datetime::week_mode0(&fl))),
                DayOfWeek => Value::Int(i64::from((datetime::weekday(fl.days()) + 1) % 7 + 1)),
                WeekDay => Value::Int(i64::from(datetime::weekday(fl.days()))),
                DayOfYear => Value::Int(i64::from(datetime::day_of_year(&fl))),
                DayName => Value::Text(datetime::day_name(fl.days()).into()),
                MonthName => Value::Text(datetime::month_name(fl.month).into()),
                _ => {
                    let last = datetime::days_in_month(fl.year, fl.month);
                    match datetime::make_date(fl.year, fl.month, last) {
                        Some(d) => Value::Date(d),
                        None => bad(cx),
                    }
                }
            }
        }
        DateAdd | DateSub => {
            let unit = match arg(2) {
                Value::Int(c) => Unit::from_code(c),
                _ => None,
            };
            let Some(unit) = unit else {
                return Ok(Value::Null);
            };
            let iv = match interval(unit, &arg(1)) {
                Some(iv) => iv,
                None if arg(1).is_null() => return Ok(Value::Null),
                None => return Ok(bad(cx)),
            };
            let iv = if f == DateSub {
                match iv.checked_neg() {
                    Some(iv) => iv,
                    None => return Ok(bad(cx)),
                }
            } else {
                iv
            };
            add(&first, unit, iv, cx)
        }
        DateDiff => {
            let (Some(x), Some(y)) = (first.to_date(), arg(1).to_date()) else {
                return Ok(if arg(1).is_null() {
                    Value::Null
                } else {
                    bad(cx)
                });
            };
            Value::Int(i64::from(x) - i64::from(y))
        }
        TimeDiff => {
            let b = arg(1);
            if b.is_null() {
                return Ok(Value::Null);
            }
            // Two datetimes, or two times.
            let diff = match (first.to_parsed(), b.to_parsed()) {
                (Some(x), Some(y)) if !matches!(first, Value::Time(_)) => {
                    x.micros().checked_sub(y.micros())
                }
                _ => match (first.to_time(), b.to_time()) {
                    (Some(x), Some(y)) => x.checked_sub(y),
                    _ => None,
                },
            };
            match diff {
                Some(d) if d.abs() <= datetime::MAX_TIME => Value::Time(d),
                // Past ±838:59:59 MySQL clamps with a warning.
                Some(d) => {
                    cx.warnings += 1;
                    Value::Time(d.clamp(-datetime::MAX_TIME, datetime::MAX_TIME))
                }
                None => bad(cx),
            }
        }
        Extract => {
            let d = arg(1);
            if d.is_null() {
                return Ok(Value::Null);
            }
            let Some(unit) = first.as_i64().and_then(Unit::from_code) else {
                return Ok(Value::Null);
            };
            let fl = if let Value::Time(t) = d {
                // EXTRACT(HOUR FROM TIME '30:00:00') is 30.
                let a = t.unsigned_abs() as i64;
                let s = a / MICROS_PER_SEC;
                let sign = if t < 0 { -1 } else { 1 };
                return int(sign
                    * match unit {
                        Unit::Hour => s / 3600,
                        Unit::Minute => s / 60 % 60,
                        Unit::Second => s % 60,
                        Unit::Microsecond => a % MICROS_PER_SEC,
                        _ => 0,
                    });
            } else {
                match fields(&d, cx) {
                    Some(f) => f,
                    None => return Ok(Value::Null),
                }
            };
            Value::Int(datetime::extract(unit, &fl))
        }
        DateFormat => {
            let Some(fmt) = arg(1).to_text() else {
                return Ok(Value::Null);
            };
            let fl = match &first {
                Value::Time(t) => Fields::of_datetime(t.rem_euclid(MICROS_PER_DAY)),
                other => match fields(other, cx) {
                    Some(f) => f,
                    None => return Ok(Value::Null),
                },
            };
            Value::Text(datetime::date_format(&fl, &fmt).into())
        }
        UnixTimestamp => {
            let Some(m) = first.to_datetime() else {
                return Ok(bad(cx));
            };
            unix_seconds(m)
        }
        FromUnixtime => {
            let m = match &first {
                Value::Int(s) => s.checked_mul(MICROS_PER_SEC),
                other => other.as_f64().and_then(|s| {
                    let us = (s * 1e6).round();
                    (us.abs() < 9.2e18).then_some(us as i64)
                }),
            };
            // MySQL takes 0 ..= 32536771199 (3001-01-18 23:59:59 UTC).
            let Some(m) = m.filter(|m| (0..=32_536_771_199 * MICROS_PER_SEC).contains(m)) else {
                return Ok(Value::Null);
            };
            match a.get(1) {
                None => Value::DateTime(m),
                Some(fmt) => match fmt.to_text() {
                    Some(fmt) => {
                        Value::Text(datetime::date_format(&Fields::of_datetime(m), &fmt).into())
                    }
                    None => Value::Null,
                },
            }
        }
    })
}

/// `UNIX_TIMESTAMP(m)`: whole seconds as an integer, or a `DECIMAL(…, 6)`
/// when there are microseconds; 0 before 1970 (MySQL's answer for a date
/// it cannot represent).
pub fn unix_seconds(micros: i64) -> Value {
    if micros < 0 {
        return Value::Int(0);
    }
    if micros % MICROS_PER_SEC == 0 {
        return Value::Int(micros / MICROS_PER_SEC);
    }
    Value::Decimal(Dec::from_scaled(micros, 6))
}

/// The interval `INTERVAL v unit`: a number (seconds keep a fraction,
/// other units round), or a string (`'1.5'`).
fn interval(unit: Unit, v: &Value) -> Option<Interval> {
    match v {
        Value::Null => None,
        Value::Int(n) => Interval::of(unit, *n),
        Value::Text(s) => Interval::parse(unit, s),
        other => Interval::of_number(unit, other.as_f64()?),
    }
}

/// `d + iv` with MySQL's result types (see [`TemporalFn::data_type`]).
fn add(d: &Value, unit: Unit, iv: Interval, cx: &mut EvalCx) -> Value {
    if let Value::Time(t) = d {
        if iv.months != 0 {
            return bad(cx);
        }
        return match t.checked_add(iv.micros) {
            Some(r) if r.abs() <= datetime::MAX_TIME => Value::Time(r),
            _ => bad(cx),
        };
    }
    let Some(p) = d.to_parsed() else {
        return bad(cx);
    };
    let Some(m) = datetime::add_interval(p.micros(), iv) else {
        return bad(cx);
    };
    let is_text = !matches!(d, Value::Date(_) | Value::DateTime(_));
    let out = match p {
        Parsed::Date(_) if unit.keeps_date() => Value::Date(m.div_euclid(MICROS_PER_DAY) as i32),
        _ => Value::DateTime(m),
    };
    if is_text {
        // A string in, a string out.
        Value::Text(out.to_string().into())
    } else {
        out
    }
}

/// `CAST(v AS DATE | DATETIME | TIME)`: NULL with a warning when `v` is no
/// such value, or error 1292 in strict (DML) evaluation.
pub fn cast(v: Value, ty: DataType, cx: &mut EvalCx) -> Result<Value, ExecError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let out = match ty {
        DataType::Date => v.to_date().map(Value::Date),
        DataType::DateTime => v.to_datetime().map(Value::DateTime),
        _ => v.to_time().map(Value::Time),
    };
    match out {
        Some(x) => Ok(x),
        None if cx.strict => Err(ExecError::WrongValue {
            ty: temporal_name(ty),
            value: v.to_string(),
        }),
        None => Ok(bad(cx)),
    }
}

/// MySQL's word for a calendar type in "Incorrect … value".
pub fn temporal_name(ty: DataType) -> &'static str {
    match ty {
        DataType::Date => "date",
        DataType::Time => "time",
        _ => "datetime",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Value {
        Value::Text(s.into())
    }
    fn run(f: TemporalFn, a: &[Value]) -> (Value, u32) {
        let mut cx = EvalCx::default();
        let v = call(f, a, &mut cx).expect("no error");
        (v, cx.warnings)
    }
    fn text(f: TemporalFn, a: &[Value]) -> String {
        run(f, a).0.to_string()
    }
    fn one(f: TemporalFn, a: &Value) -> String {
        text(f, std::slice::from_ref(a))
    }

    #[test]
    fn parts_of_dates_and_times() {
        use TemporalFn::*;
        let d = t("2024-03-05 14:07:09.25");
        assert_eq!(one(Year, &d), "2024");
        assert_eq!(one(Month, &d), "3");
        assert_eq!(one(Day, &d), "5");
        assert_eq!(one(Hour, &d), "14");
        assert_eq!(one(Minute, &d), "7");
        assert_eq!(one(Second, &d), "9");
        assert_eq!(one(Microsecond, &d), "250000");
        assert_eq!(one(Quarter, &d), "1");
        assert_eq!(one(DayOfWeek, &d), "3");
        assert_eq!(one(WeekDay, &d), "1");
        assert_eq!(one(DayOfYear, &d), "65");
        assert_eq!(one(DayName, &d), "Tuesday");
        assert_eq!(one(MonthName, &d), "March");
        assert_eq!(text(LastDay, &[t("2024-02-10")]), "2024-02-29");
        assert_eq!(one(Date, &d), "2024-03-05");
        assert_eq!(one(Time, &d), "14:07:09.250000");
        assert_eq!(text(Hour, &[t("30:00:00")]), "30");
        assert_eq!(run(Year, &[t("2024-02-30")]), (Value::Null, 1));
        assert_eq!(run(Year, &[Value::Null]), (Value::Null, 0));
    }

    #[test]
    fn adding_intervals_keeps_mysql_types() {
        use TemporalFn::*;
        let day = Value::Int(Unit::Day.code());
        let hour = Value::Int(Unit::Hour.code());
        let d = Value::Date(datetime::make_date(2024, 1, 31).unwrap());
        assert_eq!(
            run(DateAdd, &[d.clone(), Value::Int(1), day.clone()]).0,
            Value::Date(datetime::make_date(2024, 2, 1).unwrap())
        );
        assert_eq!(
            text(DateAdd, &[d.clone(), Value::Int(1), hour.clone()]),
            "2024-01-31 01:00:00"
        );
        assert_eq!(
            text(
                DateSub,
                &[d.clone(), Value::Int(1), Value::Int(Unit::Month.code())]
            ),
            "2023-12-31"
        );
        // Text in, text out.
        assert_eq!(
            run(DateAdd, &[t("2024-01-01"), Value::Int(1), day.clone()]).0,
            t("2024-01-02")
        );
        assert_eq!(
            run(DateAdd, &[t("9999-12-31"), Value::Int(1), day.clone()]),
            (Value::Null, 1)
        );
        assert_eq!(
            run(DateAdd, &[t("nope"), Value::Int(1), day.clone()]),
            (Value::Null, 1)
        );
        assert_eq!(
            text(
                DateAdd,
                &[
                    t("2024-01-01"),
                    Value::Float(1.5),
                    Value::Int(Unit::Second.code())
                ]
            ),
            "2024-01-01 00:00:01.500000"
        );
        assert_eq!(run(DateAdd, &[d, Value::Null, day]), (Value::Null, 0));
    }

    #[test]
    fn differences_extract_format_and_unix_time() {
        use TemporalFn::*;
        assert_eq!(
            text(DateDiff, &[t("2024-03-01 23:00:00"), t("2024-02-28")]),
            "2"
        );
        assert_eq!(
            text(
                TimeDiff,
                &[t("2024-01-02 00:00:00"), t("2024-01-01 23:00:00")]
            ),
            "01:00:00"
        );
        assert_eq!(
            text(
                Extract,
                &[Value::Int(Unit::YearMonth.code()), t("2024-03-05")]
            ),
            "202403"
        );
        assert_eq!(
            text(DateFormat, &[t("2024-03-05 14:07:09"), t("%W %D %M %Y %r")]),
            "Tuesday 5th March 2024 02:07:09 PM"
        );
        assert_eq!(
            text(UnixTimestamp, &[t("2024-01-01 00:00:00")]),
            "1704067200"
        );
        assert_eq!(
            text(UnixTimestamp, &[t("2024-01-01 00:00:00.5")]),
            "1704067200.500000"
        );
        assert_eq!(text(UnixTimestamp, &[t("1969-12-31")]), "0");
        assert_eq!(
            text(FromUnixtime, &[Value::Int(1_704_067_200)]),
            "2024-01-01 00:00:00"
        );
        assert_eq!(
            text(FromUnixtime, &[Value::Int(1_704_067_200), t("%Y")]),
            "2024"
        );
        assert_eq!(run(FromUnixtime, &[Value::Int(-1)]).0, Value::Null);
    }

    #[test]
    fn casts_warn_or_fail_in_strict_mode() {
        let mut cx = EvalCx::default();
        assert_eq!(
            cast(t("2024-01-05 10:00:00"), DataType::Date, &mut cx)
                .unwrap()
                .to_string(),
            "2024-01-05"
        );
        assert_eq!(
            cast(t("2024-01-05"), DataType::DateTime, &mut cx)
                .unwrap()
                .to_string(),
            "2024-01-05 00:00:00"
        );
        assert_eq!(cast(t("x"), DataType::Date, &mut cx).unwrap(), Value::Null);
        assert_eq!(cx.warnings, 1);
        let mut strict = EvalCx {
            strict: true,
            ..EvalCx::default()
        };
        assert!(matches!(
            cast(t("2024-13-01"), DataType::Date, &mut strict),
            Err(ExecError::WrongValue { ty: "date", .. })
        ));
    }
}
