//! The one read-only and the one mutable walk of a sqlparser tree.
//!
//! sqlparser's walks are generic over the visitor: every distinct visitor
//! type (every closure handed to `visit_relations`, `visit_expressions`, …)
//! makes the compiler instantiate the whole walk of the AST again, about
//! 60 KB of wasm each. The engine's walks therefore go through two visitor
//! types only, [`Walk`] and [`WalkMut`], which call their hooks through a
//! trait object: what differs between walks is the hooks, not the walk.

use std::ops::ControlFlow;

use sqlparser::ast::{self, Visit, VisitMut, Visitor, VisitorMut};

/// What a read-only walk does at each node it cares about (every hook
/// defaults to going on).
pub trait Hooks {
    /// A table or view name in a FROM clause (or any relation position).
    fn relation(&mut self, _name: &ast::ObjectName) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    /// An expression, before its operands.
    fn expr(&mut self, _e: &ast::Expr) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

/// What a mutable walk does at each node it cares about.
pub trait HooksMut {
    /// An expression, before its operands (it may replace the expression).
    fn pre_expr(&mut self, _e: &mut ast::Expr) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    /// An expression, after its operands.
    fn post_expr(&mut self, _e: &mut ast::Expr) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    /// A query, before its parts.
    fn pre_query(&mut self, _q: &mut ast::Query) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

/// The read-only visitor: forwards to its hooks.
struct Walk<'a>(&'a mut dyn Hooks);

impl Visitor for Walk<'_> {
    type Break = ();
    fn pre_visit_relation(&mut self, r: &ast::ObjectName) -> ControlFlow<()> {
        self.0.relation(r)
    }
    fn pre_visit_expr(&mut self, e: &ast::Expr) -> ControlFlow<()> {
        self.0.expr(e)
    }
}

/// The mutable visitor: forwards to its hooks.
struct WalkMut<'a>(&'a mut dyn HooksMut);

impl VisitorMut for WalkMut<'_> {
    type Break = ();
    fn pre_visit_expr(&mut self, e: &mut ast::Expr) -> ControlFlow<()> {
        self.0.pre_expr(e)
    }
    fn post_visit_expr(&mut self, e: &mut ast::Expr) -> ControlFlow<()> {
        self.0.post_expr(e)
    }
    fn pre_visit_query(&mut self, q: &mut ast::Query) -> ControlFlow<()> {
        self.0.pre_query(q)
    }
}

/// Walks `node` read-only; `Break` if a hook broke off the walk.
pub fn walk<V: Visit + ?Sized>(node: &V, hooks: &mut dyn Hooks) -> ControlFlow<()> {
    node.visit(&mut Walk(hooks))
}

/// Walks `node` with hooks that may change it; `Break` if a hook broke off
/// the walk.
pub fn walk_mut<V: VisitMut + ?Sized>(node: &mut V, hooks: &mut dyn HooksMut) -> ControlFlow<()> {
    node.visit(&mut WalkMut(hooks))
}

/// Hooks from a closure over relation names.
pub struct OnRelation<F>(pub F);

impl<F: FnMut(&ast::ObjectName) -> ControlFlow<()>> Hooks for OnRelation<F> {
    fn relation(&mut self, name: &ast::ObjectName) -> ControlFlow<()> {
        (self.0)(name)
    }
}

/// Hooks from a closure over expressions.
pub struct OnExpr<F>(pub F);

impl<F: FnMut(&ast::Expr) -> ControlFlow<()>> Hooks for OnExpr<F> {
    fn expr(&mut self, e: &ast::Expr) -> ControlFlow<()> {
        (self.0)(e)
    }
}

/// Mutable hooks from a closure over expressions (before their operands).
pub struct OnExprMut<F>(pub F);

impl<F: FnMut(&mut ast::Expr) -> ControlFlow<()>> HooksMut for OnExprMut<F> {
    fn pre_expr(&mut self, e: &mut ast::Expr) -> ControlFlow<()> {
        (self.0)(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(sql: &str) -> ast::Statement {
        match crate::sql::parse(sql) {
            Ok(mut v) if v.len() == 1 => v.remove(0),
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn relations_are_seen_in_subqueries_and_the_walk_stops_on_break() {
        let s =
            stmt("SELECT a FROM t1 WHERE b IN (SELECT c FROM t2) AND EXISTS (SELECT 1 FROM t3)");
        let mut seen = Vec::new();
        let r = walk(
            &s,
            &mut OnRelation(|n: &ast::ObjectName| {
                seen.push(n.to_string());
                ControlFlow::Continue(())
            }),
        );
        assert!(r.is_continue());
        assert_eq!(seen, ["t1", "t2", "t3"]);
        let mut n = 0;
        let r = walk(
            &s,
            &mut OnRelation(|_: &ast::ObjectName| {
                n += 1;
                ControlFlow::Break(())
            }),
        );
        assert!(r.is_break());
        assert_eq!(n, 1);
    }

    #[test]
    fn a_mutable_walk_can_replace_expressions() {
        let mut s = stmt("SELECT x + 1, (SELECT x FROM t)");
        let _ = walk_mut(
            &mut s,
            &mut OnExprMut(|e: &mut ast::Expr| {
                if matches!(e, ast::Expr::Identifier(i) if i.value == "x") {
                    *e = ast::Expr::Identifier(ast::Ident::new("y"));
                }
                ControlFlow::Continue(())
            }),
        );
        assert_eq!(s.to_string(), "SELECT y + 1, (SELECT y FROM t)");
    }
}
