//! Assignment of values to a column: conversion to the column's declared
//! type and its checks, as MySQL's strict mode does them (an INSERT's or
//! UPDATE's value that the column cannot hold is an error, never clamped).

use crate::data::{Column, ColumnData, DataType, Value};
use crate::storage::{ColumnDef, ColumnLimit};

/// A value its column cannot hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AssignError {
    /// Text that is not a number, for a number column (1366).
    #[error("Incorrect {ty} value: '{value}' for column '{column}' at row {row}")]
    Incorrect {
        /// `integer` or `double`.
        ty: &'static str,
        /// The value as given.
        value: String,
        /// Column name.
        column: String,
        /// 1-based row of the statement.
        row: usize,
    },
    /// A value that is no date (or time) for a DATE / DATETIME / TIME
    /// column (1292).
    #[error("Incorrect {ty} value: '{value}' for column '{column}' at row {row}")]
    WrongDate {
        /// `date`, `datetime` or `time`.
        ty: &'static str,
        /// The value as given.
        value: String,
        /// Column name.
        column: String,
        /// 1-based row of the statement.
        row: usize,
    },
    /// NULL for a NOT NULL column (1048).
    #[error("Column '{0}' cannot be null")]
    NotNull(String),
    /// A number outside the column's range (1264).
    #[error("Out of range value for column '{column}' at row {row}")]
    OutOfRange {
        /// Column name.
        column: String,
        /// 1-based row of the statement.
        row: usize,
    },
    /// Text longer than the column allows (1406).
    #[error("Data too long for column '{column}' at row {row}")]
    TooLong {
        /// Column name.
        column: String,
        /// 1-based row of the statement.
        row: usize,
    },
}

impl AssignError {
    /// MySQL code and SQLSTATE.
    pub fn codes(&self) -> (u16, &'static str) {
        match self {
            AssignError::Incorrect { .. } => (1366, "HY000"),
            AssignError::WrongDate { .. } => (1292, "22007"),
            AssignError::NotNull(_) => (1048, "23000"),
            AssignError::OutOfRange { .. } => (1264, "22003"),
            AssignError::TooLong { .. } => (1406, "22001"),
        }
    }
}
/// Converts a column for storing in a column of type `ty` (MySQL strict
/// mode: text that is not a number cannot go into a number column).
pub fn coerce(col: &Column, def: &ColumnDef, row_base: usize) -> Result<Column, AssignError> {
    if let (ColumnData::Text(v), DataType::Int | DataType::Float | DataType::Decimal) =
        (&col.data, def.ty)
    {
        for (i, s) in v.iter().enumerate() {
            if col.is_null(i) {
                continue;
            }
            // Rust also parses "inf" and "NaN"; MySQL does not (1366).
            let t = s.trim();
            if t.parse::<f64>().is_err()
                || t.chars()
                    .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
            {
                return Err(AssignError::Incorrect {
                    ty: match def.ty {
                        DataType::Int => "integer",
                        DataType::Decimal => "decimal",
                        _ => "double",
                    },
                    value: s.to_string(),
                    column: def.name.clone(),
                    row: row_base + i + 1,
                });
            }
        }
    }
    // A value that is no date (or time) cannot go into a DATE / DATETIME /
    // TIME column: 1292, as MySQL's strict mode.
    if def.ty.is_temporal() && col.data_type() != def.ty {
        let ok = |v: &Value| match def.ty {
            DataType::Date => v.to_date().is_some(),
            DataType::DateTime => v.to_datetime().is_some(),
            _ => v.to_time().is_some(),
        };
        if let Some(i) = (0..col.len()).find(|&i| !col.is_null(i) && !ok(&col.value(i))) {
            return Err(AssignError::WrongDate {
                ty: super::temporal_name(def.ty),
                value: col.value(i).to_string(),
                column: def.name.clone(),
                row: row_base + i + 1,
            });
        }
    }
    if !def.nullable && col.nulls.as_ref().is_some_and(|n| n.iter().any(|x| *x)) {
        return Err(AssignError::NotNull(def.name.clone()));
    }
    // A number the column's type cannot hold is MySQL strict mode's 1264,
    // never clamped to the type's limit.
    let fits = |v: &Value| match (def.ty, v) {
        (_, Value::Null) | (DataType::Int, Value::Int(_)) => true,
        (DataType::Int, v) => super::to_bigint(v).is_some(),
        (DataType::Float, Value::Text(s)) => s.trim().parse::<f64>().is_ok_and(f64::is_finite),
        (DataType::Float, Value::Float(f)) => f.is_finite(),
        (DataType::Decimal, v) => v.to_dec().is_some(),
        _ => true,
    };
    if col.data_type() != def.ty
        && matches!(def.ty, DataType::Int | DataType::Float | DataType::Decimal)
    {
        if let Some(i) = (0..col.len()).find(|&i| !fits(&col.value(i))) {
            return Err(AssignError::OutOfRange {
                column: def.name.clone(),
                row: row_base + i + 1,
            });
        }
    }
    let out = if col.data_type() == def.ty {
        col.clone()
    } else {
        let vals: Vec<Value> = (0..col.len()).map(|i| col.value(i)).collect();
        Column::from_values(def.ty, &vals)
    };
    apply_limit(out, def, row_base)
}

