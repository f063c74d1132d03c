//! Herald's one configuration: every setting of every binary, with its environment variable
//! and default, as clap arguments, so that `--help` documents it and docs/configuration.md's
//! table is generated from it ([`reference_table`]; a test keeps the page in step).

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use clap::{Args, CommandFactory, Parser, ValueEnum};
use herald_wire::{Destinations, WebhookSecret, names, webhooks::Host};

use crate::ControlError;

/// The default `DATABASE_URL`: the project-local cluster that `scripts/services up` starts.
pub const DEFAULT_DATABASE_URL: &str = "postgres://herald@127.0.0.1:55432/herald";

/// Where the services are. Every binary needs these; the defaults match the local services
/// that `scripts/services up` starts.
#[derive(Clone, Debug, Args)]
pub struct Config {
    /// PostgreSQL 15+ holding the ledger
    #[arg(long, global = true, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub database_url: String,
    /// The Temporal frontend, `host:port` or a URL
    #[arg(
        long,
        global = true,
        env = "TEMPORAL_ADDRESS",
        default_value = "127.0.0.1:7233"
    )]
    pub temporal_address: String,
    /// The Temporal namespace
    #[arg(
        long,
        global = true,
        env = "TEMPORAL_NAMESPACE",
        default_value = "default"
    )]
    pub temporal_namespace: String,
    /// The task queue that workers poll and campaigns are started on
    #[arg(long, global = true, env = "HERALD_TASK_QUEUE", default_value = names::DEFAULT_TASK_QUEUE)]
    pub task_queue: String,
    /// Compression on the Temporal connection; unset: none to a loopback address, gzip to any
    /// other
    #[arg(long, global = true, env = "HERALD_GRPC_COMPRESSION", value_enum)]
    pub grpc_compression: Option<Compression>,
    /// Workflow task timeout given to campaigns at launch (`5s`, `1500ms`; 1s–120s): how long
    /// a task held by a killed worker stalls its campaign, and the time a task may take
    /// across the network; 1s suits a Temporal server on the same machine
    #[arg(long, global = true, env = "HERALD_WORKFLOW_TASK_TIMEOUT", default_value = "5s", value_parser = parse_task_timeout)]
    pub workflow_task_timeout: Duration,
    /// The key that signs webhook requests: `whsec_` and the base64 of 24 to 64 random bytes,
    /// as the Standard Webhooks libraries read it (make one with
    /// `echo "whsec_$(openssl rand -base64 32)"`); webhook campaigns are refused at launch
    /// without it
    #[arg(
        long,
        global = true,
        env = "HERALD_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub webhook_secret: Option<String>,
    /// Where webhooks may go: host names (`*.example.com`), addresses, CIDR ranges and the
    /// words `public`, `private`, `loopback` and `*`, comma-separated; checked at launch and
    /// on every connection. The `host:port` of DATABASE_URL and TEMPORAL_ADDRESS are refused
    #[arg(
        long,
        global = true,
        env = "HERALD_WEBHOOK_ALLOW",
        default_value = "public",
        value_parser = parse_destinations
    )]
    pub webhook_allow: Destinations,
    /// The SMTP relay of e-mail campaigns: `smtp://host:port`, `?tls=required` for STARTTLS,
    /// `smtps://` for TLS, `user:password@` for credentials
    #[arg(long, global = true, env = "HERALD_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The sender of e-mail campaigns, e.g. `Herald <news@example.com>`
    #[arg(long, global = true, env = "HERALD_EMAIL_FROM")]
    pub email_from: Option<String>,
    /// Where recipients reach `herald-api` from the internet: the base of unsubscribe links
    /// (`https://herald.example.com`)
    #[arg(long, global = true, env = "HERALD_PUBLIC_URL", default_value = "http://127.0.0.1:8080", value_parser = parse_public_url)]
    pub public_url: String,
    /// The key of unsubscribe links (at least 16 characters); unset: one Herald makes once
    /// and keeps in the ledger. Changing it breaks the links already sent
    #[arg(
        long,
        global = true,
        env = "HERALD_UNSUBSCRIBE_SECRET",
        hide_env_values = true
    )]
    pub unsubscribe_secret: Option<String>,
    /// An address that unsubscribes whoever writes to it, added to every e-mail's
    /// `List-Unsubscribe` as a `mailto:` (Herald does not read that mailbox itself)
    #[arg(long, global = true, env = "HERALD_UNSUBSCRIBE_MAILTO")]
    pub unsubscribe_mailto: Option<String>,
    /// Suppress an e-mail address for good when its server says it does not exist (SMTP 550,
    /// 551 or 553 with an enhanced status of 5.1.x; a relay's own refusals, 5.7.x, do not)
    #[arg(long, global = true, env = "HERALD_SUPPRESS_BOUNCES", default_value_t = true, action = clap::ArgAction::Set)]
    pub suppress_bounces: bool,
}

