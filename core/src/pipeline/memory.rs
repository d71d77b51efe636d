//! The per-statement memory budget: [`Resources`] counts the bytes that a
//! statement's growing state holds, and refuses (error 1041) a reservation
//! that would take it past the budget.
//!
//! Every state that grows with the input reserves *before* it allocates:
//! hash tables (aggregate groups and their states, `count(DISTINCT)` sets,
//! join build sides), buffered sort input and its concatenation, top-N
//! buffers, and the statement's result rows. The estimates are honest:
//! vectors count their capacity, hash tables their buckets (see
//! [`hash_table_bytes`]), text its shared allocations
//! ([`crate::data::text_heap_bytes`]). A hash table that is about to grow
//! reserves its new table first, so the peak of a rehash (old and new table
//! at once) is inside the budget too.
//!
//! Invariants:
//! - `used` is the sum of the live [`Reservation`]s of the statement; each
//!   reservation gives its bytes back when dropped, so `used` (and the
//!   node-wide total) is back to 0 when a statement's state is dropped, on
//!   every path: success, error, kill, timeout.
//! - A failed reservation changes nothing (the bytes are added and taken off
//!   again atomically with respect to the budget check of that call).
//! - [`MemoryUse`] holds at least the bytes its owner says it uses, and less
//!   than that plus [`CHUNK`] × 2: operators account per event (a new group,
//!   a grown table, a string), while the shared atomics are touched only
//!   once a chunk.

use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;

use crate::cause::{Cause, Reason};
use crate::context::Context;
use crate::data::{Batch, Column};
use crate::expr::ExecError;
use crate::level::Level;
use crate::tenant::TenantBudget;

/// Reservations grow by at least this much, so that small, frequent growth
/// (one string, one group) does not touch the shared counters each time.
pub const CHUNK: u64 = 64 << 10;

/// The per-query execution resources: a memory budget with reservations
/// released on drop, on every path.
#[derive(Debug)]
pub struct Resources {
    budget: u64,
    used: AtomicU64,
    peak: AtomicU64,
    node_total: Arc<AtomicU64>,
    /// The tenant's budget that every reservation also charges.
    tenant: Option<Arc<TenantBudget>>,
}

impl Resources {
    /// A budget of `budget` bytes, also counted in `node_total`.
    pub fn new(budget: u64, node_total: Arc<AtomicU64>) -> Arc<Self> {
        Self::with_tenant(budget, node_total, None)
    }
    /// [`Resources::new`] whose reservations also charge `tenant`'s budget
    /// (shared by the tenant's running statements).
    pub fn with_tenant(
        budget: u64,
        node_total: Arc<AtomicU64>,
        tenant: Option<Arc<TenantBudget>>,
    ) -> Arc<Self> {
        Arc::new(Resources {
            budget,
            used: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            node_total,
            tenant,
        })
    }
    /// Reserves `bytes`, or fails with the budget error.
    pub fn reserve(self: &Arc<Self>, bytes: u64) -> Result<Reservation, ExecError> {
        let now = self.used.fetch_add(bytes, AtomicOrdering::AcqRel) + bytes;
        if now > self.budget {
            self.used.fetch_sub(bytes, AtomicOrdering::AcqRel);
            return Err(ExecError::MemoryBudget {
                budget: self.budget,
                requested: now,
            });
        }
        if let Some(Err(e)) = self.tenant.as_ref().map(|t| t.charge(bytes)) {
            self.used.fetch_sub(bytes, AtomicOrdering::AcqRel);
            return Err(e);
        }
        self.peak.fetch_max(now, AtomicOrdering::AcqRel);
        self.node_total.fetch_add(bytes, AtomicOrdering::AcqRel);
        Ok(Reservation {
            res: self.clone(),
            bytes,
        })
    }
    /// The budget in bytes.
    pub fn budget(&self) -> u64 {
        self.budget
    }
    /// Bytes reserved now.
    pub fn used(&self) -> u64 {
        self.used.load(AtomicOrdering::Acquire)
    }
    /// Highest reservation seen.
    pub fn peak(&self) -> u64 {
        self.peak.load(AtomicOrdering::Acquire)
    }
}

