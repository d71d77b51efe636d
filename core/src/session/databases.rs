//! Databases: `CREATE DATABASE`, `DROP DATABASE`, `USE`, `SHOW DATABASES`,
//! `SHOW TABLES [FROM db]`.
//!
//! Every database belongs to the tenant of the connection that created it
//! (the tenant of its context values): a connection names, lists and uses
//! only its own tenant's, so another tenant's database answers 1049 as one
//! that does not exist. `DROP DATABASE` cancels the transactions of the
//! tenant's other connections whose statements named it, with cause
//! `DatabaseDropped`; their writes roll back.

use sqlparser::ast;

use super::{lock, text_rows, ConnInner, QueryError, QueryResult, Session};
use crate::cause::Reason;
use crate::registry::KillScope;
use crate::sql::info_schema::INFORMATION_SCHEMA;
use crate::storage::{DbKey, StorageError};

/// The database a `USE` / `CREATE DATABASE` / `DROP DATABASE` names
/// (lower-cased); 1102 for a name of several parts or an empty one.
pub(super) fn db_name(name: &ast::ObjectName) -> Result<String, QueryError> {
    let parts: Vec<&str> = name
        .0
        .iter()
        .filter_map(|p| p.as_ident().map(|i| i.value.as_str()))
        .collect();
    match parts.as_slice() {
        [n] if !n.is_empty() && n.len() <= 64 && !n.ends_with(' ') => Ok(n.to_lowercase()),
        _ => Err(QueryError::new(
            1102,
            "42000",
            format!("Incorrect database name '{name}'"),
        )),
    }
}

/// MySQL's answer to a change of `information_schema`: it is no tenant's.
fn information_schema_denied(c: &ConnInner) -> QueryError {
    QueryError::new(
        1044,
        "42000",
        format!(
            "Access denied for user '{}'@'%' to database '{INFORMATION_SCHEMA}'",
            c.identity.user
        ),
    )
}

/// The key of the caller's database `name` (another tenant's only for the
/// `sys` admin when the engine allows it).
fn key(c: &ConnInner, name: &str) -> DbKey {
    super::namespace(c).db_key(name)
}

/// `CREATE DATABASE [IF NOT EXISTS] db`: 1007 if it exists (a warning with
/// `IF NOT EXISTS`).
pub(super) fn create_database(
    c: &ConnInner,
    name: &ast::ObjectName,
    if_not_exists: bool,
    stmt_id: u64,
) -> Result<QueryResult, QueryError> {
    let name = db_name(name)?;
    if name == INFORMATION_SCHEMA {
        return Err(information_schema_denied(c));
    }
    if name.contains(':') {
        return Err(QueryError::new(
            1102,
            "42000",
            format!("Incorrect database name '{name}'"),
        ));
    }
    let created = c
        .engine
        .catalog
        .create_database(&key(c, &name), if_not_exists)?;
    let mut r = super::affected(stmt_id, u64::from(created));
    if !created {
        r.warnings = 1;
    }
    Ok(r)
}

/// `DROP DATABASE [IF EXISTS] db`: 1008 if missing (a warning with `IF
/// EXISTS`). Its tables and views go at once; the current database of the
/// caller becomes none if it was that one; the transactions of the
/// tenant's other connections that named it are cancelled (their running
/// statement with them) with cause `DatabaseDropped`, and roll back.
pub(super) fn drop_database(
    c: &ConnInner,
    s: &Session,
    names: &[ast::ObjectName],
    if_exists: bool,
    stmt_id: u64,
) -> Result<QueryResult, QueryError> {
    let [name] = names else {
        return Err(QueryError::unsupported(
            "DROP DATABASE of several databases",
        ));
    };
    let name = db_name(name)?;
    if name == INFORMATION_SCHEMA {
        return Err(information_schema_denied(c));
    }
    let db = key(c, &name);
    let dropped = c.engine.catalog.drop_database(&db, if_exists)?;
    let Some(tables) = dropped else {
        let mut r = super::affected(stmt_id, 0);
        r.warnings = 1;
        return Ok(r);
    };
    {
        let mut current = lock(&c.database);
        if db.tenant == c.tenant() && current.as_deref() == Some(name.as_str()) {
            *current = None;
        }
    }
    c.publish_vars(s);
    // The others' transactions that use it: found after the drop, so that
    // a statement that resolves a name of it from now on gets 1146 and one
    // that resolved one before is in its connection's `touched` already.
    let others: Vec<_> = lock(&c.engine.connections)
        .values()
        .filter_map(std::sync::Weak::upgrade)
        .filter(|o| o.id != c.id && o.tenant() == db.tenant)
        .collect();
    let database: std::sync::Arc<str> = name.as_str().into();
    for o in others {
        if !lock(&o.touched).contains(&name) {
            continue;
        }
        let reason = Reason::DatabaseDropped {
            database: database.clone(),
            by_connection: c.id,
        };
        // An explicit transaction: cancelling it cancels its running
        // statement (linked to it) and rolls it back. An implicit one ends
        // with its statement.
        match o.manager.txn() {
            Some(txn) => {
                txn.cancel(reason);
            }
            None => {
                o.manager.kill(KillScope::Query { statement: None }, reason);
            }
        }
    }
    Ok(super::affected(stmt_id, tables as u64))
}

