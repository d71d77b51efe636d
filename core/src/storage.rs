//! In-memory tables with snapshot isolation.
//!
//! A table is a list of committed versions, each an immutable
//! [`TableData`] (chunks of columns shared by `Arc`). A transaction reads the
//! newest version committed at or before its snapshot, writes into private
//! copies (copy-on-write per chunk), and installs them at commit if no other
//! transaction committed the same table since its snapshot
//! (first-committer-wins); otherwise the commit fails with a write conflict
//! and nothing committed is lost.
//!
//! Invariants: versions of a table are in increasing commit timestamp
//! order; a version older than the newest one visible to the oldest live
//! snapshot is never read again and is pruned at the next commit. The
//! catalog lock is held for the whole of a commit, so commits are atomic
//! across tables.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crate::data::{Batch, Column, ColumnData, DataType, Value};
use crate::index::{Duplicate, IndexDef, KeyIndex, RowId};
use crate::sync::lock_std as lock;

/// Rows per stored chunk.
pub const CHUNK_ROWS: usize = 65_536;

/// Storage errors.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// No such table.
    #[error("Table '{0}' doesn't exist")]
    UnknownTable(String),
    /// `CREATE TABLE` of an existing table.
    #[error("Table '{0}' already exists")]
    TableExists(String),
    /// `DROP TABLE` of a missing table.
    #[error("Unknown table '{0}'")]
    BadTable(String),
    /// `DROP VIEW` / `CREATE OR REPLACE VIEW` of a base table.
    #[error("'{0}' is not VIEW")]
    NotView(String),
    /// Another transaction committed the table first.
    #[error("Write conflict on table '{0}': another transaction committed it after this transaction started; this transaction was rolled back")]
    WriteConflict(String),
    /// A NOT NULL column got a NULL.
    #[error("Column '{0}' cannot be null")]
    NotNull(String),
    /// Two rows share a unique key (`key` is `table.index`).
    #[error("Duplicate entry '{entry}' for key '{key}'")]
    Duplicate {
        /// The key's values.
        entry: String,
        /// `table.index`.
        key: String,
    },
    /// `CREATE INDEX` of a name the table has.
    #[error("Duplicate key name '{0}'")]
    DuplicateKeyName(String),
    /// `DROP INDEX` of a name the table lacks.
    #[error("Can't DROP '{0}'; check that column/key exists")]
    UnknownKey(String),
    /// A database the caller's tenant does not have (`USE`, `CREATE TABLE
    /// db.t`, `SHOW TABLES FROM db`).
    #[error("Unknown database '{0}'")]
    UnknownDatabase(String),
    /// `CREATE DATABASE` of an existing database.
    #[error("Can't create database '{0}'; database exists")]
    DatabaseExists(String),
    /// `DROP DATABASE` of a missing database.
    #[error("Can't drop database '{0}'; database doesn't exist")]
    DropMissingDatabase(String),
}

impl StorageError {
    /// MySQL code and SQLSTATE.
    pub fn codes(&self) -> (u16, &'static str) {
        let e = self;
        let (code, state) = match e {
            StorageError::UnknownTable(_) => (1146, "42S02"),
            StorageError::TableExists(_) => (1050, "42S01"),
            StorageError::BadTable(_) => (1051, "42S02"),
            StorageError::NotView(_) => (1347, "HY000"),
            StorageError::WriteConflict(_) => (1213, "40001"),
            StorageError::NotNull(_) => (1048, "23000"),
            StorageError::Duplicate { .. } => (1062, "23000"),
            StorageError::DuplicateKeyName(_) => (1061, "42000"),
            StorageError::UnknownKey(_) => (1091, "42000"),
            StorageError::UnknownDatabase(_) => (1049, "42000"),
            StorageError::DatabaseExists(_) => (1007, "HY000"),
            StorageError::DropMissingDatabase(_) => (1008, "HY000"),
        };
        (code, state)
    }
}

/// A column definition.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnDef {
    /// Name.
    pub name: String,
    /// Type.
    pub ty: DataType,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// What the declared type allows beyond the storage type.
    pub limit: ColumnLimit,
    /// `DEFAULT` value for an INSERT that does not name the column (`None`:
    /// NULL when nullable, else error 1364).
    pub default: Option<crate::data::Value>,
}

