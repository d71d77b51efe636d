//! Columnar data: SQL types, scalar values, columns and batches.
//!
//! Types follow MySQL: booleans are integers (`TRUE` is 1), comparisons
//! return 0/1, and `NULL` has its own type until it meets another. Dates,
//! datetimes and times are compact integers (see [`crate::datetime`]);
//! decimals are exact ([`crate::decimal`]).

use crate::datetime::{self, Parsed};
use crate::decimal::Dec;
use serde::{Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// A column's SQL type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum DataType {
    /// 64-bit signed integer (`BIGINT`, `INT`, `BOOLEAN`).
    Int,
    /// 64-bit float (`DOUBLE`).
    Float,
    /// UTF-8 text (`VARCHAR`, `TEXT`).
    Text,
    /// `DATE`: days since 1970-01-01.
    Date,
    /// `DATETIME` (and `TIMESTAMP`, kept in UTC): microseconds since
    /// 1970-01-01 00:00:00.
    DateTime,
    /// `TIME`: signed microseconds.
    Time,
    /// Exact `DECIMAL`.
    Decimal,
    /// The type of a bare `NULL`.
    Null,
}

impl DataType {
    /// The MySQL-style name (`BIGINT`, `DOUBLE`, `VARCHAR`, `NULL`).
    pub fn sql_name(self) -> &'static str {
        match self {
            DataType::Int => "BIGINT",
            DataType::Float => "DOUBLE",
            DataType::Text => "VARCHAR",
            DataType::Date => "DATE",
            DataType::DateTime => "DATETIME",
            DataType::Time => "TIME",
            DataType::Decimal => "DECIMAL",
            DataType::Null => "NULL",
        }
    }
    /// Whether a number type (`BIGINT`, `DOUBLE`, `DECIMAL`).
    pub fn is_numeric(self) -> bool {
        matches!(self, DataType::Int | DataType::Float | DataType::Decimal)
    }
    /// Whether a calendar type (`DATE`, `DATETIME`, `TIME`).
    pub fn is_temporal(self) -> bool {
        matches!(self, DataType::Date | DataType::DateTime | DataType::Time)
    }
    /// The common type of two operands (for CASE, UNION, COALESCE, …).
    pub fn unify(self, other: DataType) -> DataType {
        use DataType::*;
        match (self, other) {
            (Null, x) | (x, Null) => x,
            (a, b) if a == b => a,
            (Int, Float) | (Float, Int) | (Decimal, Float) | (Float, Decimal) => Float,
            (Int, Decimal) | (Decimal, Int) => Decimal,
            (Date, DateTime) | (DateTime, Date) => DateTime,
            _ => Text,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sql_name())
    }
}

/// One SQL value.
#[derive(Clone, Debug)]
pub enum Value {
    /// `NULL`.
    Null,
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text.
    Text(Arc<str>),
    /// A date: days since 1970-01-01.
    Date(i32),
    /// A datetime: microseconds since 1970-01-01 00:00:00.
    DateTime(i64),
    /// A time: signed microseconds.
    Time(i64),
    /// An exact decimal.
    Decimal(Dec),
}

/// Heap bytes of one shared string: its allocation holds two reference
/// counts (16 bytes) and the text, rounded up to 8 bytes.
#[inline]
pub fn text_heap_bytes(s: &str) -> usize {
    16 + s.len().next_multiple_of(8)
}

