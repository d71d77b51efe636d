//! The sqllogictest file format: records, conditions and control lines.
//!
//! A file is a list of blocks separated by blank lines. A block is
//! `statement ok|error` followed by the SQL, or `query <types> [<sort>
//! [<label>]]` followed by the SQL, `----` and the expected values (one a
//! line, or `N values hashing to <md5>`); `skipif <engine>` / `onlyif
//! <engine>` lines before a block (or before `halt`) make it conditional;
//! `hash-threshold N` and `halt` are control lines. `#` starts a comment,
//! both on a line of its own and after the tokens of a header line.
//!
//! Why not the `sqllogictest` crate's parser: it attaches no condition to
//! `halt` (the conditions carry over to the next record instead), so
//! `onlyif mssql` + `halt` at the top of `evidence/in1.test` would stop the
//! file for every engine; and its runner renders values without the
//! declared column types, which the I/R/T rules need.

use std::fmt;

/// An engine condition on a record: `skipif <engine>` or `onlyif <engine>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// Skip the record on this engine.
    SkipIf(String),
    /// Run the record on this engine only.
    OnlyIf(String),
}

impl Condition {
    /// Whether the condition makes `engine` skip the record.
    pub fn skips(&self, engine: &str) -> bool {
        match self {
            Condition::SkipIf(e) => e == engine,
            Condition::OnlyIf(e) => e != engine,
        }
    }
}

/// How a query's values are ordered before they are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortMode {
    /// In the order the engine returned them.
    NoSort,
    /// Rows sorted, each compared as the list of its rendered values.
    RowSort,
    /// Every value sorted on its own.
    ValueSort,
}

/// A column type of a `query` record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// `I`: an integer.
    Integer,
    /// `R`: a float, printed with three decimals.
    Real,
    /// `T`: text.
    Text,
}

/// What a record expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// `statement ok`: the statement succeeds.
    StatementOk,
    /// `statement error`: the statement fails.
    StatementError,
    /// `query`: the statement returns these values.
    Query {
        /// The declared column types.
        types: Vec<ColumnType>,
        /// How values are ordered before comparison.
        sort: SortMode,
        /// The label (4th token), if any: informational only.
        label: Option<String>,
        /// The expected lines after `----`: values, or one hash line.
        expected: Vec<String>,
    },
}

/// A statement or query with its conditions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// 1-based line of the `statement` / `query` header.
    pub line: usize,
    /// The `skipif` / `onlyif` lines before it.
    pub conditions: Vec<Condition>,
    /// The SQL (its lines joined by `\n`).
    pub sql: String,
    /// What it expects.
    pub expect: Expect,
}

/// One item of a file, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// A statement or query.
    Record(Record),
    /// `hash-threshold N`: results of more than N values are compared by hash.
    HashThreshold(usize),
    /// `halt`: stop the file (when its conditions let it apply).
    Halt(Vec<Condition>),
}

/// A line the parser does not understand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// The tokens of a header line, without a trailing `#` comment.
fn tokens(line: &str) -> Vec<&str> {
    line.split_whitespace()
        .take_while(|t| !t.starts_with('#'))
        .collect()
}

