//! Compiled scalar expressions and their vectorized evaluation.
//!
//! An [`Expr`] refers to input columns by index. [`Expr::eval`] works on a
//! whole [`Batch`] and returns a [`Datum`]: a column, or a scalar that is
//! broadcast lazily. Integer and float arithmetic and comparisons have typed
//! kernels; everything else falls back to row-at-a-time evaluation on
//! [`Value`]s inside the batch.

//!
//! The module sits below the pipeline and the planner: it knows data
//! ([`crate::data`]) and nothing above it.
//!
//! - this file: the expression tree ([`Expr`], [`BinOp`], [`Func`]), its
//!   types, walks and EXPLAIN text, and the evaluation settings ([`EvalCx`]);
//! - [`eval`]: evaluation on batches and rows;
//! - [`kernels`]: binary operators, scalar and vectorized, and the fused
//!   integer selections;
//! - [`func`]: scalar functions, casts and `LIKE`;
//! - [`temporal`]: the date and time functions and casts;
//! - [`assign`]: values converted and checked for a column (strict mode);
//! - [`error`]: [`ExecError`], the errors of execution.

pub mod assign;
mod error;
mod eval;
mod func;
mod kernels;
mod temporal;

pub use error::ExecError;
pub use func::{call, cast, cast_unsigned, f64_to_bigint, like, to_bigint};
pub use kernels::{scalar_binop, ModBy};
pub use temporal::{temporal_name, TemporalFn};

use std::sync::Arc;

use crate::data::{Column, ColumnData, DataType, Value};

/// A binary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`: a DECIMAL for integers and decimals (scale + 4, as MySQL), a
    /// DOUBLE otherwise; `x/0` is NULL
    Div,
    /// `DIV` (integer division)
    IntDiv,
    /// `%` / `MOD`
    Mod,
    /// `=`
    Eq,
    /// `<>` / `!=`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `<=>` (NULL-safe equality)
    NullSafeEq,
    /// `AND`
    And,
    /// `OR`
    Or,
    /// `XOR`
    Xor,
}

impl BinOp {
    fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::IntDiv => "DIV",
            BinOp::Mod => "%",
            BinOp::Eq => "=",
            BinOp::NotEq => "<>",
            BinOp::Lt => "<",
            BinOp::LtEq => "<=",
            BinOp::Gt => ">",
            BinOp::GtEq => ">=",
            BinOp::NullSafeEq => "<=>",
            BinOp::And => "AND",
            BinOp::Or => "OR",
            BinOp::Xor => "XOR",
        }
    }
    fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::NotEq | BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq
        )
    }
}

/// A scalar function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    /// `ABS(x)`
    Abs,
    /// `ROUND(x[, d])`
    Round,
    /// `FLOOR(x)`
    Floor,
    /// `CEIL(x)` / `CEILING(x)`
    Ceil,
    /// `LENGTH(s)` (bytes)
    Length,
    /// `CHAR_LENGTH(s)`
    CharLength,
    /// `UPPER(s)`
    Upper,
    /// `LOWER(s)`
    Lower,
    /// `CONCAT(a, …)`
    Concat,
    /// `SUBSTRING(s, pos[, len])`
    Substring,
    /// `COALESCE(a, …)`
    Coalesce,
    /// `IFNULL(a, b)`
    IfNull,
    /// `NULLIF(a, b)`
    NullIf,
    /// `GREATEST(a, …)`
    Greatest,
    /// `LEAST(a, …)`
    Least,
    /// `IF(c, a, b)`
    If,
    /// `SLEEP(seconds)`: returns 0 and adds the seconds to
    /// [`EvalCx::sleep_owed`]; whoever drives the evaluation (the pipeline
    /// driver, UPDATE / DELETE) then waits that long on the host timer,
    /// killably, before it uses the result.
    Sleep,
    /// `CAST(x AS UNSIGNED)`: cascade has no BIGINT UNSIGNED, so the value
    /// is exact as a BIGINT when `0 <= x <= 2^63-1` and error 1690
    /// otherwise (never MySQL's wrap of `-1` to `2^64-1`, never `-1`).
    CastUnsigned,
    /// `CAST(x AS DECIMAL(p, s))` (args: x, p, s): `x` rounded to `s`
    /// digits, an exact DECIMAL; error 1690 when it has more than `p - s`
    /// integer digits (MySQL clamps to 99…9.99 with a warning).
    CastDecimal,
    /// `TRUNCATE(x, d)`: `x` cut (toward zero) to `d` decimals.
    Truncate,
    /// A date or time function.
    Temporal(TemporalFn),
}