impl Value {
    /// Heap bytes this value owns beyond its own size (a string's shared
    /// allocation; see [`text_heap_bytes`]).
    #[inline]
    pub fn heap_bytes(&self) -> usize {
        match self {
            Value::Text(s) => text_heap_bytes(s),
            _ => 0,
        }
    }
    /// Whether this is `NULL`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
    /// The type.
    pub fn data_type(&self) -> DataType {
        match self {
            Value::Null => DataType::Null,
            Value::Int(_) => DataType::Int,
            Value::Float(_) => DataType::Float,
            Value::Text(_) => DataType::Text,
            Value::Date(_) => DataType::Date,
            Value::DateTime(_) => DataType::DateTime,
            Value::Time(_) => DataType::Time,
            Value::Decimal(_) => DataType::Decimal,
        }
    }
    /// As a float, MySQL style (text parses its numeric prefix, else 0; a
    /// date is `YYYYMMDD`, a datetime `YYYYMMDDhhmmss`, a time `hhmmss`).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Null => None,
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Text(s) => Some(parse_numeric_prefix(s)),
            Value::Date(d) => Some(datetime::date_number(*d) as f64),
            Value::DateTime(m) => Some(datetime::datetime_number(*m)),
            Value::Time(t) => Some(datetime::time_number(*t)),
            Value::Decimal(d) => Some(d.to_f64()),
        }
    }
    /// As an integer, MySQL style (floats and decimals round half away
    /// from zero).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Null => None,
            Value::Int(i) => Some(*i),
            Value::Date(d) => Some(datetime::date_number(*d)),
            Value::Decimal(d) => Some(d.to_i64().unwrap_or_else(|| d.to_f64().round() as i64)),
            other => other.as_f64().map(|f| f.round() as i64),
        }
    }
    /// SQL truthiness: `None` for NULL, else non-zero.
    pub fn truthy(&self) -> Option<bool> {
        match self {
            Value::Null => None,
            Value::Int(i) => Some(*i != 0),
            Value::Decimal(d) => Some(!d.is_zero()),
            other => other.as_f64().map(|f| f != 0.0),
        }
    }
    /// As an exact decimal, MySQL style (text reads its numeric prefix);
    /// `None` for NULL, or a number past 28 digits.
    pub fn to_dec(&self) -> Option<Dec> {
        match self {
            Value::Null => None,
            Value::Int(i) => Some(Dec::from_i64(*i)),
            Value::Decimal(d) => Some(*d),
            Value::Date(d) => Some(Dec::from_i64(datetime::date_number(*d))),
            Value::Text(s) => Dec::parse(s).or_else(|| Dec::from_f64(parse_numeric_prefix(s))),
            other => Dec::from_f64(other.as_f64()?),
        }
    }
    /// As a date (days), MySQL style: a datetime's date, text parsed
    /// (`'2024-01-05'`, `'20240105'`, a datetime string), a number read as
    /// `YYYYMMDD[hhmmss]`. `None` for NULL or an invalid date.
    pub fn to_date(&self) -> Option<i32> {
        match self {
            Value::Date(d) => Some(*d),
            other => other.to_parsed().map(Parsed::days),
        }
    }
    /// As a datetime (microseconds): a date at midnight, text parsed, a
    /// number read as `YYYYMMDD[hhmmss]`. `None` for NULL or invalid.
    pub fn to_datetime(&self) -> Option<i64> {
        match self {
            Value::DateTime(m) => Some(*m),
            other => other.to_parsed().map(Parsed::micros),
        }
    }
    /// As a date or datetime, keeping which it was (text `'2024-01-05'` is
    /// a date, `'2024-01-05 10:00'` a datetime).
    pub fn to_parsed(&self) -> Option<Parsed> {
        match self {
            Value::Null | Value::Time(_) => None,
            Value::Date(d) => Some(Parsed::Date(*d)),
            Value::DateTime(m) => Some(Parsed::DateTime(*m)),
            Value::Text(s) => datetime::parse_datetime(s),
            Value::Int(i) => datetime::parse_datetime(&i.to_string()),
            Value::Float(_) | Value::Decimal(_) => {
                let t = self.to_text()?;
                datetime::parse_datetime(&t)
            }
        }
    }
    /// As a time (microseconds): a datetime's time of day, a date's
    /// midnight, text parsed (`'10:20:30'`), a number read as `hhmmss`.
    pub fn to_time(&self) -> Option<i64> {
        match self {
            Value::Null => None,
            Value::Time(t) => Some(*t),
            Value::Date(_) => Some(0),
            Value::DateTime(m) => Some(m.rem_euclid(datetime::MICROS_PER_DAY)),
            Value::Text(s) => datetime::parse_time(s),
            other => datetime::parse_time(&other.to_text()?),
        }
    }
    /// The value as text (MySQL's rendering).
    pub fn to_text(&self) -> Option<Arc<str>> {
        match self {
            Value::Null => None,
            Value::Text(s) => Some(s.clone()),
            other => Some(other.to_string().into()),
        }
    }
    /// SQL comparison (`None` if either is NULL). Numbers compare
    /// numerically; text with a number compares numerically, as MySQL does.
    ///
    /// Decimals compare exactly with integers and decimals. A date or
    /// datetime compares with a date, a datetime or text as a datetime (the
    /// text converted, as MySQL converts the constant in `d = '2024-01-05'`;
    /// text that is no date compares as text), a time with a time or text
    /// as a time, and with a number numerically (`YYYYMMDD`).
    pub fn sql_cmp(&self, other: &Value) -> Option<Ordering> {
        use Value::*;
        match (self, other) {
            (Null, _) | (_, Null) => None,
            (Int(a), Int(b)) => Some(a.cmp(b)),
            (Text(a), Text(b)) => Some(a.cmp(b)),
            (Decimal(a), Decimal(b)) => Some(a.cmp_value(b)),
            (Decimal(a), Int(b)) => Some(a.cmp_value(&Dec::from_i64(*b))),
            (Int(a), Decimal(b)) => Some(Dec::from_i64(*a).cmp_value(b)),
            (Date(a), Date(b)) => Some(a.cmp(b)),
            (DateTime(a), DateTime(b)) | (Time(a), Time(b)) => Some(a.cmp(b)),
            (Date(_) | DateTime(_), Date(_) | DateTime(_)) => {
                Some(self.to_datetime()?.cmp(&other.to_datetime()?))
            }
            (Date(_) | DateTime(_), Text(t)) => match datetime::parse_datetime(t) {
                Some(p) => Some(self.to_datetime()?.cmp(&p.micros())),
                None => Some(self.to_text()?.as_ref().cmp(t.as_ref())),
            },
            (Text(_), Date(_) | DateTime(_) | Time(_)) => {
                other.sql_cmp(self).map(Ordering::reverse)
            }
            (Time(a), Text(t)) => match datetime::parse_time(t) {
                Some(b) => Some(a.cmp(&b)),
                None => Some(self.to_text()?.as_ref().cmp(t.as_ref())),
            },
            (a, b) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        }
    }
    /// Total order for sorting: NULL first, then by [`Value::sql_cmp`].
    pub fn sort_cmp(&self, other: &Value) -> Ordering {
        match (self.is_null(), other.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            _ => self.sql_cmp(other).unwrap_or(Ordering::Equal),
        }
    }
}

