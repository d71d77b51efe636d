//! SQL: parsing (sqlparser, MySQL dialect), planning, expressions.

pub mod ddl;
pub mod error;
pub mod info_schema;
pub mod plan;
pub mod shape;
pub mod sqlcommenter;
pub mod walk;

pub use crate::expr::ExecError;
pub use error::SqlError;

use sqlparser::dialect::MySqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

/// Parses a request into statements. Syntax errors carry the position.
///
/// The statements come out with their depth bounded (see [`shape`]): a
/// statement nested deeper than the engine allows is [`SqlError::TooDeep`].
pub fn parse(sql: &str) -> Result<Vec<sqlparser::ast::Statement>, SqlError> {
    let syntax = |e: ParserError| {
        SqlError::Syntax(
            e.to_string()
                .trim_start_matches("sql parser error: ")
                .to_owned(),
        )
    };
    let dialect = MySqlDialect {};
    let mut tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| syntax(e.into()))?;
    mod_operators(&mut tokens);
    shape::check_parens(&tokens)?;
    let mut stmts = Parser::new(&dialect)
        .with_recursion_limit(shape::PARSER_DEPTH)
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .map_err(|e| match e {
            ParserError::RecursionLimitExceeded => SqlError::TooDeep(shape::PARSER_DEPTH),
            e => syntax(e),
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

/// Keywords after which an expression starts: a `MOD` right after one is
/// the function `mod(a, b)` or a column named `mod`, not the operator.
const BEFORE_OPERAND: &[Keyword] = &[
    Keyword::SELECT,
    Keyword::WHERE,
    Keyword::AND,
    Keyword::OR,
    Keyword::NOT,
    Keyword::XOR,
    Keyword::WHEN,
    Keyword::THEN,
    Keyword::ELSE,
    Keyword::CASE,
    Keyword::ON,
    Keyword::HAVING,
    Keyword::BY,
    Keyword::DISTINCT,
    Keyword::ALL,
    Keyword::SET,
    Keyword::IN,
    Keyword::LIKE,
    Keyword::BETWEEN,
    Keyword::IS,
    Keyword::AS,
    Keyword::LIMIT,
    Keyword::OFFSET,
    Keyword::INTERVAL,
    Keyword::DIV,
    Keyword::VALUES,
    Keyword::USING,
    Keyword::EXISTS,
    Keyword::ANY,
    Keyword::SOME,
    Keyword::REGEXP,
    Keyword::RLIKE,
    Keyword::ESCAPE,
    Keyword::RETURN,
    Keyword::DEFAULT,
    Keyword::BINARY,
    Keyword::ROW,
    Keyword::INTO,
    Keyword::FROM,
    Keyword::JOIN,
    Keyword::TABLE,
    Keyword::UPDATE,
    Keyword::EXPLAIN,
    Keyword::ANALYZE,
];

/// MySQL's `a MOD b` operator, which sqlparser's MySQL dialect does not
/// parse (it has only `DIV`): a `MOD` word between the end of one operand
/// and the start of the next becomes `%`, the same operator. `mod(a, b)`
/// and columns or tables named `mod` are left alone (the word then follows
/// a keyword or punctuation that starts an expression, or is followed by
/// one that ends it).
fn mod_operators(tokens: &mut [TokenWithSpan]) {
    let significant = |t: &Token| !matches!(t, Token::Whitespace(_));
    for i in 0..tokens.len() {
        let Token::Word(w) = &tokens[i].token else {
            continue;
        };
        if w.keyword != Keyword::MOD || w.quote_style.is_some() {
            continue;
        }
        let prev = tokens[..i]
            .iter()
            .rev()
            .map(|t| &t.token)
            .find(|t| significant(t));
        let next = tokens[i + 1..]
            .iter()
            .map(|t| &t.token)
            .find(|t| significant(t));
        let ends_operand = match prev {
            Some(
                Token::Number(..)
                | Token::SingleQuotedString(_)
                | Token::DoubleQuotedString(_)
                | Token::NationalStringLiteral(_)
                | Token::HexStringLiteral(_)
                | Token::RParen
                | Token::Placeholder(_),
            ) => true,
            Some(Token::Word(p)) => p.quote_style.is_some() || !BEFORE_OPERAND.contains(&p.keyword),
            _ => false,
        };
        let starts_operand = match next {
            None
            | Some(Token::EOF | Token::RParen | Token::Comma | Token::SemiColon | Token::Period) => {
                false
            }
            Some(Token::Word(n)) => {
                n.quote_style.is_some()
                    || !sqlparser::keywords::RESERVED_FOR_COLUMN_ALIAS.contains(&n.keyword)
            }
            Some(_) => true,
        };
        if ends_operand && starts_operand {
            tokens[i].token = Token::Mod;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> String {
        parse(sql).unwrap()[0].to_string()
    }

    #[test]
    fn mod_is_an_operator_between_operands_only() {
        assert_eq!(one("SELECT 7 MOD 3"), "SELECT 7 % 3");
        assert_eq!(one("SELECT a mod b FROM t"), "SELECT a % b FROM t");
        assert_eq!(
            one("SELECT (a) MOD -2, 'x' mod 2"),
            "SELECT (a) % -2, 'x' % 2"
        );
        assert_eq!(
            one("SELECT count(*) MOD 2 FROM t"),
            "SELECT count(*) % 2 FROM t"
        );
        // Left alone: the function, and names.
        assert_eq!(
            one("SELECT mod(7, 3), MOD(1, 2)"),
            "SELECT mod(7, 3), MOD(1, 2)"
        );
        assert_eq!(one("SELECT 1 + mod(7, 3)"), "SELECT 1 + mod(7, 3)");
        assert_eq!(
            one("SELECT t.mod, `mod` FROM t"),
            "SELECT t.mod, `mod` FROM t"
        );
        assert_eq!(one("SELECT x AS mod FROM t"), "SELECT x AS mod FROM t");
        assert_eq!(
            one("SELECT mod FROM t WHERE mod > 1"),
            "SELECT mod FROM t WHERE mod > 1"
        );
        assert_eq!(one("SELECT mod MOD mod FROM t"), "SELECT mod % mod FROM t");
    }
}