/// An http(s) URL with a host and nothing after its path: unsubscribe links are made by
/// appending `/u/TOKEN`.
fn parse_public_url(s: &str) -> Result<String, String> {
    let url = url::Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{s:?} must be an http:// or https:// address"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{s:?} must not have a query or a fragment"));
    }
    // As parsed (an international host in ASCII, spaces encoded): it goes into headers.
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

impl Config {
    /// Refuse a channel this process has no settings for: workers share these settings, and
    /// a campaign launched without them would only fail on its first page.
    pub fn check_channel(&self, channel: herald_wire::Channel) -> Result<(), ControlError> {
        use herald_wire::Channel;
        let missing = |what: &str| Err(ControlError::Config(what.to_owned()));
        match channel {
            Channel::Inbox => Ok(()),
            Channel::Webhook if self.signing_secret()?.is_none() => missing(&format!(
                "HERALD_WEBHOOK_SECRET is not set: webhook requests are signed with it (make one with `{}`)",
                WebhookSecret::MAKE
            )),
            Channel::Webhook => Ok(()),
            Channel::Email => match (self.smtp_url.as_deref(), self.email_from.as_deref()) {
                (None, _) => missing(
                    "HERALD_SMTP_URL is not set: e-mail goes through that relay (e.g. smtp://127.0.0.1:2525)",
                ),
                (Some(url), _) if !(url.starts_with("smtp://") || url.starts_with("smtps://")) => {
                    missing("HERALD_SMTP_URL must start with smtp:// or smtps://")
                }
                (_, None) => missing(
                    "HERALD_EMAIL_FROM is not set: e-mail needs a sender (e.g. news@example.com)",
                ),
                (_, Some(from)) if !from.contains('@') => {
                    missing("HERALD_EMAIL_FROM is not an e-mail address")
                }
                _ => Ok(()),
            },
        }
    }
}

impl Config {
    /// Check the settings clap cannot check without echoing them: every binary calls this
    /// as it connects, so a bad secret stops it at start.
    pub fn check(&self) -> Result<(), ControlError> {
        self.signing_secret()?;
        if let Some(secret) = &self.unsubscribe_secret
            && secret.chars().count() < MIN_SECRET_LEN
        {
            return Err(ControlError::Config(format!(
                "HERALD_UNSUBSCRIBE_SECRET is {} characters; use at least {MIN_SECRET_LEN} (e.g. `openssl rand -hex 32`)",
                secret.chars().count()
            )));
        }
        if let Some(mailto) = &self.unsubscribe_mailto
            && (!mailto.contains('@') || mailto.contains(|c: char| c.is_whitespace() || c == '>'))
        {
            return Err(ControlError::Config(format!(
                "HERALD_UNSUBSCRIBE_MAILTO {mailto:?} is not an e-mail address"
            )));
        }
        Ok(())
    }

    /// The key of unsubscribe links: HERALD_UNSUBSCRIBE_SECRET, or the one kept in the
    /// ledger (made now if there is none yet).
    pub async fn unsubscribe_key(
        &self,
        pool: &herald_store::PgPool,
    ) -> Result<herald_wire::UnsubscribeKey, ControlError> {
        let secret = match self.unsubscribe_secret.as_deref().map(str::trim) {
            Some(s) if !s.is_empty() => s.to_owned(),
            _ => herald_store::consent::unsubscribe_secret(pool).await?,
        };
        Ok(herald_wire::UnsubscribeKey::new(secret.as_bytes()))
    }

