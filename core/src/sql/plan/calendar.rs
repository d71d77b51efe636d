//! Compiling the date and time SQL: typed literals (`DATE '2024-01-01'`),
//! `d ± INTERVAL n unit`, `EXTRACT(unit FROM d)`, the date functions, and
//! `NOW()` and its kin, which read the statement's wall-clock time
//! ([`Compiler::now_micros`]) and become constants: fixed for the whole
//! statement, as in MySQL.

use sqlparser::ast;

use super::compile::{AggCx, Compiler};
use super::scope::Scope;
use crate::data::{DataType, Value};
use crate::datetime::{self, Unit, MICROS_PER_DAY, MICROS_PER_SEC};
use crate::expr::{Expr, Func, TemporalFn};
use crate::sql::error::SqlError;

/// The most `± INTERVAL` terms in one run of `+` / `-`: each nests the
/// expression one level deeper.
const MAX_INTERVALS: usize = 32;

/// The unit of an `INTERVAL` or `EXTRACT` field.
pub(super) fn unit(f: &ast::DateTimeField) -> Result<Unit, SqlError> {
    use ast::DateTimeField as F;
    Ok(match f {
        F::Year | F::Years => Unit::Year,
        F::Quarter => Unit::Quarter,
        F::Month | F::Months => Unit::Month,
        F::Week(None) | F::Weeks => Unit::Week,
        F::Day | F::Days => Unit::Day,
        F::Hour | F::Hours => Unit::Hour,
        F::Minute | F::Minutes => Unit::Minute,
        F::Second | F::Seconds => Unit::Second,
        F::Microsecond | F::Microseconds => Unit::Microsecond,
        other => return Err(SqlError::Unsupported(format!("the date part {other}"))),
    })
}

/// `DATE '…'`, `TIMESTAMP '…'`, `TIME '…'` (and `DATETIME '…'`): an invalid
/// value is error 1525, as MySQL.
pub(super) fn typed_string(t: &ast::TypedString) -> Result<Value, SqlError> {
    let ty = match &t.data_type {
        ast::DataType::Date => DataType::Date,
        ast::DataType::Time(..) => DataType::Time,
        ast::DataType::Timestamp(..) | ast::DataType::Datetime(_) => DataType::DateTime,
        other => return Err(SqlError::Unsupported(format!("the literal {other} '…'"))),
    };
    let text = match &t.value.value {
        ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => s.clone(),
        other => other.to_string(),
    };
    let bad = || SqlError::IncorrectValue {
        ty: match ty {
            DataType::Date => "DATE",
            DataType::Time => "TIME",
            _ => "DATETIME",
        },
        value: text.clone(),
    };
    Ok(match ty {
        // `DATE '2024-01-05 10:00'` is refused by MySQL too.
        DataType::Date => match datetime::parse_datetime(&text) {
            Some(datetime::Parsed::Date(d)) => Value::Date(d),
            _ => return Err(bad()),
        },
        DataType::Time => Value::Time(datetime::parse_time(&text).ok_or_else(bad)?),
        _ => Value::DateTime(
            datetime::parse_datetime(&text)
                .map(datetime::Parsed::micros)
                .ok_or_else(bad)?,
        ),
    })
}

/// `DATE_ADD(d, n, unit)` (or `DATE_SUB`) as an expression.
fn date_add(sub: bool, d: Expr, n: Expr, u: Unit) -> Expr {
    Expr::Func {
        f: Func::Temporal(if sub {
            TemporalFn::DateSub
        } else {
            TemporalFn::DateAdd
        }),
        args: vec![d, n, Expr::Literal(Value::Int(u.code()))],
    }
}

/// The current time as `NOW(fsp)` shows it: seconds cut to `fsp` digits.
fn now_with(micros: i64, fsp: i64) -> i64 {
    let keep = 10i64.pow(6 - fsp.clamp(0, 6) as u32);
    micros - micros.rem_euclid(keep)
}

