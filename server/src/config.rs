//! The server's settings: command-line flags, `ROOMCAST_*` environment variables and a TOML file,
//! in that order of precedence, over the defaults.
//!
//! Every flag `--some-flag` has the environment variable `ROOMCAST_SOME_FLAG` and the file key
//! `some_flag`. The file is merged by handing its entries to the same parser as the flags (each
//! entry that no flag or variable gave), so that a value means the same wherever it is written.
//! The one exception is `[[rooms]]`, the room policies: tables, written only in the file.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use roomcast_tokio::roomcast_core::{RoomPolicies, RoomPolicy};
use serde::{Serialize, Serializer};

#[derive(Parser, Debug)]
#[command(name = "roomcast", version, about = "Rooms & broadcasting for WebSocket applications")]
pub struct Cli {
    #[command(subcommand)]
    pub command: CliCommand,
}

#[derive(Subcommand, Debug)]
pub enum CliCommand {
    /// Run a server.
    Serve(Box<Serve>),
}

/// `roomcast serve`: every setting of a server.
#[derive(Args, Debug, Clone, Serialize)]
pub struct Serve {
    /// A TOML file holding any of these settings (keys are the flags' names with `_` for `-`).
    /// Flags and environment variables take precedence over it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print the settings in effect (flags, environment, file and defaults merged; secrets
    /// hidden) as JSON, and exit.
    #[arg(long)]
    #[serde(skip)]
    pub print_config: bool,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Require `authenticate` with an HS256 JWT signed with this secret (user id from `sub`,
    /// allowed rooms from an optional `rooms` claim, `exp` enforced). Anonymous mode without a
    /// JWT key or an authenticate proxy.
    #[arg(long, hide_env_values = true)]
    #[serde(serialize_with = "secret")]
    pub jwt_secret: Option<String>,
    /// Require `authenticate` with an RS256 or ES256 JWT, verified with this PEM public key
    /// (RSA or EC P-256) file.
    #[arg(long, conflicts_with = "jwt_secret")]
    pub jwt_public_key: Option<PathBuf>,
    /// Accept only tokens whose `aud` claim holds this audience.
    #[arg(long)]
    pub jwt_audience: Option<String>,
    /// Accept only tokens whose `iss` claim is this issuer.
    #[arg(long)]
    pub jwt_issuer: Option<String>,
    /// How long before its token's `exp` a connection is told to refresh it (`token_expiring`).
    #[arg(long, default_value = "30s", value_parser = duration)]
    #[serde(serialize_with = "human")]
    pub token_refresh_notice: Duration,

    /// Time a new connection has to authenticate.
    #[arg(long, default_value = "5s", value_parser = duration)]
    #[serde(serialize_with = "human")]
    pub auth_timeout: Duration,
    /// Time without a frame or pong before close 4002.
    #[arg(long, default_value = "30s", value_parser = duration)]
    #[serde(serialize_with = "human")]
    pub heartbeat_timeout: Duration,
    /// Time of silence before a connection is pinged.
    #[arg(long, default_value = "10s", value_parser = duration)]
    #[serde(serialize_with = "human")]
    pub ping_interval: Duration,
    /// Largest frame accepted, in bytes (larger: close 1009).
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_frame_bytes: usize,
    /// Rooms one connection may be in.
    #[arg(long, default_value_t = 100)]
    pub max_rooms_per_conn: usize,
    /// Longest room name, in bytes.
    #[arg(long, default_value_t = 256)]
    pub max_room_name_bytes: usize,
    /// Frames per second per connection (0: no limit).
    #[arg(long, default_value_t = 100)]
    pub rate_limit: u32,
    /// Frames a connection may send at once after a quiet period.
    #[arg(long, default_value_t = 200)]
    pub rate_burst: u32,
    /// Frames queued per connection before close 4005.
    #[arg(long, default_value_t = 1024)]
    pub queue_frames: usize,
    /// The most an HTTP request's line and headers may hold, in bytes (larger: 431).
    #[arg(long, default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,
    /// The most every connection's outbound buffer may hold together, in bytes: past it, the
    /// connections holding the most are closed with 4005 first.
    #[arg(long, default_value_t = 256 * 1024 * 1024)]
    pub max_queued_bytes: usize,
    /// Negotiate permessage-deflate (RFC 7692) with the clients that offer it: messages from
    /// `--compression-threshold` bytes up go out compressed, once per broadcast.
    #[arg(long)]
    pub compression: bool,
    /// Messages shorter than this many bytes go out uncompressed, even with `--compression`.
    #[arg(long, default_value_t = 256)]
    pub compression_threshold: usize,
    /// Threads a round's socket writes may be split over (rounds of 512 sockets and more, in
    /// parts of 256 at least): the cores the server may use.
    #[arg(long, default_value_t = 1)]
    pub write_threads: usize,
    /// Open connections past which an upgrade is refused with 503 (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub max_connections: usize,
    /// Origins browsers may connect from (`https://app.example.com`, `https://*.example.com`,
    /// or `*`), separated by commas; any origin when not given. Others get 403 at the upgrade.
    #[arg(long, value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Join other instances through Redis at this URL (`redis://host:port`); in-process bus
    /// (a single node) without it.
    #[arg(long, conflicts_with = "redis_cluster")]
    pub redis: Option<String>,
    /// Join other instances through a Redis Cluster (sharded pub/sub), given seed node URLs
    /// separated by commas.
    #[arg(long, value_delimiter = ',')]
    pub redis_cluster: Vec<String>,
    /// Tell the other members of a room who joins and leaves: `off`, `connections` (every
    /// connection) or `users` (a user's first session joins, last one leaves).
    #[arg(long, default_value = "off", value_parser = ["off", "connections", "users"])]
    pub presence_events: String,
    /// Rooms the presence notices apply to (patterns: `*` matches any run of characters); all rooms
    /// when not given.
    #[arg(long, value_delimiter = ',')]
    pub presence_rooms: Vec<String>,
    /// Replicate presence across instances (needs --redis or --redis-cluster): presence answers
    /// and notices cover every instance, and a crashed instance's members leave everywhere
    /// within --peer-timeout.
    #[arg(long)]
    pub cluster_presence: bool,
    /// How long an instance's lease (and heartbeat) lasts with cluster presence.
    #[arg(long, default_value = "10s", value_parser = duration)]
    #[serde(serialize_with = "human")]
    pub peer_timeout: Duration,
    /// Prefix of bus channels.
    #[arg(long, default_value = "ws")]
    pub channel_prefix: String,

    /// Who may join (and leave) a room that matches no `[[rooms]]` pattern by itself: `anyone`
    /// (within a token's `rooms` list, if it has one), `token` (only rooms its token lists), or
    /// `server` (only the server API puts connections in).
    #[arg(long, value_enum, default_value = "anyone")]
    pub default_join: Join,
    /// Who may publish into a room that matches no `[[rooms]]` pattern: `members`, `server`
    /// (only the server API), or `proxy` (members, each publish asked of --proxy-publish).
    /// Default: `proxy` with --proxy-publish, else `members`.
    #[arg(long, value_enum)]
    pub default_publish: Option<Publish>,
    /// Who may ask who is in a room that matches no `[[rooms]]` pattern: `members` or
    /// `server` (only the server API).
    #[arg(long, value_enum, default_value = "members")]
    pub default_presence: Presence,
    /// The room policies by pattern, from the file's `[[rooms]]` tables.
    #[arg(skip)]
    pub rooms: Vec<RoomRule>,

    /// Enable the HTTP API (`/api/...`: publish, send, queries, disconnects), for requests that
    /// carry `Authorization: Bearer KEY`. Disabled without it.
    #[arg(long, hide_env_values = true)]
    #[serde(serialize_with = "secret")]
    pub api_key: Option<String>,
    /// Largest request body the HTTP API accepts, in bytes (larger: 413).
    #[arg(long, default_value_t = 1024 * 1024)]
    pub api_max_body_bytes: usize,

    /// Decide `authenticate` frames by POSTing them to this URL (the authenticate proxy).
    #[arg(long, conflicts_with_all = ["jwt_secret", "jwt_public_key"])]
    pub proxy_authenticate: Option<String>,
    /// POST clients' own events to this URL (the RPC proxy): a request's answer is its reply.
    #[arg(long)]
    pub proxy_rpc: Option<String>,
    /// Ask this URL before a client's publish is fanned out (the publish proxy): a permission
    /// check, for the rooms whose policy says `publish = "proxy"` (by default, every room).
    #[arg(long)]
    pub proxy_publish: Option<String>,
    /// Headers of the upgrade request passed to the authenticate proxy, separated by commas.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "origin,user-agent,cookie,authorization,x-forwarded-for,x-real-ip"
    )]
    pub proxy_headers: Vec<String>,
    /// Time a proxy call may take.
    #[arg(long, default_value = "5s", value_parser = duration)]
    #[serde(serialize_with = "human")]
    pub proxy_timeout: Duration,
    /// Proxy calls in flight at once, per instance; more wait for a free slot (within the
    /// timeout).
    #[arg(long, default_value_t = 256)]
    pub proxy_concurrency: usize,
}