/// Parses the longest numeric prefix of `s` (MySQL's string-to-number).
pub fn parse_numeric_prefix(s: &str) -> f64 {
    let t = s.trim_start();
    let bytes = t.as_bytes();
    let mut end = 0;
    let mut seen_digit = false;
    let mut seen_dot = false;
    let mut seen_e = false;
    while end < bytes.len() {
        let c = bytes[end];
        match c {
            b'0'..=b'9' => seen_digit = true,
            b'+' | b'-' if end == 0 || matches!(bytes[end - 1], b'e' | b'E') => {}
            b'.' if !seen_dot && !seen_e => seen_dot = true,
            b'e' | b'E' if seen_digit && !seen_e => seen_e = true,
            _ => break,
        }
        end += 1;
    }
    let mut cand = &t[..end];
    while !cand.is_empty() {
        if let Ok(v) = cand.parse::<f64>() {
            // '1e400' reads as DOUBLE's largest value, as in MySQL (which
            // warns): no text ever becomes inf.
            return v.clamp(f64::MIN, f64::MAX);
        }
        cand = &cand[..cand.len() - 1];
    }
    0.0
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Int(a), Value::Int(b)) => a == b,
            // 0.0 and -0.0 are one value for DISTINCT and GROUP BY, as in
            // MySQL (the hash below agrees); NaN never exists (DOUBLE
            // overflow is error 1690), the bit test only keeps Eq total.
            (Value::Float(a), Value::Float(b)) => a == b || a.to_bits() == b.to_bits(),
            (Value::Int(a), Value::Float(b)) | (Value::Float(b), Value::Int(a)) => {
                (*a as f64) == *b
            }
            (Value::Text(a), Value::Text(b)) => a == b,
            (Value::Date(a), Value::Date(b)) => a == b,
            (Value::DateTime(a), Value::DateTime(b)) | (Value::Time(a), Value::Time(b)) => a == b,
            (Value::Decimal(a), Value::Decimal(b)) => a == b,
            // As with Int and Float: equal numbers are one value (the hash
            // below is of the double for all three).
            (Value::Decimal(a), Value::Int(b)) | (Value::Int(b), Value::Decimal(a)) => {
                *a == Dec::from_i64(*b)
            }
            (Value::Decimal(a), Value::Float(b)) | (Value::Float(b), Value::Decimal(a)) => {
                rust_decimal::prelude::ToPrimitive::to_f64(&a.shown()) == Some(*b)
            }
            _ => false,
        }
    }
}
impl Eq for Value {}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Value::Null => 0u8.hash(state),
            Value::Int(i) => {
                1u8.hash(state);
                (*i as f64).to_bits().hash(state)
            }
            Value::Float(f) => {
                1u8.hash(state);
                let f = if *f == 0.0 { 0.0 } else { *f };
                f.to_bits().hash(state)
            }
            Value::Text(s) => {
                2u8.hash(state);
                s.hash(state)
            }
            Value::Decimal(d) => {
                1u8.hash(state);
                // The shown value, as equality compares it.
                let f = rust_decimal::prelude::ToPrimitive::to_f64(&d.shown()).unwrap_or(0.0);
                let f = if f == 0.0 { 0.0 } else { f };
                f.to_bits().hash(state)
            }
            Value::Date(d) => {
                3u8.hash(state);
                d.hash(state)
            }
            Value::DateTime(m) => {
                4u8.hash(state);
                m.hash(state)
            }
            Value::Time(t) => {
                5u8.hash(state);
                t.hash(state)
            }
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => {
                if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 {
                    write!(f, "{x:.0}")
                } else {
                    write!(f, "{x}")
                }
            }
            Value::Text(s) => f.write_str(s),
            Value::Date(d) => f.write_str(&datetime::format_date(*d)),
            Value::DateTime(m) => f.write_str(&datetime::format_datetime(*m)),
            Value::Time(t) => f.write_str(&datetime::format_time(*t)),
            Value::Decimal(d) => write!(f, "{d}"),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_none(),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) => s.serialize_f64(*f),
            Value::Text(t) => s.serialize_str(t),
            // As MySQL's text protocol and JS drivers give them: strings
            // (a decimal keeps every digit).
            other => s.serialize_str(&other.to_string()),
        }
    }
}

