//! Compiled scalar expressions and their vectorized evaluation.
//!
//! An [`Expr`] refers to input columns by index. [`Expr::eval`] works on a
//! whole [`Batch`] and returns a [`Datum`]: a column, or a scalar that is
//! broadcast lazily. Integer and float arithmetic and comparisons have typed
//! kernels; everything else falls back to row-at-a-time evaluation on
//! [`Value`]s inside the batch.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::data::{Batch, Column, ColumnData, DataType, Value};
use crate::sql::error::ExecError;

/// A binary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (always a float, as MySQL's decimal division; `x/0` is NULL)
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
    /// digits, as a DOUBLE; error 1690 when it has more than `p - s`
    /// integer digits (MySQL clamps to 99…9.99 with a warning).
    CastDecimal,
}

/// A compiled expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// Input column by index.
    Column(usize),
    /// A constant.
    Literal(Value),
    /// `l op r`
    Binary {
        /// Operator.
        op: BinOp,
        /// Left.
        l: Box<Expr>,
        /// Right.
        r: Box<Expr>,
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
}

impl EvalCx {
    /// The `SLEEP` time owed, reset to zero.
    pub fn take_sleep(&mut self) -> Option<std::time::Duration> {
        let s = std::mem::take(&mut self.sleep_owed);
        // At most ~31 years: `Duration::from_secs_f64` panics past u64.
        (s > 0.0).then(|| std::time::Duration::from_secs_f64(s.min(1e9)))
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
            Expr::Binary { op, l, r } => {
                let (a, b) = (l.data_type(input), r.data_type(input));
                match op {
                    BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Mod => match (a, b) {
                        (Int, Int) | (Int, Null) | (Null, Int) => Int,
                        (Null, Null) => Null,
                        _ => Float,
                    },
                    BinOp::Div => Float,
                    BinOp::IntDiv => Int,
                    _ => Int,
                }
            }
            Expr::Neg(e) => match e.data_type(input) {
                Text => Float,
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
                        Text => Float,
                        t => t,
                    },
                    Func::Round => match arg(0) {
                        Int => Int,
                        Null => Null,
                        _ => Float,
                    },
                    Func::Floor | Func::Ceil => match arg(0) {
                        Float | Text => Float,
                        t => t,
                    },
                    Func::Length | Func::CharLength | Func::Sleep | Func::CastUnsigned => Int,
                    Func::CastDecimal => match arg(0) {
                        Null => Null,
                        _ => Float,
                    },
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
            Expr::Column(_) | Expr::Literal(_) => {}
            Expr::Binary { l, r, .. } => {
                l.visit(f);
                r.visit(f);
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

    /// Evaluates on a batch.
    pub fn eval(&self, b: &Batch, cx: &mut EvalCx) -> Result<Datum, ExecError> {
        match self {
            Expr::Column(i) => Ok(Datum::Col(b.columns[*i].clone())),
            Expr::Literal(v) => Ok(Datum::Scalar(v.clone())),
            Expr::Binary { op, l, r } => {
                let (l, r) = (l.eval(b, cx)?, r.eval(b, cx)?);
                binary(*op, l, r, b.len, cx)
            }
            _ => self.eval_each_row(b, cx),
        }
    }

    /// Evaluates on a batch one row at a time with [`Expr::eval_row`]:
    /// `AND`, `OR`, `CASE`, `IF`, `IFNULL` and `COALESCE` evaluate only the
    /// operands they need, as MySQL does, so a `SLEEP` in a branch not
    /// taken is not slept. Operators use this for expressions that call
    /// `SLEEP` ([`Expr::has_sleep`]); [`Expr::eval`] uses it as its
    /// fallback.
    pub fn eval_each_row(&self, b: &Batch, cx: &mut EvalCx) -> Result<Datum, ExecError> {
        if b.len == 0 {
            return Ok(Datum::Col(Arc::new(Column::empty(DataType::Int))));
        }
        let mut out = Vec::with_capacity(b.len);
        for i in 0..b.len {
            out.push(self.eval_row(b, i, cx)?);
        }
        let ty = out
            .iter()
            .fold(DataType::Null, |t, v| t.unify(v.data_type()));
        Ok(Datum::Col(Arc::new(Column::from_values(ty, &out))))
    }

    /// Evaluates on one row of a batch.
    pub fn eval_row(&self, b: &Batch, i: usize, cx: &mut EvalCx) -> Result<Value, ExecError> {
        Ok(match self {
            Expr::Column(c) => b.columns[*c].value(i),
            Expr::Literal(v) => v.clone(),
            Expr::Binary { op, l, r } => {
                if *op == BinOp::And {
                    let a = l.eval_row(b, i, cx)?.truthy();
                    if a == Some(false) {
                        return Ok(Value::Int(0));
                    }
                    let c = r.eval_row(b, i, cx)?.truthy();
                    return Ok(and3(a, c));
                }
                if *op == BinOp::Or {
                    let a = l.eval_row(b, i, cx)?.truthy();
                    if a == Some(true) {
                        return Ok(Value::Int(1));
                    }
                    let c = r.eval_row(b, i, cx)?.truthy();
                    return Ok(or3(a, c));
                }
                scalar_binop(*op, &l.eval_row(b, i, cx)?, &r.eval_row(b, i, cx)?, cx)?
            }
            Expr::Neg(e) => match e.eval_row(b, i, cx)? {
                Value::Null => Value::Null,
                Value::Int(x) => Value::Int(
                    x.checked_neg()
                        .ok_or_else(|| ExecError::overflow(format!("-({x})")))?,
                ),
                v => Value::Float(-v.as_f64().unwrap_or(0.0)),
            },
            Expr::Not(e) => match e.eval_row(b, i, cx)?.truthy() {
                None => Value::Null,
                Some(t) => bool_val(!t),
            },
            Expr::IsNull { e, negated } => bool_val(e.eval_row(b, i, cx)?.is_null() != *negated),
            Expr::InList { e, list, negated } => {
                let v = e.eval_row(b, i, cx)?;
                if v.is_null() {
                    return Ok(Value::Null);
                }
                let mut saw_null = false;
                for x in list {
                    let x = x.eval_row(b, i, cx)?;
                    match v.sql_cmp(&x) {
                        Some(Ordering::Equal) => return Ok(bool_val(!*negated)),
                        None => saw_null = true,
                        _ => {}
                    }
                }
                if saw_null {
                    Value::Null
                } else {
                    bool_val(*negated)
                }
            }
            Expr::Between { e, lo, hi, negated } => {
                let v = e.eval_row(b, i, cx)?;
                let ge = v
                    .sql_cmp(&lo.eval_row(b, i, cx)?)
                    .map(|o| o != Ordering::Less);
                let le = v
                    .sql_cmp(&hi.eval_row(b, i, cx)?)
                    .map(|o| o != Ordering::Greater);
                match and3(ge, le).truthy() {
                    None => Value::Null,
                    Some(t) => bool_val(t != *negated),
                }
            }
            Expr::Like {
                e,
                pattern,
                negated,
            } => {
                let (v, p) = (e.eval_row(b, i, cx)?, pattern.eval_row(b, i, cx)?);
                match (v.to_text(), p.to_text()) {
                    (Some(v), Some(p)) => bool_val(like(&v, &p) != *negated),
                    _ => Value::Null,
                }
            }
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                let op = match operand {
                    Some(o) => Some(o.eval_row(b, i, cx)?),
                    None => None,
                };
                for (w, t) in whens {
                    let w = w.eval_row(b, i, cx)?;
                    let hit = match &op {
                        Some(o) => o.sql_cmp(&w) == Some(Ordering::Equal),
                        None => w.truthy() == Some(true),
                    };
                    if hit {
                        return t.eval_row(b, i, cx);
                    }
                }
                match otherwise {
                    Some(o) => o.eval_row(b, i, cx)?,
                    None => Value::Null,
                }
            }
            Expr::Cast { e, ty } => cast(e.eval_row(b, i, cx)?, *ty)?,
            // Lazy functions: only the operands needed are evaluated.
            Expr::Func { f: Func::If, args } => {
                let c = match args.first() {
                    Some(c) => c.eval_row(b, i, cx)?.truthy(),
                    None => None,
                };
                let pick = if c == Some(true) { 1 } else { 2 };
                match args.get(pick) {
                    Some(x) => x.eval_row(b, i, cx)?,
                    None => Value::Null,
                }
            }
            Expr::Func {
                f: Func::Coalesce | Func::IfNull,
                args,
            } => {
                for a in args {
                    let v = a.eval_row(b, i, cx)?;
                    if !v.is_null() {
                        return Ok(v);
                    }
                }
                Value::Null
            }
            Expr::Func {
                f: Func::Sleep,
                args,
            } => {
                let v = match args.first() {
                    Some(a) => a.eval_row(b, i, cx)?,
                    None => Value::Null,
                };
                cx.sleep_owed += sleep_seconds(&v);
                Value::Int(0)
            }
            Expr::Func { f, args } => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(a.eval_row(b, i, cx)?);
                }
                call(*f, &vals)?
            }
        })
    }

    /// SQL text for EXPLAIN, with input column names.
    pub fn display(&self, names: &[String]) -> String {
        match self {
            Expr::Column(i) => names.get(*i).cloned().unwrap_or_else(|| format!("#{i}")),
            Expr::Literal(Value::Text(s)) => format!("'{s}'"),
            Expr::Literal(v) => v.to_string(),
            Expr::Binary { op, l, r } => {
                format!(
                    "({} {} {})",
                    l.display(names),
                    op.symbol(),
                    r.display(names)
                )
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
            Expr::Func { f, args } => format!(
                "{}({})",
                format!("{f:?}").to_lowercase(),
                args.iter()
                    .map(|x| x.display(names))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

fn and3(a: Option<bool>, b: Option<bool>) -> Value {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Value::Int(0),
        (Some(true), Some(true)) => Value::Int(1),
        _ => Value::Null,
    }
}

fn or3(a: Option<bool>, b: Option<bool>) -> Value {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Value::Int(1),
        (Some(false), Some(false)) => Value::Int(0),
        _ => Value::Null,
    }
}

/// `LIKE` with `%` and `_` (and `\` escapes); case-sensitive.
pub fn like(s: &str, p: &str) -> bool {
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = p.chars().collect();
    let (mut si, mut pi) = (0, 0);
    let (mut star_p, mut star_s) = (None, 0);
    while si < s.len() {
        if pi < p.len() && p[pi] == '\\' && pi + 1 < p.len() && p[pi + 1] == s[si] {
            si += 1;
            pi += 2;
        } else if pi < p.len()
            && (p[pi] == '_' || (p[pi] == s[si] && p[pi] != '%' && p[pi] != '\\'))
        {
            si += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star_p = Some(pi);
            star_s = si;
            pi += 1;
        } else if let Some(sp) = star_p {
            pi = sp + 1;
            star_s += 1;
            si = star_s;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    pi == p.len()
}

/// `CAST(v AS ty)`. A number that BIGINT cannot hold (`CAST(1e20 AS
/// SIGNED)`, `CAST('99999999999999999999' AS SIGNED)`) is error 1690, not
/// clamped to 2^63-1 or wrapped.
pub fn cast(v: Value, ty: DataType) -> Result<Value, ExecError> {
    Ok(match (v, ty) {
        (Value::Null, _) | (_, DataType::Null) => Value::Null,
        (Value::Int(i), DataType::Int) => Value::Int(i),
        (v, DataType::Int) => Value::Int(
            to_bigint(&v)
                .ok_or_else(|| ExecError::overflow(format!("CAST({} AS SIGNED)", quoted(&v))))?,
        ),
        (v, DataType::Float) => Value::Float(v.as_f64().unwrap_or(0.0)),
        (v, DataType::Text) => Value::Text(v.to_text().unwrap_or_else(|| "".into())),
    })
}

/// `CAST(v AS UNSIGNED)` (see [`Func::CastUnsigned`]).
pub fn cast_unsigned(v: Value) -> Result<Value, ExecError> {
    let what = || format!("CAST({} AS UNSIGNED)", quoted(&v));
    match &v {
        Value::Null => Ok(Value::Null),
        Value::Int(i) if *i >= 0 => Ok(v),
        Value::Int(_) => Err(ExecError::unsigned_overflow(what())),
        other => match to_bigint(other) {
            Some(i) if i >= 0 => Ok(Value::Int(i)),
            // -0.4 rounds to 0, which is in range.
            Some(_) => Err(ExecError::unsigned_overflow(what())),
            None if other.as_f64().is_some_and(|f| f < 0.0) => {
                Err(ExecError::unsigned_overflow(what()))
            }
            None => Err(ExecError::overflow(what())),
        },
    }
}

/// A value as MySQL prints it inside an error message: text quoted.
fn quoted(v: &Value) -> String {
    match v {
        Value::Text(s) => format!("'{s}'"),
        other => other.to_string(),
    }
}

/// `v` as a BIGINT, MySQL style (floats and numeric text round half away
/// from zero), or `None` when the rounded number is outside BIGINT's range.
/// Integer text is read exactly, not through a double.
pub fn to_bigint(v: &Value) -> Option<i64> {
    match v {
        Value::Null => Some(0),
        Value::Int(i) => Some(*i),
        Value::Text(s) => {
            let t = s.trim();
            if let Ok(i) = t.parse::<i64>() {
                return Some(i);
            }
            f64_to_bigint(crate::data::parse_numeric_prefix(t))
        }
        Value::Float(f) => f64_to_bigint(*f),
    }
}

/// The doubles whose integer part BIGINT holds: `-2^63 <= x < 2^63` (both
/// bounds exact as doubles; NaN and infinities are outside).
const BIGINT_AS_F64: std::ops::Range<f64> =
    -9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0;

/// `f` rounded half away from zero, if BIGINT holds it.
pub fn f64_to_bigint(f: f64) -> Option<i64> {
    let r = f.round();
    // 2^63 is exact as a double; every double below it in magnitude that
    // is an integer converts exactly.
    if BIGINT_AS_F64.contains(&r) {
        Some(r as i64)
    } else {
        None
    }
}

/// Seconds for `SLEEP(v)`: NULL and negative numbers sleep 0 (as MariaDB).
fn sleep_seconds(v: &Value) -> f64 {
    match v.as_f64() {
        Some(s) if s > 0.0 && s.is_finite() => s,
        _ => 0.0,
    }
}

/// One binary operation on two values.
pub fn scalar_binop(op: BinOp, a: &Value, b: &Value, cx: &mut EvalCx) -> Result<Value, ExecError> {
    use Value::*;
    match op {
        BinOp::And => return Ok(and3(a.truthy(), b.truthy())),
        BinOp::Or => return Ok(or3(a.truthy(), b.truthy())),
        BinOp::Xor => {
            return Ok(match (a.truthy(), b.truthy()) {
                (Some(x), Some(y)) => bool_val(x != y),
                _ => Null,
            })
        }
        BinOp::NullSafeEq => {
            return Ok(bool_val(match (a.is_null(), b.is_null()) {
                (true, true) => true,
                (false, false) => a.sql_cmp(b) == Some(Ordering::Equal),
                _ => false,
            }))
        }
        _ => {}
    }
    if a.is_null() || b.is_null() {
        return Ok(Null);
    }
    if op.is_comparison() {
        let o = a.sql_cmp(b);
        return Ok(match o {
            None => Null,
            Some(o) => bool_val(match op {
                BinOp::Eq => o == Ordering::Equal,
                BinOp::NotEq => o != Ordering::Equal,
                BinOp::Lt => o == Ordering::Less,
                BinOp::LtEq => o != Ordering::Greater,
                BinOp::Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            }),
        });
    }
    match (a, b) {
        (Int(x), Int(y)) => int_op(op, *x, *y, cx),
        _ => {
            let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
            float_op(op, x, y, cx)
        }
    }
}

fn div_zero(cx: &mut EvalCx) -> Result<Value, ExecError> {
    if cx.strict {
        Err(ExecError::DivisionByZero)
    } else {
        cx.warnings += 1;
        Ok(Value::Null)
    }
}

fn int_op(op: BinOp, x: i64, y: i64, cx: &mut EvalCx) -> Result<Value, ExecError> {
    let ov = || ExecError::overflow(format!("({x} {} {y})", op.symbol()));
    Ok(match op {
        BinOp::Add => Value::Int(x.checked_add(y).ok_or_else(ov)?),
        BinOp::Sub => Value::Int(x.checked_sub(y).ok_or_else(ov)?),
        BinOp::Mul => Value::Int(x.checked_mul(y).ok_or_else(ov)?),
        BinOp::Div => {
            if y == 0 {
                return div_zero(cx);
            }
            Value::Float(x as f64 / y as f64)
        }
        BinOp::IntDiv => {
            if y == 0 {
                return div_zero(cx);
            }
            Value::Int(x.checked_div(y).ok_or_else(ov)?)
        }
        BinOp::Mod => {
            if y == 0 {
                return div_zero(cx);
            }
            Value::Int(x.checked_rem(y).unwrap_or(0))
        }
        _ => Value::Null,
    })
}

/// `x op y` on doubles. A result past DOUBLE's range (inf, or NaN) is
/// error 1690, so no inf or NaN ever reaches a column, ORDER BY, GROUP BY
/// or DISTINCT; `DIV` past BIGINT is 1690 too.
fn float_op(op: BinOp, x: f64, y: f64, cx: &mut EvalCx) -> Result<Value, ExecError> {
    let what = || format!("({} {} {})", Value::Float(x), op.symbol(), Value::Float(y));
    let finite = |r: f64| {
        if r.is_finite() {
            Ok(Value::Float(r))
        } else {
            Err(ExecError::double_overflow(what()))
        }
    };
    Ok(match op {
        BinOp::Add => finite(x + y)?,
        BinOp::Sub => finite(x - y)?,
        BinOp::Mul => finite(x * y)?,
        BinOp::Div => {
            if y == 0.0 {
                return div_zero(cx);
            }
            finite(x / y)?
        }
        BinOp::IntDiv => {
            if y == 0.0 {
                return div_zero(cx);
            }
            let q = (x / y).trunc();
            if !BIGINT_AS_F64.contains(&q) {
                return Err(ExecError::overflow(what()));
            }
            Value::Int(q as i64)
        }
        BinOp::Mod => {
            if y == 0.0 {
                return div_zero(cx);
            }
            Value::Float(x % y)
        }
        _ => Value::Null,
    })
}

fn merge_nulls(a: &Option<Vec<bool>>, b: &Option<Vec<bool>>) -> Option<Vec<bool>> {
    match (a, b) {
        (None, None) => None,
        (Some(x), None) | (None, Some(x)) => Some(x.clone()),
        (Some(x), Some(y)) => Some(x.iter().zip(y).map(|(p, q)| *p || *q).collect()),
    }
}

/// Typed kernel for int ⊕ int where neither side needs a per-row decision
/// beyond nulls. Returns `None` if the op needs the generic path.
fn int_kernel(op: BinOp, a: &[i64], b: IntSide<'_>) -> Option<Result<ColumnData, ExecError>> {
    macro_rules! map {
        ($f:expr) => {{
            let f = $f;
            let v: Vec<i64> = match b {
                IntSide::Col(b) => a.iter().zip(b).map(|(x, y)| f(*x, *y)).collect(),
                IntSide::Scalar(y) => a.iter().map(|x| f(*x, y)).collect(),
                IntSide::ScalarLeft(y) => a.iter().map(|x| f(y, *x)).collect(),
            };
            Some(Ok(ColumnData::Int(v)))
        }};
    }
    macro_rules! checked {
        ($m:ident) => {{
            let mut overflow = None;
            let mut f = |x: i64, y: i64| match x.$m(y) {
                Some(v) => v,
                None => {
                    overflow.get_or_insert((x, y));
                    0
                }
            };
            let v: Vec<i64> = match b {
                IntSide::Col(b) => a.iter().zip(b).map(|(x, y)| f(*x, *y)).collect(),
                IntSide::Scalar(y) => a.iter().map(|x| f(*x, y)).collect(),
                IntSide::ScalarLeft(y) => a.iter().map(|x| f(y, *x)).collect(),
            };
            if let Some((x, y)) = overflow {
                Some(Err(ExecError::overflow(format!(
                    "({x} {} {y})",
                    op.symbol()
                ))))
            } else {
                Some(Ok(ColumnData::Int(v)))
            }
        }};
    }
    match op {
        BinOp::Add => checked!(checked_add),
        BinOp::Sub => checked!(checked_sub),
        BinOp::Mul => checked!(checked_mul),
        BinOp::Mod => match b {
            IntSide::Scalar(y) if y != 0 && y != -1 => {
                let m = ModBy::new(y);
                let mut v = Vec::with_capacity(a.len());
                for chunk in a.chunks(256) {
                    if m.small(chunk) {
                        v.extend(chunk.iter().map(|&x| m.rem_small(x)));
                    } else {
                        v.extend(chunk.iter().map(|&x| m.rem(x)));
                    }
                }
                Some(Ok(ColumnData::Int(v)))
            }
            _ => None,
        },
        BinOp::Eq => map!(|x: i64, y: i64| (x == y) as i64),
        BinOp::NotEq => map!(|x: i64, y: i64| (x != y) as i64),
        BinOp::Lt => map!(|x: i64, y: i64| (x < y) as i64),
        BinOp::LtEq => map!(|x: i64, y: i64| (x <= y) as i64),
        BinOp::Gt => map!(|x: i64, y: i64| (x > y) as i64),
        BinOp::GtEq => map!(|x: i64, y: i64| (x >= y) as i64),
        _ => None,
    }
}

/// `x % d` by a constant `d` (not 0, not -1) with the result of Rust's and
/// MySQL's `%` (the sign follows the dividend), computed by multiplication
/// instead of a division when `0 <= x < 2^32` and `|d| < 2^32` (Lemire,
/// "Faster remainder by direct computation", 2019).
#[derive(Clone, Copy, Debug)]
pub struct ModBy {
    d: i64,
    ud: u64,
    m: u64,
}

impl ModBy {
    /// Remainders by `d` (`d` must not be 0 or -1).
    pub fn new(d: i64) -> Self {
        let ud = d.unsigned_abs();
        let m = if ud > 1 && ud <= u64::from(u32::MAX) {
            u64::MAX / ud + 1
        } else {
            0
        };
        ModBy { d, ud, m }
    }
    /// Whether every value of `v` is in `0..2^32` and the divisor allows the
    /// multiply-only paths ([`ModBy::rem_small`], [`ModBy::is_rem_small`]).
    #[inline]
    pub fn small(&self, v: &[i64]) -> bool {
        self.m != 0 && v.iter().fold(0u64, |a, &x| a | x as u64) <= u64::from(u32::MAX)
    }
    /// `x % d` for `0 <= x < 2^32` (see [`ModBy::small`]).
    #[inline(always)]
    pub fn rem_small(&self, x: i64) -> i64 {
        let low = self.m.wrapping_mul(x as u64);
        ((u128::from(low) * u128::from(self.ud)) >> 64) as i64
    }
    /// `x % d == k` for `0 <= x < 2^32` (see [`ModBy::small`]) and
    /// `0 <= k < |d|`: `x >= k` and `x - k` divisible by `|d|`, one
    /// multiplication (Lemire's divisibility test).
    #[inline(always)]
    pub fn is_rem_small(&self, x: i64, k: i64) -> bool {
        let y = (x as u64).wrapping_sub(k as u64);
        (x >= k) & (y.wrapping_mul(self.m) < self.m)
    }
    /// `x % d`.
    #[inline(always)]
    pub fn rem(&self, x: i64) -> i64 {
        if self.m != 0 && (x as u64) <= u64::from(u32::MAX) {
            let low = self.m.wrapping_mul(x as u64);
            ((u128::from(low) * u128::from(self.ud)) >> 64) as i64
        } else {
            x.wrapping_rem(self.d)
        }
    }
}

impl Expr {
    /// A fused filter kernel: when `self` compares an integer column (or
    /// `column % constant`) with an integer constant, and the column has no
    /// NULLs in `b`, the indices of the rows where it is true, computed in
    /// one pass without intermediate columns. `None` when the expression is
    /// of another shape (then evaluate it with [`Expr::eval`]).
    pub fn select_rows(&self, b: &Batch) -> Option<Vec<u32>> {
        let Expr::Binary { op, l, r } = self else {
            return None;
        };
        let (op, side, k) = match (&**l, &**r) {
            (e, Expr::Literal(Value::Int(k))) => (*op, e, *k),
            (Expr::Literal(Value::Int(k)), e) => (flip(*op)?, e, *k),
            _ => return None,
        };
        if !op.is_comparison() {
            return None;
        }
        let (col, modulo) = match side {
            Expr::Column(i) => (*i, None),
            Expr::Binary {
                op: BinOp::Mod,
                l,
                r,
            } => match (&**l, &**r) {
                (Expr::Column(i), Expr::Literal(Value::Int(d))) if *d != 0 && *d != -1 => {
                    (*i, Some(ModBy::new(*d)))
                }
                _ => return None,
            },
            _ => return None,
        };
        let c = b.columns.get(col)?;
        let (ColumnData::Int(v), None) = (&c.data, &c.nulls) else {
            return None;
        };
        // 64 rows at a time: the predicate into a bit mask (no dependency
        // between rows), then the set bits into the selection.
        let mut sel = Vec::with_capacity(v.len());
        let eq_rem = matches!(op, BinOp::Eq | BinOp::NotEq)
            && modulo.is_some_and(|m| k >= 0 && (k as u64) < m.ud);
        let negate = u64::from(op == BinOp::NotEq);
        macro_rules! run {
            ($f:expr) => {{
                let f = $f;
                for (c, chunk) in v.chunks(64).enumerate() {
                    let mut mask = 0u64;
                    match modulo {
                        Some(m) if eq_rem && m.small(chunk) && chunk.len() == 64 => {
                            // Eight rows per byte, constant shifts.
                            for (j, c8) in chunk.chunks_exact(8).enumerate() {
                                let mut byte = 0u64;
                                for (t, &x) in c8.iter().enumerate() {
                                    byte |= u64::from(m.is_rem_small(x, k)) << t;
                                }
                                mask |= byte << (8 * j);
                            }
                            if negate == 1 {
                                mask = !mask;
                            }
                        }
                        Some(m) if eq_rem && m.small(chunk) => {
                            for (j, &x) in chunk.iter().enumerate() {
                                mask |= (u64::from(m.is_rem_small(x, k)) ^ negate) << j;
                            }
                        }
                        Some(m) if m.small(chunk) => {
                            for (j, &x) in chunk.iter().enumerate() {
                                mask |= u64::from(f(m.rem_small(x), k)) << j;
                            }
                        }
                        Some(m) => {
                            for (j, &x) in chunk.iter().enumerate() {
                                mask |= u64::from(f(m.rem(x), k)) << j;
                            }
                        }
                        None => {
                            for (j, &x) in chunk.iter().enumerate() {
                                mask |= u64::from(f(x, k)) << j;
                            }
                        }
                    }
                    let base = (c * 64) as u32;
                    while mask != 0 {
                        sel.push(base + mask.trailing_zeros());
                        mask &= mask - 1;
                    }
                }
            }};
        }
        match op {
            BinOp::Eq => run!(|x: i64, y: i64| x == y),
            BinOp::NotEq => run!(|x: i64, y: i64| x != y),
            BinOp::Lt => run!(|x: i64, y: i64| x < y),
            BinOp::LtEq => run!(|x: i64, y: i64| x <= y),
            BinOp::Gt => run!(|x: i64, y: i64| x > y),
            _ => run!(|x: i64, y: i64| x >= y),
        }
        Some(sel)
    }
}

/// `a op b` as `b op' a`, for comparisons.
fn flip(op: BinOp) -> Option<BinOp> {
    Some(match op {
        BinOp::Eq | BinOp::NotEq => op,
        BinOp::Lt => BinOp::Gt,
        BinOp::LtEq => BinOp::GtEq,
        BinOp::Gt => BinOp::Lt,
        BinOp::GtEq => BinOp::LtEq,
        _ => return None,
    })
}

#[derive(Clone, Copy)]
enum IntSide<'a> {
    Col(&'a [i64]),
    Scalar(i64),
    ScalarLeft(i64),
}

fn float_kernel(op: BinOp, a: &[f64], b: &[f64]) -> Option<ColumnData> {
    let z = a.iter().zip(b);
    Some(match op {
        BinOp::Add => ColumnData::Float(z.map(|(x, y)| x + y).collect()),
        BinOp::Sub => ColumnData::Float(z.map(|(x, y)| x - y).collect()),
        BinOp::Mul => ColumnData::Float(z.map(|(x, y)| x * y).collect()),
        BinOp::Eq => ColumnData::Int(z.map(|(x, y)| (x == y) as i64).collect()),
        BinOp::NotEq => ColumnData::Int(z.map(|(x, y)| (x != y) as i64).collect()),
        BinOp::Lt => ColumnData::Int(z.map(|(x, y)| (x < y) as i64).collect()),
        BinOp::LtEq => ColumnData::Int(z.map(|(x, y)| (x <= y) as i64).collect()),
        BinOp::Gt => ColumnData::Int(z.map(|(x, y)| (x > y) as i64).collect()),
        BinOp::GtEq => ColumnData::Int(z.map(|(x, y)| (x >= y) as i64).collect()),
        _ => return None,
    })
}

fn as_float_vec(c: &Column) -> Option<Vec<f64>> {
    match &c.data {
        ColumnData::Int(v) => Some(v.iter().map(|x| *x as f64).collect()),
        ColumnData::Float(v) => Some(v.clone()),
        ColumnData::Text(_) => None,
    }
}

fn binary(op: BinOp, l: Datum, r: Datum, len: usize, cx: &mut EvalCx) -> Result<Datum, ExecError> {
    if let (Datum::Scalar(a), Datum::Scalar(b)) = (&l, &r) {
        return Ok(Datum::Scalar(scalar_binop(op, a, b, cx)?));
    }
    // Typed fast paths. An overflow (or a non-finite double) in a kernel
    // may come from the meaningless value under a NULL: then the generic
    // path below decides, row by row, and raises the error only for a real
    // row.
    match (&l, &r) {
        (Datum::Col(a), Datum::Col(b)) => {
            if let (ColumnData::Int(x), ColumnData::Int(y)) = (&a.data, &b.data) {
                match int_kernel(op, x, IntSide::Col(y)) {
                    Some(Ok(data)) => {
                        return Ok(Datum::Col(Arc::new(Column {
                            data,
                            nulls: merge_nulls(&a.nulls, &b.nulls),
                        })))
                    }
                    Some(Err(e)) if a.nulls.is_none() && b.nulls.is_none() => return Err(e),
                    _ => {}
                }
            }
            let numeric = |c: &Column| !matches!(c.data, ColumnData::Text(_));
            if numeric(a)
                && numeric(b)
                && !matches!((&a.data, &b.data), (ColumnData::Int(_), ColumnData::Int(_)))
            {
                if let (Some(x), Some(y)) = (as_float_vec(a), as_float_vec(b)) {
                    match float_kernel(op, &x, &y) {
                        Some(ColumnData::Float(v)) if !v.iter().all(|f| f.is_finite()) => {}
                        Some(data) => {
                            return Ok(Datum::Col(Arc::new(Column {
                                data,
                                nulls: merge_nulls(&a.nulls, &b.nulls),
                            })));
                        }
                        None => {}
                    }
                }
            }
        }
        (Datum::Col(a), Datum::Scalar(Value::Int(y))) => {
            if let ColumnData::Int(x) = &a.data {
                match int_kernel(op, x, IntSide::Scalar(*y)) {
                    Some(Ok(data)) => {
                        return Ok(Datum::Col(Arc::new(Column {
                            data,
                            nulls: a.nulls.clone(),
                        })))
                    }
                    Some(Err(e)) if a.nulls.is_none() => return Err(e),
                    _ => {}
                }
            }
        }
        (Datum::Scalar(Value::Int(y)), Datum::Col(a)) => {
            if let ColumnData::Int(x) = &a.data {
                match int_kernel(op, x, IntSide::ScalarLeft(*y)) {
                    Some(Ok(data)) => {
                        return Ok(Datum::Col(Arc::new(Column {
                            data,
                            nulls: a.nulls.clone(),
                        })))
                    }
                    Some(Err(e)) if a.nulls.is_none() => return Err(e),
                    _ => {}
                }
            }
        }
        (Datum::Col(_), Datum::Scalar(Value::Null))
        | (Datum::Scalar(Value::Null), Datum::Col(_))
            if !matches!(op, BinOp::And | BinOp::Or | BinOp::NullSafeEq) =>
        {
            return Ok(Datum::Scalar(Value::Null));
        }
        _ => {}
    }
    // Generic row-at-a-time.
    let mut out = Vec::with_capacity(len);
    for i in 0..len {
        out.push(scalar_binop(op, &l.value(i), &r.value(i), cx)?);
    }
    let ty = out
        .iter()
        .fold(DataType::Null, |t, v| t.unify(v.data_type()));
    Ok(Datum::Col(Arc::new(Column::from_values(ty, &out))))
}

fn text_arg(v: &Value) -> Option<Arc<str>> {
    v.to_text()
}

/// Calls a scalar function on values.
pub fn call(f: Func, a: &[Value]) -> Result<Value, ExecError> {
    use Value::*;
    let first = a.first().cloned().unwrap_or(Null);
    Ok(match f {
        Func::Abs => match first {
            Int(x) => Int(x
                .checked_abs()
                .ok_or_else(|| ExecError::overflow(format!("abs({x})")))?),
            Null => Null,
            v => Float(v.as_f64().unwrap_or(0.0).abs()),
        },
        Func::Round => {
            let d = match a.get(1) {
                None => 0,
                Some(Null) => return Ok(Null),
                Some(v) => to_bigint(v).unwrap_or(if v.as_f64().unwrap_or(0.0) < 0.0 {
                    i64::MIN
                } else {
                    i64::MAX
                }),
            };
            match first {
                Null => Null,
                Int(x) if d >= 0 => Int(x),
                Int(x) => Int(round_int(x, d)
                    .ok_or_else(|| ExecError::overflow(format!("round({x}, {d})")))?),
                v => {
                    let x = v.as_f64().unwrap_or(0.0);
                    // Past 308 digits either way the answer is `x` (or 0):
                    // clamping the exponent changes nothing but keeps
                    // 10^d finite.
                    let p = 10f64.powi(d.clamp(-308, 308) as i32);
                    let y = (x * p).round() / p;
                    // x * p past DOUBLE's range (d > 0): x has no digits
                    // there to round. Otherwise a non-finite result is the
                    // rounding itself overflowing (round(1.7e308, -308)).
                    let r = if !(x * p).is_finite() && d > 0 { x } else { y };
                    if !r.is_finite() {
                        return Err(ExecError::double_overflow(format!(
                            "round({}, {d})",
                            Value::Float(x)
                        )));
                    }
                    Float(r)
                }
            }
        }
        Func::Floor => match first {
            Null => Null,
            Int(x) => Int(x),
            v => Float(v.as_f64().unwrap_or(0.0).floor()),
        },
        Func::Ceil => match first {
            Null => Null,
            Int(x) => Int(x),
            v => Float(v.as_f64().unwrap_or(0.0).ceil()),
        },
        Func::Length => text_arg(&first).map_or(Null, |s| Int(s.len() as i64)),
        Func::CharLength => text_arg(&first).map_or(Null, |s| Int(s.chars().count() as i64)),
        Func::Upper => text_arg(&first).map_or(Null, |s| Text(s.to_uppercase().into())),
        Func::Lower => text_arg(&first).map_or(Null, |s| Text(s.to_lowercase().into())),
        Func::Concat => {
            let mut out = String::new();
            for v in a {
                match v.to_text() {
                    Some(s) => out.push_str(&s),
                    None => return Ok(Null),
                }
            }
            Text(out.into())
        }
        Func::Substring => {
            let Some(s) = text_arg(&first) else {
                return Ok(Null);
            };
            let Some(pos) = a.get(1).and_then(Value::as_i64) else {
                return Ok(Null);
            };
            let chars: Vec<char> = s.chars().collect();
            let n = chars.len() as i64;
            let start = if pos > 0 {
                pos - 1
            } else if pos < 0 {
                n + pos
            } else {
                return Ok(Text("".into()));
            };
            if start < 0 || start >= n {
                return Ok(Text("".into()));
            }
            let len = match a.get(2) {
                Some(l) => match l.as_i64() {
                    Some(l) if l > 0 => l,
                    Some(_) => return Ok(Text("".into())),
                    None => return Ok(Null),
                },
                None => n,
            };
            let end = start.saturating_add(len).min(n);
            Text(
                chars[start as usize..end as usize]
                    .iter()
                    .collect::<String>()
                    .into(),
            )
        }
        Func::Coalesce => a.iter().find(|v| !v.is_null()).cloned().unwrap_or(Null),
        Func::IfNull => {
            if first.is_null() {
                a.get(1).cloned().unwrap_or(Null)
            } else {
                first
            }
        }
        Func::NullIf => {
            let second = a.get(1).cloned().unwrap_or(Null);
            if first.sql_cmp(&second) == Some(Ordering::Equal) {
                Null
            } else {
                first
            }
        }
        Func::Greatest | Func::Least => {
            if a.iter().any(Value::is_null) {
                return Ok(Null);
            }
            let want = if f == Func::Greatest {
                Ordering::Greater
            } else {
                Ordering::Less
            };
            let mut best = first;
            for v in &a[1..] {
                if v.sql_cmp(&best) == Some(want) {
                    best = v.clone();
                }
            }
            best
        }
        Func::If => {
            if first.truthy() == Some(true) {
                a.get(1).cloned().unwrap_or(Null)
            } else {
                a.get(2).cloned().unwrap_or(Null)
            }
        }
        Func::Sleep => Int(0),
        Func::CastUnsigned => cast_unsigned(first)?,
        Func::CastDecimal => {
            let (Some(Int(p)), Some(Int(sc))) = (a.get(1), a.get(2)) else {
                return Ok(Null);
            };
            let Some(x) = first.as_f64() else {
                return Ok(Null);
            };
            let Float(r) = call(Func::Round, &[Float(x), Int(*sc)])? else {
                return Ok(Null);
            };
            if r.abs() >= 10f64.powi((*p - *sc) as i32) {
                return Err(ExecError::OutOfRange {
                    ty: "DECIMAL",
                    what: format!("CAST({} AS DECIMAL({p},{sc}))", quoted(&first)),
                });
            }
            Float(r)
        }
    })
}

/// `ROUND(x, d)` for `d < 0` on integers, exactly (half away from zero);
/// `None` past BIGINT.
fn round_int(x: i64, d: i64) -> Option<i64> {
    let Some(p) = u32::try_from(d.unsigned_abs())
        .ok()
        .and_then(|k| 10i128.checked_pow(k))
    else {
        return Some(0);
    };
    let (x, p) = (i128::from(x), p);
    let q = x / p;
    let r = x % p;
    let q = if 2 * r.abs() >= p { q + x.signum() } else { q };
    i64::try_from(q * p).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

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
            call(Func::Substring, &[t("hello"), Value::Int(2), Value::Int(3)]).unwrap(),
            t("ell")
        );
        assert_eq!(
            call(Func::Substring, &[t("hello"), Value::Int(-3)]).unwrap(),
            t("llo")
        );
        assert_eq!(
            call(Func::Concat, &[t("a"), Value::Int(1)]).unwrap(),
            t("a1")
        );
        assert_eq!(
            call(Func::Concat, &[t("a"), Value::Null]).unwrap(),
            Value::Null
        );
        assert_eq!(
            call(Func::Round, &[Value::Float(2.5)]).unwrap(),
            Value::Float(3.0)
        );
        assert_eq!(
            call(
                Func::Greatest,
                &[Value::Int(1), Value::Int(3), Value::Int(2)]
            )
            .unwrap(),
            Value::Int(3)
        );
        assert_eq!(
            call(Func::NullIf, &[Value::Int(1), Value::Int(1)]).unwrap(),
            Value::Null
        );
    }
}