/// A compiled expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// Input column by index.
    Column(usize),
    /// A constant.
    Literal(Value),
    /// A parameter of a subquery: a value of its enclosing query's current
    /// row (a correlated reference), read from [`EvalCx::params`].
    Param {
        /// Index in [`EvalCx::params`].
        index: usize,
        /// Its type.
        ty: DataType,
    },
    /// `l op r`
    Binary {
        /// Operator.
        op: BinOp,
        /// Left.
        l: Box<Expr>,
        /// Right.
        r: Box<Expr>,
    },
    /// A left-associative chain `first op₁ x₁ op₂ x₂ …`, evaluated left to
    /// right as `((first op₁ x₁) op₂ x₂) …`: what a long run of operators
    /// of one precedence (`1 + 1 + …`, `a OR b OR …`) compiles to, so that
    /// its depth does not grow with its length. Always two or more links.
    Chain {
        /// The first operand.
        first: Box<Expr>,
        /// The operators and their right operands, in order.
        rest: Vec<(BinOp, Expr)>,
    },
    /// `-e`
    Neg(Box<Expr>),
    /// `NOT e`
    Not(Box<Expr>),
    /// `e IS [NOT] NULL`
    IsNull {
        /// Operand.
        e: Box<Expr>,
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// `e [NOT] IN (list)`
    InList {
        /// Operand.
        e: Box<Expr>,
        /// The list.
        list: Vec<Expr>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `e [NOT] BETWEEN lo AND hi`
    Between {
        /// Operand.
        e: Box<Expr>,
        /// Low bound.
        lo: Box<Expr>,
        /// High bound.
        hi: Box<Expr>,
        /// `NOT BETWEEN`.
        negated: bool,
    },
    /// `e [NOT] LIKE pattern`
    Like {
        /// Operand.
        e: Box<Expr>,
        /// Pattern.
        pattern: Box<Expr>,
        /// `NOT LIKE`.
        negated: bool,
    },
    /// `CASE [operand] WHEN … THEN … [ELSE …] END`
    Case {
        /// Operand of a simple CASE.
        operand: Option<Box<Expr>>,
        /// `(when, then)` pairs.
        whens: Vec<(Expr, Expr)>,
        /// `ELSE`.
        otherwise: Option<Box<Expr>>,
    },
    /// `CAST(e AS ty)`
    Cast {
        /// Operand.
        e: Box<Expr>,
        /// Target type.
        ty: DataType,
    },
    /// A function call.
    Func {
        /// Function.
        f: Func,
        /// Arguments.
        args: Vec<Expr>,
    },
}

/// The result of evaluating an expression on a batch.
#[derive(Clone, Debug)]
pub enum Datum {
    /// One value per row.
    Col(Arc<Column>),
    /// The same value for every row.
    Scalar(Value),
}

impl Datum {
    /// Row `i`.
    #[inline]
    pub fn value(&self, i: usize) -> Value {
        match self {
            Datum::Col(c) => c.value(i),
            Datum::Scalar(v) => v.clone(),
        }
    }
    /// As a column of `len` rows.
    pub fn into_column(self, len: usize) -> Arc<Column> {
        match self {
            Datum::Col(c) => c,
            Datum::Scalar(v) => {
                let col = match &v {
                    Value::Null => Column::nulls(len),
                    Value::Int(i) => Column::ints(vec![*i; len]),
                    Value::Float(f) => Column::floats(vec![*f; len]),
                    Value::Text(s) => Column {
                        data: ColumnData::Text(vec![s.clone(); len]),
                        nulls: None,
                    },
                    Value::Date(d) => Column {
                        data: ColumnData::Date(vec![*d; len]),
                        nulls: None,
                    },
                    Value::DateTime(m) => Column {
                        data: ColumnData::DateTime(vec![*m; len]),
                        nulls: None,
                    },
                    Value::Time(t) => Column {
                        data: ColumnData::Time(vec![*t; len]),
                        nulls: None,
                    },
                    Value::Decimal(d) => Column {
                        data: ColumnData::Decimal(vec![*d; len]),
                        nulls: None,
                    },
                };
                Arc::new(col)
            }
        }
    }
}

/// Evaluation settings and counters.
#[derive(Debug, Default)]
pub struct EvalCx {
    /// In DML, division by zero is an error (strict mode), not NULL.
    pub strict: bool,
    /// Warnings raised (division by zero in SELECT, …).
    pub warnings: u32,
    /// Seconds of `SLEEP` evaluated and not yet waited: the caller of the
    /// evaluation waits them (killably) before it uses the result, then
    /// sets this back to zero (see [`EvalCx::take_sleep`]).
    pub sleep_owed: f64,
    /// The values of the [`Expr::Param`]s: those of the enclosing row,
    /// during a run of a correlated subquery.
    pub params: Vec<Value>,
}

impl EvalCx {
    /// The `SLEEP` time owed, reset to zero.
    pub fn take_sleep(&mut self) -> Option<std::time::Duration> {
        let s = std::mem::take(&mut self.sleep_owed);
        // At most ~31 years: `Duration::from_secs_f64` panics past u64.
        (s > 0.0).then(|| std::time::Duration::from_secs_f64(s.min(1e9)))
    }
}

/// The type of `a op b`.
fn binary_type(op: BinOp, a: DataType, b: DataType) -> DataType {
    use DataType::*;
    // Integers and decimals stay exact; anything else (a DOUBLE, text, a
    // date in a number context) is a DOUBLE.
    let exact = |t: DataType| matches!(t, Int | Decimal | Null);
    match op {
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Mod => match (a, b) {
            (Int, Int) | (Int, Null) | (Null, Int) => Int,
            (Null, Null) => Null,
            (a, b) if exact(a) && exact(b) => Decimal,
            _ => Float,
        },
        BinOp::Div if exact(a) && exact(b) => Decimal,
        BinOp::Div => Float,
        BinOp::IntDiv => Int,
        _ => Int,
    }
}

fn bool_val(b: bool) -> Value {
    Value::Int(b as i64)
}

impl Expr {
    /// The result type given the input column types.
    pub fn data_type(&self, input: &[DataType]) -> DataType {
        use DataType::*;
        match self {
            Expr::Column(i) => input.get(*i).copied().unwrap_or(Null),
            Expr::Literal(v) => v.data_type(),
            Expr::Param { ty, .. } => *ty,
            Expr::Binary { op, l, r } => binary_type(*op, l.data_type(input), r.data_type(input)),
            Expr::Chain { first, rest } => {
                let mut t = first.data_type(input);
                for (op, x) in rest {
                    t = binary_type(*op, t, x.data_type(input));
                }
                t
            }
            Expr::Neg(e) => match e.data_type(input) {
                Text | Date | DateTime | Time => Float,
                t => t,
            },
            Expr::Not(_)
            | Expr::IsNull { .. }
            | Expr::InList { .. }
            | Expr::Between { .. }
            | Expr::Like { .. } => Int,
            Expr::Case {
                whens, otherwise, ..
            } => {
                let mut t = Null;
                for (_, then) in whens {
                    t = t.unify(then.data_type(input));
                }
                if let Some(o) = otherwise {
                    t = t.unify(o.data_type(input));
                }
                t
            }
            Expr::Cast { ty, .. } => *ty,
            Expr::Func { f, args } => {
                let arg = |i: usize| args.get(i).map_or(Null, |a| a.data_type(input));
                match f {
                    Func::Abs => match arg(0) {
                        Text | Date | DateTime | Time => Float,
                        t => t,
                    },
                    Func::Round | Func::Truncate => match arg(0) {
                        Int => Int,
                        Null => Null,
                        Decimal => Decimal,
                        _ => Float,
                    },
                    // FLOOR / CEIL of a DECIMAL is a BIGINT, as MariaDB.
                    Func::Floor | Func::Ceil => match arg(0) {
                        Float | Text | Date | DateTime | Time => Float,
                        Decimal => Int,
                        t => t,
                    },
                    Func::Length | Func::CharLength | Func::Sleep | Func::CastUnsigned => Int,
                    Func::CastDecimal => match arg(0) {
                        Null => Null,
                        _ => Decimal,
                    },
                    Func::Temporal(t) => {
                        let types: Vec<DataType> =
                            args.iter().map(|a| a.data_type(input)).collect();
                        let unit = match args.get(2) {
                            Some(Expr::Literal(Value::Int(c))) => {
                                crate::datetime::Unit::from_code(*c)
                            }
                            _ => None,
                        };
                        t.data_type(&types, unit)
                    }
                    Func::Upper | Func::Lower | Func::Concat | Func::Substring => Text,
                    Func::Coalesce | Func::IfNull | Func::Greatest | Func::Least => {
                        args.iter().fold(Null, |t, a| t.unify(a.data_type(input)))
                    }
                    Func::NullIf => arg(0),
                    Func::If => arg(1).unify(arg(2)),
                }
            }
        }
    }

    /// Whether the expression calls `SLEEP`.
    pub fn has_sleep(&self) -> bool {
        let mut found = false;
        self.visit(&mut |e| {
            if matches!(e, Expr::Func { f: Func::Sleep, .. }) {
                found = true;
            }
        });
        found
    }

    /// Calls `f` on every node.
    pub fn visit(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Column(_) | Expr::Literal(_) | Expr::Param { .. } => {}
            Expr::Binary { l, r, .. } => {
                l.visit(f);
                r.visit(f);
            }
            Expr::Chain { first, rest } => {
                first.visit(f);
                rest.iter().for_each(|(_, x)| x.visit(f));
            }
            Expr::Neg(e) | Expr::Not(e) | Expr::IsNull { e, .. } | Expr::Cast { e, .. } => {
                e.visit(f)
            }
            Expr::InList { e, list, .. } => {
                e.visit(f);
                list.iter().for_each(|x| x.visit(f));
            }
            Expr::Between { e, lo, hi, .. } => {
                e.visit(f);
                lo.visit(f);
                hi.visit(f);
            }
            Expr::Like { e, pattern, .. } => {
                e.visit(f);
                pattern.visit(f);
            }
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                if let Some(o) = operand {
                    o.visit(f);
                }
                for (w, t) in whens {
                    w.visit(f);
                    t.visit(f);
                }
                if let Some(o) = otherwise {
                    o.visit(f);
                }
            }
            Expr::Func { args, .. } => args.iter().for_each(|a| a.visit(f)),
        }
    }

    /// Calls `f` on every node, a parent before its children, letting it
    /// change them (the planner renumbers columns with it).
    pub fn visit_mut(&mut self, f: &mut dyn FnMut(&mut Expr)) {
        f(self);
        match self {
            Expr::Column(_) | Expr::Literal(_) | Expr::Param { .. } => {}
            Expr::Binary { l, r, .. } => {
                l.visit_mut(f);
                r.visit_mut(f);
            }
            Expr::Chain { first, rest } => {
                first.visit_mut(f);
                rest.iter_mut().for_each(|(_, x)| x.visit_mut(f));
            }
            Expr::Neg(e) | Expr::Not(e) | Expr::IsNull { e, .. } | Expr::Cast { e, .. } => {
                e.visit_mut(f)
            }
            Expr::InList { e, list, .. } => {
                e.visit_mut(f);
                list.iter_mut().for_each(|x| x.visit_mut(f));
            }
            Expr::Between { e, lo, hi, .. } => {
                e.visit_mut(f);
                lo.visit_mut(f);
                hi.visit_mut(f);
            }
            Expr::Like { e, pattern, .. } => {
                e.visit_mut(f);
                pattern.visit_mut(f);
            }
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                if let Some(o) = operand {
                    o.visit_mut(f);
                }
                for (w, t) in whens {
                    w.visit_mut(f);
                    t.visit_mut(f);
                }
                if let Some(o) = otherwise {
                    o.visit_mut(f);
                }
            }
            Expr::Func { args, .. } => args.iter_mut().for_each(|a| a.visit_mut(f)),
        }
    }
}