/// What a column's declared type allows beyond its storage type: a
/// `TINYINT` is stored as a BIGINT, a `VARCHAR(40)` as text, a
/// `DECIMAL(10,2)` as a DOUBLE. Checked when a row is stored (MySQL strict
/// mode: 1264 out of range, 1406 too long), so a value is never kept that
/// MySQL would refuse, nor kept unrounded where MySQL rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ColumnLimit {
    /// Nothing beyond the storage type.
    #[default]
    None,
    /// An integer type narrower than BIGINT, or UNSIGNED: the inclusive
    /// range.
    IntRange(i64, i64),
    /// `CHAR(n)` / `VARCHAR(n)`: at most `n` characters.
    MaxChars(u64),
    /// `TINYTEXT` / `TEXT` / `MEDIUMTEXT`: at most `n` bytes.
    MaxBytes(u64),
    /// `DATETIME(n)` / `TIMESTAMP(n)` / `TIME(n)`: fractional seconds
    /// rounded to `n` digits (0..=6), as MySQL rounds them.
    FractionalSeconds(u8),
    /// `DECIMAL(precision, scale)`: rounded to `scale` digits, with at most
    /// `precision - scale` digits before the point.
    Decimal {
        /// Total digits (1..=65).
        precision: u8,
        /// Digits after the point (0..=30, at most `precision`).
        scale: u8,
    },
}

/// A table's columns.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Schema {
    /// Columns in order.
    pub columns: Vec<ColumnDef>,
}

/// One immutable version of a table's rows and of its indexes (an index is
/// part of the version: a snapshot reads the index that matches its rows,
/// and `CREATE INDEX` commits a new version).
#[derive(Clone, Debug, Default)]
pub struct TableData {
    /// Chunks of at most [`CHUNK_ROWS`] rows.
    pub chunks: Vec<Arc<Batch>>,
    /// The `PRIMARY KEY`, `UNIQUE` and plain indexes, in declaration order
    /// (see [`crate::index`]).
    pub indexes: Vec<KeyIndex>,
}

// ---- Indexes and keyed writes (the `index` engineer's section) ----

impl Duplicate {
    /// Error 1062 for this duplicate in table `table`.
    pub fn into_error(self, table: &str) -> StorageError {
        StorageError::Duplicate {
            entry: self.entry,
            key: format!("{table}.{}", self.index),
        }
    }
}

/// Sets row `i` of `col` to `v` (of the column's type, or NULL).
fn set_cell(col: &mut Column, i: usize, v: &Value) {
    let null = v.is_null();
    match (&mut col.data, v) {
        (_, Value::Null) => {}
        (ColumnData::Int(d), Value::Int(x)) => d[i] = *x,
        (ColumnData::Float(d), Value::Float(x)) => d[i] = *x,
        (ColumnData::Text(d), Value::Text(x)) => d[i] = x.clone(),
        _ => {
            // Another type: rebuild the column in its own type.
            let ty = col.data_type();
            let mut vals: Vec<Value> = (0..col.len()).map(|r| col.value(r)).collect();
            vals[i] = v.clone();
            *col = Column::from_values(ty, &vals);
            return;
        }
    }
    if null || col.nulls.is_some() {
        let n = col.len();
        let nulls = col.nulls.get_or_insert_with(|| vec![false; n]);
        nulls[i] = null;
    }
}

impl TableData {
    /// No rows, with empty indexes of `defs`.
    pub fn with_index_defs(defs: Vec<IndexDef>) -> Self {
        Self {
            chunks: Vec::new(),
            indexes: defs.into_iter().map(KeyIndex::new).collect(),
        }
    }

