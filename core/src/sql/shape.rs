//! Bounding the depth of the trees that SQL text shapes.
//!
//! sqlparser parses a left-associative chain (`1 + 1 + … + 1`, `a OR b OR
//! …`, `… UNION ALL …`, and postfix forms such as `x IS NULL IS NULL …`) in
//! a loop, so its AST is a left-deep spine as long as the chain, and its
//! recursion limit only sees the other nesting (parentheses, prefix
//! operators, subqueries). Everything sqlparser derives over its AST (`Drop`,
//! `Clone`, `Display`, `Debug`, `PartialEq`) recurses, as do the planner's
//! walks, so a few kilobytes of SQL could overflow any stack.
//!
//! [`bound`] runs over every statement right after parsing and leaves a tree
//! whose depth is bounded by [`MAX_DEPTH`] levels of expressions:
//!
//! - A chain of binary operators of one precedence (a *run*: `+` and `-`;
//!   `AND`; `OR`; comparisons; `*`, `/`, `DIV`, `%`, `||`; …) is rebuilt as a
//!   balanced tree of the same operands and operators in the same order, and
//!   a chain of set operations likewise. Both print without parentheses, so
//!   the text of every node (used for column names and for matching GROUP BY
//!   keys) is unchanged, and the depth of a run of `n` becomes `log2(n)`.
//! - The planner reads a run back as a sequence evaluated left to right
//!   ([`binary_run`], [`set_run`]), exactly what the parser's left-deep spine
//!   meant. This is sound because the parser never puts an operator of the
//!   same precedence as the right operand of another without parentheses
//!   (`Nested`), which end a run.
//! - Parentheses nested deeper than [`MAX_PARENS`] are an error (1436)
//!   found on the tokens, before sqlparser's recursive descent, whose
//!   function-call frames are the biggest.
//! - Anything still deeper than [`MAX_DEPTH`] is an error (1436, the code
//!   MySQL gives when a statement needs more stack than it has). The part
//!   beyond the limit is cut off and taken apart in passes of bounded depth,
//!   so even dropping it cannot overflow.
//!
//! Invariant for the rest of the crate: a statement that [`bound`] accepted
//! has at most [`MAX_DEPTH`] nested expressions, and sqlparser's recursion
//! limit ([`PARSER_DEPTH`]) bounds its other nesting; recursive walks over it,
//! and over what the planner compiles from it, are therefore bounded.

use core::ops::ControlFlow;
use std::mem;

use sqlparser::ast::{self, BinaryOperator as B};
use sqlparser::tokenizer::{Token, TokenWithSpan};

use super::error::SqlError;
use super::walk::{walk_mut, HooksMut};

/// The deepest nesting of expressions a statement may have, after its
/// operator chains are balanced (a balanced run of a million operators is 20
/// levels). Hand-written SQL rarely nests past a dozen levels; with
/// [`PARSER_DEPTH`] and [`MAX_PARENS`] the bound keeps every walk inside a
/// 768 KiB stack in a release build (2 MiB unoptimized, whose frames are several times bigger):
/// see `core/tests/deep_input.rs`.
pub const MAX_DEPTH: usize = 100;

/// sqlparser's recursion limit: nested parentheses, prefix operators,
/// subqueries and operands of different precedence, all counted together.
pub const PARSER_DEPTH: usize = 64;

/// The deepest nesting of parentheses (function calls, subqueries, nested
/// expressions), checked on the tokens before sqlparser descends into them:
/// a function call costs sqlparser ~15 KB of stack per level in a release
/// build (a parenthesis alone ~4.5 KB), so 64 levels of `abs(abs(…))` would
/// need ~1 MB, the whole wasm stack.
pub const MAX_PARENS: usize = 32;

