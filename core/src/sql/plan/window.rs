//! Planning window functions (`f(…) OVER (…)`) of a SELECT.
//!
//! MySQL computes windows after `GROUP BY` / `HAVING` and before `DISTINCT`,
//! `ORDER BY` and `LIMIT`; they may appear in the select list and in
//! `ORDER BY`, nowhere else (3593). The planner:
//! 1. [`WindowCalls::collect`] finds the calls of the select list and ORDER BY,
//!    resolving named windows (`WINDOW w AS (…)`, `OVER w`, `OVER (w ORDER
//!    BY …)`) with MySQL's rules;
//! 2. compiles every expression with the calls standing for columns
//!    `WINDOW_BASE + k` ([`WindowCalls::slot`]: the compiler's hook), and
//!    each call's arguments, partitioning and ordering
//!    ([`WindowCalls::compile`]) in the same scope as the select list (so
//!    `rank() OVER (ORDER BY sum(x))` adds `sum(x)` to the aggregation);
//! 3. once the width of the rows before the windows is known, plans one
//!    [`Window`](crate::pipeline::window::Window) operator per distinct
//!    window (partitioning and ordering) over them ([`CompiledWindows::plan`]),
//!    each appending its calls' columns, and [`rebase`]s the placeholders to
//!    those columns.

use sqlparser::ast;

use super::compile::{func_args, walk, AGG_NAMES};
use crate::data::{Batch, DataType, Value};
use crate::expr::{EvalCx, Expr};
use crate::pipeline::aggregate::AggFunc;
use crate::pipeline::sort::SortKey;
use crate::pipeline::window::{Frame, FrameBound, FrameUnits, WindowCall, WindowFunc};
use crate::sql::error::SqlError;

/// Window calls compile to `Expr::Column(WINDOW_BASE + k)` until their
/// columns are known ([`rebase`]); no real row is this wide. A quarter of
/// the address space, so it fits a 32-bit `usize` (wasm32: `1 << 40` did
/// not compile there), below the subqueries' placeholders (`usize::MAX / 2`).
pub const WINDOW_BASE: usize = 1 << (usize::BITS - 2);

/// What MySQL calls a window without a name in its errors.
const UNNAMED: &str = "<unnamed window>";

/// The errors of window functions, with MySQL's codes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// A window function where none may be (WHERE, GROUP BY, HAVING, inside
    /// an aggregate or another window function, UPDATE / DELETE).
    #[error("You cannot use the window function '{0}' in this context.'")]
    InvalidUse(String),
    /// `OVER w` without `WINDOW w AS (…)`.
    #[error("Window name '{0}' is not defined.")]
    NoSuchWindow(String),
    /// Named windows that refer to each other in a circle.
    #[error("There is a circularity in the window dependency graph.")]
    Circularity,
    /// A window based on another that adds PARTITION BY.
    #[error("A window which depends on another cannot define partitioning.")]
    ChildPartitioning,
    /// A window based on another that has a frame.
    #[error("Window '{0}' has a frame definition, so cannot be referenced by another window.")]
    InheritFrame(String),
    /// A window based on another where both have ORDER BY.
    #[error("Window '{0}' cannot inherit '{1}' since both contain an ORDER BY clause.")]
    RedefineOrderBy(String, String),
    /// A frame starting at UNBOUNDED FOLLOWING.
    #[error("Window '{0}': frame start cannot be UNBOUNDED FOLLOWING.")]
    FrameStart(String),
    /// A frame ending at UNBOUNDED PRECEDING.
    #[error("Window '{0}': frame end cannot be UNBOUNDED PRECEDING.")]
    FrameEnd(String),
    /// A negative, NULL or (for ROWS) non-integral frame offset.
    #[error("Window '{0}': frame start or end is negative, NULL or of non-integral type")]
    FrameIllegal(String),
    /// RANGE with an offset, without exactly one numeric ORDER BY key.
    #[error("Window '{0}' with RANGE N PRECEDING/FOLLOWING frame requires exactly one ORDER BY expression, of numeric or temporal type")]
    RangeOrder(String),
    /// A frame offset that is not a constant.
    #[error("Window '{0}' has a non-constant frame bound.")]
    BoundNotConstant(String),
    /// Two definitions of one window name.
    #[error("Window '{0}' is defined twice.")]
    DuplicateName(String),
    /// `PARTITION BY 1` / `ORDER BY 1` in a window.
    #[error("Window '{0}': ORDER BY or PARTITION BY uses legacy position indication which is not supported, use expression.")]
    Position(String),
    /// A window function in a window's PARTITION BY or ORDER BY.
    #[error("You cannot nest a window function in the specification of window '{0}'.")]
    Nested(String),
    /// A bad argument: NTILE's bucket count, LAG / LEAD's offset.
    #[error("Incorrect arguments to {0}")]
    WrongArguments(String),
}

