//! Ordered indexes over one table version's rows (`PRIMARY KEY`, `UNIQUE`,
//! `INDEX`).
//!
//! An index is the table's row ids sorted by the indexed columns' values
//! (then by row id), cut into leaves of at most [`LEAF_MAX`] ids shared by
//! `Arc`. It stores no values: a comparison reads them from the chunks of
//! the [`crate::storage::TableData`] that owns the index, so an index and
//! its data are always one version. Writing copies only the leaves it
//! touches (copy-on-write like the chunks), so a snapshot keeps its index
//! unchanged while a transaction writes its own copy, and a rollback just
//! drops that copy.
//!
//! Order: a `NULL` sorts first; numbers by value; text by its bytes (the
//! engine's comparison). A `UNIQUE` index refuses a second row with equal
//! values in all its columns unless one of them is `NULL` (MySQL). A key
//! part with a prefix length (`UNIQUE (a(1))`) compares the first `n`
//! characters only, as MySQL's prefix keys do.

use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::Arc;

use crate::data::{Batch, ColumnData, Value};

/// Most row ids in one leaf; a fuller leaf is split in two.
pub const LEAF_MAX: usize = 512;

/// Where a row is: its chunk and its offset in the chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RowId {
    /// Chunk number.
    pub chunk: u32,
    /// Row in the chunk.
    pub row: u32,
}

/// What kind of key an index is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexKind {
    /// `PRIMARY KEY`: unique, columns NOT NULL.
    Primary,
    /// `UNIQUE`.
    Unique,
    /// `INDEX` / `KEY`: ordered, not unique.
    Plain,
}

/// One column of an index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPart {
    /// The column's position in the table.
    pub column: usize,
    /// A prefix length (`a(10)`): only the first characters are compared.
    pub prefix: Option<u32>,
    /// Declared `DESC` (kept for `SHOW CREATE TABLE`; the order used is
    /// ascending, which serves both directions).
    pub desc: bool,
}

/// An index's definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexDef {
    /// `PRIMARY`, or the index's name.
    pub name: String,
    /// Primary, unique or plain.
    pub kind: IndexKind,
    /// The key parts, in order.
    pub parts: Vec<KeyPart>,
}

impl IndexDef {
    /// Whether two rows may not share a key.
    pub fn unique(&self) -> bool {
        self.kind != IndexKind::Plain
    }
    /// The table column positions of the key parts.
    pub fn columns(&self) -> impl Iterator<Item = usize> + '_ {
        self.parts.iter().map(|p| p.column)
    }
}

/// Two rows share a unique key: the index and the row already holding it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicate {
    /// The index's name.
    pub index: String,
    /// The key's values as MySQL prints them (`1-a`).
    pub entry: String,
    /// The row that holds the key.
    pub existing: RowId,
}

/// An ordered index over one table version (see the module doc).
#[derive(Clone, Debug)]
pub struct KeyIndex {
    /// The definition.
    pub def: Arc<IndexDef>,
    leaves: Vec<Arc<Vec<RowId>>>,
    len: usize,
}

/// The first `n` characters of `s`.
fn prefix(s: &str, n: Option<u32>) -> &str {
    match n {
        Some(n) => match s.char_indices().nth(n as usize) {
            Some((at, _)) => &s[..at],
            None => s,
        },
        None => s,
    }
}

/// One cell compared with another (NULL first).
fn cmp_cells(chunks: &[Arc<Batch>], part: &KeyPart, a: RowId, b: RowId) -> Ordering {
    let ca = &chunks[a.chunk as usize].columns[part.column];
    let cb = &chunks[b.chunk as usize].columns[part.column];
    let (ia, ib) = (a.row as usize, b.row as usize);
    match (ca.is_null(ia), cb.is_null(ib)) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        _ => {}
    }
    match (&ca.data, &cb.data) {
        (ColumnData::Int(x), ColumnData::Int(y)) => x[ia].cmp(&y[ib]),
        (ColumnData::Float(x), ColumnData::Float(y)) => {
            x[ia].partial_cmp(&y[ib]).unwrap_or(Ordering::Equal)
        }
        (ColumnData::Text(x), ColumnData::Text(y)) => {
            prefix(&x[ia], part.prefix).cmp(prefix(&y[ib], part.prefix))
        }
        _ => ca.value(ia).sort_cmp(&cb.value(ib)),
    }
}

