//! Binary operators: one operation on two values ([`scalar_binop`]), the
//! typed column kernels for integers and floats, and the fused integer
//! selections ([`Expr::select_rows`]).

use std::cmp::Ordering;
use std::sync::Arc;

use super::func::BIGINT_AS_F64;
use super::{bool_val, BinOp, Datum, EvalCx, ExecError, Expr};
use crate::data::{Batch, Column, ColumnData, DataType, Value};
use crate::decimal::Dec;

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
        // `7 / 2` is the DECIMAL 3.5000, as MySQL.
        (Int(x), Int(y)) if op != BinOp::Div => int_op(op, *x, *y, cx),
        (Int(_) | Decimal(_), Int(_) | Decimal(_)) => match (a.to_dec(), b.to_dec()) {
            (Some(x), Some(y)) => dec_op(op, x, y, cx),
            _ => Ok(Null),
        },
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

/// `x op y` on exact decimals (MySQL's result scales: see
/// [`crate::decimal`]); past 28 digits is error 1690.
fn dec_op(op: BinOp, x: Dec, y: Dec, cx: &mut EvalCx) -> Result<Value, ExecError> {
    let ov = || ExecError::decimal_overflow(format!("({x} {} {y})", op.symbol()));
    if y.is_zero() && matches!(op, BinOp::Div | BinOp::IntDiv | BinOp::Mod) {
        return div_zero(cx);
    }
    let r = match op {
        BinOp::Add => x.checked_add(y),
        BinOp::Sub => x.checked_sub(y),
        BinOp::Mul => x.checked_mul(y),
        BinOp::Div => x.checked_div(y),
        BinOp::Mod => x.checked_rem(y),
        BinOp::IntDiv => {
            // The quotient cut toward zero, a BIGINT.
            let q = x
                .value()
                .checked_div(y.value())
                .ok_or_else(|| ExecError::overflow(format!("({x} DIV {y})")))?;
            return Dec::new(q.trunc())
                .to_i64()
                .map(Value::Int)
                .ok_or_else(|| ExecError::overflow(format!("({x} DIV {y})")));
        }
        _ => return Ok(Value::Null),
    };
    r.map(Value::Decimal).ok_or_else(ov)
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
        // Text, dates and decimals take the generic path (exact decimals,
        // MySQL's date comparisons).
        _ => None,
    }
}

pub(super) fn binary(
    op: BinOp,
    l: Datum,
    r: Datum,
    len: usize,
    cx: &mut EvalCx,
) -> Result<Datum, ExecError> {
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
            let numeric = |c: &Column| matches!(c.data, ColumnData::Int(_) | ColumnData::Float(_));
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

pub(super) fn and3(a: Option<bool>, b: Option<bool>) -> Value {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Value::Int(0),
        (Some(true), Some(true)) => Value::Int(1),
        _ => Value::Null,
    }
}

pub(super) fn or3(a: Option<bool>, b: Option<bool>) -> Value {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Value::Int(1),
        (Some(false), Some(false)) => Value::Int(0),
        _ => Value::Null,
    }
}
