//! The tables of the parallel tests: `big` (20,000 rows in 4 inserts, a
//! nullable column `n`) and a star — `fact` (24,000 rows) with the
//! dimensions `dim`, `prod` and `store`.

use super::ok;
use cascade::Connection;

/// Creates the tables on `c`'s database.
pub fn star_tables(c: &Connection) {
    ok(c, "CREATE TABLE big (x INT, v INT, s VARCHAR(20), n INT)");
    for part in 0..4 {
        let rows: Vec<String> = (0..5000)
            .map(|i| {
                let x = part * 5000 + i;
                let n = if x % 6 == 0 {
                    "NULL".to_string()
                } else {
                    (x % 1000).to_string()
                };
                format!("({x}, {}, 's{}', {n})", x * 7 % 1001, x % 23)
            })
            .collect();
        ok(c, &format!("INSERT INTO big VALUES {}", rows.join(", ")));
    }
    ok(
        c,
        "CREATE TABLE fact (id INT, c_id INT, p_id INT, s_id INT, amount INT)",
    );
    for part in 0..4 {
        let rows: Vec<String> = (0..6000)
            .map(|i| {
                let x = part * 6000 + i;
                format!(
                    "({x}, {}, {}, {}, {})",
                    x * 7 % 541,
                    x * 13 % 199 + 1,
                    x % 19 + 1,
                    x % 1000
                )
            })
            .collect();
        ok(c, &format!("INSERT INTO fact VALUES {}", rows.join(", ")));
    }
    let dims: Vec<String> = (1..=500).map(|i| format!("({i}, {})", i % 5)).collect();
    ok(c, "CREATE TABLE dim (c_id INT, region INT)");
    ok(c, &format!("INSERT INTO dim VALUES {}", dims.join(", ")));
    let prods: Vec<String> = (1..=200).map(|i| format!("({i}, {})", i % 10)).collect();
    ok(c, "CREATE TABLE prod (p_id INT, cat INT)");
    ok(c, &format!("INSERT INTO prod VALUES {}", prods.join(", ")));
    let stores: Vec<String> = (1..=20).map(|i| format!("({i}, {})", i % 4)).collect();
    ok(c, "CREATE TABLE store (s_id INT, state INT)");
    ok(
        c,
        &format!("INSERT INTO store VALUES {}", stores.join(", ")),
    );
}
