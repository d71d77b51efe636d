//! `cascade-server`: the MySQL-wire server binary.
//!
//! ```text
//! cascade-server [--listen ADDR] [--config FILE] [--max-connections N]
//!                [--print-default-config] [--help]
//! ```
//!
//! Logs go to stderr through `tracing-subscriber`; `CASCADE_LOG` sets the
//! filter (`info` by default; e.g. `debug`, or `cascade_server=debug,cascade=trace`).
//! With an `[otlp]` table in the config, the engine's spans are also
//! exported over OTLP/gRPC (whatever `CASCADE_LOG` says; docs/server.md).

use cascade::{Engine, EngineConfig};
use cascade_server::admin::{AdminService, GrpcPeers};
use cascade_server::cluster::Cluster;
use cascade_server::{Server, ServerConfig, TokioHost, DEFAULT_CONFIG_TOML};
use std::process::ExitCode;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

const USAGE: &str = "\
cascade-server: a MySQL-wire server embedding the cascade engine

USAGE:
    cascade-server [OPTIONS]

OPTIONS:
    --listen ADDR           address to listen on (default 127.0.0.1:6001, or the config's)
    --config FILE           TOML users/passwords/roles, limits, TLS (tls_cert, tls_key,
                            require_secure_transport) and the failed-login limit
                            (default: the built-in local config, see --print-default-config)
    --max-connections N     clients served at once; one more gets error 1040
    --print-default-config  print the built-in configuration and exit
    -h, --help              this text

Log in as tenant:user[:role], e.g.  mariadb -h 127.0.0.1 -P 6001 -u acme:alice:admin -palice
Logs: CASCADE_LOG=debug (tracing target filter). SIGINT/SIGTERM shut down gracefully.
";

struct Args {
    listen: Option<String>,
    config: Option<std::path::PathBuf>,
    max_connections: Option<usize>,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        listen: None,
        config: None,
        max_connections: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (a.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            "--print-default-config" => {
                print!("{DEFAULT_CONFIG_TOML}");
                return Ok(None);
            }
            "--listen" => args.listen = Some(value("--listen")?),
            "--config" => args.config = Some(value("--config")?.into()),
            "--max-connections" => {
                let v = value("--max-connections")?;
                let n: usize = v
                    .parse()
                    .map_err(|_| format!("--max-connections {v:?} is not a number"))?;
                if n == 0 {
                    return Err("--max-connections must be at least 1".into());
                }
                args.max_connections = Some(n);
            }
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    Ok(Some(args))
}

fn init_logging(export: Option<cascade_server::otlp::SpanExport>) {
    let filter: Targets = std::env::var("CASCADE_LOG")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    // Each layer filters for itself: the export sees the engine's spans
    // even when the log shows only warnings.
    let export =
        export.map(|e| e.with_filter(Targets::new().with_target("cascade", tracing::Level::INFO)));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_filter(filter),
        )
        .with(export)
        .init();
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = futures::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}

/// The cluster endpoint with the admin service (KILL routing, the
/// cluster process list) behind its server layer.
fn with_admin(
    mut endpoint: cascade_server::cluster::Endpoint,
    engine: &Engine,
) -> cascade_server::cluster::Endpoint {
    endpoint.router = endpoint
        .router
        .add_service(AdminService::new(engine.clone()).into_server());
    endpoint
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cascade-server: {e}");
            return ExitCode::from(2);
        }
    };
    let mut config = match &args.config {
        Some(path) => match ServerConfig::from_file(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("cascade-server: {e}");
                return ExitCode::from(2);
            }
        },
        None => ServerConfig::default_local(),
    };
    if let Some(l) = &args.listen {
        match l.parse() {
            Ok(a) => config.listen = a,
            Err(e) => {
                eprintln!("cascade-server: --listen {l:?}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if let Some(n) = args.max_connections {
        config.max_connections = n;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cascade-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The OTLP exporter's gRPC channel lives on the runtime.
    let otlp = match &config.otlp {
        Some(o) => {
            let _in_runtime = runtime.enter();
            match cascade_server::otlp::start(o) {
                Ok(started) => Some(started),
                Err(e) => {
                    eprintln!("cascade-server: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        None => None,
    };
    let (export, otlp_guard) = match otlp {
        Some((export, guard)) => (Some(export), Some(guard)),
        None => (None, None),
    };
    init_logging(export);
    if let Some(o) = &config.otlp {
        tracing::info!(endpoint = %o.endpoint, service = %o.service_name, "exporting spans over OTLP");
    }
    let code = runtime.block_on(async move {
        // With [cluster]: this node's id, and the transport to its peers.
        let cluster = match config.cluster.clone().map(Cluster::new).transpose() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::from(2);
            }
        };
        let node_id = cluster.as_ref().map_or(1, |c| c.config().node_id);
        let mut engine_config = EngineConfig::new(node_id, TokioHost::shared());
        engine_config.nodes = cluster.as_ref().map(Cluster::nodes);
        // Connection ids carry the node id (KILL <id> on any node reaches
        // the owner); a one-node server keeps 1, 2, 3, ….
        engine_config.global_connection_ids = cluster.is_some();
        engine_config.trace_capacity = config.trace_spans;
        engine_config.admin_reads_all_tenants = config.admin_reads_all_tenants;
        engine_config.threads = config.threads;
        engine_config.tenants = config.tenants.clone();
        engine_config.default_tenant_limits = config.tenant_defaults.clone();
        let engine = Engine::new(engine_config);
        if let Some(c) = &cluster {
            engine.set_peer_admin(std::sync::Arc::new(GrpcPeers::from_cluster(c)));
        }
        let (stop_endpoint, endpoint_stopped) = tokio::sync::oneshot::channel::<()>();
        let endpoint_task = match &cluster {
            Some(c) => match with_admin(c.endpoint(&engine), &engine)
                .serve(async move {
                    let _ = endpoint_stopped.await;
                })
                .await
            {
                Ok((addr, task)) => {
                    tracing::info!(node = c.config().node_id, %addr, peers = c.config().peers.len(), "cluster endpoint listening");
                    Some(task)
                }
                Err(e) => {
                    tracing::error!("cannot listen on {}: {e}", c.config().grpc_listen);
                    return ExitCode::FAILURE;
                }
            },
            None => None,
        };
        let server = match Server::bind(config.clone(), engine).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot listen on {}: {e}", config.listen);
                return ExitCode::FAILURE;
            }
        };
        let report = server.run_until(shutdown_signal()).await;
        let _ = stop_endpoint.send(());
        if let Some(t) = endpoint_task {
            let _ = t.await;
        }
        tracing::info!(
            connections = report.connections,
            timed_out = report.timed_out,
            "bye"
        );
        ExitCode::SUCCESS
    });
    // Flush the spans still queued; the runtime still drives the channel.
    if let Some(g) = otlp_guard {
        g.shutdown();
    }
    code
}
