//! Property tests of the context tree against a model.
//!
//! Random programs of derivations (with random levels and links), cancels
//! and handle drops run against the real tree and a simple model of it. After
//! every step:
//!
//! * the cancelled set is exactly the closure of the cancelled nodes
//!   (descendants and linked contexts, transitively), as the model computes
//!   it;
//! * every cancelled node carries the cause of the first cancel that reached
//!   it (first cause wins);
//! * derivations fail with the typed error the rules predict, and attach
//!   nothing when they do;
//! * `root.subtree_len()` counts exactly the nodes the model still has
//!   attached under the root.
//!
//! At the end every handle but the root's is dropped: the root's subtree is
//! the root alone, and every node that was built has been freed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Weak};

use cascade::{Context, ContextError, Identity, Level, ManualHost, Reason};
use proptest::prelude::*;

/// One step of a random program. Indices pick among the live handles.
#[derive(Clone, Debug)]
enum Op {
    /// `level: None` derives the level's natural child (most derivations
    /// should succeed); `Some(i)` any level, usually out of order.
    /// `link: Some((aim, i))` links to a live context: with `aim`, one of a
    /// level the rules accept (a Txn for a Query).
    Derive {
        parent: usize,
        level: Option<usize>,
        link: Option<(bool, usize)>,
    },
    Cancel(usize),
    Drop(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (
            any::<usize>(),
            prop::option::weighted(0.2, 0..6usize),
            prop::option::weighted(0.4, (prop::bool::weighted(0.8), any::<usize>())),
        )
            .prop_map(|(parent, level, link)| Op::Derive { parent, level, link }),
        1 => any::<usize>().prop_map(Op::Cancel),
        3 => any::<usize>().prop_map(Op::Drop),
    ]
}

const LEVELS: [Level; 6] = [
    Level::Root,
    Level::Routine,
    Level::Txn,
    Level::Request,
    Level::Query,
    Level::Pipeline,
];

/// A value only this node holds: once the node is freed, the `Weak` dies.
struct Token(#[allow(dead_code)] Arc<()>);

struct ModelNode {
    level: Level,
    /// The node's parent in the tree as the implementation keeps it: `None`
    /// for the root and for detached nodes (born cancelled, or under a node
    /// that was cancelled).
    parent: Option<usize>,
    /// Nodes linked to this one (cancelled with it).
    linked: BTreeSet<usize>,
    /// The id of the first cancel that reached it.
    cause: Option<u64>,
}

#[derive(Default)]
struct Model {
    nodes: BTreeMap<usize, ModelNode>,
}

impl Model {
    fn children(&self, of: usize) -> Vec<usize> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.parent == Some(of))
            .map(|(&k, _)| k)
            .collect()
    }

    /// Cancels `start` and its closure with cause `cause`; a node already
    /// cancelled stops the walk (it was reached by an earlier cancel, and so
    /// was everything under it).
    fn cancel(&mut self, start: usize, cause: u64) {
        let mut work = vec![start];
        let mut newly = Vec::new();
        while let Some(n) = work.pop() {
            let node = self.nodes.get_mut(&n).expect("live node");
            if node.cause.is_some() {
                continue;
            }
            node.cause = Some(cause);
            newly.push(n);
            work.extend(node.linked.iter().copied());
            work.extend(self.children(n));
        }
        // A cancelled node lets go of its children.
        for n in newly {
            for c in self.children(n) {
                self.nodes.get_mut(&c).unwrap().parent = None;
            }
            self.nodes.get_mut(&n).unwrap().linked.clear();
        }
    }

    /// The last handle of `n` is dropped: its children move to its parent.
    fn drop_node(&mut self, n: usize) {
        let gone = self.nodes.remove(&n).expect("live node");
        for c in self.children(n) {
            self.nodes.get_mut(&c).unwrap().parent = gone.parent;
        }
        for node in self.nodes.values_mut() {
            node.linked.remove(&n);
        }
    }

    /// Nodes whose parent chain reaches the root.
    fn attached_under(&self, root: usize) -> usize {
        self.nodes
            .keys()
            .filter(|&&k| {
                let mut at = k;
                loop {
                    if at == root {
                        return true;
                    }
                    match self.nodes[&at].parent {
                        Some(p) => at = p,
                        None => return false,
                    }
                }
            })
            .count()
    }
}

