//! Configuration from environment variables (flags mirror them), and the secrets the
//! server needs: given in production, generated once under the data folder in development.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use clap::Args;

/// Secrets shorter than this are refused: they would be guessable.
pub const MIN_SECRET_LEN: usize = 32;

#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// Database: sqlite://path or postgres://user@host/db.
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Address the HTTP server listens on.
    #[arg(long, env = "BIND", default_value = "127.0.0.1:8080", global = true)]
    pub bind: String,
    /// Public base URL of this server, used in webhook URLs (default: http://{BIND}).
    #[arg(long, env = "PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// Folder for the embedded database, development secrets and the admin token.
    #[arg(
        long,
        env = "CHECKOUT_CRM_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// `production` makes JWT_SECRET and CRM_SECRET_KEY mandatory.
    #[arg(
        long = "env",
        env = "CHECKOUT_CRM_ENV",
        default_value = "development",
        global = true
    )]
    pub environment: String,
    /// Database connections per process.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", global = true)]
    pub max_connections: Option<u32>,
    /// Requests handled at once; beyond it the server answers 503 at once.
    #[arg(
        long,
        env = "HTTP_MAX_CONCURRENCY",
        default_value_t = 512,
        global = true
    )]
    pub http_max_concurrency: usize,
    /// Seconds a request may take before it is answered 503.
    #[arg(
        long,
        env = "HTTP_REQUEST_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub http_request_timeout_secs: u64,
    /// Whether GraphQL introspection is enabled (`false` in locked-down production).
    #[arg(long, env = "GRAPHQL_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub graphql_introspection: bool,
    /// Seconds a client may take to send a request's line and headers; an idle
    /// keep-alive connection is closed after as long.
    #[arg(
        long,
        env = "HTTP_HEADER_TIMEOUT_SECS",
        default_value_t = 15,
        global = true
    )]
    pub http_header_timeout_secs: u64,
    /// Serve `/metrics` on this address only (for example a private interface), instead
    /// of on `BIND` beside the public webhook route.
    #[arg(long, env = "METRICS_BIND", global = true)]
    pub metrics_bind: Option<String>,
    /// A token `/metrics` beside the API requires (`Authorization: Bearer …`); without it
    /// only local, unproxied requests read it there.
    #[arg(long, env = "METRICS_TOKEN", global = true, hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Connections one client address may hold open; more are closed at once (trusted
    /// proxies are not bounded).
    #[arg(
        long,
        env = "HTTP_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 256,
        global = true
    )]
    pub http_max_connections_per_address: usize,
    /// Proxies (addresses or networks, comma-separated) whose `X-Forwarded-For` names the
    /// client; from any other peer the header is ignored.
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "", global = true)]
    pub trusted_proxies: String,
    /// Seconds a webhook body may take to arrive.
    #[arg(
        long,
        env = "WEBHOOK_BODY_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub webhook_body_timeout_secs: u64,
    /// Jobs processed at once by each worker process.
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 4, global = true)]
    pub worker_concurrency: usize,
    /// How often idle workers poll the queue, in milliseconds.
    #[arg(long, env = "WORKER_POLL_MS", default_value_t = 200, global = true)]
    pub worker_poll_ms: u64,
    /// Attempts before a delivery is marked FAILED.
    #[arg(long, env = "WORKER_MAX_ATTEMPTS", default_value_t = 8, global = true)]
    pub worker_max_attempts: i32,
    /// First retry delay in seconds (doubles each attempt).
    #[arg(long, env = "WORKER_BACKOFF_SECS", default_value_t = 5, global = true)]
    pub worker_backoff_secs: u64,
    /// Seconds between sweeps for pending deliveries whose job vanished.
    #[arg(long, env = "WORKER_SWEEP_SECS", default_value_t = 30, global = true)]
    pub worker_sweep_secs: u64,
    /// Seconds after which a pending delivery not waiting in the queue is re-enqueued.
    #[arg(long, env = "WORKER_STALE_SECS", default_value_t = 300, global = true)]
    pub worker_stale_secs: u64,
    /// Seconds between renewals of the lease a worker process holds on its claimed work.
    #[arg(
        long,
        env = "WORKER_HEARTBEAT_SECS",
        default_value_t = 5,
        global = true
    )]
    pub worker_heartbeat_secs: u64,
    /// Seconds without renewal after which another process takes a process's claimed work
    /// (it was killed or is frozen); at least two heartbeats.
    #[arg(long, env = "WORKER_LEASE_SECS", default_value_t = 15, global = true)]
    pub worker_lease_secs: u64,
    /// On SIGTERM/SIGINT, seconds the work in progress gets to finish before it is
    /// abandoned and handed back to the queue.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 20, global = true)]
    pub shutdown_grace_secs: u64,
    /// Allow `http://` outbound webhook URLs (https only otherwise).
    #[arg(long, env = "OUTBOUND_ALLOW_HTTP", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub outbound_allow_http: bool,
    /// Comma-separated networks outbound webhooks may reach although internal (a LAN).
    #[arg(
        long,
        env = "OUTBOUND_ALLOWED_CIDRS",
        default_value = "",
        global = true
    )]
    pub outbound_allowed_cidrs: String,
    /// Comma-separated seconds between an outbound message's attempts.
    #[arg(
        long,
        env = "OUTBOUND_RETRY_SCHEDULE",
        default_value = "5,300,1800,7200,18000,36000,36000",
        global = true
    )]
    pub outbound_retry_schedule: String,
    /// Base URL of the Hotmart REST API.
    #[arg(
        long,
        env = "HOTMART_API_URL",
        default_value = "https://developers.hotmart.com",
        global = true
    )]
    pub hotmart_api_url: String,
    /// Base URL of Kiwify's public API (its OAuth token endpoint and sales list).
    #[arg(
        long,
        env = "KIWIFY_API_URL",
        default_value = "https://public-api.kiwify.com/v1",
        global = true
    )]
    pub kiwify_api_url: String,
    /// Base URL of Hotmart's OAuth token endpoint.
    #[arg(
        long,
        env = "HOTMART_AUTH_URL",
        default_value = "https://api-sec-vlc.hotmart.com",
        global = true
    )]
    pub hotmart_auth_url: String,
    /// Requests per minute one set of Hotmart credentials may use (Hotmart allows 500).
    #[arg(
        long,
        env = "HOTMART_REQUESTS_PER_MINUTE",
        default_value_t = 480,
        value_parser = clap::value_parser!(u32).range(1..),
        global = true
    )]
    pub hotmart_requests_per_minute: u32,
}