/// The values of a column, by type.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnData {
    /// Integers.
    Int(Vec<i64>),
    /// Floats.
    Float(Vec<f64>),
    /// Text.
    Text(Vec<Arc<str>>),
    /// Dates (days since 1970-01-01).
    Date(Vec<i32>),
    /// Datetimes (microseconds since 1970-01-01 00:00:00).
    DateTime(Vec<i64>),
    /// Times (microseconds).
    Time(Vec<i64>),
    /// Exact decimals.
    Decimal(Vec<Dec>),
}

/// `$body` with `$v` bound to the vector of any [`ColumnData`] variant, and
/// `$wrap` the variant's constructor (for bodies that build a new one).
macro_rules! each_vec {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            ColumnData::Int($v) => $body,
            ColumnData::Float($v) => $body,
            ColumnData::Text($v) => $body,
            ColumnData::Date($v) => $body,
            ColumnData::DateTime($v) => $body,
            ColumnData::Time($v) => $body,
            ColumnData::Decimal($v) => $body,
        }
    };
    ($data:expr, $v:ident, $wrap:ident => $body:expr) => {
        match $data {
            ColumnData::Int($v) => {
                let $wrap = ColumnData::Int;
                $body
            }
            ColumnData::Float($v) => {
                let $wrap = ColumnData::Float;
                $body
            }
            ColumnData::Text($v) => {
                let $wrap = ColumnData::Text;
                $body
            }
            ColumnData::Date($v) => {
                let $wrap = ColumnData::Date;
                $body
            }
            ColumnData::DateTime($v) => {
                let $wrap = ColumnData::DateTime;
                $body
            }
            ColumnData::Time($v) => {
                let $wrap = ColumnData::Time;
                $body
            }
            ColumnData::Decimal($v) => {
                let $wrap = ColumnData::Decimal;
                $body
            }
        }
    };
}

