//! A structured SQL generator: turns fuzz bytes into statements of the
//! grammar the engine supports (and a little beyond it, so that the
//! "unsupported" and "unknown column" paths run too).
//!
//! Row counts are bounded (small `generate_series`, a rare big one that the
//! harness's interrupt or watchdog has to stop) so that each input runs in
//! milliseconds. Names refer to the harness's tables `t1 (a, b, c)` and
//! `t2 (a, d, e)`; `$self` / `$other` become connection ids.

use arbitrary::{Result, Unstructured};

use crate::harness::{Interrupt, Schedule, EDGE_STATEMENTS};

/// A generated case: a schedule and the requests (each one or more
/// statements separated by `;`).
#[derive(Debug)]
pub struct Case {
    /// When the run is interrupted.
    pub schedule: Schedule,
    /// The requests, in order.
    pub requests: Vec<String>,
}

/// Builds a case from fuzz bytes.
pub fn case(u: &mut Unstructured<'_>) -> Result<Case> {
    let interrupt = match u.int_in_range(0..=15u8)? {
        0..=4 => Interrupt::None,
        5..=7 => Interrupt::KillQuery,
        8 | 9 => Interrupt::KillConnection,
        10 | 11 => Interrupt::Disconnect,
        12..=14 => Interrupt::DropFuture,
        _ => Interrupt::Shutdown,
    };
    let at_poll = u.int_in_range(0..=300u32)?;
    let timeout_ms = if u.ratio(1, 6)? {
        u.int_in_range(1..=200u32)?
    } else {
        0
    };
    let schedule = Schedule {
        interrupt,
        at_poll,
        step_us: 1000,
        timeout_ms,
    };
    let n = u.int_in_range(1..=6usize)?;
    let mut g = Gen { u, next_alias: 0 };
    let mut requests = Vec::with_capacity(n);
    for _ in 0..n {
        let k = g.u.int_in_range(1..=3usize)?;
        let mut stmts = Vec::with_capacity(k);
        for _ in 0..k {
            stmts.push(g.statement()?);
        }
        requests.push(stmts.join("; "));
    }
    Ok(Case { schedule, requests })
}

/// Statements of the shapes that once exhausted the stack (issue 8): a long
/// operator chain in a SELECT list and in a WHERE clause, a deep nesting,
/// and a wide UNION, with lengths up to a few thousand. The regression test
/// runs these without cargo-fuzz (`core/tests/fuzz_regressions.rs`).
pub fn deep_shapes(u: &mut Unstructured<'_>) -> Result<Vec<String>> {
    let mut g = Gen { u, next_alias: 0 };
    let cols = [Col { sql: "a".into() }, Col { sql: "b".into() }];
    Ok(vec![
        format!("SELECT {}", g.long_chain(&[])?),
        format!("SELECT count(*) FROM t1 WHERE {}", g.long_chain(&cols)?),
        format!("SELECT {}", g.deep_nesting(&[])?),
        format!("UPDATE t1 SET b = b WHERE {}", g.deep_nesting(&cols)?),
        g.wide_union()?,
    ])
}

struct Gen<'a, 'b> {
    u: &'b mut Unstructured<'a>,
    next_alias: u32,
}

/// A column that an expression may refer to.
#[derive(Clone, Debug)]
struct Col {
    /// How to write it (`g0.x`, `a`, …).
    sql: String,
}

const TABLES: &[(&str, &[&str])] = &[("t1", &["a", "b", "c"]), ("t2", &["a", "d", "e"])];

