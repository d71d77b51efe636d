//! Group keys and aggregates are matched structurally (compiled expressions),
//! not by lower-cased text: string literals keep their case, qualified and
//! unqualified column names are the same column.

mod common;
use cascade::{Connection, Engine};
use common::*;

fn setup() -> (Engine, Connection) {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    ok(
        &c,
        "CREATE TABLE t (x VARCHAR(5), n INT);
         INSERT INTO t VALUES ('a', 1), ('A', 2), ('b', 3), ('a', 4)",
    );
    (e, c)
}

#[test]
fn a_literal_in_another_case_is_not_the_group_key() {
    let (_e, c) = setup();
    // `x = 'A'` is not the key `x = 'a'`, and x is not grouped: 1055.
    let err = run(&c, "SELECT x = 'A' FROM t GROUP BY x = 'a'").unwrap_err();
    assert_eq!(err.code, 1055, "{err}");
    // The key itself, in any identifier case, is.
    assert_eq!(
        table(
            &c,
            "SELECT X = 'a', count(*) FROM t GROUP BY x = 'a' ORDER BY 1"
        ),
        "0|2;1|2"
    );
}

#[test]
fn aggregates_with_arguments_differing_in_literal_case_are_two_aggregates() {
    let (_e, c) = setup();
    assert_eq!(
        table(&c, "SELECT sum(x = 'a'), sum(x = 'A'), SUM(X = 'a') FROM t"),
        "2|1|2"
    );
}

#[test]
fn qualified_and_plain_names_are_one_key() {
    let (_e, c) = setup();
    assert_eq!(
        table(
            &c,
            "SELECT t.n + 1, count(*) FROM t GROUP BY n + 1 ORDER BY T.N + 1 LIMIT 2"
        ),
        "2|1;3|1"
    );
    // A run prefix that is a key: `GROUP BY n + 1` covers `n + 1 + 10`.
    assert_eq!(
        table(
            &c,
            "SELECT t.n + 1 + 10 FROM t GROUP BY n + 1 ORDER BY 1 LIMIT 1"
        ),
        "12"
    );
}

#[test]
fn order_by_an_expression_differing_in_literal_case_is_its_own_key() {
    let (_e, c) = setup();
    // ORDER BY `x = 'A'` must not be taken for the select item `x = 'a'`.
    assert_eq!(
        table(&c, "SELECT n, x = 'a' FROM t ORDER BY x = 'A' DESC, n"),
        "2|0;1|1;3|0;4|1"
    );
}
