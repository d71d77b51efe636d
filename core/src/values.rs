//! Values carried by contexts: the well-known ids in a flat struct (O(1)
//! lookup at any depth, no chain walk), and a type-keyed extension map for
//! embedder-defined values. Values are immutable once a context is built;
//! a derivation copies its parent's values (a few reference-count bumps) and
//! adds its own in the same step.

use serde::Serialize;
use std::any::{Any, TypeId};
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

/// The extension values, sorted by type: a handful of entries, scanned
/// linearly (a binary search past eight), no hashing.
type Extensions = Arc<[(TypeId, Arc<dyn Any + Send + Sync>)]>;

/// The key of each slot of [`Values::ids`].
const SLOT_KEYS: [ValueKey; 5] = [
    ValueKey::NodeId,
    ValueKey::ConnectionId,
    ValueKey::SessionId,
    ValueKey::TxnId,
    ValueKey::StatementId,
];

/// Slots of the well-known ids in [`Values`].
const NODE_ID: usize = 0;
const CONNECTION_ID: usize = 1;
const SESSION_ID: usize = 2;
const TXN_ID: usize = 3;
const STATEMENT_ID: usize = 4;

/// The values of one context: a flat copy of everything set on it and its
/// ancestors, so any lookup costs the same at every depth.
#[derive(Clone, Default)]
pub struct Values {
    /// Node, connection, session, txn and statement ids; valid where the
    /// bit of `present` is set.
    ids: [u64; 5],
    present: u8,
    pub(crate) identity: Option<Arc<Identity>>,
    ext: Option<Extensions>,
}

impl Values {
    #[inline]
    fn id(&self, slot: usize) -> Option<u64> {
        if self.present & (1 << slot) != 0 {
            Some(self.ids[slot])
        } else {
            None
        }
    }

    /// The values of a child: these, with the ids whose `ValueKey` bit is
    /// in `given` taken from `ids` (indexed by `ValueKey`), and `identity`
    /// if given. [`Values::overridden`] has checked them first.
    #[inline]
    pub(crate) fn derive(
        &self,
        given: u64,
        ids: &[u64; 6],
        identity: Option<Arc<Identity>>,
    ) -> Values {
        let mut out = [0u64; 5];
        let mut present = self.present;
        for (slot, key) in SLOT_KEYS.iter().enumerate() {
            let bit = 1u64 << (*key as u64);
            out[slot] = if given & bit != 0 {
                present |= 1 << slot;
                ids[*key as usize]
            } else {
                self.ids[slot]
            };
        }
        Values {
            ids: out,
            present,
            identity: identity.or_else(|| self.identity.clone()),
            ext: self.ext.clone(),
        }
    }

    /// The first well-known value in `given` / `ids` / `identity` (as for
    /// [`Values::derive`]) that these values already hold with another
    /// value: a descendant may not change a value set on an ancestor, so
    /// that it can never claim another tenant, connection or statement.
    /// Giving the same value again is allowed.
    ///
    /// The usual derivation gives only keys its parent lacks: one mask test
    /// against the parent's flat values, no loop.
    #[inline]
    pub(crate) fn overridden(
        &self,
        given: u64,
        ids: &[u64; 6],
        identity: Option<&Arc<Identity>>,
    ) -> Option<ValueKey> {
        // `ValueKey` bits to slot bits: NodeId stays bit 0, the ids after
        // Identity move down one.
        let slots = (given & 1) | ((given >> 1) & 0b1_1110);
        if slots & u64::from(self.present) != 0 {
            for (slot, key) in SLOT_KEYS.iter().enumerate() {
                if slots & (1 << slot) != 0
                    && self.present & (1 << slot) != 0
                    && self.ids[slot] != ids[*key as usize]
                {
                    return Some(*key);
                }
            }
        }
        match (identity, &self.identity) {
            (Some(new), Some(old)) if !Arc::ptr_eq(new, old) && **new != **old => {
                Some(ValueKey::Identity)
            }
            _ => None,
        }
    }

    /// Sets a well-known id (`ValueKey::Identity` is set through its field).
    #[cfg(test)]
    pub(crate) fn set_id(&mut self, key: ValueKey, id: u64) {
        if let Some(slot) = SLOT_KEYS.iter().position(|k| *k == key) {
            self.ids[slot] = id;
            self.present |= 1 << slot;
        }
    }