impl Compiler<'_> {
    /// A run of `+` / `-` with an `INTERVAL` in it (`d + INTERVAL 1 DAY -
    /// INTERVAL 2 HOUR`, `INTERVAL 1 DAY + d`), left to right; `None` when
    /// the run has no interval.
    pub(super) fn compile_interval_run(
        &self,
        operands: &[&ast::Expr],
        ops: &[&ast::BinaryOperator],
        scope: &Scope,
        clause: &'static str,
        agg: &mut Option<&mut AggCx>,
    ) -> Result<Option<Expr>, SqlError> {
        let interval = |e: &ast::Expr| match e {
            ast::Expr::Interval(i) => Some(i.clone()),
            ast::Expr::Nested(x) => match &**x {
                ast::Expr::Interval(i) => Some(i.clone()),
                _ => None,
            },
            _ => None,
        };
        let count = operands.iter().filter(|e| interval(e).is_some()).count();
        if count == 0 {
            return Ok(None);
        }
        if count > MAX_INTERVALS {
            return Err(SqlError::Unsupported(format!(
                "more than {MAX_INTERVALS} INTERVAL terms in one expression"
            )));
        }
        let mut it = operands
            .iter()
            .copied()
            .zip(std::iter::once(None).chain(ops.iter().map(|o| Some((*o).clone()))));
        let Some((first, _)) = it.next() else {
            return Ok(None);
        };
        let mut acc = match interval(first) {
            // `INTERVAL n unit + d`: only `+`, and `d` next.
            Some(iv) => {
                let Some((d, Some(ast::BinaryOperator::Plus))) = it.next() else {
                    return Err(SqlError::Syntax(
                        "an INTERVAL must be added to a date: INTERVAL n unit + date".into(),
                    ));
                };
                let (n, u) = self.interval_parts(&iv, scope, clause, agg)?;
                let d = self.compile_in(d, scope, clause, agg)?;
                date_add(false, d, n, u)
            }
            None => self.compile_in(first, scope, clause, agg)?,
        };
        for (x, op) in it {
            let Some(op) = op else { continue };
            acc = match (interval(x), &op) {
                (Some(iv), ast::BinaryOperator::Plus | ast::BinaryOperator::Minus) => {
                    let (n, u) = self.interval_parts(&iv, scope, clause, agg)?;
                    date_add(op == ast::BinaryOperator::Minus, acc, n, u)
                }
                (Some(_), _) => {
                    return Err(SqlError::Syntax(format!(
                        "an INTERVAL can only be added or subtracted, not used with {op}"
                    )))
                }
                (None, _) => Expr::Binary {
                    op: super::compile::bin_op(&op)?,
                    l: Box::new(acc),
                    r: Box::new(self.compile_in(x, scope, clause, agg)?),
                },
            };
        }
        Ok(Some(acc))
    }

    /// The amount and unit of `INTERVAL n unit`.
    fn interval_parts(
        &self,
        iv: &ast::Interval,
        scope: &Scope,
        clause: &'static str,
        agg: &mut Option<&mut AggCx>,
    ) -> Result<(Expr, Unit), SqlError> {
        if iv.last_field.is_some() {
            return Err(SqlError::Unsupported("INTERVAL … TO … ranges".into()));
        }
        let Some(f) = &iv.leading_field else {
            return Err(SqlError::Syntax("INTERVAL needs a unit".into()));
        };
        let u = unit(f)?;
        Ok((self.compile_in(&iv.value, scope, clause, agg)?, u))
    }

    /// `EXTRACT(unit FROM e)`.
    pub(super) fn compile_extract(
        &self,
        field: &ast::DateTimeField,
        e: &ast::Expr,
        scope: &Scope,
        clause: &'static str,
        agg: &mut Option<&mut AggCx>,
    ) -> Result<Expr, SqlError> {
        let u = unit(field)?;
        Ok(Expr::Func {
            f: Func::Temporal(TemporalFn::Extract),
            args: vec![
                Expr::Literal(Value::Int(u.code())),
                self.compile_in(e, scope, clause, agg)?,
            ],
        })
    }

    /// A date or time function by name, with its raw arguments; `None`
    /// when `name` is none of them.
    pub(super) fn compile_calendar_func(
        &self,
        name: &str,
        raw: &[&ast::Expr],
        scope: &Scope,
        clause: &'static str,
        agg: &mut Option<&mut AggCx>,
    ) -> Result<Option<Expr>, SqlError> {
        let wrong = || SqlError::WrongArgs(name.to_owned());
        let now = || {
            self.now_micros.ok_or_else(|| {
                SqlError::Unsupported(format!(
                    "{name}() in a column DEFAULT (its value would be frozen)"
                ))
            })
        };
        // `NOW(fsp)`: the precision must be a constant 0..=6.
        let fsp = |this: &Self| -> Result<i64, SqlError> {
            match raw {
                [] => Ok(0),
                [e] => match super::compile::const_int(this, e, "fractional seconds precision") {
                    Ok(p) if (0..=6).contains(&p) => Ok(p),
                    _ => Err(SqlError::InvalidValue(format!(
                        "Too-big precision {e} specified for '{name}'. Maximum is 6."
                    ))),
                },
                _ => Err(wrong()),
            }
        };
        Ok(Some(match name {
            "now" | "current_timestamp" | "localtime" | "localtimestamp" | "sysdate"
            | "utc_timestamp" => {
                let p = fsp(self)?;
                Expr::Literal(Value::DateTime(now_with(now()?, p)))
            }
            "curdate" | "current_date" | "utc_date" => {
                if !raw.is_empty() {
                    return Err(wrong());
                }
                Expr::Literal(Value::Date(now()?.div_euclid(MICROS_PER_DAY) as i32))
            }
            "curtime" | "current_time" | "utc_time" => {
                let p = fsp(self)?;
                Expr::Literal(Value::Time(now_with(now()?, p).rem_euclid(MICROS_PER_DAY)))
            }
            "unix_timestamp" if raw.is_empty() => {
                Expr::Literal(Value::Int(now()?.div_euclid(MICROS_PER_SEC)))
            }
            "date_add" | "date_sub" | "adddate" | "subdate" => {
                let [d, n] = raw else {
                    return Err(wrong());
                };
                let sub = matches!(name, "date_sub" | "subdate");
                let d = self.compile_in(d, scope, clause, agg)?;
                // `ADDDATE(d, 5)` is five days.
                let (n, u) = match n {
                    ast::Expr::Interval(iv) => self.interval_parts(iv, scope, clause, agg)?,
                    other if matches!(name, "adddate" | "subdate") => {
                        (self.compile_in(other, scope, clause, agg)?, Unit::Day)
                    }
                    _ => return Err(wrong()),
                };
                date_add(sub, d, n, u)
            }
            _ => {
                let Some((f, lo, hi)) = TemporalFn::by_name(name) else {
                    return Ok(None);
                };
                if raw.len() < lo || raw.len() > hi {
                    return Err(wrong());
                }
                let mut args = Vec::with_capacity(raw.len());
                for a in raw {
                    args.push(self.compile_in(a, scope, clause, agg)?);
                }
                Expr::Func {
                    f: Func::Temporal(f),
                    args,
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_cut_to_its_precision() {
        let t = 1_704_067_200_123_456;
        assert_eq!(now_with(t, 0), 1_704_067_200_000_000);
        assert_eq!(now_with(t, 3), 1_704_067_200_123_000);
        assert_eq!(now_with(t, 6), t);
    }
}
