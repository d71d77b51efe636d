//! The engine's own SQL tests, in sqllogictest format, run with the
//! `sqllogictest` crate (as DataFusion, RisingWave and Databend do).
//!
//! [`CascadeDb`] implements the crate's [`AsyncDB`] trait over one
//! [`Connection`]; [`run_file`] runs one `.slt` file on a fresh [`Engine`]
//! (each `connection NAME` record of the file opens another session on the
//! same engine). `tests/sql.rs` runs every `core/tests/slt/*.slt` file this
//! way, one test per file. The format, as cascade reads it, is in
//! docs/sql-tests.md; in short:
//!
//! - Column types are checked: `I` integer, `R` floating point or
//!   `DECIMAL`, `T` text, `D` date and time types, `N` the type of a bare
//!   `NULL`; `?` in the expected types accepts any type ([`SqlType`]).
//! - Values are rendered as MySQL's text protocol shows them (`Value`'s
//!   `Display`), `NULL` as `NULL`, the empty string as `(empty)`.
//! - `statement error 1146` (or `query error 1146`): an expected error that
//!   is only a number matches the error's MySQL code exactly; any other text
//!   after `error` is a regex matched against `ERROR <code> (<sqlstate>):
//!   <message>`; `error (42S02)` matches the SQLSTATE.
//! - `statement count N` checks rows affected.

use std::path::Path;
use std::time::Duration;

use cascade::{Connection, DataType, Engine, EngineConfig, ExecOptions, Identity, QueryError};
use cascade::{StdHost, Value};
use sqllogictest::{
    AsyncDB, ColumnType, DBOutput, ExpectedError, QueryExpect, Record, Runner, StatementExpect,
};

/// The engine name `skipif` / `onlyif` conditions are read for.
pub const ENGINE_NAME: &str = "cascade";

/// A statement that runs longer than this fails its test instead of
/// hanging the suite (a test of timeouts sets its own, shorter, limit with
/// `SET max_execution_time`).
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A result column's type, as a one-letter sqllogictest code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqlType {
    /// `I`: integers (`BIGINT`, `INT`, `BOOLEAN`, …).
    Integer,
    /// `R`: floating point (`DOUBLE`) and exact decimals (`DECIMAL`).
    Real,
    /// `T`: text (`VARCHAR`, `TEXT`, …).
    Text,
    /// `D`: `DATE`, `DATETIME`, `TIMESTAMP`, `TIME`.
    DateTime,
    /// `N`: the type of a bare `NULL`.
    Null,
    /// `?` in an expected type list: any type. Also what a type cascade
    /// adds later maps to until it gets a letter here.
    Any,
}

impl SqlType {
    /// The letter of a cascade column type, read from its SQL name so that
    /// a type added to [`DataType`] later gets its family's letter without
    /// a change here (`DECIMAL(10,2)` is `R`, `DATETIME` is `D`).
    pub fn of(ty: DataType) -> SqlType {
        let name = ty.sql_name().to_ascii_uppercase();
        let family = name.split('(').next().unwrap_or_default().trim();
        match family {
            "BIGINT" | "INT" | "INTEGER" | "SMALLINT" | "TINYINT" | "MEDIUMINT" | "BOOLEAN"
            | "BOOL" => SqlType::Integer,
            "DOUBLE" | "FLOAT" | "REAL" | "DECIMAL" | "NUMERIC" => SqlType::Real,
            "VARCHAR" | "CHAR" | "TEXT" => SqlType::Text,
            "DATE" | "DATETIME" | "TIMESTAMP" | "TIME" => SqlType::DateTime,
            "NULL" => SqlType::Null,
            _ => SqlType::Any,
        }
    }
}

impl ColumnType for SqlType {
    fn from_char(value: char) -> Option<Self> {
        Some(match value {
            'I' => SqlType::Integer,
            'R' => SqlType::Real,
            'T' => SqlType::Text,
            'D' => SqlType::DateTime,
            'N' => SqlType::Null,
            '?' => SqlType::Any,
            _ => return None,
        })
    }

