//! Context-tree benchmarks against the peers, measured in the same run:
//! tokio-util's `CancellationToken` and `futures`' `AbortHandle`.
//!
//! ```text
//! cargo bench -p cascade --bench contexts        # this file
//! benches/core.sh                                # with wake latency, one table
//! ```
//!
//! After criterion has run, the binary prints one table of medians with the
//! ratio cascade / peer for every measure (and the wake-latency numbers of
//! `benches/wake_latency.rs` when they were measured before), and writes it
//! as Markdown next to criterion's reports (`target/criterion/core.md`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use cascade::{Context, Identity, Level, StdHost};
use criterion::{BatchSize, Criterion};
use futures::future::AbortHandle;
use tokio_util::sync::CancellationToken;

mod support;

/// Descendants of the cancelled context in the cancel benchmarks.
const TREE: usize = 10_000;

fn root() -> Context {
    Context::root(StdHost::shared()).node_id(1).build().unwrap()
}

fn routine(root: &Context) -> Context {
    root.child(Level::Routine)
        .identity(Identity::new("acme", "alice", "member"))
        .connection_id(1)
        .session_id(1)
        .build()
        .unwrap()
}

/// root > routine > request > query, the query returned with its ancestors.
fn query_chain() -> (Vec<Context>, Context) {
    let root = root();
    let conn = routine(&root);
    let req = conn.child(Level::Request).build().unwrap();
    let q = req.child(Level::Query).statement_id(7).build().unwrap();
    (vec![root, conn, req], q)
}

fn is_cancelled(c: &mut Criterion) {
    let mut g = c.benchmark_group("is_cancelled");
    let (_keep, q) = query_chain();
    g.bench_function("cascade", |b| b.iter(|| black_box(&q).is_cancelled()));
    let parent = CancellationToken::new();
    let token = parent.child_token();
    g.bench_function("tokio", |b| b.iter(|| black_box(&token).is_cancelled()));
    let (handle, _reg) = AbortHandle::new_pair();
    g.bench_function("abort_handle", |b| {
        b.iter(|| black_box(&handle).is_aborted())
    });
    g.finish();
}

fn derive_drop(c: &mut Criterion) {
    let mut g = c.benchmark_group("derive_drop");
    let (keep, _q) = query_chain();
    let req = &keep[2];
    let mut n = 0u64;
    g.bench_function("cascade", |b| {
        b.iter(|| {
            n += 1;
            let q = req.child(Level::Query).statement_id(n).build().unwrap();
            drop(black_box(q));
        })
    });
    let identity = Arc::new(Identity::new("acme", "bob", "member"));
    g.bench_function("cascade_routine", |b| {
        b.iter(|| {
            n += 1;
            let r = keep[0]
                .child(Level::Routine)
                .identity(identity.clone())
                .connection_id(n)
                .session_id(n)
                .build()
                .unwrap();
            drop(black_box(r));
        })
    });
    let parent = CancellationToken::new().child_token();
    g.bench_function("tokio", |b| {
        b.iter(|| drop(black_box(parent.child_token())))
    });
    g.finish();
}

/// A cascade tree under a fresh Routine: a chain of 6 descendants, the last
/// with the rest as children, 10,000 descendants in all.
fn cascade_chain_tree() -> (Context, Vec<Context>) {
    let root = root();
    let top = routine(&root);
    let mut nodes = Vec::with_capacity(TREE + 1);
    let req = top.child(Level::Request).build().unwrap();
    let q = req.child(Level::Query).statement_id(1).build().unwrap();
    nodes.push(req);
    nodes.push(q);
    while nodes.len() < 6 {
        let p = nodes
            .last()
            .unwrap()
            .child(Level::Pipeline)
            .build()
            .unwrap();
        nodes.push(p);
    }
    let last = nodes.last().unwrap().clone();
    while nodes.len() < TREE {
        nodes.push(last.child(Level::Pipeline).build().unwrap());
    }
    nodes.push(root);
    (top, nodes)
}

