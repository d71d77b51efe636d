//! The listener: accepts clients, bounds how many are served, runs each in
//! its own task, and shuts down gracefully.
//!
//! A connection's life (one tokio task, [`serve`]):
//! 1. Admission: past `max_connections` the client still gets a handshake,
//!    then error 1040 instead of a login.
//! 2. `opensrv-mysql` runs the protocol in a child task, so that a panic
//!    on bad input ends that connection only, and the parent still cleans
//!    up. The client must log in within `handshake_timeout`.
//! 3. Logged in, the parent watches the engine connection: when it is
//!    killed (`KILL CONNECTION`, shutdown) the reader reports EOF at the
//!    next command boundary and the protocol loop ends.
//! 4. Whatever way it ended (quit, EOF, error, panic, kill), the engine
//!    connection is disconnected if the end was not clean and then closed:
//!    its open transaction rolls back on a cleanup context and it leaves the
//!    process list.
//!
//! Shutdown: stop accepting, `Engine::shutdown` (every running statement
//! ends with a shutdown cause), close every connection at its next command
//! boundary, and wait (bounded) until every connection task has finished
//! its rollback.

use cascade::{Connection, Engine};
use opensrv_mysql::{AsyncMysqlIntermediary, IntermediaryOptions};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Notify};

use crate::auth;
use crate::config::ServerConfig;
use crate::session::{slot_get, ConnectionSlot, Session};
use crate::throttle::LoginThrottle;
use crate::tls::Transport;
use crate::wire::{WireError, WireReader, WireShared, WireWriter};

/// What every connection task shares.
pub(crate) struct ServerState {
    pub(crate) engine: Engine,
    pub(crate) config: ServerConfig,
    /// Failed logins per peer address.
    pub(crate) throttle: LoginThrottle,
    /// Accepts TLS, when the configuration has a certificate.
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// Every connection task, admitted or being refused, by task number.
    tasks: Mutex<HashMap<u32, Arc<WireShared>>>,
    tasks_done: Notify,
    next_task: AtomicU32,
    admitted: AtomicUsize,
    shutting_down: AtomicBool,
}

impl ServerState {
    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Arc<WireShared>>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits one more client if there is room.
    fn try_admit(&self) -> bool {
        let max = self.config.max_connections;
        self.admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }
}

/// Unregisters a connection task (and its admission) when it ends.
struct TaskGuard {
    state: Arc<ServerState>,
    id: u32,
    admitted: bool,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.admitted {
            self.state.admitted.fetch_sub(1, Ordering::AcqRel);
        }
        let empty = {
            let mut tasks = self.state.lock_tasks();
            tasks.remove(&self.id);
            tasks.is_empty()
        };
        if empty {
            self.state.tasks_done.notify_waiters();
        }
    }
}

/// How a graceful shutdown went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Connections open when shutdown began.
    pub connections: usize,
    /// Connections still open when the shutdown timeout passed (0 when all
    /// closed in time).
    pub timed_out: usize,
}

/// A bound MySQL-wire server around an [`Engine`].
pub struct Server {
    state: Arc<ServerState>,
    listener: TcpListener,
}

impl Server {
    /// Binds `config.listen`. The engine should use a host whose futures
    /// run on tokio ([`crate::TokioHost`]).
    pub async fn bind(config: ServerConfig, engine: Engine) -> io::Result<Server> {
        let listener = TcpListener::bind(config.listen).await?;
        Ok(Server {
            state: Arc::new(ServerState {
                engine,
                throttle: LoginThrottle::new(
                    config.max_login_failures,
                    config.login_failure_window,
                ),
                tls: config.tls.clone().map(tokio_rustls::TlsAcceptor::from),
                config,
                tasks: Mutex::new(HashMap::new()),
                tasks_done: Notify::new(),
                next_task: AtomicU32::new(1),
                admitted: AtomicUsize::new(0),
                shutting_down: AtomicBool::new(false),
            }),
            listener,
        })
    }

    /// The address it listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        // Invariant: the listener was bound when this value was built, and a
        // bound TCP socket always has a local address.
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.state.engine
    }

    /// Serves clients until `shutdown` completes, then shuts down
    /// gracefully (see the module docs).
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> ShutdownReport {
        let Server { state, listener } = self;
        tracing::info!(listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            max_connections = state.config.max_connections, users = state.config.user_count(),
            tls = state.tls.is_some(), require_secure_transport = state.config.require_secure_transport,
            "cascade-server ready");
        // The engine's own work (trace-buffer trimming) as a background
        // session of tenant `sys`; engine.shutdown() ends it, and it closes
        // on a cleanup context.
        let background = state.config.background_every.and_then(|every| {
            match state.engine.background(every, state.config.trace_retention) {
                Ok(bg) => {
                    tracing::info!(
                        id = bg.id(),
                        every_ms = every.as_millis() as u64,
                        "background session started"
                    );
                    Some(tokio::spawn(bg.run()))
                }
                Err(e) => {
                    tracing::warn!("no background session: {}", e.message);
                    None
                }
            }
        });
        futures::pin_mut!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => spawn_connection(&state, stream, peer),
                    Err(e) => {
                        // Out of file descriptors and the like: back off
                        // instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        drop(listener);
        let report = shutdown_gracefully(&state).await;
        if let Some(bg) = background {
            // Cancelled by engine.shutdown(): it closes at once.
            if tokio::time::timeout(state.config.shutdown_timeout, bg)
                .await
                .is_err()
            {
                tracing::warn!("the background session did not close in time");
            }
        }
        report
    }
}