    fn to_char(&self) -> char {
        match self {
            SqlType::Integer => 'I',
            SqlType::Real => 'R',
            SqlType::Text => 'T',
            SqlType::DateTime => 'D',
            SqlType::Null => 'N',
            SqlType::Any => '?',
        }
    }
}

/// The column check: as many columns as expected, each of the expected
/// type (`?` accepts any).
#[allow(clippy::ptr_arg)] // the crate's validator signature
pub fn columns_match(actual: &Vec<SqlType>, expected: &Vec<SqlType>) -> bool {
    actual.len() == expected.len()
        && actual
            .iter()
            .zip(expected)
            .all(|(a, e)| *e == SqlType::Any || a == e)
}

/// One value as a test file shows it: MySQL's text form, `NULL`, and
/// `(empty)` for the empty string (a blank would vanish in the file).
pub fn render(v: &Value) -> String {
    match v {
        Value::Text(s) if s.is_empty() => "(empty)".to_string(),
        v => v.to_string(),
    }
}

/// A session of a cascade engine, as the `sqllogictest` crate's database.
pub struct CascadeDb {
    conn: Connection,
    exec: ExecOptions,
}

impl CascadeDb {
    /// A new session on `engine`.
    pub fn connect(engine: &Engine) -> Result<CascadeDb, QueryError> {
        Ok(CascadeDb {
            conn: engine.connect(Identity::new("slt", "slt", "member"))?,
            exec: ExecOptions {
                timeout: Some(STATEMENT_TIMEOUT),
            },
        })
    }
}

#[async_trait::async_trait]
impl AsyncDB for CascadeDb {
    type Error = QueryError;
    type ColumnType = SqlType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<SqlType>, QueryError> {
        let r = self.conn.execute_with(sql, self.exec).await?;
        if r.columns.is_empty() {
            return Ok(DBOutput::StatementComplete(r.rows_affected));
        }
        Ok(DBOutput::Rows {
            types: r.columns.iter().map(|c| SqlType::of(c.ty)).collect(),
            rows: r
                .rows
                .iter()
                .map(|row| row.iter().map(render).collect())
                .collect(),
        })
    }

    async fn shutdown(&mut self) {
        self.conn.close().await;
    }

    fn engine_name(&self) -> &str {
        ENGINE_NAME
    }

    fn error_sql_state(err: &QueryError) -> Option<String> {
        Some(err.sqlstate.to_string())
    }
}

/// An expected error written as a bare MySQL code (`statement error 1146`)
/// becomes a regex anchored on the code in `ERROR 1146 (42S02): …`, so that
/// it matches that code and nothing else (not a number in the message).
fn code_match(expected: ExpectedError) -> ExpectedError {
    if let ExpectedError::Inline(re) = &expected {
        let text = re.as_str();
        if (3..=5).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(re) = regex::Regex::new(&format!("^ERROR {text} ")) {
                return ExpectedError::Inline(re);
            }
        }
    }
    expected
}

/// The records of a file with bare error codes made exact ([`code_match`]).
fn with_exact_codes(mut records: Vec<Record<SqlType>>) -> Vec<Record<SqlType>> {
    for r in &mut records {
        let e = match r {
            Record::Statement {
                expected: StatementExpect::Error(e),
                ..
            }
            | Record::Query {
                expected: QueryExpect::Error(e),
                ..
            } => e,
            _ => continue,
        };
        *e = code_match(std::mem::replace(e, ExpectedError::Empty));
    }
    records
}

/// Runs one `.slt` file on a fresh engine; the error says which record
/// failed, where, and how (expected and actual values or errors).
pub fn run_file(path: &Path) -> Result<(), String> {
    let records = sqllogictest::parse_file::<SqlType>(path).map_err(|e| e.to_string())?;
    run_records(records)
}

/// Runs the text of a `.slt` file (named `name` in errors) on a fresh
/// engine, as [`run_file`] does.
pub fn run_script(name: &str, text: &str) -> Result<(), String> {
    let records =
        sqllogictest::parse_with_name::<SqlType>(text, name).map_err(|e| e.to_string())?;
    run_records(records)
}