impl ColumnData {
    /// An empty vector of the same variant, with room for `n` entries.
    pub fn empty_like(&self, n: usize) -> ColumnData {
        each_vec!(self, _v, wrap => wrap(Vec::with_capacity(n)))
    }
    /// Compares entries `a` and `b` (NULLs are the caller's business):
    /// numbers numerically (floats by `total_cmp`), text by bytes, dates
    /// and times in time order, decimals exactly.
    pub fn cmp_entries(&self, a: usize, b: usize) -> Ordering {
        match self {
            ColumnData::Int(v) | ColumnData::DateTime(v) | ColumnData::Time(v) => v[a].cmp(&v[b]),
            ColumnData::Float(v) => v[a].total_cmp(&v[b]),
            ColumnData::Text(v) => v[a].cmp(&v[b]),
            ColumnData::Date(v) => v[a].cmp(&v[b]),
            ColumnData::Decimal(v) => v[a].cmp_value(&v[b]),
        }
    }
    /// Bytes of one entry (the element size of its vector).
    pub fn entry_bytes(&self) -> usize {
        use std::mem::size_of;
        match self {
            ColumnData::Int(_) | ColumnData::DateTime(_) | ColumnData::Time(_) => 8,
            ColumnData::Float(_) => size_of::<f64>(),
            ColumnData::Text(_) => size_of::<Arc<str>>(),
            ColumnData::Date(_) => size_of::<i32>(),
            ColumnData::Decimal(_) => size_of::<Dec>(),
        }
    }
}

/// A column: typed values plus a null mask (`true` = NULL). A `NULL`-typed
/// column is an `Int` column whose every entry is null.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// The values (entries under a null are meaningless).
    pub data: ColumnData,
    /// `Some(mask)` when any entry may be null.
    pub nulls: Option<Vec<bool>>,
}