fn natural_child(parent: Level, salt: usize) -> Level {
    match parent {
        Level::Root => Level::Routine,
        Level::Routine if salt % 3 == 0 => Level::Txn,
        Level::Routine => Level::Request,
        // A Txn has no child level: this derivation fails.
        Level::Txn => Level::Query,
        Level::Request => Level::Query,
        _ => Level::Pipeline,
    }
}

fn builder_for<'a>(parent: &'a Context, level: Level, n: usize) -> cascade::ContextBuilder<'a> {
    let b = parent.child(level);
    match level {
        Level::Root => b.node_id(n as u64),
        Level::Routine => b
            .identity(Identity::new("t", "u", "r"))
            .connection_id(n as u64)
            .session_id(n as u64),
        Level::Txn => b.txn_id(n as u64),
        Level::Query => b.statement_id(n as u64),
        _ => b,
    }
}

fn expected_error(parent: Level, level: Level, link: Option<Level>) -> Option<ContextError> {
    if !parent.can_derive(level) {
        return Some(ContextError::OutOfOrder {
            parent,
            child: level,
        });
    }
    match link {
        Some(t) if t >= level || (level == Level::Query && t != Level::Txn) => {
            Some(ContextError::BadLink {
                child: level,
                target: t,
            })
        }
        _ => None,
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let host = Arc::new(ManualHost::new());
    let root = Context::root(host).node_id(0).build().unwrap();
    let mut handles: BTreeMap<usize, Context> = BTreeMap::new();
    let mut tokens: Vec<Weak<()>> = Vec::new();
    let mut model = Model::default();
    model.nodes.insert(
        0,
        ModelNode {
            level: Level::Root,
            parent: None,
            linked: BTreeSet::new(),
            cause: None,
        },
    );
    handles.insert(0, root.clone());
    let mut next = 1usize;
    let mut next_cause = 1u64;
    let mut cause_of_ctx: BTreeMap<u64, (Level, u64)> = BTreeMap::new();

    for op in ops {
        let keys: Vec<usize> = handles.keys().copied().collect();
        let pick = |i: usize| keys[i % keys.len()];
        match op {
            Op::Derive {
                parent,
                level,
                link,
            } => {
                let p = pick(parent);
                let level = match level {
                    Some(l) => LEVELS[l],
                    None => natural_child(handles[&p].level(), parent),
                };
                let target = link.map(|(aim, i)| {
                    let valid: Vec<usize> = keys
                        .iter()
                        .copied()
                        .filter(|k| {
                            let t = handles[k].level();
                            if level == Level::Query {
                                t == Level::Txn
                            } else {
                                t < level
                            }
                        })
                        .collect();
                    if aim && !valid.is_empty() {
                        valid[i % valid.len()]
                    } else {
                        pick(i)
                    }
                });
                let parent_ctx = &handles[&p];
                let token = Arc::new(());
                let mut b = builder_for(parent_ctx, level, next).value(Token(token.clone()));
                if let Some(t) = target {
                    b = b.link(&handles[&t]);
                }
                let before = root.subtree_len();
                let expected = expected_error(
                    parent_ctx.level(),
                    level,
                    target.map(|t| handles[&t].level()),
                );
                match (b.build(), expected) {
                    (Err(e), Some(want)) => {
                        prop_assert_eq!(e, want);
                        prop_assert_eq!(
                            root.subtree_len(),
                            before,
                            "a failed build attaches nothing"
                        );
                    }
                    (Ok(ctx), None) => {
                        let n = next;
                        next += 1;
                        tokens.push(Arc::downgrade(&token));
                        // Born cancelled with the parent's cause, else with
                        // the link target's; otherwise attached and linked.
                        let parent_cause = model.nodes[&p].cause;
                        let target_cause = target.and_then(|t| model.nodes[&t].cause);
                        let (parent_link, cause) = match (parent_cause, target_cause) {
                            (Some(c), _) => (None, Some(c)),
                            (None, Some(c)) => (Some(p), Some(c)),
                            (None, None) => (Some(p), None),
                        };
                        model.nodes.insert(
                            n,
                            ModelNode {
                                level,
                                parent: parent_link,
                                linked: BTreeSet::new(),
                                cause,
                            },
                        );
                        if cause.is_some() {
                            // A born-cancelled node has no children yet, and
                            // keeps its place under a live parent.
                        } else if let Some(t) = target {
                            model.nodes.get_mut(&t).unwrap().linked.insert(n);
                        }
                        handles.insert(n, ctx);
                    }
                    (got, want) => {
                        return Err(TestCaseError::fail(format!(
                            "derive {level} from {}: got {:?}, expected {want:?}",
                            handles[&p].level(),
                            got.map(|c| c.level())
                        )))
                    }
                }
            }
            Op::Cancel(i) => {
                let n = pick(i);
                let c = next_cause;
                next_cause += 1;
                let ctx = &handles[&n];
                cause_of_ctx.insert(c, (ctx.level(), ctx.id()));
                let was = model.nodes[&n].cause.is_some();
                let did = ctx.cancel(Reason::Other {
                    message: format!("c{c}").into(),
                });
                prop_assert_eq!(did, !was, "cancel() reports whether it cancelled");
                model.cancel(n, c);
            }
            Op::Drop(i) => {
                let n = pick(i);
                if n == 0 {
                    continue;
                }
                drop(handles.remove(&n));
                model.drop_node(n);
            }
        }

        // The cancelled set and the causes match the model.
        for (&n, ctx) in &handles {
            let m = &model.nodes[&n];
            prop_assert_eq!(
                ctx.is_cancelled(),
                m.cause.is_some(),
                "node {} ({})",
                n,
                m.level
            );
            match (ctx.cause(), m.cause) {
                (None, None) => {}
                (Some(got), Some(want)) => {
                    let (level, id) = cause_of_ctx[&want];
                    prop_assert_eq!(
                        &got.reason,
                        &Reason::Other {
                            message: format!("c{want}").into()
                        },
                        "node {} has the cause of the first cancel that reached it",
                        n
                    );
                    prop_assert_eq!(got.level, level);
                    prop_assert_eq!(got.context_id, id);
                }
                (got, want) => {
                    return Err(TestCaseError::fail(format!(
                        "node {n}: cause {got:?}, model {want:?}"
                    )))
                }
            }
        }
        prop_assert_eq!(root.subtree_len(), model.attached_under(0));
    }

    let built = tokens.len();
    handles.retain(|&k, _| k == 0);
    prop_assert_eq!(root.subtree_len(), 1, "only the root is left");
    let leaked = tokens.iter().filter(|t| t.upgrade().is_some()).count();
    prop_assert_eq!(leaked, 0, "{} of {} nodes were not freed", leaked, built);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn cancellation_is_the_closure_and_first_cause_wins(ops in prop::collection::vec(op(), 1..80)) {
        run(ops)?;
    }
}

/// A fixed program that goes through every rule at least once, so that the
/// model itself is exercised even if the random programs were to shrink.
#[test]
fn fixed_program_covers_links_reparenting_and_born_cancelled() {
    use Op::*;
    let d = |parent, level, link| Derive {
        parent,
        level,
        link,
    };
    // Live handles are picked by their index among the live ones, in
    // creation order.
    let ops = vec![
        d(0, Some(1), None),             // 1 routine
        d(1, Some(2), None),             // 2 txn
        d(1, Some(3), None),             // 3 request
        d(3, Some(4), Some((false, 2))), // 4 query linked to the txn
        d(4, Some(5), None),             // 5 pipeline
        d(5, Some(5), None),             // 6 nested pipeline
        d(5, Some(5), Some((false, 3))), // 7 pipeline linked to the request
        Drop(4),                         // drop the query: 5 moves up to 3
        Cancel(2),                       // the txn: its link died with 4
        d(3, Some(4), Some((false, 2))), // 8 query linked to the cancelled txn
        Cancel(2),                       // the txn again: no effect
        d(2, Some(4), None),             // a query under a txn: out of order
        d(3, Some(4), Some((false, 1))), // a query linked to a routine: bad link
        Cancel(3),                       // the request: 5, 6, 7 (and 8 already)
        Cancel(1),                       // the routine: the rest
        d(1, Some(2), None),             // born cancelled
    ];
    run(ops).unwrap();
}
