//! SQL correctness: a table-driven suite of queries with expected results,
//! including NULL semantics and MySQL-specific behaviour.

mod common;
use common::*;

const SETUP: &str = "
CREATE TABLE emp (id INT NOT NULL, name VARCHAR(20), dept VARCHAR(10), salary DOUBLE, boss INT);
INSERT INTO emp VALUES
 (1, 'ada', 'eng', 120.5, NULL),
 (2, 'bob', 'eng', 100, 1),
 (3, 'cy', 'ops', 90, 1),
 (4, 'dee', 'ops', NULL, 3),
 (5, 'eve', NULL, 70, 3);
CREATE TABLE dept (name VARCHAR(10), floor INT);
INSERT INTO dept VALUES ('eng', 3), ('ops', 1), ('hr', 2);
";

/// (query, expected rows; cells joined by '|', rows by ';')
const CASES: &[(&str, &str)] = &[
    // Expressions and MySQL arithmetic
    // `7 / 2` and `2.5 * 2` are DECIMALs, as in MySQL.
    ("SELECT 1 + 2 * 3, 7 / 2, 7 DIV 2, -7 % 3, 2.5 * 2", "7|3.5000|3|-1|5.0"),
    ("SELECT 1 / 0, 5 % 0, NULL + 1", "NULL|NULL|NULL"),
    ("SELECT 1 = 1, 1 < 2, 'a' < 'b', 2 <> 2, 1 <=> NULL, NULL <=> NULL", "1|1|1|0|0|1"),
    ("SELECT NULL = NULL, NULL AND 0, NULL AND 1, NULL OR 1, NULL OR 0, NOT NULL", "NULL|0|NULL|1|NULL|NULL"),
    ("SELECT TRUE, FALSE, 1 XOR 1, 1 XOR 0", "1|0|0|1"),
    ("SELECT 3 IN (1, 2, 3), 4 IN (1, 2), 4 IN (1, NULL), NULL IN (1), 4 NOT IN (1, 2)", "1|0|NULL|NULL|1"),
    ("SELECT 5 BETWEEN 1 AND 10, 5 NOT BETWEEN 1 AND 4, NULL BETWEEN 1 AND 2", "1|1|NULL"),
    ("SELECT 'hello' LIKE 'h%', 'hello' LIKE '_ello', 'hello' NOT LIKE '%z%', NULL LIKE 'a'", "1|1|1|NULL"),
    ("SELECT CASE WHEN 1 > 2 THEN 'a' WHEN 2 > 1 THEN 'b' ELSE 'c' END, CASE 3 WHEN 1 THEN 'x' ELSE 'y' END, CASE WHEN NULL THEN 1 END", "b|y|NULL"),
    ("SELECT CAST('42' AS SIGNED), CAST(3.7 AS SIGNED), CAST(12 AS CHAR), CAST('1.5' AS DOUBLE)", "42|4|12|1.5"),
    ("SELECT abs(-3), round(2.567, 2), round(-2.5), floor(2.7), ceil(2.1), mod(10, 3)", "3|2.57|-3|2|3|1"),
    ("SELECT length('héllo'), char_length('héllo'), upper('abc'), lower('ABC')", "6|5|ABC|abc"),
    ("SELECT concat('a', 1, 'b'), concat('a', NULL), substring('hello', 2, 3), substring('hello', -3), substr('hello', 2)", "a1b|NULL|ell|llo|ello"),
    ("SELECT coalesce(NULL, NULL, 3), ifnull(NULL, 'x'), ifnull(1, 2), nullif(1, 1), nullif(1, 2)", "3|x|1|NULL|1"),
    ("SELECT greatest(1, 5, 3), least(4, 2, 8), greatest(1, NULL), if(1 > 0, 'y', 'n')", "5|2|NULL|y"),
    ("SELECT '10' + 5, 'abc' = 0, '3x' * 2", "15|1|6"),
    // Single-table queries
    ("SELECT name FROM emp WHERE salary > 95 ORDER BY name", "ada;bob"),
    ("SELECT name FROM emp WHERE salary IS NULL", "dee"),
    ("SELECT name FROM emp WHERE dept IS NOT NULL AND boss = 3", "dee"),
    ("SELECT name, salary FROM emp ORDER BY salary", "dee|NULL;eve|70;cy|90;bob|100;ada|120.5"),
    ("SELECT name, salary FROM emp ORDER BY salary DESC", "ada|120.5;bob|100;cy|90;eve|70;dee|NULL"),
    ("SELECT name FROM emp ORDER BY dept DESC, name LIMIT 3", "cy;dee;ada"),
    ("SELECT name FROM emp ORDER BY id LIMIT 2 OFFSET 1", "bob;cy"),
    ("SELECT name FROM emp ORDER BY id LIMIT 3, 1", "dee"),
    ("SELECT id * 10 AS t FROM emp ORDER BY t DESC LIMIT 1", "50"),
    ("SELECT name FROM emp ORDER BY 1 LIMIT 1", "ada"),
    ("SELECT e.name FROM emp AS e WHERE e.id = 2", "bob"),
    ("SELECT * FROM dept ORDER BY floor", "ops|1;hr|2;eng|3"),
    ("SELECT DISTINCT dept FROM emp ORDER BY dept", "NULL;eng;ops"),
    // Aggregates and NULLs
    ("SELECT count(*), count(salary), count(dept), count(DISTINCT dept) FROM emp", "5|4|4|2"),
    ("SELECT sum(salary), avg(salary), min(salary), max(salary) FROM emp", "380.5|95.125|70|120.5"),
    ("SELECT sum(id), min(name), max(name) FROM emp", "15|ada|eve"),
    ("SELECT count(*), sum(salary), max(name) FROM emp WHERE id > 100", "0|NULL|NULL"),
    ("SELECT dept, count(*), sum(salary) FROM emp GROUP BY dept ORDER BY dept", "NULL|1|70;eng|2|220.5;ops|2|90"),
    ("SELECT dept, count(*) AS n FROM emp GROUP BY dept HAVING n > 1 ORDER BY dept", "eng|2;ops|2"),
    ("SELECT dept, avg(salary) FROM emp GROUP BY dept HAVING avg(salary) > 80 ORDER BY 2 DESC", "eng|110.25;ops|90"),
    ("SELECT dept FROM emp GROUP BY dept ORDER BY count(*) DESC, dept LIMIT 1", "eng"),
    ("SELECT boss, count(*) FROM emp GROUP BY 1 ORDER BY 1", "NULL|1;1|2;3|2"),
    ("SELECT count(*) FROM emp GROUP BY dept ORDER BY 1", "1;2;2"),
    ("SELECT id % 2 AS odd, sum(id) FROM emp GROUP BY odd ORDER BY odd", "0|6;1|9"),
    ("SELECT count(DISTINCT boss), sum(DISTINCT boss) FROM emp", "2|4"),
    // generate_series
    ("SELECT count(*), sum(x) FROM generate_series(1, 1000) AS t(x) WHERE x % 7 = 0", "142|71071"),
    ("SELECT * FROM generate_series(10, 1, -3)", "10;7;4;1"),
    ("SELECT count(*) FROM generate_series(5, 1)", "0"),
    ("SELECT x, x * x FROM generate_series(1, 3) AS g(x) ORDER BY x DESC", "3|9;2|4;1|1"),
    // Joins
    ("SELECT e.name, d.floor FROM emp e JOIN dept d ON e.dept = d.name ORDER BY e.id", "ada|3;bob|3;cy|1;dee|1"),
    ("SELECT e.name, d.floor FROM emp e LEFT JOIN dept d ON e.dept = d.name ORDER BY e.id", "ada|3;bob|3;cy|1;dee|1;eve|NULL"),
    ("SELECT d.name, count(e.id) FROM dept d LEFT JOIN emp e ON e.dept = d.name GROUP BY d.name ORDER BY d.name", "eng|2;hr|0;ops|2"),
    ("SELECT e.name, b.name FROM emp e JOIN emp b ON e.boss = b.id WHERE b.name = 'cy' ORDER BY e.name", "dee|cy;eve|cy"),
    ("SELECT e.name FROM emp e LEFT JOIN dept d ON e.dept = d.name AND d.floor > 2 WHERE d.name IS NULL ORDER BY e.name", "cy;dee;eve"),
    ("SELECT count(*) FROM emp, dept", "15"),
    ("SELECT count(*) FROM emp e CROSS JOIN dept d WHERE d.floor < e.id", "9"),
    ("SELECT a.x, b.y FROM generate_series(1, 3) a(x) JOIN generate_series(2, 4) b(y) ON a.x = b.y ORDER BY 1", "2|2;3|3"),
    ("SELECT e.name, d.name FROM emp e JOIN dept d USING (name)", ""),
    // Subqueries in FROM, UNION ALL, SELECT without FROM
    ("SELECT t.n FROM (SELECT name AS n, salary FROM emp WHERE salary > 80) AS t ORDER BY t.salary", "cy;bob;ada"),
    ("SELECT max(c) FROM (SELECT dept, count(*) AS c FROM emp GROUP BY dept) AS t", "2"),
    ("SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 1", "1;2;1"),
    ("SELECT 1 AS a UNION ALL SELECT 2.5 ORDER BY a DESC", "2.5;1"),
    ("SELECT 1 UNION SELECT 1 UNION SELECT 2 ORDER BY 1", "1;2"),
    ("SELECT name FROM emp WHERE id = 1 UNION ALL SELECT name FROM dept WHERE floor = 2", "ada;hr"),
    ("SELECT 'x' AS s, NULL AS n", "x|NULL"),
    ("VALUES (1, 'a'), (2, 'b')", "1|a;2|b"),
];