/// Secrets are read from the environment only: flags would show in process lists.
const JWT_SECRET_VAR: &str = "JWT_SECRET";
const SECRET_KEY_VAR: &str = "CRM_SECRET_KEY";

#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub bind: String,
    pub public_url: String,
    pub data_dir: PathBuf,
    pub production: bool,
    pub max_connections: u32,
    pub hotmart_api_url: String,
    pub hotmart_auth_url: String,
    pub hotmart_requests_per_minute: u32,
    pub kiwify_api_url: String,
    pub jwt_secret: Vec<u8>,
    pub secret_key: Vec<u8>,
    pub workers: jobs::deliveries::WorkerSettings,
    pub webhook_body_timeout: std::time::Duration,
    pub http_max_concurrency: usize,
    pub http_request_timeout: std::time::Duration,
    pub http_header_timeout: std::time::Duration,
    /// Where `/metrics` is served when not on `bind`.
    pub metrics_bind: Option<String>,
    pub trusted_proxies: crate::client::TrustedProxies,
    pub http_max_connections_per_address: usize,
    pub metrics_token: Option<String>,
    pub graphql_introspection: bool,
    /// The process's counters (shared by its HTTP side and its workers).
    pub telemetry: jobs::telemetry::Telemetry,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("bind", &self.bind)
            .field("public_url", &self.public_url)
            .field("data_dir", &self.data_dir)
            .field("production", &self.production)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ConfigArgs {
    /// `PUBLIC_URL` without a trailing slash (default: `http://{BIND}`).
    fn public_url(&self) -> Result<String, ConfigError> {
        let public_url = self
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.bind))
            .trim_end_matches('/')
            .to_owned();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(ConfigError::Invalid(format!(
                "PUBLIC_URL must start with http:// or https://, got {public_url:?}"
            )));
        }
        Ok(public_url)
    }

    fn production(&self) -> Result<bool, ConfigError> {
        match self.environment.as_str() {
            "production" => Ok(true),
            "development" | "dev" | "test" => Ok(false),
            other => Err(ConfigError::Invalid(format!(
                "CHECKOUT_CRM_ENV must be `production` or `development`, not {other:?}"
            ))),
        }
    }

    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let production = self.production()?;
        let database_url = match &self.database_url {
            Some(url) if !url.trim().is_empty() => url.trim().to_owned(),
            _ => format!(
                "sqlite://{}",
                self.data_dir.join("checkout-crm.db").display()
            ),
        };
        let public_url = self.public_url()?;
        let max_connections =
            self.max_connections
                .unwrap_or(if database_url.starts_with("sqlite:") {
                    8
                } else {
                    16
                });
        let jwt_secret = secret(JWT_SECRET_VAR, "jwt_secret", production, &self.data_dir)?;
        let secret_key = secret(SECRET_KEY_VAR, "secret_key", production, &self.data_dir)?;
        Ok(Config {
            database_url,
            bind: self.bind.clone(),
            public_url,
            data_dir: self.data_dir.clone(),
            production,
            max_connections,
            hotmart_api_url: self.hotmart_api_url.trim_end_matches('/').to_owned(),
            hotmart_auth_url: self.hotmart_auth_url.trim_end_matches('/').to_owned(),
            hotmart_requests_per_minute: self.hotmart_requests_per_minute,
            kiwify_api_url: self.kiwify_api_url.trim_end_matches('/').to_owned(),
            jwt_secret,
            secret_key,
            workers: self.worker_settings()?,
            webhook_body_timeout: std::time::Duration::from_secs(
                self.webhook_body_timeout_secs.clamp(1, 600),
            ),
            http_max_concurrency: self.http_max_concurrency.clamp(1, 100_000),
            http_request_timeout: std::time::Duration::from_secs(
                self.http_request_timeout_secs.clamp(1, 3600),
            ),
            http_header_timeout: std::time::Duration::from_secs(
                self.http_header_timeout_secs.clamp(1, 600),
            ),
            metrics_bind: self.metrics_bind.clone().filter(|b| !b.trim().is_empty()),
            trusted_proxies: crate::client::TrustedProxies::parse(&self.trusted_proxies)
                .map_err(ConfigError::Invalid)?,
            metrics_token: self.metrics_token.clone().filter(|t| !t.trim().is_empty()),
            http_max_connections_per_address: self
                .http_max_connections_per_address
                .clamp(1, 100_000),
            graphql_introspection: self.graphql_introspection,
            telemetry: Default::default(),
        })
    }
}

