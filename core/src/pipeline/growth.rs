//! Hash tables that grow a bounded amount of work per step.
//!
//! A hash table grows by moving every entry into a table twice the size at
//! once: for a `count(DISTINCT …)` set of a few million values that is
//! milliseconds in one step, and a KILL that arrives meanwhile waits for
//! it. A [`StepMap`] grows the same table, one table, in pieces: when it is
//! out of room, [`StepMap::room`] allocates the bigger table and moves at
//! most a budget of entries into it per call; the operator calls it again
//! on its next steps (the context is checked between them) and consumes no
//! input until the move is over. The old table is then freed off the
//! query's path ([`super::reclaim`]). The total work is that of one
//! rehash, as before; only its slicing is new.

use std::collections::hash_map::IntoIter;
use std::hash::Hash;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::memory::{hash_table_bytes, MemoryUse, Resources};
use super::reclaim;
use crate::expr::ExecError;

/// Entries moved per call of [`StepMap::room`]: a few tens of µs of
/// rehashing.
pub const MOVE_PER_STEP: usize = 512;

/// A hash map whose growth is spread over steps; see the module docs.
pub struct StepMap<K, V> {
    map: FxHashMap<K, V>,
    /// While growing: the old table's entries not moved yet, and its bytes.
    old: Option<(IntoIter<K, V>, u64)>,
}

impl<K, V> Default for StepMap<K, V> {
    fn default() -> Self {
        StepMap {
            map: FxHashMap::default(),
            old: None,
        }
    }
}

impl<K: Hash + Eq + Send + 'static, V: Send + 'static> StepMap<K, V> {
    /// The table. While it grows (between a [`StepMap::room`] that returned
    /// `false` and one that returned `true`) it lacks the entries not moved
    /// yet: callers consume no input meanwhile.
    pub fn map(&self) -> &FxHashMap<K, V> {
        debug_assert!(self.old.is_none(), "read while growing");
        &self.map
    }

    /// The table, to insert into (with room made first).
    pub fn map_mut(&mut self) -> &mut FxHashMap<K, V> {
        debug_assert!(self.old.is_none(), "written while growing");
        &mut self.map
    }

