//! Synchronisation primitives, swapped for `loom`'s under `--cfg loom` so the
//! model tests explore every interleaving of the real code.
//!
//! Under loom the atomics and the mutex are loom's (they are what the
//! cancellation protocol is built from); `Arc` and `Weak` stay `std`'s,
//! because loom has neither `Weak` nor `Arc::new_cyclic`. Reference counts
//! are not part of the protocol being modelled, so nothing is lost.

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Mutex, MutexGuard,
};
#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Mutex, MutexGuard,
};
pub(crate) use std::sync::{Arc, Weak};

/// Locks `m`, ignoring poisoning: every critical section in this crate leaves
/// its data consistent before anything that could panic runs.
#[cfg(not(loom))]
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Under loom, [`lock`] takes loom's mutexes (the context tree's) and `std`'s
/// (modules that keep a `std` mutex, which loom does not model), directly or
/// behind an `Arc`, so that the whole crate builds with `--cfg loom`.
#[cfg(loom)]
pub(crate) trait Lock {
    /// The guard.
    type Guard<'a>
    where
        Self: 'a;
    /// Locks, ignoring poisoning.
    fn lock_ignoring_poison(&self) -> Self::Guard<'_>;
}

#[cfg(loom)]
impl<T> Lock for loom::sync::Mutex<T> {
    type Guard<'a>
        = loom::sync::MutexGuard<'a, T>
    where
        T: 'a;
    fn lock_ignoring_poison(&self) -> Self::Guard<'_> {
        match self.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

#[cfg(loom)]
impl<T> Lock for std::sync::Mutex<T> {
    type Guard<'a>
        = std::sync::MutexGuard<'a, T>
    where
        T: 'a;
    fn lock_ignoring_poison(&self) -> Self::Guard<'_> {
        lock_std(self)
    }
}

#[cfg(loom)]
impl<L: Lock + ?Sized> Lock for std::sync::Arc<L> {
    type Guard<'a>
        = L::Guard<'a>
    where
        Self: 'a;
    fn lock_ignoring_poison(&self) -> Self::Guard<'_> {
        (**self).lock_ignoring_poison()
    }
}

/// Locks `m`, ignoring poisoning (the loom build; see [`Lock`]).
#[cfg(loom)]
pub(crate) fn lock<L: Lock + ?Sized>(m: &L) -> L::Guard<'_> {
    m.lock_ignoring_poison()
}

/// [`lock`] for a `std` mutex, which stays `std`'s under loom too (the host's
/// clock state, used outside any model).
pub(crate) fn lock_std<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Locks `m` if it is free, ignoring poisoning; `None` if it is held.
#[cfg(not(loom))]
pub(crate) fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(g) => Some(g),
        Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// Under loom, `try_lock` always fails, as it may spuriously anywhere: loom
/// models a pending `try_lock` as a blocking lock and reports deadlocks that
/// cannot happen (tokio-rs/loom#376). Callers fall back to their blocking
/// path, which the models do explore.
#[cfg(loom)]
pub(crate) fn try_lock<T>(_m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    None
}