impl Config {
    pub fn secret_keys(&self) -> entity::secrets::SecretKeys {
        entity::secrets::SecretKeys::new(&self.secret_key)
    }

    pub fn hotmart_endpoints(&self) -> jobs::deliveries::HotmartEndpoints {
        jobs::deliveries::HotmartEndpoints {
            api_url: self.hotmart_api_url.clone(),
            auth_url: self.hotmart_auth_url.clone(),
            requests_per_minute: self.hotmart_requests_per_minute as f64,
            kiwify_api_url: self.kiwify_api_url.clone(),
        }
    }
}

impl ConfigArgs {
    fn worker_settings(&self) -> Result<jobs::deliveries::WorkerSettings, ConfigError> {
        use std::time::Duration;
        let positive = |name: &str, value: u64| {
            if value == 0 {
                Err(ConfigError::Invalid(format!(
                    "{name} must be greater than 0"
                )))
            } else {
                Ok(value)
            }
        };
        if !(1..=100).contains(&self.worker_max_attempts) {
            return Err(ConfigError::Invalid(
                "WORKER_MAX_ATTEMPTS must be between 1 and 100".into(),
            ));
        }
        if !(1..=256).contains(&self.worker_concurrency) {
            return Err(ConfigError::Invalid(
                "WORKER_CONCURRENCY must be between 1 and 256".into(),
            ));
        }
        let heartbeat = positive("WORKER_HEARTBEAT_SECS", self.worker_heartbeat_secs)?;
        let lease = positive("WORKER_LEASE_SECS", self.worker_lease_secs)?;
        if lease < 2 * heartbeat {
            return Err(ConfigError::Invalid(format!(
                "WORKER_LEASE_SECS ({lease}) must be at least two heartbeats \
                 (WORKER_HEARTBEAT_SECS is {heartbeat})"
            )));
        }
        if self.shutdown_grace_secs > 3600 {
            return Err(ConfigError::Invalid(
                "SHUTDOWN_GRACE_SECS must be at most 3600".into(),
            ));
        }
        Ok(jobs::deliveries::WorkerSettings {
            max_attempts: self.worker_max_attempts,
            backoff_base: Duration::from_secs(positive(
                "WORKER_BACKOFF_SECS",
                self.worker_backoff_secs,
            )?),
            deadline: Duration::from_secs(60),
            poll_interval: Duration::from_millis(positive("WORKER_POLL_MS", self.worker_poll_ms)?),
            sweep_interval: Duration::from_secs(positive(
                "WORKER_SWEEP_SECS",
                self.worker_sweep_secs,
            )?),
            stale_after: Duration::from_secs(positive(
                "WORKER_STALE_SECS",
                self.worker_stale_secs,
            )?),
            concurrency: self.worker_concurrency,
            heartbeat: Duration::from_secs(heartbeat),
            lease: Duration::from_secs(lease),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
            outbound: self.outbound_settings()?,
        })
    }

