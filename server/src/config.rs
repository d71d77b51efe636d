//! The server's configuration: where to listen, its limits, and the users
//! who may log in (tenant, name, password, roles), read from TOML.
//!
//! The default configuration for local use is `server/cascade-server.toml`,
//! built into the binary ([`ServerConfig::default_local`]).

use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::auth::{PasswordHash, Sha2Hash};

/// The text of the default configuration (`server/cascade-server.toml`).
pub const DEFAULT_CONFIG_TOML: &str = include_str!("../cascade-server.toml");

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML did not parse or had unknown or ill-typed keys.
    #[error("invalid configuration: {0}")]
    Toml(#[from] toml::de::Error),
    /// A value is out of range or contradicts another.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// One user who may log in.
#[derive(Clone, Debug)]
pub struct User {
    /// Tenant (MatrixOne's account).
    pub tenant: String,
    /// User name within the tenant.
    pub name: String,
    /// SHA1(SHA1(password)), what `mysql_native_password` checks against.
    pub password: PasswordHash,
    /// SHA256(SHA256(password)), what `caching_sha2_password` checks
    /// against; `None` for a user given only as `password_sha1`.
    pub password_sha2: Option<Sha2Hash>,
    /// The roles the user may log in with; the first is the default.
    pub roles: Vec<String>,
}

/// Everything the server needs to start.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Client connections served at once; one more gets error 1040.
    pub max_connections: usize,
    /// Largest client command accepted, in bytes.
    pub max_packet_bytes: usize,
    /// Time a client has to finish the login handshake.
    pub handshake_timeout: Duration,
    /// Time graceful shutdown waits for connections to close.
    pub shutdown_timeout: Duration,
    /// Spans the engine's in-memory trace recorder keeps (the oldest closed
    /// ones go first); its memory grows up to this bound and then stays.
    pub trace_spans: usize,
    /// How often the engine's background session (tenant `sys`, user
    /// `cascade`) trims the trace buffer; `None` runs no background session.
    pub background_every: Option<Duration>,
    /// Closed trace spans older than this are trimmed by the background
    /// session.
    pub trace_retention: Duration,
    /// Whether `sys`'s `admin` may read every tenant's data (naming a
    /// database `` `tenant:db` ``); off: it administers (process list,
    /// KILL) but sees only `sys`'s databases.
    pub admin_reads_all_tenants: bool,
    /// OTLP export of the engine's spans (`[otlp]`); `None`: no export.
    pub otlp: Option<crate::otlp::OtlpConfig>,
    /// TLS, when `tls_cert` and `tls_key` are set: the certificate and key
    /// loaded from those PEM files (see [`crate::tls`]).
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// Refuse logins that did not switch to TLS (MySQL error 3159).
    pub require_secure_transport: bool,
    /// Failed logins from one peer address before it is blocked (MySQL
    /// error 1129) until `login_failure_window` has passed; 0 turns the
    /// limit off. See [`crate::throttle`].
    pub max_login_failures: u32,
    /// The window over which failed logins are counted.
    pub login_failure_window: Duration,
    /// The authentication plugin the greeting announces:
    /// `caching_sha2_password` (MySQL 8's default) or
    /// `mysql_native_password`. Either way, answers of both are accepted.
    pub default_auth_plugin: &'static str,
    /// Pipelines per parallel stage (the engine's `cascade_threads`
    /// default); 0 in the file means the available cores.
    pub threads: usize,
    /// Per-tenant limits (`[tenants.NAME]`), handed to the engine.
    pub tenants: HashMap<String, cascade::TenantLimits>,
    /// The limits of tenants not listed (`[tenant_defaults]`; none by
    /// default).
    pub tenant_defaults: cascade::TenantLimits,
    /// More than one node (`[cluster]`, docs/cluster.md); `None`: a
    /// one-node server (node id 0 in connection ids).
    pub cluster: Option<crate::cluster::ClusterConfig>,
    users: HashMap<(String, String), User>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    server: FileServer,
    #[serde(default)]
    user: Vec<FileUser>,
    #[serde(default)]
    tenants: HashMap<String, FileTenant>,
    #[serde(default)]
    tenant_defaults: FileTenant,
    otlp: Option<FileOtlp>,
    cluster: Option<crate::cluster::FileCluster>,
}

/// `[tenants.NAME]` / `[tenant_defaults]`: every key optional (no limit).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileTenant {
    max_connections: Option<u64>,
    memory_budget: Option<ByteSize>,
    max_execution_time_ms: Option<u64>,
}

