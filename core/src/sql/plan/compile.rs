//! The compiler: AST expressions to [`Expr`]s over a [`Scope`], with
//! aggregate calls collected for GROUP BY.

use super::scope::{Scope, ScopeCol};
use super::subquery::{self, Collected, Outer};
use super::types::{is_unsigned, object_name, sql_type};
use super::window::{WindowCalls, WindowError, WINDOW_BASE};
use super::PlanCx;
use sqlparser::ast;

use crate::data::{Batch, DataType, Value};
use crate::expr::{BinOp, EvalCx, Expr, Func};
use crate::pipeline::aggregate::{AggFunc, AggSpec};
use crate::sql::error::SqlError;
use crate::sql::shape;
use crate::storage::Table;

pub(super) const AGG_NAMES: [&str; 5] = ["count", "sum", "avg", "min", "max"];

pub(super) fn func_name(f: &ast::Function) -> String {
    object_name(&f.name)
}

/// An aggregate call (`sum(x) OVER (…)` is a window function, not one).
pub(super) fn is_agg_call(e: &ast::Expr) -> bool {
    matches!(e, ast::Expr::Function(f) if f.over.is_none() && AGG_NAMES.contains(&func_name(f).as_str()))
}

/// Calls `f` on `e` and every expression inside it that cascade compiles.
pub(super) fn walk(e: &ast::Expr, f: &mut dyn FnMut(&ast::Expr)) {
    use ast::Expr as A;
    f(e);
    match e {
        A::BinaryOp { left, right, .. } => {
            walk(left, f);
            walk(right, f);
        }
        A::UnaryOp { expr, .. }
        | A::Nested(expr)
        | A::IsNull(expr)
        | A::IsNotNull(expr)
        | A::IsTrue(expr)
        | A::IsFalse(expr)
        | A::Cast { expr, .. }
        | A::Ceil { expr, .. }
        | A::Floor { expr, .. }
        | A::Extract { expr, .. } => walk(expr, f),
        A::Interval(iv) => walk(&iv.value, f),
        A::In { expr, target, .. } => {
            walk(expr, f);
            if let ast::InTarget::List(l) = target {
                l.iter().for_each(|x| walk(x, f));
            }
        }
        A::Between {
            expr, low, high, ..
        } => {
            walk(expr, f);
            walk(low, f);
            walk(high, f);
        }
        A::Like { expr, pattern, .. } => {
            walk(expr, f);
            walk(pattern, f);
        }
        A::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            if let Some(o) = operand {
                walk(o, f);
            }
            for w in conditions {
                walk(&w.condition, f);
                walk(&w.result, f);
            }
            if let Some(x) = else_result {
                walk(x, f);
            }
        }
        A::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => {
            walk(expr, f);
            if let Some(x) = substring_from {
                walk(x, f);
            }
            if let Some(x) = substring_for {
                walk(x, f);
            }
        }
        A::Function(func) => {
            if let Ok((args, _, _)) = func_args(func) {
                args.into_iter().for_each(|x| walk(x, f));
            }
        }
        _ => {}
    }
}

pub(super) fn contains_agg(e: &ast::Expr) -> bool {
    let mut found = false;
    walk(e, &mut |x| {
        if is_agg_call(x) {
            found = true;
        }
    });
    found
}

pub(super) fn func_args(f: &ast::Function) -> Result<(Vec<&ast::Expr>, bool, bool), SqlError> {
    match &f.args {
        ast::FunctionArguments::None => Ok((vec![], false, false)),
        ast::FunctionArguments::Subquery(_) => Err(SqlError::Unsupported(
            "subqueries as function arguments".into(),
        )),
        ast::FunctionArguments::List(l) => {
            let distinct = matches!(
                l.duplicate_treatment,
                Some(ast::DuplicateTreatment::Distinct)
            );
            let mut out = Vec::new();
            let mut star = false;
            for a in &l.args {
                match a {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => out.push(e),
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => star = true,
                    _ => return Err(SqlError::Unsupported(format!("the argument form in {f}"))),
                }
            }
            Ok((out, distinct, star))
        }
    }
}