    /// Entries held (the moved and the not yet moved ones).
    pub fn len(&self) -> usize {
        self.map.len() + self.old.as_ref().map_or(0, |(it, _)| it.len())
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes of the table(s) (not of what the entries point to).
    pub fn table_bytes(&self) -> u64 {
        hash_table_bytes::<(K, V)>(self.map.capacity()) + self.old.as_ref().map_or(0, |o| o.1)
    }

    /// Whether `n` more entries fit without growing (and no growth is under
    /// way).
    pub fn has_room(&self, n: usize) -> bool {
        self.old.is_none() && n <= self.map.capacity() - self.map.len()
    }

    /// Makes room for `n` more entries, a bounded amount of work per call:
    /// true once there is room (the table can be read and written), false
    /// while the table is growing (call again on a later step). `budget`
    /// is the number of entries this call may move, shared by the tables an
    /// operator grows in one step; it is decreased by what was moved. A
    /// small table (no more entries than the budget left) grows at once.
    /// The bigger table is reserved from the budget before it is allocated;
    /// the old one is given back once empty.
    pub fn room(
        &mut self,
        n: usize,
        budget: &mut usize,
        mem: &mut MemoryUse,
        res: &Arc<Resources>,
    ) -> Result<bool, ExecError> {
        if self.old.is_none() {
            if n <= self.map.capacity() - self.map.len() {
                return Ok(true);
            }
            let len = self.map.len();
            let target = len
                .saturating_add(n)
                .max(self.map.capacity().saturating_add(1));
            // Reserved at the capacity asked for; settled below with the
            // capacity given.
            let predicted = hash_table_bytes::<(K, V)>(target);
            mem.grow(res, predicted)?;
            let new = FxHashMap::with_capacity_and_hasher(target, Default::default());
            let now = hash_table_bytes::<(K, V)>(new.capacity());
            if now > predicted {
                if let Err(e) = mem.grow(res, now - predicted) {
                    mem.shrink(predicted);
                    return Err(e);
                }
            } else {
                mem.shrink(predicted - now);
            }
            let old = std::mem::replace(&mut self.map, new);
            let old_bytes = hash_table_bytes::<(K, V)>(old.capacity());
            self.old = Some((old.into_iter(), old_bytes));
        }
        let Some((old, old_bytes)) = &mut self.old else {
            return Ok(true);
        };
        // `with_capacity` above made room for every entry: no insert here
        // grows the new table.
        let take = (*budget).min(old.len());
        for (k, v) in old.by_ref().take(take) {
            self.map.insert(k, v);
        }
        *budget -= take;
        if old.len() > 0 {
            return Ok(false);
        }
        let bytes = *old_bytes;
        if let Some((old, _)) = self.old.take() {
            // An emptied table still holds its allocation: unmapping a big
            // one takes the address-space lock, off the query's path.
            reclaim::dispose(old, bytes as usize);
        }
        mem.shrink(bytes);
        Ok(n <= self.map.capacity() - self.map.len())
    }

    /// Makes room for `n` more entries at once, however long the move
    /// takes (where the caller cannot stop half way).
    pub fn room_now(
        &mut self,
        n: usize,
        mem: &mut MemoryUse,
        res: &Arc<Resources>,
    ) -> Result<(), ExecError> {
        let mut budget = usize::MAX;
        while !self.room(n, &mut budget, mem, res)? {}
        Ok(())
    }

    /// The table taken apart: its entries with its heap bytes, and those of
    /// the old table while it grows.
    pub fn into_tables(self) -> impl Iterator<Item = (IntoIter<K, V>, u64)> {
        let bytes = hash_table_bytes::<(K, V)>(self.map.capacity());
        std::iter::once((self.map.into_iter(), bytes)).chain(self.old)
    }

    /// Takes the table out (empty and without growth left behind), for
    /// freeing off the query's path.
    pub fn take(&mut self) -> (FxHashMap<K, V>, Option<IntoIter<K, V>>) {
        (
            std::mem::take(&mut self.map),
            self.old.take().map(|(it, _)| it),
        )
    }
}

/// Bytes a [`GrowVec`] copies per call of [`GrowVec::room`] at most: a
/// few tens of µs, most of it faulting in the new vector's pages.
pub const COPY_PER_STEP: usize = 128 << 10;

/// The capacity a vector of `len` entries and capacity `cap` is given to
/// make room for `n` more: doubled at least, as `Vec` itself would.
fn grown_capacity(len: usize, cap: usize, n: usize) -> usize {
    len.saturating_add(n).max(cap.saturating_mul(2)).max(4)
}

/// A vector whose growth is spread over steps, as [`StepMap`]'s: when it is
/// out of room, [`GrowVec::room`] allocates the bigger vector and moves at
/// most a budget of bytes into it per call; the operator consumes no input
/// until the move is over, and reads and writes it as a `Vec` otherwise.
/// (A `Vec` of a million groups' states doubling copied megabytes into
/// fresh pages in one step: 3–9 ms for a KILL to wait, on the reference
/// VM.) The old vector is freed off the query's path.
pub struct GrowVec<T> {
    v: Vec<T>,
    /// While growing: the old vector's entries not moved yet, and its
    /// bytes.
    old: Option<(std::vec::IntoIter<T>, u64)>,
}

impl<T> Default for GrowVec<T> {
    fn default() -> Self {
        GrowVec {
            v: Vec::new(),
            old: None,
        }
    }
}

impl<T> std::ops::Deref for GrowVec<T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        debug_assert!(self.old.is_none(), "read while growing");
        &self.v
    }
}

impl<T> std::ops::DerefMut for GrowVec<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        debug_assert!(self.old.is_none(), "written while growing");
        &mut self.v
    }
}

