//! The planner: sqlparser's AST to a [`Plan`] tree, then to instrumented
//! operators with their pipeline contexts.
//!
//! Name resolution follows MySQL: `ORDER BY` looks at select-list aliases
//! first, then input columns; `GROUP BY` and `HAVING` look at input columns
//! first, then aliases; ordinals (`ORDER BY 2`) refer to select items. With
//! `only_full_group_by`, a select item must be an aggregate, a group key, or
//! built from them.

use sqlparser::ast;
use std::sync::Arc;

use super::error::SqlError;
use super::shape;
use crate::context::Context;
use crate::data::{Batch, DataType, Value};
use crate::error::ContextError;
use crate::expr::{BinOp, EvalCx, Expr, Func};
use crate::level::Level;
use crate::pipeline::aggregate::{AggFunc, AggSpec, HashAggregate};
use crate::pipeline::basic::{Filter, Limit, Project, UnionAll};
use crate::pipeline::join::{HashJoin, JoinKind};
use crate::pipeline::scan::{SeriesScan, TableScan, ValuesScan};
use crate::pipeline::sort::{Sort, SortKey};
use crate::pipeline::Instrumented;
use crate::storage::{Catalog, ColumnLimit, Table, TableData, WriteSet};

/// A plan node.
pub enum Plan {
    /// `generate_series`.
    Series {
        /// First value.
        start: i64,
        /// Last value (inclusive).
        stop: i64,
        /// Step.
        step: i64,
    },
    /// A table scan.
    Scan {
        /// Table name.
        table: String,
        /// The snapshot's data.
        data: Arc<TableData>,
    },
    /// Literal rows.
    Values {
        /// Rows.
        rows: Vec<Vec<Expr>>,
        /// Column types.
        types: Vec<DataType>,
    },
    /// Filter.
    Filter {
        /// Input.
        input: Box<Plan>,
        /// Predicate.
        pred: Expr,
        /// EXPLAIN text.
        text: String,
    },
    /// Projection.
    Project {
        /// Input.
        input: Box<Plan>,
        /// Expressions.
        exprs: Vec<Expr>,
        /// Output types.
        types: Vec<DataType>,
        /// EXPLAIN text.
        text: String,
    },
    /// Hash aggregate.
    Aggregate {
        /// Input.
        input: Box<Plan>,
        /// Keys.
        keys: Vec<Expr>,
        /// Key types.
        key_types: Vec<DataType>,
        /// Aggregates.
        aggs: Vec<AggSpec>,
        /// EXPLAIN text.
        text: String,
    },
    /// Sort / top-N.
    Sort {
        /// Input.
        input: Box<Plan>,
        /// Keys.
        keys: Vec<SortKey>,
        /// Rows to keep.
        limit: Option<usize>,
        /// EXPLAIN text.
        text: String,
    },
    /// Limit / offset.
    Limit {
        /// Input.
        input: Box<Plan>,
        /// Rows to skip.
        offset: u64,
        /// Rows to pass.
        limit: Option<u64>,
    },
    /// Join.
    Join {
        /// Left (probe).
        left: Box<Plan>,
        /// Right (build).
        right: Box<Plan>,
        /// Left keys.
        left_keys: Vec<Expr>,
        /// Right keys.
        right_keys: Vec<Expr>,
        /// One integer key on both sides.
        int_keys: bool,
        /// Residual condition over left ++ right.
        residual: Option<Expr>,
        /// Kind.
        kind: JoinKind,
        /// Right column types.
        right_types: Vec<DataType>,
        /// EXPLAIN text.
        text: String,
    },
    /// Union all.
    Union {
        /// Inputs.
        inputs: Vec<Plan>,
        /// Output types.
        types: Vec<DataType>,
    },
}

impl Plan {
    /// Builds operators; blocking operators get their input in a nested
    /// Pipeline context.
    pub fn build(self, pipeline: &Context) -> Result<Instrumented, ContextError> {
        let nested = |p: &Context, what: &str| -> Result<Context, ContextError> {
            p.child(Level::Pipeline)
                .name(format!("pipeline ({what} input)"))
                .build()
        };
        let op: Box<dyn crate::pipeline::Operator> = match self {
            Plan::Series { start, stop, step } => Box::new(SeriesScan::new(start, stop, step)),
            Plan::Scan { table, data } => Box::new(TableScan::new(table, data)),
            Plan::Values { rows, types } => Box::new(ValuesScan::new(rows, types)),
            Plan::Filter { input, pred, text } => {
                Box::new(Filter::new(input.build(pipeline)?, pred, text))
            }
            Plan::Project {
                input,
                exprs,
                types,
                text,
            } => Box::new(Project::new(input.build(pipeline)?, exprs, types, text)),
            Plan::Aggregate {
                input,
                keys,
                key_types,
                aggs,
                text,
            } => {
                let p = nested(pipeline, "aggregate")?;
                Box::new(HashAggregate::new(
                    input.build(&p)?,
                    keys,
                    key_types,
                    aggs,
                    text,
                ))
            }
            Plan::Sort {
                input,
                keys,
                limit,
                text,
            } => {
                let p = nested(pipeline, "sort")?;
                Box::new(Sort::new(input.build(&p)?, keys, limit, text))
            }
            Plan::Limit {
                input,
                offset,
                limit,
            } => Box::new(Limit::new(input.build(pipeline)?, offset, limit)),
            Plan::Join {
                left,
                right,
                left_keys,
                right_keys,
                int_keys,
                residual,
                kind,
                right_types,
                text,
            } => {
                let p = nested(pipeline, "join build")?;
                Box::new(HashJoin::new(
                    left.build(pipeline)?,
                    right.build(&p)?,
                    left_keys,
                    right_keys,
                    int_keys,
                    residual,
                    kind,
                    right_types,
                    text,
                ))
            }
            Plan::Union { inputs, types } => {
                let mut built = Vec::new();
                for i in inputs {
                    built.push(i.build(pipeline)?);
                }
                Box::new(UnionAll::new(built, types))
            }
        };
        Ok(Instrumented::new(op, pipeline.clone()))
    }
}