/// A row's cell compared with a probe value (NULL first).
fn cmp_probe_cell(chunks: &[Arc<Batch>], part: &KeyPart, r: RowId, probe: &Value) -> Ordering {
    let c = &chunks[r.chunk as usize].columns[part.column];
    let i = r.row as usize;
    match (c.is_null(i), probe.is_null()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        _ => {}
    }
    match (&c.data, probe) {
        (ColumnData::Int(x), Value::Int(p)) => x[i].cmp(p),
        (ColumnData::Float(x), Value::Float(p)) => x[i].partial_cmp(p).unwrap_or(Ordering::Equal),
        (ColumnData::Text(x), Value::Text(p)) => {
            prefix(&x[i], part.prefix).cmp(prefix(p, part.prefix))
        }
        _ => c.value(i).sort_cmp(probe),
    }
}

/// A DOUBLE as an integer of the same order (`-0.0` as `0.0`; no NaN is
/// ever stored).
fn float_order(x: f64) -> u64 {
    let b = if x == 0.0 { 0.0f64 } else { x }.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

/// Sorts `ids` into entry order for a one-column index without a prefix,
/// on keys taken out of the columns once (the fast path of a bulk build);
/// `false` (nothing done) for other indexes.
fn sort_one_column(def: &IndexDef, chunks: &[Arc<Batch>], ids: &mut Vec<RowId>) -> bool {
    let [p] = def.parts.as_slice() else {
        return false;
    };
    if p.prefix.is_some() || chunks.is_empty() {
        return false;
    }
    let col = |r: &RowId| &chunks[r.chunk as usize].columns[p.column];
    let same = |f: fn(&ColumnData) -> bool| chunks.iter().all(|c| f(&c.columns[p.column].data));
    if same(|d| matches!(d, ColumnData::Int(_))) {
        let mut v: Vec<(Option<i64>, RowId)> = ids
            .iter()
            .map(|r| {
                let c = col(r);
                let i = r.row as usize;
                let k = match &c.data {
                    ColumnData::Int(x) if !c.is_null(i) => Some(x[i]),
                    _ => None,
                };
                (k, *r)
            })
            .collect();
        v.sort_unstable();
        *ids = v.into_iter().map(|(_, r)| r).collect();
    } else if same(|d| matches!(d, ColumnData::Float(_))) {
        let mut v: Vec<(Option<u64>, RowId)> = ids
            .iter()
            .map(|r| {
                let c = col(r);
                let i = r.row as usize;
                let k = match &c.data {
                    ColumnData::Float(x) if !c.is_null(i) => Some(float_order(x[i])),
                    _ => None,
                };
                (k, *r)
            })
            .collect();
        v.sort_unstable();
        *ids = v.into_iter().map(|(_, r)| r).collect();
    } else if same(|d| matches!(d, ColumnData::Text(_))) {
        let mut v: Vec<(Option<&str>, RowId)> = ids
            .iter()
            .map(|r| {
                let c = col(r);
                let i = r.row as usize;
                let k = match &c.data {
                    ColumnData::Text(x) if !c.is_null(i) => Some(&*x[i]),
                    _ => None,
                };
                (k, *r)
            })
            .collect();
        v.sort_unstable();
        *ids = v.into_iter().map(|(_, r)| r).collect();
    } else {
        return false;
    }
    true
}

impl KeyIndex {
    /// An empty index.
    pub fn new(def: IndexDef) -> Self {
        Self {
            def: Arc::new(def),
            leaves: Vec::new(),
            len: 0,
        }
    }

    /// Entries (rows) in the index.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the index has no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The key of `a` compared with the key of `b`.
    fn cmp_key(&self, chunks: &[Arc<Batch>], a: RowId, b: RowId) -> Ordering {
        for p in &self.def.parts {
            let o = cmp_cells(chunks, p, a, b);
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }

    /// The entry order: by key, then by row id.
    fn cmp_entry(&self, chunks: &[Arc<Batch>], a: RowId, b: RowId) -> Ordering {
        self.cmp_key(chunks, a, b).then(a.cmp(&b))
    }

    /// The key of `r` compared with `probe` (the first `probe.len()` key
    /// parts).
    fn cmp_probe(&self, chunks: &[Arc<Batch>], r: RowId, probe: &[Value]) -> Ordering {
        for (p, v) in self.def.parts.iter().zip(probe) {
            let o = cmp_probe_cell(chunks, p, r, v);
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }

    /// Whether `r`'s key has a NULL (such a key is never a duplicate).
    fn has_null(&self, chunks: &[Arc<Batch>], r: RowId) -> bool {
        self.def
            .columns()
            .any(|c| chunks[r.chunk as usize].columns[c].is_null(r.row as usize))
    }

    /// The key of `r` as MySQL prints it in error 1062.
    pub fn entry_text(&self, chunks: &[Arc<Batch>], r: RowId) -> String {
        self.def
            .parts
            .iter()
            .map(|p| {
                let v = chunks[r.chunk as usize].columns[p.column].value(r.row as usize);
                match (&v, p.prefix) {
                    (Value::Text(s), Some(_)) => prefix(s, p.prefix).to_owned(),
                    _ => v.to_string(),
                }
            })
            .collect::<Vec<_>>()
            .join("-")
    }

    fn duplicate(&self, chunks: &[Arc<Batch>], new: RowId, existing: RowId) -> Duplicate {
        Duplicate {
            index: self.def.name.clone(),
            entry: self.entry_text(chunks, new),
            existing,
        }
    }

    /// The index of every row of `chunks`, sorted at once; `Err` names a
    /// duplicate when the index is unique.
    pub fn build(def: Arc<IndexDef>, chunks: &[Arc<Batch>]) -> Result<Self, Duplicate> {
        let mut ids: Vec<RowId> = Vec::with_capacity(chunks.iter().map(|c| c.len).sum());
        for (c, chunk) in chunks.iter().enumerate() {
            ids.extend((0..chunk.len as u32).map(|row| RowId {
                chunk: c as u32,
                row,
            }));
        }
        let mut ix = Self {
            def,
            leaves: Vec::new(),
            len: 0,
        };
        if !sort_one_column(&ix.def, chunks, &mut ids) {
            ids.sort_unstable_by(|a, b| ix.cmp_entry(chunks, *a, *b));
        }
        if ix.def.unique() {
            for w in ids.windows(2) {
                if ix.cmp_key(chunks, w[0], w[1]) == Ordering::Equal && !ix.has_null(chunks, w[1]) {
                    return Err(ix.duplicate(chunks, w[1], w[0]));
                }
            }
        }
        ix.set_sorted(ids);
        Ok(ix)
    }

    /// Replaces the entries with `ids` (already in entry order).
    fn set_sorted(&mut self, ids: Vec<RowId>) {
        self.len = ids.len();
        self.leaves = ids
            .chunks(LEAF_MAX * 3 / 4)
            .map(|c| Arc::new(c.to_vec()))
            .collect();
    }

    /// The leaf that holds (or would hold) an entry ordered by `cmp`
    /// (`Less` while the probe is above the leaf's first entry).
    fn leaf_for(&self, mut below: impl FnMut(RowId) -> bool) -> usize {
        // The last leaf whose first entry is below the probe.
        self.leaves
            .partition_point(|l| below(l[0]))
            .saturating_sub(1)
    }

    /// Adds `r` (whose values are in `chunks`). A unique index refuses a
    /// key another row holds.
    pub fn insert(&mut self, chunks: &[Arc<Batch>], r: RowId) -> Result<(), Duplicate> {
        if self.leaves.is_empty() {
            self.leaves.push(Arc::new(vec![r]));
            self.len = 1;
            return Ok(());
        }
        let li = self.leaf_for(|e| self.cmp_entry(chunks, e, r) == Ordering::Less);
        let pos =
            self.leaves[li].partition_point(|&e| self.cmp_entry(chunks, e, r) == Ordering::Less);
        if self.def.unique() && !self.has_null(chunks, r) {
            // Equal keys sit next to each other: a duplicate is a neighbour.
            let before = if pos > 0 {
                Some(self.leaves[li][pos - 1])
            } else if li > 0 {
                self.leaves[li - 1].last().copied()
            } else {
                None
            };
            let after = if pos < self.leaves[li].len() {
                Some(self.leaves[li][pos])
            } else {
                self.leaves.get(li + 1).map(|l| l[0])
            };
            for n in [before, after].into_iter().flatten() {
                if self.cmp_key(chunks, n, r) == Ordering::Equal {
                    return Err(self.duplicate(chunks, r, n));
                }
            }
        }
        let leaf = Arc::make_mut(&mut self.leaves[li]);
        leaf.insert(pos, r);
        if leaf.len() > LEAF_MAX {
            let tail = leaf.split_off(leaf.len() / 2);
            self.leaves.insert(li + 1, Arc::new(tail));
        }
        self.len += 1;
        Ok(())
    }

    /// Removes `r`, whose values in `chunks` are the ones it was indexed
    /// with. `false` if it was not there.
    pub fn remove(&mut self, chunks: &[Arc<Batch>], r: RowId) -> bool {
        if self.leaves.is_empty() {
            return false;
        }
        let li = self.leaf_for(|e| self.cmp_entry(chunks, e, r) != Ordering::Greater);
        let pos =
            self.leaves[li].partition_point(|&e| self.cmp_entry(chunks, e, r) == Ordering::Less);
        if self.leaves[li].get(pos) != Some(&r) {
            return false;
        }
        let leaf = Arc::make_mut(&mut self.leaves[li]);
        leaf.remove(pos);
        if leaf.is_empty() {
            self.leaves.remove(li);
        }
        self.len -= 1;
        true
    }

    /// The rows whose key equals `probe` (a prefix of the key parts).
    pub fn lookup(&self, chunks: &[Arc<Batch>], probe: &[Value]) -> Vec<RowId> {
        let mut out = Vec::new();
        let mut cur = self.seek(chunks, Bound::Included(probe));
        while let Some(r) = self.get(cur) {
            if self.cmp_probe(chunks, r, probe) != Ordering::Equal {
                break;
            }
            out.push(r);
            cur = self.next(cur);
        }
        out
    }

    /// The position of the first entry at or after `from`.
    pub fn seek(&self, chunks: &[Arc<Batch>], from: Bound<&[Value]>) -> Cursor {
        let below = |e: RowId| match from {
            Bound::Unbounded => false,
            Bound::Included(p) => self.cmp_probe(chunks, e, p) == Ordering::Less,
            Bound::Excluded(p) => self.cmp_probe(chunks, e, p) != Ordering::Greater,
        };
        if self.leaves.is_empty() {
            return Cursor { leaf: 0, pos: 0 };
        }
        let li = self.leaf_for(below);
        let pos = self.leaves[li].partition_point(|&e| below(e));
        self.normalize(Cursor { leaf: li, pos })
    }

    fn normalize(&self, mut c: Cursor) -> Cursor {
        while c.leaf < self.leaves.len() && c.pos >= self.leaves[c.leaf].len() {
            c.leaf += 1;
            c.pos = 0;
        }
        c
    }

    /// How many entries come before `c`: O(leaves).
    pub fn rank(&self, c: Cursor) -> usize {
        let before: usize = self.leaves.iter().take(c.leaf).map(|l| l.len()).sum();
        before + c.pos
    }

    /// How many entries lie in `range` (of the first key part), counted
    /// from two seeks without walking the entries.
    pub fn count_in(&self, chunks: &[Arc<Batch>], range: &KeyRange) -> usize {
        let from = range.seek_from();
        let start = self.rank(self.seek(chunks, as_ref(&from)));
        let end = match &range.hi {
            Bound::Included(v) => {
                self.rank(self.seek(chunks, Bound::Excluded(std::slice::from_ref(v))))
            }
            Bound::Excluded(v) => {
                self.rank(self.seek(chunks, Bound::Included(std::slice::from_ref(v))))
            }
            Bound::Unbounded => self.len,
        };
        end.saturating_sub(start)
    }

    /// The entry at `c` (`None` past the end).
    pub fn get(&self, c: Cursor) -> Option<RowId> {
        self.leaves.get(c.leaf).and_then(|l| l.get(c.pos)).copied()
    }

    /// The position after `c`.
    pub fn next(&self, c: Cursor) -> Cursor {
        self.normalize(Cursor {
            leaf: c.leaf,
            pos: c.pos + 1,
        })
    }

    /// Whether the entry `r` is past `to` (the end of a range).
    pub fn past(&self, chunks: &[Arc<Batch>], r: RowId, to: Bound<&[Value]>) -> bool {
        match to {
            Bound::Unbounded => false,
            Bound::Included(p) => self.cmp_probe(chunks, r, p) == Ordering::Greater,
            Bound::Excluded(p) => self.cmp_probe(chunks, r, p) != Ordering::Less,
        }
    }

    /// This index with every entry moved by `map` (`None`: the row is
    /// gone). `map` must keep the order of the rows it keeps (a delete
    /// that compacts chunks does): O(entries), no comparison.
    pub fn remapped(&self, map: impl Fn(RowId) -> Option<RowId>) -> Self {
        let ids: Vec<RowId> = self
            .leaves
            .iter()
            .flat_map(|l| l.iter().copied())
            .filter_map(map)
            .collect();
        let mut ix = Self {
            def: self.def.clone(),
            leaves: Vec::new(),
            len: 0,
        };
        ix.set_sorted(ids);
        ix
    }

    /// Every entry in order (for tests and checks).
    pub fn entries(&self) -> impl Iterator<Item = RowId> + '_ {
        self.leaves.iter().flat_map(|l| l.iter().copied())
    }
}

/// A range of an index's first key part: the rows whose value lies
/// between `lo` and `hi`. A point (`a = 5`) is a range with both ends
/// included and equal.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyRange {
    /// Low end (`Unbounded`: from the first non-NULL value).
    pub lo: Bound<Value>,
    /// High end.
    pub hi: Bound<Value>,
}

impl KeyRange {
    /// `= v`.
    pub fn point(v: Value) -> Self {
        Self {
            lo: Bound::Included(v.clone()),
            hi: Bound::Included(v),
        }
    }

    /// The low end as a seek bound: an open low end starts after the
    /// NULLs, which no comparison matches.
    pub fn seek_from(&self) -> Bound<Vec<Value>> {
        match &self.lo {
            Bound::Included(v) => Bound::Included(vec![v.clone()]),
            Bound::Excluded(v) => Bound::Excluded(vec![v.clone()]),
            Bound::Unbounded => Bound::Excluded(vec![Value::Null]),
        }
    }

    /// The high end as a bound on the first key part.
    pub fn until(&self) -> Bound<Vec<Value>> {
        match &self.hi {
            Bound::Included(v) => Bound::Included(vec![v.clone()]),
            Bound::Excluded(v) => Bound::Excluded(vec![v.clone()]),
            Bound::Unbounded => Bound::Unbounded,
        }
    }

    /// Whether the range holds no value (`lo` above `hi`).
    pub fn is_empty(&self) -> bool {
        use Bound::*;
        match (&self.lo, &self.hi) {
            (Included(a), Included(b)) => a.sort_cmp(b) == Ordering::Greater,
            (Included(a) | Excluded(a), Included(b) | Excluded(b)) => {
                a.sort_cmp(b) != Ordering::Less
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for KeyRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use Bound::*;
        let lit = |v: &Value| match v {
            Value::Text(s) => format!("'{s}'"),
            other => other.to_string(),
        };
        match (&self.lo, &self.hi) {
            (Included(a), Included(b)) if a == b => return write!(f, "= {}", lit(a)),
            _ => {}
        }
        let lo = match &self.lo {
            Included(v) => format!("[{}", lit(v)),
            Excluded(v) => format!("({}", lit(v)),
            Unbounded => "(-inf".into(),
        };
        let hi = match &self.hi {
            Included(v) => format!("{}]", lit(v)),
            Excluded(v) => format!("{})", lit(v)),
            Unbounded => "+inf)".into(),
        };
        write!(f, "{lo}, {hi}")
    }
}

/// A bound on owned values as a bound on a slice.
pub fn as_ref(b: &Bound<Vec<Value>>) -> Bound<&[Value]> {
    match b {
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// A position in a [`KeyIndex`] (leaf, offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    leaf: usize,
    pos: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Column;

    fn chunk(v: Vec<i64>) -> Arc<Batch> {
        let n = v.len();
        Arc::new(Batch::new(vec![Arc::new(Column::ints(v))], n))
    }

    fn def(kind: IndexKind) -> IndexDef {
        IndexDef {
            name: "k".into(),
            kind,
            parts: vec![KeyPart {
                column: 0,
                prefix: None,
                desc: false,
            }],
        }
    }

    fn keys(ix: &KeyIndex, chunks: &[Arc<Batch>]) -> Vec<Value> {
        ix.entries()
            .map(|r| chunks[r.chunk as usize].columns[0].value(r.row as usize))
            .collect()
    }

    #[test]
    fn inserts_keep_order_across_leaf_splits_and_lookups_find_rows() {
        let n = 5 * LEAF_MAX as i64;
        // 0, n-1, 1, n-2, …: inserted out of order.
        let vals: Vec<i64> = (0..n)
            .map(|i| if i % 2 == 0 { i / 2 } else { n - 1 - i / 2 })
            .collect();
        let chunks = vec![chunk(vals.clone())];
        let mut ix = KeyIndex::new(def(IndexKind::Unique));
        for row in 0..n as u32 {
            ix.insert(&chunks, RowId { chunk: 0, row }).unwrap();
        }
        assert!(ix.leaves.len() > 5, "leaves split");
        let got = keys(&ix, &chunks);
        let want: Vec<Value> = (0..n).map(Value::Int).collect();
        assert_eq!(got, want);
        let r = ix.lookup(&chunks, &[Value::Int(n - 1)]);
        assert_eq!(r, vec![RowId { chunk: 0, row: 1 }]);
        assert!(ix.lookup(&chunks, &[Value::Int(n)]).is_empty());
    }

    #[test]
    fn a_unique_index_refuses_a_duplicate_but_not_nulls() {
        let c = Arc::new(Batch::new(
            vec![Arc::new(Column::from_values(
                crate::data::DataType::Int,
                &[Value::Int(1), Value::Null, Value::Null, Value::Int(1)],
            ))],
            4,
        ));
        let chunks = vec![c];
        let mut ix = KeyIndex::new(def(IndexKind::Unique));
        for row in 0..3 {
            ix.insert(&chunks, RowId { chunk: 0, row }).unwrap();
        }
        let d = ix.insert(&chunks, RowId { chunk: 0, row: 3 }).unwrap_err();
        assert_eq!(d.entry, "1");
        assert_eq!(d.existing, RowId { chunk: 0, row: 0 });
        assert_eq!(ix.len(), 3, "the refused row is not in the index");
        let built = KeyIndex::build(Arc::new(def(IndexKind::Unique)), &chunks).unwrap_err();
        assert_eq!(built.entry, "1");
        let plain = KeyIndex::build(Arc::new(def(IndexKind::Plain)), &chunks).unwrap();
        assert_eq!(plain.lookup(&chunks, &[Value::Int(1)]).len(), 2);
    }

    #[test]
    fn remove_and_range_seek() {
        let chunks = vec![chunk((0..2000).rev().collect())];
        let mut ix = KeyIndex::build(Arc::new(def(IndexKind::Plain)), &chunks).unwrap();
        // Row 1990 holds value 9.
        assert!(ix.remove(
            &chunks,
            RowId {
                chunk: 0,
                row: 1990
            }
        ));
        assert!(!ix.remove(
            &chunks,
            RowId {
                chunk: 0,
                row: 1990
            }
        ));
        let lo = [Value::Int(5)];
        let hi = [Value::Int(12)];
        let mut c = ix.seek(&chunks, Bound::Excluded(&lo));
        let mut got = Vec::new();
        while let Some(r) = ix.get(c) {
            if ix.past(&chunks, r, Bound::Included(&hi)) {
                break;
            }
            got.push(chunks[0].columns[0].value(r.row as usize));
            c = ix.next(c);
        }
        let want: Vec<Value> = [6, 7, 8, 10, 11, 12].into_iter().map(Value::Int).collect();
        assert_eq!(got, want);
        let range = KeyRange {
            lo: Bound::Excluded(Value::Int(5)),
            hi: Bound::Included(Value::Int(12)),
        };
        assert_eq!(ix.count_in(&chunks, &range), 6);
        assert_eq!(ix.count_in(&chunks, &KeyRange::point(Value::Int(9))), 0);
        assert_eq!(ix.count_in(&chunks, &KeyRange::point(Value::Int(10))), 1);
    }

    #[test]
    fn a_bulk_build_orders_as_inserts_do() {
        let vals = [
            Value::Float(2.5),
            Value::Null,
            Value::Float(-0.0),
            Value::Float(-3.0),
            Value::Float(0.0),
            Value::Float(1e300),
            Value::Null,
            Value::Float(-1e300),
        ];
        let c = Arc::new(Batch::new(
            vec![Arc::new(Column::from_values(
                crate::data::DataType::Float,
                &vals,
            ))],
            vals.len(),
        ));
        let chunks = vec![c.clone(), c];
        let built = KeyIndex::build(Arc::new(def(IndexKind::Plain)), &chunks).unwrap();
        let mut inserted = KeyIndex::new(def(IndexKind::Plain));
        for chunk in 0..2 {
            for row in 0..vals.len() as u32 {
                inserted.insert(&chunks, RowId { chunk, row }).unwrap();
            }
        }
        let a: Vec<RowId> = built.entries().collect();
        let b: Vec<RowId> = inserted.entries().collect();
        assert_eq!(a, b);
        // -0.0 and 0.0 are one key.
        let u = KeyIndex::build(Arc::new(def(IndexKind::Unique)), &chunks[..1]).unwrap_err();
        assert_eq!(u.entry, "0");
    }

    #[test]
    fn prefix_keys_compare_the_first_characters() {
        let c = Arc::new(Batch::new(
            vec![Arc::new(Column::from_values(
                crate::data::DataType::Text,
                &[Value::Text("bc".into()), Value::Text("bd".into())],
            ))],
            2,
        ));
        let mut d = def(IndexKind::Unique);
        d.parts[0].prefix = Some(1);
        let err = KeyIndex::build(Arc::new(d), &[c]).unwrap_err();
        assert_eq!(err.entry, "b");
    }
}
