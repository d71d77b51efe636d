//! One client session: the `opensrv-mysql` shim that logs a client in,
//! hands its statements to a [`cascade::Connection`] and writes the results
//! back in the text protocol.
//!
//! Conversion and glue only: what a statement means, who may KILL whom and
//! what a cancelled statement reports are the engine's rules.
//!
//! While a statement runs, nobody reads the socket, so the session watches
//! it ([`wire::peer_closed`]): a client that disconnects mid-query gets its
//! query cancelled at once (`Connection::disconnect`), and the connection
//! task then rolls back and closes on a cleanup context
//! (`Connection::close`).

use async_trait::async_trait;
use cascade::{ColumnInfo, Connection, DataType, Identity, QueryError, QueryResult, Value};
use opensrv_mysql::{
    AsyncMysqlShim, Column, ColumnFlags, ColumnType, ErrorKind, InitWriter, OkResponse,
    ParamParser, QueryResultWriter, StatementMetaWriter,
};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::auth;
use crate::listener::ServerState;
use crate::tls::Transport;
use crate::wire::{self, WireError, WireShared, PLACEHOLDER_CODE};

/// The engine connection of a session, once logged in; the connection task
/// keeps a handle too, to close it whatever way the session ends.
pub(crate) type ConnectionSlot = Arc<Mutex<Option<Connection>>>;

pub(crate) fn slot_get(slot: &ConnectionSlot) -> Option<Connection> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// The server version clients see. MySQL 8.0 wire behaviour; the suffix
/// says what it is.
pub const SERVER_VERSION: &str = concat!("8.0.36-cascade-", env!("CARGO_PKG_VERSION"));

pub(crate) struct Session {
    pub(crate) state: Arc<ServerState>,
    pub(crate) wire: Arc<WireShared>,
    pub(crate) stream: Arc<TcpStream>,
    /// The socket as the reader and writer see it (plain or TLS).
    pub(crate) transport: Arc<Transport>,
    pub(crate) peer: SocketAddr,
    pub(crate) scramble: [u8; 20],
    /// The connection id, reserved before the handshake announces it.
    pub(crate) id: u64,
    pub(crate) conn: ConnectionSlot,
    /// Tells the connection task who logged in.
    pub(crate) login: Mutex<Option<oneshot::Sender<Connection>>>,
    /// Refuse every login with this error (too many connections, shutting
    /// down).
    pub(crate) refuse: Option<WireError>,
}

/// MySQL 8's default authentication plugin.
pub const CACHING_SHA2_PASSWORD: &str = "caching_sha2_password";
/// MySQL 5's default authentication plugin.
pub const MYSQL_NATIVE_PASSWORD: &str = "mysql_native_password";

/// What writing a reply in place of the placeholder takes.
fn wire_error(e: &QueryError) -> WireError {
    WireError::new(e.code, e.sqlstate, e.message.clone())
}

/// The MySQL column type of an engine type.
pub fn column_type(ty: DataType) -> ColumnType {
    match ty {
        DataType::Int => ColumnType::MYSQL_TYPE_LONGLONG,
        DataType::Float => ColumnType::MYSQL_TYPE_DOUBLE,
        DataType::Text => ColumnType::MYSQL_TYPE_VAR_STRING,
        DataType::Date => ColumnType::MYSQL_TYPE_DATE,
        DataType::DateTime => ColumnType::MYSQL_TYPE_DATETIME,
        DataType::Time => ColumnType::MYSQL_TYPE_TIME,
        DataType::Decimal => ColumnType::MYSQL_TYPE_NEWDECIMAL,
        DataType::Null => ColumnType::MYSQL_TYPE_NULL,
    }
}

fn column(c: &ColumnInfo) -> Column {
    let colflags = match c.ty {
        DataType::Int | DataType::Float | DataType::Decimal => ColumnFlags::NUM_FLAG,
        // As MySQL flags its temporal columns.
        DataType::Date | DataType::DateTime | DataType::Time => ColumnFlags::BINARY_FLAG,
        DataType::Text | DataType::Null => ColumnFlags::empty(),
    };
    Column {
        table: String::new(),
        column: c.name.clone(),
        coltype: column_type(c.ty),
        colflags,
    }
}

impl Session {
    fn refuse_login(&self, e: WireError) -> bool {
        tracing::info!(peer = %self.peer, code = e.code, "login refused: {}", e.message);
        self.wire.queue_error(e);
        false
    }