impl Column {
    /// An integer column without nulls.
    pub fn ints(v: Vec<i64>) -> Self {
        Column {
            data: ColumnData::Int(v),
            nulls: None,
        }
    }
    /// A float column without nulls.
    pub fn floats(v: Vec<f64>) -> Self {
        Column {
            data: ColumnData::Float(v),
            nulls: None,
        }
    }
    /// A column of `n` NULLs.
    pub fn nulls(n: usize) -> Self {
        Column {
            data: ColumnData::Int(vec![0; n]),
            nulls: Some(vec![true; n]),
        }
    }
    /// A column from values, of type `ty` (values are converted to it).
    pub fn from_values(ty: DataType, values: &[Value]) -> Self {
        let nulls: Vec<bool> = values.iter().map(Value::is_null).collect();
        let any_null = nulls.iter().any(|&b| b);
        let data = match ty {
            DataType::Int | DataType::Null => {
                ColumnData::Int(values.iter().map(|v| v.as_i64().unwrap_or(0)).collect())
            }
            DataType::Float => {
                ColumnData::Float(values.iter().map(|v| v.as_f64().unwrap_or(0.0)).collect())
            }
            DataType::Text => ColumnData::Text(
                values
                    .iter()
                    .map(|v| v.to_text().unwrap_or_else(|| Arc::from("")))
                    .collect(),
            ),
            // A value that is no date (or a decimal past 28 digits) becomes
            // NULL; the callers that must refuse it (a column's type check,
            // CAST in strict DML) check first.
            DataType::Date => {
                return Column::converted(values, ColumnData::Date, Value::to_date, nulls)
            }
            DataType::DateTime => {
                return Column::converted(values, ColumnData::DateTime, Value::to_datetime, nulls)
            }
            DataType::Time => {
                return Column::converted(values, ColumnData::Time, Value::to_time, nulls)
            }
            DataType::Decimal => {
                return Column::converted(values, ColumnData::Decimal, Value::to_dec, nulls)
            }
        };
        Column {
            data,
            nulls: any_null.then_some(nulls),
        }
    }
    /// A column of values converted by `conv`, NULL where it gives `None`.
    fn converted<T: Copy + Default>(
        values: &[Value],
        wrap: fn(Vec<T>) -> ColumnData,
        conv: fn(&Value) -> Option<T>,
        mut nulls: Vec<bool>,
    ) -> Column {
        let mut out = Vec::with_capacity(values.len());
        for (v, null) in values.iter().zip(nulls.iter_mut()) {
            match conv(v) {
                Some(x) => out.push(x),
                None => {
                    *null = true;
                    out.push(T::default());
                }
            }
        }
        let any_null = nulls.iter().any(|&b| b);
        Column {
            data: wrap(out),
            nulls: any_null.then_some(nulls),
        }
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        each_vec!(&self.data, v => v.len())
    }
    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The stored type (`Int` for all-null columns).
    pub fn data_type(&self) -> DataType {
        match &self.data {
            ColumnData::Int(_) => DataType::Int,
            ColumnData::Float(_) => DataType::Float,
            ColumnData::Text(_) => DataType::Text,
            ColumnData::Date(_) => DataType::Date,
            ColumnData::DateTime(_) => DataType::DateTime,
            ColumnData::Time(_) => DataType::Time,
            ColumnData::Decimal(_) => DataType::Decimal,
        }
    }
    /// Whether entry `i` is NULL.
    #[inline]
    pub fn is_null(&self, i: usize) -> bool {
        self.nulls.as_ref().is_some_and(|n| n[i])
    }
    /// Entry `i` as a value.
    pub fn value(&self, i: usize) -> Value {
        if self.is_null(i) {
            return Value::Null;
        }
        match &self.data {
            ColumnData::Int(v) => Value::Int(v[i]),
            ColumnData::Float(v) => Value::Float(v[i]),
            ColumnData::Text(v) => Value::Text(v[i].clone()),
            ColumnData::Date(v) => Value::Date(v[i]),
            ColumnData::DateTime(v) => Value::DateTime(v[i]),
            ColumnData::Time(v) => Value::Time(v[i]),
            ColumnData::Decimal(v) => Value::Decimal(v[i]),
        }
    }
    /// The entries at `idx`, in that order.
    // One body for every variant: text needs the clone, the rest are Copy.
    #[allow(clippy::clone_on_copy)]
    pub fn gather(&self, idx: &[u32]) -> Column {
        let data = each_vec!(&self.data, v, wrap => {
            wrap(idx.iter().map(|&i| v[i as usize].clone()).collect())
        });
        let nulls = self
            .nulls
            .as_ref()
            .map(|n| idx.iter().map(|&i| n[i as usize]).collect());
        Column { data, nulls }
    }
    /// Rows `start..start+len`.
    pub fn slice(&self, start: usize, len: usize) -> Column {
        let r = start..start + len;
        let data = each_vec!(&self.data, v, wrap => wrap(v[r.clone()].to_vec()));
        Column {
            data,
            nulls: self.nulls.as_ref().map(|n| n[r].to_vec()),
        }
    }
    /// Appends `other` (converted to this column's type if needed).
    pub fn append(&mut self, other: &Column) {
        self.append_range(other, 0, other.len());
    }

