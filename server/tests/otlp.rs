//! OTLP export (server/src/otlp.rs) against an in-process OTLP receiver: a
//! tonic server implementing the collector's TraceService (generated code of
//! `opentelemetry-proto`). Statements run through the server over the MySQL
//! wire protocol (a minimal client below) with a sqlcommenter `traceparent`;
//! the receiver gets their spans with the application's trace id, the
//! Query span a child of the application's span, the pipelines and
//! operators under it, the ids equal to the engine's recorder; a statement
//! without a comment gives the connection's tree (connection -> request ->
//! query -> pipeline -> operators) in one trace; a killed statement arrives
//! with an error status and the cause.
//!
//! Its own test binary: the export layer is the process's global `tracing`
//! subscriber (the server's tasks run on tokio's worker threads).

use cascade::{Engine, EngineConfig};
use cascade_server::otlp;
use cascade_server::{Server, ServerConfig, TokioHost};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing_subscriber::layer::SubscriberExt;

const APP_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const APP_SPAN: &str = "00f067aa0ba902b7";

#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut got = self.spans.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    AnyValue::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for s in ss.spans {
                    got.push((service.clone(), s));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn attr(s: &Span, key: &str) -> Option<String> {
    s.attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(v) => Some(v.clone()),
            AnyValue::IntValue(v) => Some(v.to_string()),
            _ => None,
        }
    })
}

// ---- a minimal MySQL client: login with an empty password, COM_QUERY ----

async fn read_packet(s: &mut TcpStream) -> Vec<u8> {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).await.unwrap();
    let n = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
    let mut p = vec![0u8; n];
    s.read_exact(&mut p).await.unwrap();
    p
}

async fn write_packet(s: &mut TcpStream, seq: u8, payload: &[u8]) {
    let n = payload.len();
    let mut buf = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
    buf.extend_from_slice(payload);
    s.write_all(&buf).await.unwrap();
}

/// Logs in as `user` (empty password); returns the stream and the
/// connection id from the greeting.
async fn login(addr: std::net::SocketAddr, user: &str) -> (TcpStream, u32) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let greeting = read_packet(&mut s).await;
    assert_eq!(greeting[0], 10, "protocol 10");
    let version_end = 1 + greeting[1..].iter().position(|&b| b == 0).unwrap();
    let id_at = version_end + 1;
    let id = u32::from_le_bytes(greeting[id_at..id_at + 4].try_into().unwrap());
    // CLIENT_LONG_PASSWORD | PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH
    let caps: u32 = 0x1 | 0x200 | 0x8000 | 0x80000;
    let mut r = Vec::new();
    r.extend_from_slice(&caps.to_le_bytes());
    r.extend_from_slice(&(16u32 << 20).to_le_bytes());
    r.push(33);
    r.extend_from_slice(&[0; 23]);
    r.extend_from_slice(user.as_bytes());
    r.push(0);
    r.push(0); // empty auth response
    r.extend_from_slice(b"mysql_native_password\0");
    write_packet(&mut s, 1, &r).await;
    let mut ok = read_packet(&mut s).await;
    if ok[0] == 0xfe {
        // An auth switch (to caching_sha2_password): the empty password's
        // answer is empty.
        write_packet(&mut s, 3, &[]).await;
        ok = read_packet(&mut s).await;
    }
    assert_eq!(ok[0], 0, "login OK: {ok:?}");
    (s, id)
}

/// Runs `sql`; Ok(rows seen) or Err(error code).
async fn query(s: &mut TcpStream, sql: &str) -> Result<usize, u16> {
    let mut p = vec![3u8];
    p.extend_from_slice(sql.as_bytes());
    write_packet(s, 0, &p).await;
    let first = read_packet(s).await;
    match first[0] {
        0xff => return Err(u16::from_le_bytes([first[1], first[2]])),
        0x00 => return Ok(0),
        _ => {}
    }
    // Column definitions, EOF, rows, EOF (or an error mid-stream).
    let mut eofs = 0;
    let mut rows = 0;
    loop {
        let pk = read_packet(s).await;
        match pk[0] {
            0xfe if pk.len() < 9 => {
                eofs += 1;
                if eofs == 2 {
                    return Ok(rows);
                }
            }
            0xff => return Err(u16::from_le_bytes([pk[1], pk[2]])),
            _ if eofs == 1 => rows += 1,
            _ => {}
        }
    }
}