/// Checks (and for `DECIMAL(p, s)`, rounds) a column for its declared type
/// ([`ColumnLimit`]): 1264 out of range, 1406 too long, as MySQL's strict
/// mode.
fn apply_limit(col: Column, def: &ColumnDef, row_base: usize) -> Result<Column, AssignError> {
    let out_of_range = |i: usize| AssignError::OutOfRange {
        column: def.name.clone(),
        row: row_base + i + 1,
    };
    let too_long = |i: usize| AssignError::TooLong {
        column: def.name.clone(),
        row: row_base + i + 1,
    };
    let first_bad =
        |bad: &dyn Fn(usize) -> bool| (0..col.len()).find(|&i| !col.is_null(i) && bad(i));
    match (def.limit, &col.data) {
        (ColumnLimit::IntRange(lo, hi), ColumnData::Int(v)) => {
            if let Some(i) = first_bad(&|i| !(lo..=hi).contains(&v[i])) {
                return Err(out_of_range(i));
            }
        }
        (ColumnLimit::MaxChars(n), ColumnData::Text(v)) => {
            if let Some(i) = first_bad(&|i| v[i].chars().count() as u64 > n) {
                return Err(too_long(i));
            }
        }
        (ColumnLimit::MaxBytes(n), ColumnData::Text(v)) => {
            if let Some(i) = first_bad(&|i| v[i].len() as u64 > n) {
                return Err(too_long(i));
            }
        }
        // Fractional seconds rounded to the column's precision, as MySQL 8
        // (MariaDB cuts them); a DATETIME rounded past 9999-12-31 23:59:59
        // is 1264.
        (ColumnLimit::FractionalSeconds(fsp), ColumnData::DateTime(_) | ColumnData::Time(_)) => {
            let unit = 10i64.pow(6 - u32::from(fsp.min(6)));
            let round = |m: i64| {
                let r = m.rem_euclid(unit);
                let down = m - r;
                if r * 2 >= unit {
                    down.checked_add(unit)
                } else {
                    Some(down)
                }
            };
            let mut data = col.data.clone();
            match &mut data {
                ColumnData::DateTime(v) => {
                    for (i, m) in v.iter_mut().enumerate() {
                        match round(*m).filter(|r| crate::datetime::datetime_in_range(*r)) {
                            Some(r) => *m = r,
                            None if col.is_null(i) => {}
                            None => return Err(out_of_range(i)),
                        }
                    }
                }
                ColumnData::Time(v) => {
                    for (i, t) in v.iter_mut().enumerate() {
                        // A time rounds away from zero, as MySQL.
                        let r = if *t < 0 {
                            round(-*t).map(|x| -x)
                        } else {
                            round(*t)
                        };
                        match r.filter(|r| r.abs() <= crate::datetime::MAX_TIME) {
                            Some(r) => *t = r,
                            None if col.is_null(i) => {}
                            None => return Err(out_of_range(i)),
                        }
                    }
                }
                _ => {}
            }
            return Ok(Column {
                data,
                nulls: col.nulls,
            });
        }
        // Rounded to the scale (as MySQL, with a note), 1264 past the
        // integer digits.
        (ColumnLimit::Decimal { precision, scale }, ColumnData::Decimal(v)) => {
            let mut rounded = Vec::with_capacity(v.len());
            for (i, x) in v.iter().enumerate() {
                if col.is_null(i) {
                    rounded.push(*x);
                    continue;
                }
                match x.fit(u32::from(precision), u32::from(scale)) {
                    Some(r) => rounded.push(r),
                    None => return Err(out_of_range(i)),
                }
            }
            return Ok(Column {
                data: ColumnData::Decimal(rounded),
                nulls: col.nulls,
            });
        }
        _ => {}
    }
    Ok(col)
}
