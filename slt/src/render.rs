//! The MySQL rules of the corpus for turning a result into the lines a
//! `query` record is compared with: each value rendered by its declared
//! type, the values ordered by the sort mode, and more than
//! `hash-threshold` values replaced by one line with their md5.
//!
//! - `I`: an integer; a float is truncated toward zero, text is read as a
//!   number (its numeric prefix, 0 if none).
//! - `R`: a float printed `%.3f`.
//! - `T`: text; the empty string is `(empty)`, every byte outside
//!   0x20..=0x7e becomes `@`.
//! - NULL is `NULL` whatever the type.

use cascade::Value;
use md5::{Digest, Md5};

use crate::record::{ColumnType, SortMode};

/// Renders one value as the declared column type.
pub fn value(v: &Value, ty: ColumnType) -> String {
    if v.is_null() {
        return "NULL".to_string();
    }
    // A DECIMAL reaches a MySQL client as its shown digits (`1/3*3` is
    // `1.0000`, though 0.999999999 is kept inside): read it from there.
    let shown;
    let v = match v {
        Value::Decimal(_) => {
            shown = Value::Text(v.to_string().into());
            &shown
        }
        other => other,
    };
    match ty {
        ColumnType::Integer => match v {
            Value::Int(i) => i.to_string(),
            Value::Text(s) => match s.trim().parse::<i64>() {
                Ok(i) => i.to_string(),
                Err(_) => truncate(v.as_f64().unwrap_or(0.0)),
            },
            other => truncate(other.as_f64().unwrap_or(0.0)),
        },
        ColumnType::Real => format!("{:.3}", v.as_f64().unwrap_or(0.0)),
        ColumnType::Text => {
            let s = v.to_text().unwrap_or_default();
            if s.is_empty() {
                return "(empty)".to_string();
            }
            s.bytes()
                .map(|b| {
                    if (0x20..=0x7e).contains(&b) {
                        b as char
                    } else {
                        '@'
                    }
                })
                .collect()
        }
    }
}

/// A float truncated toward zero, printed as an integer (saturating).
fn truncate(f: f64) -> String {
    if f.is_nan() {
        return "0".to_string();
    }
    // `as` saturates at the i64 bounds, which is what a C client's
    // conversion of an out-of-range double would at best give too.
    (f.trunc() as i64).to_string()
}

/// Whether expected lines are one `N values hashing to <md5>` line.
pub fn is_hash(expected: &[String]) -> bool {
    matches!(expected, [line] if line.contains(" values hashing to "))
}

/// The lines a result is compared with: rows rendered with `types` (a
/// column beyond the declared types renders as text), ordered by `sort`,
/// hashed when there are more than `hash_threshold` values (0: never) or
/// when `force_hash` (the expected result is a hash line: select1–3 carry
/// hashed results without a `hash-threshold` line, having been generated
/// with the threshold on the command line).
pub fn lines(
    rows: &[Vec<Value>],
    types: &[ColumnType],
    sort: SortMode,
    hash_threshold: usize,
    force_hash: bool,
) -> Vec<String> {
    let mut rendered: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .map(|(i, v)| value(v, types.get(i).copied().unwrap_or(ColumnType::Text)))
                .collect()
        })
        .collect();
    let mut values: Vec<String> = match sort {
        SortMode::NoSort => rendered.into_iter().flatten().collect(),
        SortMode::RowSort => {
            rendered.sort();
            rendered.into_iter().flatten().collect()
        }
        SortMode::ValueSort => {
            let mut v: Vec<String> = rendered.into_iter().flatten().collect();
            v.sort();
            v
        }
    };
    if force_hash || (hash_threshold > 0 && values.len() > hash_threshold) {
        let mut md5 = Md5::new();
        for v in &values {
            md5.update(v.as_bytes());
            md5.update(b"\n");
        }
        let hex: String = md5.finalize().iter().map(|b| format!("{b:02x}")).collect();
        values = vec![format!("{} values hashing to {hex}", values.len())];
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;
    use ColumnType::*;

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn integer_rendering_truncates_and_reads_text() {
        assert_eq!(value(&Value::Int(-7), Integer), "-7");
        assert_eq!(value(&Value::Float(2.9), Integer), "2");
        assert_eq!(value(&Value::Float(-2.9), Integer), "-2");
        assert_eq!(value(&Value::Float(-0.5), Integer), "0");
        assert_eq!(value(&text("42"), Integer), "42");
        assert_eq!(value(&text("3.7abc"), Integer), "3");
        assert_eq!(value(&text("abc"), Integer), "0");
        assert_eq!(value(&Value::Null, Integer), "NULL");
    }

    #[test]
    fn real_and_text_rendering() {
        assert_eq!(value(&Value::Int(3), Real), "3.000");
        assert_eq!(value(&Value::Float(-1.23456), Real), "-1.235");
        assert_eq!(value(&text("2.5"), Real), "2.500");
        assert_eq!(value(&text(""), Text), "(empty)");
        assert_eq!(value(&text("a\tbé"), Text), "a@b@@");
        assert_eq!(value(&Value::Int(5), Text), "5");
        assert_eq!(value(&Value::Null, Text), "NULL");
    }

    #[test]
    fn decimals_render_their_shown_digits() {
        let third = cascade::decimal::Dec::from_i64(1)
            .checked_div(cascade::decimal::Dec::from_i64(3))
            .expect("1/3");
        // 1/3*3 keeps 0.999999999 inside and shows 1.0000, as MySQL sends.
        let v = Value::Decimal(
            third
                .checked_mul(cascade::decimal::Dec::from_i64(3))
                .expect("*3"),
        );
        assert_eq!(value(&v, Integer), "1");
        assert_eq!(value(&v, Real), "1.000");
        assert_eq!(value(&v, Text), "1.0000");
    }

    #[test]
    fn sort_modes() {
        let rows = vec![
            vec![Value::Int(2), Value::Int(1)],
            vec![Value::Int(10), Value::Int(0)],
        ];
        let types = [Integer, Integer];
        assert_eq!(
            lines(&rows, &types, SortMode::NoSort, 0, false),
            ["2", "1", "10", "0"]
        );
        // Rows compare as lists of rendered strings: "10" < "2".
        assert_eq!(
            lines(&rows, &types, SortMode::RowSort, 0, false),
            ["10", "0", "2", "1"]
        );
        assert_eq!(
            lines(&rows, &types, SortMode::ValueSort, 0, false),
            ["0", "1", "10", "2"]
        );
    }

    #[test]
    fn hashing_above_the_threshold_only() {
        let rows: Vec<Vec<Value>> = (1..=3).map(|i| vec![Value::Int(i)]).collect();
        assert_eq!(
            lines(&rows, &[Integer], SortMode::NoSort, 3, false),
            ["1", "2", "3"]
        );
        // As `printf '1\n2\n3\n' | md5sum` prints it.
        assert_eq!(
            lines(&rows, &[Integer], SortMode::NoSort, 2, false),
            ["3 values hashing to c0710d6b4f15dfa88f600b0e6b624077"]
        );
        // A hashed expected result forces hashing without a threshold.
        let hashed = lines(&rows, &[Integer], SortMode::NoSort, 0, true);
        assert_eq!(
            hashed,
            ["3 values hashing to c0710d6b4f15dfa88f600b0e6b624077"]
        );
        assert!(is_hash(&hashed));
        assert!(!is_hash(&["1".to_string()]));
    }
}
