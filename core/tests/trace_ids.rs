//! W3C trace ids (core/src/trace_context.rs): every span of a statement has
//! a trace id and a span id, the same in the recorder and in `tracing`; a
//! connection starts a trace; a sqlcommenter `traceparent` comment (or
//! `ExecOptions::traceparent`) makes the statement's Query span, and
//! everything under it, join the application's trace as a child of the
//! application's span; a malformed one is ignored, never an error.
//!
//! Its own test binary: `tracing` caches callsite interest process-wide.

mod common;
use common::spans::Collect;

use cascade::trace::SpanRecord;
use cascade::trace_context::TraceParent;
use cascade::{
    Context, Engine, EngineConfig, ExecOptions, Identity, Level, ManualHost, Recorder, Trace,
};
use futures::executor::block_on;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tracing_subscriber::layer::SubscriberExt;

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const APP_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const APP_SPAN: &str = "00f067aa0ba902b7";
const SELECT: &str = "SELECT x * 2 FROM generate_series(1, 3) AS t(x) WHERE x > 1";

fn engine() -> Engine {
    Engine::new(EngineConfig::new(1, Arc::new(ManualHost::new())))
}

fn by_level(t: &Trace, level: Level) -> Vec<&SpanRecord> {
    t.spans.iter().filter(|s| s.level == level).collect()
}

fn one(t: &Trace, level: Level) -> &SpanRecord {
    let v = by_level(t, level);
    assert_eq!(v.len(), 1, "one {level} span in {:?}", t.spans);
    v[0]
}

/// The spans under the Query span (itself included).
fn query_subtree(t: &Trace) -> Vec<&SpanRecord> {
    let q = one(t, Level::Query).id;
    let mut ids = HashSet::from([q]);
    let mut grew = true;
    while grew {
        grew = false;
        for s in &t.spans {
            if s.parent.is_some_and(|p| ids.contains(&p)) && ids.insert(s.id) {
                grew = true;
            }
        }
    }
    t.spans.iter().filter(|s| ids.contains(&s.id)).collect()
}

#[test]
fn every_span_has_w3c_ids_the_same_in_the_recorder_and_in_tracing() {
    let collect = Collect::default();
    let subscriber = tracing_subscriber::registry().with(collect.clone());
    common::with_subscriber(subscriber, || {
        let e = engine();
        let a = e.connect(Identity::new("acme", "alice", "member")).unwrap();
        let b = e.connect(Identity::new("acme", "bob", "member")).unwrap();
        let r1 = block_on(a.execute(SELECT)).unwrap();
        let r2 = block_on(a.execute(SELECT)).unwrap();
        let rb = block_on(b.execute(SELECT)).unwrap();
        let (t1, t2, tb) = (
            e.trace(r1.query_id).unwrap(),
            e.trace(r2.query_id).unwrap(),
            e.trace(rb.query_id).unwrap(),
        );
        // The connection's trace: Routine, Request, Query, Pipeline and
        // Operator spans share one trace id; the Root span is not in it.
        let conn_trace = one(&t1, Level::Routine).trace_id;
        assert_ne!(conn_trace.to_u128(), 0);
        for s in &t1.spans {
            if s.level == Level::Root {
                assert_ne!(s.trace_id, conn_trace);
            } else {
                assert_eq!(
                    s.trace_id, conn_trace,
                    "{} in the connection's trace",
                    s.name
                );
                assert_eq!(s.remote_parent, None);
            }
        }
        assert!(!by_level(&t1, Level::Operator).is_empty());
        assert_eq!(t1.focus_trace_id(), Some(conn_trace));
        // Statements of one connection share its trace; another connection
        // has its own.
        assert_eq!(t2.focus_trace_id(), Some(conn_trace));
        assert_ne!(tb.focus_trace_id(), Some(conn_trace));
        // Span ids are unique.
        let mut ids = HashSet::new();
        for s in t1.spans.iter().chain(&t2.spans).chain(&tb.spans) {
            ids.insert((s.id, s.trace_span_id));
        }
        let span_ids: HashSet<_> = ids.iter().map(|(_, s)| *s).collect();
        assert_eq!(span_ids.len(), ids.len());

        // The same ids on the `tracing` spans (matched by the recorder id).
        let seen = collect.spans();
        let by_rec: HashMap<u64, _> = seen
            .values()
            .filter_map(|s| Some((s.fields.get("span")?.parse::<u64>().ok()?, s)))
            .filter(|(rec, _)| *rec != 0)
            .collect();
        for s in &t1.spans {
            let t = by_rec
                .get(&s.id.0)
                .unwrap_or_else(|| panic!("{} in tracing", s.name));
            assert_eq!(
                t.fields.get("trace_id"),
                Some(&s.trace_id.to_string()),
                "{}",
                s.name
            );
            assert_eq!(
                t.fields.get("span_id"),
                Some(&s.trace_span_id.to_string()),
                "{}",
                s.name
            );
            assert_eq!(t.fields.get("trace_flags").map(String::as_str), Some("1"));
            assert_eq!(t.fields.get("parent_span_id"), None);
        }
        // The JSON tree carries them for the page.
        let json: serde_json::Value = serde_json::from_str(&t1.to_json()).unwrap();
        assert_eq!(json[0]["children"][0]["traceId"], conn_trace.to_string());
        assert_eq!(
            json[0]["children"][0]["spanId"].as_str().map(str::len),
            Some(16)
        );
    });
}

