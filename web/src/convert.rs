//! Conversions between JS values and core's types: arguments in, results,
//! errors, traces and snapshots out. Glue only: every rule about what a
//! result or an error *is* lives in core.
//!
//! Shapes handed to JS (all keys camelCase, all ids plain numbers):
//!
//! * a result: `{ queryId, columns: [{ name, type }], rows: [[…]],
//!   rowsAffected, elapsedMs, warnings, message }`; integers outside
//!   ±(2^53 − 1) arrive as `BigInt`, so no digit is lost;
//! * an error: an `Error` (name `QueryError`) with `code`, `sqlstate`,
//!   `kind`, `cause`, `level`, `queryId`;
//! * a cause: `{ what, who, level, kind, contextId, message, …details }`
//!   where the details are the reason's own fields (`byConnection`,
//!   `byUser`, `limitMs`, …).

use cascade::{Cause, ColumnInfo, Identity, QueryError, QueryResult, Value};
use js_sys::{Array, Object, Reflect};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// The largest integer a JS number holds exactly.
const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

fn set(target: &JsValue, key: &str, value: impl Into<JsValue>) {
    // Setting a property on a fresh plain object or Error cannot fail.
    let _ = Reflect::set(target, &JsValue::from_str(key), &value.into());
}

/// Any serializable value as plain JS data (objects, arrays, numbers).
pub(crate) fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| type_error(&format!("cannot convert to a JS value: {e}")))
}

/// A `TypeError` for a bad argument.
pub(crate) fn type_error(message: &str) -> JsValue {
    js_sys::TypeError::new(message).into()
}

/// A plain `Error` for a failure that is not a query error (unknown id,
/// closed engine, …).
pub(crate) fn plain_error(message: &str) -> JsValue {
    js_sys::Error::new(message).into()
}

/// Reads a JS options object into a Rust struct: it must be an object
/// whose keys are all in `allowed` (a typo is an error, not a silent
/// default); a wrong shape is a `TypeError` that says which call and what
/// was wrong.
pub(crate) fn from_js<T: for<'de> Deserialize<'de>>(
    what: &str,
    allowed: &[&str],
    value: JsValue,
) -> Result<T, JsValue> {
    if !value.is_object() || value.is_function() {
        return Err(type_error(&format!("{what}: got {}", describe(&value))));
    }
    for key in Object::keys(value.unchecked_ref::<Object>()).iter() {
        let key = key.as_string().unwrap_or_default();
        if !allowed.contains(&key.as_str()) {
            return Err(type_error(&format!(
                "{what}: unknown option {key:?} (expected one of {})",
                allowed.join(", ")
            )));
        }
    }
    serde_wasm_bindgen::from_value(value).map_err(|e| type_error(&format!("{what}: {e}")))
}

/// An id given from JS: a non-negative integral number (or a `BigInt`).
pub(crate) fn id_arg(what: &str, value: &JsValue) -> Result<u64, JsValue> {
    if let Some(n) = value.as_f64() {
        if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= MAX_SAFE_INTEGER as f64 {
            return Ok(n as u64);
        }
    } else if value.is_bigint() {
        if let Ok(n) = u64::try_from(js_sys::BigInt::unchecked_from_js(value.clone())) {
            return Ok(n);
        }
    }
    Err(type_error(&format!(
        "{what}: expected a non-negative integer id, got {}",
        describe(value)
    )))
}

/// A short description of a JS value for error messages.
pub(crate) fn describe(value: &JsValue) -> String {
    if let Some(s) = value.as_string() {
        format!("the string {s:?}")
    } else if value.is_undefined() {
        "undefined".into()
    } else if value.is_null() {
        "null".into()
    } else {
        value
            .js_typeof()
            .as_string()
            .unwrap_or_else(|| "a value".into())
    }
}

/// `{ tenant, user, role }` as passed to `connect` and `processes`.
#[derive(Deserialize)]
pub(crate) struct IdentityArg {
    tenant: String,
    user: String,
    role: String,
}

/// `connect({ tenant, user, role, database? })`.
#[derive(Deserialize)]
pub(crate) struct ConnectArg {
    tenant: String,
    user: String,
    role: String,
    #[serde(default)]
    database: Option<String>,
}

impl ConnectArg {
    /// The identity and the database to start in (`None`: the tenant's
    /// default, `cascade`).
    pub(crate) fn parse(what: &str, value: JsValue) -> Result<(Identity, Option<String>), JsValue> {
        let arg: ConnectArg = from_js(
            &format!("{what}: expected {{ tenant, user, role, database? }} (strings)"),
            &["tenant", "user", "role", "database"],
            value,
        )?;
        Ok((
            Identity::new(&arg.tenant, &arg.user, &arg.role),
            arg.database,
        ))
    }
}

