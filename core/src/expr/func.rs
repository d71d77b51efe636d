//! Scalar functions ([`call`]), casts and `LIKE`.

use std::cmp::Ordering;
use std::sync::Arc;

use super::{EvalCx, ExecError, Func};
use crate::data::{DataType, Value};

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
        (v, DataType::Decimal) => Value::Decimal(v.to_dec().ok_or_else(|| {
            ExecError::decimal_overflow(format!("CAST({} AS DECIMAL)", quoted(&v)))
        })?),
        // Without an evaluation context (warnings, strictness) a value that
        // is no date becomes NULL; expressions cast through
        // `temporal::cast`, which warns or refuses.
        (v, DataType::Date) => v.to_date().map_or(Value::Null, Value::Date),
        (v, DataType::DateTime) => v.to_datetime().map_or(Value::Null, Value::DateTime),
        (v, DataType::Time) => v.to_time().map_or(Value::Null, Value::Time),
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
        Value::Decimal(d) => d.to_i64(),
        Value::Date(_) | Value::DateTime(_) | Value::Time(_) => f64_to_bigint(v.as_f64()?),
    }
}

/// The doubles whose integer part BIGINT holds: `-2^63 <= x < 2^63` (both
/// bounds exact as doubles; NaN and infinities are outside).
pub(super) const BIGINT_AS_F64: std::ops::Range<f64> =
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
pub(super) fn sleep_seconds(v: &Value) -> f64 {
    match v.as_f64() {
        Some(s) if s > 0.0 && s.is_finite() => s,
        _ => 0.0,
    }
}

fn text_arg(v: &Value) -> Option<Arc<str>> {
    v.to_text()
}

/// Calls a scalar function on values (`cx` counts warnings and says
/// whether invalid dates are errors).
pub fn call(f: Func, a: &[Value], cx: &mut EvalCx) -> Result<Value, ExecError> {
    use Value::*;
    let first = a.first().cloned().unwrap_or(Null);
    Ok(match f {
        Func::Abs => match first {
            Int(x) => Int(x
                .checked_abs()
                .ok_or_else(|| ExecError::overflow(format!("abs({x})")))?),
            Null => Null,
            Decimal(d) => Decimal(d.abs()),
            v => Float(v.as_f64().unwrap_or(0.0).abs()),
        },
        Func::Round | Func::Truncate => {
            let d = match a.get(1) {
                None => 0,
                Some(Null) => return Ok(Null),
                Some(v) => to_bigint(v).unwrap_or(if v.as_f64().unwrap_or(0.0) < 0.0 {
                    i64::MIN
                } else {
                    i64::MAX
                }),
            };
            let name = if f == Func::Round {
                "round"
            } else {
                "truncate"
            };
            match first {
                Null => Null,
                Int(x) if d >= 0 => Int(x),
                Int(x) => Int(round_int(x, d, f == Func::Round)
                    .ok_or_else(|| ExecError::overflow(format!("{name}({x}, {d})")))?),
                Decimal(x) => Decimal(
                    if f == Func::Round {
                        x.round(d)
                    } else {
                        x.truncate(d)
                    }
                    .ok_or_else(|| ExecError::decimal_overflow(format!("{name}({x}, {d})")))?,
                ),
                v if f == Func::Truncate => {
                    let x = v.as_f64().unwrap_or(0.0);
                    let p = 10f64.powi(d.clamp(-308, 308) as i32);
                    let y = (x * p).trunc() / p;
                    // As for ROUND below: no digits to cut past DOUBLE's range.
                    Float(if (x * p).is_finite() && y.is_finite() {
                        y
                    } else if d > 0 {
                        x
                    } else {
                        0.0
                    })
                }
                v => {
                    let x = v.as_f64().unwrap_or(0.0);
                    // Past 308 digits either way the answer is `x` (or 0):
                    // clamping the exponent changes nothing but keeps
                    // 10^d finite.
                    let p = 10f64.powi(d.clamp(-308, 308) as i32);
                    // A DOUBLE rounds half to even, as MySQL and MariaDB
                    // (`rint`): ROUND(2.5e0) is 2. An exact DECIMAL rounds
                    // half away from zero (above).
                    let y = (x * p).round_ties_even() / p;
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
        Func::Floor | Func::Ceil => match first {
            Null => Null,
            Int(x) => Int(x),
            // A BIGINT, as MariaDB answers for a DECIMAL.
            Decimal(x) => {
                let r = if f == Func::Floor {
                    x.floor()
                } else {
                    x.ceil()
                };
                Int(r.to_i64().ok_or_else(|| {
                    ExecError::overflow(format!(
                        "{}({x})",
                        if f == Func::Floor { "floor" } else { "ceiling" }
                    ))
                })?)
            }
            v if f == Func::Floor => Float(v.as_f64().unwrap_or(0.0).floor()),
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
            if first.is_null() {
                return Ok(Null);
            }
            let what = || format!("CAST({} AS DECIMAL({p},{sc}))", quoted(&first));
            let x = first
                .to_dec()
                .ok_or_else(|| ExecError::decimal_overflow(what()))?;
            let (p, sc) = (
                u32::try_from(*p).unwrap_or(65),
                u32::try_from(*sc).unwrap_or(0),
            );
            Decimal(
                x.fit(p, sc)
                    .ok_or_else(|| ExecError::decimal_overflow(what()))?,
            )
        }
        Func::Temporal(t) => super::temporal::call(t, a, cx)?,
    })
}

/// `ROUND(x, d)` (or, not `round`, `TRUNCATE(x, d)`) for `d < 0` on
/// integers, exactly (half away from zero); `None` past BIGINT.
fn round_int(x: i64, d: i64, round: bool) -> Option<i64> {
    let Some(p) = u32::try_from(d.unsigned_abs())
        .ok()
        .and_then(|k| 10i128.checked_pow(k))
    else {
        return Some(0);
    };
    let (x, p) = (i128::from(x), p);
    let q = x / p;
    let r = x % p;
    let q = if round && 2 * r.abs() >= p {
        q + x.signum()
    } else {
        q
    };
    i64::try_from(q * p).ok()
}
