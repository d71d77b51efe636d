//! The server in-process: it binds, greets a client with a protocol-10
//! handshake, drops a client that sends garbage without disturbing others,
//! refuses clients past `max_connections`, and shuts down gracefully with
//! every connection closed. (Full client behaviour is tested with real
//! MySQL clients in `server/tests/python`.)

use cascade::{Engine, EngineConfig};
use cascade_server::{Server, ServerConfig, TokioHost, SERVER_VERSION};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

async fn start(
    max_connections: usize,
) -> (
    std::net::SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<cascade_server::ShutdownReport>,
) {
    let mut config = ServerConfig::default_local();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.max_connections = max_connections;
    let engine = Engine::new(EngineConfig::new(1, TokioHost::shared()));
    let server = Server::bind(config, engine).await.unwrap();
    let addr = server.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let run = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));
    (addr, stop, run)
}

/// Reads one packet: (sequence id, payload).
async fn packet(s: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).await?;
    let n = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
    let mut p = vec![0u8; n];
    s.read_exact(&mut p).await?;
    Ok((h[3], p))
}

async fn closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    let wait = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greets_drops_garbage_and_shuts_down() {
    let (addr, stop, run) = start(8).await;

    let mut good = TcpStream::connect(addr).await.unwrap();
    let (seq, hello) = packet(&mut good).await.unwrap();
    assert_eq!(seq, 0);
    assert_eq!(hello[0], 10, "protocol version 10");
    assert!(hello[1..].starts_with(SERVER_VERSION.as_bytes()));

    let mut bad = TcpStream::connect(addr).await.unwrap();
    packet(&mut bad).await.unwrap();
    bad.write_all(b"\x05\x00\x00\x01hello").await.unwrap();
    assert!(closed(&mut bad).await, "garbage closes that connection");

    // The first client is still there, waiting in its handshake.
    let mut probe = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(100), good.peek(&mut probe))
            .await
            .is_err(),
        "nothing was sent to the other client"
    );

    stop.send(()).unwrap();
    let report = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.timed_out, 0, "{report:?}");
    assert!(closed(&mut good).await, "shutdown closes waiting clients");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_past_the_limit_are_counted_out() {
    let (addr, stop, run) = start(1).await;
    let mut first = TcpStream::connect(addr).await.unwrap();
    packet(&mut first).await.unwrap();
    // A second client still gets a handshake (the 1040 comes in place of
    // the login's OK, see server/tests/python), and the first is unaffected.
    let mut second = TcpStream::connect(addr).await.unwrap();
    let (_, hello) = packet(&mut second).await.unwrap();
    assert_eq!(hello[0], 10);
    drop(second);
    drop(first);
    stop.send(()).unwrap();
    let report = run.await.unwrap();
    assert_eq!(report.timed_out, 0);
}