impl<T: Send + 'static> GrowVec<T> {
    /// Heap bytes of the vector(s), from their capacities.
    pub fn bytes(&self) -> u64 {
        (self.v.capacity() * std::mem::size_of::<T>()) as u64 + self.old.as_ref().map_or(0, |o| o.1)
    }

    /// The bytes [`GrowVec::room`] of `n` would allocate (none when they
    /// fit, or while it grows: that vector is allocated already).
    pub fn growth_bytes(&self, n: usize) -> u64 {
        let (len, cap) = (self.v.len(), self.v.capacity());
        if self.old.is_some() || n <= cap - len {
            0
        } else {
            (grown_capacity(len, cap, n) * std::mem::size_of::<T>()) as u64
        }
    }

    /// Makes room for `n` more entries, moving at most `budget` bytes per
    /// call (decreased by what was moved): true once there is room, false
    /// while it grows (call again on a later step). A vector of no more
    /// bytes than the budget left grows at once.
    pub fn room(&mut self, n: usize, budget: &mut usize) -> bool {
        let size = std::mem::size_of::<T>().max(1);
        if self.old.is_none() {
            let (len, cap) = (self.v.len(), self.v.capacity());
            if n <= cap - len {
                return true;
            }
            let to = grown_capacity(len, cap, n);
            if len * size <= *budget {
                *budget -= len * size;
                self.v.reserve_exact(to - len);
                return true;
            }
            let old = std::mem::replace(&mut self.v, Vec::with_capacity(to));
            let bytes = (old.capacity() * std::mem::size_of::<T>()) as u64;
            self.old = Some((old.into_iter(), bytes));
        }
        let Some((old, bytes)) = &mut self.old else {
            return true;
        };
        let k = (*budget / size).min(old.len());
        self.v.extend(old.by_ref().take(k));
        *budget -= k * size;
        if old.len() > 0 {
            return false;
        }
        let bytes = *bytes as usize;
        if let Some((old, _)) = self.old.take() {
            // Emptied, it still holds its allocation: unmapped off the
            // query's path.
            reclaim::dispose(old, bytes);
        }
        true
    }
}

/// Entries per piece of a [`ChunkVec`].
pub const CHUNK_LEN: usize = 4096;