    /// `HERALD_WEBHOOK_SECRET`, parsed (`None`: unset or empty).
    pub fn signing_secret(&self) -> Result<Option<WebhookSecret>, ControlError> {
        match self.webhook_secret.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(s) => WebhookSecret::parse(s)
                .map(Some)
                .map_err(|e| ControlError::Config(e.0)),
        }
    }

    /// Where webhooks may go: `HERALD_WEBHOOK_ALLOW`, refusing also the database's and
    /// Temporal's own `host:port`.
    pub fn destinations(&self) -> Destinations {
        let services = [
            (self.database_url.as_str(), 5432),
            (self.temporal_address.as_str(), 7233),
        ];
        services
            .into_iter()
            .flat_map(|(address, default_port)| service_hosts(address, default_port))
            .fold(self.webhook_allow.clone(), |d, (host, port)| {
                d.with_service(host, port)
            })
    }
}

/// The host and port of a service's address (`postgres://u@host:port/db`, `host:port`);
/// `localhost` as both its loopback addresses.
fn service_hosts(address: &str, default_port: u16) -> Vec<(Host, u16)> {
    let with_scheme = if address.contains("://") {
        address.to_owned()
    } else {
        format!("http://{address}")
    };
    let Ok(url) = url::Url::parse(&with_scheme) else {
        return Vec::new();
    };
    let port = url.port().unwrap_or(default_port);
    // A `postgres://` URL's host is opaque to the URL parser: an address stays text.
    let opaque_ip = match url.host() {
        Some(url::Host::Domain(d)) => d
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .ok(),
        _ => None,
    };
    if let Some(ip) = opaque_ip {
        return vec![(Host::Ip(ip), port)];
    }
    match url.host() {
        Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => vec![
            (Host::Ip(Ipv4Addr::LOCALHOST.into()), port),
            (Host::Ip(Ipv6Addr::LOCALHOST.into()), port),
        ],
        Some(url::Host::Domain(d)) => vec![(Host::Name(d.to_ascii_lowercase()), port)],
        Some(url::Host::Ipv4(a)) => vec![(Host::Ip(a.into()), port)],
        Some(url::Host::Ipv6(a)) => vec![(Host::Ip(a.into()), port)],
        None => Vec::new(),
    }
}

/// A duration as `5s`, `1500ms` or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit_ms) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1_000)
    } else {
        (s, 1_000)
    };
    let n: u64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 5s or 1500ms"))?;
    Ok(Duration::from_millis(n.saturating_mul(unit_ms)))
}

fn parse_destinations(s: &str) -> Result<Destinations, String> {
    Destinations::parse(s).map_err(|e| e.0)
}

fn parse_task_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(1) || d > Duration::from_secs(120) {
        return Err(format!(
            "{s:?} is outside 1s–120s, the range Temporal accepts"
        ));
    }
    Ok(d)
}

fn parse_shutdown_grace(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(1) {
        return Err(format!(
            "{s:?} is under 1s: in-flight pages need time to finish"
        ));
    }
    Ok(d)
}