impl Serve {
    /// The policy of rooms that match no pattern.
    fn default_policy(&self) -> RoomPolicy {
        RoomPolicy {
            join: self.default_join.into(),
            publish: self.default_publish.unwrap_or(Publish::Members).into(),
            presence: self.default_presence.into(),
            history: None,
        }
    }

    /// Every room's policy.
    pub fn room_policies(&self) -> RoomPolicies {
        let mut policies = RoomPolicies::new(self.default_policy());
        for rule in &self.rooms {
            let default = self.default_policy();
            policies.set(
                &rule.pattern,
                RoomPolicy {
                    join: rule.join.map_or(default.join, Into::into),
                    publish: rule.publish.map_or(default.publish, Into::into),
                    presence: rule.presence.map_or(default.presence, Into::into),
                    // Checked when the settings were read (`settle`).
                    history: rule.history().ok().flatten(),
                },
            );
        }
        policies
    }

    /// Fills in what depends on other settings, and checks what only the whole can tell: each
    /// `[[rooms]]` rule is written out in full (so that `--print-config` shows what applies), and
    /// `proxy` publishing needs a publish proxy.
    fn settle(&mut self) -> Result<(), String> {
        let asked = self.default_publish.is_some();
        if !asked {
            let proxy = self.proxy_publish.is_some();
            self.default_publish = Some(if proxy { Publish::Proxy } else { Publish::Members });
        }
        let default = (self.default_join, self.default_publish, self.default_presence);
        for rule in &mut self.rooms {
            if rule.pattern.is_empty() {
                return Err("[[rooms]]: `pattern` must not be empty".into());
            }
            rule.join.get_or_insert(default.0);
            rule.publish = rule.publish.or(default.1);
            rule.presence.get_or_insert(default.2);
        }
        let proxied = std::iter::once(("the default (--default-publish)", self.default_publish))
            .chain(self.rooms.iter().map(|r| (r.pattern.as_str(), r.publish)))
            .find(|(_, publish)| *publish == Some(Publish::Proxy));
        if let (Some((pattern, _)), None) = (proxied, &self.proxy_publish) {
            return Err(format!(
                "room policy {pattern}: publish = \"proxy\" needs --proxy-publish URL"
            ));
        }
        for rule in &self.rooms {
            let kept = rule.history()?.is_some();
            if kept && (self.redis.is_some() || !self.redis_cluster.is_empty()) {
                return Err(format!(
                    "room policy {}: history is kept by one instance only for now: \
                     run without --redis, or without history_size",
                    rule.pattern
                ));
            }
        }
        Ok(())
    }
}