impl Expr {
    /// SQL text for EXPLAIN, with input column names.
    pub fn display(&self, names: &[String]) -> String {
        match self {
            Expr::Column(i) => names.get(*i).cloned().unwrap_or_else(|| format!("#{i}")),
            Expr::Literal(Value::Text(s)) => format!("'{s}'"),
            Expr::Literal(v @ Value::Date(_)) => format!("DATE '{v}'"),
            Expr::Literal(v @ Value::DateTime(_)) => format!("TIMESTAMP '{v}'"),
            Expr::Literal(v @ Value::Time(_)) => format!("TIME '{v}'"),
            Expr::Literal(v) => v.to_string(),
            Expr::Param { index, .. } => format!("outer#{index}"),
            Expr::Binary { op, l, r } => {
                format!(
                    "({} {} {})",
                    l.display(names),
                    op.symbol(),
                    r.display(names)
                )
            }
            Expr::Chain { first, rest } => {
                // As the nested binary form would print: `((a + b) + c)`.
                let mut s = "(".repeat(rest.len());
                s.push_str(&first.display(names));
                for (op, x) in rest {
                    s.push(' ');
                    s.push_str(op.symbol());
                    s.push(' ');
                    s.push_str(&x.display(names));
                    s.push(')');
                }
                s
            }
            Expr::Neg(e) => format!("-{}", e.display(names)),
            Expr::Not(e) => format!("NOT {}", e.display(names)),
            Expr::IsNull { e, negated } => format!(
                "{} IS {}NULL",
                e.display(names),
                if *negated { "NOT " } else { "" }
            ),
            Expr::InList { e, list, negated } => format!(
                "{} {}IN ({})",
                e.display(names),
                if *negated { "NOT " } else { "" },
                list.iter()
                    .map(|x| x.display(names))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Expr::Between { e, lo, hi, negated } => format!(
                "{} {}BETWEEN {} AND {}",
                e.display(names),
                if *negated { "NOT " } else { "" },
                lo.display(names),
                hi.display(names)
            ),
            Expr::Like {
                e,
                pattern,
                negated,
            } => format!(
                "{} {}LIKE {}",
                e.display(names),
                if *negated { "NOT " } else { "" },
                pattern.display(names)
            ),
            Expr::Case { .. } => "CASE … END".into(),
            Expr::Cast { e, ty } => format!("CAST({} AS {ty})", e.display(names)),
            Expr::Func {
                f: Func::CastUnsigned,
                args,
            } => format!(
                "CAST({} AS UNSIGNED)",
                args.first().map_or(String::new(), |a| a.display(names))
            ),
            Expr::Func {
                f: Func::CastDecimal,
                args,
            } => format!(
                "CAST({} AS DECIMAL({}, {}))",
                args.first().map_or(String::new(), |a| a.display(names)),
                args.get(1).map_or(String::new(), |a| a.display(names)),
                args.get(2).map_or(String::new(), |a| a.display(names)),
            ),
            Expr::Func {
                f: Func::Temporal(t @ (TemporalFn::DateAdd | TemporalFn::DateSub)),
                args,
            } => {
                let unit = match args.get(2) {
                    Some(Expr::Literal(Value::Int(c))) => crate::datetime::Unit::from_code(*c),
                    _ => None,
                };
                format!(
                    "{}({}, INTERVAL {} {})",
                    t.name(),
                    args.first().map_or(String::new(), |a| a.display(names)),
                    args.get(1).map_or(String::new(), |a| a.display(names)),
                    unit.map_or("?", crate::datetime::Unit::name)
                )
            }
            Expr::Func {
                f: Func::Temporal(TemporalFn::Extract),
                args,
            } => {
                let unit = match args.first() {
                    Some(Expr::Literal(Value::Int(c))) => crate::datetime::Unit::from_code(*c),
                    _ => None,
                };
                format!(
                    "extract({} FROM {})",
                    unit.map_or("?", crate::datetime::Unit::name),
                    args.get(1).map_or(String::new(), |a| a.display(names)),
                )
            }
            Expr::Func { f, args } => format!(
                "{}({})",
                match f {
                    Func::Temporal(t) => t.name().to_string(),
                    f => format!("{f:?}").to_lowercase(),
                },
                args.iter()
                    .map(|x| x.display(names))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Batch, ColumnData};

    fn batch(cols: Vec<Column>) -> Batch {
        let len = cols[0].len();
        Batch::new(cols.into_iter().map(Arc::new).collect(), len)
    }

    #[test]
    fn like_patterns() {
        assert!(like("hello", "h%o"));
        assert!(like("hello", "_ello"));
        assert!(!like("hello", "h_o"));
        assert!(like("50%", "50\\%"));
        assert!(like("", "%"));
    }

    #[test]
    fn three_valued_logic() {
        let b = batch(vec![Column::from_values(
            DataType::Int,
            &[Value::Null, Value::Int(0), Value::Int(1)],
        )]);
        let e = Expr::Binary {
            op: BinOp::Or,
            l: Box::new(Expr::Column(0)),
            r: Box::new(Expr::Literal(Value::Null)),
        };
        let mut cx = EvalCx::default();
        let d = e.eval(&b, &mut cx).unwrap().into_column(3);
        assert_eq!(
            (d.value(0), d.value(1), d.value(2)),
            (Value::Null, Value::Null, Value::Int(1))
        );
    }

    #[test]
    fn int_kernels_and_overflow() {
        let b = batch(vec![Column::ints(vec![1, 7, 14])]);
        let e = Expr::Binary {
            op: BinOp::Eq,
            l: Box::new(Expr::Binary {
                op: BinOp::Mod,
                l: Box::new(Expr::Column(0)),
                r: Box::new(Expr::Literal(Value::Int(7))),
            }),
            r: Box::new(Expr::Literal(Value::Int(0))),
        };
        let mut cx = EvalCx::default();
        let c = e.eval(&b, &mut cx).unwrap().into_column(3);
        assert_eq!(c.data, ColumnData::Int(vec![0, 1, 1]));
        let big = batch(vec![Column::ints(vec![i64::MAX])]);
        let add = Expr::Binary {
            op: BinOp::Add,
            l: Box::new(Expr::Column(0)),
            r: Box::new(Expr::Literal(Value::Int(1))),
        };
        assert!(matches!(
            add.eval(&big, &mut cx),
            Err(ExecError::OutOfRange { ty: "BIGINT", .. })
        ));
    }

    #[test]
    fn mod_by_constant_matches_the_remainder_operator() {
        let xs = [
            0,
            1,
            6,
            7,
            8,
            1012,
            1013,
            99_999_999,
            u32::MAX as i64 - 1,
            u32::MAX as i64,
            u32::MAX as i64 + 1,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
            -1,
            -7,
            -8,
            -(u32::MAX as i64),
        ];
        let ds = [
            2,
            3,
            7,
            1000,
            1013,
            u32::MAX as i64,
            u32::MAX as i64 + 1,
            i64::MAX,
            i64::MIN,
            1,
            -2,
            -7,
            -1013,
        ];
        for d in ds {
            let m = ModBy::new(d);
            for x in xs.iter().copied().chain(0..5000) {
                assert_eq!(m.rem(x), x.wrapping_rem(d), "{x} % {d}");
                if m.small(&[x]) {
                    assert_eq!(m.rem_small(x), x % d, "{x} % {d}");
                    for k in [0, 1, 2, 6, 999, 1012] {
                        if k < d.unsigned_abs() as i64 {
                            assert_eq!(m.is_rem_small(x, k), x % d == k, "{x} % {d} = {k}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn fused_selection_matches_evaluation() {
        // Negative values (the general path), and 0..200 (whole chunks of
        // 64 small values: the multiply-only path).
        for vals in [(-50..50).collect::<Vec<i64>>(), (0..200).collect()] {
            fused_selection_on(vals);
        }
    }

    fn fused_selection_on(vals: Vec<i64>) {
        let b = batch(vec![Column::ints(vals)]);
        let lit = |v: i64| Box::new(Expr::Literal(Value::Int(v)));
        let modulo = Expr::Binary {
            op: BinOp::Mod,
            l: Box::new(Expr::Column(0)),
            r: lit(7),
        };
        let ops = [
            BinOp::Eq,
            BinOp::NotEq,
            BinOp::Lt,
            BinOp::LtEq,
            BinOp::Gt,
            BinOp::GtEq,
        ];
        let mut cx = EvalCx::default();
        for op in ops {
            for (l, r) in [
                (Box::new(modulo.clone()), lit(3)),
                (lit(-3), Box::new(modulo.clone())),
                (Box::new(Expr::Column(0)), lit(10)),
                (lit(10), Box::new(Expr::Column(0))),
            ] {
                let e = Expr::Binary { op, l, r };
                let sel = e.select_rows(&b).expect("fused shape");
                let d = e.eval(&b, &mut cx).unwrap().into_column(b.len);
                let expect: Vec<u32> = (0..b.len as u32)
                    .filter(|&i| d.value(i as usize).truthy() == Some(true))
                    .collect();
                assert_eq!(sel, expect, "{e:?}");
            }
        }
        let with_null = batch(vec![Column::from_values(
            DataType::Int,
            &[Value::Null, Value::Int(7)],
        )]);
        let e = Expr::Binary {
            op: BinOp::Eq,
            l: Box::new(modulo),
            r: lit(0),
        };
        assert!(
            e.select_rows(&with_null).is_none(),
            "NULLs take the general path"
        );
    }

    #[test]
    fn division_by_zero_is_null_with_warning_unless_strict() {
        let mut cx = EvalCx::default();
        assert_eq!(
            scalar_binop(BinOp::Div, &Value::Int(1), &Value::Int(0), &mut cx).unwrap(),
            Value::Null
        );
        assert_eq!(cx.warnings, 1);
        let mut strict = EvalCx {
            strict: true,
            ..EvalCx::default()
        };
        assert!(scalar_binop(BinOp::Div, &Value::Int(1), &Value::Int(0), &mut strict).is_err());
        assert_eq!(
            scalar_binop(BinOp::Div, &Value::Int(7), &Value::Int(2), &mut cx).unwrap(),
            Value::Float(3.5)
        );
    }

    #[test]
    fn functions() {
        let t = |s: &str| Value::Text(s.into());
        assert_eq!(
            call(
                Func::Substring,
                &[t("hello"), Value::Int(2), Value::Int(3)],
                &mut EvalCx::default()
            )
            .unwrap(),
            t("ell")
        );
        assert_eq!(
            call(
                Func::Substring,
                &[t("hello"), Value::Int(-3)],
                &mut EvalCx::default()
            )
            .unwrap(),
            t("llo")
        );
        assert_eq!(
            call(
                Func::Concat,
                &[t("a"), Value::Int(1)],
                &mut EvalCx::default()
            )
            .unwrap(),
            t("a1")
        );
        assert_eq!(
            call(Func::Concat, &[t("a"), Value::Null], &mut EvalCx::default()).unwrap(),
            Value::Null
        );
        // A DOUBLE rounds half to even (MySQL's rint), a DECIMAL half away
        // from zero.
        let round = |v: Value| call(Func::Round, &[v], &mut EvalCx::default()).unwrap();
        assert_eq!(round(Value::Float(2.5)), Value::Float(2.0));
        assert_eq!(round(Value::Float(3.5)), Value::Float(4.0));
        let dec = |s: &str| Value::Decimal(crate::decimal::Dec::parse(s).unwrap());
        assert_eq!(round(dec("2.5")).to_string(), "3");
        assert_eq!(round(dec("-2.5")).to_string(), "-3");
        assert_eq!(
            call(
                Func::Greatest,
                &[Value::Int(1), Value::Int(3), Value::Int(2)],
                &mut EvalCx::default()
            )
            .unwrap(),
            Value::Int(3)
        );
        assert_eq!(
            call(
                Func::NullIf,
                &[Value::Int(1), Value::Int(1)],
                &mut EvalCx::default()
            )
            .unwrap(),
            Value::Null
        );
    }
}
