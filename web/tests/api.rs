//! The JS API as JS sees it: every call goes through the exported classes
//! with JS values in and out, and runs under Node, in a browser page and in
//! a dedicated worker (scripts/test.d/40-web.sh picks the mode).
#![cfg(target_arch = "wasm32")]

use cascade_web::{set_devtools_timings, Connection, Engine};
use js_sys::{Array, Function, Promise, Reflect, JSON};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

/// A CPU-bound statement that runs for minutes unless stopped.
const HEAVY: &str = "SELECT count(*), sum(n % 7) FROM generate_series(1, 100000000000) AS g(n)";

fn js(json: &str) -> JsValue {
    JSON::parse(json).expect("test JSON")
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(key)).expect("property read")
}

fn num(v: &JsValue, key: &str) -> f64 {
    get(v, key)
        .as_f64()
        .unwrap_or_else(|| panic!("{key} should be a number, got {:?}", get(v, key)))
}

fn string(v: &JsValue, key: &str) -> String {
    get(v, key)
        .as_string()
        .unwrap_or_else(|| panic!("{key} should be a string, got {:?}", get(v, key)))
}

fn now_ms() -> f64 {
    let perf = get(&js_sys::global(), "performance");
    let now: Function = get(&perf, "now").unchecked_into();
    now.call0(&perf).unwrap().as_f64().unwrap()
}

/// Waits on the event loop (a macrotask timer), so it only completes if a
/// running query lets the loop turn.
async fn sleep_ms(ms: f64) {
    let set_timeout: Function = get(&js_sys::global(), "setTimeout").unchecked_into();
    let p = Promise::new(&mut |resolve, _| {
        set_timeout
            .call2(&JsValue::UNDEFINED, &resolve, &ms.into())
            .unwrap();
    });
    JsFuture::from(p).await.unwrap();
}

async fn ok(p: Promise) -> JsValue {
    match JsFuture::from(p).await {
        Ok(v) => v,
        Err(e) => panic!("expected success, got {:?}", get(&e, "message")),
    }
}

async fn err(p: Promise) -> JsValue {
    let e = JsFuture::from(p)
        .await
        .expect_err("expected the promise to reject");
    assert!(e.is_instance_of::<js_sys::Error>(), "rejects with an Error");
    e
}

fn engine() -> Engine {
    Engine::new(js(r#"{ "nodeId": 7 }"#)).expect("engine")
}

fn connect(e: &Engine, tenant: &str, user: &str, role: &str) -> Connection {
    e.connect(js(&format!(
        r#"{{ "tenant": "{tenant}", "user": "{user}", "role": "{role}" }}"#
    )))
    .expect("connect")
}

async fn query(c: &Connection, sql: &str) -> JsValue {
    ok(c.query(sql.into(), JsValue::UNDEFINED)).await
}

fn rows(result: &JsValue) -> Vec<Vec<JsValue>> {
    Array::from(&get(result, "rows"))
        .iter()
        .map(|r| Array::from(&r).to_vec())
        .collect()
}

#[wasm_bindgen_test]
async fn results_carry_columns_rows_and_timing() {
    let e = engine();
    let c = connect(&e, "acme", "alice", "member");
    query(&c, "CREATE TABLE t (id BIGINT, name VARCHAR, score DOUBLE)").await;
    let ins = query(
        &c,
        "INSERT INTO t VALUES (1, 'a', 1.5), (2, 'b', NULL), (3, 'c', 2.5)",
    )
    .await;
    assert_eq!(num(&ins, "rowsAffected"), 3.0);
    let r = query(&c, "SELECT id, name, score FROM t ORDER BY id").await;
    let cols = Array::from(&get(&r, "columns"));
    let names: Vec<String> = cols.iter().map(|c| string(&c, "name")).collect();
    let types: Vec<String> = cols.iter().map(|c| string(&c, "type")).collect();
    assert_eq!(names, ["id", "name", "score"]);
    assert_eq!(types, ["BIGINT", "VARCHAR", "DOUBLE"]);
    let got = rows(&r);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0][0].as_f64(), Some(1.0));
    assert_eq!(got[1][1].as_string().as_deref(), Some("b"));
    assert!(got[1][2].is_null(), "NULL is null");
    assert_eq!(got[2][2].as_f64(), Some(2.5));
    assert!(num(&r, "queryId") > 0.0);
    assert!(num(&r, "elapsedMs") >= 0.0);
    let big = query(&c, "SELECT 9007199254740993").await;
    assert!(
        rows(&big)[0][0].is_bigint(),
        "integers beyond 2^53 stay exact as BigInt"
    );
    ok(c.close()).await;
}

