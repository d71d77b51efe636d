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

use crate::data::{Batch, Column, DataType};
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
    /// `PRIMARY KEY` and `UNIQUE` keys, checked on every write.
    pub keys: Vec<UniqueKey>,
}

/// A `PRIMARY KEY` or `UNIQUE` key: no two rows have equal values in its
/// columns (a row with a NULL in them is not compared, as in MySQL; a
/// primary key's columns are NOT NULL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UniqueKey {
    /// `PRIMARY`, or the key's (or its first column's) name.
    pub name: String,
    /// Column indexes.
    pub columns: Vec<usize>,
}

/// One immutable version of a table's rows.
#[derive(Clone, Debug, Default)]
pub struct TableData {
    /// Chunks of at most [`CHUNK_ROWS`] rows.
    pub chunks: Vec<Arc<Batch>>,
}

impl TableData {
    /// The first values of `key` that two rows share, if any. A full pass
    /// over the rows (cascade has no indexes yet): O(rows) per write to a
    /// table with keys.
    pub fn duplicate(&self, key: &UniqueKey) -> Option<Vec<crate::data::Value>> {
        let mut seen = rustc_hash::FxHashSet::default();
        for chunk in &self.chunks {
            for i in 0..chunk.len {
                let vals: Vec<crate::data::Value> = key
                    .columns
                    .iter()
                    .map(|&c| chunk.columns[c].value(i))
                    .collect();
                if vals.iter().any(crate::data::Value::is_null) {
                    continue;
                }
                if let Some(dup) = seen.replace(vals) {
                    return Some(dup);
                }
            }
        }
        None
    }
    /// Total rows.
    pub fn rows(&self) -> usize {
        self.chunks.iter().map(|c| c.len).sum()
    }
    /// Approximate bytes.
    pub fn heap_bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.heap_bytes()).sum()
    }
    /// `REPLACE`: this data with `batch`'s rows added in order, each first
    /// deleting every row it shares a value of a unique key with (a row
    /// with a NULL in a key conflicts with none on that key). Returns the
    /// data and the number of rows deleted. Without keys, an append.
    pub fn replaced(&self, batch: &Batch, schema: &Schema) -> (TableData, u64) {
        if schema.keys.is_empty() {
            return (self.appended(batch), 0);
        }
        use crate::data::Value;
        let mut rows: Vec<Vec<Value>> = Vec::with_capacity(self.rows() + batch.len);
        for chunk in &self.chunks {
            rows.extend((0..chunk.len).map(|i| chunk.row(i)));
        }
        let key_of = |row: &[Value], k: &UniqueKey| -> Option<Vec<Value>> {
            let v: Vec<Value> = k.columns.iter().map(|&c| row[c].clone()).collect();
            (!v.iter().any(Value::is_null)).then_some(v)
        };
        let mut alive = vec![true; rows.len()];
        let mut maps: Vec<rustc_hash::FxHashMap<Vec<Value>, usize>> =
            vec![rustc_hash::FxHashMap::default(); schema.keys.len()];
        for (r, row) in rows.iter().enumerate() {
            for (m, k) in maps.iter_mut().zip(&schema.keys) {
                if let Some(v) = key_of(row, k) {
                    m.insert(v, r);
                }
            }
        }
        let mut deleted = 0u64;
        for i in 0..batch.len {
            let row = batch.row(i);
            let victims: Vec<usize> = maps
                .iter()
                .zip(&schema.keys)
                .filter_map(|(m, k)| key_of(&row, k).and_then(|v| m.get(&v).copied()))
                .collect();
            for r in victims {
                if !alive[r] {
                    continue;
                }
                alive[r] = false;
                deleted += 1;
                for (m, k) in maps.iter_mut().zip(&schema.keys) {
                    if let Some(v) = key_of(&rows[r], k) {
                        if m.get(&v) == Some(&r) {
                            m.remove(&v);
                        }
                    }
                }
            }
            let r = rows.len();
            for (m, k) in maps.iter_mut().zip(&schema.keys) {
                if let Some(v) = key_of(&row, k) {
                    m.insert(v, r);
                }
            }
            rows.push(row);
            alive.push(true);
        }
        let mut out = TableData::default();
        let kept: Vec<&Vec<Value>> = rows
            .iter()
            .zip(&alive)
            .filter_map(|(r, a)| a.then_some(r))
            .collect();
        for part in kept.chunks(CHUNK_ROWS) {
            let columns = schema
                .columns
                .iter()
                .enumerate()
                .map(|(c, def)| {
                    let vals: Vec<Value> = part.iter().map(|r| r[c].clone()).collect();
                    Arc::new(Column::from_values(def.ty, &vals))
                })
                .collect();
            out = out.appended(&Batch::new(columns, part.len()));
        }
        (out, deleted)
    }
    /// This data with `batch` appended (the batch has the table's types).
    pub fn appended(&self, batch: &Batch) -> TableData {
        let mut chunks = self.chunks.clone();
        let mut start = 0;
        while start < batch.len {
            let room = match chunks.last() {
                Some(last) if last.len < CHUNK_ROWS => CHUNK_ROWS - last.len,
                _ => 0,
            };
            if room > 0 {
                let take = room.min(batch.len - start);
                let part = batch.slice(start, take);
                let Some(last) = chunks.pop() else { break };
                let mut cols: Vec<Column> = last.columns.iter().map(|c| (**c).clone()).collect();
                for (c, p) in cols.iter_mut().zip(&part.columns) {
                    c.append(p);
                }
                chunks.push(Arc::new(Batch::new(
                    cols.into_iter().map(Arc::new).collect(),
                    last.len + take,
                )));
                start += take;
            } else {
                let take = CHUNK_ROWS.min(batch.len - start);
                chunks.push(Arc::new(batch.slice(start, take)));
                start += take;
            }
        }
        TableData { chunks }
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
        let empty = TableData { chunks: Vec::new() };
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
            let mut v = lock(&table.versions);
            v.push((ts, data.clone()));
            // Keep the newest version visible to the oldest snapshot, and
            // everything after it.
            let keep_from = v.iter().rposition(|(t, _)| *t <= oldest).unwrap_or(0);
            v.drain(..keep_from);
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
            keys: Vec::new(),
        }
    }

    fn batch(v: Vec<i64>) -> Batch {
        let n = v.len();
        Batch::new(vec![Arc::new(Column::ints(v))], n)
    }

    #[test]
    fn snapshot_isolation_and_first_committer_wins() {
        let cat = Catalog::new();
        cat.create_table("t", schema(), false).unwrap();
        let t = cat.table("T").unwrap();
        let s1 = cat.snapshot();
        let s2 = cat.snapshot();
        let mut w1 = WriteSet::new();
        w1.insert(
            "t".into(),
            (t.clone(), Arc::new(t.read(s1.ts).appended(&batch(vec![1])))),
        );
        let mut w2 = WriteSet::new();
        w2.insert(
            "t".into(),
            (t.clone(), Arc::new(t.read(s2.ts).appended(&batch(vec![2])))),
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
        cat.create_table("t", schema(), false).unwrap();
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
            cat.create_table("V", schema(), false),
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
        let d = TableData::default().appended(&batch((0..(CHUNK_ROWS as i64 + 10)).collect()));
        assert_eq!(d.chunks.len(), 2);
        let d2 = d.appended(&batch(vec![1, 2, 3]));
        assert_eq!(d2.chunks.len(), 2);
        assert_eq!(d2.rows(), CHUNK_ROWS + 13);
        assert_eq!(d.rows(), CHUNK_ROWS + 10, "the old version is unchanged");
    }

    #[test]
    fn old_versions_are_pruned() {
        let cat = Catalog::new();
        cat.create_table("t", schema(), false).unwrap();
        let t = cat.table("t").unwrap();
        for i in 0..10 {
            let s = cat.snapshot();
            let mut w = WriteSet::new();
            w.insert(
                "t".into(),
                (t.clone(), Arc::new(t.read(s.ts).appended(&batch(vec![i])))),
            );
            let ts = s.ts;
            drop(s);
            cat.commit(ts, &w).unwrap();
        }
        assert!(t.version_count() <= 2);
        assert_eq!(t.read(u64::MAX).rows(), 10);
    }
}