    /// Node id.
    #[inline]
    pub fn node_id(&self) -> Option<u64> {
        self.id(NODE_ID)
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
        self.id(CONNECTION_ID)
    }
    /// Session id.
    #[inline]
    pub fn session_id(&self) -> Option<u64> {
        self.id(SESSION_ID)
    }
    /// Transaction id.
    #[inline]
    pub fn txn_id(&self) -> Option<u64> {
        self.id(TXN_ID)
    }
    /// Statement id.
    #[inline]
    pub fn statement_id(&self) -> Option<u64> {
        self.id(STATEMENT_ID)
    }
    /// An embedder-defined value, by type: a scan of the few extension
    /// types set on this context and its ancestors, the same at any depth.
    #[inline]
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        let ext = self.ext.as_deref()?;
        let key = TypeId::of::<T>();
        let at = if ext.len() <= 8 {
            ext.iter().position(|(k, _)| *k == key)?
        } else {
            ext.binary_search_by(|(k, _)| k.cmp(&key)).ok()?
        };
        ext[at].1.downcast_ref::<T>()
    }

    pub(crate) fn insert_ext(&mut self, key: TypeId, value: Arc<dyn Any + Send + Sync>) {
        let mut entries = self.ext.as_deref().map(<[_]>::to_vec).unwrap_or_default();
        match entries.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(at) => entries[at].1 = value,
            Err(at) => entries.insert(at, (key, value)),
        }
        self.ext = Some(entries.into());
    }
}

impl fmt::Debug for Values {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Values")
            .field("node_id", &self.node_id())
            .field("identity", &self.identity)
            .field("connection_id", &self.connection_id())
            .field("session_id", &self.session_id())
            .field("txn_id", &self.txn_id())
            .field("statement_id", &self.statement_id())
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
    fn ids_are_absent_until_set() {
        let mut v = Values::default();
        assert_eq!(v.statement_id(), None);
        v.set_id(ValueKey::StatementId, 0);
        assert_eq!(v.statement_id(), Some(0), "0 is a value, not absence");
        v.set_id(ValueKey::NodeId, 9);
        assert_eq!((v.node_id(), v.txn_id()), (Some(9), None));
    }

    #[test]
    fn extensions_by_type_with_many_types_and_overrides() {
        macro_rules! types {
            ($($t:ident),*) => {$(
                #[derive(Debug, PartialEq)]
                struct $t(u32);
            )*};
        }
        types!(A, B, C, D, E, F, G, H, I, J);
        let mut v = Values::default();
        assert_eq!(v.get::<A>(), None);
        macro_rules! put {
            ($($t:ident = $n:expr),*) => {$(
                v.insert_ext(TypeId::of::<$t>(), Arc::new($t($n)));
            )*};
        }
        put!(A = 1, B = 2, C = 3);
        assert_eq!(v.get::<B>(), Some(&B(2)));
        assert_eq!(v.get::<D>(), None);
        let parent = v.clone();
        // Past eight types the lookup is a binary search.
        put!(D = 4, E = 5, F = 6, G = 7, H = 8, I = 9, B = 20);
        assert_eq!(v.get::<A>(), Some(&A(1)));
        assert_eq!(v.get::<B>(), Some(&B(20)));
        assert_eq!(v.get::<I>(), Some(&I(9)));
        assert_eq!(v.get::<J>(), None);
        assert_eq!(parent.get::<B>(), Some(&B(2)), "a copy is not changed");
        assert_eq!(parent.get::<I>(), None);
    }

    #[test]
    fn overridden_names_the_first_changed_key_and_allows_equal_values() {
        let mut v = Values::default();
        v.set_id(ValueKey::NodeId, 1);
        v.set_id(ValueKey::ConnectionId, 2);
        v.set_id(ValueKey::StatementId, 5);
        v.identity = Some(Arc::new(Identity::new("t", "u", "r")));
        let bit = |k: ValueKey| 1u64 << (k as u64);
        let mut ids = [0u64; 6];
        ids[ValueKey::NodeId as usize] = 1;
        ids[ValueKey::ConnectionId as usize] = 2;
        ids[ValueKey::StatementId as usize] = 5;
        ids[ValueKey::TxnId as usize] = 9;
        let all = bit(ValueKey::NodeId)
            | bit(ValueKey::ConnectionId)
            | bit(ValueKey::StatementId)
            | bit(ValueKey::TxnId);
        assert_eq!(v.overridden(all, &ids, None), None, "same values, new txn");
        for key in [
            ValueKey::NodeId,
            ValueKey::ConnectionId,
            ValueKey::StatementId,
        ] {
            let mut other = ids;
            other[key as usize] += 1;
            assert_eq!(v.overridden(all, &other, None), Some(key));
            assert_eq!(v.overridden(all & !bit(key), &other, None), None);
        }
        let same = Arc::new(Identity::new("t", "u", "r"));
        let other = Arc::new(Identity::new("t", "eve", "r"));
        assert_eq!(v.overridden(0, &ids, Some(&same)), None);
        assert_eq!(
            v.overridden(0, &ids, Some(&other)),
            Some(ValueKey::Identity)
        );
        assert_eq!(Values::default().overridden(all, &ids, Some(&other)), None);
    }

    #[test]
    fn mandatory_keys_per_level() {
        assert_eq!(ValueKey::mandatory(Level::Query), &[ValueKey::StatementId]);
        assert!(ValueKey::mandatory(Level::Routine).contains(&ValueKey::Identity));
        assert!(ValueKey::mandatory(Level::Pipeline).is_empty());
    }
}