/// Fails with [`SqlError::TooDeep`] when `tokens` nest parentheses deeper
/// than [`MAX_PARENS`].
pub fn check_parens(tokens: &[TokenWithSpan]) -> Result<(), SqlError> {
    let mut depth = 0usize;
    for t in tokens {
        match t.token {
            Token::LParen => {
                depth += 1;
                if depth > MAX_PARENS {
                    return Err(SqlError::TooDeep(MAX_PARENS));
                }
            }
            Token::RParen => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Runs shorter than this are left as the parser built them.
const BALANCE_FROM: usize = 8;

/// The precedence class of a binary operator: operators the parser gives one
/// precedence share a class (see sqlparser's `get_next_precedence_default`);
/// any other operator is a class of its own.
#[derive(Clone, PartialEq)]
enum Class {
    Prec(u8),
    Op(B),
}

fn class(op: &B) -> Class {
    Class::Prec(match op {
        B::Or => 5,
        B::And => 10,
        B::Eq
        | B::NotEq
        | B::Lt
        | B::LtEq
        | B::Gt
        | B::GtEq
        | B::Spaceship
        | B::Assignment
        | B::PGRegexMatch
        | B::PGRegexIMatch
        | B::PGRegexNotMatch
        | B::PGRegexNotIMatch
        | B::PGLikeMatch
        | B::PGILikeMatch
        | B::PGNotLikeMatch
        | B::PGNotILikeMatch => 20,
        B::BitwiseOr => 21,
        B::BitwiseXor | B::PGBitwiseShiftLeft | B::PGBitwiseShiftRight => 22,
        B::BitwiseAnd => 23,
        B::Xor => 24,
        B::Plus | B::Minus => 30,
        B::Multiply
        | B::Divide
        | B::Modulo
        | B::StringConcat
        | B::MyIntegerDivide
        | B::DuckIntegerDivide => 40,
        other => return Class::Op(other.clone()),
    })
}

fn class_of(e: &ast::Expr) -> Option<Class> {
    match e {
        ast::Expr::BinaryOp { op, .. } => Some(class(op)),
        _ => None,
    }
}

/// A run of binary operators read back in order: `operands[0] ops[0]
/// operands[1] ops[1] …`, evaluated left to right.
pub struct Run<'a> {
    /// The operands, in order (never binary operators of the run's class).
    pub operands: Vec<&'a ast::Expr>,
    /// The operators between them.
    pub ops: Vec<&'a B>,
}

/// The run of same-precedence binary operators rooted at `e`, whatever its
/// grouping (left-deep from the parser, or balanced by [`bound`]); `None`
/// when `e` is not a binary operator. Iterative: runs can be long.
pub fn binary_run(e: &ast::Expr) -> Option<Run<'_>> {
    let cls = class_of(e)?;
    let mut run = Run {
        operands: Vec::new(),
        ops: Vec::new(),
    };
    enum Item<'a> {
        Node(&'a ast::Expr),
        Op(&'a B),
    }
    let mut stack = vec![Item::Node(e)];
    while let Some(item) = stack.pop() {
        match item {
            Item::Op(op) => run.ops.push(op),
            Item::Node(ast::Expr::BinaryOp { left, op, right }) if class(op) == cls => {
                stack.push(Item::Node(right));
                stack.push(Item::Op(op));
                stack.push(Item::Node(left));
            }
            Item::Node(x) => run.operands.push(x),
        }
    }
    Some(run)
}

fn set_class(op: &ast::SetOperator) -> u8 {
    match op {
        ast::SetOperator::Intersect => 20,
        ast::SetOperator::Union | ast::SetOperator::Except | ast::SetOperator::Minus => 10,
    }
}

/// A run of set operations read back in order: `operands[0] ops[0]
/// operands[1] …`, each operator with its quantifier, left to right.
pub struct SetRun<'a> {
    /// The operands, in order.
    pub operands: Vec<&'a ast::SetExpr>,
    /// The operators between them, with their quantifiers.
    pub ops: Vec<(&'a ast::SetOperator, &'a ast::SetQuantifier)>,
}

/// The run of same-precedence set operations rooted at `e`; `None` when `e`
/// is not a set operation. Iterative.
pub fn set_run(e: &ast::SetExpr) -> Option<SetRun<'_>> {
    let ast::SetExpr::SetOperation { op, .. } = e else {
        return None;
    };
    let cls = set_class(op);
    let mut run = SetRun {
        operands: Vec::new(),
        ops: Vec::new(),
    };
    enum Item<'a> {
        Node(&'a ast::SetExpr),
        Op(&'a ast::SetOperator, &'a ast::SetQuantifier),
    }
    let mut stack = vec![Item::Node(e)];
    while let Some(item) = stack.pop() {
        match item {
            Item::Op(op, q) => run.ops.push((op, q)),
            Item::Node(ast::SetExpr::SetOperation {
                left,
                op,
                set_quantifier,
                right,
            }) if set_class(op) == cls => {
                stack.push(Item::Node(right));
                stack.push(Item::Op(op, set_quantifier));
                stack.push(Item::Node(left));
            }
            Item::Node(x) => run.operands.push(x),
        }
    }
    Some(run)
}

/// Bounds the depth of `stmt` (see the module doc): balances its operator
/// and set-operation chains, and fails with [`SqlError::TooDeep`] when it
/// still nests deeper than [`MAX_DEPTH`] expressions. On failure the
/// statement is left truncated (only fit for dropping).
pub fn bound(stmt: &mut ast::Statement) -> Result<(), SqlError> {
    let mut b = Bounder::default();
    // `Break` is never used: deep parts are cut off and the walk goes on, so
    // that what remains is shallow enough to drop.
    let _ = walk_mut(stmt, &mut b);
    while let Some(mut cut) = b.cut.pop() {
        b.depth = 0;
        b.parents.clear();
        let _ = walk_mut(&mut cut, &mut b);
        // `cut` now holds at most MAX_DEPTH levels; its own deeper parts
        // were cut off in turn.
        drop(cut);
    }
    if b.too_deep {
        Err(SqlError::TooDeep(MAX_DEPTH))
    } else {
        Ok(())
    }
}