const INT_LITS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "7",
    "10",
    "100",
    "1000",
    "9223372036854775807",
    "-9223372036854775808",
    "-9223372036854775807",
    "4294967296",
    "18446744073709551615",
    "99999999999999999999999",
];
const FLOAT_LITS: &[&str] = &[
    "0.5", "-0.0", "1.5", "2.5", "-2.5", "1e308", "-1e308", "1e-320", "3.14159", "0.0", "1e19",
    "9.3e18", "-9.3e18",
];
const STR_LITS: &[&str] = &[
    "''",
    "'a'",
    "'abc'",
    "'ABC'",
    "'12'",
    "' 3.5 '",
    "'1e400'",
    "'x_y'",
    "'%'",
    "'_'",
    "'a%'",
    "'%b%'",
    "'\\\\'",
    "'a\\\\%'",
    "'\\\\'",
    "'héllo'",
    "'日本語'",
    "'-9223372036854775809'",
    "'nan'",
    "'inf'",
    "'0x10'",
    "'  '",
    "'\\''",
];
const BINOPS: &[&str] = &[
    "+", "-", "*", "/", "DIV", "%", "MOD", "=", "<>", "!=", "<", "<=", ">", ">=", "<=>", "AND",
    "OR", "XOR", "&&", "||",
];
const CAST_TYPES: &[&str] = &[
    "SIGNED",
    "UNSIGNED",
    "SIGNED INTEGER",
    "DOUBLE",
    "CHAR",
    "CHAR(3)",
    "DECIMAL(10,2)",
    "BINARY",
    "INT",
    "BIGINT",
    "FLOAT",
    "REAL",
    "VARCHAR(5)",
    "TEXT",
    "BOOLEAN",
    "DATE",
];
/// Operators of one precedence, for long chains.
const CHAIN_OPS: &[&[&str]] = &[
    &["+", "-"],
    &["AND"],
    &["OR"],
    &["||"],
    &["*", "/", "DIV", "%"],
    &["=", "<", "<>", "<=>"],
    &["XOR"],
    &["AND", "&&"],
];
const AGGS: &[&str] = &["count", "sum", "avg", "min", "max"];