    fn outbound_settings(&self) -> Result<jobs::outbound::OutboundSettings, ConfigError> {
        let allowed = jobs::outbound_net::AddressPolicy::parse_cidrs(&self.outbound_allowed_cidrs)
            .map_err(|e| ConfigError::Invalid(format!("OUTBOUND_ALLOWED_CIDRS: {e}")))?;
        let retry = entity::outbound::delivery::RetryPolicy {
            schedule_ms: parse_schedule(&self.outbound_retry_schedule)?,
            ..Default::default()
        };
        Ok(jobs::outbound::OutboundSettings {
            policy: std::sync::Arc::new(jobs::outbound_net::AddressPolicy {
                allow_http: self.outbound_allow_http,
                allowed,
            }),
            retry,
            ..Default::default()
        })
    }
}

/// `OUTBOUND_RETRY_SCHEDULE`: 1 to 20 delays, each 1 s to 7 days.
fn parse_schedule(text: &str) -> Result<Vec<i64>, ConfigError> {
    let invalid = |why: &str| {
        ConfigError::Invalid(format!(
            "OUTBOUND_RETRY_SCHEDULE must be 1 to 20 comma-separated seconds (1 to 604800): {why}"
        ))
    };
    let delays: Vec<i64> = text
        .split(',')
        .map(str::trim)
        .map(|part| match part.parse::<i64>() {
            Ok(secs) if (1..=604_800).contains(&secs) => Ok(secs * 1000),
            _ => Err(invalid(&format!("{part:?}"))),
        })
        .collect::<Result<_, _>>()?;
    if delays.is_empty() || delays.len() > 20 {
        return Err(invalid("wrong number of delays"));
    }
    Ok(delays)
}

/// A secret from the environment; in development, generated once into `data_dir/file`.
fn secret(
    var: &str,
    file: &str,
    production: bool,
    data_dir: &Path,
) -> Result<Vec<u8>, ConfigError> {
    if let Ok(value) = std::env::var(var) {
        if value.len() < MIN_SECRET_LEN {
            return Err(ConfigError::Invalid(format!(
                "{var} must be at least {MIN_SECRET_LEN} characters long"
            )));
        }
        return Ok(value.into_bytes());
    }
    if production {
        return Err(ConfigError::Invalid(format!(
            "{var} is required when CHECKOUT_CRM_ENV=production \
             (at least {MIN_SECRET_LEN} random characters, e.g. `openssl rand -base64 48`)"
        )));
    }
    let path = data_dir.join(file);
    let io = |source| ConfigError::Io {
        path: path.clone(),
        source,
    };
    match fs::read_to_string(&path) {
        Ok(stored) if stored.trim().len() >= MIN_SECRET_LEN => {
            Ok(stored.trim().as_bytes().to_vec())
        }
        Ok(_) => Err(ConfigError::Invalid(format!(
            "{} is too short; delete it to generate a new one",
            path.display()
        ))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            entity::database::create_private_dir(data_dir).map_err(io)?;
            let mut bytes = [0u8; 48];
            rand::fill(&mut bytes[..]);
            let value = URL_SAFE_NO_PAD.encode(bytes);
            write_private(&path, value.as_bytes()).map_err(io)?;
            Ok(value.into_bytes())
        }
        Err(err) => Err(io(err)),
    }
}

/// Writes a file readable only by its owner (mode 0600 on Unix).
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(contents)?;
    file.sync_all()
}

/// A database URL without its password, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_database_urls() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://./data/x.db"), "sqlite://./data/x.db");
    }

    #[test]
    fn retry_schedules_are_checked() {
        assert_eq!(
            parse_schedule("5, 300,1800").unwrap(),
            [5_000, 300_000, 1_800_000]
        );
        for bad in ["", "5,,6", "0", "-1", "5,abc", "604801", &"1,".repeat(21)] {
            let err = parse_schedule(bad).unwrap_err().to_string();
            assert!(err.contains("OUTBOUND_RETRY_SCHEDULE"), "{bad:?}: {err}");
        }
    }
}