/// Aggregation context while compiling select items, HAVING and ORDER BY.
///
/// Group keys and aggregates are matched structurally: an expression is a
/// group key when it compiles (over the input) to the same [`Expr`], so
/// `T.X + 1` matches `GROUP BY x + 1` but `x = 'A'` does not match
/// `GROUP BY x = 'a'`; aggregates are shared when their function, argument
/// and `DISTINCT` are equal.
pub(super) struct AggCx {
    /// The group keys as written, for names (EXPLAIN, HAVING text).
    pub(super) group_names: Vec<String>,
    pub(super) group_exprs: Vec<Expr>,
    pub(super) group_types: Vec<DataType>,
    pub(super) aggs: Vec<AggSpec>,
    pub(super) input: Scope,
    pub(super) aliases: Vec<(String, ast::Expr)>,
}

/// Compiles expressions.
pub struct Compiler<'a> {
    /// `CONNECTION_ID()`.
    pub connection_id: u64,
    /// The statement's wall-clock time (microseconds since the Unix
    /// epoch) that `NOW()` and its kin answer; `None` where they cannot be
    /// (a column's DEFAULT).
    pub now_micros: Option<i64>,
    /// For subqueries in FROM and in expressions.
    pub cx: Option<&'a PlanCx<'a>>,
    /// The enclosing queries, when compiling a subquery.
    pub outer: Option<&'a Outer<'a>>,
    /// The subqueries of the clause being compiled.
    pub subs: Collected,
    /// The window calls of the SELECT being compiled: each compiles to its
    /// placeholder column (see [`super::window`]); without them, or outside
    /// the select list and ORDER BY, a window call is error 3593.
    pub windows: Option<&'a WindowCalls>,
}

pub(super) fn literal(v: &ast::Value) -> Result<Value, SqlError> {
    Ok(match v {
        ast::Value::Number(n, _) => {
            if let Ok(i) = n.parse::<i64>() {
                Value::Int(i)
            } else if let Some(d) = crate::decimal::Dec::parse(n) {
                // `1.5` (and an integer past BIGINT) is a DECIMAL, as in
                // MySQL; only a number with an exponent is a DOUBLE.
                Value::Decimal(d)
            } else {
                let f = n
                    .parse::<f64>()
                    .map_err(|_| SqlError::Syntax(format!("bad number {n}")))?;
                // `1e309` is no double: never let inf into a value.
                if !f.is_finite() {
                    return Err(SqlError::IllegalDouble(n.clone()));
                }
                Value::Float(f)
            }
        }
        ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => {
            Value::Text(s.as_str().into())
        }
        ast::Value::Boolean(b) => Value::Int(*b as i64),
        ast::Value::Null => Value::Null,
        other => return Err(SqlError::Unsupported(format!("the literal {other}"))),
    })
}