/// A planned query: the plan and its output columns.
pub struct Planned {
    /// The plan.
    pub plan: Plan,
    /// Output names.
    pub names: Vec<String>,
    /// Output types.
    pub types: Vec<DataType>,
}

impl Planned {
    /// The output columns as a scope (unqualified).
    fn scope(&self) -> Scope {
        Scope {
            cols: self
                .names
                .iter()
                .zip(&self.types)
                .map(|(n, t)| ScopeCol {
                    qualifier: None,
                    name: n.clone(),
                    ty: *t,
                })
                .collect(),
        }
    }
}

/// What the planner reads: tables as of a snapshot, plus the transaction's
/// own writes.
pub struct PlanCx<'a> {
    /// The catalog.
    pub catalog: &'a Catalog,
    /// Snapshot timestamp.
    pub snapshot_ts: u64,
    /// The transaction's uncommitted writes.
    pub writes: &'a WriteSet,
    /// `CONNECTION_ID()`.
    pub connection_id: u64,
    /// System variables readable as `@@name` (and `version()`, `user()`,
    /// `database()`).
    pub vars: Vec<(&'static str, Value)>,
}

impl PlanCx<'_> {
    /// A table and the data this transaction sees.
    pub fn table(&self, name: &str) -> Result<(Arc<Table>, Arc<TableData>), SqlError> {
        let key = name.to_lowercase();
        if let Some((t, d)) = self.writes.get(&key) {
            return Ok((t.clone(), d.clone()));
        }
        let t = self
            .catalog
            .table(&key)
            .map_err(|_| SqlError::UnknownTable(name.to_owned()))?;
        let d = t.read(self.snapshot_ts);
        Ok((t, d))
    }
}

#[derive(Clone, Debug)]
struct ScopeCol {
    qualifier: Option<String>,
    name: String,
    ty: DataType,
}

/// Columns visible to an expression.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    cols: Vec<ScopeCol>,
}

impl Scope {
    fn types(&self) -> Vec<DataType> {
        self.cols.iter().map(|c| c.ty).collect()
    }
    fn names(&self) -> Vec<String> {
        self.cols.iter().map(|c| c.name.clone()).collect()
    }
    fn with_qualifier(mut self, q: &str) -> Scope {
        for c in &mut self.cols {
            c.qualifier = Some(q.to_lowercase());
        }
        self
    }
    fn concat(&self, other: &Scope) -> Scope {
        let mut cols = self.cols.clone();
        cols.extend(other.cols.iter().cloned());
        Scope { cols }
    }
    /// Scope over a table's columns.
    pub fn of_table(table: &Table, qualifier: &str) -> Scope {
        Scope {
            cols: table
                .schema
                .columns
                .iter()
                .map(|c| ScopeCol {
                    qualifier: Some(qualifier.to_lowercase()),
                    name: c.name.clone(),
                    ty: c.ty,
                })
                .collect(),
        }
    }
    fn resolve(&self, parts: &[ast::Ident], clause: &'static str) -> Result<usize, SqlError> {
        let (q, n) = match parts {
            [n] => (None, n.value.to_lowercase()),
            [.., q, n] => (Some(q.value.to_lowercase()), n.value.to_lowercase()),
            [] => return Err(SqlError::Syntax("empty identifier".into())),
        };
        let mut hits = self.cols.iter().enumerate().filter(|(_, c)| {
            c.name.to_lowercase() == n
                && q.as_ref()
                    .is_none_or(|q| c.qualifier.as_deref() == Some(q.as_str()))
        });
        let display = parts
            .iter()
            .map(|p| p.value.clone())
            .collect::<Vec<_>>()
            .join(".");
        match (hits.next(), hits.next()) {
            (Some((i, _)), None) => Ok(i),
            (Some(_), Some(_)) => Err(SqlError::Ambiguous(display)),
            (None, _) => Err(SqlError::UnknownColumn {
                name: display,
                clause,
            }),
        }
    }
}

fn ident_name(n: &ast::ObjectName) -> String {
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
        "DOUBLE" | "FLOAT" | "REAL" | "DECIMAL" | "NUMERIC" | "DEC" | "FLOAT64" | "FLOAT8" => {
            DataType::Float
        }
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
        _ => ColumnLimit::None,
    })
}

/// `UNSIGNED [INTEGER]`, `BIGINT UNSIGNED`, …: a cast target cascade holds
/// in a BIGINT only when the value is in `0..=2^63-1`.
fn is_unsigned(t: &ast::DataType) -> bool {
    t.to_string().to_uppercase().contains("UNSIGNED")
}

const AGG_NAMES: [&str; 5] = ["count", "sum", "avg", "min", "max"];

fn func_name(f: &ast::Function) -> String {
    object_name(&f.name)
}

/// An aggregate call (`sum(x) OVER (…)` is a window function, not one).
fn is_agg_call(e: &ast::Expr) -> bool {
    matches!(e, ast::Expr::Function(f) if f.over.is_none() && AGG_NAMES.contains(&func_name(f).as_str()))
}

/// Whether `e` calls a window function (`… OVER (…)`) anywhere.
fn contains_window(e: &ast::Expr) -> bool {
    let mut found = false;
    walk(e, &mut |x| {
        if matches!(x, ast::Expr::Function(f) if f.over.is_some()) {
            found = true;
        }
    });
    found
}