#[derive(Default)]
struct Bounder {
    depth: usize,
    /// The class of each enclosing expression (`None` if not a binary
    /// operator), innermost last.
    parents: Vec<Option<Class>>,
    cut: Vec<ast::Expr>,
    too_deep: bool,
}

fn placeholder() -> ast::Expr {
    ast::Expr::Value(ast::Value::Null.into())
}

impl HooksMut for Bounder {
    fn pre_expr(&mut self, e: &mut ast::Expr) -> ControlFlow<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.too_deep = true;
            self.cut.push(mem::replace(e, placeholder()));
        } else if let Some(cls) = class_of(e) {
            let inside_run = self.parents.last() == Some(&Some(cls.clone()));
            if !inside_run && left_spine(e, &cls) >= BALANCE_FROM {
                balance(e, &cls);
            }
        }
        self.parents.push(class_of(e));
        ControlFlow::Continue(())
    }

    fn post_expr(&mut self, _: &mut ast::Expr) -> ControlFlow<()> {
        self.depth -= 1;
        self.parents.pop();
        ControlFlow::Continue(())
    }

    fn pre_query(&mut self, q: &mut ast::Query) -> ControlFlow<()> {
        balance_sets(&mut q.body);
        ControlFlow::Continue(())
    }
}

/// How many same-class operators hang on the left spine of `e` (counting
/// stops at [`BALANCE_FROM`]).
fn left_spine(mut e: &ast::Expr, cls: &Class) -> usize {
    let mut n = 0;
    while let ast::Expr::BinaryOp { left, op, .. } = e {
        if class(op) != *cls || n >= BALANCE_FROM {
            break;
        }
        n += 1;
        e = left;
    }
    n
}

/// Rebuilds the run rooted at `e` as a balanced tree, same order.
fn balance(e: &mut ast::Expr, cls: &Class) {
    let mut operands = Vec::new();
    let mut ops = Vec::new();
    enum Item {
        Node(Box<ast::Expr>),
        Op(B),
    }
    let mut stack = vec![Item::Node(Box::new(mem::replace(e, placeholder())))];
    while let Some(item) = stack.pop() {
        match item {
            Item::Op(op) => ops.push(op),
            Item::Node(x) if class_of(&x).as_ref() == Some(cls) => {
                if let ast::Expr::BinaryOp { left, op, right } = *x {
                    stack.push(Item::Node(right));
                    stack.push(Item::Op(op));
                    stack.push(Item::Node(left));
                }
            }
            Item::Node(x) => operands.push(x),
        }
    }
    let joined = pair_up(operands, ops, |l, op, r| {
        Box::new(ast::Expr::BinaryOp {
            left: l,
            op,
            right: r,
        })
    });
    if let Some(j) = joined {
        *e = *j;
    }
}

/// The balanced tree over `items` (in order, `ops` between them: one fewer),
/// built bottom-up by joining neighbours, without recursion: its depth is
/// `⌈log2(n)⌉`. `None` only for no items.
fn pair_up<T, O>(mut items: Vec<T>, mut ops: Vec<O>, join: impl Fn(T, O, T) -> T) -> Option<T> {
    while items.len() > 1 {
        let mut next_items = Vec::with_capacity(items.len() / 2 + 1);
        let mut next_ops = Vec::with_capacity(ops.len() / 2);
        let mut items_in = items.into_iter();
        let mut ops_in = ops.into_iter();
        while let Some(a) = items_in.next() {
            match (ops_in.next(), items_in.next()) {
                (Some(op), Some(b)) => {
                    next_items.push(join(a, op, b));
                    next_ops.extend(ops_in.next());
                }
                // The odd one out at the end goes up a level unchanged.
                _ => next_items.push(a),
            }
        }
        items = next_items;
        ops = next_ops;
    }
    items.pop()
}