#[test]
fn a_sqlcommenter_traceparent_joins_the_applications_trace() {
    let collect = Collect::default();
    let subscriber = tracing_subscriber::registry().with(collect.clone());
    common::with_subscriber(subscriber, || {
        let e = engine();
        let a = e.connect(Identity::new("acme", "alice", "member")).unwrap();
        let sql = format!(
            "{SELECT} /*controller='index',traceparent='{TP}',tracestate='congo%3Dt61rcWkgMzE'*/"
        );
        let r = block_on(a.execute(&sql)).unwrap();
        assert_eq!(r.rows.len(), 2);
        let t = e.trace(r.query_id).unwrap();
        let q = one(&t, Level::Query);
        assert_eq!(q.trace_id.to_string(), APP_TRACE);
        assert_eq!(
            q.remote_parent.map(|p| p.to_string()).as_deref(),
            Some(APP_SPAN)
        );
        assert_eq!(
            t.focus_trace_id().map(|x| x.to_string()).as_deref(),
            Some(APP_TRACE)
        );
        // Everything under the statement is in the application's trace.
        let under = query_subtree(&t);
        assert!(under.iter().any(|s| s.level == Level::Pipeline));
        assert!(under.iter().any(|s| s.level == Level::Operator));
        for s in &under {
            assert_eq!(s.trace_id.to_string(), APP_TRACE, "{}", s.name);
        }
        // The connection and the request stay in the connection's trace.
        let conn = one(&t, Level::Routine).trace_id;
        assert_ne!(conn.to_string(), APP_TRACE);
        assert_eq!(one(&t, Level::Request).trace_id, conn);

        // In `tracing`: the Query span names its remote parent and carries
        // the tracestate (decoded); its children have the trace id only.
        let query = collect
            .named("select")
            .into_iter()
            .find(|s| s.fields.get("span") == Some(&q.id.0.to_string()))
            .unwrap();
        assert_eq!(
            query.fields.get("trace_id").map(String::as_str),
            Some(APP_TRACE)
        );
        assert_eq!(
            query.fields.get("parent_span_id").map(String::as_str),
            Some(APP_SPAN)
        );
        assert_eq!(
            query.fields.get("tracestate").map(String::as_str),
            Some("congo=t61rcWkgMzE")
        );
        let pipelines = collect.named("pipeline");
        assert!(!pipelines.is_empty());
        for p in pipelines {
            assert_eq!(
                p.fields.get("trace_id").map(String::as_str),
                Some(APP_TRACE)
            );
            assert_eq!(p.fields.get("parent_span_id"), None);
        }

        // The next statement without a comment is back in the connection's
        // trace.
        let r2 = block_on(a.execute(SELECT)).unwrap();
        assert_eq!(e.trace(r2.query_id).unwrap().focus_trace_id(), Some(conn));
    });
}

#[test]
fn each_statement_of_a_request_gets_its_own_comment() {
    // Every test of this binary runs under a subscriber: `tracing` caches
    // callsite interest process-wide, and a test without one could make
    // another's spans disabled.
    let subscriber = tracing_subscriber::registry().with(Collect::default());
    common::with_subscriber(
        subscriber,
        each_statement_of_a_request_gets_its_own_comment_body,
    );
}

