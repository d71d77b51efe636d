//! A hash table that grows in bounded steps: [`SplitMap`].
//!
//! A `HashMap` that is full doubles: one insert moves every entry into a
//! table twice the size. For the big tables of a statement (the groups of a
//! `GROUP BY`, a `count(DISTINCT …)` set, the rows of a set operation) that
//! one insert is the longest step of the query — milliseconds for a few
//! hundred thousand entries — and a kill waits for it.
//!
//! A [`SplitMap`] is extendible hashing over small hash tables: a
//! directory indexed by the top bits of each key's (mixed) hash points at
//! parts; a part that is full at [`PART_CAP`] entries is split in two by the
//! next bit of the hash, moving at most [`PART_CAP`] entries, and the
//! directory doubles when a part deeper than it splits (4 bytes per entry,
//! [`MAX_DEPTH`] bits at most). So no insert moves more than [`PART_CAP`]
//! entries, however large the map: the work of one step is bounded.
//!
//! Memory: every table and the directory are reserved from the statement's
//! budget (through the caller's [`MemoryUse`]) before they are allocated,
//! the old and the new one at once while entries move; [`SplitMap::bytes`]
//! is what the map holds (its tables' buckets, not the keys' heap).

use rustc_hash::{FxBuildHasher, FxHasher};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use super::memory::{hash_capacity_after, hash_table_bytes, vec_bytes, MemoryUse};
use super::Resources;
use crate::expr::ExecError;

/// Entries of a part before it splits: a table of 2048 buckets, full.
pub const PART_CAP: usize = 1792;
/// Entries past which a part splits when the map has the credit for it.
pub const SPLIT_AT: usize = PART_CAP / 2;
/// Credit (entries that may be moved) each insert earns, and the most the
/// map saves up.
const CREDIT_PER_INSERT: usize = 2;
const CREDIT_MAX: usize = 2 * PART_CAP;
/// Most hash bits the directory uses (2^20 entries, 4 MiB): past that a
/// part grows as a plain table (only a hash that does not spread keys gets
/// there).
pub const MAX_DEPTH: u32 = 20;

/// The hasher of the parts' tables: Fx, finished with murmur3's avalanche.
///
/// The keys of one part share the top bits of [`mixed`]; with plain Fx
/// hashes in the tables too, those bits were correlated with the bits the
/// tables use (their bucket and their 7-bit tag): a lookup in a part of
/// small integers (whose Fx hashes have long runs of constant bits) probed
/// long runs of look-alike entries, 10× slower than one big table. The
/// finalizer makes the tables' bits independent of the directory's.
#[derive(Clone, Copy, Debug, Default)]
pub struct PartHash;

impl BuildHasher for PartHash {
    type Hasher = PartHasher;
    fn build_hasher(&self) -> PartHasher {
        PartHasher(FxHasher::default())
    }
}

/// See [`PartHash`].
#[derive(Default)]
pub struct PartHasher(FxHasher);

