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

#[derive(Debug, Default)]
struct CatalogInner {
    tables: BTreeMap<String, Arc<Table>>,
    /// Views, in the tables' namespace (see [`View`]).
    views: BTreeMap<String, Arc<View>>,
    ts: u64,
    snapshots: BTreeMap<u64, usize>,
}

/// All tables of a node.
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

/// A transaction's private writes: table name → (table, new data).
pub type WriteSet = HashMap<String, (Arc<Table>, Arc<TableData>)>;

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

    /// A table by name (case-insensitive).
    pub fn table(&self, name: &str) -> Result<Arc<Table>, StorageError> {
        lock(&self.inner)
            .tables
            .get(&name.to_lowercase())
            .cloned()
            .ok_or_else(|| StorageError::UnknownTable(name.to_owned()))
    }

    /// Table names.
    pub fn table_names(&self) -> Vec<String> {
        lock(&self.inner).tables.keys().cloned().collect()
    }

    /// Creates a table (DDL commits at once). `Ok(false)` if it existed and
    /// `if_not_exists` was given.
    pub fn create_table(
        &self,
        name: &str,
        schema: Schema,
        indexes: Vec<IndexDef>,
        if_not_exists: bool,
    ) -> Result<bool, StorageError> {
        let mut c = lock(&self.inner);
        let key = name.to_lowercase();
        if c.tables.contains_key(&key) || c.views.contains_key(&key) {
            return if if_not_exists {
                Ok(false)
            } else {
                Err(StorageError::TableExists(name.to_owned()))
            };
        }
        c.ts += 1;
        let ts = c.ts;
        let empty = TableData::with_index_defs(indexes);
        c.tables.insert(
            key.clone(),
            Arc::new(Table {
                name: key,
                schema: Arc::new(schema),
                versions: Mutex::new(vec![(ts, Arc::new(empty))]),
            }),
        );
        Ok(true)
    }

    /// Drops a table. `Ok(false)` if missing and `if_exists` was given.
    pub fn drop_table(&self, name: &str, if_exists: bool) -> Result<bool, StorageError> {
        let mut c = lock(&self.inner);
        match c.tables.remove(&name.to_lowercase()) {
            Some(_) => {
                c.ts += 1;
                Ok(true)
            }
            None if if_exists => Ok(false),
            None => Err(StorageError::BadTable(name.to_owned())),
        }
    }

    /// Commits at once a new version of table `name` made by `change` from
    /// its newest one (`CREATE INDEX`, `DROP INDEX`: DDL commits at once).
    /// A transaction that wrote the table since its snapshot then fails
    /// its commit with a write conflict, as with any other commit.
    pub fn alter_data<E: From<StorageError>>(
        &self,
        name: &str,
        change: impl FnOnce(&Table, &TableData) -> Result<TableData, E>,
    ) -> Result<(), E> {
        let mut c = lock(&self.inner);
        let table = c
            .tables
            .get(&name.to_lowercase())
            .cloned()
            .ok_or_else(|| StorageError::UnknownTable(name.to_owned()))?;
        let data = change(&table, &table.read(u64::MAX))?;
        c.ts += 1;
        let ts = c.ts;
        let oldest = c.snapshots.keys().next().copied().unwrap_or(ts);
        install(&table, ts, Arc::new(data), oldest);
        Ok(())
    }

    /// Commits `writes` made on snapshot `snapshot_ts`, atomically.
    pub fn commit(&self, snapshot_ts: u64, writes: &WriteSet) -> Result<u64, StorageError> {
        let mut c = lock(&self.inner);
        for (name, (table, _)) in writes {
            let current = c.tables.get(name);
            if !current.is_some_and(|t| Arc::ptr_eq(t, table)) {
                return Err(StorageError::UnknownTable(name.clone()));
            }
            if table.latest_ts() > snapshot_ts {
                return Err(StorageError::WriteConflict(name.clone()));
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
    /// The defining query, as SQL text (parsed again at each use).
    pub query: String,
    /// The column names, fixed when the view was created (from the column
    /// list or the query).
    pub columns: Vec<String>,
}

impl Catalog {
    /// A view by name (case-insensitive).
    pub fn view(&self, name: &str) -> Option<Arc<View>> {
        lock(&self.inner).views.get(&name.to_lowercase()).cloned()
    }

    /// View names.
    pub fn view_names(&self) -> Vec<String> {
        lock(&self.inner).views.keys().cloned().collect()
    }

    /// `CREATE [OR REPLACE] VIEW [IF NOT EXISTS]`. `Ok(false)` if it existed
    /// and `if_not_exists` was given. A table of that name is 1050, or 1347
    /// with `or_replace`.
    pub fn create_view(
        &self,
        view: View,
        or_replace: bool,
        if_not_exists: bool,
    ) -> Result<bool, StorageError> {
        let mut c = lock(&self.inner);
        let key = view.name.to_lowercase();
        if c.tables.contains_key(&key) {
            return Err(if or_replace {
                StorageError::NotView(view.name)
            } else {
                StorageError::TableExists(view.name)
            });
        }
        if c.views.contains_key(&key) && !or_replace {
            return if if_not_exists {
                Ok(false)
            } else {
                Err(StorageError::TableExists(view.name))
            };
        }
        c.ts += 1;
        c.views.insert(key, Arc::new(view));
        Ok(true)
    }

    /// `DROP VIEW`. `Ok(false)` if missing and `if_exists` was given; a
    /// table of that name is 1347.
    pub fn drop_view(&self, name: &str, if_exists: bool) -> Result<bool, StorageError> {
        let mut c = lock(&self.inner);
        let key = name.to_lowercase();
        if c.views.remove(&key).is_some() {
            c.ts += 1;
            return Ok(true);
        }
        if c.tables.contains_key(&key) {
            return Err(StorageError::NotView(name.to_owned()));
        }
        if if_exists {
            Ok(false)
        } else {
            Err(StorageError::BadTable(name.to_owned()))
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

    fn batch(v: Vec<i64>) -> Batch {
        let n = v.len();
        Batch::new(vec![Arc::new(Column::ints(v))], n)
    }

    #[test]
    fn snapshot_isolation_and_first_committer_wins() {
        let cat = Catalog::new();
        cat.create_table("t", schema(), Vec::new(), false).unwrap();
        let t = cat.table("T").unwrap();
        let s1 = cat.snapshot();
        let s2 = cat.snapshot();
        let mut w1 = WriteSet::new();
        w1.insert(
            "t".into(),
            (
                t.clone(),
                Arc::new(t.read(s1.ts).appended(&batch(vec![1])).unwrap()),
            ),
        );
        let mut w2 = WriteSet::new();
        w2.insert(
            "t".into(),
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
        let cat = Catalog::new();
        cat.create_table("t", schema(), Vec::new(), false).unwrap();
        let view = |name: &str| View {
            name: name.into(),
            query: "SELECT 1".into(),
            columns: vec!["1".into()],
        };
        assert_eq!(
            cat.create_view(view("T"), false, false),
            Err(StorageError::TableExists("T".into()))
        );
        assert_eq!(
            cat.create_view(view("t"), true, false),
            Err(StorageError::NotView("t".into()))
        );
        assert_eq!(cat.create_view(view("v"), false, false), Ok(true));
        assert_eq!(cat.create_view(view("V"), false, true), Ok(false));
        assert_eq!(
            cat.create_view(view("v"), false, false),
            Err(StorageError::TableExists("v".into()))
        );
        assert_eq!(
            cat.create_table("V", schema(), Vec::new(), false),
            Err(StorageError::TableExists("V".into()))
        );
        let mut replaced = view("v");
        replaced.query = "SELECT 2".into();
        assert_eq!(cat.create_view(replaced, true, false), Ok(true));
        assert_eq!(
            cat.view("V").map(|v| v.query.clone()),
            Some("SELECT 2".into())
        );
        assert_eq!(
            cat.drop_view("t", false),
            Err(StorageError::NotView("t".into()))
        );
        assert_eq!(cat.drop_view("v", false), Ok(true));
        assert_eq!(cat.drop_view("v", true), Ok(false));
        assert_eq!(
            cat.drop_view("v", false),
            Err(StorageError::BadTable("v".into()))
        );
        assert!(cat.view_names().is_empty());
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
        let cat = Catalog::new();
        cat.create_table("t", schema(), Vec::new(), false).unwrap();
        let t = cat.table("t").unwrap();
        for i in 0..10 {
            let s = cat.snapshot();
            let mut w = WriteSet::new();
            w.insert(
                "t".into(),
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