    /// These indexes over other rows (`chunks`, e.g. rewritten by an
    /// UPDATE or DELETE): every index is rebuilt; 1062 if the new rows
    /// break a unique key.
    pub fn with_chunks(&self, chunks: Vec<Arc<Batch>>) -> Result<TableData, Duplicate> {
        let indexes = self
            .indexes
            .iter()
            .map(|ix| KeyIndex::build(ix.def.clone(), &chunks))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TableData { chunks, indexes })
    }

    /// This data with one more index (`CREATE INDEX`); 1062 if the rows
    /// break it.
    pub fn with_index(&self, def: IndexDef) -> Result<TableData, Duplicate> {
        let ix = KeyIndex::build(Arc::new(def), &self.chunks)?;
        let mut out = self.clone();
        out.indexes.push(ix);
        Ok(out)
    }

    /// This data without the index `name` (`DROP INDEX`); `None` if there
    /// is no such index.
    pub fn without_index(&self, name: &str) -> Option<TableData> {
        let i = self
            .indexes
            .iter()
            .position(|ix| ix.def.name.eq_ignore_ascii_case(name))?;
        let mut out = self.clone();
        out.indexes.remove(i);
        Some(out)
    }

    /// The index named `name` (case-insensitive).
    pub fn index(&self, name: &str) -> Option<&KeyIndex> {
        self.indexes
            .iter()
            .find(|ix| ix.def.name.eq_ignore_ascii_case(name))
    }

    /// Row `r`'s values.
    pub fn row(&self, r: RowId) -> Vec<Value> {
        self.chunks[r.chunk as usize].row(r.row as usize)
    }

    /// Appends `batch` (of the table's types) and indexes its rows; 1062 if
    /// a row breaks a unique key (then `self` is half-written: the caller
    /// drops it). A large batch rebuilds an index in one sort instead of
    /// inserting row by row.
    pub fn push_rows(&mut self, batch: &Batch) -> Result<Vec<RowId>, Duplicate> {
        let ids = self.append_unindexed(batch);
        self.index_rows(&ids)?;
        Ok(ids)
    }

    /// Appends `batch` to the chunks only; [`TableData::index_rows`] must
    /// follow before the data is read or stored (a bulk INSERT indexes all
    /// its rows at once).
    pub fn append_unindexed(&mut self, batch: &Batch) -> Vec<RowId> {
        let mut ids = Vec::with_capacity(batch.len);
        let mut start = 0;
        while start < batch.len {
            let room = match self.chunks.last() {
                Some(last) if last.len < CHUNK_ROWS => CHUNK_ROWS - last.len,
                _ => 0,
            };
            if room > 0 {
                let take = room.min(batch.len - start);
                let part = batch.slice(start, take);
                let c = self.chunks.len() - 1;
                let Some(last) = self.chunks.last_mut() else {
                    break;
                };
                let last = Arc::make_mut(last);
                let base = last.len;
                for (col, p) in last.columns.iter_mut().zip(&part.columns) {
                    Arc::make_mut(col).append(p);
                }
                last.len += take;
                ids.extend((base..base + take).map(|row| RowId {
                    chunk: c as u32,
                    row: row as u32,
                }));
                start += take;
            } else {
                let take = CHUNK_ROWS.min(batch.len - start);
                let c = self.chunks.len() as u32;
                self.chunks.push(Arc::new(batch.slice(start, take)));
                ids.extend((0..take as u32).map(|row| RowId { chunk: c, row }));
                start += take;
            }
        }
        ids
    }

    /// Adds rows `ids` (appended by [`TableData::append_unindexed`]) to
    /// every index; 1062 if one breaks a unique key. Many rows rebuild an
    /// index in one sort instead of inserting them one by one.
    pub fn index_rows(&mut self, ids: &[RowId]) -> Result<(), Duplicate> {
        let chunks = &self.chunks;
        for ix in &mut self.indexes {
            if ids.len() > 64 && ids.len() * 4 > ix.len() {
                *ix = KeyIndex::build(ix.def.clone(), chunks)?;
            } else {
                for &r in ids {
                    ix.insert(chunks, r)?;
                }
            }
        }
        Ok(())
    }

    /// This data with `batch` appended and indexed (the batch has the
    /// table's types); 1062 if a row breaks a unique key.
    pub fn appended(&self, batch: &Batch) -> Result<TableData, Duplicate> {
        let mut out = self.clone();
        out.push_rows(batch)?;
        Ok(out)
    }

    /// The rows that share a unique key with `row` (a full row of the
    /// table's values), in index order, each once. A key with a NULL
    /// conflicts with nothing.
    pub fn conflicts(&self, row: &[Value]) -> Vec<RowId> {
        let mut out: Vec<RowId> = Vec::new();
        for ix in self.indexes.iter().filter(|ix| ix.def.unique()) {
            let probe: Vec<Value> = ix.def.columns().map(|c| row[c].clone()).collect();
            if probe.iter().any(Value::is_null) {
                continue;
            }
            for r in ix.lookup(&self.chunks, &probe) {
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
        out
    }
}

/// Row-at-a-time writes on a private copy of a table version, through its
/// indexes: `REPLACE` and `INSERT … ON DUPLICATE KEY UPDATE`. Deleted rows
/// leave the indexes at once and the chunks at [`RowWriter::finish`].
#[derive(Debug)]
pub struct RowWriter {
    data: TableData,
    deleted: rustc_hash::FxHashSet<RowId>,
    types: Vec<DataType>,
}

impl RowWriter {
    /// A writer over a copy of `data` (whose columns have `schema`'s types).
    pub fn new(data: &TableData, schema: &Schema) -> Self {
        Self {
            data: data.clone(),
            deleted: Default::default(),
            types: schema.columns.iter().map(|c| c.ty).collect(),
        }
    }

    /// The data as written so far (deleted rows still in its chunks).
    pub fn data(&self) -> &TableData {
        &self.data
    }

    /// The live rows sharing a unique key with `row`.
    pub fn conflicts(&self, row: &[Value]) -> Vec<RowId> {
        self.data.conflicts(row)
    }

    /// Row `r`'s values.
    pub fn row(&self, r: RowId) -> Vec<Value> {
        self.data.row(r)
    }

    /// Adds a row (values of the table's types); 1062 if it breaks a key.
    pub fn insert(&mut self, row: &[Value]) -> Result<(), Duplicate> {
        let cols = self
            .types
            .iter()
            .zip(row)
            .map(|(ty, v)| Arc::new(Column::from_values(*ty, std::slice::from_ref(v))))
            .collect();
        self.data.push_rows(&Batch::new(cols, 1))?;
        Ok(())
    }

    /// Deletes row `r` (from the indexes now, from the chunks at the end).
    pub fn delete(&mut self, r: RowId) {
        if self.deleted.insert(r) {
            let chunks = &self.data.chunks;
            for ix in &mut self.data.indexes {
                ix.remove(chunks, r);
            }
        }
    }

    /// Replaces row `r`'s values with `row`; 1062 if the new values break
    /// a key.
    pub fn update(&mut self, r: RowId, row: &[Value]) -> Result<(), Duplicate> {
        let old = self.data.row(r);
        let touched: Vec<usize> = (0..self.data.indexes.len())
            .filter(|&i| self.data.indexes[i].def.columns().any(|c| old[c] != row[c]))
            .collect();
        for &i in &touched {
            let chunks = &self.data.chunks;
            self.data.indexes[i].remove(chunks, r);
        }
        let chunk = Arc::make_mut(&mut self.data.chunks[r.chunk as usize]);
        for (c, v) in row.iter().enumerate() {
            if old[c] != *v || old[c].data_type() != v.data_type() {
                set_cell(Arc::make_mut(&mut chunk.columns[c]), r.row as usize, v);
            }
        }
        for &i in &touched {
            let chunks = &self.data.chunks;
            self.data.indexes[i].insert(chunks, r)?;
        }
        Ok(())
    }

    /// The written data: deleted rows gone, indexes moved to the rows'
    /// new places (no re-sort).
    pub fn finish(self) -> TableData {
        if self.deleted.is_empty() {
            return self.data;
        }
        let mut chunks = Vec::with_capacity(self.data.chunks.len());
        // New place of every row of each old chunk (None: deleted).
        let mut places: Vec<Vec<Option<RowId>>> = Vec::with_capacity(self.data.chunks.len());
        for (c, chunk) in self.data.chunks.iter().enumerate() {
            let keep: Vec<u32> = (0..chunk.len as u32)
                .filter(|&row| {
                    !self.deleted.contains(&RowId {
                        chunk: c as u32,
                        row,
                    })
                })
                .collect();
            let new_chunk = chunks.len() as u32;
            let mut place = vec![None; chunk.len];
            for (n, &row) in keep.iter().enumerate() {
                place[row as usize] = Some(RowId {
                    chunk: new_chunk,
                    row: n as u32,
                });
            }
            places.push(place);
            if keep.len() == chunk.len {
                chunks.push(chunk.clone());
            } else if !keep.is_empty() {
                chunks.push(Arc::new(chunk.gather(&keep)));
            }
        }
        let indexes = self
            .data
            .indexes
            .iter()
            .map(|ix| ix.remapped(|r| places[r.chunk as usize][r.row as usize]))
            .collect();
        TableData { chunks, indexes }
    }
}

impl Table {
    /// A table outside any catalog, with no rows: a scope to compile
    /// expressions over (`ON DUPLICATE KEY UPDATE`'s `VALUES(col)`).
    pub fn detached(name: &str, schema: Schema) -> Table {
        Table {
            name: name.to_owned(),
            schema: Arc::new(schema),
            versions: Mutex::new(Vec::new()),
        }
    }
}

// ---- end of the index section ----

impl TableData {
    /// Total rows.
    pub fn rows(&self) -> usize {
        self.chunks.iter().map(|c| c.len).sum()
    }
    /// Approximate bytes.
    pub fn heap_bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.heap_bytes()).sum()
    }
}