    /// Appends rows `start..start + len` of `other` (converted to this
    /// column's type if needed).
    pub fn append_range(&mut self, other: &Column, start: usize, len: usize) {
        let before = self.len();
        let r = start..start + len;
        match (&mut self.data, &other.data) {
            (ColumnData::Int(a), ColumnData::Int(b)) => a.extend_from_slice(&b[r.clone()]),
            (ColumnData::Float(a), ColumnData::Float(b)) => a.extend_from_slice(&b[r.clone()]),
            (ColumnData::Text(a), ColumnData::Text(b)) => a.extend_from_slice(&b[r.clone()]),
            (ColumnData::Date(a), ColumnData::Date(b)) => a.extend_from_slice(&b[r.clone()]),
            (ColumnData::DateTime(a), ColumnData::DateTime(b))
            | (ColumnData::Time(a), ColumnData::Time(b)) => a.extend_from_slice(&b[r.clone()]),
            (ColumnData::Decimal(a), ColumnData::Decimal(b)) => a.extend_from_slice(&b[r.clone()]),
            _ => {
                let ty = self.data_type();
                let vals: Vec<Value> = r.map(|i| other.value(i)).collect();
                let conv = Column::from_values(ty, &vals);
                let mut conv_nulls = conv.nulls.clone();
                let mut c = conv;
                c.nulls = None;
                self.append(&c);
                if let Some(n) = conv_nulls.take() {
                    let mask = self.nulls.get_or_insert_with(|| vec![false; before]);
                    mask.truncate(before);
                    mask.extend(n);
                } else if let Some(mask) = &mut self.nulls {
                    mask.resize(before + len, false);
                }
                return;
            }
        }
        match (&mut self.nulls, &other.nulls) {
            (Some(a), Some(b)) => a.extend_from_slice(&b[r]),
            (Some(a), None) => a.resize(before + len, false),
            (None, Some(b)) => {
                let mut m = vec![false; before];
                m.extend_from_slice(&b[r]);
                self.nulls = Some(m);
            }
            (None, None) => {}
        }
    }
    /// Heap bytes allocated for this column: the vectors' capacities (not
    /// their lengths), and for text each string's shared allocation (its
    /// two reference counts and its bytes, rounded up to the allocator's
    /// 8-byte granule). A string shared with another column is counted in
    /// both: an over-estimate, never an under-estimate.
    pub fn heap_bytes(&self) -> usize {
        self.vec_bytes() + self.text_bytes()
    }
    /// Heap bytes of this column's vectors alone (capacities), without the
    /// strings they point to.
    pub fn vec_bytes(&self) -> usize {
        let data = each_vec!(&self.data, v => v.capacity()) * self.data.entry_bytes();
        data + self.nulls.as_ref().map_or(0, |m| m.capacity())
    }
    /// Heap bytes of the strings of a text column (0 for other types).
    pub fn text_bytes(&self) -> usize {
        match &self.data {
            ColumnData::Text(v) => v.iter().map(|s| text_heap_bytes(s)).sum(),
            _ => 0,
        }
    }
    /// The bytes [`Column::reserve_rows`]`(n)` would allocate (0 when the
    /// column has room): the vectors at their grown capacity.
    pub fn grown_bytes(&self, n: usize) -> usize {
        let len = self.len();
        let cap = each_vec!(&self.data, v => v.capacity());
        if n <= cap - len {
            return 0;
        }
        let to = len.saturating_add(n).max(cap.saturating_mul(2));
        let per_row = self.data.entry_bytes();
        // The null mask may be made (or grown) by an append too.
        to * (per_row + 1)
    }
    /// Makes room for `n` more rows (doubling at least), so that appending
    /// them does not reallocate the values (see [`Column::grown_bytes`]).
    pub fn reserve_rows(&mut self, n: usize) {
        fn more<T>(v: &mut Vec<T>, n: usize) {
            if n > v.capacity() - v.len() {
                let to = v
                    .len()
                    .saturating_add(n)
                    .max(v.capacity().saturating_mul(2));
                v.reserve_exact(to - v.len());
            }
        }
        each_vec!(&mut self.data, v => more(v, n));
        if let Some(m) = &mut self.nulls {
            more(m, n);
        }
    }
    /// An empty column of type `ty`.
    pub fn empty(ty: DataType) -> Column {
        Column::from_values(ty, &[])
    }
}