impl Compiler<'_> {
    pub(super) fn var(&self, name: &str) -> Option<Value> {
        match name {
            "version" => {
                return Some(Value::Text(
                    concat!("8.0.36-cascade-", env!("CARGO_PKG_VERSION")).into(),
                ))
            }
            "version_comment" => return Some(Value::Text("cascade".into())),
            _ => {}
        }
        self.cx?
            .vars
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }

    pub(super) fn compile(
        &self,
        e: &ast::Expr,
        scope: &Scope,
        clause: &'static str,
    ) -> Result<Expr, SqlError> {
        self.compile_in(e, scope, clause, &mut None)
    }

    pub(super) fn compile_in(
        &self,
        e: &ast::Expr,
        scope: &Scope,
        clause: &'static str,
        agg: &mut Option<&mut AggCx>,
    ) -> Result<Expr, SqlError> {
        use ast::Expr as A;
        if let Some(a) = agg.as_deref_mut() {
            if let Some(i) = self.group_key(e, a, clause) {
                return Ok(Expr::Column(i));
            }
            if is_agg_call(e) {
                return self.compile_agg_call(e, a);
            }
            if let A::Identifier(_) | A::CompoundIdentifier(_) = e {
                let parts = match e {
                    A::Identifier(i) => vec![i.clone()],
                    A::CompoundIdentifier(p) => p.clone(),
                    _ => unreachable!(),
                };
                let c = match a.input.resolve(&parts, clause) {
                    Ok(c) => c,
                    Err(err) => {
                        // HAVING / ORDER BY may name a select alias.
                        let alias = match parts.as_slice() {
                            [one] => a
                                .aliases
                                .iter()
                                .find(|(n, _)| n.eq_ignore_ascii_case(&one.value))
                                .map(|(_, x)| x.clone()),
                            _ => None,
                        };
                        return match alias {
                            Some(x) if x.to_string() != e.to_string() => {
                                self.compile_in(&x, scope, clause, agg)
                            }
                            _ => self.outer_ref(&parts, clause, err),
                        };
                    }
                };
                return match a.group_exprs.iter().position(|g| *g == Expr::Column(c)) {
                    Some(i) => Ok(Expr::Column(i)),
                    None => Err(SqlError::NotGrouped(e.to_string())),
                };
            }
        } else if is_agg_call(e) {
            return Err(SqlError::InvalidGroupFunction);
        }
        let b = |x: Expr| Box::new(x);
        Ok(match e {
            A::Identifier(i) if i.value.starts_with("@@") => {
                let name = i.value.trim_start_matches("@@").to_lowercase();
                let name = name
                    .trim_start_matches("session.")
                    .trim_start_matches("global.");
                Expr::Literal(
                    self.var(name)
                        .ok_or_else(|| SqlError::UnknownVariable(name.to_owned()))?,
                )
            }
            A::CompoundIdentifier(p) if p.first().is_some_and(|f| f.value.starts_with("@@")) => {
                let name = p.last().map(|i| i.value.to_lowercase()).unwrap_or_default();
                Expr::Literal(self.var(&name).ok_or(SqlError::UnknownVariable(name))?)
            }
            A::Identifier(i) => match scope.resolve(std::slice::from_ref(i), clause) {
                Ok(c) => Expr::Column(c),
                Err(err) => self.outer_ref(std::slice::from_ref(i), clause, err)?,
            },
            A::CompoundIdentifier(p) => match scope.resolve(p, clause) {
                Ok(c) => Expr::Column(c),
                Err(err) => self.outer_ref(p, clause, err)?,
            },
            A::Value(v) => Expr::Literal(literal(&v.value)?),
            A::TypedString(t) => Expr::Literal(super::calendar::typed_string(t)?),
            A::Extract { field, expr, .. } => {
                self.compile_extract(field, expr, scope, clause, agg)?
            }
            A::Interval(_) => {
                return Err(SqlError::Syntax(
                    "an INTERVAL can only be added to or subtracted from a date".into(),
                ))
            }
            A::Nested(x) => self.compile_in(x, scope, clause, agg)?,
            A::BinaryOp { .. } => self.compile_run(e, scope, clause, agg)?,
            // `-9223372036854775808` is BIGINT's minimum, though its digits
            // alone are past BIGINT's maximum.
            A::UnaryOp {
                op: ast::UnaryOperator::Minus,
                expr,
            } if matches!(&**expr, A::Value(v) if matches!(&v.value, ast::Value::Number(n, _) if n == "9223372036854775808")) => {
                Expr::Literal(Value::Int(i64::MIN))
            }
            A::UnaryOp { op, expr } => {
                let x = self.compile_in(expr, scope, clause, agg)?;
                match op {
                    ast::UnaryOperator::Minus => match x {
                        Expr::Literal(Value::Int(i)) if i != i64::MIN => {
                            Expr::Literal(Value::Int(-i))
                        }
                        Expr::Literal(Value::Float(f)) => Expr::Literal(Value::Float(-f)),
                        Expr::Literal(Value::Decimal(d)) => Expr::Literal(Value::Decimal(-d)),
                        x => Expr::Neg(b(x)),
                    },
                    ast::UnaryOperator::Plus => x,
                    ast::UnaryOperator::Not => Expr::Not(b(x)),
                    other => return Err(SqlError::Unsupported(format!("the operator {other}"))),
                }
            }
            A::IsNull(x) => Expr::IsNull {
                e: b(self.compile_in(x, scope, clause, agg)?),
                negated: false,
            },
            A::IsNotNull(x) => Expr::IsNull {
                e: b(self.compile_in(x, scope, clause, agg)?),
                negated: true,
            },
            A::IsTrue(x) => Expr::Func {
                f: Func::Coalesce,
                args: vec![
                    Expr::Binary {
                        op: BinOp::NotEq,
                        l: b(self.compile_in(x, scope, clause, agg)?),
                        r: b(Expr::Literal(Value::Int(0))),
                    },
                    Expr::Literal(Value::Int(0)),
                ],
            },
            A::IsFalse(x) => Expr::Func {
                f: Func::Coalesce,
                args: vec![
                    Expr::Binary {
                        op: BinOp::Eq,
                        l: b(self.compile_in(x, scope, clause, agg)?),
                        r: b(Expr::Literal(Value::Int(0))),
                    },
                    Expr::Literal(Value::Int(0)),
                ],
            },
            A::In {
                expr,
                target: ast::InTarget::List(list),
                negated,
                ..
            } => Expr::InList {
                e: b(self.compile_in(expr, scope, clause, agg)?),
                list: list
                    .iter()
                    .map(|x| self.compile_in(x, scope, clause, agg))
                    .collect::<Result<_, _>>()?,
                negated: *negated,
            },
            A::Between {
                expr,
                negated,
                low,
                high,
            } => Expr::Between {
                e: b(self.compile_in(expr, scope, clause, agg)?),
                lo: b(self.compile_in(low, scope, clause, agg)?),
                hi: b(self.compile_in(high, scope, clause, agg)?),
                negated: *negated,
            },
            A::Like {
                negated,
                expr,
                pattern,
                escape_char,
                any,
            } => {
                if escape_char.is_some() || *any {
                    return Err(SqlError::Unsupported("LIKE … ESCAPE / LIKE ANY".into()));
                }
                Expr::Like {
                    e: b(self.compile_in(expr, scope, clause, agg)?),
                    pattern: b(self.compile_in(pattern, scope, clause, agg)?),
                    negated: *negated,
                }
            }
            A::Case {
                operand,
                conditions,
                else_result,
                ..
            } => Expr::Case {
                operand: match operand {
                    Some(o) => Some(b(self.compile_in(o, scope, clause, agg)?)),
                    None => None,
                },
                whens: conditions
                    .iter()
                    .map(|w| {
                        Ok((
                            self.compile_in(&w.condition, scope, clause, agg)?,
                            self.compile_in(&w.result, scope, clause, agg)?,
                        ))
                    })
                    .collect::<Result<_, SqlError>>()?,
                otherwise: match else_result {
                    Some(x) => Some(b(self.compile_in(x, scope, clause, agg)?)),
                    None => None,
                },
            },
            A::Cast {
                expr, data_type, ..
            } if is_unsigned(data_type) => Expr::Func {
                f: Func::CastUnsigned,
                args: vec![self.compile_in(expr, scope, clause, agg)?],
            },
            // `CAST(x AS DECIMAL(p, s))` rounds to `s` digits, as MySQL
            // does (cascade keeps the result as a DOUBLE).
            A::Cast {
                expr,
                data_type:
                    ast::DataType::Decimal(info)
                    | ast::DataType::Numeric(info)
                    | ast::DataType::Dec(info),
                ..
            } => {
                let (p, sc) = match info {
                    ast::ExactNumberInfo::None => (10, 0),
                    ast::ExactNumberInfo::Precision(p) => (*p, 0),
                    ast::ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s),
                };
                if !(1..=65).contains(&p) || !(0..=30).contains(&sc) || sc as u64 > p {
                    return Err(SqlError::Unsupported(format!("the type {info}")));
                }
                Expr::Func {
                    f: Func::CastDecimal,
                    args: vec![
                        self.compile_in(expr, scope, clause, agg)?,
                        Expr::Literal(Value::Int(p as i64)),
                        Expr::Literal(Value::Int(sc)),
                    ],
                }
            }
            // `CAST(x AS CHAR(n))` keeps the first `n` characters.
            A::Cast {
                expr,
                data_type:
                    ast::DataType::Char(Some(ast::CharacterLength::IntegerLength { length, .. }))
                    | ast::DataType::Character(Some(ast::CharacterLength::IntegerLength {
                        length, ..
                    })),
                ..
            } => Expr::Func {
                f: Func::Substring,
                args: vec![
                    Expr::Cast {
                        e: b(self.compile_in(expr, scope, clause, agg)?),
                        ty: DataType::Text,
                    },
                    Expr::Literal(Value::Int(1)),
                    Expr::Literal(Value::Int(i64::try_from(*length).unwrap_or(i64::MAX))),
                ],
            },
            A::Cast {
                expr, data_type, ..
            } => Expr::Cast {
                e: b(self.compile_in(expr, scope, clause, agg)?),
                ty: sql_type(data_type)?,
            },
            A::Ceil { expr, .. } => Expr::Func {
                f: Func::Ceil,
                args: vec![self.compile_in(expr, scope, clause, agg)?],
            },
            A::Floor { expr, .. } => Expr::Func {
                f: Func::Floor,
                args: vec![self.compile_in(expr, scope, clause, agg)?],
            },
            A::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![self.compile_in(expr, scope, clause, agg)?];
                args.push(match substring_from {
                    Some(f) => self.compile_in(f, scope, clause, agg)?,
                    None => Expr::Literal(Value::Int(1)),
                });
                if let Some(l) = substring_for {
                    args.push(self.compile_in(l, scope, clause, agg)?);
                }
                Expr::Func {
                    f: Func::Substring,
                    args,
                }
            }
            A::Function(f) => self.compile_func(f, scope, clause, agg)?,
            e if subquery::is_subquery(e) => self.compile_subquery(e, scope, clause, agg)?,
            other => return Err(SqlError::Unsupported(format!("the expression {other}"))),
        })
    }

    /// Compiles a run of same-precedence binary operators (see
    /// [`shape::binary_run`]) into one [`Expr::Chain`], left to right, so
    /// that neither this walk nor the compiled expression grows deeper with
    /// the length of the run.
    pub(super) fn compile_run(
        &self,
        e: &ast::Expr,
        scope: &Scope,
        clause: &'static str,
        agg: &mut Option<&mut AggCx>,
    ) -> Result<Expr, SqlError> {
        let Some(run) = shape::binary_run(e) else {
            return Err(SqlError::Unsupported(format!("the expression {e}")));
        };
        if let Some(x) = self.compile_interval_run(&run.operands, &run.ops, scope, clause, agg)? {
            return Ok(x);
        }
        let mut start = 0;
        let mut first = None;
        if let Some(a) = agg.as_deref() {
            // In a grouped query the longest proper prefix of the run that
            // is a GROUP BY key is that key (`GROUP BY a + b` covers
            // `a + b + 1`), as the left-deep tree had it for a node. Only
            // prefixes as long as some key's run are compiled.
            let lens: Vec<usize> = a.group_exprs.iter().filter_map(run_len).collect();
            if let Some(&longest) = lens.iter().filter(|&&n| n < run.operands.len()).max() {
                let mut operands = Vec::with_capacity(longest);
                let mut ops = Vec::with_capacity(longest);
                for k in 0..longest {
                    let Ok(x) = self.compile(run.operands[k], &a.input, clause) else {
                        break;
                    };
                    operands.push(x);
                    if k > 0 {
                        ops.push(bin_op(run.ops[k - 1])?);
                    }
                    if lens.contains(&(k + 1)) {
                        let prefix = chain(
                            operands[0].clone(),
                            ops.iter()
                                .copied()
                                .zip(operands[1..].iter().cloned())
                                .collect(),
                        );
                        if let Some(i) = a.group_exprs.iter().position(|g| *g == prefix) {
                            start = k;
                            first = Some(Expr::Column(i));
                        }
                    }
                }
            }
        }
        let first = match first {
            Some(f) => f,
            None => self.compile_in(run.operands[0], scope, clause, agg)?,
        };
        let mut rest = Vec::with_capacity(run.ops.len() - start);
        for (op, x) in run.ops[start..].iter().zip(&run.operands[start + 1..]) {
            rest.push((bin_op(op)?, self.compile_in(x, scope, clause, agg)?));
        }
        Ok(chain(first, rest))
    }

    pub(super) fn compile_func(
        &self,
        f: &ast::Function,
        scope: &Scope,
        clause: &'static str,
        agg: &mut Option<&mut AggCx>,
    ) -> Result<Expr, SqlError> {
        let name = func_name(f);
        if f.over.is_some() {
            return match self.windows.and_then(|w| w.slot(f)) {
                Some(k) if matches!(clause, "field list" | "order clause") => {
                    Ok(Expr::Column(WINDOW_BASE + k))
                }
                _ => Err(WindowError::InvalidUse(name).into()),
            };
        }
        let (raw, _, _) = func_args(f)?;
        if let Some(x) = self.compile_calendar_func(&name, &raw, scope, clause, agg)? {
            return Ok(x);
        }
        let mut args = Vec::with_capacity(raw.len());
        for a in &raw {
            args.push(self.compile_in(a, scope, clause, agg)?);
        }
        let arity = |lo: usize, hi: usize| {
            if args.len() < lo || args.len() > hi {
                Err(SqlError::WrongArgs(name.clone()))
            } else {
                Ok(())
            }
        };
        let func = match name.as_str() {
            "version" | "database" | "schema" | "user" | "current_user" | "session_user"
            | "system_user" => {
                arity(0, 0)?;
                let key = match name.as_str() {
                    "version" => "version",
                    "database" | "schema" => "database",
                    _ => "user",
                };
                return Ok(Expr::Literal(self.var(key).unwrap_or(Value::Null)));
            }
            "connection_id" => {
                arity(0, 0)?;
                return Ok(Expr::Literal(Value::Int(self.connection_id as i64)));
            }
            "mod" => {
                arity(2, 2)?;
                let mut it = args.into_iter();
                let (l, r) = (
                    it.next().unwrap_or(Expr::Literal(Value::Null)),
                    it.next().unwrap_or(Expr::Literal(Value::Null)),
                );
                return Ok(Expr::Binary {
                    op: BinOp::Mod,
                    l: Box::new(l),
                    r: Box::new(r),
                });
            }
            "abs" => (Func::Abs, 1, 1),
            "round" => (Func::Round, 1, 2),
            "truncate" => (Func::Truncate, 2, 2),
            "floor" => (Func::Floor, 1, 1),
            "ceil" | "ceiling" => (Func::Ceil, 1, 1),
            "length" | "octet_length" => (Func::Length, 1, 1),
            "char_length" | "character_length" => (Func::CharLength, 1, 1),
            "upper" | "ucase" => (Func::Upper, 1, 1),
            "lower" | "lcase" => (Func::Lower, 1, 1),
            "concat" => (Func::Concat, 1, usize::MAX),
            "substring" | "substr" | "mid" => (Func::Substring, 2, 3),
            "coalesce" => (Func::Coalesce, 1, usize::MAX),
            "ifnull" => (Func::IfNull, 2, 2),
            "nullif" => (Func::NullIf, 2, 2),
            "greatest" => (Func::Greatest, 2, usize::MAX),
            "least" => (Func::Least, 2, usize::MAX),
            "if" => (Func::If, 3, 3),
            "sleep" => (Func::Sleep, 1, 1),
            _ => return Err(SqlError::Unsupported(format!("the function {name}()"))),
        };
        arity(func.1, func.2)?;
        Ok(Expr::Func { f: func.0, args })
    }

    /// The group key `e` is, matched structurally: `e` compiled over the
    /// input equals the key's compiled expression. Plain columns are left
    /// to the caller (it resolves them with aliases); expressions with
    /// aggregates are never keys.
    pub(super) fn group_key(
        &self,
        e: &ast::Expr,
        a: &AggCx,
        clause: &'static str,
    ) -> Option<usize> {
        if a.group_exprs.is_empty()
            || matches!(
                e,
                ast::Expr::Identifier(_) | ast::Expr::CompoundIdentifier(_)
            )
            || contains_agg(e)
            || subquery::contains_subquery(e)
        {
            return None;
        }
        let x = self.compile(e, &a.input, clause).ok()?;
        a.group_exprs.iter().position(|g| *g == x)
    }

    pub(super) fn compile_agg_call(&self, e: &ast::Expr, a: &mut AggCx) -> Result<Expr, SqlError> {
        let ast::Expr::Function(f) = e else {
            return Err(SqlError::InvalidGroupFunction);
        };
        let name = func_name(f);
        let (args, distinct, star) = func_args(f)?;
        let input = a.input.clone();
        let (func, arg) = match (name.as_str(), star, args.as_slice()) {
            ("count", true, []) => (AggFunc::CountStar, None),
            (n, false, [x]) => {
                if contains_agg(x) {
                    return Err(SqlError::InvalidGroupFunction);
                }
                if subquery::contains_subquery(x) {
                    return Err(SqlError::Unsupported(
                        "subqueries in aggregate arguments".into(),
                    ));
                }
                let func = match n {
                    "count" => AggFunc::Count,
                    "sum" => AggFunc::Sum,
                    "avg" => AggFunc::Avg,
                    "min" => AggFunc::Min,
                    _ => AggFunc::Max,
                };
                let arg = self.compile(x, &input, "field list")?;
                subquery::check_agg_arg(&arg)?;
                (func, Some(arg))
            }
            _ => return Err(SqlError::WrongArgs(name)),
        };
        let arg_type = arg
            .as_ref()
            .map_or(DataType::Int, |x| x.data_type(&input.types()));
        let same = |x: &AggSpec| x.func == func && x.arg == arg && x.distinct == distinct;
        if let Some(j) = a.aggs.iter().position(same) {
            return Ok(Expr::Column(a.group_exprs.len() + j));
        }
        a.aggs.push(AggSpec {
            func,
            arg,
            distinct,
            arg_type,
            text: e.to_string(),
        });
        Ok(Expr::Column(a.group_exprs.len() + a.aggs.len() - 1))
    }
}

