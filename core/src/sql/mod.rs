//! SQL: parsing (sqlparser, MySQL dialect), planning, expressions.

pub mod error;
pub mod expr;
pub mod plan;
pub mod shape;

pub use error::{ExecError, SqlError};

use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::{Parser, ParserError};

/// Parses a request into statements. Syntax errors carry the position.
///
/// The statements come out with their depth bounded (see [`shape`]): a
/// statement nested deeper than the engine allows is [`SqlError::TooDeep`].
pub fn parse(sql: &str) -> Result<Vec<sqlparser::ast::Statement>, SqlError> {
    let mut stmts = Parser::new(&MySqlDialect {})
        .with_recursion_limit(shape::PARSER_DEPTH)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| match e {
            ParserError::RecursionLimitExceeded => SqlError::TooDeep(shape::PARSER_DEPTH),
            e => SqlError::Syntax(
                e.to_string()
                    .trim_start_matches("sql parser error: ")
                    .to_owned(),
            ),
        })?;
    let mut verdict = Ok(());
    for s in &mut stmts {
        // Every statement is bounded, also after a failure, so that all of
        // them can be dropped safely.
        let r = shape::bound(s);
        if verdict.is_ok() {
            verdict = r;
        }
    }
    verdict.map(|()| stmts)
}
