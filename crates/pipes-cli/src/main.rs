//! `pipes`: the Pipes server and its operator commands.
#![forbid(unsafe_code)]

mod accounts;
mod config;
mod dev;
mod ops;
mod webhooks;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pipes_core::domain::AllowList;

/// glibc's allocator was a third of the instructions of a vending call under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Pipes: connect your users' third-party accounts, keep their tokens fresh and encrypted, and
/// hand your backend a valid credential in one call. Wire-compatible with WorkOS Pipes.
///
/// Configuration comes from defaults, then pipes.toml, then PIPES_* environment variables
/// (PIPES_LISTEN, PIPES_DATABASE_URL, PIPES_PUBLIC_URL, PIPES_VAULT_KEYS,
/// PIPES_REFRESH_MARGIN_SECONDS, PIPES_REFRESH_AHEAD_SECONDS, PIPES_REFRESH_CONCURRENCY,
/// PIPES_VEND_CACHE_MS, PIPES_EVENT_RETENTION_DAYS,
/// PIPES_WEBHOOK_RETRY_BASE_MS, PIPES_WEBHOOK_RETRY_MAX_SECONDS, PIPES_WEBHOOK_RETRY_HOURS,
/// PIPES_WEBHOOK_CONCURRENCY, PIPES_WORKER_POLL_MS, PIPES_EGRESS_ALLOW_CIDRS,
/// PIPES_EGRESS_TIMEOUT_SECONDS, PIPES_EGRESS_MAX_RESPONSE_KB, PIPES_MAX_CONNECTIONS,
/// PIPES_HEADER_TIMEOUT_SECONDS, PIPES_REQUEST_TIMEOUT_SECONDS, PIPES_MAX_BODY_KB,
/// PIPES_RATE_LIMIT_PER_KEY, PIPES_RATE_LIMIT_PER_ADDRESS, PIPES_TRUSTED_PROXY_CIDRS, PIPES_LOG,
/// PIPES_LOG_FORMAT); the README
/// describes each.
/// Operator commands work directly on the configured database; no running server is needed.
#[derive(Debug, Parser)]
#[command(name = "pipes", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    /// Configuration file (default: $PIPES_CONFIG, else ./pipes.toml when it exists).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server. Requires PIPES_VAULT_KEYS; migrates the database first.
    Serve,
    /// Run everything locally for development: SQLite under ./pipes-data, a generated
    /// development vault key, a `sandbox` environment and a ready API key, a mock OAuth
    /// provider with a `mock` integration to connect in a browser, then serve.
    Dev(dev::DevArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage environments (tenants such as sandbox and production).
    #[command(subcommand)]
    Env(ops::EnvCommand),
    /// Manage API keys. Keys are shown once, at creation, and stored only as a hash.
    #[command(subcommand)]
    Keys(ops::KeysCommand),
    /// Manage an environment's redirect URIs: the allowed `return_to` values of connection
    /// flows. https, or http on localhost/127.0.0.1/[::1], where any port matches.
    #[command(subcommand, name = "redirect-uris")]
    RedirectUris(ops::AllowListCommand),
    /// Manage the web origins whose pages may call the widget API from a browser (CORS), such
    /// as https://app.example.com. https, or http on localhost/127.0.0.1/[::1].
    #[command(subcommand)]
    Origins(ops::AllowListCommand),
    /// Manage the vault that seals every secret at rest.
    #[command(subcommand)]
    Vault(ops::VaultCommand),
    /// Inspect connected accounts (never their tokens).
    #[command(subcommand)]
    Accounts(accounts::AccountsCommand),
    /// Manage webhook endpoints, inspect their deliveries and redeliver events. Deliveries are
    /// sent by running servers; these commands only read and change the database.
    #[command(subcommand)]
    Webhooks(webhooks::WebhooksCommand),
    /// List the built-in provider catalog.
    Providers,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = config::Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => ops::serve(config).await,
        Command::Dev(args) => dev::run(config, args).await,
        Command::Migrate => ops::migrate(&config).await,
        Command::Env(cmd) => ops::env(&config, cmd).await,
        Command::Keys(cmd) => ops::keys(&config, cmd).await,
        Command::RedirectUris(cmd) => ops::allow_list(&config, AllowList::RedirectUris, cmd).await,
        Command::Origins(cmd) => ops::allow_list(&config, AllowList::WebOrigins, cmd).await,
        Command::Vault(cmd) => ops::vault(&config, cmd).await,
        Command::Webhooks(cmd) => webhooks::run(&config, cmd).await,
        Command::Accounts(cmd) => accounts::run(&config, cmd).await,
        Command::Providers => ops::providers(),
    }
}