/// How many operands a compiled key has at its top level if it is a
/// binary run (`a + b + c` has 3), for matching run prefixes.
fn run_len(e: &Expr) -> Option<usize> {
    match e {
        Expr::Binary { .. } => Some(2),
        Expr::Chain { rest, .. } => Some(rest.len() + 1),
        _ => None,
    }
}

/// The operator cascade evaluates for a sqlparser binary operator.
pub(super) fn bin_op(op: &ast::BinaryOperator) -> Result<BinOp, SqlError> {
    Ok(match op {
        ast::BinaryOperator::Plus => BinOp::Add,
        ast::BinaryOperator::Minus => BinOp::Sub,
        ast::BinaryOperator::Multiply => BinOp::Mul,
        ast::BinaryOperator::Divide => BinOp::Div,
        ast::BinaryOperator::Modulo => BinOp::Mod,
        ast::BinaryOperator::MyIntegerDivide => BinOp::IntDiv,
        ast::BinaryOperator::Eq => BinOp::Eq,
        ast::BinaryOperator::NotEq => BinOp::NotEq,
        ast::BinaryOperator::Lt => BinOp::Lt,
        ast::BinaryOperator::LtEq => BinOp::LtEq,
        ast::BinaryOperator::Gt => BinOp::Gt,
        ast::BinaryOperator::GtEq => BinOp::GtEq,
        ast::BinaryOperator::Spaceship => BinOp::NullSafeEq,
        ast::BinaryOperator::And => BinOp::And,
        ast::BinaryOperator::Or | ast::BinaryOperator::StringConcat => BinOp::Or,
        ast::BinaryOperator::Xor => BinOp::Xor,
        other => return Err(SqlError::Unsupported(format!("the operator {other}"))),
    })
}