/// `USE db`: 1049 if the tenant has no such database.
pub(super) fn use_database(c: &ConnInner, s: &Session, name: &str) -> Result<(), QueryError> {
    if name != INFORMATION_SCHEMA && !c.engine.catalog.has_database(&key(c, name)) {
        return Err(StorageError::UnknownDatabase(name.to_owned()).into());
    }
    *lock(&c.database) = Some(name.to_owned());
    c.publish_vars(s);
    Ok(())
}

/// The `LIKE` pattern of a `SHOW … [LIKE 'p']`; 1235 for `WHERE` and the
/// other filters.
fn like_filter(opts: &ast::ShowStatementOptions) -> Result<Option<String>, QueryError> {
    if opts.starts_with.is_some() || opts.limit.is_some() {
        return Err(QueryError::unsupported("SHOW … STARTS WITH / LIMIT"));
    }
    match &opts.filter_position {
        None => Ok(None),
        Some(
            ast::ShowStatementFilterPosition::Infix(f)
            | ast::ShowStatementFilterPosition::Suffix(f),
        ) => match f {
            ast::ShowStatementFilter::Like(p) => Ok(Some(p.clone())),
            _ => Err(QueryError::unsupported("SHOW … WHERE / ILIKE")),
        },
    }
}

/// Names matching an optional `LIKE` pattern (as MySQL: `%`, `_`, `\`).
fn filtered(names: Vec<String>, like: Option<&str>) -> Vec<String> {
    match like {
        None => names,
        Some(p) => names
            .into_iter()
            .filter(|n| crate::expr::like(n, p))
            .collect(),
    }
}

/// `SHOW DATABASES [LIKE 'p']`: `information_schema` and the tenant's
/// databases.
pub(super) fn show_databases(
    c: &ConnInner,
    opts: &ast::ShowStatementOptions,
    stmt_id: u64,
) -> Result<QueryResult, QueryError> {
    let like = like_filter(opts)?;
    let mut names = vec![INFORMATION_SCHEMA.to_owned()];
    names.extend(c.engine.catalog.databases(&c.tenant()));
    names.sort();
    let header = match &like {
        Some(p) => format!("Database ({p})"),
        None => "Database".to_owned(),
    };
    Ok(text_rows(
        stmt_id,
        &header,
        filtered(names, like.as_deref()),
    ))
}

/// `SHOW TABLES [FROM db] [LIKE 'p']`: the tables and views of `db` or the
/// current database (1046 without one, 1049 for a database the tenant
/// lacks).
pub(super) fn show_tables(
    c: &ConnInner,
    full: bool,
    opts: &ast::ShowStatementOptions,
    stmt_id: u64,
) -> Result<QueryResult, QueryError> {
    if full {
        return Err(QueryError::unsupported("SHOW FULL / EXTENDED TABLES"));
    }
    let like = like_filter(opts)?;
    let name = match opts.show_in.as_ref().and_then(|i| i.parent_name.as_ref()) {
        Some(n) => db_name(n)?,
        None => lock(&c.database)
            .clone()
            .ok_or_else(|| QueryError::from(crate::sql::error::SqlError::NoDatabase))?,
    };
    let db = key(c, &name);
    if !c.engine.catalog.has_database(&db) {
        return Err(StorageError::UnknownDatabase(name).into());
    }
    super::namespace(c).touch(&db);
    // Views are listed with the tables, as in MySQL.
    let mut names = c.engine.catalog.table_names(&db);
    names.extend(c.engine.catalog.view_names(&db));
    names.sort();
    let mut header = format!("Tables_in_{name}");
    if let Some(p) = &like {
        header.push_str(&format!(" ({p})"));
    }
    Ok(text_rows(
        stmt_id,
        &header,
        filtered(names, like.as_deref()),
    ))
}