#[test]
fn table_driven_queries() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    ok(&c, SETUP);
    let mut failures = Vec::new();
    for (sql, expected) in CASES {
        match run(&c, sql) {
            Ok(r) => {
                let got = rows(&r)
                    .iter()
                    .map(|row| row.join("|"))
                    .collect::<Vec<_>>()
                    .join(";");
                if got != *expected {
                    failures.push(format!(
                        "{sql}\n   expected: {expected}\n   got:      {got}"
                    ));
                }
            }
            Err(err) => failures.push(format!("{sql}\n   error: {err}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn column_names_and_types() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    ok(&c, SETUP);
    let r = ok(
        &c,
        "SELECT id, name AS n, salary * 2, count(*) AS n FROM emp GROUP BY id, name, salary",
    );
    let names: Vec<_> = r.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "n", "salary * 2", "n"]);
    let types: Vec<_> = r.columns.iter().map(|c| c.ty).collect();
    use cascade::DataType::*;
    assert_eq!(types, [Int, Text, Float, Int]);
}

#[test]
fn dml_and_transactions() {
    let e = engine();
    let a = conn(&e, "acme", "alice", "member");
    let b = conn(&e, "acme", "bob", "member");
    ok(&a, SETUP);
    assert_eq!(
        ok(&a, "UPDATE emp SET salary = salary + 1 WHERE dept = 'eng'").rows_affected,
        2
    );
    assert_eq!(
        cell(&a, "SELECT sum(salary) FROM emp WHERE dept = 'eng'"),
        "222.5"
    );
    // Affected rows are the rows changed (MySQL), not the rows matched.
    assert_eq!(
        ok(
            &a,
            "UPDATE emp SET dept = 'eng' WHERE dept = 'eng' OR id = 3"
        )
        .rows_affected,
        1
    );
    ok(&a, "UPDATE emp SET dept = 'ops' WHERE id = 3");
    assert_eq!(
        ok(&a, "DELETE FROM emp WHERE salary IS NULL").rows_affected,
        1
    );
    assert_eq!(cell(&b, "SELECT count(*) FROM emp"), "4");
    ok(&a, "INSERT INTO emp (id, name) VALUES (9, 'zed')");
    assert_eq!(
        rows(&ok(&a, "SELECT dept, salary FROM emp WHERE id = 9")),
        vec![vec!["NULL", "NULL"]]
    );
    ok(
        &a,
        "INSERT INTO dept SELECT concat(name, '2'), floor + 10 FROM dept",
    );
    assert_eq!(cell(&a, "SELECT count(*) FROM dept"), "6");
    // Snapshot isolation and first-committer-wins.
    ok(&a, "BEGIN");
    ok(&b, "BEGIN");
    assert_eq!(cell(&b, "SELECT count(*) FROM emp"), "5");
    ok(&a, "INSERT INTO emp (id) VALUES (10)");
    ok(&b, "INSERT INTO emp (id) VALUES (11)");
    ok(&a, "COMMIT");
    assert_eq!(
        cell(&b, "SELECT count(*) FROM emp WHERE id >= 10"),
        "1",
        "b still sees its snapshot + own write"
    );
    let err = run(&b, "COMMIT").unwrap_err();
    assert_eq!(err.code, 1213, "{err}");
    assert_eq!(
        cell(&b, "SELECT count(*) FROM emp WHERE id >= 10"),
        "1",
        "a's commit survives"
    );
    // A failing statement inside a transaction rolls back only itself.
    ok(&a, "BEGIN");
    ok(&a, "INSERT INTO emp (id) VALUES (20)");
    assert!(run(&a, "INSERT INTO emp (id) VALUES (NULL)").is_err());
    ok(&a, "COMMIT");
    assert_eq!(cell(&b, "SELECT count(*) FROM emp WHERE id = 20"), "1");
    // autocommit = 0 keeps a transaction open until COMMIT.
    ok(&a, "SET autocommit = 0");
    ok(&a, "DELETE FROM emp");
    assert_eq!(cell(&b, "SELECT count(*) FROM emp"), "7");
    ok(&a, "ROLLBACK");
    ok(&a, "SET autocommit = 1");
    assert_eq!(cell(&a, "SELECT count(*) FROM emp"), "7");
    // DDL.
    assert_eq!(
        rows(&ok(&a, "SHOW TABLES")),
        vec![vec!["dept"], vec!["emp"]]
    );
    ok(&a, "DROP TABLE IF EXISTS nope");
    ok(&a, "CREATE TABLE IF NOT EXISTS dept (x INT)");
    ok(&a, "DROP TABLE dept");
    assert_eq!(run(&a, "SELECT * FROM dept").unwrap_err().code, 1146);
}

#[test]
fn explain_and_explain_analyze() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    let plan = rows(&ok(&c, "EXPLAIN SELECT x % 10 AS k, count(*) FROM generate_series(1, 100) AS t(x) GROUP BY k ORDER BY k"));
    let text: Vec<String> = plan.into_iter().map(|r| r.join("")).collect();
    assert!(text[0].contains("Sort"), "{text:?}");
    assert!(text.iter().any(|l| l.contains("HashAggregate")));
    assert!(
        !text.iter().any(|l| l.contains("rows=")),
        "plain EXPLAIN does not run"
    );
    // The serial plan (its parallel shape: tests/parallel.rs).
    ok(&c, "SET cascade_threads = 1");
    let r = ok(&c, "EXPLAIN ANALYZE SELECT x % 10 AS k, count(*) FROM generate_series(1, 10000) AS t(x) GROUP BY k");
    let text: Vec<String> = rows(&r).into_iter().map(|r| r.join("")).collect();
    let scan = text.iter().find(|l| l.contains("GenerateSeries")).unwrap();
    assert!(scan.contains("rows=10.00 K"), "{scan}");
    assert!(
        text.iter()
            .any(|l| l.contains("HashAggregate") && l.contains("rows=10 ")),
        "{text:?}"
    );
    // The same numbers are in the trace.
    let trace = e.trace(r.query_id).unwrap();
    let span = trace
        .spans
        .iter()
        .find(|s| s.name == "GenerateSeries")
        .unwrap();
    assert_eq!(
        span.attrs.get("rows"),
        Some(&cascade::trace::AttrValue::Int(10_000))
    );
}

#[test]
fn connection_id_and_sleep() {
    let e = engine();
    let c = conn(&e, "acme", "alice", "member");
    assert_eq!(cell(&c, "SELECT connection_id()"), c.id().to_string());
    ok(&c, "SET max_execution_time = 1500");
    assert_eq!(
        rows(&ok(&c, "SELECT @@version_comment, @@autocommit, @@session.max_execution_time, user(), database()")),
        vec![vec!["cascade", "1", "1500", "alice@acme", "cascade"]]
    );
    assert_eq!(run(&c, "SELECT @@nope").unwrap_err().code, 1193);
    assert_eq!(
        rows(&ok(&c, "SHOW DATABASES")),
        vec![vec!["cascade"], vec!["information_schema"]]
    );
    let r = ok(&c, "SELECT sleep(0.05)");
    assert!(r.elapsed >= std::time::Duration::from_millis(50));
}