/// `first op₁ x₁ …` as one node: a [`Expr::Binary`] for one operator, an
/// [`Expr::Chain`] for more.
pub(super) fn chain(first: Expr, mut rest: Vec<(BinOp, Expr)>) -> Expr {
    if rest.len() == 1 {
        if let Some((op, r)) = rest.pop() {
            return Expr::Binary {
                op,
                l: Box::new(first),
                r: Box::new(r),
            };
        }
    }
    if rest.is_empty() {
        return first;
    }
    Expr::Chain {
        first: Box::new(first),
        rest,
    }
}

pub(super) fn const_eval(e: &Expr) -> Result<Value, SqlError> {
    let unit = Batch::new(Vec::new(), 1);
    let mut cx = EvalCx::default();
    let v = e
        .eval_row(&unit, 0, &mut cx)
        .map_err(|err| SqlError::InvalidValue(err.to_string()))?;
    // Nobody would wait for it here: refuse rather than not sleep.
    if cx.sleep_owed > 0.0 {
        return Err(SqlError::Unsupported(
            "SLEEP() in LIMIT, OFFSET, ORDER BY / GROUP BY ordinals or generate_series arguments"
                .into(),
        ));
    }
    Ok(v)
}

pub(super) fn const_int(
    c: &Compiler<'_>,
    e: &ast::Expr,
    what: &'static str,
) -> Result<i64, SqlError> {
    let v = const_eval(&c.compile(e, &Scope::default(), what)?)?;
    match v {
        Value::Int(i) => Ok(i),
        Value::Float(f) if f.fract() == 0.0 => match crate::expr::f64_to_bigint(f) {
            Some(i) => Ok(i),
            // `LIMIT 18446744073709551615` (MySQL's "all rows") means the
            // same as 2^63-1 rows: no table has more.
            None if f > 0.0 && matches!(what, "LIMIT" | "OFFSET") => Ok(i64::MAX),
            None => Err(SqlError::InvalidValue(format!(
                "{what}: {} is out of BIGINT's range",
                Value::Float(f)
            ))),
        },
        other => Err(SqlError::InvalidValue(format!(
            "{what} must be an integer, not {other}"
        ))),
    }
}