impl IdentityArg {
    pub(crate) fn parse(what: &str, value: JsValue) -> Result<Identity, JsValue> {
        let arg: IdentityArg = from_js(
            &format!("{what}: expected {{ tenant, user, role }} (strings)"),
            &["tenant", "user", "role"],
            value,
        )?;
        Ok(Identity::new(&arg.tenant, &arg.user, &arg.role))
    }
}

fn value_to_js(value: &Value) -> JsValue {
    match value {
        Value::Null => JsValue::NULL,
        Value::Int(i) if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(i) => {
            JsValue::from_f64(*i as f64)
        }
        Value::Int(i) => js_sys::BigInt::from(*i).into(),
        Value::Float(f) => JsValue::from_f64(*f),
        Value::Text(s) => JsValue::from_str(s),
        // Dates, times and exact decimals as MySQL's text shows them
        // (`'2024-01-01'`, `'3.50'`): a JS number would lose a decimal's
        // digits, a `Date` would add a time zone.
        other => JsValue::from_str(&other.to_string()),
    }
}

fn column_to_js(column: &ColumnInfo) -> JsValue {
    let obj: JsValue = Object::new().into();
    set(&obj, "name", column.name.as_str());
    set(&obj, "type", column.ty.sql_name());
    obj
}

fn number(n: u64) -> JsValue {
    JsValue::from_f64(n as f64)
}

fn optional_number(n: Option<u64>) -> JsValue {
    n.map_or(JsValue::NULL, number)
}

/// A statement's result as a plain JS object.
pub(crate) fn result_to_js(result: &QueryResult) -> JsValue {
    let obj: JsValue = Object::new().into();
    set(&obj, "queryId", number(result.query_id));
    let columns: Array = result.columns.iter().map(column_to_js).collect();
    set(&obj, "columns", columns);
    let rows: Array = result
        .rows
        .iter()
        .map(|row| JsValue::from(row.iter().map(value_to_js).collect::<Array>()))
        .collect();
    set(&obj, "rows", rows);
    set(&obj, "rowsAffected", number(result.rows_affected));
    set(&obj, "elapsedMs", result.elapsed.as_secs_f64() * 1e3);
    set(&obj, "warnings", result.warnings);
    set(
        &obj,
        "message",
        result
            .message
            .as_deref()
            .map_or(JsValue::NULL, JsValue::from_str),
    );
    obj
}

fn snake_to_camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The enum's serde name (`"canceled"`, `"Query"`, …).
fn serde_name<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// A cause as a plain object: `what`, `who`, `level`, `kind`, `contextId`,
/// `message` and the reason's own fields in camelCase.
pub(crate) fn cause_to_js(cause: &Cause) -> JsValue {
    let mut out = serde_json::Map::new();
    if let serde_json::Value::Object(reason) = serde_name(&cause.reason) {
        for (k, v) in reason {
            out.insert(snake_to_camel(&k), v);
        }
    }
    out.insert("who".into(), serde_name(&cause.reason.who()));
    out.insert("level".into(), serde_name(&cause.level));
    out.insert("kind".into(), serde_name(&cause.kind));
    out.insert("contextId".into(), cause.context_id.into());
    out.insert("message".into(), cause.reason.to_string().into());
    to_js(&out).unwrap_or(JsValue::NULL)
}

/// A statement's error as a JS `Error` with `code`, `sqlstate`, `kind`,
/// `cause`, `level` and `queryId`.
pub(crate) fn query_error_to_js(error: &QueryError) -> JsValue {
    let err = js_sys::Error::new(&error.message);
    err.set_name("QueryError");
    let obj: JsValue = err.into();
    set(&obj, "code", error.code);
    set(&obj, "sqlstate", error.sqlstate);
    let kind = serde_name(&error.kind);
    set(&obj, "kind", kind.as_str().unwrap_or("error"));
    set(
        &obj,
        "cause",
        error.cause.as_deref().map_or(JsValue::NULL, cause_to_js),
    );
    let level = serde_name(&error.level);
    set(
        &obj,
        "level",
        level.as_str().map_or(JsValue::NULL, JsValue::from_str),
    );
    set(&obj, "queryId", optional_number(error.query_id));
    obj
}

#[cfg(test)]
mod tests {
    use super::snake_to_camel;

    #[test]
    fn reason_fields_become_camel_case() {
        assert_eq!(snake_to_camel("by_connection"), "byConnection");
        assert_eq!(snake_to_camel("limit_ms"), "limitMs");
        assert_eq!(snake_to_camel("what"), "what");
    }
}