/// A batch of rows in columns. All columns have `len` entries.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// The columns.
    pub columns: Vec<Arc<Column>>,
    /// Number of rows.
    pub len: usize,
}

impl Batch {
    /// A batch from columns (all of the same length).
    pub fn new(columns: Vec<Arc<Column>>, len: usize) -> Self {
        Batch { columns, len }
    }
    /// Row `i` as values.
    pub fn row(&self, i: usize) -> Vec<Value> {
        self.columns.iter().map(|c| c.value(i)).collect()
    }
    /// Row `i` as values, into `out` (cleared first): no allocation once
    /// `out` has the room.
    pub fn row_into(&self, i: usize, out: &mut Vec<Value>) {
        out.clear();
        out.extend(self.columns.iter().map(|c| c.value(i)));
    }
    /// The rows at `idx`.
    pub fn gather(&self, idx: &[u32]) -> Batch {
        Batch {
            columns: self
                .columns
                .iter()
                .map(|c| Arc::new(c.gather(idx)))
                .collect(),
            len: idx.len(),
        }
    }
    /// Rows `start..start+len`.
    pub fn slice(&self, start: usize, len: usize) -> Batch {
        Batch {
            columns: self
                .columns
                .iter()
                .map(|c| Arc::new(c.slice(start, len)))
                .collect(),
            len,
        }
    }
    /// Heap bytes of the columns (see [`Column::heap_bytes`]).
    pub fn heap_bytes(&self) -> usize {
        self.columns.iter().map(|c| c.heap_bytes()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_prefix_like_mysql() {
        assert_eq!(parse_numeric_prefix("12abc"), 12.0);
        assert_eq!(parse_numeric_prefix(" -3.5e2x"), -350.0);
        assert_eq!(parse_numeric_prefix("abc"), 0.0);
        assert_eq!(parse_numeric_prefix("1e"), 1.0);
    }

    #[test]
    fn append_converts_and_keeps_nulls() {
        let mut a = Column::ints(vec![1, 2]);
        a.append(&Column::from_values(
            DataType::Int,
            &[Value::Null, Value::Int(4)],
        ));
        assert_eq!(a.len(), 4);
        assert!(a.is_null(2) && !a.is_null(3));
        a.append(&Column::floats(vec![5.6]));
        assert_eq!(a.value(4), Value::Int(6));
        assert!(!a.is_null(4));
    }

    #[test]
    fn sort_order_puts_null_first() {
        let mut v = vec![Value::Int(3), Value::Null, Value::Float(1.5)];
        v.sort_by(Value::sort_cmp);
        assert_eq!(v, vec![Value::Null, Value::Float(1.5), Value::Int(3)]);
    }
}