pub(super) fn names_text(exprs: &[Expr], names: &[String]) -> String {
    exprs
        .iter()
        .map(|e| e.display(names))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn col_ast(col: &ScopeCol) -> ast::Expr {
    match &col.qualifier {
        Some(q) => {
            ast::Expr::CompoundIdentifier(vec![ast::Ident::new(q), ast::Ident::new(&col.name)])
        }
        None => ast::Expr::Identifier(ast::Ident::new(&col.name)),
    }
}

/// Compiles an expression over a table's columns (UPDATE / DELETE).
pub fn compile_over_table(
    e: &ast::Expr,
    table: &Table,
    connection_id: u64,
    now_micros: i64,
    clause: &'static str,
) -> Result<Expr, SqlError> {
    let c = Compiler {
        connection_id,
        now_micros: Some(now_micros),
        cx: None,
        outer: None,
        subs: Collected::default(),
        windows: None,
    };
    if contains_agg(e) {
        return Err(SqlError::InvalidGroupFunction);
    }
    c.compile(e, &Scope::of_table(table, &table.name), clause)
}

/// Compiles a constant expression (INSERT … VALUES, SET, DEFAULT);
/// `now_micros` as in [`Compiler::now_micros`].
pub fn compile_const(
    e: &ast::Expr,
    connection_id: u64,
    now_micros: Option<i64>,
) -> Result<Expr, SqlError> {
    let c = Compiler {
        connection_id,
        now_micros,
        cx: None,
        outer: None,
        subs: Collected::default(),
        windows: None,
    };
    c.compile(e, &Scope::default(), "field list")
}

/// The conjuncts of `e` (`a AND b AND c`), in written order. (Recursion over
/// a run of ANDs: balanced by [`crate::sql::shape`], so its depth is
/// logarithmic in the run's length.)
pub(super) fn split_and(e: &ast::Expr, out: &mut Vec<ast::Expr>) {
    match e {
        ast::Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::And,
            right,
        } => {
            split_and(left, out);
            split_and(right, out);
        }
        ast::Expr::Nested(x) => split_and(x, out),
        other => out.push(other.clone()),
    }
}