impl Gen<'_, '_> {
    fn pick<'s>(&mut self, xs: &[&'s str]) -> Result<&'s str> {
        Ok(xs[self.u.choose_index(xs.len())?])
    }

    fn alias(&mut self, prefix: &str) -> String {
        self.next_alias += 1;
        format!("{prefix}{}", self.next_alias)
    }

    fn small_int(&mut self) -> Result<i64> {
        Ok(match self.u.int_in_range(0..=9u8)? {
            0 => 0,
            1 => -1,
            2..=6 => self.u.int_in_range(1..=20i64)?,
            7 => self.u.int_in_range(-100..=100i64)?,
            8 => self.u.int_in_range(0..=5000i64)?,
            _ => i64::from(self.u.arbitrary::<i32>()?),
        })
    }

    fn literal(&mut self) -> Result<String> {
        Ok(match self.u.int_in_range(0..=9u8)? {
            0..=2 => self.small_int()?.to_string(),
            3 => self.pick(INT_LITS)?.to_owned(),
            4 => self.pick(FLOAT_LITS)?.to_owned(),
            5 | 6 => self.pick(STR_LITS)?.to_owned(),
            7 => "NULL".to_owned(),
            8 => self.pick(&["TRUE", "FALSE"])?.to_owned(),
            _ => format!("{}.{}", self.small_int()?, self.u.int_in_range(0..=99u8)?),
        })
    }

    /// A scalar expression over `cols`; aggregates when `agg` allows.
    fn expr(&mut self, cols: &[Col], depth: u32, agg: bool) -> Result<String> {
        if depth == 0 || self.u.is_empty() {
            return self.leaf(cols);
        }
        let d = depth - 1;
        Ok(match self.u.int_in_range(0..=26u8)? {
            0..=3 => self.leaf(cols)?,
            24 => self.long_chain(cols)?,
            25 => self.deep_nesting(cols)?,
            4..=7 => {
                let op = self.pick(BINOPS)?;
                format!(
                    "({} {op} {})",
                    self.expr(cols, d, agg)?,
                    self.expr(cols, d, agg)?
                )
            }
            8 => {
                let op = self.pick(&["-", "NOT ", "-", "NOT ", "+", "!", "~"])?;
                format!("{op}({})", self.expr(cols, d, agg)?)
            }
            9 => {
                let not = self.pick(&["", "NOT "])?;
                format!("({} IS {not}NULL)", self.expr(cols, d, agg)?)
            }
            10 => {
                let not = self.pick(&["", "NOT "])?;
                let n = self.u.int_in_range(1..=4usize)?;
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push(self.expr(cols, d.min(1), agg)?);
                }
                format!(
                    "({} {not}IN ({}))",
                    self.expr(cols, d, agg)?,
                    items.join(", ")
                )
            }
            11 => {
                let not = self.pick(&["", "NOT "])?;
                format!(
                    "({} {not}BETWEEN {} AND {})",
                    self.expr(cols, d, agg)?,
                    self.expr(cols, d, agg)?,
                    self.expr(cols, d, agg)?
                )
            }
            12 => {
                let not = self.pick(&["", "NOT "])?;
                let pat = if self.u.ratio(2, 3)? {
                    self.pick(STR_LITS)?.to_owned()
                } else {
                    self.expr(cols, d, agg)?
                };
                format!("({} {not}LIKE {pat})", self.expr(cols, d, agg)?)
            }
            13 => {
                let operand = if self.u.arbitrary()? {
                    format!(" {}", self.expr(cols, d, agg)?)
                } else {
                    String::new()
                };
                let n = self.u.int_in_range(1..=3usize)?;
                let mut s = format!("CASE{operand}");
                for _ in 0..n {
                    s += &format!(
                        " WHEN {} THEN {}",
                        self.expr(cols, d, agg)?,
                        self.expr(cols, d, agg)?
                    );
                }
                if self.u.arbitrary()? {
                    s += &format!(" ELSE {}", self.expr(cols, d, agg)?);
                }
                s + " END"
            }
            14 => {
                let ty = self.pick(CAST_TYPES)?;
                format!("CAST({} AS {ty})", self.expr(cols, d, agg)?)
            }
            15..=19 => self.function(cols, d, agg)?,
            20 if agg => self.aggregate(cols, d)?,
            21 => self
                .pick(&["CONNECTION_ID()", "connection_id()"])?
                .to_owned(),
            22 => {
                // A scalar subquery (probably unsupported: must be an error).
                let (from, inner) = self.from_item(0)?;
                format!(
                    "(SELECT {} FROM {from} LIMIT 1)",
                    self.expr(&inner, 1, false)?
                )
            }
            23 => {
                let secs = self.pick(&["0", "0.001", "0.01", "0.2", "1", "-1", "NULL", "1e9"])?;
                format!("SLEEP({secs})")
            }
            _ => self.leaf(cols)?,
        })
    }

    /// How long a chain or how deep a nesting: mostly short, sometimes a
    /// few hundred, rarely thousands (issue 8: `1 + 1 + …` with 2,000 terms
    /// overflowed the stack; see `core/src/sql/shape.rs`).
    fn length(&mut self) -> Result<usize> {
        Ok(match self.u.int_in_range(0..=9u8)? {
            0..=5 => self.u.int_in_range(2..=12usize)?,
            6..=8 => self.u.int_in_range(13..=400usize)?,
            _ => self.u.int_in_range(401..=5000usize)?,
        })
    }

    /// A left-associative run of one operator (or of operators of one
    /// precedence), as an ORM writes a long filter.
    fn long_chain(&mut self, cols: &[Col]) -> Result<String> {
        let n = self.length()?;
        let ops = *self.u.choose(CHAIN_OPS)?;
        let mut s = self.leaf(cols)?;
        for _ in 1..n {
            let op = self.pick(ops)?;
            // Each term is small, so a long chain stays a few KB.
            let term = if self.u.ratio(1, 8)? {
                format!("({} = {})", self.leaf(cols)?, self.leaf(cols)?)
            } else {
                self.leaf(cols)?
            };
            s.push_str(&format!(" {op} {term}"));
        }
        Ok(format!("({s})"))
    }

    /// Nesting by parentheses, prefix or postfix operators or function
    /// calls: shallow enough to compute, or deeper than the engine allows
    /// (a clean error 1436 / 1064, never a crash).
    fn deep_nesting(&mut self, cols: &[Col]) -> Result<String> {
        let n = self.length()?;
        let inner = self.leaf(cols)?;
        Ok(match self.u.int_in_range(0..=6u8)? {
            0 => format!("{}{inner}{}", "(".repeat(n), ")".repeat(n)),
            1 => format!("({}{inner})", "NOT ".repeat(n)),
            2 => format!("({}{inner})", "- ".repeat(n)),
            3 => format!("({inner}{})", " IS NULL".repeat(n)),
            4 => format!("({inner}{})", " LIKE 'a%'".repeat(n)),
            5 => format!("{}{inner}{}", "abs(".repeat(n), ")".repeat(n)),
            _ => format!("({inner}{})", " IN (1, 2)".repeat(n)),
        })
    }

    /// A wide `UNION [ALL]` of small SELECTs, or SELECTs nested in FROM.
    fn wide_union(&mut self) -> Result<String> {
        let n = self.length()?;
        if self.u.ratio(1, 4)? {
            return Ok(format!(
                "SELECT * FROM {}SELECT 1 AS x{}",
                "(SELECT * FROM ".repeat(n),
                ") AS q".repeat(n)
            ));
        }
        let mut s = format!("SELECT {}", self.literal()?);
        for _ in 1..n {
            let op = if self.u.ratio(1, 10)? {
                "UNION"
            } else {
                "UNION ALL"
            };
            s.push_str(&format!(" {op} SELECT {}", self.literal()?));
        }
        Ok(if self.u.arbitrary()? {
            format!("SELECT count(*), count(DISTINCT x) FROM ({s}) AS u(x)")
        } else {
            s
        })
    }

    fn leaf(&mut self, cols: &[Col]) -> Result<String> {
        if !cols.is_empty() && self.u.ratio(3, 5)? {
            let i = self.u.choose_index(cols.len())?;
            Ok(cols[i].sql.clone())
        } else if self.u.ratio(1, 40)? {
            // An unknown column.
            Ok(self.pick(&["nosuch", "t9.a", "x", "g1.y"])?.to_owned())
        } else {
            self.literal()
        }
    }

    fn function(&mut self, cols: &[Col], d: u32, agg: bool) -> Result<String> {
        let (name, min, max): (&str, usize, usize) = *self.u.choose(&[
            ("abs", 1, 1),
            ("round", 1, 2),
            ("floor", 1, 1),
            ("ceil", 1, 1),
            ("ceiling", 1, 1),
            ("mod", 2, 2),
            ("length", 1, 1),
            ("char_length", 1, 1),
            ("upper", 1, 1),
            ("lower", 1, 1),
            ("concat", 1, 4),
            ("substring", 2, 3),
            ("substr", 2, 3),
            ("coalesce", 1, 4),
            ("ifnull", 2, 2),
            ("nullif", 2, 2),
            ("greatest", 2, 4),
            ("least", 2, 4),
            ("if", 3, 3),
            ("abs", 0, 3),
            ("nosuchfn", 1, 2),
        ])?;
        let n = self.u.int_in_range(min..=max)?;
        let mut args = Vec::with_capacity(n);
        for _ in 0..n {
            args.push(self.expr(cols, d, agg)?);
        }
        if name == "substring" && n >= 2 && self.u.ratio(1, 4)? {
            let mut s = format!("SUBSTRING({} FROM {}", args[0], args[1]);
            if n == 3 {
                s += &format!(" FOR {}", args[2]);
            }
            return Ok(s + ")");
        }
        Ok(format!("{name}({})", args.join(", ")))
    }

    fn aggregate(&mut self, cols: &[Col], d: u32) -> Result<String> {
        Ok(match self.u.int_in_range(0..=5u8)? {
            0 => "count(*)".to_owned(),
            1 => format!("count(DISTINCT {})", self.expr(cols, d.min(1), false)?),
            _ => {
                let f = self.pick(AGGS)?;
                let distinct = if self.u.ratio(1, 6)? { "DISTINCT " } else { "" };
                format!("{f}({distinct}{})", self.expr(cols, d.min(2), false)?)
            }
        })
    }

    /// A FROM item and the columns it provides.
    fn from_item(&mut self, depth: u32) -> Result<(String, Vec<Col>)> {
        let choice = if depth == 0 {
            self.u.int_in_range(0..=1u8)?
        } else {
            self.u.int_in_range(0..=4u8)?
        };
        Ok(match choice {
            0 => {
                let alias = self.alias("g");
                let (lo, hi) = match self.u.int_in_range(0..=19u8)? {
                    19 => (1, 1_000_000_000_000),
                    18 => (i64::MAX - 10, i64::MAX),
                    17 => (i64::MIN, i64::MIN + 10),
                    16 => (self.small_int()?, self.small_int()?),
                    15 => (1, 20_000),
                    _ => (
                        self.u.int_in_range(-5..=5i64)?,
                        self.u.int_in_range(-5..=300i64)?,
                    ),
                };
                let step = match self.u.int_in_range(0..=9u8)? {
                    9 => ", 0".to_owned(),
                    8 => ", -1".to_owned(),
                    7 => format!(", {}", self.small_int()?),
                    6 => ", 9223372036854775807".to_owned(),
                    _ => String::new(),
                };
                let col = if self.u.ratio(1, 8)? { "y" } else { "x" };
                let sql = if self.u.ratio(1, 20)? {
                    format!("generate_series({lo}, {hi}{step}) AS {alias}")
                } else {
                    format!("generate_series({lo}, {hi}{step}) AS {alias}({col})")
                };
                let cols = vec![
                    Col {
                        sql: format!("{alias}.{col}"),
                    },
                    Col {
                        sql: col.to_owned(),
                    },
                ];
                (sql, cols)
            }
            1 | 2 => {
                let (t, tcols) = *self.u.choose(TABLES)?;
                let alias = if self.u.arbitrary()? {
                    self.alias("r")
                } else {
                    t.to_owned()
                };
                let sql = if alias == t {
                    t.to_owned()
                } else {
                    format!("{t} AS {alias}")
                };
                let cols = tcols
                    .iter()
                    .map(|c| Col {
                        sql: format!("{alias}.{c}"),
                    })
                    .collect();
                (sql, cols)
            }
            3 => {
                let alias = self.alias("s");
                let (q, names) = self.select(depth - 1)?;
                let cols = names
                    .iter()
                    .map(|c| Col {
                        sql: format!("{alias}.{c}"),
                    })
                    .collect();
                (format!("({q}) AS {alias}"), cols)
            }
            _ => {
                let (l, mut lc) = self.from_item(depth - 1)?;
                let (r, rc) = self.from_item(depth - 1)?;
                let kind = self.pick(&["JOIN", "LEFT JOIN", "INNER JOIN", "LEFT OUTER JOIN"])?;
                let lk = lc[self.u.choose_index(lc.len())?].sql.clone();
                let rk = rc[self.u.choose_index(rc.len())?].sql.clone();
                let mut on = format!("{lk} = {rk}");
                match self.u.int_in_range(0..=7u8)? {
                    0 => {
                        let lk2 = lc[self.u.choose_index(lc.len())?].sql.clone();
                        let rk2 = rc[self.u.choose_index(rc.len())?].sql.clone();
                        on += &format!(" AND {lk2} = {rk2}");
                    }
                    1 => {
                        let mut both = lc.clone();
                        both.extend(rc.iter().cloned());
                        on += &format!(" AND {}", self.expr(&both, 1, false)?);
                    }
                    2 => on = format!("{lk} < {rk}"),
                    3 => on = format!("({lk} + 1) = {rk}"),
                    _ => {}
                }
                lc.extend(rc);
                (format!("{l} {kind} {r} ON {on}"), lc)
            }
        })
    }

    /// A SELECT and the names of its output columns.
    fn select(&mut self, depth: u32) -> Result<(String, Vec<String>)> {
        let (from, cols) = if self.u.ratio(1, 8)? {
            (None, vec![])
        } else {
            let (f, c) = self.from_item(depth.min(2))?;
            (Some(f), c)
        };
        let group = from.is_some() && self.u.ratio(1, 3)?;
        let aggregate_only = !group && self.u.ratio(1, 6)?;
        let n = self.u.int_in_range(1..=4usize)?;
        let mut items = Vec::new();
        let mut names = Vec::new();
        let mut keys = Vec::new();
        if group {
            let k = self.u.int_in_range(1..=2usize)?;
            for _ in 0..k {
                keys.push(self.expr(&cols, 1, false)?);
            }
        }
        for i in 0..n {
            let name = format!("c{i}");
            let e = if group && i < keys.len() && self.u.ratio(3, 4)? {
                keys[i].clone()
            } else if group || aggregate_only {
                self.aggregate(&cols, 2)?
            } else {
                self.expr(&cols, 3, false)?
            };
            items.push(format!("{e} AS {name}"));
            names.push(name);
        }
        if !group && from.is_some() && self.u.ratio(1, 15)? {
            items = vec!["*".to_owned()];
            names = vec![];
        }
        let distinct = if self.u.ratio(1, 8)? { "DISTINCT " } else { "" };
        let mut q = format!("SELECT {distinct}{}", items.join(", "));
        if let Some(f) = &from {
            q += &format!(" FROM {f}");
            if self.u.ratio(1, 2)? {
                q += &format!(" WHERE {}", self.expr(&cols, 3, false)?);
            }
        }
        if group {
            q += &format!(" GROUP BY {}", keys.join(", "));
            if self.u.ratio(1, 3)? {
                let mut hc: Vec<Col> = names.iter().map(|n| Col { sql: n.clone() }).collect();
                hc.extend(cols.iter().cloned());
                q += &format!(" HAVING {}", self.expr(&hc, 2, true)?);
            }
        }
        let union = depth > 0 && self.u.ratio(1, 6)?;
        if union {
            // UNION ALL with a SELECT of the same width (usually).
            let (mut other, onames) = self.select(depth - 1)?;
            if onames.len() != names.len() && self.u.ratio(3, 4)? {
                let w = names.len().max(1);
                let mut v = Vec::with_capacity(w);
                for _ in 0..w {
                    v.push(self.literal()?);
                }
                other = format!("SELECT {}", v.join(", "));
            }
            if other.contains(" ORDER BY ") || other.contains(" LIMIT ") {
                other = format!("({other})");
            }
            q = format!("{q} UNION ALL {other}");
        }
        if self.u.ratio(1, 3)? {
            let k = self.u.int_in_range(1..=3usize)?;
            let mut ord = Vec::new();
            for _ in 0..k {
                let key = match self.u.int_in_range(0..=3u8)? {
                    0 if !names.is_empty() => names[self.u.choose_index(names.len())?].clone(),
                    1 => self.u.int_in_range(1..=5u8)?.to_string(),
                    2 if !group && !union => self.expr(&cols, 1, false)?,
                    _ => names.first().cloned().unwrap_or_else(|| "1".into()),
                };
                let dir = self.pick(&["", " ASC", " DESC"])?;
                ord.push(format!("{key}{dir}"));
            }
            q += &format!(" ORDER BY {}", ord.join(", "));
        }
        if self.u.ratio(1, 3)? {
            q += &format!(" LIMIT {}", self.u.int_in_range(0..=50u32)?);
            if self.u.ratio(1, 3)? {
                q += &format!(" OFFSET {}", self.u.int_in_range(0..=50u32)?);
            }
        }
        Ok((q, names))
    }

    fn table_cols(&mut self) -> Result<(&'static str, Vec<Col>)> {
        let (t, tcols) = *self.u.choose(TABLES)?;
        let cols = tcols
            .iter()
            .map(|c| Col {
                sql: (*c).to_owned(),
            })
            .collect();
        Ok((t, cols))
    }

    fn statement(&mut self) -> Result<String> {
        Ok(match self.u.int_in_range(0..=32u8)? {
            0..=9 => self.select(2)?.0,
            10 | 11 => {
                let (t, _) = self.table_cols()?;
                let n = self.u.int_in_range(1..=4usize)?;
                let width = if self.u.ratio(1, 10)? { 2 } else { 3 };
                let mut rows = Vec::new();
                for _ in 0..n {
                    let mut v = Vec::new();
                    for _ in 0..width {
                        v.push(self.expr(&[], 2, false)?);
                    }
                    rows.push(format!("({})", v.join(", ")));
                }
                let cols = if width == 2 { " (a, b)" } else { "" };
                format!("INSERT INTO {t}{cols} VALUES {}", rows.join(", "))
            }
            12 => {
                let (t, _) = self.table_cols()?;
                let (q, _) = self.select(1)?;
                format!("INSERT INTO {t} {q}")
            }
            13 | 14 => {
                let (t, cols) = self.table_cols()?;
                let n = self.u.int_in_range(1..=2usize)?;
                let mut sets = Vec::new();
                for _ in 0..n {
                    let c = cols[self.u.choose_index(cols.len())?].sql.clone();
                    sets.push(format!("{c} = {}", self.expr(&cols, 2, false)?));
                }
                let mut s = format!("UPDATE {t} SET {}", sets.join(", "));
                if self.u.ratio(2, 3)? {
                    s += &format!(" WHERE {}", self.expr(&cols, 2, false)?);
                }
                s
            }
            15 => {
                let (t, cols) = self.table_cols()?;
                let mut s = format!("DELETE FROM {t}");
                if self.u.ratio(3, 4)? {
                    s += &format!(" WHERE {}", self.expr(&cols, 2, false)?);
                }
                s
            }
            16 => self
                .pick(&["BEGIN", "START TRANSACTION", "BEGIN WORK"])?
                .to_owned(),
            17 => self.pick(&["COMMIT", "COMMIT WORK"])?.to_owned(),
            18 => self
                .pick(&["ROLLBACK", "ROLLBACK TO SAVEPOINT s"])?
                .to_owned(),
            19 => {
                let v = self.pick(&["0", "1", "ON", "OFF", "2", "-1", "'x'", "NULL"])?;
                format!("SET autocommit = {v}")
            }
            20 => {
                let v = self.pick(&["0", "1", "5", "20", "100", "-5", "'abc'", "1.5", "NULL"])?;
                let which = self.pick(&["", "SESSION ", "@@"])?;
                format!("SET {which}max_execution_time = {v}")
            }
            21 => {
                let v = self.pick(&["1", "1000", "100000", "1000000", "1073741824", "0"])?;
                format!("SET cascade_memory_budget = {v}")
            }
            22 => {
                let scope = self.pick(&["", "QUERY ", "CONNECTION "])?;
                let who = self.pick(&["$self", "$other", "$other", "12345", "0"])?;
                format!("KILL {scope}{who}")
            }
            23 => self
                .pick(&["SHOW PROCESSLIST", "SHOW FULL PROCESSLIST", "SHOW TABLES"])?
                .to_owned(),
            24 => {
                let analyze = self.pick(&["", "ANALYZE "])?;
                format!("EXPLAIN {analyze}{}", self.select(1)?.0)
            }
            25 => {
                let t = self.pick(&["t1", "t2", "t3"])?;
                let ine = self.pick(&["", "IF NOT EXISTS "])?;
                format!("CREATE TABLE {ine}{t} (a INT, b TEXT, c DOUBLE)")
            }
            26 => {
                let t = self.pick(&["t3", "t3", "t3", "t3", "t3", "t2", "nosuch"])?;
                let ie = self.pick(&["", "IF EXISTS "])?;
                format!("DROP TABLE {ie}{t}")
            }
            27 => format!("SELECT {}", self.expr(&[], 4, false)?),
            28 | 30 | 31 => self.pick(EDGE_STATEMENTS)?.to_owned(),
            32 => self.wide_union()?,
            _ => "SELECT CONNECTION_ID()".to_owned(),
        })
    }
}
