//! Evaluation of an [`Expr`] on a batch and on one row.

use std::sync::Arc;

use super::func::{call, cast, like, sleep_seconds};
use super::kernels::{and3, binary, or3, scalar_binop};
use std::cmp::Ordering;

use super::{bool_val, BinOp, Datum, EvalCx, ExecError, Expr, Func};
use crate::data::{Batch, Column, DataType, Value};

impl Expr {
    /// Evaluates on a batch.
    pub fn eval(&self, b: &Batch, cx: &mut EvalCx) -> Result<Datum, ExecError> {
        match self {
            Expr::Column(i) => Ok(Datum::Col(b.columns[*i].clone())),
            Expr::Literal(v) => Ok(Datum::Scalar(v.clone())),
            Expr::Param { index, .. } => Ok(Datum::Scalar(param(cx, *index))),
            Expr::Binary { op, l, r } => {
                let (l, r) = (l.eval(b, cx)?, r.eval(b, cx)?);
                binary(*op, l, r, b.len, cx)
            }
            Expr::Chain { first, rest } => {
                let mut acc = first.eval(b, cx)?;
                for (op, x) in rest {
                    let r = x.eval(b, cx)?;
                    acc = binary(*op, acc, r, b.len, cx)?;
                }
                Ok(acc)
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
            Expr::Param { index, .. } => param(cx, *index),
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
            Expr::Chain { first, rest } => {
                let mut acc = first.eval_row(b, i, cx)?;
                for (op, x) in rest {
                    // AND / OR skip their right operand once decided, as in
                    // the binary case above.
                    acc = match op {
                        BinOp::And => match acc.truthy() {
                            Some(false) => Value::Int(0),
                            a => and3(a, x.eval_row(b, i, cx)?.truthy()),
                        },
                        BinOp::Or => match acc.truthy() {
                            Some(true) => Value::Int(1),
                            a => or3(a, x.eval_row(b, i, cx)?.truthy()),
                        },
                        _ => scalar_binop(*op, &acc, &x.eval_row(b, i, cx)?, cx)?,
                    };
                }
                acc
            }
            Expr::Neg(e) => match e.eval_row(b, i, cx)? {
                Value::Null => Value::Null,
                Value::Int(x) => Value::Int(
                    x.checked_neg()
                        .ok_or_else(|| ExecError::overflow(format!("-({x})")))?,
                ),
                Value::Decimal(d) => Value::Decimal(-d),
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
            Expr::Cast { e, ty } if ty.is_temporal() => {
                super::temporal::cast(e.eval_row(b, i, cx)?, *ty, cx)?
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
                call(*f, &vals, cx)?
            }
        })
    }
}

/// Parameter `index` of the running subquery (the planner numbers the
/// parameters it supplies; NULL if there were none).
fn param(cx: &EvalCx, index: usize) -> Value {
    cx.params.get(index).cloned().unwrap_or(Value::Null)
}