impl WindowError {
    /// MySQL code and SQLSTATE.
    pub fn codes(&self) -> (u16, &'static str) {
        let code = match self {
            WindowError::InvalidUse(_) => 3593,
            WindowError::NoSuchWindow(_) => 3579,
            WindowError::Circularity => 3580,
            WindowError::ChildPartitioning => 3581,
            WindowError::InheritFrame(_) => 3582,
            WindowError::RedefineOrderBy(..) => 3583,
            WindowError::FrameStart(_) => 3584,
            WindowError::FrameEnd(_) => 3585,
            WindowError::FrameIllegal(_) => 3586,
            WindowError::RangeOrder(_) => 3587,
            WindowError::BoundNotConstant(_) => 3590,
            WindowError::DuplicateName(_) => 3591,
            WindowError::Position(_) => 3592,
            WindowError::Nested(_) => 3595,
            WindowError::WrongArguments(_) => 1210,
        };
        (code, "HY000")
    }
}

/// The name MySQL gives a window function in its errors (`row_number`).
fn func_name(f: &ast::Function) -> String {
    f.name.to_string().to_lowercase()
}

/// The first window function call in `e`, if any (a walk over what the
/// compiler compiles).
pub(super) fn first_window(e: &ast::Expr) -> Option<String> {
    let mut found = None;
    walk(e, &mut |x| {
        if let ast::Expr::Function(f) = x {
            if f.over.is_some() && found.is_none() {
                found = Some(func_name(f));
            }
        }
    });
    found
}

/// A window's definition after named windows are resolved.
#[derive(Clone, Debug)]
struct Spec {
    name: String,
    partition: Vec<ast::Expr>,
    order: Vec<ast::OrderByExpr>,
    frame: Option<ast::WindowFrame>,
}

/// A window call found in a SELECT.
#[derive(Debug)]
struct Found {
    call: ast::Function,
    spec: Spec,
}

/// The window calls of one SELECT, each with its slot `k` (its placeholder
/// column is `WINDOW_BASE + k`).
#[derive(Debug, Default)]
pub struct WindowCalls {
    found: Vec<Found>,
}

fn resolve_named(
    name: &ast::Ident,
    named: &[ast::NamedWindowDefinition],
    depth: usize,
) -> Result<Spec, WindowError> {
    if depth > named.len() {
        return Err(WindowError::Circularity);
    }
    let def = named
        .iter()
        .find(|d| d.0.value.eq_ignore_ascii_case(&name.value))
        .ok_or_else(|| WindowError::NoSuchWindow(name.value.clone()))?;
    match &def.1 {
        ast::NamedWindowExpr::NamedWindow(other) => {
            let mut s = resolve_named(other, named, depth + 1)?;
            s.name = def.0.value.clone();
            Ok(s)
        }
        ast::NamedWindowExpr::WindowSpec(spec) => {
            resolve_spec(spec, &def.0.value, named, depth + 1)
        }
    }
}