/// A table: schema and committed versions.
#[derive(Debug)]
pub struct Table {
    /// Name.
    pub name: String,
    /// Schema.
    pub schema: Arc<Schema>,
    versions: Mutex<Vec<(u64, Arc<TableData>)>>,
}

impl Table {
    /// The newest version committed at or before `ts`.
    pub fn read(&self, ts: u64) -> Arc<TableData> {
        let v = lock(&self.versions);
        v.iter()
            .rev()
            .find(|(t, _)| *t <= ts)
            .or_else(|| v.first())
            .map(|(_, d)| d.clone())
            .unwrap_or_default()
    }
    fn latest_ts(&self) -> u64 {
        lock(&self.versions).last().map_or(0, |(t, _)| *t)
    }
    /// Number of versions kept (for tests of pruning).
    pub fn version_count(&self) -> usize {
        lock(&self.versions).len()
    }
}

/// A database's key: the tenant that owns it and its name (lower-cased).
/// Every database belongs to exactly one tenant; a connection reaches only
/// its own tenant's (the tenant comes from its context values, never from
/// the SQL text).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DbKey {
    /// The owning tenant.
    pub tenant: Arc<str>,
    /// The database's name, lower-cased.
    pub name: String,
}

impl DbKey {
    /// The key of `tenant`'s database `name` (lower-cased here).
    pub fn new(tenant: &Arc<str>, name: &str) -> Self {
        DbKey {
            tenant: tenant.clone(),
            name: name.to_lowercase(),
        }
    }
}

/// A table's or view's full name: its database and its name (lower-cased).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableKey {
    /// The database.
    pub db: DbKey,
    /// The table's name, lower-cased.
    pub name: String,
}