impl Hasher for PartHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes)
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.0.write_u8(i)
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.0.write_u16(i)
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.0.write_u32(i)
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0.write_u64(i)
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.0.write_u128(i)
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.0.write_usize(i)
    }
    #[inline]
    fn finish(&self) -> u64 {
        let mut h = self.0.finish();
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// A table of a [`SplitMap`].
pub type Part<K, V> = HashMap<K, V, PartHash>;

/// A map split by hash into parts of at most [`PART_CAP`] entries (see the
/// module docs).
pub struct SplitMap<K, V> {
    parts: Vec<Part<K, V>>,
    /// The hash bits each part's keys share.
    depths: Vec<u8>,
    /// Part of each value of the top `depth` bits of the mixed hash.
    dir: Vec<u32>,
    depth: u32,
    len: usize,
    /// Heap bytes of the parts' tables.
    tables: u64,
    /// Entries the map may move before a part must split: earned by
    /// inserts, spent by splits (see [`SplitMap::insert`]).
    credit: usize,
    /// Most entries one insert moved (a split or a growth): the bound the
    /// tests check.
    moved_max: usize,
    /// Entries moved by all inserts (the tests check that the work is
    /// spread: no run of inserts moves much more than it earned).
    moved_total: u64,
}

impl<K, V> Default for SplitMap<K, V> {
    fn default() -> Self {
        SplitMap {
            parts: Vec::new(),
            depths: Vec::new(),
            dir: Vec::new(),
            depth: 0,
            len: 0,
            tables: 0,
            credit: 0,
            moved_max: 0,
            moved_total: 0,
        }
    }
}

/// The hash of `k`, mixed once more (a multiply by the golden ratio) so
/// that its top bits depend on every bit (the hash of an integer, taken of
/// its `f64` bits, has runs of constant bits) and are not the bits the
/// parts' tables use.
#[inline]
fn mixed<Q: Hash + ?Sized>(k: &Q) -> u64 {
    FxBuildHasher
        .hash_one(k)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl<K: Hash + Eq, V> SplitMap<K, V> {
    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes of the tables, the directory and the part lists (not of
    /// what the keys and values point to).
    pub fn bytes(&self) -> u64 {
        self.tables
            + vec_bytes::<u32>(self.dir.capacity())
            + vec_bytes::<Part<K, V>>(self.parts.capacity())
            + vec_bytes::<u8>(self.depths.capacity())
    }

    /// Parts (tables) held.
    pub fn part_count(&self) -> usize {
        self.parts.len()
    }

    /// Most entries one insert has moved so far.
    pub fn moved_max(&self) -> usize {
        self.moved_max
    }

    /// Entries moved by splits and growths so far.
    pub fn moved_total(&self) -> u64 {
        self.moved_total
    }

    #[inline]
    fn part_of_hash(&self, h: u64) -> usize {
        if self.depth == 0 {
            return 0;
        }
        self.dir[(h >> (64 - self.depth)) as usize] as usize
    }

    /// The value of `k`, if held.
    #[inline]
    pub fn get<Q>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.len == 0 {
            return None;
        }
        self.parts[self.part_of_hash(mixed(k))].get(k)
    }

    /// Whether `k` is held.
    #[inline]
    pub fn contains<Q>(&self, k: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(k).is_some()
    }

    /// Every entry, part after part.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.parts.iter().flatten()
    }

    /// Part `i`'s table (at most [`PART_CAP`] entries but past
    /// [`MAX_DEPTH`]).
    pub fn part(&self, i: usize) -> Option<&Part<K, V>> {
        self.parts.get(i)
    }

    /// Inserts `k` with `v` when `k` is not held (else leaves the map
    /// alone and gives `v` back as `Ok(Some(v))`), making room first: the
    /// part's growth or split is reserved in `mem` before it allocates.
    ///
    /// Work: a part splits once it holds [`SPLIT_AT`] entries if the map
    /// has the credit (every insert earns [`CREDIT_PER_INSERT`] entries
    /// of moves), and must split when it is full ([`PART_CAP`]). Keys
    /// spread evenly, so the parts fill up together; without the credit
    /// they would all split within a few inserts of each other (a burst
    /// that moves the whole map in one step after all), with it the splits
    /// are spread over the inserts that pay for them.
    pub fn insert(
        &mut self,
        k: K,
        v: V,
        mem: &mut MemoryUse,
        res: &Arc<Resources>,
    ) -> Result<Option<V>, ExecError> {
        self.insert_hashed(mixed(&k), k, v, mem, res)
    }

    /// The hash of `k` that [`SplitMap::get_hashed`] and
    /// [`SplitMap::insert_hashed`] take (computed once for a lookup and an
    /// insert of the same key).
    #[inline]
    pub fn hash_of<Q: Hash + ?Sized>(k: &Q) -> u64 {
        mixed(k)
    }

    /// [`SplitMap::get`] of a key whose [`SplitMap::hash_of`] is `h`.
    #[inline]
    pub fn get_hashed<Q>(&self, h: u64, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.len == 0 {
            return None;
        }
        self.parts[self.part_of_hash(h)].get(k)
    }

    /// [`SplitMap::insert`] of a key whose [`SplitMap::hash_of`] is `h`.
    pub fn insert_hashed(
        &mut self,
        h: u64,
        k: K,
        v: V,
        mem: &mut MemoryUse,
        res: &Arc<Resources>,
    ) -> Result<Option<V>, ExecError> {
        if self.parts.is_empty() {
            self.start(mem, res)?;
        }
        // Room first, then one lookup that inserts (a part may split or
        // grow for a key it holds: bounded work, paid by earlier inserts).
        let mut p = self.part_of_hash(h);
        let len = self.parts[p].len();
        if len >= SPLIT_AT
            && self.credit >= len
            && self.parts[p].capacity() >= PART_CAP
            && u32::from(self.depths[p]) < MAX_DEPTH
        {
            self.split(p, h, mem, res)?;
            self.credit -= len;
            p = self.part_of_hash(h);
        }
        while self.parts[p].len() >= self.parts[p].capacity() {
            if self.parts[p].len() >= SPLIT_AT && u32::from(self.depths[p]) < MAX_DEPTH {
                self.split(p, h, mem, res)?;
                p = self.part_of_hash(h);
            } else {
                self.grow(p, mem, res)?;
            }
        }
        match self.parts[p].entry(k) {
            std::collections::hash_map::Entry::Occupied(_) => Ok(Some(v)),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(v);
                self.len += 1;
                self.credit = (self.credit + CREDIT_PER_INSERT).min(CREDIT_MAX);
                Ok(None)
            }
        }
    }

    /// The first (empty) part and its directory entry.
    fn start(&mut self, mem: &mut MemoryUse, res: &Arc<Resources>) -> Result<(), ExecError> {
        let before = self.bytes();
        let want = vec_bytes::<Part<K, V>>(4) + vec_bytes::<u8>(4) + vec_bytes::<u32>(1);
        mem.grow(res, want)?;
        self.parts.reserve_exact(4);
        self.depths.reserve_exact(4);
        self.dir.reserve_exact(1);
        self.parts.push(HashMap::default());
        self.depths.push(0);
        self.dir.push(0);
        self.settle(before + want, mem, res)
    }

    /// Accounts for the bytes as they are now, `accounted` being what
    /// `mem` holds for the map at this point.
    fn settle(
        &mut self,
        accounted: u64,
        mem: &mut MemoryUse,
        res: &Arc<Resources>,
    ) -> Result<(), ExecError> {
        let now = self.bytes();
        if now > accounted {
            mem.grow(res, now - accounted)
        } else {
            mem.shrink(accounted - now);
            Ok(())
        }
    }

    /// Grows part `p` (still below [`PART_CAP`], or at [`MAX_DEPTH`]) as a
    /// table grows: twice the buckets, reserved first.
    fn grow(
        &mut self,
        p: usize,
        mem: &mut MemoryUse,
        res: &Arc<Resources>,
    ) -> Result<(), ExecError> {
        let before = self.bytes();
        let part = &self.parts[p];
        let old = hash_table_bytes::<(K, V)>(part.capacity());
        let cap = hash_capacity_after(part.len(), part.capacity(), 1);
        let new = hash_table_bytes::<(K, V)>(cap);
        mem.grow(res, new)?;
        let part = &mut self.parts[p];
        self.moved_max = self.moved_max.max(part.len());
        self.moved_total += part.len() as u64;
        part.reserve(1);
        let got = hash_table_bytes::<(K, V)>(part.capacity());
        self.tables = self.tables - old + got;
        self.settle(before + new, mem, res)
    }

    /// Splits part `p` (full, [`PART_CAP`] entries) by the next bit of the
    /// hash into two parts, doubling the directory first when `p` uses all
    /// its bits. `h` is the hash of a key of `p`.
    fn split(
        &mut self,
        p: usize,
        h: u64,
        mem: &mut MemoryUse,
        res: &Arc<Resources>,
    ) -> Result<(), ExecError> {
        let d = u32::from(self.depths[p]);
        let before = self.bytes();
        // Reserved up front: two tables of PART_CAP (the old one is freed
        // once its entries moved), a doubled directory, a longer part list.
        let table = hash_table_bytes::<(K, V)>(PART_CAP);
        let mut want = 2 * table;
        if d == self.depth {
            want += vec_bytes::<u32>(2 * self.dir.len().max(1));
        }
        if self.parts.len() == self.parts.capacity() {
            let cap = 2 * self.parts.capacity().max(2);
            want += vec_bytes::<Part<K, V>>(cap) + vec_bytes::<u8>(cap);
        }
        mem.grow(res, want)?;
        if d == self.depth {
            // Each entry of the directory becomes two, one per value of
            // the new bit.
            let mut dir = Vec::with_capacity(2 * self.dir.len());
            for &x in &self.dir {
                dir.push(x);
                dir.push(x);
            }
            self.dir = dir;
            self.depth += 1;
        }
        let old = std::mem::take(&mut self.parts[p]);
        let old_bytes = hash_table_bytes::<(K, V)>(old.capacity());
        self.moved_max = self.moved_max.max(old.len());
        self.moved_total += old.len() as u64;
        let mut low = HashMap::with_capacity_and_hasher(PART_CAP, PartHash);
        let mut high = HashMap::with_capacity_and_hasher(PART_CAP, PartHash);
        let bit = 63 - d;
        for (k, v) in old {
            if (mixed(&k) >> bit) & 1 == 1 {
                high.insert(k, v);
            } else {
                low.insert(k, v);
            }
        }
        self.tables = self.tables - old_bytes
            + hash_table_bytes::<(K, V)>(low.capacity())
            + hash_table_bytes::<(K, V)>(high.capacity());
        self.parts[p] = low;
        self.depths[p] = (d + 1) as u8;
        let q = self.parts.len();
        if self.parts.len() == self.parts.capacity() {
            let cap = 2 * self.parts.capacity().max(2);
            self.parts.reserve_exact(cap - self.parts.len());
            self.depths.reserve_exact(cap - self.depths.len());
        }
        self.parts.push(high);
        self.depths.push((d + 1) as u8);
        // The directory entries of `p`: those that share `h`'s top `d`
        // bits; the upper half of them (new bit set) now go to `q`.
        let span = 1usize << (self.depth - d);
        let start = if d == 0 {
            0
        } else {
            ((h >> (64 - d)) as usize) << (self.depth - d)
        };
        for e in &mut self.dir[start + span / 2..start + span] {
            *e = q as u32;
        }
        self.settle(before + want, mem, res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Value;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn a_large_map_splits_in_bounded_steps_keeps_its_entries_and_accounts_its_tables() {
        let res = Resources::new(1 << 32, Arc::new(AtomicU64::new(0)));
        let mut mem = MemoryUse::default();
        let mut m: SplitMap<Value, u32> = SplitMap::default();
        let n = 200_000u32;
        for round in 0..2 {
            for x in 0..n {
                let had = m
                    .insert(Value::Int(i64::from(x) * 3), x, &mut mem, &res)
                    .unwrap();
                assert_eq!(had.is_some(), round == 1, "{x} in round {round}");
            }
            assert_eq!(m.len(), n as usize);
        }
        // No insert moved more than a part's worth of entries.
        assert!(m.moved_max() <= PART_CAP, "moved {}", m.moved_max());
        assert!(m.part_count() > n as usize / PART_CAP, "split");
        for x in 0..n {
            assert_eq!(m.get(&Value::Int(i64::from(x) * 3)), Some(&x));
            assert_eq!(m.get(&Value::Int(i64::from(x) * 3 + 1)), None);
        }
        let mut seen: Vec<u32> = m.iter().map(|(_, v)| *v).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..n).collect::<Vec<_>>());
        // Every byte held is reserved, and what is reserved is held.
        assert_eq!(mem.bytes(), m.bytes());
        let real: u64 = m
            .parts
            .iter()
            .map(|p| hash_table_bytes::<(Value, u32)>(p.capacity()))
            .sum();
        assert_eq!(real, m.tables);
        drop(m);
        drop(mem);
        assert_eq!(res.used(), 0);
    }

    #[test]
    fn a_plain_map_would_move_everything_at_once() {
        // The bound above is not vacuous: the same inserts into one table
        // move (rehash) more than a part's worth in one insert.
        let mut t: rustc_hash::FxHashMap<i64, u32> = Default::default();
        let mut most = 0;
        for x in 0..200_000i64 {
            if t.len() == t.capacity() {
                most = t.len();
            }
            t.insert(x, 0);
        }
        assert!(most > 50 * PART_CAP, "{most}");
    }

    #[test]
    fn a_budget_too_small_for_a_split_refuses_it_and_changes_nothing() {
        let res = Resources::new(300_000, Arc::new(AtomicU64::new(0)));
        let mut mem = MemoryUse::default();
        let mut m: SplitMap<i64, ()> = SplitMap::default();
        let mut err = None;
        for x in 0..1_000_000i64 {
            if let Err(e) = m.insert(x, (), &mut mem, &res) {
                err = Some((x, e));
                break;
            }
        }
        let (x, e) = err.expect("the budget is crossed");
        assert!(matches!(e, ExecError::MemoryBudget { .. }));
        assert_eq!(m.len(), x as usize, "every insert before the error kept");
        assert!(mem.bytes() >= m.bytes());
        assert!(res.used() <= 300_000);
        drop(m);
        drop(mem);
        assert_eq!(res.used(), 0);
    }

    #[test]
    fn the_splits_of_parts_that_fill_up_together_are_spread_over_the_inserts() {
        // Evenly spread keys fill every part at the same pace: a run of 256
        // inserts (a step of an operator) moves no more than its credit, the
        // saved-up credit and one part, never all the parts at once.
        let res = Resources::new(1 << 34, Arc::new(AtomicU64::new(0)));
        let mut mem = MemoryUse::default();
        for keys in [0i64, 1] {
            let mut m: SplitMap<Value, ()> = SplitMap::default();
            let mut worst = 0u64;
            let mut x = 0i64;
            while x < 1_000_000 {
                let before = m.moved_total();
                for _ in 0..256 {
                    let k = if keys == 0 {
                        x
                    } else {
                        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
                    };
                    m.insert(Value::Int(k), (), &mut mem, &res).unwrap();
                    x += 1;
                }
                worst = worst.max(m.moved_total() - before);
            }
            let bound = (256 * CREDIT_PER_INSERT + CREDIT_MAX + PART_CAP) as u64;
            assert!(
                worst <= bound,
                "keys {keys}: {worst} moved in 256 inserts > {bound}"
            );
            assert!(m.part_count() > 500);
        }
    }
}