    /// A failed password check: counted against the peer's address and
    /// logged with the login name and the peer, never the answer.
    fn failed_login(&self, username: &[u8], e: auth::LoginError) -> bool {
        let failures = self
            .state
            .throttle
            .failed(self.peer.ip(), std::time::Instant::now());
        tracing::warn!(
            peer = %self.peer,
            user = %String::from_utf8_lossy(username),
            failures,
            "login failed: {e}"
        );
        self.wire
            .queue_error(WireError::new(1045, "28000", e.to_string()));
        false
    }

    async fn reply_error<'a, W: AsyncWrite + Send + Unpin>(
        &self,
        e: WireError,
        results: QueryResultWriter<'a, W>,
    ) -> io::Result<()> {
        let msg = e.message.clone();
        self.wire.queue_error(e);
        results
            .error(ErrorKind::from(PLACEHOLDER_CODE), msg.as_bytes())
            .await
    }

    async fn write_result<'a, W: AsyncWrite + Send + Unpin>(
        r: QueryResult,
        results: QueryResultWriter<'a, W>,
    ) -> io::Result<()> {
        if r.columns.is_empty() {
            // The engine's usual message ("Query OK, 3 rows affected") is
            // what clients print from the OK packet themselves; MySQL's info
            // string is for extras ("Rows matched: …"), such as a KILL's
            // "statement 12 is not running on connection 5: nothing was
            // killed", so only those go there.
            let generic = format!("Query OK, {} rows affected", r.rows_affected);
            let info = r.message.filter(|m| *m != generic).unwrap_or_default();
            return results
                .completed(OkResponse {
                    affected_rows: r.rows_affected,
                    // (opensrv-mysql 0.7 writes 0 whatever this says.)
                    warnings: u16::try_from(r.warnings).unwrap_or(u16::MAX),
                    info,
                    ..Default::default()
                })
                .await;
        }
        let columns: Vec<Column> = r.columns.iter().map(column).collect();
        let mut rows = results.start(&columns).await?;
        let mut text = String::new();
        for row in &r.rows {
            for v in row {
                match v {
                    Value::Null => rows.write_col(None::<&str>)?,
                    Value::Text(s) => rows.write_col(&**s)?,
                    other => {
                        use std::fmt::Write;
                        text.clear();
                        let _ = write!(text, "{other}");
                        rows.write_col(text.as_str())?;
                    }
                }
            }
            rows.end_row().await?;
        }
        rows.finish().await
    }
}

#[async_trait]
impl<W: AsyncWrite + Send + Unpin> AsyncMysqlShim<W> for Session {
    type Error = io::Error;

    fn version(&self) -> String {
        SERVER_VERSION.to_owned()
    }

    /// The id reserved for this connection before the handshake, so a
    /// client that uses it (`mariadb`'s Ctrl-C sends `KILL QUERY <id>`)
    /// kills its own query.
    fn connect_id(&self) -> u32 {
        u32::try_from(self.id).unwrap_or(0)
    }

    fn salt(&self) -> [u8; 20] {
        self.scramble
    }

    /// `caching_sha2_password` (MySQL 8's default) unless the configuration
    /// says `mysql_native_password`; clients answer the greeting with that
    /// plugin's scramble (see [`crate::auth`]).
    fn default_auth_plugin(&self) -> &str {
        self.state.config.default_auth_plugin
    }

    /// The announced default, or `mysql_native_password` for a user
    /// configured with only a `password_sha1`. `opensrv` switches a client
    /// to it when the client's first answer was empty and named another
    /// plugin (as MySQL 8's libmysqlclient does when the greeting names a
    /// plugin other than its own default).
    async fn auth_plugin_for_username(&self, user: &[u8]) -> &str {
        let native_only = std::str::from_utf8(user)
            .ok()
            .and_then(auth::LoginName::parse)
            .and_then(|n| self.state.config.user(n.tenant, n.user))
            .is_some_and(|u| u.password_sha2.is_none());
        if native_only || self.state.config.default_auth_plugin == MYSQL_NATIVE_PASSWORD {
            MYSQL_NATIVE_PASSWORD
        } else {
            CACHING_SHA2_PASSWORD
        }
    }

