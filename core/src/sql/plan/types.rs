//! SQL types and object names of the AST.

use sqlparser::ast;

use crate::data::DataType;
use crate::sql::error::SqlError;
use crate::storage::ColumnLimit;

pub(super) fn ident_name(n: &ast::ObjectName) -> String {
    n.0.iter()
        .filter_map(|p| match p {
            ast::ObjectNamePart::Identifier(i) => Some(i.value.clone()),
            _ => None,
        })
        .next_back()
        .unwrap_or_default()
}

/// The name of an object (last part), lower-cased.
pub fn object_name(n: &ast::ObjectName) -> String {
    ident_name(n).to_lowercase()
}

/// A SQL type name to a cascade type.
pub fn sql_type(t: &ast::DataType) -> Result<DataType, SqlError> {
    let s = t.to_string().to_uppercase();
    let base = s.split(['(', ' ']).next().unwrap_or("");
    Ok(match base {
        "INT" | "INTEGER" | "BIGINT" | "SMALLINT" | "TINYINT" | "MEDIUMINT" | "BOOL"
        | "BOOLEAN" | "SIGNED" | "UNSIGNED" | "INT64" | "INT4" | "INT8" => DataType::Int,
        "DOUBLE" | "FLOAT" | "REAL" | "FLOAT64" | "FLOAT8" => DataType::Float,
        "DECIMAL" | "NUMERIC" | "DEC" | "FIXED" => DataType::Decimal,
        "DATE" => DataType::Date,
        // TIMESTAMP is kept as a DATETIME: cascade's time zone is UTC.
        "DATETIME" | "TIMESTAMP" => DataType::DateTime,
        "TIME" => DataType::Time,
        "VARCHAR" | "CHAR" | "TEXT" | "STRING" | "CHARACTER" | "NVARCHAR" | "TINYTEXT"
        | "MEDIUMTEXT" | "LONGTEXT" => DataType::Text,
        _ => return Err(SqlError::Unsupported(format!("the type {s}"))),
    })
}

/// The most tables one SELECT may join (MySQL's limit).
pub const MAX_JOIN_TABLES: usize = 61;

/// What a column's declared type allows beyond its storage type
/// (`TINYINT`'s range, `VARCHAR(40)`'s length, `DECIMAL(10,2)`'s scale).
pub fn column_limit(t: &ast::DataType) -> Result<ColumnLimit, SqlError> {
    let s = t.to_string().to_uppercase();
    let base = s.split(['(', ' ']).next().unwrap_or("");
    let unsigned = s.contains("UNSIGNED");
    let args: Vec<u64> = s
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(inside, _)| {
            inside
                .split(',')
                .filter_map(|a| a.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let ints = |bits: u32| {
        if unsigned {
            // BIGINT UNSIGNED past 2^63-1 cannot be held: refused at store.
            let hi = if bits >= 64 {
                i64::MAX
            } else {
                (1i64 << bits) - 1
            };
            ColumnLimit::IntRange(0, hi)
        } else if bits >= 64 {
            ColumnLimit::None
        } else {
            ColumnLimit::IntRange(-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
        }
    };
    Ok(match base {
        "TINYINT" | "BOOL" | "BOOLEAN" => ints(8),
        "SMALLINT" => ints(16),
        "MEDIUMINT" => ints(24),
        "INT" | "INTEGER" | "INT4" => ints(32),
        "BIGINT" | "INT8" | "INT64" | "SIGNED" | "UNSIGNED" => ints(64),
        "DECIMAL" | "NUMERIC" | "DEC" => {
            let precision = args.first().copied().unwrap_or(10);
            let scale = args.get(1).copied().unwrap_or(0);
            if !(1..=65).contains(&precision) || scale > 30 || scale > precision {
                return Err(SqlError::Unsupported(format!("the type {s}")));
            }
            ColumnLimit::Decimal {
                precision: precision as u8,
                scale: scale as u8,
            }
        }
        // `CHAR` alone is `CHAR(1)`; a `VARCHAR` without a length (which
        // MySQL refuses) is left unlimited.
        "VARCHAR" | "CHAR" | "CHARACTER" | "NVARCHAR" => match args.first() {
            Some(n) => ColumnLimit::MaxChars(*n),
            None if base == "CHAR" || base == "CHARACTER" => ColumnLimit::MaxChars(1),
            None => ColumnLimit::None,
        },
        "TINYTEXT" => ColumnLimit::MaxBytes(255),
        "TEXT" => ColumnLimit::MaxBytes(65_535),
        "MEDIUMTEXT" => ColumnLimit::MaxBytes(16_777_215),
        // `DATETIME(3)`: fractional seconds kept to 3 digits (0 when not
        // given, as MySQL); more than 6 is MySQL's 1426.
        "DATETIME" | "TIMESTAMP" | "TIME" => {
            let fsp = args.first().copied().unwrap_or(0);
            if fsp > 6 {
                return Err(SqlError::InvalidValue(format!(
                    "Too-big precision {fsp} specified for '{base}'. Maximum is 6."
                )));
            }
            ColumnLimit::FractionalSeconds(fsp as u8)
        }
        _ => ColumnLimit::None,
    })
}

/// `UNSIGNED [INTEGER]`, `BIGINT UNSIGNED`, …: a cast target cascade holds
/// in a BIGINT only when the value is in `0..=2^63-1`.
pub(super) fn is_unsigned(t: &ast::DataType) -> bool {
    t.to_string().to_uppercase().contains("UNSIGNED")
}