/// Resolves `spec` (named `name` in errors), which may build on a named
/// window: it may add ORDER BY (if the base has none) and a frame, but not
/// PARTITION BY, and the base may not have a frame.
fn resolve_spec(
    spec: &ast::WindowSpec,
    name: &str,
    named: &[ast::NamedWindowDefinition],
    depth: usize,
) -> Result<Spec, WindowError> {
    let Some(base_name) = &spec.window_name else {
        return Ok(Spec {
            name: name.to_owned(),
            partition: spec.partition_by.clone(),
            order: spec.order_by.clone(),
            frame: spec.window_frame.clone(),
        });
    };
    let base = resolve_named(base_name, named, depth)?;
    if !spec.partition_by.is_empty() {
        return Err(WindowError::ChildPartitioning);
    }
    if base.frame.is_some() {
        return Err(WindowError::InheritFrame(base.name));
    }
    if !spec.order_by.is_empty() && !base.order.is_empty() {
        return Err(WindowError::RedefineOrderBy(name.to_owned(), base.name));
    }
    Ok(Spec {
        name: name.to_owned(),
        partition: base.partition,
        order: if spec.order_by.is_empty() {
            base.order
        } else {
            spec.order_by.clone()
        },
        frame: spec.window_frame.clone(),
    })
}