impl TableKey {
    /// The key of `name` (lower-cased here) in `db`.
    pub fn new(db: DbKey, name: &str) -> Self {
        TableKey {
            db,
            name: name.to_lowercase(),
        }
    }

    /// `db.table`, as MySQL names a table in its errors (the tenant is
    /// never shown).
    pub fn display(&self) -> String {
        format!("{}.{}", self.db.name, self.name)
    }
}

/// One database's tables and views.
#[derive(Debug, Default)]
struct Database {
    tables: BTreeMap<String, Arc<Table>>,
    /// Views, in the tables' namespace (see [`View`]).
    views: BTreeMap<String, Arc<View>>,
}

#[derive(Debug, Default)]
struct CatalogInner {
    /// Every tenant's databases, keyed by (tenant, database).
    dbs: BTreeMap<DbKey, Database>,
    ts: u64,
    snapshots: BTreeMap<u64, usize>,
}

impl CatalogInner {
    fn db(&self, key: &DbKey) -> Option<&Database> {
        self.dbs.get(key)
    }
    fn db_mut(&mut self, key: &DbKey) -> Result<&mut Database, StorageError> {
        self.dbs
            .get_mut(key)
            .ok_or_else(|| StorageError::UnknownDatabase(key.name.clone()))
    }
    fn table(&self, key: &TableKey) -> Option<&Arc<Table>> {
        self.db(&key.db).and_then(|d| d.tables.get(&key.name))
    }
}

/// All tables of a node, by tenant and database. One timestamp and one
/// lock cover every database, so a snapshot and a commit span databases
/// (of one tenant: a transaction reaches no other's).
#[derive(Debug, Default)]
pub struct Catalog {
    inner: Mutex<CatalogInner>,
}

/// A registered read snapshot; released on drop.
#[derive(Debug)]
pub struct Snapshot {
    catalog: Arc<Catalog>,
    /// The snapshot's timestamp.
    pub ts: u64,
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let mut c = lock(&self.catalog.inner);
        if let Some(n) = c.snapshots.get_mut(&self.ts) {
            *n -= 1;
            if *n == 0 {
                c.snapshots.remove(&self.ts);
            }
        }
    }
}