/// A size in bytes: an integer, or a string with a unit (`"256MiB"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum ByteSize {
    Bytes(u64),
    Text(String),
}

/// Bytes of `"256MiB"`, `"1 GiB"`, `"512k"`, `"1048576"`: binary units
/// (K/KB/KiB = 1024, as MySQL reads sizes), B for bytes.
fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

impl FileTenant {
    fn limits(self, where_: &str) -> Result<cascade::TenantLimits, ConfigError> {
        let memory_budget = match self.memory_budget {
            None => None,
            Some(ByteSize::Bytes(n)) => Some(n),
            Some(ByteSize::Text(t)) => Some(parse_bytes(&t).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "{where_}: memory_budget {t:?} is not a size (e.g. \"256MiB\", \"1GiB\", or bytes)"
                ))
            })?),
        };
        if memory_budget == Some(0) || self.max_connections == Some(0) {
            return Err(ConfigError::Invalid(format!(
                "{where_}: max_connections and memory_budget must be at least 1 (leave them out for no limit)"
            )));
        }
        Ok(cascade::TenantLimits {
            max_connections: self.max_connections,
            memory_budget,
            max_execution_time_ms: self.max_execution_time_ms.unwrap_or(0),
        })
    }
}

/// `[otlp]`: where the spans go.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOtlp {
    endpoint: String,
    #[serde(default = "default_service_name")]
    service_name: String,
    #[serde(default = "default_otlp_timeout")]
    timeout_secs: u64,
}

