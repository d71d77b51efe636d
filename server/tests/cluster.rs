//! Three `cascade-server` processes on loopback, joined by `[cluster]`
//! (docs/cluster.md): a distributed aggregate gives the one-node result;
//! KILL QUERY on the coordinator ends every remote fragment with the
//! coordinator's cause; a 200 ms `max_execution_time` ends the remote
//! fragments with the coordinator's deadline cause and a budget no larger
//! than the coordinator's; a peer killed with SIGKILL mid-query fails the
//! statement with an error naming it, and the survivor keeps no context.
//!
//! Causes, budgets and live contexts are checked (through each node's
//! `Fragments/Status`), never wall time: the waits below poll for a state
//! and give up only after a generous bound.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cascade_grpc::cluster::pb::fragments_client::FragmentsClient;
use cascade_grpc::cluster::pb::{StatusReply, StatusRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a wait for a state may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(60);

struct Node {
    id: u64,
    child: Child,
    mysql: SocketAddr,
    grpc: SocketAddr,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn config(id: u64, mysql: SocketAddr, grpc: &[SocketAddr]) -> String {
    let mut t = format!(
        "[server]\nlisten = \"{mysql}\"\nbackground_every_secs = 0\n\n\
         [[user]]\ntenant = \"acme\"\nname = \"alice\"\npassword = \"\"\nroles = [\"member\"]\n\n\
         [cluster]\nnode_id = {id}\ngrpc_listen = \"{}\"\ntoken = \"test-token\"\n",
        grpc[id as usize - 1]
    );
    for (i, g) in grpc.iter().enumerate() {
        let peer = i as u64 + 1;
        if peer != id {
            t.push_str(&format!(
                "\n[[cluster.peers]]\nnode_id = {peer}\ngrpc = \"{g}\"\n"
            ));
        }
    }
    t
}

async fn start(n: u64) -> Vec<Node> {
    let mysql: Vec<SocketAddr> = (0..n).map(|_| free_port()).collect();
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "cascade-cluster-{}-{}",
        std::process::id(),
        mysql[0].port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let grpc: Vec<SocketAddr> = (0..n).map(|_| free_port()).collect();
    let mut nodes = Vec::new();
    for id in 1..=n {
        let path = dir.join(format!("node{id}.toml"));
        std::fs::write(&path, config(id, mysql[id as usize - 1], &grpc)).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cascade-server"))
            .arg("--config")
            .arg(&path)
            .env("CASCADE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        nodes.push(Node {
            id,
            child,
            mysql: mysql[id as usize - 1],
            grpc: grpc[id as usize - 1],
        });
    }
    for node in &nodes {
        wait_until(&format!("node {} up", node.id), || async {
            TcpStream::connect(node.mysql).await.is_ok() && status(node.grpc).await.is_some()
        })
        .await;
    }
    // The servers have read their files.
    let _ = std::fs::remove_dir_all(&dir);
    nodes
}

async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !f().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A node's `Fragments/Status`, if it answers.
async fn status(grpc: SocketAddr) -> Option<StatusReply> {
    let mut c = FragmentsClient::connect(format!("http://{grpc}"))
        .await
        .ok()?;
    c.status(StatusRequest {})
        .await
        .ok()
        .map(|r| r.into_inner())
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

/// Logs in as `user` (empty password); the stream and the connection id.
async fn login(addr: SocketAddr, user: &str) -> (TcpStream, u32) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let greeting = read_packet(&mut s).await;
    assert_eq!(greeting[0], 10, "protocol 10");
    let version_end = 1 + greeting[1..].iter().position(|&b| b == 0).unwrap();
    let id_at = version_end + 1;
    let id = u32::from_le_bytes(greeting[id_at..id_at + 4].try_into().unwrap());
    let caps: u32 = 0x1 | 0x200 | 0x8000 | 0x80000;
    let mut r = Vec::new();
    r.extend_from_slice(&caps.to_le_bytes());
    r.extend_from_slice(&(16u32 << 20).to_le_bytes());
    r.push(33);
    r.extend_from_slice(&[0; 23]);
    r.extend_from_slice(user.as_bytes());
    r.push(0);
    r.push(0);
    r.extend_from_slice(b"mysql_native_password\0");
    write_packet(&mut s, 1, &r).await;
    let mut ok = read_packet(&mut s).await;
    if ok[0] == 0xfe {
        write_packet(&mut s, 3, &[]).await;
        ok = read_packet(&mut s).await;
    }
    assert_eq!(ok[0], 0, "login OK: {ok:?}");
    (s, id)
}

/// A length-encoded string of a text-protocol row, from `at`.
fn lenenc(p: &[u8], at: &mut usize) -> Option<String> {
    let first = p[*at];
    *at += 1;
    let n = match first {
        0xfb => return None,
        0xfc => {
            let n = u16::from_le_bytes([p[*at], p[*at + 1]]) as usize;
            *at += 2;
            n
        }
        0xfd => {
            let n = u32::from_le_bytes([p[*at], p[*at + 1], p[*at + 2], 0]) as usize;
            *at += 3;
            n
        }
        n => n as usize,
    };
    let s = String::from_utf8_lossy(&p[*at..*at + n]).into_owned();
    *at += n;
    Some(s)
}

/// Runs `sql`: the rows as text, or (code, message).
async fn query(s: &mut TcpStream, sql: &str) -> Result<Vec<Vec<Option<String>>>, (u16, String)> {
    let mut p = vec![3u8];
    p.extend_from_slice(sql.as_bytes());
    write_packet(s, 0, &p).await;
    let err = |pk: &[u8]| {
        (
            u16::from_le_bytes([pk[1], pk[2]]),
            String::from_utf8_lossy(&pk[9..]).into_owned(),
        )
    };
    let first = read_packet(s).await;
    match first[0] {
        0xff => return Err(err(&first)),
        0x00 => return Ok(Vec::new()),
        _ => {}
    }
    let columns = first[0] as usize;
    let mut eofs = 0;
    let mut rows = Vec::new();
    loop {
        let pk = read_packet(s).await;
        match pk[0] {
            0xfe if pk.len() < 9 => {
                eofs += 1;
                if eofs == 2 {
                    return Ok(rows);
                }
            }
            0xff => return Err(err(&pk)),
            _ if eofs == 1 => {
                let mut at = 0;
                rows.push((0..columns).map(|_| lenenc(&pk, &mut at)).collect());
            }
            _ => {}
        }
    }
}

/// A statement that runs until stopped.
const LONG: &str =
    "SELECT x % 3 AS k, count(*) FROM generate_series(1, 1000000000000) AS t(x) GROUP BY k";

async fn wait_fragments_running(nodes: &[Node]) {
    for n in nodes {
        wait_until(&format!("node {} runs a fragment", n.id), || async {
            status(n.grpc).await.is_some_and(|s| s.live_calls >= 1)
        })
        .await;
    }
}

/// Waits until `node` runs nothing for others and holds only its Root;
/// its status then.
async fn wait_idle(node: &Node) -> StatusReply {
    wait_until(&format!("node {} idle", node.id), || async {
        status(node.grpc)
            .await
            .is_some_and(|s| s.live_calls == 0 && s.live_contexts == 1 && s.memory_in_use == 0)
    })
    .await;
    status(node.grpc).await.unwrap()
}

/// Waits until the coordinator runs no fragment and reserves no memory.
async fn wait_coordinator_idle(node: &Node) -> StatusReply {
    wait_until(&format!("node {} idle", node.id), || async {
        status(node.grpc)
            .await
            .is_some_and(|s| s.live_calls == 0 && s.memory_in_use == 0)
    })
    .await;
    status(node.grpc).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_results_kill_and_deadline() {
    let nodes = start(3).await;
    let (mut a, a_id) = login(nodes[0].mysql, "acme:alice").await;

    // The distributed result is the one-node result.
    let q = "SELECT x % 7 AS k, count(*), sum(x), min(x), max(x), avg(x) FROM generate_series(1, 300000) AS t(x) WHERE x % 3 <> 1 GROUP BY k ORDER BY k";
    let one = query(&mut a, q).await.unwrap();
    query(&mut a, "SET cascade_distribute = ON").await.unwrap();
    let all = query(&mut a, q).await.unwrap();
    assert_eq!(one, all);
    assert_eq!(all.len(), 7);
    let explain = query(&mut a, &format!("EXPLAIN {q}")).await.unwrap();
    let text: Vec<String> = explain.into_iter().filter_map(|r| r[0].clone()).collect();
    let text = text.join("\n");
    for n in 1..=3 {
        assert!(
            text.contains(&format!("node {n}: partial aggregate")),
            "{text}"
        );
    }

    // KILL QUERY on the coordinator ends every remote fragment, with the
    // coordinator's cause.
    let addr = nodes[0].mysql;
    let running = tokio::spawn(async move {
        let r = query(&mut a, LONG).await;
        (a, r)
    });
    wait_fragments_running(&nodes[1..]).await;
    let (mut b, _) = login(addr, "acme:alice").await;
    query(&mut b, &format!("KILL QUERY {a_id}")).await.unwrap();
    let (mut a, r) = running.await.unwrap();
    let (code, msg) = r.unwrap_err();
    assert_eq!(code, 1317, "{msg}");
    assert!(msg.contains("KILL QUERY"), "{msg}");
    for n in &nodes[1..] {
        let s = wait_idle(n).await;
        let last = s.recent.last().expect("a call ended");
        assert_eq!(last.origin_node, 1);
        assert!(
            last.outcome
                .starts_with("cancelled by node 1: killed by KILL QUERY from connection"),
            "node {}: {}",
            n.id,
            last.outcome
        );
    }

    // A 200 ms statement timeout on the coordinator: the remote fragments
    // end with the coordinator's deadline cause, with a budget no larger
    // than the coordinator's (the remaining budget, not a fresh timeout).
    query(&mut a, "SET max_execution_time = 200").await.unwrap();
    let (code, msg) = query(&mut a, LONG).await.unwrap_err();
    assert_eq!(code, 3024, "{msg}");
    for n in &nodes[1..] {
        let s = wait_idle(n).await;
        let last = s.recent.last().expect("a call ended");
        assert!(
            last.outcome.starts_with(
                "cancelled by node 1: statement timeout of 200 ms (max_execution_time) exceeded"
            ),
            "node {}: {}",
            n.id,
            last.outcome
        );
        let budget = last.budget_us.expect("the call carried a budget");
        assert!(budget <= 200_000, "node {}: budget {budget} us", n.id);
    }
    // The coordinator: its own fragments ended too (alice's connections
    // stay open: their contexts are not counted here).
    let s = wait_coordinator_idle(&nodes[0]).await;
    assert!(s.recent.iter().all(|c| c.origin_node == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_killed_mid_query_is_named_and_the_survivor_keeps_nothing() {
    let mut nodes = start(3).await;
    let (mut a, _) = login(nodes[0].mysql, "acme:alice").await;
    query(&mut a, "SET cascade_distribute = ON").await.unwrap();
    let running = tokio::spawn(async move {
        let r = query(&mut a, LONG).await;
        (a, r)
    });
    wait_fragments_running(&nodes[1..]).await;
    // SIGKILL node 2.
    nodes[1].child.kill().unwrap();
    nodes[1].child.wait().unwrap();
    let (mut a, r) = running.await.unwrap();
    let (code, msg) = r.unwrap_err();
    assert!(msg.contains("node 2 lost"), "{code}: {msg}");
    // Node 3 was stopped because node 2 was lost, and keeps nothing.
    let s = wait_idle(&nodes[2]).await;
    let last = s.recent.last().expect("a call ended");
    assert!(
        last.outcome.starts_with("cancelled by node 1: node 2 lost"),
        "{}",
        last.outcome
    );
    wait_coordinator_idle(&nodes[0]).await;
    // The next distributed statement fails at once, naming the lost node.
    let (_, msg) = query(
        &mut a,
        "SELECT count(*) FROM generate_series(1, 30) AS t(x)",
    )
    .await
    .unwrap_err();
    assert!(msg.contains("node 2 lost"), "{msg}");
    wait_idle(&nodes[2]).await;
}