#[wasm_bindgen_test]
async fn dates_and_decimals_arrive_as_mysql_text() {
    let e = engine();
    let c = connect(&e, "acme", "alice", "member");
    let r = query(
        &c,
        "SELECT DATE '2024-01-05' + INTERVAL 1 MONTH, TIMESTAMP '2024-01-05 10:20:30', TIME '-01:30:00', 1.50 * 2, 7 / 2, YEAR(NOW()) > 2000",
    )
    .await;
    let cols = Array::from(&get(&r, "columns"));
    let types: Vec<String> = cols.iter().map(|c| string(&c, "type")).collect();
    assert_eq!(
        types,
        ["DATE", "DATETIME", "TIME", "DECIMAL", "DECIMAL", "BIGINT"]
    );
    let got = rows(&r);
    let text: Vec<Option<String>> = got[0][..5].iter().map(JsValue::as_string).collect();
    assert_eq!(
        text,
        [
            Some("2024-02-05".to_string()),
            Some("2024-01-05 10:20:30".to_string()),
            Some("-01:30:00".to_string()),
            Some("3.00".to_string()),
            Some("3.5000".to_string()),
        ]
    );
    // NOW() reads the page's wall clock (Date.now()).
    assert_eq!(got[0][5].as_f64(), Some(1.0));
    ok(c.close()).await;
}

#[wasm_bindgen_test]
async fn errors_have_code_sqlstate_kind_and_query_id() {
    let e = engine();
    let c = connect(&e, "acme", "alice", "member");
    let syntax = err(c.query("SELEC 1".into(), JsValue::UNDEFINED)).await;
    assert_eq!(num(&syntax, "code"), 1064.0);
    assert_eq!(string(&syntax, "sqlstate"), "42000");
    assert_eq!(string(&syntax, "kind"), "error");
    assert!(get(&syntax, "cause").is_null());
    assert!(string(&syntax, "message").contains("syntax"));
    let missing = err(c.query("SELECT * FROM nowhere".into(), JsValue::UNDEFINED)).await;
    assert_eq!(num(&missing, "code"), 1146.0);
    assert_eq!(string(&missing, "sqlstate"), "42S02");
    assert!(string(&missing, "message").contains("nowhere"));
}

