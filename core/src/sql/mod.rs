//! SQL: parsing (sqlparser, MySQL dialect), planning, expressions.

pub mod error;
pub mod expr;
pub mod plan;

pub use error::{ExecError, SqlError};

use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

/// Parses a request into statements. Syntax errors carry the position.
pub fn parse(sql: &str) -> Result<Vec<sqlparser::ast::Statement>, SqlError> {
    Parser::new(&MySqlDialect {})
        .with_recursion_limit(64)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| {
            SqlError::Syntax(
                e.to_string()
                    .trim_start_matches("sql parser error: ")
                    .to_owned(),
            )
        })
}