    async fn authenticate(
        &self,
        _plugin: &str,
        username: &[u8],
        salt: &[u8],
        answer: &[u8],
    ) -> bool {
        if let Some(e) = &self.refuse {
            return self.refuse_login(e.clone());
        }
        if let Some(left) = self
            .state
            .throttle
            .blocked(self.peer.ip(), std::time::Instant::now())
        {
            tracing::warn!(peer = %self.peer, user = %String::from_utf8_lossy(username),
                "login refused: peer blocked after too many failed logins");
            return self.refuse_login(WireError::new(
                1129,
                "HY000",
                format!(
                    "Host '{}' is blocked because of many connection errors; try again in {} s",
                    self.peer.ip(),
                    left.as_secs().max(1)
                ),
            ));
        }
        if self.state.config.require_secure_transport && !self.transport.is_secure() {
            return self.refuse_login(WireError::new(
                3159,
                "HY000",
                "Connections using insecure transport are prohibited while --require_secure_transport=ON.",
            ));
        }
        // The plugin the client used shows in its answer's length (20 bytes
        // mysql_native_password, 32 caching_sha2_password).
        let login = match auth::login(&self.state.config, username, salt, answer) {
            Ok(l) => l,
            Err(e) => return self.failed_login(username, e),
        };
        self.state.throttle.succeeded(self.peer.ip());
        if answer.len() == auth::SHA2_ANSWER_LEN {
            self.wire.queue_fast_auth_ok();
        }
        let identity = Identity::new(&login.tenant, &login.user, &login.role);
        match self.state.engine.connect_with_id(identity, self.id) {
            Ok(conn) => {
                tracing::info!(peer = %self.peer, connection = conn.id(), login = %format!("{}:{}:{}", login.tenant, login.user, login.role),
                    tls = self.transport.cipher().as_deref().unwrap_or("no"), "logged in");
                *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn.clone());
                if let Some(tx) = self.login.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    let _ = tx.send(conn);
                }
                true
            }
            Err(e) => self.refuse_login(wire_error(&e)),
        }
    }

    async fn on_prepare<'a>(
        &'a mut self,
        _query: &'a str,
        info: StatementMetaWriter<'a, W>,
    ) -> io::Result<()> {
        let e = WireError::new(
            1295,
            "HY000",
            "This command is not supported in the prepared statement protocol yet: cascade-server speaks the text protocol",
        );
        let msg = e.message.clone();
        self.wire.queue_error(e);
        info.error(ErrorKind::from(PLACEHOLDER_CODE), msg.as_bytes())
            .await
    }

    async fn on_execute<'a>(
        &'a mut self,
        _id: u32,
        _params: ParamParser<'a>,
        results: QueryResultWriter<'a, W>,
    ) -> io::Result<()> {
        self.reply_error(
            WireError::new(1243, "HY000", "Unknown prepared statement handler"),
            results,
        )
        .await
    }

    async fn on_close<'a>(&'a mut self, _stmt: u32)
    where
        W: 'async_trait,
    {
    }

    async fn on_init<'a>(
        &'a mut self,
        schema: &'a str,
        writer: InitWriter<'a, W>,
    ) -> io::Result<()> {
        // cascade has one namespace per tenant; any schema name selects it.
        tracing::debug!(peer = %self.peer, schema, "USE");
        writer.ok().await
    }

    async fn on_query<'a>(
        &'a mut self,
        sql: &'a str,
        results: QueryResultWriter<'a, W>,
    ) -> io::Result<()> {
        let Some(conn) = slot_get(&self.conn) else {
            return self
                .reply_error(WireError::new(1045, "28000", "not logged in"), results)
                .await;
        };
        let exec = conn.execute(sql);
        let watch = wire::peer_closed(&self.stream);
        futures::pin_mut!(exec, watch);
        let outcome = match futures::future::select(exec, watch).await {
            futures::future::Either::Left((outcome, _)) => outcome,
            futures::future::Either::Right(((), exec)) => {
                tracing::info!(peer = %self.peer, connection = conn.id(), "client disconnected during a query: cancelling it");
                conn.disconnect();
                let _ = exec.await;
                return Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "client disconnected during a query",
                ));
            }
        };
        match outcome {
            Ok(r) => Self::write_result(r, results).await,
            Err(e) => {
                tracing::debug!(
                    connection = conn.id(),
                    code = e.code,
                    "statement failed: {}",
                    e.message
                );
                self.reply_error(wire_error(&e), results).await
            }
        }
    }
}