/// A secret, shown only as set or not.
fn secret<S: Serializer>(value: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    value.as_ref().map(|_| "<hidden>").serialize(s)
}

/// A duration, as people write it.
fn human<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
    humantime::format_duration(*value).to_string().serialize(s)
}

/// A duration as people write it (`5s`, `500ms`, `1m`, `1m30s`, `2h`), or plain seconds (`5`,
/// `0.5`).
pub fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("{text:?} is not a non-negative number of seconds"));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration like 5s, 500ms or 1m ({e})"))
}

/// Why the settings could not be read.
#[derive(Debug)]
pub enum ConfigError {
    /// The command line (or the environment): clap's own message, help and version included.
    Args(clap::Error),
    /// The config file.
    File(String),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Args(e) => write!(f, "{}", e.render()),
            Self::File(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Reads the command line (and the environment, and the config file it names).
pub fn parse() -> Result<Cli, ConfigError> {
    parse_from(std::env::args_os())
}

/// [`parse`] from these arguments (the first is the program's name).
pub fn parse_from(args: impl IntoIterator<Item = impl Into<OsString>>) -> Result<Cli, ConfigError> {
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let command = command();
    let matches = command.clone().try_get_matches_from(&args).map_err(ConfigError::Args)?;
    let path = match matches.subcommand() {
        Some(("serve", serve)) => serve.get_one::<PathBuf>("config").map(|p| (p.clone(), serve)),
        _ => None,
    };
    let Some((path, serve)) = path else {
        let mut cli = Cli::from_arg_matches(&matches).map_err(ConfigError::Args)?;
        let CliCommand::Serve(serve) = &mut cli.command;
        serve.settle().map_err(ConfigError::File)?;
        return Ok(cli);
    };
    let (extra, rooms) = file_arguments(&path, serve).map_err(ConfigError::File)?;
    let mut all = args;
    all.extend(extra);
    let matches = command.try_get_matches_from(&all).map_err(|e| {
        let message = e.render().to_string();
        let message = message.trim_start_matches("error: ").trim_end();
        ConfigError::File(format!("{}: {message}", path.display()))
    })?;
    let mut cli = Cli::from_arg_matches(&matches).map_err(ConfigError::Args)?;
    let CliCommand::Serve(serve) = &mut cli.command;
    serve.rooms = rooms;
    serve.settle().map_err(|e| ConfigError::File(format!("{}: {e}", path.display())))?;
    Ok(cli)
}

/// The command, each `serve` flag with its `ROOMCAST_*` environment variable.
fn command() -> clap::Command {
    Cli::command().mut_subcommand("serve", |serve| {
        serve.mut_args(|arg| {
            let name = format!("ROOMCAST_{}", arg.get_id().as_str().to_uppercase());
            arg.env(name)
        })
    })
}

/// The flags a config file adds (one per key that no flag or environment variable set), and its
/// `[[rooms]]` rules.
fn file_arguments(
    path: &Path,
    given: &ArgMatches,
) -> Result<(Vec<OsString>, Vec<RoomRule>), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    let mut table: toml::Table =
        text.parse().map_err(|e| format!("{}: not valid TOML: {e}", path.display()))?;
    let rooms = room_rules(table.remove("rooms"), path)?;
    let serve = command();
    let Some(flags) = serve.find_subcommand("serve") else { return Ok((Vec::new(), rooms)) };
    let mut extra = Vec::new();
    for (key, value) in table {
        let arg = flags
            .get_arguments()
            .find(|a| {
                a.get_id() == key.as_str()
                    && a.get_long().is_some()
                    && !matches!(key.as_str(), "config" | "print_config")
            })
            .ok_or_else(|| format!("{}: unknown key `{key}`", path.display()))?;
        let overridden = matches!(
            given.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        if overridden {
            continue;
        }
        let flag = format!("--{}", arg.get_long().unwrap_or(key.as_str()));
        let takes_value = arg.get_action().takes_values();
        push_arguments(&mut extra, &flag, takes_value, value)
            .map_err(|e| format!("{}: `{key}` {e}", path.display()))?;
    }
    Ok((extra, rooms))
}

/// The `[[rooms]]` tables of a config file.
fn room_rules(rules: Option<toml::Value>, path: &Path) -> Result<Vec<RoomRule>, String> {
    match rules {
        None => Ok(Vec::new()),
        Some(toml::Value::Array(rules)) => rules
            .into_iter()
            .enumerate()
            .map(|(i, rule)| {
                rule.try_into::<RoomRule>()
                    .map_err(|e| format!("{}: [[rooms]] number {}: {e}", path.display(), i + 1))
            })
            .collect(),
        Some(_) => Err(format!(
            "{}: `rooms` is a list of tables: write [[rooms]] sections",
            path.display()
        )),
    }
}

/// One key of the file as the flag's arguments (a list repeats the flag; `true` turns a switch
/// on); the error completes "`key` ...".
fn push_arguments(
    extra: &mut Vec<OsString>,
    flag: &str,
    takes_value: bool,
    value: toml::Value,
) -> Result<(), String> {
    let values = match value {
        toml::Value::Array(items) => items,
        single => vec![single],
    };
    for item in values {
        let text = match item {
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(x) => x.to_string(),
            toml::Value::Boolean(on) if !takes_value => {
                if on {
                    extra.push(OsString::from(flag));
                }
                continue;
            }
            other => return Err(format!("cannot be {} ({other:?})", other.type_str())),
        };
        if !takes_value {
            return Err("is a switch: write true or false".to_owned());
        }
        extra.push(OsString::from(format!("{flag}={text}")));
    }
    Ok(())
}

mod rooms;
pub use rooms::{Join, Presence, Publish, RoomRule};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