/// A cascade tree: a Query with 10,000 Pipeline children.
fn cascade_flat_tree() -> (Context, Vec<Context>) {
    let (mut keep, q) = query_chain();
    keep.reserve(TREE);
    for _ in 0..TREE {
        keep.push(q.child(Level::Pipeline).build().unwrap());
    }
    (q, keep)
}

fn tokio_chain_tree() -> (CancellationToken, Vec<CancellationToken>) {
    let top = CancellationToken::new();
    let mut nodes: Vec<CancellationToken> = Vec::with_capacity(TREE);
    nodes.push(top.child_token());
    while nodes.len() < 6 {
        let next = nodes.last().unwrap().child_token();
        nodes.push(next);
    }
    let last = nodes.last().unwrap().clone();
    while nodes.len() < TREE {
        nodes.push(last.child_token());
    }
    (top, nodes)
}

fn tokio_flat_tree() -> (CancellationToken, Vec<CancellationToken>) {
    let top = CancellationToken::new();
    let nodes = (0..TREE).map(|_| top.child_token()).collect();
    (top, nodes)
}

fn cancel_tree(c: &mut Criterion) {
    let mut g = c.benchmark_group("cancel_10k");
    g.sample_size(20);
    g.bench_function("cascade_chain", |b| {
        b.iter_batched(
            cascade_chain_tree,
            |(top, nodes)| {
                top.cancel(cascade::Reason::Requested);
                (top, nodes)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("tokio_chain", |b| {
        b.iter_batched(
            tokio_chain_tree,
            |(top, nodes)| {
                top.cancel();
                (top, nodes)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("cascade_flat", |b| {
        b.iter_batched(
            cascade_flat_tree,
            |(top, nodes)| {
                top.cancel(cascade::Reason::Requested);
                (top, nodes)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("tokio_flat", |b| {
        b.iter_batched(
            tokio_flat_tree,
            |(top, nodes)| {
                top.cancel();
                (top, nodes)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// An embedder-defined value.
struct Budget(u64);
/// A type nobody set: a miss.
struct Missing;

fn value_lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("value_lookup");
    let (_keep, q) = query_chain();
    // The Query sets both the statement id and the extension: depth 1 is the
    // Query itself, depth 12 the 11th Pipeline below it.
    let q = q
        .child(Level::Pipeline)
        .value(Budget(1 << 20))
        .build()
        .unwrap();
    let mut chain = vec![q.clone()];
    for _ in 1..12 {
        let next = chain
            .last()
            .unwrap()
            .child(Level::Pipeline)
            .build()
            .unwrap();
        chain.push(next);
    }
    let deep = chain.last().unwrap();
    g.bench_function("statement_id_depth_1", |b| {
        b.iter(|| black_box(&q).values().statement_id())
    });
    g.bench_function("statement_id_depth_12", |b| {
        b.iter(|| black_box(deep).values().statement_id())
    });
    g.bench_function("extension_depth_1", |b| {
        b.iter(|| black_box(&q).values().get::<Budget>().map(|b| b.0))
    });
    g.bench_function("extension_depth_12", |b| {
        b.iter(|| black_box(deep).values().get::<Budget>().map(|b| b.0))
    });
    g.bench_function("extension_miss_depth_12", |b| {
        b.iter(|| black_box(deep).values().get::<Missing>().is_some())
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .output_directory(&support::criterion_dir())
        .configure_from_args()
}

fn main() {
    let mut c = config();
    is_cancelled(&mut c);
    derive_drop(&mut c);
    cancel_tree(&mut c);
    value_lookup(&mut c);
    c.final_summary();
    if support::bench_mode() {
        let ab = interleaved::run(200);
        report::print(&ab);
    }
}

/// The same small measures once more, cascade and its peer in alternating
/// batches (rotating order), so that a busy machine slows both alike. The
/// median over rounds of the time per iteration; more robust to other
/// load than two criterion runs one after the other.
mod interleaved {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::Instant;

    type Measure<'a> = (&'static str, u32, Box<dyn FnMut(u32) + 'a>);

    pub fn run(rounds: usize) -> BTreeMap<&'static str, f64> {
        let (_keep, q) = query_chain();
        let req = _keep[2].clone();
        let shallow = q
            .child(Level::Pipeline)
            .value(Budget(1 << 20))
            .build()
            .unwrap();
        let mut chain = vec![shallow.clone()];
        for _ in 1..12 {
            let next = chain
                .last()
                .unwrap()
                .child(Level::Pipeline)
                .build()
                .unwrap();
            chain.push(next);
        }
        let deep = chain.last().unwrap().clone();
        let token = CancellationToken::new().child_token();
        let (handle, _reg) = AbortHandle::new_pair();
        let mut n = 0u64;
        // Each closure runs its whole batch, so the loop is compiled with
        // the measured code inlined (no indirect call per iteration).
        let mut measures: Vec<Measure<'_>> = vec![
            (
                "is_cancelled/cascade",
                100_000,
                Box::new(|k| {
                    for _ in 0..k {
                        black_box(black_box(&q).is_cancelled());
                    }
                }),
            ),
            (
                "is_cancelled/tokio",
                100_000,
                Box::new(|k| {
                    for _ in 0..k {
                        black_box(black_box(&token).is_cancelled());
                    }
                }),
            ),
            (
                "is_cancelled/abort_handle",
                100_000,
                Box::new(|k| {
                    for _ in 0..k {
                        black_box(black_box(&handle).is_aborted());
                    }
                }),
            ),
            (
                "derive_drop/cascade",
                5_000,
                Box::new(move |k| {
                    for _ in 0..k {
                        n += 1;
                        drop(black_box(
                            req.child(Level::Query).statement_id(n).build().unwrap(),
                        ));
                    }
                }),
            ),
            (
                "derive_drop/tokio",
                5_000,
                Box::new(|k| {
                    for _ in 0..k {
                        drop(black_box(token.child_token()));
                    }
                }),
            ),
            (
                "value_lookup/statement_id_depth_1",
                100_000,
                Box::new(|k| {
                    for _ in 0..k {
                        black_box(black_box(&shallow).values().statement_id());
                    }
                }),
            ),
            (
                "value_lookup/extension_depth_1",
                100_000,
                Box::new(|k| {
                    for _ in 0..k {
                        black_box(black_box(&shallow).values().get::<Budget>().map(|b| b.0));
                    }
                }),
            ),
            (
                "value_lookup/extension_miss_depth_12",
                100_000,
                Box::new(|k| {
                    for _ in 0..k {
                        black_box(black_box(&deep).values().get::<Missing>().is_some());
                    }
                }),
            ),
            (
                "value_lookup/statement_id_depth_12",
                100_000,
                Box::new(|k| {
                    for _ in 0..k {
                        black_box(black_box(&deep).values().statement_id());
                    }
                }),
            ),
            (
                "value_lookup/extension_depth_12",
                100_000,
                Box::new(|k| {
                    for _ in 0..k {
                        black_box(black_box(&deep).values().get::<Budget>().map(|b| b.0));
                    }
                }),
            ),
        ];
        let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); measures.len()];
        for round in 0..rounds {
            for k in 0..measures.len() {
                let i = (round + k) % measures.len();
                let (_, iters, f) = &mut measures[i];
                let t = Instant::now();
                f(*iters);
                samples[i].push(t.elapsed().as_nanos() as f64 / f64::from(*iters));
            }
        }
        let mut out = BTreeMap::new();
        for ((name, _, _), mut s) in measures.into_iter().zip(samples) {
            s.sort_by(f64::total_cmp);
            out.insert(name, s[s.len() / 2]);
        }
        out.extend(cancels(rounds / 5));
        out
    }

    /// Cancel of 10,000 descendants, the four trees built afresh each round
    /// (not timed) and cancelled in rotating order.
    fn cancels(rounds: usize) -> BTreeMap<&'static str, f64> {
        const KINDS: [&str; 4] = [
            "cancel_10k/cascade_chain",
            "cancel_10k/tokio_chain",
            "cancel_10k/cascade_flat",
            "cancel_10k/tokio_flat",
        ];
        let mut samples: [Vec<f64>; 4] = Default::default();
        for round in 0..rounds {
            for k in 0..4 {
                let kind = (round + k) % 4;
                let ns = match kind {
                    0 | 2 => {
                        let (top, nodes) = if kind == 0 {
                            cascade_chain_tree()
                        } else {
                            cascade_flat_tree()
                        };
                        let t = Instant::now();
                        top.cancel(cascade::Reason::Requested);
                        let ns = t.elapsed().as_nanos() as f64;
                        drop((top, nodes));
                        ns
                    }
                    _ => {
                        let (top, nodes) = if kind == 1 {
                            tokio_chain_tree()
                        } else {
                            tokio_flat_tree()
                        };
                        let t = Instant::now();
                        top.cancel();
                        let ns = t.elapsed().as_nanos() as f64;
                        drop((top, nodes));
                        ns
                    }
                };
                samples[kind].push(ns);
            }
        }
        KINDS
            .into_iter()
            .zip(samples)
            .map(|(name, mut s)| {
                s.sort_by(f64::total_cmp);
                (name, s[s.len() / 2])
            })
            .collect()
    }
}

/// The combined table.
mod report {
    use super::support;
    use std::fmt::Write as _;

    fn median_ns(group: &str, id: &str) -> Option<f64> {
        let path = support::criterion_dir()
            .join(group)
            .join(id)
            .join("new/estimates.json");
        let text = std::fs::read_to_string(path).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v["median"]["point_estimate"].as_f64()
    }

    fn wake(kind: &str, stat: &str) -> Option<f64> {
        let text = std::fs::read_to_string(support::wake_results()).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v[kind][stat].as_f64()
    }

    fn time(ns: Option<f64>) -> String {
        match ns {
            None => "–".into(),
            Some(ns) if ns >= 1e6 => format!("{:.2} ms", ns / 1e6),
            Some(ns) if ns >= 1e3 => format!("{:.2} µs", ns / 1e3),
            Some(ns) if ns >= 10.0 => format!("{ns:.1} ns"),
            Some(ns) => format!("{ns:.2} ns"),
        }
    }

    fn ratio(a: Option<f64>, b: Option<f64>) -> String {
        match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
            _ => "–".into(),
        }
    }

    fn verdict(ok: Option<bool>) -> &'static str {
        match ok {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "–",
        }
    }

    struct Row {
        measure: &'static str,
        peer: &'static str,
        cascade: Option<f64>,
        other: Option<f64>,
        /// Interleaved medians (cascade, peer), where measured.
        ab: (Option<f64>, Option<f64>),
        target: &'static str,
        ok: Option<bool>,
    }

    pub fn print(ab: &std::collections::BTreeMap<&'static str, f64>) {
        let m = median_ns;
        let i = |k: &str| ab.get(k).copied();
        let le = |a: Option<f64>, b: Option<f64>, k: f64| Some(a? <= b? * k);
        let row = |measure, peer, cascade, other, ab, target, ok| Row {
            measure,
            peer,
            cascade,
            other,
            ab,
            target,
            ok,
        };
        let mut rows = Vec::new();

        let ab_c = i("is_cancelled/cascade");
        let ab_t = i("is_cancelled/tokio");
        rows.push(row(
            "is_cancelled()",
            "tokio-util",
            m("is_cancelled", "cascade"),
            m("is_cancelled", "tokio"),
            (ab_c, ab_t),
            "≤ tokio / 4",
            le(ab_c, ab_t, 0.25),
        ));
        rows.push(row(
            "is_cancelled()",
            "AbortHandle::is_aborted",
            m("is_cancelled", "cascade"),
            m("is_cancelled", "abort_handle"),
            (ab_c, i("is_cancelled/abort_handle")),
            "(info)",
            None,
        ));
        let ab_c = i("derive_drop/cascade");
        let ab_t = i("derive_drop/tokio");
        rows.push(row(
            "derive Query (statement id) + drop",
            "tokio child_token + drop",
            m("derive_drop", "cascade"),
            m("derive_drop", "tokio"),
            (ab_c, ab_t),
            "≤ tokio",
            le(ab_c, ab_t, 1.0),
        ));
        rows.push(row(
            "derive Routine (identity, conn, session) + drop",
            "tokio child_token + drop",
            m("derive_drop", "cascade_routine"),
            m("derive_drop", "tokio"),
            (None, None),
            "(info)",
            None,
        ));
        for (shape, label) in [
            ("chain", "cancel 10k descendants, chain of 6 + fan-out"),
            ("flat", "cancel 10k descendants, flat"),
        ] {
            let (c, t) = (
                m("cancel_10k", &format!("cascade_{shape}")),
                m("cancel_10k", &format!("tokio_{shape}")),
            );
            let (ac, at) = (
                i(&format!("cancel_10k/cascade_{shape}")),
                i(&format!("cancel_10k/tokio_{shape}")),
            );
            rows.push(row(
                label,
                "tokio-util",
                c,
                t,
                (ac, at),
                "≤ tokio",
                le(ac, at, 1.0),
            ));
        }
        let lookups = [
            ("statement_id_depth_1", "values().statement_id(), depth 1"),
            ("statement_id_depth_12", "values().statement_id(), depth 12"),
            ("extension_depth_1", "values().get::<T>(), depth 1"),
            ("extension_depth_12", "values().get::<T>(), depth 12"),
            (
                "extension_miss_depth_12",
                "values().get::<T>() miss, depth 12",
            ),
        ];
        for (id, label) in lookups {
            let c = m("value_lookup", id);
            let a = i(&format!("value_lookup/{id}"));
            rows.push(row(
                label,
                "–",
                c,
                None,
                (a, None),
                "≤ 2 ns, same at any depth",
                a.or(c).map(|x| x <= 2.0),
            ));
        }
        for stat in ["p50_ns", "p99_ns"] {
            let c = wake("cascade", stat);
            let (t, f) = (wake("tokio", stat), wake("park_unpark", stat));
            let p99 = stat == "p99_ns";
            rows.push(row(
                if p99 {
                    "cancel → wake on another thread, p99"
                } else {
                    "cancel → wake on another thread, median"
                },
                "tokio-util",
                c,
                t,
                (c, t),
                if p99 { "≤ tokio" } else { "(info)" },
                if p99 { le(c, t, 1.0) } else { None },
            ));
            rows.push(row(
                if p99 {
                    "cancel → wake on another thread, p99"
                } else {
                    "cancel → wake on another thread, median"
                },
                "std park/unpark",
                c,
                f,
                (c, f),
                if p99 {
                    "≤ 1.3× park/unpark"
                } else {
                    "(info)"
                },
                if p99 { le(c, f, 1.3) } else { None },
            ));
        }

        let mut out = String::new();
        let _ = writeln!(
            out,
            "| measure | peer | cascade | peer | cascade / peer | cascade, interleaved | peer, interleaved | ratio, interleaved | target | |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---|---|");
        for r in &rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.measure,
                r.peer,
                time(r.cascade),
                time(r.other),
                ratio(r.cascade, r.other),
                time(r.ab.0),
                time(r.ab.1),
                ratio(r.ab.0, r.ab.1),
                r.target,
                verdict(r.ok)
            );
        }
        let bytes = cascade::context::node_size_bytes();
        let _ = writeln!(
            out,
            "| bytes per context node | – | {bytes} B | – | – | – | – | – | ≤ 256 B | {} |",
            verdict(Some(bytes <= 256))
        );
        let _ = writeln!(
            out,
            "\nColumns 3–5: criterion medians (wake rows: the timing loop of \
             `wake_latency.rs`, where both kinds are interleaved already). \
             Columns 6–8: the same closures run again in alternating batches \
             (median of 200 rounds; cancels: 40 rounds of fresh trees), so \
             that other load slows both alike; verdicts use them where \
             present."
        );
        println!("\n{out}");
        let path = support::criterion_dir().join("core.md");
        if std::fs::write(&path, &out).is_ok() {
            println!("(written to {})", path.display());
        }
    }
}