/// Balances every run of set operations under `body` (a run's operands can
/// be runs of the other class: `a UNION b INTERSECT c INTERSECT d`).
fn balance_sets(body: &mut ast::SetExpr) {
    let mut work: Vec<&mut ast::SetExpr> = vec![body];
    while let Some(e) = work.pop() {
        let ast::SetExpr::SetOperation { op, .. } = &*e else {
            continue;
        };
        let cls = set_class(op);
        let mut operands = Vec::new();
        let mut ops = Vec::new();
        enum Item {
            Node(Box<ast::SetExpr>),
            Op(ast::SetOperator, ast::SetQuantifier),
        }
        let empty = || {
            ast::SetExpr::Values(ast::Values {
                explicit_row: false,
                value_keyword: false,
                rows: Vec::new(),
            })
        };
        let mut stack = vec![Item::Node(Box::new(mem::replace(e, empty())))];
        while let Some(item) = stack.pop() {
            match item {
                Item::Op(op, q) => ops.push((op, q)),
                Item::Node(x) if matches!(&*x, ast::SetExpr::SetOperation { op, .. } if set_class(op) == cls) => {
                    if let ast::SetExpr::SetOperation {
                        left,
                        op,
                        set_quantifier,
                        right,
                    } = *x
                    {
                        stack.push(Item::Node(right));
                        stack.push(Item::Op(op, set_quantifier));
                        stack.push(Item::Node(left));
                    }
                }
                Item::Node(x) => operands.push(x),
            }
        }
        let joined = pair_up(operands, ops, |l, (op, set_quantifier), r| {
            Box::new(ast::SetExpr::SetOperation {
                left: l,
                op,
                set_quantifier,
                right: r,
            })
        });
        if let Some(j) = joined {
            *e = *j;
        }
        collect_operands(e, cls, &mut work);
    }
}

/// Pushes the operands of the (balanced) run at `e` that are runs of
/// another class.
fn collect_operands<'a>(e: &'a mut ast::SetExpr, cls: u8, work: &mut Vec<&'a mut ast::SetExpr>) {
    let same = matches!(&*e, ast::SetExpr::SetOperation { op, .. } if set_class(op) == cls);
    if !same {
        if matches!(&*e, ast::SetExpr::SetOperation { .. }) {
            work.push(e);
        }
        return;
    }
    if let ast::SetExpr::SetOperation { left, right, .. } = e {
        collect_operands(left, cls, work);
        collect_operands(right, cls, work);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(e: &ast::Expr) -> usize {
        match e {
            ast::Expr::BinaryOp { left, right, .. } => 1 + depth(left).max(depth(right)),
            ast::Expr::Nested(x) => 1 + depth(x),
            _ => 1,
        }
    }

    fn select_item(s: &ast::Statement) -> &ast::Expr {
        let ast::Statement::Query(q) = s else {
            panic!("not a query: {s}")
        };
        let ast::SetExpr::Select(sel) = q.body.as_ref() else {
            panic!("not a select: {s}")
        };
        match &sel.projection[0] {
            ast::SelectItem::UnnamedExpr(e) => e,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn balancing_keeps_the_text_and_the_run() {
        let terms: Vec<String> = (0..1000).map(|i| format!("x{i}")).collect();
        let mut sql = String::from("SELECT x");
        for (i, t) in terms.iter().enumerate() {
            sql.push_str(if i % 3 == 0 { " - " } else { " + " });
            sql.push_str(t);
        }
        sql.push_str(" * 2 = (a OR b OR c OR d OR e OR f OR g OR h OR i)");
        let stmts = crate::sql::parse(&sql).expect("parses");
        assert_eq!(stmts[0].to_string(), sql);
        let e = select_item(&stmts[0]);
        // 1001 operands: log2 levels, plus the comparison.
        assert!(depth(e) <= 14, "depth {}", depth(e));
        let ast::Expr::BinaryOp { left, .. } = e else {
            panic!("{e}")
        };
        let run = binary_run(left).expect("a run");
        assert_eq!(run.operands.len(), 1001);
        assert_eq!(run.operands[0].to_string(), "x");
        assert_eq!(run.operands[1000].to_string(), "x999 * 2");
        assert_eq!(run.ops[0].to_string(), "-");
        assert_eq!(run.ops[1].to_string(), "+");
    }

    #[test]
    fn set_runs_keep_their_order() {
        let mut sql = String::from("SELECT 0");
        for i in 1..500 {
            let op = if i % 7 == 0 { "UNION" } else { "UNION ALL" };
            sql.push_str(&format!(" {op} SELECT {i}"));
        }
        let stmts = crate::sql::parse(&sql).expect("parses");
        assert_eq!(stmts[0].to_string(), sql);
        let ast::Statement::Query(q) = &stmts[0] else {
            panic!()
        };
        let run = set_run(&q.body).expect("a run");
        assert_eq!(run.operands.len(), 500);
        assert_eq!(run.operands[499].to_string(), "SELECT 499");
        assert!(matches!(run.ops[6].1, ast::SetQuantifier::None));
        assert!(matches!(run.ops[5].1, ast::SetQuantifier::All));
    }
}