#[wasm_bindgen_test]
async fn a_second_connection_kills_a_running_query_on_the_same_thread() {
    let e = engine();
    let alice = connect(&e, "acme", "alice", "member");
    let admin = connect(&e, "acme", "root", "admin");
    // JsFuture attaches its handlers now, so the rejection is never
    // unhandled. The timeout bounds the test: were the yield a microtask,
    // no timer would fire, the query would end by its deadline (checked on
    // the clock) with 3024, and the asserts below would fail instead of the
    // test hanging.
    let running = JsFuture::from(alice.query(HEAVY.into(), js(r#"{ "timeoutMs": 20000 }"#)));
    // This timer only fires if the query yields to the event loop.
    sleep_ms(150.0).await;
    let procs = e
        .processes(js(
            r#"{ "tenant": "acme", "user": "root", "role": "admin" }"#,
        ))
        .unwrap();
    let row = Array::from(&procs)
        .iter()
        .find(|p| num(p, "id") == alice.id())
        .expect("alice's connection is listed");
    assert_eq!(string(&row, "command"), "Query");
    assert!(
        num(&row, "rowsExamined") > 0.0,
        "progress is visible mid-query"
    );

    let killed_at = now_ms();
    query(&admin, &format!("KILL QUERY {}", alice.id())).await;
    let error = running.await.expect_err("the killed query rejects");
    let latency = now_ms() - killed_at;
    assert!(
        error.is_instance_of::<js_sys::Error>(),
        "the killed query rejects"
    );
    assert_eq!(num(&error, "code"), 1317.0);
    assert_eq!(string(&error, "sqlstate"), "70100");
    assert_eq!(string(&error, "kind"), "canceled");
    let cause = get(&error, "cause");
    assert_eq!(string(&cause, "what"), "kill_query");
    assert_eq!(num(&cause, "who"), admin.id());
    assert_eq!(num(&cause, "byConnection"), admin.id());
    assert_eq!(string(&cause, "byUser"), "root");
    assert_eq!(string(&cause, "level"), "Query");
    assert!(string(&error, "message").contains("KILL QUERY"));
    assert!(latency < 1000.0, "kill observed in {latency} ms");

    // The killed statement's trace carries the status and cause.
    let trace = e.trace(get(&error, "queryId")).unwrap();
    let spans = Array::from(&get(&trace, "spans"));
    let query_span = spans
        .iter()
        .find(|s| string(s, "level") == "Query")
        .expect("a Query span");
    let status = get(&query_span, "status");
    assert_eq!(string(&status, "code"), "canceled");
    assert!(string(&status, "message").contains("KILL QUERY"));

    // The connection survives KILL QUERY.
    let r = query(&alice, "SELECT 1").await;
    assert_eq!(rows(&r).len(), 1);
}

#[wasm_bindgen_test]
async fn a_timeout_fires_with_its_cause() {
    let e = engine();
    let c = connect(&e, "acme", "alice", "member");
    let started = now_ms();
    let error = err(c.query(HEAVY.into(), js(r#"{ "timeoutMs": 120 }"#))).await;
    let took = now_ms() - started;
    assert_eq!(num(&error, "code"), 3024.0);
    assert_eq!(string(&error, "kind"), "deadline_exceeded");
    let cause = get(&error, "cause");
    assert_eq!(string(&cause, "what"), "statement_timeout");
    assert_eq!(num(&cause, "limitMs"), 120.0);
    assert!(get(&cause, "who").is_null());
    assert!((110.0..2000.0).contains(&took), "timed out after {took} ms");

    // max_execution_time through SQL does the same.
    query(&c, "SET max_execution_time = 80").await;
    let error = err(c.query(HEAVY.into(), JsValue::UNDEFINED)).await;
    assert_eq!(num(&error, "code"), 3024.0);
    assert_eq!(num(&get(&error, "cause"), "limitMs"), 80.0);
}

/// Checks that X events on each thread nest properly: each event ends
/// before the event that encloses it ends.
fn assert_properly_nested(chrome_json: &str) {
    let parsed = JSON::parse(chrome_json).expect("Chrome trace is JSON");
    let events = Array::from(&get(&parsed, "traceEvents"));
    assert!(events.length() > 0, "has events");
    let mut by_tid: std::collections::BTreeMap<i64, Vec<(f64, f64, String)>> = Default::default();
    for ev in events.iter() {
        assert_eq!(string(&ev, "ph"), "X", "complete events");
        let ts = num(&ev, "ts");
        let dur = num(&ev, "dur");
        assert!(dur >= 0.0);
        by_tid
            .entry(num(&ev, "tid") as i64)
            .or_default()
            .push((ts, ts + dur, string(&ev, "name")));
    }
    for (tid, mut evs) in by_tid {
        evs.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
        let mut stack: Vec<(f64, f64, String)> = Vec::new();
        for ev in evs {
            while stack.last().is_some_and(|top| top.1 <= ev.0) {
                stack.pop();
            }
            if let Some(top) = stack.last() {
                assert!(
                    ev.1 <= top.1 + 1e-6,
                    "tid {tid}: {} [{}, {}] overlaps its parent {} [{}, {}]",
                    ev.2,
                    ev.0,
                    ev.1,
                    top.2,
                    top.0,
                    top.1
                );
            }
            stack.push(ev);
        }
    }
}

#[wasm_bindgen_test]
async fn traces_have_every_level_and_valid_chrome_json() {
    let e = engine();
    let c = connect(&e, "acme", "alice", "member");
    query(&c, "CREATE TABLE a (id BIGINT, v BIGINT)").await;
    query(&c, "CREATE TABLE b (id BIGINT, w BIGINT)").await;
    query(
        &c,
        "INSERT INTO a SELECT n, n % 10 FROM generate_series(1, 5000) AS g(n)",
    )
    .await;
    query(
        &c,
        "INSERT INTO b SELECT n, n % 3 FROM generate_series(1, 5000) AS g(n)",
    )
    .await;
    let r = query(
        &c,
        "SELECT a.v, count(*) FROM a JOIN b ON a.id = b.id GROUP BY a.v ORDER BY a.v",
    )
    .await;
    assert_eq!(rows(&r).len(), 10);
    let trace = e.trace(get(&r, "queryId")).unwrap();
    assert!(num(&trace, "traceId") > 0.0);
    let spans = Array::from(&get(&trace, "spans"));
    let ids: Vec<f64> = spans.iter().map(|s| num(&s, "id")).collect();
    let mut levels = std::collections::BTreeSet::new();
    for s in spans.iter() {
        levels.insert(string(&s, "level"));
        let parent = get(&s, "parentId");
        assert!(
            parent.is_null() || ids.contains(&parent.as_f64().unwrap()),
            "a parent is in the trace or absent"
        );
        assert!(num(&s, "durUs") >= 0.0 && num(&s, "startUs") >= 0.0);
        assert!(!string(&s, "name").is_empty());
        assert!(get(&s, "attrs").is_object());
        let status = string(&get(&s, "status"), "code");
        assert!(status == "ok" || status == "open", "{status}");
        if string(&s, "level") == "Query" {
            assert_eq!(status, "ok");
        }
    }
    for level in ["Routine", "Txn", "Request", "Query", "Pipeline", "Operator"] {
        assert!(levels.contains(level), "a {level} span in {levels:?}");
    }
    assert_properly_nested(&e.chrome_trace(get(&r, "queryId")).unwrap());
    let text = e.trace_text(get(&r, "queryId")).unwrap();
    assert!(
        text.contains("[Operator]") || text.contains("Operator"),
        "{text}"
    );
}

#[wasm_bindgen_test]
async fn cancel_by_statement_id_never_kills_the_next_statement() {
    let e = engine();
    let c = connect(&e, "acme", "alice", "member");
    assert!(c.running_statement_id().is_null(), "idle");
    let done = num(&query(&c, "SELECT 1").await, "queryId");
    let running = JsFuture::from(c.query(HEAVY.into(), js(r#"{ "timeoutMs": 20000 }"#)));
    sleep_ms(50.0).await;
    let id = c.running_statement_id();
    assert!(id.as_f64().is_some_and(|id| id > done), "{id:?}");
    // A Cancel meant for the statement that already ended.
    let stale = c.cancel(done.into()).unwrap();
    assert_eq!(string(&stale, "outcome"), "notRunning");
    assert!(string(&stale, "message").contains(&format!("statement {done} ")));
    assert!(c.cancel("seven".into()).is_err(), "a bad id throws");
    let killed = c.cancel(id.clone()).unwrap();
    assert_eq!(string(&killed, "outcome"), "killed");
    let error = running.await.expect_err("the cancelled query rejects");
    assert_eq!(num(&error, "code"), 1317.0);
    assert_eq!(get(&error, "queryId").as_f64(), id.as_f64());
    // Without an id, on an idle connection: nothing to cancel.
    assert_eq!(
        string(&c.cancel(JsValue::UNDEFINED).unwrap(), "outcome"),
        "nothing"
    );
}

#[wasm_bindgen_test]
async fn sql_kill_show_processlist_and_tenant_isolation() {
    let e = engine();
    let alice = connect(&e, "acme", "alice", "member");
    let eve = connect(&e, "globex", "eve", "admin");
    let list = query(&eve, "SHOW PROCESSLIST").await;
    let ids: Vec<f64> = rows(&list).iter().filter_map(|r| r[0].as_f64()).collect();
    assert!(
        ids.contains(&eve.id()) && !ids.contains(&alice.id()),
        "{ids:?}"
    );
    let refused = err(eve.query(
        format!("KILL QUERY {}", alice.id()).into(),
        JsValue::UNDEFINED,
    ))
    .await;
    // Another tenant's connection is invisible: 1094, as for an unknown id.
    assert_eq!(num(&refused, "code"), 1094.0);
    let unknown = err(eve.query("KILL 99999".into(), JsValue::UNDEFINED)).await;
    assert_eq!(num(&unknown, "code"), 1094.0);
    let id = query(&alice, "SELECT CONNECTION_ID()").await;
    assert_eq!(rows(&id)[0][0].as_f64(), Some(alice.id()));
}

#[wasm_bindgen_test]
async fn bad_arguments_throw_or_reject_never_panic() {
    assert!(Engine::new(js(r#"{ "nodeId": "seven" }"#)).is_err());
    assert!(
        Engine::new(js(r#"{ "nodeid": 1 }"#)).is_err(),
        "typos are errors"
    );
    let e = Engine::new(JsValue::UNDEFINED).expect("options are optional");
    assert!(e.connect(42.into()).is_err());
    assert!(e.connect(js(r#"{ "tenant": "acme" }"#)).is_err());
    let c = connect(&e, "acme", "alice", "member");
    let not_string = err(c.query(123.into(), JsValue::UNDEFINED)).await;
    assert!(not_string.is_instance_of::<js_sys::TypeError>());
    err(c.query("SELECT 1".into(), js(r#"{ "timeoutMs": -5 }"#))).await;
    err(c.query("SELECT 1".into(), js(r#"{ "timeout": 5 }"#))).await;
    assert!(e.trace(999_999.into()).is_err());
    assert!(e.trace("x".into()).is_err());
    assert!(e.trace((-1).into()).is_err());
    assert!(e.chrome_trace(JsValue::NULL).is_err());
    assert!(e.processes(JsValue::UNDEFINED).is_err());
    ok(c.close()).await;
    ok(c.close()).await;
    err(c.query("SELECT 1".into(), JsValue::UNDEFINED)).await;
}

#[wasm_bindgen_test]
async fn live_context_tree_and_devtools_switch() {
    let e = engine();
    let c = connect(&e, "acme", "alice", "member");
    let tree = e.contexts(JsValue::UNDEFINED).unwrap();
    assert_eq!(string(&tree, "level"), "Root");
    let children = Array::from(&get(&tree, "children"));
    assert!(children
        .iter()
        .any(|ch| string(&ch, "level") == "Routine" && num(&ch, "connectionId") == c.id()));
    assert!(set_devtools_timings(true));
    query(&c, "SELECT 1").await;
    assert!(!set_devtools_timings(false));
}

fn chain(first: &str, op: &str, term: &str, n: usize) -> String {
    let mut s = String::from(first);
    for _ in 1..n {
        s.push_str(op);
        s.push_str(term);
    }
    s
}

/// Issue 8's shapes: long operator chains and wide UNIONs get their result,
/// deep nesting a clean error, and the engine (whose stack a runaway
/// recursion would overwrite the heap with) keeps answering.
#[wasm_bindgen_test]
async fn long_chains_compute_and_deep_nesting_is_an_error() {
    let e = engine();
    let c = connect(&e, "acme", "alice", "member");
    let cell = |r: &JsValue| rows(r)[0][0].clone();
    let sum = query(&c, &format!("SELECT {}", chain("1", "+", "1", 3000))).await;
    assert_eq!(cell(&sum).as_f64(), Some(3000.0));
    let and = format!(
        "SELECT count(*) FROM generate_series(1, 5) AS g(x) WHERE {}",
        chain("x > 1", " AND ", "x < 5", 50_000)
    );
    assert_eq!(cell(&query(&c, &and).await).as_f64(), Some(3.0));
    let mut or = String::from("x = -1");
    for i in 0..20_000 {
        or.push_str(&format!(" OR x = {}", i + 4));
    }
    let or = format!("SELECT count(*) FROM generate_series(1, 5) AS g(x) WHERE {or}");
    assert_eq!(cell(&query(&c, &or).await).as_f64(), Some(2.0));
    let concat = format!("SELECT {} || 1", chain("0", " || ", "0", 10_000));
    assert_eq!(cell(&query(&c, &concat).await).as_f64(), Some(1.0));
    let union = format!(
        "SELECT sum(x) FROM ({}) AS u(x)",
        chain("SELECT 1", " UNION ALL ", "SELECT 1", 5000)
    );
    assert_eq!(cell(&query(&c, &union).await).as_f64(), Some(5000.0));
    for deep in [
        format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000)),
        format!("SELECT {}1", "- ".repeat(100_000)),
        format!("SELECT 1{}", " IS NULL".repeat(100_000)),
        format!("SELECT {}1{}", "abs(".repeat(5000), ")".repeat(5000)),
    ] {
        let e = err(c.query(deep.into(), JsValue::UNDEFINED)).await;
        assert_eq!(num(&e, "code"), 1436.0);
        assert!(string(&e, "message").contains("nests too deeply"));
    }
    let one = query(&c, "SELECT 1").await;
    assert_eq!(cell(&one).as_f64(), Some(1.0));
}

#[wasm_bindgen_test]
async fn two_nodes_in_one_thread_run_a_fragment_on_node_2() {
    let e = Engine::new(js(r#"{ "nodeId": 1, "nodes": 2 }"#)).expect("engine");
    let ids: Vec<f64> = e.node_ids().iter().filter_map(|v| v.as_f64()).collect();
    assert_eq!(ids, [1.0, 2.0]);
    let c = connect(&e, "acme", "alice", "member");
    let sql = "SELECT count(*), sum(n % 7) FROM generate_series(1, 100000) AS g(n)";
    let one = rows(&query(&c, sql).await);
    query(&c, "SET cascade_distribute = ON").await;
    let r = query(&c, sql).await;
    let two = rows(&r);
    assert_eq!(format!("{two:?}"), format!("{one:?}"), "the same answer");
    assert_eq!(two[0][0].as_f64(), Some(100000.0));
    let trace = e.trace(get(&r, "queryId")).unwrap();
    let on_node_2 = Array::from(&get(&trace, "spans")).iter().any(|s| {
        let attrs = get(&s, "attrs");
        get(&attrs, "remote").as_bool() == Some(true) && get(&attrs, "node").as_f64() == Some(2.0)
    });
    assert!(on_node_2, "node 2's spans are in node 1's trace");
    // Nothing is left on node 2 once the statement ended.
    let node2 = e.contexts(JsValue::from_f64(2.0)).unwrap();
    assert_eq!(Array::from(&get(&node2, "children")).length(), 0);
    assert!(e.contexts(JsValue::from_f64(3.0)).is_err());
    for bad in [
        r#"{ "nodes": 0 }"#,
        r#"{ "nodes": 9 }"#,
        r#"{ "nodeId": 1023, "nodes": 2 }"#,
    ] {
        let err = Engine::new(js(bad)).err().expect(bad);
        assert!(err.is_instance_of::<js_sys::TypeError>(), "{bad}");
    }
    ok(c.close()).await;
}