/// A transaction's private writes: table → (table, new data).
pub type WriteSet = HashMap<TableKey, (Arc<Table>, Arc<TableData>)>;

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Takes a snapshot of everything committed so far.
    pub fn snapshot(self: &Arc<Self>) -> Snapshot {
        let mut c = lock(&self.inner);
        let ts = c.ts;
        *c.snapshots.entry(ts).or_default() += 1;
        Snapshot {
            catalog: self.clone(),
            ts,
        }
    }

    /// Whether the database exists.
    pub fn has_database(&self, db: &DbKey) -> bool {
        lock(&self.inner).dbs.contains_key(db)
    }

    /// `tenant`'s database names, sorted.
    pub fn databases(&self, tenant: &str) -> Vec<String> {
        lock(&self.inner)
            .dbs
            .keys()
            .filter(|k| &*k.tenant == tenant)
            .map(|k| k.name.clone())
            .collect()
    }

    /// The tenants that own at least one database, sorted.
    pub fn tenants(&self) -> Vec<Arc<str>> {
        let mut v: Vec<Arc<str>> = lock(&self.inner)
            .dbs
            .keys()
            .map(|k| k.tenant.clone())
            .collect();
        v.dedup();
        v
    }

    /// `CREATE DATABASE`: `Ok(false)` if it existed and `if_not_exists`
    /// was given, else 1007.
    pub fn create_database(&self, db: &DbKey, if_not_exists: bool) -> Result<bool, StorageError> {
        let mut c = lock(&self.inner);
        if c.dbs.contains_key(db) {
            return if if_not_exists {
                Ok(false)
            } else {
                Err(StorageError::DatabaseExists(db.name.clone()))
            };
        }
        c.ts += 1;
        c.dbs.insert(db.clone(), Database::default());
        Ok(true)
    }

    /// `DROP DATABASE`: removes it with its tables and views (DDL commits
    /// at once; a transaction that wrote one of its tables then fails its
    /// commit with 1146). `Ok(None)` if missing and `if_exists` was given,
    /// else 1008; `Ok(Some(n))`: `n` tables were dropped.
    pub fn drop_database(
        &self,
        db: &DbKey,
        if_exists: bool,
    ) -> Result<Option<usize>, StorageError> {
        let mut c = lock(&self.inner);
        match c.dbs.remove(db) {
            Some(d) => {
                c.ts += 1;
                Ok(Some(d.tables.len()))
            }
            None if if_exists => Ok(None),
            None => Err(StorageError::DropMissingDatabase(db.name.clone())),
        }
    }

    /// A table by key.
    pub fn table(&self, key: &TableKey) -> Result<Arc<Table>, StorageError> {
        lock(&self.inner)
            .table(key)
            .cloned()
            .ok_or_else(|| StorageError::UnknownTable(key.display()))
    }

    /// The table names of a database (none if it does not exist).
    pub fn table_names(&self, db: &DbKey) -> Vec<String> {
        lock(&self.inner)
            .db(db)
            .map(|d| d.tables.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Creates a table (DDL commits at once). `Ok(false)` if it existed and
    /// `if_not_exists` was given; 1049 if its database does not exist.
    pub fn create_table(
        &self,
        key: &TableKey,
        schema: Schema,
        indexes: Vec<IndexDef>,
        if_not_exists: bool,
    ) -> Result<bool, StorageError> {
        let mut c = lock(&self.inner);
        let c = &mut *c;
        let d = c.db_mut(&key.db)?;
        if d.tables.contains_key(&key.name) || d.views.contains_key(&key.name) {
            return if if_not_exists {
                Ok(false)
            } else {
                Err(StorageError::TableExists(key.name.clone()))
            };
        }
        c.ts += 1;
        let ts = c.ts;
        let empty = TableData::with_index_defs(indexes);
        let d = c.db_mut(&key.db)?;
        d.tables.insert(
            key.name.clone(),
            Arc::new(Table {
                name: key.name.clone(),
                schema: Arc::new(schema),
                versions: Mutex::new(vec![(ts, Arc::new(empty))]),
            }),
        );
        Ok(true)
    }

    /// Drops a table. `Ok(false)` if missing and `if_exists` was given.
    pub fn drop_table(&self, key: &TableKey, if_exists: bool) -> Result<bool, StorageError> {
        let mut c = lock(&self.inner);
        let removed = c
            .dbs
            .get_mut(&key.db)
            .and_then(|d| d.tables.remove(&key.name));
        match removed {
            Some(_) => {
                c.ts += 1;
                Ok(true)
            }
            None if if_exists => Ok(false),
            None => Err(StorageError::BadTable(key.display())),
        }
    }

    /// Commits at once a new version of table `key` made by `change` from
    /// its newest one (`CREATE INDEX`, `DROP INDEX`: DDL commits at once).
    /// A transaction that wrote the table since its snapshot then fails
    /// its commit with a write conflict, as with any other commit.
    pub fn alter_data<E: From<StorageError>>(
        &self,
        key: &TableKey,
        change: impl FnOnce(&Table, &TableData) -> Result<TableData, E>,
    ) -> Result<(), E> {
        let mut c = lock(&self.inner);
        let table = c
            .table(key)
            .cloned()
            .ok_or_else(|| StorageError::UnknownTable(key.display()))?;
        let data = change(&table, &table.read(u64::MAX))?;
        c.ts += 1;
        let ts = c.ts;
        let oldest = c.snapshots.keys().next().copied().unwrap_or(ts);
        install(&table, ts, Arc::new(data), oldest);
        Ok(())
    }

    /// Commits `writes` made on snapshot `snapshot_ts`, atomically (across
    /// databases too).
    pub fn commit(&self, snapshot_ts: u64, writes: &WriteSet) -> Result<u64, StorageError> {
        let mut c = lock(&self.inner);
        for (key, (table, _)) in writes {
            let current = c.table(key);
            if !current.is_some_and(|t| Arc::ptr_eq(t, table)) {
                return Err(StorageError::UnknownTable(key.display()));
            }
            if table.latest_ts() > snapshot_ts {
                return Err(StorageError::WriteConflict(key.name.clone()));
            }
        }
        if writes.is_empty() {
            return Ok(c.ts);
        }
        c.ts += 1;
        let ts = c.ts;
        let oldest = c.snapshots.keys().next().copied().unwrap_or(ts);
        for (table, data) in writes.values() {
            install(table, ts, data.clone(), oldest);
        }
        Ok(ts)
    }
}

// ---- Views -------------------------------------------------------------
//
// A view is its query's text, kept in the catalog under the tables'
// namespace (a name is a table or a view, never both) and expanded by the
// planner wherever it is referenced. Like `CREATE TABLE` / `DROP TABLE`,
// `CREATE VIEW` / `DROP VIEW` commit at once (they advance the catalog's
// timestamp) and are seen by every statement planned after them; a view has
// no rows of its own, so the snapshots of the tables it reads are what a
// statement sees through it.

/// A view: its defining query and the names of its columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    /// Name (lower-cased).
    pub name: String,
    /// The database its query's unqualified table names resolve in: the
    /// creator's current database when it was created (as MySQL resolves
    /// them once, at creation); `None` if there was none.
    pub default_db: Option<String>,
    /// The defining query, as SQL text (parsed again at each use).
    pub query: String,
    /// The column names, fixed when the view was created (from the column
    /// list or the query).
    pub columns: Vec<String>,
}

impl Catalog {
    /// A view by key.
    pub fn view(&self, key: &TableKey) -> Option<Arc<View>> {
        lock(&self.inner)
            .db(&key.db)
            .and_then(|d| d.views.get(&key.name))
            .cloned()
    }