fn default_service_name() -> String {
    "cascade".into()
}
fn default_otlp_timeout() -> u64 {
    10
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileServer {
    #[serde(default = "default_listen")]
    listen: String,
    #[serde(default = "default_max_connections")]
    max_connections: usize,
    #[serde(default = "default_max_packet_bytes")]
    max_packet_bytes: usize,
    #[serde(default = "default_handshake_timeout")]
    handshake_timeout_secs: u64,
    #[serde(default = "default_shutdown_timeout")]
    shutdown_timeout_secs: u64,
    #[serde(default = "default_trace_spans")]
    trace_spans: usize,
    #[serde(default = "default_background_every")]
    background_every_secs: u64,
    #[serde(default = "default_trace_retention")]
    trace_retention_secs: u64,
    #[serde(default)]
    admin_reads_all_tenants: bool,
    #[serde(default)]
    tls_cert: Option<PathBuf>,
    #[serde(default)]
    tls_key: Option<PathBuf>,
    #[serde(default)]
    require_secure_transport: bool,
    #[serde(default = "default_max_login_failures")]
    max_login_failures: u32,
    #[serde(default = "default_login_failure_window")]
    login_failure_window_secs: u64,
    #[serde(default)]
    default_auth_plugin: Option<String>,
    #[serde(default)]
    threads: usize,
}

impl Default for FileServer {
    fn default() -> Self {
        FileServer {
            listen: default_listen(),
            max_connections: default_max_connections(),
            max_packet_bytes: default_max_packet_bytes(),
            handshake_timeout_secs: default_handshake_timeout(),
            shutdown_timeout_secs: default_shutdown_timeout(),
            trace_spans: default_trace_spans(),
            background_every_secs: default_background_every(),
            trace_retention_secs: default_trace_retention(),
            admin_reads_all_tenants: false,
            tls_cert: None,
            tls_key: None,
            require_secure_transport: false,
            max_login_failures: default_max_login_failures(),
            login_failure_window_secs: default_login_failure_window(),
            default_auth_plugin: None,
            threads: 0,
        }
    }
}

fn default_max_login_failures() -> u32 {
    10
}
fn default_login_failure_window() -> u64 {
    60
}

fn default_listen() -> String {
    "127.0.0.1:6001".into()
}
fn default_max_connections() -> usize {
    512
}
fn default_max_packet_bytes() -> usize {
    16 * 1024 * 1024
}
fn default_handshake_timeout() -> u64 {
    10
}
fn default_shutdown_timeout() -> u64 {
    10
}
fn default_trace_spans() -> usize {
    50_000
}
fn default_background_every() -> u64 {
    10
}
fn default_trace_retention() -> u64 {
    600
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUser {
    tenant: String,
    name: String,
    password: Option<String>,
    password_sha1: Option<String>,
    roles: Vec<String>,
}

impl ServerConfig {
    /// The built-in default configuration for local use.
    pub fn default_local() -> Self {
        // Invariant: DEFAULT_CONFIG_TOML is a compile-time constant that a
        // unit test of this module parses; it cannot fail at run time.
        Self::from_toml(DEFAULT_CONFIG_TOML).expect("the built-in configuration is valid")
    }

    /// Reads a TOML file; relative `tls_cert` / `tls_key` paths are
    /// relative to the file's directory.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, path.parent())
    }

    /// Parses TOML text; relative `tls_cert` / `tls_key` paths are relative
    /// to the working directory.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::parse(text, None)
    }

    fn parse(text: &str, base: Option<&Path>) -> Result<Self, ConfigError> {
        let file: FileConfig = toml::from_str(text)?;
        let resolve = |p: &PathBuf| match base {
            Some(b) if p.is_relative() => b.join(p),
            _ => p.clone(),
        };
        let tls = match (&file.server.tls_cert, &file.server.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::load_server_config(
                &resolve(cert),
                &resolve(key),
            )?),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid(
                    "give both tls_cert and tls_key, or neither".into(),
                ))
            }
        };
        let default_auth_plugin = match file.server.default_auth_plugin.as_deref() {
            None | Some("caching_sha2_password") => crate::session::CACHING_SHA2_PASSWORD,
            Some("mysql_native_password") => crate::session::MYSQL_NATIVE_PASSWORD,
            Some(other) => {
                return Err(ConfigError::Invalid(format!(
                "default_auth_plugin {other:?}: use caching_sha2_password or mysql_native_password"
            )))
            }
        };
        if file.server.require_secure_transport && tls.is_none() {
            return Err(ConfigError::Invalid(
                "require_secure_transport needs tls_cert and tls_key".into(),
            ));
        }
        let listen =
            file.server.listen.parse().map_err(|e| {
                ConfigError::Invalid(format!("listen {:?}: {e}", file.server.listen))
            })?;
        if file.server.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "max_connections must be at least 1".into(),
            ));
        }
        if file.server.max_packet_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "max_packet_bytes must be at least 1024".into(),
            ));
        }
        let otlp = match file.otlp {
            None => None,
            Some(o) => {
                let scheme_ok =
                    o.endpoint.starts_with("http://") || o.endpoint.starts_with("https://");
                if !scheme_ok {
                    return Err(ConfigError::Invalid(format!(
                        "otlp endpoint {:?}: expected http://host:port or https://host:port",
                        o.endpoint
                    )));
                }
                if o.service_name.is_empty() || o.timeout_secs == 0 {
                    return Err(ConfigError::Invalid(
                        "otlp service_name must be non-empty and timeout_secs at least 1".into(),
                    ));
                }
                Some(crate::otlp::OtlpConfig {
                    endpoint: o.endpoint,
                    service_name: o.service_name,
                    timeout: Duration::from_secs(o.timeout_secs),
                })
            }
        };
        let mut users = HashMap::new();
        for u in file.user {
            let where_ = format!("user {}:{}", u.tenant, u.name);
            if u.tenant.is_empty()
                || u.name.is_empty()
                || u.tenant.contains(':')
                || u.name.contains(':')
            {
                return Err(ConfigError::Invalid(format!(
                    "{where_}: tenant and name must be non-empty and contain no ':'"
                )));
            }
            if u.roles.is_empty() || u.roles.iter().any(|r| r.is_empty() || r.contains(':')) {
                return Err(ConfigError::Invalid(format!(
                    "{where_}: roles must be a non-empty list of names without ':'"
                )));
            }
            let (password, password_sha2) = match (u.password, u.password_sha1) {
                (Some(p), None) => (PasswordHash::from_plain(&p), Some(Sha2Hash::from_plain(&p))),
                (None, Some(h)) => (
                    PasswordHash::from_hex(&h).ok_or_else(|| {
                        ConfigError::Invalid(format!(
                            "{where_}: password_sha1 is not 40 hex digits"
                        ))
                    })?,
                    None,
                ),
                _ => {
                    return Err(ConfigError::Invalid(format!(
                        "{where_}: give exactly one of password and password_sha1"
                    )))
                }
            };
            let key = (u.tenant.clone(), u.name.clone());
            let user = User {
                tenant: u.tenant,
                name: u.name,
                password,
                password_sha2,
                roles: u.roles,
            };
            if users.insert(key, user).is_some() {
                return Err(ConfigError::Invalid(format!("{where_} is listed twice")));
            }
        }
        let mut tenants = HashMap::new();
        for (name, t) in file.tenants {
            if name.is_empty() || name.contains(':') {
                return Err(ConfigError::Invalid(format!(
                    "tenants.{name:?}: a tenant name is non-empty and contains no ':'"
                )));
            }
            let limits = t.limits(&format!("tenants.{name}"))?;
            tenants.insert(name, limits);
        }
        let tenant_defaults = file.tenant_defaults.limits("tenant_defaults")?;
        let cluster = file
            .cluster
            .map(crate::cluster::ClusterConfig::from_file)
            .transpose()?;
        Ok(ServerConfig {
            cluster,
            listen,
            tenants,
            tenant_defaults,
            max_connections: file.server.max_connections,
            max_packet_bytes: file.server.max_packet_bytes,
            handshake_timeout: Duration::from_secs(file.server.handshake_timeout_secs),
            shutdown_timeout: Duration::from_secs(file.server.shutdown_timeout_secs),
            trace_spans: file.server.trace_spans.max(1),
            background_every: (file.server.background_every_secs > 0)
                .then(|| Duration::from_secs(file.server.background_every_secs)),
            trace_retention: Duration::from_secs(file.server.trace_retention_secs),
            admin_reads_all_tenants: file.server.admin_reads_all_tenants,
            otlp,
            tls,
            require_secure_transport: file.server.require_secure_transport,
            max_login_failures: file.server.max_login_failures,
            login_failure_window: Duration::from_secs(file.server.login_failure_window_secs),
            default_auth_plugin,
            threads: match file.server.threads {
                0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                n => n.min(256),
            },
            users,
        })
    }

    /// The user `name` of `tenant`, if configured.
    pub fn user(&self, tenant: &str, name: &str) -> Option<&User> {
        self.users.get(&(tenant.to_owned(), name.to_owned()))
    }

    /// How many users are configured.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_parses_and_has_local_users() {
        let c = ServerConfig::default_local();
        assert_eq!(c.listen, "127.0.0.1:6001".parse().unwrap());
        let root = c.user("sys", "root").unwrap();
        assert_eq!(root.roles, ["admin"]);
        assert!(root.password.verify(&[0; 20], b""));
        assert!(c.user("acme", "alice").is_some());
        assert!(c.user("acme", "nobody").is_none());
        assert_eq!(c.background_every, Some(Duration::from_secs(10)));
        assert_eq!(c.trace_retention, Duration::from_secs(600));
        let off = ServerConfig::from_toml("[server]\nbackground_every_secs = 0").unwrap();
        assert_eq!(off.background_every, None);
        assert!(!c.admin_reads_all_tenants);
        let all = ServerConfig::from_toml("[server]\nadmin_reads_all_tenants = true").unwrap();
        assert!(all.admin_reads_all_tenants);
    }

    #[test]
    fn otlp_table_is_read_and_checked() {
        assert_eq!(ServerConfig::default_local().otlp, None);
        let c = ServerConfig::from_toml("[otlp]\nendpoint = \"http://127.0.0.1:4317\"").unwrap();
        let o = c.otlp.unwrap();
        assert_eq!(o.endpoint, "http://127.0.0.1:4317");
        assert_eq!(o.service_name, "cascade");
        assert_eq!(o.timeout, Duration::from_secs(10));
        let c = ServerConfig::from_toml(
            "[otlp]\nendpoint = \"https://c:4317\"\nservice_name = \"db-eu\"\ntimeout_secs = 2",
        )
        .unwrap();
        assert_eq!(c.otlp.unwrap().service_name, "db-eu");
        for bad in [
            "[otlp]\nendpoint = \"127.0.0.1:4317\"",
            "[otlp]\nendpoint = \"http://c\"\nservice_name = \"\"",
            "[otlp]\nendpoint = \"http://c\"\ntimeout_secs = 0",
        ] {
            let e = ServerConfig::from_toml(bad).unwrap_err();
            assert!(e.to_string().contains("otlp"), "{bad}: {e}");
        }
        assert!(ServerConfig::from_toml("[otlp]\nservice_name = \"x\"").is_err());
    }

    #[test]
    fn bad_configs_are_errors_naming_the_problem() {
        let e = ServerConfig::from_toml("[server]\nlisten = \"nope\"").unwrap_err();
        assert!(e.to_string().contains("listen"), "{e}");
        let e = ServerConfig::from_toml("[[user]]\ntenant=\"a\"\nname=\"b\"\nroles=[\"r\"]")
            .unwrap_err();
        assert!(e.to_string().contains("exactly one"), "{e}");
        let e =
            ServerConfig::from_toml("[[user]]\ntenant=\"a\"\nname=\"b\"\npassword=\"\"\nroles=[]")
                .unwrap_err();
        assert!(e.to_string().contains("roles"), "{e}");
        let e = ServerConfig::from_toml("bogus = 1").unwrap_err();
        assert!(matches!(e, ConfigError::Toml(_)), "{e}");
        let twice = "[[user]]\ntenant=\"a\"\nname=\"b\"\npassword=\"\"\nroles=[\"r\"]\n";
        let e = ServerConfig::from_toml(&format!("{twice}{twice}")).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
    }

    #[test]
    fn tls_settings_are_checked_at_startup() {
        let e = ServerConfig::from_toml(
            "[server]\ntls_cert = \"/nonexistent/c.pem\"\ntls_key = \"/nonexistent/k.pem\"",
        )
        .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/c.pem"), "{e}");
        let e = ServerConfig::from_toml("[server]\ntls_cert = \"c.pem\"").unwrap_err();
        assert!(e.to_string().contains("both tls_cert and tls_key"), "{e}");
        let e = ServerConfig::from_toml("[server]\nrequire_secure_transport = true").unwrap_err();
        assert!(e.to_string().contains("require_secure_transport"), "{e}");
        // Relative paths are the config file's neighbours.
        let dir = std::env::temp_dir().join(format!("cascade-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("server.toml");
        std::fs::write(&file, "[server]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"").unwrap();
        let e = ServerConfig::from_file(&file).unwrap_err();
        assert!(
            e.to_string()
                .contains(&*dir.join("c.pem").to_string_lossy()),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let c = ServerConfig::default_local();
        assert!(c.tls.is_none() && !c.require_secure_transport);
        assert_eq!(c.max_login_failures, 10);
        assert_eq!(c.login_failure_window, Duration::from_secs(60));
        assert_eq!(c.default_auth_plugin, "caching_sha2_password");
        let native =
            ServerConfig::from_toml("[server]\ndefault_auth_plugin = \"mysql_native_password\"")
                .unwrap();
        assert_eq!(native.default_auth_plugin, "mysql_native_password");
        let e = ServerConfig::from_toml("[server]\ndefault_auth_plugin = \"sha256_password\"")
            .unwrap_err();
        assert!(e.to_string().contains("default_auth_plugin"), "{e}");
    }

    #[test]
    fn tenant_limits_parse_with_units_and_bad_ones_are_named() {
        let c = ServerConfig::from_toml(
            "[tenants.acme]\nmax_connections = 2\nmemory_budget = \"256MiB\"\nmax_execution_time_ms = 5000\n\
             [tenants.globex]\nmemory_budget = 1048576\n\
             [tenant_defaults]\nmax_connections = 100\n",
        )
        .unwrap();
        let acme = &c.tenants["acme"];
        assert_eq!(acme.max_connections, Some(2));
        assert_eq!(acme.memory_budget, Some(256 << 20));
        assert_eq!(acme.max_execution_time_ms, 5000);
        assert_eq!(c.tenants["globex"].memory_budget, Some(1 << 20));
        assert_eq!(c.tenants["globex"].max_connections, None);
        assert_eq!(c.tenant_defaults.max_connections, Some(100));
        assert_eq!(c.tenant_defaults.memory_budget, None);
        assert_eq!(parse_bytes("1 GiB"), Some(1 << 30));
        assert_eq!(parse_bytes("512k"), Some(512 << 10));
        assert_eq!(parse_bytes("99999999999999TiB"), None);
        for (bad, what) in [
            ("[tenants.acme]\nmemory_budget = \"lots\"", "memory_budget"),
            ("[tenants.acme]\nmax_connections = 0", "at least 1"),
            ("[tenants.\"a:b\"]\nmax_connections = 1", "no ':'"),
        ] {
            let e = ServerConfig::from_toml(bad).unwrap_err();
            assert!(e.to_string().contains(what), "{bad}: {e}");
        }
        let e = ServerConfig::from_toml("[tenants.acme]\nmax_conections = 1").unwrap_err();
        assert!(matches!(e, ConfigError::Toml(_)), "{e}");
        assert!(ServerConfig::default_local().tenants.is_empty());
    }

    #[test]
    fn password_sha1_is_accepted() {
        // SHA1(SHA1("secret")), as MySQL stores it.
        let hex = PasswordHash::from_plain("secret").to_hex();
        let c = ServerConfig::from_toml(&format!(
            "[[user]]\ntenant=\"t\"\nname=\"u\"\npassword_sha1=\"{hex}\"\nroles=[\"member\"]"
        ))
        .unwrap();
        assert_eq!(
            c.user("t", "u").unwrap().password,
            PasswordHash::from_plain("secret")
        );
    }
}