/// A vector stored in pieces of [`CHUNK_LEN`] entries: it grows by adding
/// a piece, never by copying what it holds (a `Vec` of a million rows
/// doubling copied megabytes and faulted their new pages in one step: a
/// millisecond for a KILL to wait).
pub struct ChunkVec<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for ChunkVec<T> {
    fn default() -> Self {
        ChunkVec {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> ChunkVec<T> {
    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries it holds without allocating.
    pub fn capacity(&self) -> usize {
        self.chunks.len() * CHUNK_LEN
    }

    /// Heap bytes of a `ChunkVec` of `capacity` entries (whole pieces).
    pub fn bytes_for(capacity: usize) -> u64 {
        let chunks = capacity.div_ceil(CHUNK_LEN);
        (chunks * CHUNK_LEN * std::mem::size_of::<T>()
            + chunks.next_power_of_two() * std::mem::size_of::<Vec<T>>()) as u64
    }

    /// Heap bytes it holds (not of what the entries point to).
    pub fn bytes(&self) -> u64 {
        (self.chunks.len() * CHUNK_LEN * std::mem::size_of::<T>()
            + self.chunks.capacity() * std::mem::size_of::<Vec<T>>()) as u64
    }

    /// Makes room for `n` more entries: allocates the pieces they need.
    pub fn reserve(&mut self, n: usize) {
        let need = self.len.saturating_add(n);
        while self.capacity() < need {
            if self.chunks.len() == self.chunks.capacity() {
                // As `bytes_for` counts: a power of two of piece slots.
                let to = (self.chunks.len() + 1).next_power_of_two();
                self.chunks.reserve_exact(to - self.chunks.len());
            }
            self.chunks.push(Vec::with_capacity(CHUNK_LEN));
        }
    }

    /// Adds `v` at the end (room made with [`ChunkVec::reserve`], else a
    /// piece is allocated here).
    pub fn push(&mut self, v: T) {
        let c = self.len / CHUNK_LEN;
        if c == self.chunks.len() {
            self.reserve(1);
        }
        self.chunks[c].push(v);
        self.len += 1;
    }

    /// The entries in order, to change.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.chunks.iter_mut().flatten()
    }
}

impl<T> std::ops::Index<usize> for ChunkVec<T> {
    type Output = T;
    #[inline]
    fn index(&self, i: usize) -> &T {
        &self.chunks[i / CHUNK_LEN][i % CHUNK_LEN]
    }
}

impl<T> std::ops::IndexMut<usize> for ChunkVec<T> {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.chunks[i / CHUNK_LEN][i % CHUNK_LEN]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    fn resources() -> Arc<Resources> {
        Resources::new(1 << 40, Arc::new(AtomicU64::new(0)))
    }

    #[test]
    fn grows_in_bounded_steps_and_keeps_every_entry() {
        let res = resources();
        let mut mem = MemoryUse::default();
        let mut m: StepMap<u64, u64> = StepMap::default();
        let mut steps_growing = 0;
        let mut x = 0u64;
        while x < 100_000 {
            let mut budget = MOVE_PER_STEP;
            if !m.room(100, &mut budget, &mut mem, &res).unwrap() {
                // A step that only moved: at most the budget.
                assert_eq!(budget, 0);
                steps_growing += 1;
                continue;
            }
            for _ in 0..100 {
                assert!(m.map_mut().insert(x, x * 3).is_none());
                x += 1;
            }
            assert_eq!(m.len(), x as usize);
            assert!(mem.bytes() >= m.table_bytes());
        }
        assert!(
            steps_growing > 10,
            "big growths were sliced: {steps_growing}"
        );
        for x in 0..100_000u64 {
            assert_eq!(m.map().get(&x), Some(&(x * 3)));
        }
        assert_eq!(mem.bytes(), m.table_bytes());
    }

    #[test]
    fn a_grow_vec_moves_a_bounded_number_of_bytes_per_call_and_keeps_its_order() {
        let mut v: GrowVec<String> = GrowVec::default();
        let size = std::mem::size_of::<String>();
        let (mut pushed, mut calls_growing, mut most_moved) = (0usize, 0, 0);
        while pushed < 200_000 {
            let mut budget = COPY_PER_STEP;
            let ready = v.room(1000, &mut budget);
            most_moved = most_moved.max(COPY_PER_STEP - budget);
            if !ready {
                // Growing: the old and the new vector are both held.
                assert!(v.bytes() > (v.v.capacity() * size) as u64);
                calls_growing += 1;
                continue;
            }
            assert!(v.capacity() - v.len() >= 1000);
            let cap = v.capacity();
            for _ in 0..1000 {
                v.push(pushed.to_string());
                pushed += 1;
            }
            assert_eq!(v.capacity(), cap, "no growth behind room's back");
            assert_eq!(v.bytes(), (cap * size) as u64);
        }
        assert!(most_moved <= COPY_PER_STEP);
        assert!(
            calls_growing > 10,
            "big growths were sliced: {calls_growing}"
        );
        assert!(v.iter().enumerate().all(|(i, s)| *s == i.to_string()));
    }

    #[test]
    fn a_chunk_vec_grows_by_pieces_and_counts_its_bytes() {
        let mut v: ChunkVec<u64> = ChunkVec::default();
        v.reserve(10);
        assert_eq!(v.capacity(), CHUNK_LEN);
        assert_eq!(v.bytes(), ChunkVec::<u64>::bytes_for(10));
        for x in 0..3 * CHUNK_LEN as u64 + 5 {
            v.push(x);
        }
        assert_eq!(v.len(), 3 * CHUNK_LEN + 5);
        assert_eq!(v.capacity(), 4 * CHUNK_LEN);
        assert_eq!(v.bytes(), ChunkVec::<u64>::bytes_for(v.capacity()));
        assert_eq!(v[CHUNK_LEN + 7], CHUNK_LEN as u64 + 7);
        v[2] = 99;
        v.iter_mut().for_each(|x| *x += 1);
        assert_eq!(
            (v[2], v[3 * CHUNK_LEN + 4]),
            (100, 3 * CHUNK_LEN as u64 + 5)
        );
    }

    #[test]
    fn a_table_dropped_while_growing_gives_its_memory_back() {
        let res = resources();
        let mut mem = MemoryUse::default();
        let mut m: StepMap<u64, ()> = StepMap::default();
        m.room_now(50_000, &mut mem, &res).unwrap();
        for x in 0..m.map().capacity() as u64 {
            m.map_mut().insert(x, ());
        }
        let mut budget = 10;
        assert!(!m.room(1, &mut budget, &mut mem, &res).unwrap());
        assert_eq!(mem.bytes(), m.table_bytes());
        // Nothing lost half way: the moved and the waiting entries.
        assert_eq!(m.len(), m.map.len() + m.old.as_ref().unwrap().0.len());
        assert!(m.map.len() == 10 && m.len() > 50_000);
        drop(m);
        drop(mem);
        assert_eq!(res.used(), 0);
    }
}
