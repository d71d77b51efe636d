//! The corpus report: a table per file and in total, the top refusal kinds
//! with an example each, every wrong record and every crash.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::runner::{FileRun, Refusal, Tally, WrongKind};

/// Refusal kinds over all files, most frequent first, each with the file
/// of its first example.
pub fn top_refusals(runs: &[FileRun]) -> Vec<(String, Refusal, &Path)> {
    let mut merged: BTreeMap<&str, (Refusal, &Path)> = BTreeMap::new();
    for run in runs {
        for (kind, r) in &run.refusals {
            merged
                .entry(kind)
                .and_modify(|(m, _)| m.count += r.count)
                .or_insert_with(|| (r.clone(), run.path.as_path()));
        }
    }
    let mut v: Vec<_> = merged
        .into_iter()
        .map(|(k, (r, p))| (k.to_string(), r, p))
        .collect();
    v.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(&b.0)));
    v
}

/// The sum of the files' tallies.
pub fn total(runs: &[FileRun]) -> Tally {
    let mut t = Tally::default();
    for r in runs {
        t.add(&r.tally);
    }
    t
}

/// A file's name relative to `root` when under it.
fn name<'a>(p: &'a Path, root: Option<&Path>) -> std::borrow::Cow<'a, str> {
    root.and_then(|r| p.strip_prefix(r).ok())
        .unwrap_or(p)
        .to_string_lossy()
}

fn row(out: &mut String, name: &str, t: &Tally, secs: f64) {
    let _ = writeln!(
        out,
        "{name:<34} {:>7} {:>7} {:>7} {:>7} {:>6.1}% {:>5} {:>7} {:>7} {:>5} {:>5} {:>5} {:>7.1}s",
        t.records,
        t.skipped,
        t.run(),
        t.passed,
        t.pass_percent(),
        t.different,
        t.refused,
        t.timed_out,
        t.wrong,
        t.crashed,
        t.abandoned,
        secs
    );
}

/// The whole report as text: the table, the `top` refusal kinds, up to
/// `show_wrong` wrong records (all are counted), every crash and load error.
pub fn render(runs: &[FileRun], root: Option<&Path>, top: usize, show_wrong: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<34} {:>7} {:>7} {:>7} {:>7} {:>7} {:>5} {:>7} {:>7} {:>5} {:>5} {:>5} {:>8}",
        "file",
        "records",
        "skipped",
        "run",
        "passed",
        "pass",
        "diff",
        "refused",
        "timeout",
        "wrong",
        "crash",
        "aband",
        "time"
    );
    let mut secs = 0.0;
    for r in runs {
        let s = r.elapsed.as_secs_f64();
        secs += s;
        row(&mut out, &name(&r.path, root), &r.tally, s);
    }
    let t = total(runs);
    row(&mut out, "total", &t, secs);
    if let Some(r) = runs.iter().max_by_key(|r| r.slowest) {
        let _ = writeln!(
            out,
            "slowest statement: {}:{} ({} ms)",
            name(&r.path, root),
            r.slowest.1,
            r.slowest.0.as_millis()
        );
    }

    let mut different: BTreeMap<&str, usize> = BTreeMap::new();
    for r in runs {
        for (reason, n) in &r.different {
            *different.entry(reason).or_default() += n;
        }
    }
    if !different.is_empty() {
        let _ = writeln!(
            out,
            "\ndeliberately different ({} records, slt/different.txt):",
            t.different
        );
        for (reason, n) in &different {
            let _ = writeln!(out, "{n:>7}  {reason}");
        }
    }
    for r in runs {
        for s in &r.stale {
            let _ = writeln!(
                out,
                "\nSTALE {}:{}: listed as {} ({}) in slt/different.txt, got {}",
                name(&r.path, root),
                s.entry.line,
                s.entry.code,
                s.entry.reason,
                one_line(&s.got, 200)
            );
        }
    }

    let refusals = top_refusals(runs);
    let _ = writeln!(
        out,
        "\nrefusals by kind ({} kinds, top {}):",
        refusals.len(),
        top.min(refusals.len())
    );
    for (kind, r, path) in refusals.iter().take(top) {
        let _ = writeln!(
            out,
            "{:>7}  {kind}\n         e.g. {}:{}: {}\n         -> {}",
            r.count,
            name(path, root),
            r.line,
            one_line(&r.sql, 120),
            one_line(&r.message, 120)
        );
    }

    if t.wrong > 0 {
        let _ = writeln!(out, "\nWRONG ({}):", t.wrong);
        let mut shown = 0;
        for r in runs {
            for w in &r.wrong {
                if shown == show_wrong {
                    break;
                }
                shown += 1;
                let _ = writeln!(
                    out,
                    "{}:{}: {}",
                    name(&r.path, root),
                    w.line,
                    one_line(&w.sql, 400)
                );
                match &w.kind {
                    WrongKind::ErrorExpected => {
                        let _ = writeln!(out, "    expected an error, got success");
                    }
                    WrongKind::Result { expected, actual } => {
                        let _ = writeln!(out, "    expected: {}", values(expected));
                        let _ = writeln!(out, "    actual:   {}", values(actual));
                    }
                }
            }
        }
        if shown < t.wrong {
            let _ = writeln!(out, "    ({} more)", t.wrong - shown);
        }
    }
    for r in runs {
        for c in &r.crashes {
            let _ = writeln!(
                out,
                "\nCRASH {}:{}: {}\n    panic: {}",
                name(&r.path, root),
                c.line,
                one_line(&c.sql, 400),
                c.message
            );
        }
        if let Some(e) = &r.load_error {
            let _ = writeln!(out, "\nLOAD ERROR {}: {e}", name(&r.path, root));
        }
    }
    let _ = writeln!(
        out,
        "\nslt: {} passed, {} deliberately different, {} refused, {} timed out, {} wrong, {} crashed, {} skipped of {} records ({:.1}% of {} run)",
        t.passed,
        t.different,
        t.refused,
        t.timed_out,
        t.wrong,
        t.crashed,
        t.skipped,
        t.records,
        t.pass_percent(),
        t.run()
    );
    out
}

fn one_line(s: &str, max: usize) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() <= max {
        return s;
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}…")
}

fn values(v: &[String]) -> String {
    const MAX: usize = 24;
    let shown = v.iter().take(MAX).cloned().collect::<Vec<_>>().join(" ");
    if v.len() > MAX {
        format!("{shown} … ({} values)", v.len())
    } else if v.is_empty() {
        "(no rows)".to_string()
    } else {
        shown
    }
}