/// Calls `f` on `e` and every expression inside it that cascade compiles.
fn walk(e: &ast::Expr, f: &mut dyn FnMut(&ast::Expr)) {
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
        | A::Floor { expr, .. } => walk(expr, f),
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

fn contains_agg(e: &ast::Expr) -> bool {
    let mut found = false;
    walk(e, &mut |x| {
        if is_agg_call(x) {
            found = true;
        }
    });
    found
}

fn func_args(f: &ast::Function) -> Result<(Vec<&ast::Expr>, bool, bool), SqlError> {
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
struct AggCx {
    group_asts: Vec<String>,
    group_exprs: Vec<Expr>,
    group_types: Vec<DataType>,
    aggs: Vec<AggSpec>,
    agg_asts: Vec<String>,
    input: Scope,
    aliases: Vec<(String, ast::Expr)>,
}

/// Compiles expressions.
pub struct Compiler<'a> {
    /// `CONNECTION_ID()`.
    pub connection_id: u64,
    /// For subqueries in FROM.
    pub cx: Option<&'a PlanCx<'a>>,
}

fn literal(v: &ast::Value) -> Result<Value, SqlError> {
    Ok(match v {
        ast::Value::Number(n, _) => {
            if let Ok(i) = n.parse::<i64>() {
                Value::Int(i)
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
    fn var(&self, name: &str) -> Option<Value> {
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

    fn compile(
        &self,
        e: &ast::Expr,
        scope: &Scope,
        clause: &'static str,
    ) -> Result<Expr, SqlError> {
        self.compile_in(e, scope, clause, &mut None)
    }

    fn compile_in(
        &self,
        e: &ast::Expr,
        scope: &Scope,
        clause: &'static str,
        agg: &mut Option<&mut AggCx>,
    ) -> Result<Expr, SqlError> {
        use ast::Expr as A;
        if let Some(a) = agg.as_deref_mut() {
            let text = e.to_string().to_lowercase();
            if let Some(i) = a.group_asts.iter().position(|g| *g == text) {
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
                            _ => Err(err),
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
            A::Identifier(i) => Expr::Column(scope.resolve(std::slice::from_ref(i), clause)?),
            A::CompoundIdentifier(p) => Expr::Column(scope.resolve(p, clause)?),
            A::Value(v) => Expr::Literal(literal(&v.value)?),
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
            A::Subquery(_) | A::In { .. } | A::Exists { .. } => {
                return Err(SqlError::Unsupported(
                    "subqueries in expressions (use a subquery in FROM)".into(),
                ))
            }
            other => return Err(SqlError::Unsupported(format!("the expression {other}"))),
        })
    }

    /// Compiles a run of same-precedence binary operators (see
    /// [`shape::binary_run`]) into one [`Expr::Chain`], left to right, so
    /// that neither this walk nor the compiled expression grows deeper with
    /// the length of the run.
    fn compile_run(
        &self,
        e: &ast::Expr,
        scope: &Scope,
        clause: &'static str,
        agg: &mut Option<&mut AggCx>,
    ) -> Result<Expr, SqlError> {
        let Some(run) = shape::binary_run(e) else {
            return Err(SqlError::Unsupported(format!("the expression {e}")));
        };
        let mut start = 0;
        let mut first = None;
        if let Some(a) = agg.as_deref() {
            // In a grouped query the longest proper prefix of the run that
            // is a GROUP BY key is that key (`GROUP BY a + b` covers
            // `a + b + 1`), as the left-deep tree had it for a node.
            if !a.group_asts.is_empty() && run.operands.len() > 2 {
                let lens: Vec<usize> = a.group_asts.iter().map(String::len).collect();
                let mut text = run.operands[0].to_string().to_lowercase();
                for k in 1..run.operands.len() - 1 {
                    text.push_str(&format!(
                        " {} {}",
                        run.ops[k - 1].to_string().to_lowercase(),
                        run.operands[k].to_string().to_lowercase()
                    ));
                    if lens.contains(&text.len()) {
                        if let Some(i) = a.group_asts.iter().position(|g| *g == text) {
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

    fn compile_func(
        &self,
        f: &ast::Function,
        scope: &Scope,
        clause: &'static str,
        agg: &mut Option<&mut AggCx>,
    ) -> Result<Expr, SqlError> {
        let name = func_name(f);
        if f.over.is_some() {
            return Err(SqlError::Unsupported("window functions (OVER …)".into()));
        }
        let (raw, _, _) = func_args(f)?;
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

    fn compile_agg_call(&self, e: &ast::Expr, a: &mut AggCx) -> Result<Expr, SqlError> {
        let ast::Expr::Function(f) = e else {
            return Err(SqlError::InvalidGroupFunction);
        };
        let text = e.to_string().to_lowercase();
        if let Some(j) = a.agg_asts.iter().position(|x| *x == text) {
            return Ok(Expr::Column(a.group_exprs.len() + j));
        }
        let name = func_name(f);
        let (args, distinct, star) = func_args(f)?;
        let input = a.input.clone();
        let (func, arg) = match (name.as_str(), star, args.as_slice()) {
            ("count", true, []) => (AggFunc::CountStar, None),
            (n, false, [x]) => {
                if contains_agg(x) {
                    return Err(SqlError::InvalidGroupFunction);
                }
                let func = match n {
                    "count" => AggFunc::Count,
                    "sum" => AggFunc::Sum,
                    "avg" => AggFunc::Avg,
                    "min" => AggFunc::Min,
                    _ => AggFunc::Max,
                };
                (func, Some(self.compile(x, &input, "field list")?))
            }
            _ => return Err(SqlError::WrongArgs(name)),
        };
        let arg_type = arg
            .as_ref()
            .map_or(DataType::Int, |x| x.data_type(&input.types()));
        a.aggs.push(AggSpec {
            func,
            arg,
            distinct,
            arg_type,
            text: e.to_string(),
        });
        a.agg_asts.push(text);
        Ok(Expr::Column(a.group_exprs.len() + a.aggs.len() - 1))
    }
}

/// The operator cascade evaluates for a sqlparser binary operator.
fn bin_op(op: &ast::BinaryOperator) -> Result<BinOp, SqlError> {
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
fn chain(first: Expr, mut rest: Vec<(BinOp, Expr)>) -> Expr {
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

fn const_eval(e: &Expr) -> Result<Value, SqlError> {
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

fn const_int(c: &Compiler<'_>, e: &ast::Expr, what: &'static str) -> Result<i64, SqlError> {
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

fn split_and(e: &ast::Expr, out: &mut Vec<ast::Expr>) {
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

fn names_text(exprs: &[Expr], names: &[String]) -> String {
    exprs
        .iter()
        .map(|e| e.display(names))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Plans a query.
pub fn plan_query(q: &ast::Query, cx: &PlanCx<'_>) -> Result<Planned, SqlError> {
    if q.with.is_some() {
        return Err(SqlError::Unsupported(
            "WITH (common table expressions)".into(),
        ));
    }
    if q.fetch.is_some() || !q.locks.is_empty() {
        return Err(SqlError::Unsupported("FETCH / FOR UPDATE".into()));
    }
    let compiler = Compiler {
        connection_id: cx.connection_id,
        cx: Some(cx),
    };
    let (limit, offset) = match &q.limit_clause {
        None => (None, 0),
        Some(ast::LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) => {
            if !limit_by.is_empty() {
                return Err(SqlError::Unsupported("LIMIT BY".into()));
            }
            let l = match limit {
                Some(e) => Some(const_int(&compiler, e, "LIMIT")?),
                None => None,
            };
            let o = match offset {
                Some(o) => const_int(&compiler, &o.value, "OFFSET")?,
                None => 0,
            };
            (l, o)
        }
        Some(ast::LimitClause::OffsetCommaLimit { offset, limit }) => (
            Some(const_int(&compiler, limit, "LIMIT")?),
            const_int(&compiler, offset, "OFFSET")?,
        ),
    };
    if limit.is_some_and(|l| l < 0) || offset < 0 {
        return Err(SqlError::InvalidValue(
            "LIMIT and OFFSET must not be negative".into(),
        ));
    }
    let order: Vec<&ast::OrderByExpr> = match &q.order_by {
        None => vec![],
        Some(ob) => match &ob.kind {
            ast::OrderByKind::Expressions(v) => v.iter().collect(),
            ast::OrderByKind::All(_) => return Err(SqlError::Unsupported("ORDER BY ALL".into())),
        },
    };
    let shape = Shape {
        order,
        limit: limit.map(|l| l as u64),
        offset: offset as u64,
    };
    match q.body.as_ref() {
        ast::SetExpr::Select(s) => plan_select(s, &shape, cx, &compiler),
        other => {
            let inner = plan_set_expr(other, cx, &compiler)?;
            apply_shape(inner, &shape, &compiler)
        }
    }
}

struct Shape<'a> {
    order: Vec<&'a ast::OrderByExpr>,
    limit: Option<u64>,
    offset: u64,
}

fn is_desc(o: &ast::OrderByExpr) -> bool {
    matches!(o.options.sort, Some(ast::OrderBySort::Desc))
}

/// ORDER BY / LIMIT over a finished result (set operations).
fn apply_shape(p: Planned, shape: &Shape<'_>, c: &Compiler<'_>) -> Result<Planned, SqlError> {
    let scope = p.scope();
    let mut plan = p.plan;
    if !shape.order.is_empty() {
        let mut keys = Vec::new();
        for o in &shape.order {
            let expr = match &o.expr {
                ast::Expr::Value(v) if matches!(v.value, ast::Value::Number(..)) => {
                    let n = const_int(c, &o.expr, "ORDER BY")?;
                    if n < 1 || n as usize > p.names.len() {
                        return Err(SqlError::UnknownColumn {
                            name: n.to_string(),
                            clause: "order clause",
                        });
                    }
                    Expr::Column(n as usize - 1)
                }
                e => c.compile(e, &scope, "order clause")?,
            };
            keys.push(SortKey {
                expr,
                desc: is_desc(o),
            });
        }
        let text = keys
            .iter()
            .map(|k| {
                format!(
                    "{}{}",
                    k.expr.display(&p.names),
                    if k.desc { " DESC" } else { "" }
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        plan = Plan::Sort {
            input: Box::new(plan),
            keys,
            limit: shape
                .limit
                .map(|l| l.saturating_add(shape.offset).min(usize::MAX as u64) as usize),
            text,
        };
    }
    if shape.limit.is_some() || shape.offset > 0 {
        plan = Plan::Limit {
            input: Box::new(plan),
            offset: shape.offset,
            limit: shape.limit,
        };
    }
    Ok(Planned {
        plan,
        names: p.names,
        types: p.types,
    })
}

fn plan_set_expr(e: &ast::SetExpr, cx: &PlanCx<'_>, c: &Compiler<'_>) -> Result<Planned, SqlError> {
    match e {
        ast::SetExpr::Select(s) => plan_select(
            s,
            &Shape {
                order: vec![],
                limit: None,
                offset: 0,
            },
            cx,
            c,
        ),
        ast::SetExpr::Query(q) => plan_query(q, cx),
        ast::SetExpr::SetOperation { .. } => plan_union(e, cx, c),
        ast::SetExpr::Values(v) => {
            let mut rows = Vec::new();
            let mut width = None;
            for (i, r) in v.rows.iter().enumerate() {
                let row: Vec<Expr> = r
                    .iter()
                    .map(|x| c.compile(x, &Scope::default(), "VALUES"))
                    .collect::<Result<_, _>>()?;
                if *width.get_or_insert(row.len()) != row.len() {
                    return Err(SqlError::ColumnCount(i + 1));
                }
                rows.push(row);
            }
            let w = width.unwrap_or(0);
            let types: Vec<DataType> = (0..w)
                .map(|j| {
                    rows.iter()
                        .fold(DataType::Null, |t, r| t.unify(r[j].data_type(&[])))
                })
                .collect();
            Ok(Planned {
                plan: Plan::Values {
                    rows,
                    types: types.clone(),
                },
                names: (1..=w).map(|j| format!("column_{j}")).collect(),
                types,
            })
        }
        other => Err(SqlError::Unsupported(format!("the query form {other}"))),
    }
}

/// A run of `UNION [ALL | DISTINCT]` (see [`shape::set_run`]), left to
/// right, as one flat [`Plan::Union`]: a `UNION` (distinct) removes the
/// duplicates of everything before it, so the plan is at most a union of
/// one DISTINCT over a union and the branches after it, however long the
/// run.
fn plan_union(e: &ast::SetExpr, cx: &PlanCx<'_>, c: &Compiler<'_>) -> Result<Planned, SqlError> {
    let Some(run) = shape::set_run(e) else {
        return Err(SqlError::Unsupported(format!("the query form {e}")));
    };
    if let Some((op, _)) = run
        .ops
        .iter()
        .find(|(op, _)| **op != ast::SetOperator::Union)
    {
        return Err(SqlError::Unsupported(format!("the set operation {op}")));
    }
    let first = plan_set_expr(run.operands[0], cx, c)?;
    let names = first.names;
    let mut types = first.types;
    // The branches a DISTINCT covers, and the branches after it.
    let mut under: Vec<Plan> = Vec::new();
    let mut plain: Vec<Plan> = Vec::new();
    let flat = |into: &mut Vec<Plan>, p: Plan| match p {
        Plan::Union { inputs, .. } => into.extend(inputs),
        other => into.push(other),
    };
    flat(&mut plain, first.plan);
    for ((_, q), operand) in run.ops.iter().zip(&run.operands[1..]) {
        let r = plan_set_expr(operand, cx, c)?;
        if r.types.len() != types.len() {
            return Err(SqlError::UnionArity);
        }
        types = types
            .iter()
            .zip(&r.types)
            .map(|(a, b)| a.unify(*b))
            .collect();
        flat(&mut plain, r.plan);
        if !matches!(q, ast::SetQuantifier::All) {
            under.append(&mut plain);
        }
    }
    let mut plan = Plan::Union {
        inputs: plain,
        types: types.clone(),
    };
    if !under.is_empty() {
        let keys: Vec<Expr> = (0..types.len()).map(Expr::Column).collect();
        let distinct = Plan::Aggregate {
            input: Box::new(Plan::Union {
                inputs: under,
                types: types.clone(),
            }),
            text: format!("distinct {}", names_text(&keys, &names)),
            keys,
            key_types: types.clone(),
            aggs: vec![],
        };
        plan = match plan {
            Plan::Union { inputs, types } if !inputs.is_empty() => {
                let mut all = vec![distinct];
                all.extend(inputs);
                Plan::Union { inputs: all, types }
            }
            _ => distinct,
        };
    }
    Ok(Planned { plan, names, types })
}

fn plan_factor(
    tf: &ast::TableFactor,
    cx: &PlanCx<'_>,
    c: &Compiler<'_>,
) -> Result<(Plan, Scope), SqlError> {
    match tf {
        ast::TableFactor::Table {
            name, alias, args, ..
        } => {
            let tname = object_name(name);
            if let Some(args) = args {
                if tname != "generate_series" {
                    return Err(SqlError::Unsupported(format!("the table function {tname}")));
                }
                let mut vals = Vec::new();
                for a in &args.args {
                    match a {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => {
                            vals.push(const_int(c, e, "generate_series")?)
                        }
                        _ => return Err(SqlError::WrongArgs("generate_series".into())),
                    }
                }
                let (start, stop, step) = match vals.as_slice() {
                    [a, b] => (*a, *b, 1),
                    [a, b, s] => (*a, *b, *s),
                    _ => return Err(SqlError::WrongArgs("generate_series".into())),
                };
                if step == 0 {
                    return Err(SqlError::InvalidValue(
                        "generate_series step must not be 0".into(),
                    ));
                }
                let (qual, col) = match alias {
                    Some(a) => {
                        if a.columns.len() > 1 {
                            return Err(SqlError::DerivedColumnCount);
                        }
                        (
                            a.name.value.clone(),
                            a.columns.first().map(|c| c.name.value.clone()),
                        )
                    }
                    None => ("generate_series".to_owned(), None),
                };
                let scope = Scope {
                    cols: vec![ScopeCol {
                        qualifier: Some(qual.to_lowercase()),
                        name: col.unwrap_or_else(|| "generate_series".into()),
                        ty: DataType::Int,
                    }],
                };
                return Ok((Plan::Series { start, stop, step }, scope));
            }
            let (table, data) = cx.table(&tname)?;
            let qual = alias
                .as_ref()
                .map_or(tname.clone(), |a| a.name.value.clone());
            let mut scope = Scope::of_table(&table, &qual);
            if let Some(a) = alias {
                if !a.columns.is_empty() && a.columns.len() != scope.cols.len() {
                    return Err(SqlError::DerivedColumnCount);
                }
                for (sc, ac) in scope.cols.iter_mut().zip(&a.columns) {
                    sc.name = ac.name.value.clone();
                }
            }
            Ok((Plan::Scan { table: tname, data }, scope))
        }
        ast::TableFactor::Derived {
            subquery,
            alias,
            lateral,
            ..
        } => {
            if *lateral {
                return Err(SqlError::Unsupported("LATERAL".into()));
            }
            let p = plan_query(subquery, cx)?;
            let mut scope = p.scope();
            if let Some(a) = alias {
                if !a.columns.is_empty() && a.columns.len() != scope.cols.len() {
                    return Err(SqlError::DerivedColumnCount);
                }
                scope = scope.with_qualifier(&a.name.value);
                for (sc, ac) in scope.cols.iter_mut().zip(&a.columns) {
                    sc.name = ac.name.value.clone();
                }
            }
            Ok((p.plan, scope))
        }
        ast::TableFactor::NestedJoin {
            table_with_joins,
            alias,
        } => {
            let (p, s) = plan_from_item(table_with_joins, cx, c)?;
            Ok((
                p,
                match alias {
                    Some(a) => s.with_qualifier(&a.name.value),
                    None => s,
                },
            ))
        }
        other => Err(SqlError::Unsupported(format!("the FROM item {other}"))),
    }
}

fn join(
    left: (Plan, Scope),
    right: (Plan, Scope),
    kind: JoinKind,
    on: Option<&ast::Expr>,
    using: &[String],
    c: &Compiler<'_>,
) -> Result<(Plan, Scope), SqlError> {
    let (lp, ls) = left;
    let (rp, rs) = right;
    let both = ls.concat(&rs);
    let mut conjuncts = Vec::new();
    if let Some(on) = on {
        split_and(on, &mut conjuncts);
    }
    let (mut lk, mut rk, mut residual) = (Vec::new(), Vec::new(), Vec::new());
    for u in using {
        let id = [ast::Ident::new(u)];
        lk.push(Expr::Column(ls.resolve(&id, "from clause")?));
        rk.push(Expr::Column(rs.resolve(&id, "from clause")?));
    }
    for conj in &conjuncts {
        // Checks names (and ambiguity) against both sides first.
        let whole = c.compile(conj, &both, "on clause")?;
        if let ast::Expr::BinaryOp {
            left: a,
            op: ast::BinaryOperator::Eq,
            right: b,
        } = conj
        {
            let pair = match (
                c.compile(a, &ls, "on clause"),
                c.compile(b, &rs, "on clause"),
            ) {
                (Ok(x), Ok(y)) => Some((x, y)),
                _ => match (
                    c.compile(b, &ls, "on clause"),
                    c.compile(a, &rs, "on clause"),
                ) {
                    (Ok(x), Ok(y)) => Some((x, y)),
                    _ => None,
                },
            };
            if let Some((x, y)) = pair {
                lk.push(x);
                rk.push(y);
                continue;
            }
        }
        residual.push(whole);
    }
    let mut residual = residual.into_iter();
    let residual = residual
        .next()
        .map(|first| chain(first, residual.map(|x| (BinOp::And, x)).collect()));
    let (lt, rt) = (ls.types(), rs.types());
    let int_keys = lk.len() == 1
        && lk[0].data_type(&lt) == DataType::Int
        && rk[0].data_type(&rt) == DataType::Int;
    let mut text = lk
        .iter()
        .zip(&rk)
        .map(|(a, b)| format!("{} = {}", a.display(&ls.names()), b.display(&rs.names())))
        .collect::<Vec<_>>()
        .join(" AND ");
    if let Some(r) = &residual {
        text.push_str(&format!(" filter {}", r.display(&both.names())));
    }
    let mut out_scope = both;
    if kind == JoinKind::Left {
        // Right columns can be NULL now; types are unchanged.
        out_scope = Scope {
            cols: out_scope.cols,
        };
    }
    Ok((
        Plan::Join {
            left: Box::new(lp),
            right: Box::new(rp),
            left_keys: lk,
            right_keys: rk,
            int_keys,
            residual,
            kind,
            right_types: rt,
            text,
        },
        out_scope,
    ))
}

fn plan_from_item(
    t: &ast::TableWithJoins,
    cx: &PlanCx<'_>,
    c: &Compiler<'_>,
) -> Result<(Plan, Scope), SqlError> {
    let mut acc = plan_factor(&t.relation, cx, c)?;
    for j in &t.joins {
        let right = plan_factor(&j.relation, cx, c)?;
        let (kind, constraint) = match &j.join_operator {
            ast::JoinOperator::Join(k)
            | ast::JoinOperator::Inner(k)
            | ast::JoinOperator::StraightJoin(k) => (JoinKind::Inner, Some(k)),
            ast::JoinOperator::Left(k) | ast::JoinOperator::LeftOuter(k) => {
                (JoinKind::Left, Some(k))
            }
            ast::JoinOperator::CrossJoin(k) => (JoinKind::Inner, Some(k)),
            other => {
                return Err(SqlError::Unsupported(
                    format!("the join {other:?}").chars().take(60).collect(),
                ))
            }
        };
        let (on, using): (Option<&ast::Expr>, Vec<String>) = match constraint {
            Some(ast::JoinConstraint::On(e)) => (Some(e), vec![]),
            Some(ast::JoinConstraint::Using(cols)) => (None, cols.iter().map(ident_name).collect()),
            Some(ast::JoinConstraint::UsingAlias(..)) => {
                return Err(SqlError::Unsupported("USING … AS".into()))
            }
            Some(ast::JoinConstraint::None) | None => (None, vec![]),
            Some(ast::JoinConstraint::Natural) => {
                return Err(SqlError::Unsupported("NATURAL JOIN".into()))
            }
        };
        acc = join(acc, right, kind, on, &using, c)?;
    }
    Ok(acc)
}

fn plan_from(
    from: &[ast::TableWithJoins],
    cx: &PlanCx<'_>,
    c: &Compiler<'_>,
) -> Result<(Plan, Scope), SqlError> {
    // MySQL's limit, and a bound on the depth of the join tree.
    let tables: usize = from.iter().map(|t| 1 + t.joins.len()).sum();
    if tables > MAX_JOIN_TABLES {
        return Err(SqlError::TooManyTables(MAX_JOIN_TABLES));
    }
    let mut it = from.iter();
    let Some(first) = it.next() else {
        return Ok((
            Plan::Values {
                rows: vec![vec![]],
                types: vec![],
            },
            Scope::default(),
        ));
    };
    let mut acc = plan_from_item(first, cx, c)?;
    for t in it {
        let right = plan_from_item(t, cx, c)?;
        acc = join(acc, right, JoinKind::Inner, None, &[], c)?;
    }
    Ok(acc)
}

fn plan_select(
    s: &ast::Select,
    shape: &Shape<'_>,
    cx: &PlanCx<'_>,
    c: &Compiler<'_>,
) -> Result<Planned, SqlError> {
    if s.into.is_some()
        || !s.lateral_views.is_empty()
        || s.qualify.is_some()
        || !s.named_window.is_empty()
        || s.top.is_some()
    {
        return Err(SqlError::Unsupported("this SELECT form".into()));
    }
    // `SELECT ALL` is the default, not `DISTINCT ON`.
    let distinct = match &s.distinct {
        None | Some(ast::Distinct::All) => false,
        Some(ast::Distinct::Distinct) => true,
        Some(ast::Distinct::On(_)) => return Err(SqlError::Unsupported("DISTINCT ON".into())),
    };
    // Before anything else, so that a window function is never answered as
    // a grouping error (1055).
    let windowed = s.projection.iter().any(|it| match it {
        ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
            contains_window(e)
        }
        _ => false,
    }) || s.having.as_ref().is_some_and(contains_window)
        || s.selection.as_ref().is_some_and(contains_window)
        || shape.order.iter().any(|o| contains_window(&o.expr));
    if windowed {
        return Err(SqlError::Unsupported("window functions (OVER …)".into()));
    }
    let (mut plan, scope) = plan_from(&s.from, cx, c)?;
    if let Some(w) = &s.selection {
        if contains_agg(w) {
            return Err(SqlError::InvalidGroupFunction);
        }
        let pred = c.compile(w, &scope, "where clause")?;
        plan = Plan::Filter {
            input: Box::new(plan),
            text: pred.display(&scope.names()),
            pred,
        };
    }
    // Select items as (ast, output name).
    let mut items: Vec<(ast::Expr, String)> = Vec::new();
    for it in &s.projection {
        match it {
            ast::SelectItem::UnnamedExpr(e) => {
                let name = match e {
                    ast::Expr::Identifier(i) => i.value.clone(),
                    ast::Expr::CompoundIdentifier(p) => {
                        p.last().map(|i| i.value.clone()).unwrap_or_default()
                    }
                    other => other.to_string(),
                };
                items.push((e.clone(), name));
            }
            ast::SelectItem::ExprWithAlias { expr, alias } => {
                items.push((expr.clone(), alias.value.clone()))
            }
            ast::SelectItem::ExprWithAliases { .. } => {
                return Err(SqlError::Unsupported("multiple aliases".into()))
            }
            ast::SelectItem::Wildcard(_) => {
                for col in &scope.cols {
                    items.push((col_ast(col), col.name.clone()));
                }
            }
            ast::SelectItem::QualifiedWildcard(kind, _) => {
                let q = kind.to_string().to_lowercase();
                let q = q
                    .trim_end_matches(".*")
                    .rsplit('.')
                    .next()
                    .unwrap_or("")
                    .to_owned();
                let before = items.len();
                for col in scope
                    .cols
                    .iter()
                    .filter(|col| col.qualifier.as_deref() == Some(q.as_str()))
                {
                    items.push((col_ast(col), col.name.clone()));
                }
                if items.len() == before {
                    return Err(SqlError::UnknownTable(q));
                }
            }
        }
    }
    let group_by: Vec<ast::Expr> = match &s.group_by {
        ast::GroupByExpr::Expressions(v, mods) if mods.is_empty() => v.clone(),
        ast::GroupByExpr::Expressions(..) | ast::GroupByExpr::All(_) => {
            return Err(SqlError::Unsupported("GROUP BY modifiers".into()))
        }
    };
    let aggregating = !group_by.is_empty()
        || items.iter().any(|(e, _)| contains_agg(e))
        || s.having.as_ref().is_some_and(contains_agg)
        || shape.order.iter().any(|o| contains_agg(&o.expr));
    let alias_of = |name: &str| {
        items
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(e, _)| e.clone())
    };

    // The scope the select items are compiled in, and the aggregation.
    let mut agg_cx: Option<AggCx> = None;
    if aggregating {
        let mut group_asts = Vec::new();
        let mut group_exprs = Vec::new();
        for g in &group_by {
            let resolved = match g {
                ast::Expr::Value(v) if matches!(v.value, ast::Value::Number(..)) => {
                    let n = const_int(c, g, "GROUP BY")?;
                    items
                        .get((n as usize).wrapping_sub(1))
                        .map(|(e, _)| e.clone())
                        .ok_or(SqlError::UnknownColumn {
                            name: n.to_string(),
                            clause: "group statement",
                        })?
                }
                ast::Expr::Identifier(i)
                    if scope
                        .resolve(std::slice::from_ref(i), "group statement")
                        .is_err() =>
                {
                    alias_of(&i.value).unwrap_or_else(|| g.clone())
                }
                other => other.clone(),
            };
            if contains_agg(&resolved) {
                return Err(SqlError::InvalidGroupFunction);
            }
            group_exprs.push(c.compile(&resolved, &scope, "group statement")?);
            group_asts.push(resolved.to_string().to_lowercase());
        }
        let group_types = group_exprs
            .iter()
            .map(|e| e.data_type(&scope.types()))
            .collect();
        agg_cx = Some(AggCx {
            group_asts,
            group_exprs,
            group_types,
            aggs: Vec::new(),
            agg_asts: Vec::new(),
            input: scope.clone(),
            aliases: items.iter().map(|(e, n)| (n.clone(), e.clone())).collect(),
        });
    }
    let compile_item =
        |e: &ast::Expr, clause: &'static str, agg: &mut Option<AggCx>| -> Result<Expr, SqlError> {
            match agg {
                Some(a) => {
                    let mut r = Some(&mut *a);
                    c.compile_in(e, &Scope::default(), clause, &mut r)
                }
                None => c.compile(e, &scope, clause),
            }
        };
    let mut exprs = Vec::new();
    for (e, _) in &items {
        exprs.push(compile_item(e, "field list", &mut agg_cx)?);
    }
    let having = match &s.having {
        Some(h) => Some(compile_item(h, "having clause", &mut agg_cx)?),
        None => None,
    };
    // ORDER BY keys: a select column, or a hidden extra column.
    let visible = exprs.len();
    let names: Vec<String> = items.iter().map(|(_, n)| n.clone()).collect();
    let mut sort_keys = Vec::new();
    for o in &shape.order {
        let col = match &o.expr {
            ast::Expr::Value(v) if matches!(v.value, ast::Value::Number(..)) => {
                let n = const_int(c, &o.expr, "ORDER BY")?;
                if n < 1 || n as usize > visible {
                    return Err(SqlError::UnknownColumn {
                        name: n.to_string(),
                        clause: "order clause",
                    });
                }
                n as usize - 1
            }
            e => {
                let text = e.to_string().to_lowercase();
                let by_alias = match e {
                    ast::Expr::Identifier(i) => {
                        names.iter().position(|n| n.eq_ignore_ascii_case(&i.value))
                    }
                    _ => None,
                };
                match by_alias.or_else(|| {
                    items
                        .iter()
                        .position(|(x, _)| x.to_string().to_lowercase() == text)
                }) {
                    Some(i) => i,
                    None => {
                        if distinct {
                            return Err(SqlError::Unsupported("ORDER BY an expression not in the SELECT list of a SELECT DISTINCT".into()));
                        }
                        exprs.push(compile_item(e, "order clause", &mut agg_cx)?);
                        exprs.len() - 1
                    }
                }
            }
        };
        sort_keys.push(SortKey {
            expr: Expr::Column(col),
            desc: is_desc(o),
        });
    }
    // Assemble: aggregate, having, project, distinct, sort, limit, trim.
    let pre_scope_types;
    let pre_names;
    if let Some(a) = agg_cx {
        let mut key_types = a.group_types.clone();
        key_types.extend(a.aggs.iter().map(|x| x.output_type()));
        let input_names = a.input.names();
        let text = format!(
            "group by [{}] aggregates [{}]",
            names_text(&a.group_exprs, &input_names),
            a.aggs
                .iter()
                .map(|x| x.text.clone())
                .collect::<Vec<_>>()
                .join(", ")
        );
        pre_names = a
            .group_asts
            .iter()
            .cloned()
            .chain(a.aggs.iter().map(|x| x.text.clone()))
            .collect::<Vec<_>>();
        plan = Plan::Aggregate {
            input: Box::new(plan),
            keys: a.group_exprs,
            key_types: a.group_types,
            aggs: a.aggs,
            text,
        };
        pre_scope_types = key_types;
        if let Some(h) = having {
            plan = Plan::Filter {
                input: Box::new(plan),
                text: h.display(&pre_names),
                pred: h,
            };
        }
    } else {
        if having.is_some() {
            return Err(SqlError::Unsupported(
                "HAVING without GROUP BY or aggregates".into(),
            ));
        }
        pre_scope_types = scope.types();
        pre_names = scope.names();
    }
    let types: Vec<DataType> = exprs
        .iter()
        .map(|e| e.data_type(&pre_scope_types))
        .collect();
    let ptext = names_text(&exprs, &pre_names);
    plan = Plan::Project {
        input: Box::new(plan),
        exprs,
        types: types.clone(),
        text: ptext,
    };
    if distinct {
        let keys: Vec<Expr> = (0..visible).map(Expr::Column).collect();
        plan = Plan::Aggregate {
            input: Box::new(plan),
            text: format!("distinct {}", names.join(", ")),
            keys,
            key_types: types[..visible].to_vec(),
            aggs: vec![],
        };
    }
    let mut all_names = names.clone();
    while all_names.len() < types.len() {
        all_names.push(format!("#{}", all_names.len()));
    }
    if !sort_keys.is_empty() {
        let text = sort_keys
            .iter()
            .map(|k| {
                format!(
                    "{}{}",
                    k.expr.display(&all_names),
                    if k.desc { " DESC" } else { "" }
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        plan = Plan::Sort {
            input: Box::new(plan),
            keys: sort_keys,
            limit: shape
                .limit
                .map(|l| l.saturating_add(shape.offset).min(usize::MAX as u64) as usize),
            text,
        };
    }
    if shape.limit.is_some() || shape.offset > 0 {
        plan = Plan::Limit {
            input: Box::new(plan),
            offset: shape.offset,
            limit: shape.limit,
        };
    }
    if types.len() > visible {
        let keep: Vec<Expr> = (0..visible).map(Expr::Column).collect();
        plan = Plan::Project {
            input: Box::new(plan),
            text: names.join(", "),
            exprs: keep,
            types: types[..visible].to_vec(),
        };
    }
    Ok(Planned {
        plan,
        names,
        types: types[..visible].to_vec(),
    })
}

fn col_ast(col: &ScopeCol) -> ast::Expr {
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
    clause: &'static str,
) -> Result<Expr, SqlError> {
    let c = Compiler {
        connection_id,
        cx: None,
    };
    if contains_agg(e) {
        return Err(SqlError::InvalidGroupFunction);
    }
    c.compile(e, &Scope::of_table(table, &table.name), clause)
}

/// Compiles a constant expression (INSERT … VALUES, SET).
pub fn compile_const(e: &ast::Expr, connection_id: u64) -> Result<Expr, SqlError> {
    let c = Compiler {
        connection_id,
        cx: None,
    };
    c.compile(e, &Scope::default(), "field list")
}
