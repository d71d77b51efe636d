//! Per-tenant limits: how many connections a tenant may hold, a memory
//! budget shared by all its running statements, and its connections'
//! default `max_execution_time`.
//!
//! The limits are configured engine-wide ([`crate::EngineConfig::tenants`],
//! with [`crate::EngineConfig::default_tenant_limits`] for tenants not
//! listed) and carried by each connection's Routine context as a value
//! (`Arc<TenantState>`, see [`crate::Values::get`]): a statement finds its
//! tenant's budget in its own context, never from the SQL text.
//!
//! Invariants:
//! - [`TenantState::connections`] is the number of live [`TenantSlot`]s;
//!   a slot is taken before a connection is registered and given back when
//!   the connection leaves the process list (close, drop).
//! - [`TenantBudget::used`] is the sum of the live reservations of the
//!   tenant's statements (every [`crate::pipeline::Resources`] built with
//!   the budget charges it, and gives the bytes back when they are released),
//!   so it is 0 when none of the tenant's statements holds state.
//! - A refused charge changes nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::expr::ExecError;
use crate::sync::{lock, Mutex};

/// The limits of one tenant. `None` (or 0 for the timeout) means no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantLimits {
    /// Connections the tenant may hold at once; one more gets error 1040.
    pub max_connections: Option<u64>,
    /// Bytes the tenant's running statements may reserve together; the
    /// statement whose reservation crosses it is cancelled with 1041.
    pub memory_budget: Option<u64>,
    /// The default `max_execution_time` (ms) of the tenant's connections;
    /// a session's own `SET max_execution_time` overrides it. 0: none.
    pub max_execution_time_ms: u64,
}

/// A tenant's memory budget: one counter that every reservation of the
/// tenant's statements also charges.
#[derive(Debug)]
pub struct TenantBudget {
    tenant: Arc<str>,
    budget: Option<u64>,
    used: AtomicU64,
}

impl TenantBudget {
    /// A budget of `budget` bytes (`None`: unlimited, only counted).
    pub fn new(tenant: &str, budget: Option<u64>) -> Self {
        TenantBudget {
            tenant: tenant.into(),
            budget,
            used: AtomicU64::new(0),
        }
    }

    /// Charges `bytes`, or fails with [`ExecError::TenantMemoryBudget`]
    /// (and charges nothing).
    pub fn charge(&self, bytes: u64) -> Result<(), ExecError> {
        let now = self
            .used
            .fetch_add(bytes, Ordering::AcqRel)
            .saturating_add(bytes);
        match self.budget {
            Some(budget) if now > budget => {
                self.used.fetch_sub(bytes, Ordering::AcqRel);
                Err(ExecError::TenantMemoryBudget {
                    tenant: self.tenant.to_string(),
                    budget,
                    requested: now,
                })
            }
            _ => Ok(()),
        }
    }

    /// Gives back `bytes` charged before.
    pub fn release(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Bytes the tenant's statements hold now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// The budget in bytes, if any.
    pub fn budget(&self) -> Option<u64> {
        self.budget
    }

    /// The tenant.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }
}

/// One tenant's limits and what it uses of them, shared by its connections
/// (each Routine context carries it as a value).
#[derive(Debug)]
pub struct TenantState {
    name: Arc<str>,
    limits: TenantLimits,
    connections: AtomicU64,
    memory: Arc<TenantBudget>,
}

impl TenantState {
    fn new(name: &str, limits: TenantLimits) -> Self {
        TenantState {
            name: name.into(),
            memory: Arc::new(TenantBudget::new(name, limits.memory_budget)),
            limits,
            connections: AtomicU64::new(0),
        }
    }

    /// The tenant's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tenant's limits.
    pub fn limits(&self) -> &TenantLimits {
        &self.limits
    }

    /// Connections the tenant holds now.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Acquire)
    }

    /// The memory budget shared by the tenant's statements.
    pub fn memory(&self) -> &Arc<TenantBudget> {
        &self.memory
    }

