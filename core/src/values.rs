//! Values carried by contexts: the well-known ids in a flat struct (O(1)
//! lookup at any depth, no chain walk), and a type-keyed extension map for
//! embedder-defined values. Values are immutable once a context is built;
//! a derivation copies its parent's values (a few reference-count bumps) and
//! adds its own in the same step.

use serde::Serialize;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::level::Level;

/// Who is connected: tenant (account), user and role.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Identity {
    /// Tenant (MatrixOne's account).
    pub tenant: Arc<str>,
    /// User name.
    pub user: Arc<str>,
    /// Role name; `admin` may see and kill every connection of its tenant.
    pub role: Arc<str>,
}

impl Identity {
    /// The tenant whose `admin` role may act on every tenant.
    pub const SYS_TENANT: &'static str = "sys";
    /// The role that may act on every connection of its tenant.
    pub const ADMIN_ROLE: &'static str = "admin";

    /// Builds an identity.
    pub fn new(tenant: &str, user: &str, role: &str) -> Self {
        Identity {
            tenant: tenant.into(),
            user: user.into(),
            role: role.into(),
        }
    }

    /// Whether this identity may see and kill connections owned by `target`:
    /// its own user's, every one of its tenant's if it is `admin`, and every
    /// tenant's if it is `admin` of `sys`.
    pub fn may_act_on(&self, target: &Identity) -> bool {
        let admin = &*self.role == Self::ADMIN_ROLE;
        if admin && &*self.tenant == Self::SYS_TENANT {
            return true;
        }
        self.tenant == target.tenant && (admin || self.user == target.user)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.tenant, self.user, self.role)
    }
}

/// The names of the well-known values, for errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum ValueKey {
    /// Node id (Root).
    NodeId,
    /// Tenant, user and role (Routine).
    Identity,
    /// Connection id (Routine).
    ConnectionId,
    /// Session id (Routine).
    SessionId,
    /// Transaction id (Txn).
    TxnId,
    /// Statement id (Query).
    StatementId,
}

impl ValueKey {
    /// The keys a context of `level` must be given when it is built.
    pub const fn mandatory(level: Level) -> &'static [ValueKey] {
        match level {
            Level::Root => &[ValueKey::NodeId],
            Level::Routine => &[
                ValueKey::Identity,
                ValueKey::ConnectionId,
                ValueKey::SessionId,
            ],
            Level::Txn => &[ValueKey::TxnId],
            Level::Query => &[ValueKey::StatementId],
            Level::Request | Level::Pipeline | Level::Operator => &[],
        }
    }
}

impl fmt::Display for ValueKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueKey::NodeId => "node_id",
            ValueKey::Identity => "identity (tenant, user, role)",
            ValueKey::ConnectionId => "connection_id",
            ValueKey::SessionId => "session_id",
            ValueKey::TxnId => "txn_id",
            ValueKey::StatementId => "statement_id",
        })
    }
}

type ExtMap = HashMap<TypeId, Arc<dyn Any + Send + Sync>>;

/// The values of one context.
#[derive(Clone, Default)]
pub struct Values {
    pub(crate) node_id: Option<u64>,
    pub(crate) identity: Option<Arc<Identity>>,
    pub(crate) connection_id: Option<u64>,
    pub(crate) session_id: Option<u64>,
    pub(crate) txn_id: Option<u64>,
    pub(crate) statement_id: Option<u64>,
    pub(crate) ext: Option<Arc<ExtMap>>,
}

impl Values {
    /// Node id.
    #[inline]
    pub fn node_id(&self) -> Option<u64> {
        self.node_id
    }
    /// Tenant, user and role.
    #[inline]
    pub fn identity(&self) -> Option<&Arc<Identity>> {
        self.identity.as_ref()
    }
    /// Tenant.
    #[inline]
    pub fn tenant(&self) -> Option<&str> {
        self.identity.as_deref().map(|i| &*i.tenant)
    }
    /// User.
    #[inline]
    pub fn user(&self) -> Option<&str> {
        self.identity.as_deref().map(|i| &*i.user)
    }
    /// Role.
    #[inline]
    pub fn role(&self) -> Option<&str> {
        self.identity.as_deref().map(|i| &*i.role)
    }
    /// Connection id.
    #[inline]
    pub fn connection_id(&self) -> Option<u64> {
        self.connection_id
    }
    /// Session id.
    #[inline]
    pub fn session_id(&self) -> Option<u64> {
        self.session_id
    }
    /// Transaction id.
    #[inline]
    pub fn txn_id(&self) -> Option<u64> {
        self.txn_id
    }
    /// Statement id.
    #[inline]
    pub fn statement_id(&self) -> Option<u64> {
        self.statement_id
    }
    /// An embedder-defined value, by type. One hash lookup, at any depth.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.ext
            .as_ref()?
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<T>())
    }

    pub(crate) fn insert_ext(&mut self, key: TypeId, value: Arc<dyn Any + Send + Sync>) {
        let mut map = self.ext.as_deref().cloned().unwrap_or_default();
        map.insert(key, value);
        self.ext = Some(Arc::new(map));
    }
}

impl fmt::Debug for Values {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Values")
            .field("node_id", &self.node_id)
            .field("identity", &self.identity)
            .field("connection_id", &self.connection_id)
            .field("session_id", &self.session_id)
            .field("txn_id", &self.txn_id)
            .field("statement_id", &self.statement_id)
            .field("extensions", &self.ext.as_ref().map_or(0, |m| m.len()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_permissions_follow_tenant_and_role() {
        let alice = Identity::new("acme", "alice", "member");
        let bob = Identity::new("acme", "bob", "member");
        let acme_admin = Identity::new("acme", "root", "admin");
        let other = Identity::new("globex", "carol", "member");
        let other_admin = Identity::new("globex", "root", "admin");
        let sys_admin = Identity::new("sys", "root", "admin");
        let sys_member = Identity::new("sys", "dave", "member");

        assert!(alice.may_act_on(&alice));
        assert!(!alice.may_act_on(&bob));
        assert!(acme_admin.may_act_on(&bob));
        assert!(!acme_admin.may_act_on(&other));
        assert!(!other_admin.may_act_on(&alice));
        assert!(sys_admin.may_act_on(&alice) && sys_admin.may_act_on(&other));
        assert!(!sys_member.may_act_on(&alice));
    }

    #[test]
    fn mandatory_keys_per_level() {
        assert_eq!(ValueKey::mandatory(Level::Query), &[ValueKey::StatementId]);
        assert!(ValueKey::mandatory(Level::Routine).contains(&ValueKey::Identity));
        assert!(ValueKey::mandatory(Level::Pipeline).is_empty());
    }
}