/// Reserved bytes; given back on drop.
#[derive(Debug)]
pub struct Reservation {
    res: Arc<Resources>,
    bytes: u64,
}

impl Reservation {
    /// Grows the reservation by `bytes`.
    pub fn grow(&mut self, bytes: u64) -> Result<(), ExecError> {
        let mut more = self.res.reserve(bytes)?;
        self.bytes += more.bytes;
        more.bytes = 0;
        Ok(())
    }
    /// Gives back up to `bytes` of the reservation.
    pub fn shrink(&mut self, bytes: u64) {
        let bytes = bytes.min(self.bytes);
        if bytes > 0 {
            self.bytes -= bytes;
            self.res.used.fetch_sub(bytes, AtomicOrdering::AcqRel);
            self.res.node_total.fetch_sub(bytes, AtomicOrdering::AcqRel);
            if let Some(t) = &self.res.tenant {
                t.release(bytes);
            }
        }
    }
    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let bytes = self.bytes;
        self.shrink(bytes);
    }
}

/// The bytes one piece of state uses, with a reservation that covers them,
/// grown a [`CHUNK`] at a time. Empty (and reserving nothing) until first
/// used, so an operator can hold one from the time it is built, before it
/// has the statement's [`Resources`].
#[derive(Debug, Default)]
pub struct MemoryUse {
    used: u64,
    res: Option<Reservation>,
}

impl MemoryUse {
    /// Bytes in use, as last accounted.
    pub fn bytes(&self) -> u64 {
        self.used
    }

    /// Accounts for `bytes` more, reserving them first: on error nothing
    /// changes, and the caller must not allocate them.
    #[inline]
    pub fn grow(&mut self, resources: &Arc<Resources>, bytes: u64) -> Result<(), ExecError> {
        let want = self.used + bytes;
        let held = self.res.as_ref().map_or(0, Reservation::bytes);
        if want > held {
            self.reserve_more(resources, want - held)?;
        }
        self.used = want;
        Ok(())
    }

    #[cold]
    fn reserve_more(&mut self, resources: &Arc<Resources>, need: u64) -> Result<(), ExecError> {
        // A chunk ahead when it fits, else exactly what is needed (so that a
        // statement can use its whole budget).
        for ask in [need.max(CHUNK), need] {
            let r = match &mut self.res {
                Some(r) => r.grow(ask),
                None => resources.reserve(ask).map(|r| self.res = Some(r)),
            };
            match r {
                Ok(()) => return Ok(()),
                Err(e) if ask == need => return Err(e),
                Err(_) => {}
            }
        }
        Ok(())
    }

    /// Accounts for `bytes` fewer (freed), giving back whole chunks.
    pub fn shrink(&mut self, bytes: u64) {
        self.used = self.used.saturating_sub(bytes);
        if let Some(r) = &mut self.res {
            let spare = r.bytes().saturating_sub(self.used);
            if spare >= 2 * CHUNK {
                r.shrink(spare - CHUNK);
            }
        }
    }

    /// Sets the bytes in use to `bytes` (reserving more, or giving back).
    pub fn set(&mut self, resources: &Arc<Resources>, bytes: u64) -> Result<(), ExecError> {
        if bytes >= self.used {
            self.grow(resources, bytes - self.used)
        } else {
            self.shrink(self.used - bytes);
            Ok(())
        }
    }
}

/// When `e` is a budget error (the statement's or its tenant's), cancels
/// `query` with the budget as the cause (so every part of the statement
/// stops, and the cause is recorded on its contexts and spans); other
/// errors are left alone.
pub fn record_budget_error(query: &Context, e: &ExecError) {
    let reason = match e {
        ExecError::MemoryBudget { budget, requested } => Reason::MemoryBudgetExceeded {
            budget: *budget,
            requested: *requested,
        },
        ExecError::TenantMemoryBudget {
            tenant,
            budget,
            requested,
        } => Reason::TenantMemoryBudgetExceeded {
            tenant: tenant.as_str().into(),
            budget: *budget,
            requested: *requested,
        },
        _ => return,
    };
    query.cancel_with(Cause::canceled(reason, Level::Query, query.id()));
}