    /// Takes a connection slot, or says the tenant has `max_connections`
    /// already (the limit as the error's second value).
    pub fn acquire_connection(self: &Arc<Self>) -> Result<TenantSlot, u64> {
        let max = self.limits.max_connections.unwrap_or(u64::MAX);
        self.connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| max)?;
        Ok(TenantSlot {
            tenant: self.clone(),
        })
    }
}

/// One connection's slot in its tenant's `max_connections`; given back on
/// drop.
#[derive(Debug)]
#[must_use = "the connection slot is given back when this is dropped"]
pub struct TenantSlot {
    tenant: Arc<TenantState>,
}

impl Drop for TenantSlot {
    fn drop(&mut self) {
        self.tenant.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The engine's tenants: the configured limits, and the state of every
/// tenant that has connected (kept while the engine lives: a handful of
/// counters per tenant).
#[derive(Debug, Default)]
pub struct Tenants {
    default: TenantLimits,
    configured: HashMap<String, TenantLimits>,
    live: Mutex<HashMap<Arc<str>, Arc<TenantState>>>,
}

impl Tenants {
    /// The tenants of an engine: `configured` by name, `default` for the
    /// others.
    pub fn new(default: TenantLimits, configured: HashMap<String, TenantLimits>) -> Self {
        Tenants {
            default,
            configured,
            live: Mutex::new(HashMap::new()),
        }
    }

    /// The state of `tenant`, made on first use.
    pub fn get(&self, tenant: &str) -> Arc<TenantState> {
        let mut live = lock(&self.live);
        if let Some(t) = live.get(tenant) {
            return t.clone();
        }
        let limits = self
            .configured
            .get(tenant)
            .cloned()
            .unwrap_or_else(|| self.default.clone());
        let state = Arc::new(TenantState::new(tenant, limits));
        live.insert(state.name.clone(), state.clone());
        state
    }

    /// The state of `tenant` if it has connected.
    pub fn existing(&self, tenant: &str) -> Option<Arc<TenantState>> {
        lock(&self.live).get(tenant).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_slots_are_counted_and_given_back() {
        let mut conf = HashMap::new();
        conf.insert(
            "acme".to_owned(),
            TenantLimits {
                max_connections: Some(2),
                ..TenantLimits::default()
            },
        );
        let tenants = Tenants::new(TenantLimits::default(), conf);
        let acme = tenants.get("acme");
        let a = acme.acquire_connection().unwrap();
        let _b = acme.acquire_connection().unwrap();
        assert_eq!(acme.acquire_connection().unwrap_err(), 2);
        assert_eq!(acme.connections(), 2, "a refused slot is not counted");
        // Another tenant has the default limits: unlimited.
        let globex = tenants.get("globex");
        let slots: Vec<_> = (0..10)
            .map(|_| globex.acquire_connection().unwrap())
            .collect();
        assert_eq!(globex.connections(), 10);
        drop(a);
        assert!(
            Arc::ptr_eq(&tenants.get("acme"), &acme),
            "one state per tenant"
        );
        let _c = acme.acquire_connection().unwrap();
        drop(slots);
        assert_eq!(globex.connections(), 0);
    }

    #[test]
    fn budget_refuses_the_crossing_charge_and_changes_nothing() {
        let b = TenantBudget::new("acme", Some(100));
        b.charge(60).unwrap();
        let e = b.charge(41).unwrap_err();
        assert_eq!(
            e,
            ExecError::TenantMemoryBudget {
                tenant: "acme".into(),
                budget: 100,
                requested: 101
            }
        );
        assert_eq!(b.used(), 60);
        b.charge(40).unwrap();
        b.release(100);
        assert_eq!(b.used(), 0);
        let free = TenantBudget::new("globex", None);
        free.charge(u64::MAX / 2).unwrap();
        assert_eq!(free.used(), u64::MAX / 2);
    }
}