fn parse_fault_delay(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d > Duration::from_secs(10) {
        return Err(format!("{s:?} is over 10s"));
    }
    Ok(d)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Compression {
    Gzip,
    None,
}

/// What the long-running servers (the worker and the API) share.
#[derive(Clone, Debug, Args)]
pub struct ServerConfig {
    /// Log filter (tracing's `EnvFilter` syntax)
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log: String,
    /// On SIGTERM, how long in-flight work may take to finish before the process exits
    /// anyway (`15s`): a worker refuses new pages at once and hands them to another worker;
    /// the API stops accepting connections and ends its event streams
    #[arg(long, env = "HERALD_SHUTDOWN_GRACE", default_value = "15s", value_parser = parse_shutdown_grace)]
    pub shutdown_grace: Duration,
}

/// The worker's configuration.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "herald-worker",
    version,
    about = "Runs Herald's campaign workflows and their page activities."
)]
pub struct WorkerConfig {
    #[command(flatten)]
    pub services: Config,
    #[command(flatten)]
    pub server: ServerConfig,
    /// Page statements one worker runs at once, across all its campaigns (two campaigns'
    /// worth at the default of 8 lanes; more wait their turn)
    #[arg(long, env = "HERALD_PAGE_CONNECTIONS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub page_connections: u32,
    /// The longest one webhook request or SMTP exchange may take (`10s`) before it counts as
    /// a failure worth retrying
    #[arg(long, env = "HERALD_SEND_TIMEOUT", default_value = "10s", value_parser = parse_send_timeout)]
    pub send_timeout: Duration,
    /// Webhook requests or e-mails in flight at once in one page (a campaign sends up to its
    /// lanes times this at once)
    #[arg(long, env = "HERALD_SEND_CONCURRENCY", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub send_concurrency: u32,
    /// Where the worker serves its Prometheus metrics (`/metrics`), `host:port`; unset: not
    /// served
    #[arg(long, env = "HERALD_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Apply pending database migrations on start, as `herald migrate` does (`false`:
    /// only check the schema and refuse to start if it is behind)
    #[arg(long, env = "HERALD_MIGRATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub migrate: bool,
    /// Testing only: every Nth page reports a failure after its commit
    #[arg(long, env = "HERALD_FAULT_FAIL_AFTER_COMMIT_EVERY")]
    pub fault_fail_after_commit_every: Option<u64>,
    /// Testing only: every status write of the workflow waits this long first (`500ms`)
    #[arg(long, env = "HERALD_FAULT_STATUS_DELAY", value_parser = parse_fault_delay)]
    pub fault_status_delay: Option<Duration>,
}

/// The HTTP API's configuration.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "herald-api",
    version,
    about = "Serves Herald's HTTP API: campaigns for services, the inbox for apps."
)]
pub struct ApiConfig {
    #[command(flatten)]
    pub services: Config,
    #[command(flatten)]
    pub server: ServerConfig,
    /// Where the HTTP API listens, `host:port`
    #[arg(long, env = "HERALD_API_ADDR", default_value = "127.0.0.1:8080")]
    pub api_addr: std::net::SocketAddr,
    /// Where the HTTP API also serves `/metrics` to anyone, without a key, `host:port` (an
    /// address only Prometheus reaches); unset: `/metrics` on HERALD_API_ADDR needs a key
    #[arg(long, env = "HERALD_API_METRICS_ADDR")]
    pub api_metrics_addr: Option<std::net::SocketAddr>,
    /// The bootstrap admin key of the HTTP API (at least 16 characters; `herald keys create`
    /// makes named keys with scopes); required unless HERALD_API_DEV allows none
    #[arg(long, env = "HERALD_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// The key of users' inbox tokens, HMAC-SHA256 of the user id (at least 16 characters);
    /// unset: only keys open an inbox
    #[arg(long, env = "HERALD_INBOX_SECRET", hide_env_values = true)]
    pub inbox_secret: Option<String>,
    /// Development only: serve without HERALD_API_TOKEN (every caller is an admin), allowed
    /// on a loopback address only
    #[arg(long, env = "HERALD_API_DEV", default_value_t = false, action = clap::ArgAction::Set)]
    pub api_dev: bool,
    /// PostgreSQL sessions the HTTP API keeps for apps' inbox requests, and as many for the rest; about what the database's cores run at once (more only lengthen the tail: docs/operations.md)
    #[arg(long, env = "HERALD_API_DB_CONNECTIONS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=512))]
    pub api_db_connections: u32,
    /// The Temporal web UI the dashboard links each campaign's workflow to
    #[arg(
        long,
        env = "HERALD_TEMPORAL_UI",
        default_value = "http://localhost:8233"
    )]
    pub temporal_ui: String,
    /// Event streams (live campaigns and lists, the dashboard's included) open at once; one
    /// more is answered 503 until another closes
    #[arg(long, env = "HERALD_API_MAX_STREAMS", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub api_max_streams: u32,
    /// Event streams one key (with the dashboard sessions signed in with it) may hold open
    /// at once; one more is answered 429
    #[arg(long, env = "HERALD_API_MAX_STREAMS_PER_KEY", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub api_max_streams_per_key: u32,
    /// The longest a request may take before it is answered 503 (`10s`); event streams are
    /// not limited
    #[arg(long, env = "HERALD_API_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_request_timeout)]
    pub api_request_timeout: Duration,
}