fn run_records(records: Vec<Record<SqlType>>) -> Result<(), String> {
    let engine = Engine::new(EngineConfig::new(1, StdHost::shared()));
    let make = {
        let engine = engine.clone();
        move || {
            let engine = engine.clone();
            async move { CascadeDb::connect(&engine) }
        }
    };
    let mut runner = Runner::new(make);
    runner.with_column_validator(columns_match);
    runner.add_label(ENGINE_NAME);
    let result = runner.run_multi(with_exact_codes(records));
    runner.shutdown();
    engine.shutdown();
    result.map_err(|e| e.display(false).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETUP: &str = "statement ok\nCREATE TABLE t (a INT, b VARCHAR(5), c DOUBLE)\n\n\
        statement count 2\nINSERT INTO t VALUES (1, '', 1.5), (2, NULL, NULL)\n\n";

    fn run(body: &str) -> Result<(), String> {
        run_script("t.slt", &format!("{SETUP}{body}"))
    }

    #[test]
    fn values_types_and_counts_pass_when_right() {
        let body = "query ITR rowsort\nSELECT a, b, c FROM t\n----\n1 (empty) 1.5\n2 NULL NULL\n\n\
            query ?\nSELECT count(*) FROM t\n----\n2\n\n\
            statement count 1\nDELETE FROM t WHERE a = 2\n";
        assert_eq!(run(body), Ok(()));
    }

    #[test]
    fn a_wrong_value_fails() {
        let e = run("query I\nSELECT a FROM t WHERE a = 1\n----\n2\n").unwrap_err();
        assert!(
            e.contains("query result mismatch") && e.contains("t.slt:"),
            "{e}"
        );
    }

    #[test]
    fn a_wrong_column_type_fails() {
        let e = run("query I\nSELECT c FROM t WHERE a = 1\n----\n1.5\n").unwrap_err();
        assert!(e.contains("query columns mismatch"), "{e}");
        let e = run("query II\nSELECT a FROM t WHERE a = 1\n----\n1\n").unwrap_err();
        assert!(e.contains("query columns mismatch"), "{e}");
    }

    #[test]
    fn a_wrong_row_count_fails() {
        let e = run("statement count 2\nDELETE FROM t WHERE a = 1\n").unwrap_err();
        assert!(e.contains("affected 1 rows"), "{e}");
    }

    #[test]
    fn a_bare_error_code_matches_that_code_only() {
        assert_eq!(run("statement error 1146\nSELECT * FROM nope\n"), Ok(()));
        assert_eq!(run("statement error (42S02)\nSELECT * FROM nope\n"), Ok(()));
        // 1146's message does not name 1054; a table named like a code must
        // not satisfy the code either.
        let e = run("statement error 1054\nSELECT * FROM nope\n").unwrap_err();
        assert!(e.contains("ERROR 1146"), "{e}");
        let e = run("statement error 1054\nSELECT * FROM `t1054`\n").unwrap_err();
        assert!(e.contains("ERROR 1146"), "{e}");
        let e = run("query error 1146\nSELECT 1\n").unwrap_err();
        assert!(e.contains("expected to fail"), "{e}");
    }

    #[test]
    fn connections_are_sessions_of_one_engine() {
        let body = "statement ok\nBEGIN\n\nstatement ok\nDELETE FROM t\n\n\
            connection b\nquery I\nSELECT count(*) FROM t\n----\n2\n";
        assert_eq!(run(body), Ok(()));
    }

    #[test]
    fn type_letters_follow_the_sql_names() {
        assert_eq!(SqlType::of(DataType::Int), SqlType::Integer);
        assert_eq!(SqlType::of(DataType::Float), SqlType::Real);
        assert_eq!(SqlType::of(DataType::Text), SqlType::Text);
        assert_eq!(SqlType::of(DataType::Null), SqlType::Null);
        for c in ['I', 'R', 'T', 'D', 'N', '?'] {
            assert_eq!(SqlType::from_char(c).map(|t| t.to_char()), Some(c));
        }
        assert_eq!(SqlType::from_char('X'), None);
    }
}
