//! Context levels and the derivation order between them.
//!
//! | level    | one per                          | primary parent     |
//! |----------|----------------------------------|--------------------|
//! | Root     | process / node                   | —                  |
//! | Routine  | client connection or session     | Root               |
//! | Txn      | transaction                      | Routine            |
//! | Request  | one client request               | Routine            |
//! | Query    | one statement                    | Request (+ Txn link)|
//! | Pipeline | pipeline / fragment (may nest)   | Query or Pipeline  |
//!
//! `Operator` is a span level only: operators get spans, not contexts.
//!
//! Where the level is known at compile time, use the marker types in
//! [`levels`] with [`Ctx`](crate::Ctx): a derivation out of order does not
//! compile. Where it is chosen at run time, [`Level::check_derive`] returns a
//! typed error.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::error::ContextError;

/// The level of a context (or of a trace span).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Level {
    /// One per process / node.
    Root,
    /// One per client connection or background session.
    Routine,
    /// One per transaction.
    Txn,
    /// One per client request (a batch of statements as sent).
    Request,
    /// One per statement.
    Query,
    /// One per pipeline or fragment of a query; pipelines may nest.
    Pipeline,
    /// A pipeline operator. Only spans have this level, never contexts.
    Operator,
}

impl Level {
    /// All levels, outermost first.
    pub const ALL: [Level; 7] = [
        Level::Root,
        Level::Routine,
        Level::Txn,
        Level::Request,
        Level::Query,
        Level::Pipeline,
        Level::Operator,
    ];

    /// The level's name as shown in traces and errors (`"Query"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Root => "Root",
            Level::Routine => "Routine",
            Level::Txn => "Txn",
            Level::Request => "Request",
            Level::Query => "Query",
            Level::Pipeline => "Pipeline",
            Level::Operator => "Operator",
        }
    }

    /// Whether a context of level `child` may be derived from one of level
    /// `self`.
    pub const fn can_derive(self, child: Level) -> bool {
        matches!(
            (self, child),
            (Level::Root, Level::Routine)
                | (Level::Routine, Level::Txn)
                | (Level::Routine, Level::Request)
                | (Level::Request, Level::Query)
                | (Level::Query, Level::Pipeline)
                | (Level::Pipeline, Level::Pipeline)
        )
    }

    /// Like [`Level::can_derive`], as a typed error.
    pub fn check_derive(self, child: Level) -> Result<(), ContextError> {
        if self.can_derive(child) {
            Ok(())
        } else {
            Err(ContextError::OutOfOrder {
                parent: self,
                child,
            })
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Marker types for levels known at compile time.
///
/// ```
/// use cascade::levels::{ChildOf, Query, Request};
/// fn takes_child_of_request<C: ChildOf<Request>>() {}
/// takes_child_of_request::<Query>();
/// ```
///
/// A Query cannot be derived from a Routine:
///
/// ```compile_fail
/// use cascade::levels::{ChildOf, Query, Routine};
/// fn takes_child_of_routine<C: ChildOf<Routine>>() {}
/// takes_child_of_routine::<Query>();
/// ```
pub mod levels {
    use super::Level;

    /// A level known at compile time.
    pub trait StaticLevel: Send + Sync + 'static {
        /// The run-time value of this level.
        const LEVEL: Level;
    }

    /// `C: ChildOf<P>` holds when a `C` context may be derived from a `P`.
    pub trait ChildOf<P: StaticLevel>: StaticLevel {}

    macro_rules! marker {
        ($($name:ident),*) => {$(
            #[doc = concat!("The `", stringify!($name), "` level as a type.")]
            #[derive(Debug, Clone, Copy)]
            pub struct $name;
            impl StaticLevel for $name {
                const LEVEL: Level = Level::$name;
            }
        )*};
    }
    marker!(Root, Routine, Txn, Request, Query, Pipeline);

    impl ChildOf<Root> for Routine {}
    impl ChildOf<Routine> for Txn {}
    impl ChildOf<Routine> for Request {}
    impl ChildOf<Request> for Query {}
    impl ChildOf<Query> for Pipeline {}
    impl ChildOf<Pipeline> for Pipeline {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_table_derivations_are_allowed() {
        let allowed = [
            (Level::Root, Level::Routine),
            (Level::Routine, Level::Txn),
            (Level::Routine, Level::Request),
            (Level::Request, Level::Query),
            (Level::Query, Level::Pipeline),
            (Level::Pipeline, Level::Pipeline),
        ];
        for p in Level::ALL {
            for c in Level::ALL {
                assert_eq!(p.can_derive(c), allowed.contains(&(p, c)), "{p} -> {c}");
                assert_eq!(p.check_derive(c).is_ok(), allowed.contains(&(p, c)));
            }
        }
    }

    #[test]
    fn out_of_order_is_a_typed_error() {
        let err = Level::Routine.check_derive(Level::Query).unwrap_err();
        assert_eq!(
            err,
            ContextError::OutOfOrder {
                parent: Level::Routine,
                child: Level::Query
            }
        );
        assert!(err.to_string().contains("Query"));
    }
}