async fn wait_for(rx: &Receiver, what: &str, done: impl Fn(&[(String, Span)]) -> bool) {
    // The batch exporter sends within its schedule delay; wait for the
    // spans to arrive (bounded, so that a broken export fails the test).
    for _ in 0..300 {
        if done(&rx.spans.lock().unwrap()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{what}: not exported; got {:?}",
        rx.spans
            .lock()
            .unwrap()
            .iter()
            .map(|(_, s)| &s.name)
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_arrive_over_otlp_with_the_engines_ids_and_the_applications_trace() {
    // The receiver.
    let rx = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp_addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let (stop_rx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
    let receiver = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(rx.clone()))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped_rx.await;
            }),
    );

    // The export, as the server binary sets it up from `[otlp]`.
    let toml = format!(
        "[otlp]\nendpoint = \"http://{otlp_addr}\"\nservice_name = \"cascade-test\"\ntimeout_secs = 5\n{}",
        cascade_server::DEFAULT_CONFIG_TOML
    );
    let mut config = ServerConfig::from_toml(&toml).unwrap();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.background_every = None;
    let (export, guard) = otlp::start(config.otlp.as_ref().unwrap()).unwrap();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(export)).unwrap();

    let engine = Engine::new(EngineConfig::new(1, TokioHost::shared()));
    let server = Server::bind(config, engine.clone()).await.unwrap();
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));

    let (mut a, a_id) = login(addr, "sys:root").await;
    let (mut admin, _) = login(addr, "sys:root").await;
    let select = "SELECT x * 2 FROM generate_series(1, 100) AS t(x) WHERE x > 50";
    // 1. With a sqlcommenter comment: the application's trace.
    let commented = format!(
        "{select} /*controller='orders',traceparent='00-{APP_TRACE}-{APP_SPAN}-01',tracestate='congo%3Dt61rcWkgMzE'*/"
    );
    assert_eq!(query(&mut a, &commented).await, Ok(50));
    // 2. Without: the connection's trace.
    assert_eq!(query(&mut a, select).await, Ok(50));
    // 3. Killed, in the application's trace.
    let sleeper = format!("SELECT sleep(30) /*traceparent='00-{APP_TRACE}-{APP_SPAN}-01'*/");
    let killed = tokio::spawn(async move {
        let r = query(&mut a, &sleeper).await;
        (a, r)
    });
    // Kill it once it runs (the process list shows it).
    for _ in 0..300 {
        let root = cascade::Identity::new("sys", "root", "admin");
        if engine
            .processes(&root)
            .iter()
            .any(|p| p.id == u64::from(a_id) && p.statement_id.is_some())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        query(&mut admin, &format!("KILL QUERY {a_id}")).await,
        Ok(0)
    );
    let (mut a, r) = killed.await.unwrap();
    assert_eq!(r, Err(1317));
    // Close the connection: its span ends and is exported too.
    write_packet(&mut a, 0, &[1]).await;
    drop(a);

    wait_for(&rx, "the killed statement and the connection", |spans| {
        spans.iter().any(|(_, s)| {
            s.name == "select"
                && s.status
                    .as_ref()
                    .is_some_and(|st| st.code == StatusCode::Error as i32)
        }) && spans
            .iter()
            .any(|(_, s)| attr(s, "cascade.level").as_deref() == Some("Routine"))
    })
    .await;
    let spans: Vec<Span> = rx
        .spans
        .lock()
        .unwrap()
        .iter()
        .map(|(svc, s)| {
            assert_eq!(svc, "cascade-test");
            s.clone()
        })
        .collect();
    let by_id: HashMap<String, &Span> = spans.iter().map(|s| (hex(&s.span_id), s)).collect();

    // The statements' Query spans: two in the application's trace, children
    // of the application's span, linked to their local request.
    let queries: Vec<&Span> = spans.iter().filter(|s| s.name == "select").collect();
    let app: Vec<&&Span> = queries
        .iter()
        .filter(|s| hex(&s.trace_id) == APP_TRACE)
        .collect();
    assert_eq!(app.len(), 2, "{queries:?}");
    for q in &app {
        assert_eq!(hex(&q.parent_span_id), APP_SPAN);
        assert_eq!(q.links.len(), 1, "linked to the request it ran in");
        let req = by_id
            .get(&hex(&q.links[0].span_id))
            .expect("the linked request was exported");
        assert_eq!(req.name, "request");
    }
    // Pipelines and operators of the first one hang under it, same trace.
    let q1 = app
        .iter()
        .find(|q| {
            q.status
                .as_ref()
                .is_some_and(|s| s.code == StatusCode::Ok as i32)
        })
        .expect("the commented statement ended OK");
    let children_of = |p: &Span| -> Vec<&Span> {
        spans
            .iter()
            .filter(|s| s.parent_span_id == p.span_id && s.trace_id == p.trace_id)
            .collect()
    };
    assert_eq!(q1.trace_state, "congo=t61rcWkgMzE", "tracestate carried");
    let pipes = children_of(q1);
    assert!(pipes.iter().any(|p| p.name == "pipeline"), "{pipes:?}");
    let ops: Vec<&Span> = pipes.iter().flat_map(|p| children_of(p)).collect();
    assert!(!ops.is_empty(), "operators under the pipeline");
    for op in &ops {
        assert_eq!(
            attr(op, "cascade.level").as_deref(),
            Some("Operator"),
            "{op:?}"
        );
    }

    // The killed one: error status naming the kill, cause attribute.
    let k = app
        .iter()
        .find(|q| {
            q.status
                .as_ref()
                .is_some_and(|s| s.code == StatusCode::Error as i32)
        })
        .expect("the killed statement");
    let msg = &k.status.as_ref().unwrap().message;
    assert!(msg.contains("KILL QUERY"), "{msg}");
    assert_eq!(attr(k, "cascade.status").as_deref(), Some("canceled"));
    assert_eq!(attr(k, "cascade.cause").as_deref(), Some(msg.as_str()));

    // The uncommented statement: connection -> request -> query in the
    // connection's trace, the connection span a root.
    let local = queries
        .iter()
        .find(|s| hex(&s.trace_id) != APP_TRACE)
        .expect("the uncommented statement");
    let req = by_id[&hex(&local.parent_span_id)];
    assert_eq!(req.name, "request");
    assert_eq!(req.trace_id, local.trace_id);
    let conn = by_id[&hex(&req.parent_span_id)];
    assert_eq!(
        attr(conn, "cascade.level").as_deref(),
        Some("Routine"),
        "{}",
        conn.name
    );
    assert!(
        conn.parent_span_id.is_empty(),
        "a connection starts a trace"
    );
    assert_eq!(conn.trace_id, local.trace_id);
    assert!(children_of(local).iter().any(|p| p.name == "pipeline"));

    // The exported ids are the recorder's.
    let mut compared = 0;
    for s in &spans {
        let Some(rec) = attr(s, "cascade.recorder_span").and_then(|r| r.parse::<u64>().ok()) else {
            continue;
        };
        if let Some(r) = engine.recorder().get(cascade::SpanId(rec)) {
            assert_eq!(r.trace_id.to_string(), hex(&s.trace_id), "{}", s.name);
            assert_eq!(r.trace_span_id.to_string(), hex(&s.span_id), "{}", s.name);
            compared += 1;
        }
    }
    assert!(
        compared >= 10,
        "{compared} spans compared with the recorder"
    );

    stop.send(()).unwrap();
    run.await.unwrap();
    // Shutdown flushes and returns (off the async workers: it blocks).
    tokio::task::spawn_blocking(move || guard.shutdown())
        .await
        .unwrap();
    stop_rx.send(()).unwrap();
    receiver.await.unwrap().unwrap();
}