/// At most `SEND_TIMEOUT_MAX`, so that a page's last send ends inside its attempt's timeout.
fn parse_send_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    let max = herald_workflows::options::SEND_TIMEOUT_MAX;
    if d < Duration::from_secs(1) || d > max {
        return Err(format!(
            "{s:?} is outside 1s–{}s: a page's last send must end inside its attempt's timeout",
            max.as_secs()
        ));
    }
    Ok(d)
}

fn parse_request_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(1) || d > Duration::from_secs(300) {
        return Err(format!("{s:?} is outside 1s–300s"));
    }
    Ok(d)
}

/// The shortest token or secret the API accepts.
pub const MIN_SECRET_LEN: usize = 16;

impl ApiConfig {
    /// Refuse settings that would serve an open or guessable API.
    pub fn check(&self) -> Result<(), ControlError> {
        for (name, value) in [
            ("HERALD_API_TOKEN", &self.api_token),
            ("HERALD_INBOX_SECRET", &self.inbox_secret),
        ] {
            if let Some(v) = value
                && v.chars().count() < MIN_SECRET_LEN
            {
                return Err(ControlError::Config(format!(
                    "{name} is {} characters; use at least {MIN_SECRET_LEN} (e.g. `openssl rand -hex 32`)",
                    v.chars().count()
                )));
            }
        }
        if !(self.temporal_ui.starts_with("http://") || self.temporal_ui.starts_with("https://")) {
            return Err(ControlError::Config(format!(
                "HERALD_TEMPORAL_UI {:?} is not an http:// or https:// address",
                self.temporal_ui
            )));
        }
        if self.api_token.is_none() {
            if !self.api_dev {
                return Err(ControlError::Config(
                    "HERALD_API_TOKEN is not set: services authenticate with it; set it (e.g. `openssl rand -hex 32`), \
                     or for local development set HERALD_API_DEV=true on a loopback address"
                        .into(),
                ));
            }
            if !self.api_addr.ip().is_loopback() {
                return Err(ControlError::Config(format!(
                    "HERALD_API_DEV serves without a token only on a loopback address, not {}; set HERALD_API_TOKEN",
                    self.api_addr
                )));
            }
        }
        Ok(())
    }
}

/// The `herald` command's own settings, beside its subcommand's arguments.
#[derive(Clone, Debug, Args)]
pub struct CliConfig {
    #[command(flatten)]
    pub services: Config,
    /// Log filter (tracing's `EnvFilter` syntax)
    #[arg(
        long,
        global = true,
        env = "RUST_LOG",
        default_value = "warn,sqlx=error"
    )]
    pub log: String,
}

#[derive(Parser)]
#[command(name = "herald")]
struct CliOnly {
    #[command(flatten)]
    config: CliConfig,
}

impl Config {
    /// The services as the environment names them, for programs without arguments of their
    /// own (the integration tests).
    pub fn from_env() -> Result<Self, ControlError> {
        CliOnly::try_parse_from(["herald"])
            .map(|c| c.config.services)
            .map_err(|e| ControlError::Config(first_line(&e.to_string())))
    }
}

/// The one line of a clap error that says what is wrong.
pub fn first_line(rendered: &str) -> String {
    let lines: Vec<&str> = rendered
        .lines()
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("Usage:"))
        .map(str::trim)
        .collect();
    lines.join(" ").trim_start_matches("error: ").to_owned()
}