impl WindowCalls {
    /// Finds the window calls of `exprs` (the select list and ORDER BY),
    /// resolving their windows against `named` (the WINDOW clause).
    pub fn collect(
        exprs: &[&ast::Expr],
        named: &[ast::NamedWindowDefinition],
    ) -> Result<WindowCalls, SqlError> {
        for (i, d) in named.iter().enumerate() {
            if named[..i]
                .iter()
                .any(|o| o.0.value.eq_ignore_ascii_case(&d.0.value))
            {
                return Err(WindowError::DuplicateName(d.0.value.clone()).into());
            }
            // Every definition must resolve, used or not.
            resolve_named(&d.0, named, 0)?;
        }
        let mut calls: Vec<ast::Function> = Vec::new();
        let mut err = None;
        for e in exprs {
            walk(e, &mut |x| {
                let ast::Expr::Function(f) = x else { return };
                if f.over.is_none() {
                    // An aggregate may not hold a window function.
                    if err.is_none() {
                        if let ast::FunctionArguments::List(l) = &f.args {
                            for a in &l.args {
                                if let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(a)) = a
                                {
                                    if let Some(w) = first_window(a) {
                                        if is_aggregate(f) {
                                            err = Some(WindowError::InvalidUse(w));
                                        }
                                    }
                                }
                            }
                        }
                    }
                    return;
                }
                if !calls.contains(f) {
                    calls.push(f.clone());
                }
            });
        }
        if let Some(e) = err {
            return Err(e.into());
        }
        let mut found = Vec::with_capacity(calls.len());
        for call in calls {
            let spec = match &call.over {
                Some(ast::WindowType::NamedWindow(n)) => resolve_named(n, named, 0)?,
                Some(ast::WindowType::WindowSpec(s)) => resolve_spec(s, UNNAMED, named, 0)?,
                None => continue,
            };
            // No window function inside a window function's arguments or
            // window.
            if let ast::FunctionArguments::List(l) = &call.args {
                for a in &l.args {
                    if let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(a)) = a {
                        if let Some(w) = first_window(a) {
                            return Err(WindowError::InvalidUse(w).into());
                        }
                    }
                }
            }
            for e in spec
                .partition
                .iter()
                .chain(spec.order.iter().map(|o| &o.expr))
            {
                if first_window(e).is_some() {
                    return Err(WindowError::Nested(spec.name.clone()).into());
                }
                if matches!(e, ast::Expr::Value(v) if matches!(v.value, ast::Value::Number(..))) {
                    return Err(WindowError::Position(spec.name.clone()).into());
                }
            }
            found.push(Found { call, spec });
        }
        Ok(WindowCalls { found })
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// The slot of call `f` (its placeholder column is `WINDOW_BASE +
    /// slot`).
    pub fn slot(&self, f: &ast::Function) -> Option<usize> {
        self.found.iter().position(|x| x.call == *f)
    }

    /// The expressions of the windows' PARTITION BY and ORDER BY (an
    /// aggregate there makes the SELECT an aggregation).
    pub fn spec_exprs(&self) -> impl Iterator<Item = &ast::Expr> {
        self.found.iter().flat_map(|f| {
            f.spec
                .partition
                .iter()
                .chain(f.spec.order.iter().map(|o| &o.expr))
        })
    }

    /// Compiles each call's arguments, partitioning and ordering with
    /// `compile` (the select list's scope), and checks its frame.
    pub fn compile(
        &self,
        compile: &mut dyn FnMut(&ast::Expr, &'static str) -> Result<Expr, SqlError>,
    ) -> Result<CompiledWindows, SqlError> {
        let mut calls = Vec::with_capacity(self.found.len());
        for f in &self.found {
            let name = func_name(&f.call);
            let (args, distinct, star) = func_args(&f.call)?;
            if distinct {
                return Err(SqlError::Unsupported(format!(
                    "'{name}(DISTINCT ..)' as a window function"
                )));
            }
            if f.call.filter.is_some()
                || f.call.null_treatment.is_some()
                || !f.call.within_group.is_empty()
            {
                return Err(SqlError::Unsupported(format!(
                    "this form of the window function {name}"
                )));
            }
            let arity = |lo: usize, hi: usize| {
                if star || args.len() < lo || args.len() > hi {
                    Err(SqlError::WrongArgs(name.clone()))
                } else {
                    Ok(())
                }
            };
            let mut compiled = Vec::new();
            let func = match name.as_str() {
                "row_number" | "rank" | "dense_rank" => {
                    arity(0, 0)?;
                    match name.as_str() {
                        "row_number" => WindowFunc::RowNumber,
                        "rank" => WindowFunc::Rank,
                        _ => WindowFunc::DenseRank,
                    }
                }
                "percent_rank" | "cume_dist" => {
                    arity(0, 0)?;
                    if name == "percent_rank" {
                        WindowFunc::PercentRank
                    } else {
                        WindowFunc::CumeDist
                    }
                }
                "nth_value" => {
                    arity(2, 2)?;
                    compiled.push(compile(args[0], "field list")?);
                    match constant_arg(args[1], &name, compile)? {
                        Some(n) if n >= 1 => WindowFunc::NthValue(n as u64),
                        _ => return Err(WindowError::WrongArguments(name).into()),
                    }
                }
                "ntile" => {
                    arity(1, 1)?;
                    let n = constant_arg(args[0], &name, compile)?;
                    match n {
                        Some(n) if n >= 1 => WindowFunc::Ntile(n as u64),
                        _ => return Err(WindowError::WrongArguments(name).into()),
                    }
                }
                "lag" | "lead" => {
                    arity(1, 3)?;
                    compiled.push(compile(args[0], "field list")?);
                    let k = match args.get(1) {
                        Some(a) => match constant_arg(a, &name, compile)? {
                            Some(k) if k >= 0 => k as u64,
                            _ => return Err(WindowError::WrongArguments(name).into()),
                        },
                        None => 1,
                    };
                    if let Some(d) = args.get(2) {
                        compiled.push(compile(d, "field list")?);
                    }
                    if name == "lag" {
                        WindowFunc::Lag(k)
                    } else {
                        WindowFunc::Lead(k)
                    }
                }
                "first_value" | "last_value" => {
                    arity(1, 1)?;
                    compiled.push(compile(args[0], "field list")?);
                    if name == "first_value" {
                        WindowFunc::FirstValue
                    } else {
                        WindowFunc::LastValue
                    }
                }
                "count" if star && args.is_empty() => WindowFunc::Agg(AggFunc::CountStar),
                "count" | "sum" | "avg" | "min" | "max" => {
                    arity(1, 1)?;
                    compiled.push(compile(args[0], "field list")?);
                    WindowFunc::Agg(match name.as_str() {
                        "count" => AggFunc::Count,
                        "sum" => AggFunc::Sum,
                        "avg" => AggFunc::Avg,
                        "min" => AggFunc::Min,
                        _ => AggFunc::Max,
                    })
                }
                _ => {
                    return Err(SqlError::Unsupported(format!(
                        "{name}() as a window function"
                    )))
                }
            };
            let mut partition = Vec::new();
            for e in &f.spec.partition {
                partition.push(compile(e, "window partition by")?);
            }
            let mut order = Vec::new();
            for o in &f.spec.order {
                order.push(SortKey {
                    expr: compile(&o.expr, "window order by")?,
                    desc: matches!(o.options.sort, Some(ast::OrderBySort::Desc)),
                });
            }
            let frame = match &f.spec.frame {
                None => Frame::default_for(!order.is_empty()),
                Some(fr) => frame(fr, &f.spec.name, order.len(), compile)?,
            };
            calls.push(Pending {
                func,
                args: compiled,
                frame,
                partition,
                order,
                text: format!("{}", f.call),
            });
        }
        Ok(CompiledWindows { calls })
    }
}

