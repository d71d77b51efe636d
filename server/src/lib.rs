//! # cascade-server
//!
//! A MySQL-wire server that embeds the [`cascade`] engine on tokio, so that
//! real MySQL clients (`mariadb`, `mysql`, pymysql, JDBC, …) can connect,
//! run queries, and `KILL` them from another connection.
//!
//! The protocol is `opensrv-mysql`'s; this crate is glue: it logs clients
//! in (`tenant:user[:role]`, users from a TOML [`ServerConfig`]), hands
//! statements to a [`cascade::Connection`], writes results in the text
//! protocol with MySQL column types, sends the engine's errors with their
//! MySQL codes and SQLSTATEs, cancels the query of a client that
//! disconnects, and shuts down gracefully.
//!
//! ```no_run
//! use cascade::{Engine, EngineConfig};
//! use cascade_server::{Server, ServerConfig, TokioHost};
//!
//! # async fn run() -> std::io::Result<()> {
//! let engine = Engine::new(EngineConfig::new(1, TokioHost::shared()));
//! let server = Server::bind(ServerConfig::default_local(), engine).await?;
//! let report = server.run_until(async { tokio::signal::ctrl_c().await.ok(); }).await;
//! assert_eq!(report.timed_out, 0);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod admin;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod host;
pub mod listener;
pub mod otlp;
mod session;
pub mod throttle;
pub mod tls;
pub mod wire;

pub use config::{ConfigError, ServerConfig, DEFAULT_CONFIG_TOML};
pub use host::TokioHost;
pub use listener::{Server, ShutdownReport};
pub use session::{column_type, SERVER_VERSION};