/// The configuration as a Markdown table: variable, default, meaning. The worker's and the
/// CLI's settings in one table; a default that differs between them says whose it is.
pub fn reference_table() -> String {
    struct Row {
        env: String,
        /// Each distinct default, with the binaries it belongs to.
        defaults: Vec<(String, Vec<&'static str>)>,
        help: String,
    }
    let mut rows: Vec<Row> = Vec::new();
    for (binary, command) in [
        ("worker", WorkerConfig::command()),
        ("herald", CliOnly::command()),
        ("api", ApiConfig::command()),
    ] {
        for arg in command.get_arguments() {
            let Some(env) = arg.get_env() else { continue };
            let env = env.to_string_lossy().into_owned();
            let default = arg
                .get_default_values()
                .first()
                .map(|d| format!("`{}`", d.to_string_lossy()))
                .unwrap_or_else(|| "unset".to_owned());
            match rows.iter_mut().find(|row| row.env == env) {
                Some(row) => match row.defaults.iter_mut().find(|(d, _)| *d == default) {
                    Some((_, binaries)) => binaries.push(binary),
                    None => row.defaults.push((default, vec![binary])),
                },
                None => rows.push(Row {
                    env,
                    defaults: vec![(default, vec![binary])],
                    help: arg
                        .get_help()
                        .map(|h| h.to_string().replace('\n', " "))
                        .unwrap_or_default(),
                }),
            }
        }
    }
    let mut table = String::from("| variable | default | meaning |\n|---|---|---|\n");
    for Row {
        env,
        defaults,
        help,
    } in rows
    {
        let default = match defaults.as_slice() {
            [(only, _)] => only.clone(),
            several => several
                .iter()
                .map(|(d, binaries)| format!("{d} ({})", binaries.join(", ")))
                .collect::<Vec<_>>()
                .join(", "),
        };
        table.push_str(&format!("| `{env}` | {default} | {help} |\n"));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_show_the_configuration_as_the_code_defines_it() {
        let docs = include_str!("../../docs/configuration.md");
        let table = reference_table();
        assert!(
            docs.contains(&table),
            "docs/configuration.md's table is out of date; it should read:\n{table}"
        );
    }

    #[test]
    fn herald_refuses_webhooks_to_its_own_services() {
        let config = WorkerConfig::try_parse_from([
            "herald-worker",
            "--database-url",
            "postgres://u:p@127.0.0.1:55432/herald",
            "--temporal-address",
            "localhost:7233",
        ])
        .unwrap()
        .services;
        let d = config.destinations();
        let everywhere = Destinations::parse("*").unwrap();
        assert!(
            everywhere
                .check(&Host::Ip("127.0.0.1".parse().unwrap()), 55432, &[])
                .is_ok()
        );
        for (ip, port) in [("127.0.0.1", 55432), ("127.0.0.1", 7233), ("::1", 7233)] {
            let host = Host::Ip(ip.parse().unwrap());
            assert!(d.refuse_service(&host, port).is_err(), "{ip}:{port}");
        }
        assert!(
            d.refuse_service(&Host::Ip("127.0.0.1".parse().unwrap()), 8080)
                .is_ok()
        );
    }

    #[test]
    fn durations_read_as_documented_and_out_of_range_is_refused() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(
            parse_duration("1.5s")
                .unwrap_err()
                .contains("like 5s or 1500ms")
        );
        assert!(parse_task_timeout("500ms").unwrap_err().contains("1s–120s"));
        assert!(parse_task_timeout("121s").is_err());
        assert_eq!(parse_task_timeout("1s"), Ok(Duration::from_secs(1)));
        assert!(parse_shutdown_grace("0s").is_err());
    }

    #[test]
    fn every_setting_has_a_default_or_says_it_is_unset() {
        let table = reference_table();
        for env in [
            "DATABASE_URL",
            "TEMPORAL_ADDRESS",
            "TEMPORAL_NAMESPACE",
            "HERALD_TASK_QUEUE",
            "HERALD_GRPC_COMPRESSION",
            "RUST_LOG",
            "HERALD_PAGE_CONNECTIONS",
            "HERALD_FAULT_FAIL_AFTER_COMMIT_EVERY",
        ] {
            assert!(
                table.contains(&format!("| `{env}` |")),
                "{env} missing:\n{table}"
            );
        }
        assert!(
            table.contains("`info` (worker, api), `warn,sqlx=error` (herald)"),
            "{table}"
        );
    }

    #[test]
    fn an_unknown_compression_is_refused_by_name() {
        let err = WorkerConfig::try_parse_from(["herald-worker", "--grpc-compression", "zstd"])
            .unwrap_err();
        assert!(first_line(&err.to_string()).contains("'zstd'"), "{err}");
    }
}
