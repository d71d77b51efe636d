//! Columnar data: SQL types, scalar values, columns and batches.
//!
//! Types follow MySQL: booleans are integers (`TRUE` is 1), comparisons
//! return 0/1, and `NULL` has its own type until it meets another.

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
            DataType::Null => "NULL",
        }
    }
    /// The common type of two operands (for CASE, UNION, COALESCE, …).
    pub fn unify(self, other: DataType) -> DataType {
        use DataType::*;
        match (self, other) {
            (Null, x) | (x, Null) => x,
            (a, b) if a == b => a,
            (Int, Float) | (Float, Int) => Float,
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
        }
    }
    /// As a float, MySQL style (text parses its numeric prefix, else 0).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Null => None,
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Text(s) => Some(parse_numeric_prefix(s)),
        }
    }
    /// As an integer, MySQL style (floats round half away from zero).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Null => None,
            Value::Int(i) => Some(*i),
            Value::Float(f) => Some(f.round() as i64),
            Value::Text(s) => Some(parse_numeric_prefix(s).round() as i64),
        }
    }
    /// SQL truthiness: `None` for NULL, else non-zero.
    pub fn truthy(&self) -> Option<bool> {
        match self {
            Value::Null => None,
            Value::Int(i) => Some(*i != 0),
            Value::Float(f) => Some(*f != 0.0),
            Value::Text(s) => Some(parse_numeric_prefix(s) != 0.0),
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
    pub fn sql_cmp(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Null, _) | (_, Value::Null) => None,
            (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
            (Value::Text(a), Value::Text(b)) => Some(a.cmp(b)),
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
        };
        Column {
            data,
            nulls: any_null.then_some(nulls),
        }
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        match &self.data {
            ColumnData::Int(v) => v.len(),
            ColumnData::Float(v) => v.len(),
            ColumnData::Text(v) => v.len(),
        }
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
        }
    }
    /// The entries at `idx`, in that order.
    pub fn gather(&self, idx: &[u32]) -> Column {
        let data = match &self.data {
            ColumnData::Int(v) => ColumnData::Int(idx.iter().map(|&i| v[i as usize]).collect()),
            ColumnData::Float(v) => ColumnData::Float(idx.iter().map(|&i| v[i as usize]).collect()),
            ColumnData::Text(v) => {
                ColumnData::Text(idx.iter().map(|&i| v[i as usize].clone()).collect())
            }
        };
        let nulls = self
            .nulls
            .as_ref()
            .map(|n| idx.iter().map(|&i| n[i as usize]).collect());
        Column { data, nulls }
    }
    /// Rows `start..start+len`.
    pub fn slice(&self, start: usize, len: usize) -> Column {
        let r = start..start + len;
        let data = match &self.data {
            ColumnData::Int(v) => ColumnData::Int(v[r.clone()].to_vec()),
            ColumnData::Float(v) => ColumnData::Float(v[r.clone()].to_vec()),
            ColumnData::Text(v) => ColumnData::Text(v[r.clone()].to_vec()),
        };
        Column {
            data,
            nulls: self.nulls.as_ref().map(|n| n[r].to_vec()),
        }
    }
    /// Appends `other` (converted to this column's type if needed).
    pub fn append(&mut self, other: &Column) {
        let before = self.len();
        match (&mut self.data, &other.data) {
            (ColumnData::Int(a), ColumnData::Int(b)) => a.extend_from_slice(b),
            (ColumnData::Float(a), ColumnData::Float(b)) => a.extend_from_slice(b),
            (ColumnData::Text(a), ColumnData::Text(b)) => a.extend_from_slice(b),
            _ => {
                let ty = self.data_type();
                let vals: Vec<Value> = (0..other.len()).map(|i| other.value(i)).collect();
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
                    mask.resize(before + other.len(), false);
                }
                return;
            }
        }
        match (&mut self.nulls, &other.nulls) {
            (Some(a), Some(b)) => a.extend_from_slice(b),
            (Some(a), None) => a.resize(before + other.len(), false),
            (None, Some(b)) => {
                let mut m = vec![false; before];
                m.extend_from_slice(b);
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
        let data = match &self.data {
            ColumnData::Int(v) => v.capacity() * 8,
            ColumnData::Float(v) => v.capacity() * 8,
            ColumnData::Text(v) => v.capacity() * std::mem::size_of::<Arc<str>>(),
        };
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
        let cap = match &self.data {
            ColumnData::Int(v) => v.capacity(),
            ColumnData::Float(v) => v.capacity(),
            ColumnData::Text(v) => v.capacity(),
        };
        if n <= cap - len {
            return 0;
        }
        let to = len.saturating_add(n).max(cap.saturating_mul(2));
        let per_row = match &self.data {
            ColumnData::Text(_) => std::mem::size_of::<Arc<str>>(),
            _ => 8,
        };
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
        match &mut self.data {
            ColumnData::Int(v) => more(v, n),
            ColumnData::Float(v) => more(v, n),
            ColumnData::Text(v) => more(v, n),
        }
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