/// Buckets of a hash table (std's `HashMap`/`HashSet`, hashbrown) whose
/// `capacity()` is `capacity`: 0 without an allocation, else a power of two
/// at most 7/8 full (4 or 8 buckets for small tables).
pub fn hash_buckets(capacity: usize) -> usize {
    match capacity {
        0 => 0,
        1..=3 => 4,
        4..=7 => 8,
        _ => (capacity.saturating_mul(8) / 7).next_power_of_two(),
    }
}

/// Heap bytes of a hash table of entries `T` with capacity `capacity`: the
/// buckets and one control byte each, plus one group of control bytes.
pub fn hash_table_bytes<T>(capacity: usize) -> u64 {
    let b = hash_buckets(capacity);
    if b == 0 {
        return 0;
    }
    (b * (std::mem::size_of::<T>() + 1) + 16) as u64
}

/// The capacity a hash table of capacity `capacity` holding `len` entries
/// has after `additional` more inserts (it doubles when full).
pub fn hash_capacity_after(len: usize, capacity: usize, additional: usize) -> usize {
    let need = len.saturating_add(additional);
    if need <= capacity {
        return capacity;
    }
    let grown = hash_buckets(need.max(capacity.saturating_add(1)));
    if grown < 8 {
        grown - 1
    } else {
        grown / 8 * 7
    }
}

/// Heap bytes of a vector of `T` with capacity `capacity`.
pub fn vec_bytes<T>(capacity: usize) -> u64 {
    (capacity * std::mem::size_of::<T>()) as u64
}

/// What buffering `batch` with its sort or join `keys` costs: the bytes to
/// reserve (the batch's columns, and the key columns computed for it that
/// are not among them) and the bytes it adds to the operator's buffered
/// size (the batch without its shared strings).
pub fn buffered_batch_bytes(batch: &Batch, keys: &[Arc<Column>]) -> (u64, u64) {
    let data = batch.heap_bytes() as u64;
    let strings: u64 = batch.columns.iter().map(|c| c.text_bytes() as u64).sum();
    let own_keys: u64 = keys
        .iter()
        .filter(|k| !batch.columns.iter().any(|c| Arc::ptr_eq(c, k)))
        .map(|k| k.heap_bytes() as u64)
        .sum();
    (data + own_keys, data - strings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn hash_estimates_follow_the_real_table() {
        let mut s: HashSet<u64> = HashSet::new();
        let mut predicted = hash_capacity_after(0, 0, 1);
        for i in 0..100_000u64 {
            let before = s.capacity();
            s.insert(i);
            if s.capacity() != before {
                assert_eq!(s.capacity(), predicted, "grown capacity predicted");
            }
            predicted = hash_capacity_after(s.len(), s.capacity(), 1);
            // The buckets are what the capacity implies.
            assert!(hash_buckets(s.capacity()) * 7 / 8 >= s.capacity());
        }
        assert_eq!(hash_buckets(s.capacity()), 131_072);
        assert_eq!(hash_table_bytes::<u64>(s.capacity()), 131_072 * 9 + 16);
    }

    #[test]
    fn memory_use_reserves_in_chunks_and_gives_everything_back() {
        let total = Arc::new(AtomicU64::new(0));
        let res = Resources::new(10 * CHUNK, total.clone());
        let mut m = MemoryUse::default();
        m.grow(&res, 10).unwrap();
        assert_eq!(res.used(), CHUNK, "a chunk ahead");
        m.grow(&res, CHUNK).unwrap();
        assert_eq!(m.bytes(), CHUNK + 10);
        assert!(res.used() >= m.bytes() && res.used() < m.bytes() + 2 * CHUNK);
        // The last bytes of the budget can be used: no chunk fits, the exact
        // amount does.
        m.set(&res, 10 * CHUNK).unwrap();
        assert_eq!(res.used(), 10 * CHUNK);
        let err = m.grow(&res, 1).unwrap_err();
        assert!(matches!(err, ExecError::MemoryBudget { budget, .. } if budget == 10 * CHUNK));
        assert_eq!(m.bytes(), 10 * CHUNK, "a failed grow changes nothing");
        m.shrink(9 * CHUNK);
        assert!(res.used() < 3 * CHUNK);
        drop(m);
        assert_eq!(res.used(), 0);
        assert_eq!(total.load(AtomicOrdering::Acquire), 0);
    }
}