fn each_statement_of_a_request_gets_its_own_comment_body() {
    let e = engine();
    let a = e.connect(Identity::new("acme", "alice", "member")).unwrap();
    let other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let r = block_on(a.execute(&format!(
        "SELECT 1 /*traceparent='{TP}'*/; SELECT 2; SELECT 3 /*traceparent='{other}'*/"
    )))
    .unwrap();
    let last = r.query_id;
    let trace_of = |id: u64| e.trace(id).unwrap().focus_trace_id().unwrap().to_string();
    assert_eq!(trace_of(last), "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(trace_of(last - 2), APP_TRACE);
    let conn = one(&e.trace(last).unwrap(), Level::Routine)
        .trace_id
        .to_string();
    assert_eq!(trace_of(last - 1), conn);
}

#[test]
fn a_malformed_traceparent_is_ignored_never_an_error() {
    // Every test of this binary runs under a subscriber: `tracing` caches
    // callsite interest process-wide, and a test without one could make
    // another's spans disabled.
    let subscriber = tracing_subscriber::registry().with(Collect::default());
    common::with_subscriber(
        subscriber,
        a_malformed_traceparent_is_ignored_never_an_error_body,
    );
}

fn a_malformed_traceparent_is_ignored_never_an_error_body() {
    let e = engine();
    let a = e.connect(Identity::new("acme", "alice", "member")).unwrap();
    for bad in [
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "garbage",
    ] {
        let r = block_on(a.execute(&format!("{SELECT} /*traceparent='{bad}'*/"))).unwrap();
        assert_eq!(r.rows.len(), 2, "{bad}");
        let t = e.trace(r.query_id).unwrap();
        let conn = one(&t, Level::Routine).trace_id;
        assert_eq!(
            t.focus_trace_id(),
            Some(conn),
            "{bad}: stays in the connection's trace"
        );
        assert_eq!(one(&t, Level::Query).remote_parent, None);
        assert!(
            one(&t, Level::Request)
                .attrs
                .contains_key("traceparent_error"),
            "{bad}: the request span says why"
        );
    }
}

#[test]
fn an_explicit_traceparent_applies_and_a_comment_takes_precedence() {
    // Every test of this binary runs under a subscriber: `tracing` caches
    // callsite interest process-wide, and a test without one could make
    // another's spans disabled.
    let subscriber = tracing_subscriber::registry().with(Collect::default());
    common::with_subscriber(
        subscriber,
        an_explicit_traceparent_applies_and_a_comment_takes_precedence_body,
    );
}

fn an_explicit_traceparent_applies_and_a_comment_takes_precedence_body() {
    let e = engine();
    let a = e.connect(Identity::new("acme", "alice", "member")).unwrap();
    let other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let tp = Some(TraceParent::parse(other).unwrap());
    let opts = ExecOptions::default();
    let r = block_on(a.execute_traced(SELECT, opts, tp.clone())).unwrap();
    let t = e.trace(r.query_id).unwrap();
    assert_eq!(
        t.focus_trace_id().unwrap().to_string(),
        "0af7651916cd43dd8448eb211c80319c"
    );
    assert_eq!(
        one(&t, Level::Query).remote_parent.unwrap().to_string(),
        "b7ad6b7169203331"
    );
    let r =
        block_on(a.execute_traced(&format!("{SELECT} /*traceparent='{TP}'*/"), opts, tp)).unwrap();
    assert_eq!(
        e.trace(r.query_id)
            .unwrap()
            .focus_trace_id()
            .unwrap()
            .to_string(),
        APP_TRACE
    );
}

#[test]
fn a_contexts_traceparent_names_its_own_span_for_outgoing_calls() {
    // Every test of this binary runs under a subscriber: `tracing` caches
    // callsite interest process-wide, and a test without one could make
    // another's spans disabled.
    let subscriber = tracing_subscriber::registry().with(Collect::default());
    common::with_subscriber(
        subscriber,
        a_contexts_traceparent_names_its_own_span_for_outgoing_calls_body,
    );
}

fn a_contexts_traceparent_names_its_own_span_for_outgoing_calls_body() {
    let host = Arc::new(ManualHost::new());
    let rec = Recorder::new(host.clone(), 100);
    let root = Context::root(host)
        .node_id(1)
        .recorder(rec.clone())
        .build()
        .unwrap();
    let conn = root
        .child(Level::Routine)
        .identity(Identity::new("t", "u", "r"))
        .connection_id(7)
        .session_id(7)
        .build()
        .unwrap();
    let req = conn.child(Level::Request).build().unwrap();
    let tp = TraceParent::parse(TP)
        .unwrap()
        .with_tracestate("congo=t61rcWkgMzE")
        .unwrap();
    let query = req
        .child(Level::Query)
        .statement_id(1)
        .trace_parent(tp)
        .build()
        .unwrap();
    let pipe = query.child(Level::Pipeline).build().unwrap();
    let out = pipe.traceparent().unwrap();
    assert_eq!(out.trace_id.to_string(), APP_TRACE);
    let pipe_rec = rec.get(pipe.span_id().unwrap()).unwrap();
    assert_eq!(
        out.parent_id, pipe_rec.trace_span_id,
        "the callee's parent is this span"
    );
    assert_eq!(out.tracestate.as_deref(), Some("congo=t61rcWkgMzE"));
    assert!(out.sampled());
    // Parsed back on the other side, it is the same header.
    assert_eq!(
        TraceParent::parse(&out.to_string()).unwrap().parent_id,
        out.parent_id
    );
    // The connection's own trace is another one.
    assert_ne!(conn.traceparent().unwrap().trace_id, out.trace_id);
}