/// Whether `f` is an aggregate call (which may not hold a window function).
fn is_aggregate(f: &ast::Function) -> bool {
    AGG_NAMES.contains(&func_name(f).as_str())
}

/// The value of a constant expression; `None` when it reads a column.
fn constant(e: &Expr) -> Result<Option<Value>, SqlError> {
    let mut reads = false;
    e.visit(&mut |x| reads |= matches!(x, Expr::Column(_)));
    if reads {
        return Ok(None);
    }
    let mut cx = EvalCx::default();
    let v = e
        .eval_row(&Batch::new(Vec::new(), 1), 0, &mut cx)
        .map_err(|err| SqlError::InvalidValue(err.to_string()))?;
    if cx.sleep_owed > 0.0 {
        return Err(SqlError::Unsupported(
            "SLEEP() in a window function's constant argument".into(),
        ));
    }
    Ok(Some(v))
}

/// An integer constant argument of `name` (NTILE's count, LAG's offset):
/// `None` when it is NULL or not an integer; 1210 when not a constant.
fn constant_arg(
    e: &ast::Expr,
    name: &str,
    compile: &mut dyn FnMut(&ast::Expr, &'static str) -> Result<Expr, SqlError>,
) -> Result<Option<i64>, SqlError> {
    let c = compile(e, "field list")?;
    match constant(&c)? {
        None => Err(WindowError::WrongArguments(name.to_owned()).into()),
        Some(Value::Int(i)) => Ok(Some(i)),
        Some(Value::Float(f)) if f.fract() == 0.0 && f.abs() < 9.0e18 => Ok(Some(f as i64)),
        Some(Value::Decimal(d)) if d.value().fract().is_zero() => Ok(d.to_i64()),
        Some(_) => Ok(None),
    }
}

/// The frame `fr` of window `name` (with `keys` ORDER BY keys), checked as
/// MySQL does.
fn frame(
    fr: &ast::WindowFrame,
    name: &str,
    keys: usize,
    compile: &mut dyn FnMut(&ast::Expr, &'static str) -> Result<Expr, SqlError>,
) -> Result<Frame, SqlError> {
    let units = match fr.units {
        ast::WindowFrameUnits::Rows => FrameUnits::Rows,
        ast::WindowFrameUnits::Range => FrameUnits::Range,
        ast::WindowFrameUnits::Groups => return Err(SqlError::Unsupported("GROUPS frames".into())),
    };
    let mut bound = |b: &ast::WindowFrameBound| -> Result<FrameBound, SqlError> {
        let offset =
            |e: &ast::Expr,
             compile: &mut dyn FnMut(&ast::Expr, &'static str) -> Result<Expr, SqlError>|
             -> Result<Value, SqlError> {
                let c = compile(e, "window frame")?;
                let v =
                    constant(&c)?.ok_or_else(|| WindowError::BoundNotConstant(name.to_owned()))?;
                let ok = match (&v, units) {
                    (Value::Int(i), _) => *i >= 0,
                    (Value::Float(f), FrameUnits::Range) => *f >= 0.0,
                    // `1.5` is a DECIMAL literal (issue 9).
                    (Value::Decimal(d), FrameUnits::Range) => d.to_f64() >= 0.0,
                    _ => false,
                };
                if !ok {
                    return Err(WindowError::FrameIllegal(name.to_owned()).into());
                }
                Ok(v)
            };
        Ok(match b {
            ast::WindowFrameBound::CurrentRow => FrameBound::CurrentRow,
            ast::WindowFrameBound::Preceding(None) => FrameBound::UnboundedPreceding,
            ast::WindowFrameBound::Following(None) => FrameBound::UnboundedFollowing,
            ast::WindowFrameBound::Preceding(Some(e)) => FrameBound::Preceding(offset(e, compile)?),
            ast::WindowFrameBound::Following(Some(e)) => FrameBound::Following(offset(e, compile)?),
        })
    };
    let start = bound(&fr.start_bound)?;
    let end = match &fr.end_bound {
        Some(b) => bound(b)?,
        None => FrameBound::CurrentRow,
    };
    if start == FrameBound::UnboundedFollowing {
        return Err(WindowError::FrameStart(name.to_owned()).into());
    }
    if end == FrameBound::UnboundedPreceding {
        return Err(WindowError::FrameEnd(name.to_owned()).into());
    }
    let has_offset =
        |b: &FrameBound| matches!(b, FrameBound::Preceding(_) | FrameBound::Following(_));
    if units == FrameUnits::Range && (has_offset(&start) || has_offset(&end)) && keys != 1 {
        return Err(WindowError::RangeOrder(name.to_owned()).into());
    }
    Ok(Frame { units, start, end })
}

/// A call compiled, before the columns before the windows are known.
#[derive(Debug)]
struct Pending {
    func: WindowFunc,
    args: Vec<Expr>,
    frame: Frame,
    partition: Vec<Expr>,
    order: Vec<SortKey>,
    text: String,
}

/// One Window operator to plan: a window and the calls computed over it.
#[derive(Debug)]
pub struct WindowNode {
    /// PARTITION BY.
    pub partition: Vec<Expr>,
    /// ORDER BY.
    pub order: Vec<SortKey>,
    /// The calls.
    pub calls: Vec<WindowCall>,
    /// EXPLAIN text.
    pub text: String,
}

/// The Window operators of a SELECT, planned.
#[derive(Debug)]
pub struct PlannedWindows {
    /// The operators, in the order to chain them.
    pub nodes: Vec<WindowNode>,
    /// The column of each call (by slot).
    pub cols: Vec<usize>,
    /// The types of the columns the operators append, in column order.
    pub types: Vec<DataType>,
}

/// The compiled window calls of a SELECT.
#[derive(Debug)]
pub struct CompiledWindows {
    calls: Vec<Pending>,
}

impl CompiledWindows {
    /// Groups the calls into Window operators over rows of `types` (the
    /// columns before the windows, named `names` for EXPLAIN).
    /// Checks what needs the types (RANGE offsets need a numeric key).
    pub fn plan(self, types: &[DataType], names: &[String]) -> Result<PlannedWindows, SqlError> {
        let mut nodes: Vec<WindowNode> = Vec::new();
        let mut slot_of: Vec<(usize, usize)> = Vec::with_capacity(self.calls.len());
        for p in self.calls {
            if p.frame.units == FrameUnits::Range
                && [&p.frame.start, &p.frame.end]
                    .iter()
                    .any(|b| matches!(b, FrameBound::Preceding(_) | FrameBound::Following(_)))
                && p.order.first().is_some_and(|k| {
                    !matches!(
                        k.expr.data_type(types),
                        DataType::Int | DataType::Float | DataType::Null
                    )
                })
            {
                return Err(WindowError::RangeOrder(UNNAMED.to_owned()).into());
            }
            let arg_types: Vec<DataType> = p.args.iter().map(|a| a.data_type(types)).collect();
            let arg = arg_types.first().copied().unwrap_or(DataType::Int);
            let out_type = match &p.func {
                WindowFunc::RowNumber
                | WindowFunc::Rank
                | WindowFunc::DenseRank
                | WindowFunc::Ntile(_) => DataType::Int,
                WindowFunc::PercentRank | WindowFunc::CumeDist => DataType::Float,
                WindowFunc::Lag(_) | WindowFunc::Lead(_) => {
                    arg_types.get(1).map_or(arg, |d| arg.unify(*d))
                }
                WindowFunc::FirstValue | WindowFunc::LastValue | WindowFunc::NthValue(_) => arg,
                WindowFunc::Agg(AggFunc::Count | AggFunc::CountStar) => DataType::Int,
                WindowFunc::Agg(AggFunc::Avg) => DataType::Float,
                WindowFunc::Agg(AggFunc::Sum) => match arg {
                    DataType::Int | DataType::Null => DataType::Int,
                    _ => DataType::Float,
                },
                WindowFunc::Agg(AggFunc::Min | AggFunc::Max) => arg,
            };
            let call = WindowCall {
                func: p.func,
                args: p.args,
                frame: p.frame,
                out_type,
                text: p.text,
            };
            let at = nodes
                .iter()
                .position(|n| n.partition == p.partition && n.order == p.order);
            let node = match at {
                Some(i) => i,
                None => {
                    let text = window_text(&p.partition, &p.order, names);
                    nodes.push(WindowNode {
                        partition: p.partition,
                        order: p.order,
                        calls: Vec::new(),
                        text,
                    });
                    nodes.len() - 1
                }
            };
            nodes[node].calls.push(call);
            slot_of.push((node, nodes[node].calls.len() - 1));
        }
        // Columns: the input's, then each node's calls in turn.
        let mut first = Vec::with_capacity(nodes.len());
        let mut col = types.len();
        let mut out_types = Vec::new();
        for n in &mut nodes {
            first.push(col);
            col += n.calls.len();
            out_types.extend(n.calls.iter().map(|c| c.out_type));
            n.text = format!(
                "{} [{}]",
                n.text,
                n.calls
                    .iter()
                    .map(|c| c.text.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let cols = slot_of.iter().map(|(n, i)| first[*n] + i).collect();
        Ok(PlannedWindows {
            nodes,
            cols,
            types: out_types,
        })
    }
}

fn window_text(partition: &[Expr], order: &[SortKey], names: &[String]) -> String {
    let mut parts = Vec::new();
    if !partition.is_empty() {
        parts.push(format!(
            "partition by {}",
            partition
                .iter()
                .map(|e| e.display(names))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !order.is_empty() {
        parts.push(format!(
            "order by {}",
            order
                .iter()
                .map(|k| format!(
                    "{}{}",
                    k.expr.display(names),
                    if k.desc { " DESC" } else { "" }
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    format!("({})", parts.join(" "))
}

/// Replaces the placeholder columns `WINDOW_BASE + k` in `e` with
/// `cols[k]`. (Compiled expressions are as deep as their bounded source
/// trees, see [`crate::sql::shape`].)
pub fn rebase(e: &mut Expr, cols: &[usize]) {
    match e {
        Expr::Column(i) => {
            if let Some(&c) = i.checked_sub(WINDOW_BASE).and_then(|k| cols.get(k)) {
                *i = c;
            }
        }
        Expr::Literal(_) | Expr::Param { .. } => {}
        Expr::Binary { l, r, .. } => {
            rebase(l, cols);
            rebase(r, cols);
        }
        Expr::Chain { first, rest } => {
            rebase(first, cols);
            rest.iter_mut().for_each(|(_, x)| rebase(x, cols));
        }
        Expr::Neg(x) | Expr::Not(x) | Expr::IsNull { e: x, .. } | Expr::Cast { e: x, .. } => {
            rebase(x, cols)
        }
        Expr::InList { e, list, .. } => {
            rebase(e, cols);
            list.iter_mut().for_each(|x| rebase(x, cols));
        }
        Expr::Between { e, lo, hi, .. } => {
            rebase(e, cols);
            rebase(lo, cols);
            rebase(hi, cols);
        }
        Expr::Like { e, pattern, .. } => {
            rebase(e, cols);
            rebase(pattern, cols);
        }
        Expr::Case {
            operand,
            whens,
            otherwise,
        } => {
            if let Some(o) = operand {
                rebase(o, cols);
            }
            for (w, t) in whens {
                rebase(w, cols);
                rebase(t, cols);
            }
            if let Some(o) = otherwise {
                rebase(o, cols);
            }
        }
        Expr::Func { args, .. } => args.iter_mut().for_each(|a| rebase(a, cols)),
    }
}
