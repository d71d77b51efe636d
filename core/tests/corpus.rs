//! The MariaDB-compared correctness corpus (server/tests/python/corpus/*.sql,
//! run against cascade-server and MariaDB by the server suite) run directly
//! on the core engine: the same SQL through every front end. Here each
//! statement must succeed, or fail where the corpus says `-- expect-error`;
//! a `-- known-difference:` statement (an answer cascade refuses where
//! MariaDB gives one) may do either.

mod common;
use common::*;

/// Statements with whether they must fail (`Some(true)`), must succeed
/// (`Some(false)`) or may do either (`None`), and their line.
fn statements(text: &str) -> Vec<(String, Option<bool>, usize)> {
    let mut out = Vec::new();
    let (mut buf, mut expect_error, mut start) = (Vec::new(), Some(false), 0);
    for (n, line) in text.lines().enumerate() {
        let s = line.trim();
        if buf.is_empty() {
            if s == "-- expect-error" {
                expect_error = Some(true);
                continue;
            }
            if s.starts_with("-- known-difference:") {
                expect_error = None;
                continue;
            }
            if s.is_empty() || s.starts_with("--") {
                continue;
            }
            start = n + 1;
        }
        buf.push(line);
        if s.ends_with(';') {
            out.push((buf.join("\n"), expect_error, start));
            buf.clear();
            expect_error = Some(false);
        }
    }
    out
}

#[test]
fn corpus_runs_on_the_core_engine() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/tests/python/corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus files in {}", dir.display());
    let mut ran = 0;
    let mut failures = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read corpus");
        let e = engine();
        let c = conn(&e, "acme", "alice", "member");
        for (sql, expect_error, line) in statements(&text) {
            ran += 1;
            match (run(&c, &sql), expect_error) {
                (Ok(_), Some(false) | None) | (Err(_), Some(true) | None) => {}
                (Ok(r), Some(true)) => failures.push(format!(
                    "{}:{line}: expected an error, got {:?}",
                    f.display(),
                    rows(&r)
                )),
                (Err(err), Some(false)) => failures.push(format!("{}:{line}: {err}", f.display())),
            }
        }
    }
    assert!(ran > 20, "only {ran} statements");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