    /// The view names of a database.
    pub fn view_names(&self, db: &DbKey) -> Vec<String> {
        lock(&self.inner)
            .db(db)
            .map(|d| d.views.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// `CREATE [OR REPLACE] VIEW [IF NOT EXISTS]` in `db`. `Ok(false)` if
    /// it existed and `if_not_exists` was given. A table of that name is
    /// 1050, or 1347 with `or_replace`; 1049 if the database is missing.
    pub fn create_view(
        &self,
        db: &DbKey,
        view: View,
        or_replace: bool,
        if_not_exists: bool,
    ) -> Result<bool, StorageError> {
        let mut c = lock(&self.inner);
        let c = &mut *c;
        let d = c.db_mut(db)?;
        let key = view.name.to_lowercase();
        if d.tables.contains_key(&key) {
            return Err(if or_replace {
                StorageError::NotView(view.name)
            } else {
                StorageError::TableExists(view.name)
            });
        }
        if d.views.contains_key(&key) && !or_replace {
            return if if_not_exists {
                Ok(false)
            } else {
                Err(StorageError::TableExists(view.name))
            };
        }
        d.views.insert(key, Arc::new(view));
        c.ts += 1;
        Ok(true)
    }

    /// `DROP VIEW`. `Ok(false)` if missing and `if_exists` was given; a
    /// table of that name is 1347.
    pub fn drop_view(&self, key: &TableKey, if_exists: bool) -> Result<bool, StorageError> {
        let mut c = lock(&self.inner);
        let c = &mut *c;
        if let Some(d) = c.dbs.get_mut(&key.db) {
            if d.views.remove(&key.name).is_some() {
                c.ts += 1;
                return Ok(true);
            }
            if d.tables.contains_key(&key.name) {
                return Err(StorageError::NotView(key.name.clone()));
            }
        }
        if if_exists {
            Ok(false)
        } else {
            Err(StorageError::BadTable(key.display()))
        }
    }
}

/// Adds version `data` committed at `ts` to `table`, pruning the versions
/// no snapshot at or after `oldest` can read.
fn install(table: &Table, ts: u64, data: Arc<TableData>, oldest: u64) {
    let mut v = lock(&table.versions);
    v.push((ts, data));
    // Keep the newest version visible to the oldest snapshot, and
    // everything after it.
    let keep_from = v.iter().rposition(|(t, _)| *t <= oldest).unwrap_or(0);
    v.drain(..keep_from);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Column;

    fn schema() -> Schema {
        Schema {
            columns: vec![ColumnDef {
                name: "x".into(),
                ty: DataType::Int,
                nullable: true,
                limit: ColumnLimit::None,
                default: None,
            }],
        }
    }

    fn db() -> DbKey {
        DbKey::new(&Arc::from("acme"), "shop")
    }

    fn key(name: &str) -> TableKey {
        TableKey::new(db(), name)
    }

    fn catalog() -> Arc<Catalog> {
        let cat = Catalog::new();
        cat.create_database(&db(), false).unwrap();
        cat
    }

    fn batch(v: Vec<i64>) -> Batch {
        let n = v.len();
        Batch::new(vec![Arc::new(Column::ints(v))], n)
    }

    #[test]
    fn snapshot_isolation_and_first_committer_wins() {
        let cat = catalog();
        cat.create_table(&key("t"), schema(), Vec::new(), false)
            .unwrap();
        let t = cat.table(&key("T")).unwrap();
        let s1 = cat.snapshot();
        let s2 = cat.snapshot();
        let mut w1 = WriteSet::new();
        w1.insert(
            key("t"),
            (
                t.clone(),
                Arc::new(t.read(s1.ts).appended(&batch(vec![1])).unwrap()),
            ),
        );
        let mut w2 = WriteSet::new();
        w2.insert(
            key("t"),
            (
                t.clone(),
                Arc::new(t.read(s2.ts).appended(&batch(vec![2])).unwrap()),
            ),
        );
        cat.commit(s1.ts, &w1).unwrap();
        assert_eq!(t.read(s2.ts).rows(), 0, "s2 does not see the later commit");
        assert_eq!(
            cat.commit(s2.ts, &w2),
            Err(StorageError::WriteConflict("t".into()))
        );
        let s3 = cat.snapshot();
        assert_eq!(
            t.read(s3.ts).rows(),
            1,
            "the committed row survives the conflict"
        );
    }

    #[test]
    fn views_share_the_tables_namespace() {
        let cat = catalog();
        cat.create_table(&key("t"), schema(), Vec::new(), false)
            .unwrap();
        let view = |name: &str| View {
            name: name.into(),
            default_db: None,
            query: "SELECT 1".into(),
            columns: vec!["1".into()],
        };
        assert_eq!(
            cat.create_view(&db(), view("T"), false, false),
            Err(StorageError::TableExists("T".into()))
        );
        assert_eq!(
            cat.create_view(&db(), view("t"), true, false),
            Err(StorageError::NotView("t".into()))
        );
        assert_eq!(cat.create_view(&db(), view("v"), false, false), Ok(true));
        assert_eq!(cat.create_view(&db(), view("V"), false, true), Ok(false));
        assert_eq!(
            cat.create_view(&db(), view("v"), false, false),
            Err(StorageError::TableExists("v".into()))
        );
        assert_eq!(
            cat.create_table(&key("V"), schema(), Vec::new(), false),
            Err(StorageError::TableExists("v".into()))
        );
        let mut replaced = view("v");
        replaced.query = "SELECT 2".into();
        assert_eq!(cat.create_view(&db(), replaced, true, false), Ok(true));
        assert_eq!(
            cat.view(&key("V")).map(|v| v.query.clone()),
            Some("SELECT 2".into())
        );
        assert_eq!(
            cat.drop_view(&key("t"), false),
            Err(StorageError::NotView("t".into()))
        );
        assert_eq!(cat.drop_view(&key("v"), false), Ok(true));
        assert_eq!(cat.drop_view(&key("v"), true), Ok(false));
        assert_eq!(
            cat.drop_view(&key("v"), false),
            Err(StorageError::BadTable("shop.v".into()))
        );
        assert!(cat.view_names(&db()).is_empty());
    }

    #[test]
    fn databases_belong_to_one_tenant() {
        let cat = catalog();
        let other = DbKey::new(&Arc::from("globex"), "shop");
        cat.create_table(&key("t"), schema(), Vec::new(), false)
            .unwrap();
        assert_eq!(
            cat.table(&TableKey::new(other.clone(), "t")).map(|_| ()),
            Err(StorageError::UnknownTable("shop.t".into())),
            "the same database name in another tenant is another database"
        );
        assert_eq!(cat.create_database(&other, false), Ok(true));
        assert_eq!(
            cat.create_database(&other, false),
            Err(StorageError::DatabaseExists("shop".into()))
        );
        assert_eq!(cat.create_database(&other, true), Ok(false));
        assert!(cat.table_names(&other).is_empty());
        assert_eq!(cat.databases("acme"), vec!["shop".to_owned()]);
        assert_eq!(cat.tenants().len(), 2);
        assert_eq!(cat.drop_database(&db(), false), Ok(Some(1)));
        assert_eq!(cat.drop_database(&db(), true), Ok(None));
        assert_eq!(
            cat.drop_database(&db(), false),
            Err(StorageError::DropMissingDatabase("shop".into()))
        );
        assert_eq!(
            cat.create_table(&key("t"), schema(), Vec::new(), false),
            Err(StorageError::UnknownDatabase("shop".into()))
        );
        assert!(cat.has_database(&other));
    }

    #[test]
    fn a_commit_into_a_dropped_database_fails() {
        let cat = catalog();
        cat.create_table(&key("t"), schema(), Vec::new(), false)
            .unwrap();
        let t = cat.table(&key("t")).unwrap();
        let s = cat.snapshot();
        let mut w = WriteSet::new();
        w.insert(
            key("t"),
            (
                t.clone(),
                Arc::new(t.read(s.ts).appended(&batch(vec![1])).unwrap()),
            ),
        );
        cat.drop_database(&db(), false).unwrap();
        cat.create_database(&db(), false).unwrap();
        cat.create_table(&key("t"), schema(), Vec::new(), false)
            .unwrap();
        assert_eq!(
            cat.commit(s.ts, &w),
            Err(StorageError::UnknownTable("shop.t".into()))
        );
        assert_eq!(cat.table(&key("t")).unwrap().read(u64::MAX).rows(), 0);
    }

    #[test]
    fn append_fills_chunks() {
        let d = TableData::default()
            .appended(&batch((0..(CHUNK_ROWS as i64 + 10)).collect()))
            .unwrap();
        assert_eq!(d.chunks.len(), 2);
        let d2 = d.appended(&batch(vec![1, 2, 3])).unwrap();
        assert_eq!(d2.chunks.len(), 2);
        assert_eq!(d2.rows(), CHUNK_ROWS + 13);
        assert_eq!(d.rows(), CHUNK_ROWS + 10, "the old version is unchanged");
    }

    #[test]
    fn old_versions_are_pruned() {
        let cat = catalog();
        cat.create_table(&key("t"), schema(), Vec::new(), false)
            .unwrap();
        let t = cat.table(&key("t")).unwrap();
        for i in 0..10 {
            let s = cat.snapshot();
            let mut w = WriteSet::new();
            w.insert(
                key("t"),
                (
                    t.clone(),
                    Arc::new(t.read(s.ts).appended(&batch(vec![i])).unwrap()),
                ),
            );
            let ts = s.ts;
            drop(s);
            cat.commit(ts, &w).unwrap();
        }
        assert!(t.version_count() <= 2);
        assert_eq!(t.read(u64::MAX).rows(), 10);
    }
}