fn spawn_connection(state: &Arc<ServerState>, stream: TcpStream, peer: SocketAddr) {
    let admitted = state.try_admit();
    let refuse = (!admitted).then(|| {
        tracing::warn!(%peer, max = state.config.max_connections, "too many connections");
        WireError::new(1040, "08004", "Too many connections")
    });
    let id = state.next_task.fetch_add(1, Ordering::Relaxed);
    let wire = Arc::new(WireShared::default());
    state.lock_tasks().insert(id, wire.clone());
    let guard = TaskGuard {
        state: state.clone(),
        id,
        admitted,
    };
    tokio::spawn(serve(guard, wire, stream, peer, refuse));
}

async fn shutdown_gracefully(state: &Arc<ServerState>) -> ShutdownReport {
    state.shutting_down.store(true, Ordering::Release);
    let open: Vec<Arc<WireShared>> = state.lock_tasks().values().cloned().collect();
    tracing::info!(
        connections = open.len(),
        "shutting down: cancelling every statement"
    );
    state.engine.shutdown();
    for w in &open {
        w.closer.close();
    }
    let wait = async {
        loop {
            let done = state.tasks_done.notified();
            futures::pin_mut!(done);
            done.as_mut().enable();
            if state.lock_tasks().is_empty() {
                return;
            }
            done.await;
        }
    };
    let timed_out = match tokio::time::timeout(state.config.shutdown_timeout, wait).await {
        Ok(()) => 0,
        Err(_) => state.lock_tasks().len(),
    };
    if timed_out > 0 {
        tracing::warn!(
            timed_out,
            "shutdown timeout passed with connections still open"
        );
    } else {
        tracing::info!("every connection closed");
    }
    ShutdownReport {
        connections: open.len(),
        timed_out,
    }
}

/// Resolves when the engine connection has been killed (`KILL
/// CONNECTION`) or the engine shut down: its Routine context is cancelled.
async fn killed(conn: &Connection) {
    conn.context().cancelled().await;
}

async fn serve(
    guard: TaskGuard,
    wire: Arc<WireShared>,
    stream: TcpStream,
    peer: SocketAddr,
    refuse: Option<WireError>,
) {
    let state = guard.state.clone();
    let _ = stream.set_nodelay(true);
    let stream = Arc::new(stream);
    let transport = Arc::new(Transport::new(stream.clone()));
    let slot: ConnectionSlot = Arc::default();
    let (login_tx, login_rx) = oneshot::channel::<Connection>();
    let refuse = refuse.or_else(|| {
        state
            .shutting_down
            .load(Ordering::Acquire)
            .then(|| WireError::new(1053, "08S01", "Server shutdown in progress"))
    });
    let session = Session {
        state: state.clone(),
        wire: wire.clone(),
        stream: stream.clone(),
        transport: transport.clone(),
        peer,
        scramble: auth::scramble(),
        id: state.engine.reserve_connection_id(),
        conn: slot.clone(),
        login: Mutex::new(Some(login_tx)),
        refuse,
    };
    let mut reader = WireReader::new(
        transport.clone(),
        wire.clone(),
        state.config.max_packet_bytes,
    );
    let mut writer = WireWriter::new(transport, wire.clone());
    reader = reader.with_handshake(state.config.default_auth_plugin, state.tls.clone());
    if state.tls.is_some() {
        writer = writer.advertise_tls();
    }
    let reset_slot = slot.clone();
    reader.on_reset(move || {
        if let Some(conn) = slot_get(&reset_slot) {
            if let Err(e) = conn.reset() {
                tracing::warn!(connection = conn.id(), "COM_RESET_CONNECTION: {e}");
            }
        }
    });
    let mut run = tokio::spawn(async move {
        let opts = IntermediaryOptions::default();
        AsyncMysqlIntermediary::run_with_options(session, reader, writer, &opts).await
    });

    // Log in within the handshake timeout, then watch for a kill.
    let handshake = tokio::time::sleep(state.config.handshake_timeout);
    let mut ended = None;
    let conn = tokio::select! {
        biased;
        login = login_rx => login.ok(),
        r = &mut run => {
            ended = Some(r);
            None
        }
        () = handshake => {
            tracing::info!(%peer, "no login within {:?}: closing", state.config.handshake_timeout);
            wire.closer.close();
            None
        }
    };
    if let (Some(conn), None) = (&conn, &ended) {
        tokio::select! {
            r = &mut run => ended = Some(r),
            () = killed(conn) => {
                tracing::debug!(%peer, connection = conn.id(), "connection killed: closing at the next command");
                wire.closer.close();
            }
        }
    }
    let ended = match ended {
        Some(r) => r,
        None => run.await,
    };
    let clean = match &ended {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::debug!(%peer, "connection ended: {e}");
            false
        }
        Err(e) => {
            tracing::warn!(%peer, "connection task failed: {e}");
            false
        }
    };
    if let Some(conn) = slot_get(&slot) {
        if !clean {
            conn.disconnect();
        }
        conn.close().await;
        tracing::info!(%peer, connection = conn.id(), "closed");
    }
    drop(guard);
}