/// Parses a whole file (LF or CRLF line ends).
///
/// ```
/// use cascade_slt::record::{parse, Expect, Item};
/// let items = parse("skipif mysql\nquery I rowsort\nSELECT 1\n----\n1\n").unwrap();
/// let Item::Record(r) = &items[0] else { panic!() };
/// assert!(matches!(&r.expect, Expect::Query { expected, .. } if expected == &["1"]));
/// ```
pub fn parse(text: &str) -> Result<Vec<Item>, ParseError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut items = Vec::new();
    let mut conditions = Vec::new();
    let mut i = 0;
    let err = |line: usize, message: String| ParseError { line, message };
    while i < lines.len() {
        let line_no = i + 1;
        let toks = tokens(lines[i]);
        i += 1;
        let Some(&head) = toks.first() else {
            continue; // blank or comment line
        };
        match (head, &toks[1..]) {
            ("skipif", [engine, ..]) => conditions.push(Condition::SkipIf(engine.to_string())),
            ("onlyif", [engine, ..]) => conditions.push(Condition::OnlyIf(engine.to_string())),
            ("hash-threshold", [n]) => {
                let n = n
                    .parse()
                    .map_err(|_| err(line_no, format!("bad hash-threshold {n:?}")))?;
                items.push(Item::HashThreshold(n));
            }
            ("halt", []) => items.push(Item::Halt(std::mem::take(&mut conditions))),
            ("statement", [which]) => {
                let expect = match *which {
                    "ok" => Expect::StatementOk,
                    "error" => Expect::StatementError,
                    other => return Err(err(line_no, format!("bad statement kind {other:?}"))),
                };
                let (sql, next) = block(&lines, i, false);
                i = next;
                items.push(Item::Record(Record {
                    line: line_no,
                    conditions: std::mem::take(&mut conditions),
                    sql,
                    expect,
                }));
            }
            ("query", [types, rest @ ..]) => {
                let types = types
                    .chars()
                    .map(|c| match c {
                        'I' => Ok(ColumnType::Integer),
                        'R' => Ok(ColumnType::Real),
                        'T' => Ok(ColumnType::Text),
                        other => Err(err(line_no, format!("bad column type {other:?}"))),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let sort = match rest.first() {
                    None | Some(&"nosort") => SortMode::NoSort,
                    Some(&"rowsort") => SortMode::RowSort,
                    Some(&"valuesort") => SortMode::ValueSort,
                    Some(other) => return Err(err(line_no, format!("bad sort mode {other:?}"))),
                };
                let label = rest.get(1).map(|s| s.to_string());
                let (sql, next) = block(&lines, i, true);
                i = next;
                let mut expected = Vec::new();
                if lines.get(i - 1).is_some_and(|l| l.trim_end() == "----") {
                    while i < lines.len() && !lines[i].trim().is_empty() {
                        expected.push(lines[i].trim_end().to_string());
                        i += 1;
                    }
                }
                items.push(Item::Record(Record {
                    line: line_no,
                    conditions: std::mem::take(&mut conditions),
                    sql,
                    expect: Expect::Query {
                        types,
                        sort,
                        label,
                        expected,
                    },
                }));
            }
            _ => {
                return Err(err(
                    line_no,
                    format!("unknown line {:?}", lines[line_no - 1]),
                ))
            }
        }
    }
    Ok(items)
}

/// The SQL lines from `start` up to a blank line (or `----` when `query`);
/// returns the SQL and the index after the terminating line.
fn block(lines: &[&str], start: usize, query: bool) -> (String, usize) {
    let mut i = start;
    let mut sql = Vec::new();
    while i < lines.len() {
        let l = lines[i].trim_end();
        i += 1;
        if l.trim().is_empty() || (query && l == "----") {
            break;
        }
        sql.push(l);
    }
    (sql.join("\n"), i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_attach_to_halt_not_to_the_next_record() {
        let items =
            parse("onlyif mssql\nhalt\n\nstatement ok\nCREATE TABLE t(a INT)\n").expect("parse");
        assert_eq!(
            items[0],
            Item::Halt(vec![Condition::OnlyIf("mssql".into())])
        );
        let Item::Record(r) = &items[1] else {
            panic!("expected a record, got {:?}", items[1]);
        };
        assert!(r.conditions.is_empty());
        assert_eq!(r.expect, Expect::StatementOk);
    }

    #[test]
    fn query_header_comments_crlf_and_hash_lines() {
        let text = "hash-threshold 8\r\n\r\nonlyif mysql # DIV for integer division: \r\nquery II rowsort label-7\r\nSELECT a,\r\n b FROM t\r\n----\r\n9 values hashing to abc\r\n\r\nquery T\r\nSELECT ''\r\n----\r\n(empty)\r\n";
        let items = parse(text).expect("parse");
        assert_eq!(items[0], Item::HashThreshold(8));
        let Item::Record(r) = &items[1] else {
            panic!("expected a record");
        };
        assert_eq!(r.line, 4);
        assert_eq!(r.conditions, vec![Condition::OnlyIf("mysql".into())]);
        assert_eq!(r.sql, "SELECT a,\n b FROM t");
        assert_eq!(
            r.expect,
            Expect::Query {
                types: vec![ColumnType::Integer, ColumnType::Integer],
                sort: SortMode::RowSort,
                label: Some("label-7".into()),
                expected: vec!["9 values hashing to abc".into()],
            }
        );
        let Item::Record(r) = &items[2] else {
            panic!("expected a record");
        };
        assert!(
            matches!(&r.expect, Expect::Query { sort: SortMode::NoSort, expected, .. } if expected == &["(empty)"])
        );
    }

    #[test]
    fn a_query_without_results_expects_none() {
        let items =
            parse("query I nosort\nSELECT 1 WHERE 0\n\nstatement error\nSELEC\n").expect("parse");
        assert!(
            matches!(&items[0], Item::Record(Record { expect: Expect::Query { expected, .. }, .. }) if expected.is_empty())
        );
        assert!(
            matches!(&items[1], Item::Record(Record { expect: Expect::StatementError, sql, .. }) if sql == "SELEC")
        );
    }

    #[test]
    fn unknown_lines_are_errors() {
        let e = parse("statement maybe\nSELECT 1\n").expect_err("must fail");
        assert_eq!(e.line, 1);
        assert!(parse("query X\nSELECT 1\n").is_err());
        assert!(parse("frobnicate\n").is_err());
    }

    #[test]
    fn skip_rules_for_mysql() {
        assert!(Condition::SkipIf("mysql".into()).skips("mysql"));
        assert!(!Condition::SkipIf("postgresql".into()).skips("mysql"));
        assert!(Condition::OnlyIf("sqlite".into()).skips("mysql"));
        assert!(!Condition::OnlyIf("mysql".into()).skips("mysql"));
    }
}
