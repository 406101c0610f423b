//! The operator commands and `serve`.

use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use pipes_core::catalog::Catalog;
use pipes_core::domain::{AllowList, MembershipMode};
use pipes_core::services::{rotate_vault, Environments, RotationProgress, RotationReport};
use pipes_core::store::Store;
use pipes_core::time::format_ms;
use pipes_core::vault::Vault;
use pipes_server::App;

use crate::config::{Config, LogFormat};

#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Create an environment and print it with its client id.
    Create {
        /// Name: 1-63 characters of a-z, 0-9, '-' and '_'.
        name: String,
        /// A production environment: its API keys start with sk_live_ instead of sk_test_.
        #[arg(long)]
        production: bool,
    },
    /// List environments.
    List,
    /// Show an environment's connection settings, changing those given.
    Settings {
        /// The environment.
        name: String,
        /// Let an owner hold several connections to one provider (`connection_intent: add`).
        #[arg(long, value_name = "on|off")]
        multiple_connections: Option<Switch>,
        /// At most this many connections per owner and provider (1-1000; default 25).
        #[arg(long, value_name = "N")]
        connection_limit: Option<u32>,
        /// Where organization membership comes from: `trust` (the application vouches for the
        /// acting member on each call; members it ended are refused) or `registry` (only members
        /// declared active through PUT /pipes/organizations/{org}/memberships/{user} may act).
        #[arg(long, value_name = "trust|registry")]
        membership: Option<String>,
        /// The application's name in the widget's connect dialog ("" clears it).
        #[arg(long, value_name = "NAME")]
        team_name: Option<String>,
        /// The application's logo in the widget's connect dialog: an https URL ("" clears it).
        #[arg(long, value_name = "URL")]
        logo_url: Option<String>,
    },
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key. The key is printed once, alone on the last line of stdout.
    Create {
        /// The environment the key opens.
        #[arg(long = "env", value_name = "NAME")]
        env: String,
    },
    /// List an environment's keys (prefix only; the keys themselves are not stored).
    List {
        /// The environment.
        #[arg(long = "env", value_name = "NAME")]
        env: String,
    },
    /// Revoke a key by its id (key_…); it stops working at once.
    Revoke {
        /// The key id, as shown by `pipes keys list`.
        key_id: String,
    },
}

/// `pipes redirect-uris …` and `pipes origins …`: an environment's allow-lists.
#[derive(Debug, Subcommand)]
pub enum AllowListCommand {
    /// Add an entry; it is checked and stored normalized.
    Add {
        /// The environment.
        #[arg(long = "env", value_name = "NAME")]
        env: String,
        /// A redirect URI (https://app.example.com/pipes/done) or an origin (https://app.example.com).
        entry: String,
    },
    /// List the entries, oldest first.
    List {
        /// The environment.
        #[arg(long = "env", value_name = "NAME")]
        env: String,
    },
    /// Remove an entry.
    Remove {
        /// The environment.
        #[arg(long = "env", value_name = "NAME")]
        env: String,
        /// The entry, as listed.
        entry: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Re-seal every secret under the first key of PIPES_VAULT_KEYS. Safe while servers run:
    /// each value is replaced only if it did not change meanwhile. Afterwards old keys can be
    /// removed from PIPES_VAULT_KEYS.
    Rotate,
    /// Print a new random vault key entry (kid:base64key) to add to PIPES_VAULT_KEYS.
    GenerateKey {
        /// The key id (default: k + today's date, e.g. k20261122).
        #[arg(long)]
        kid: Option<String>,
    },
}

/// Sets up logging once per process.
pub fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(format!("{},sqlx=warn", config.log))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
    for var in Config::unknown_env_vars() {
        tracing::warn!(variable = %var, "unknown PIPES_* environment variable; is it misspelt?");
    }
}

/// Opens and migrates the configured database.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    pipes_store::open(&config.database_url)
        .await
        .map_err(|e| anyhow!("{e}"))
}

pub(crate) fn configured_vault(config: &Config) -> anyhow::Result<Vault> {
    let spec = config.vault_keys.as_deref().ok_or_else(|| {
        anyhow!(
            "PIPES_VAULT_KEYS is not set. Pipes seals every secret with it and will not start without one.\n\
             Generate a key with `pipes vault generate-key` and set PIPES_VAULT_KEYS=<that line>.\n\
             For local development, `pipes dev` generates one for you."
        )
    })?;
    Vault::from_spec(spec).map_err(|e| anyhow!("PIPES_VAULT_KEYS: {e}"))
}

fn catalog() -> anyhow::Result<&'static Catalog> {
    Catalog::builtin().map_err(|e| anyhow!("the built-in provider catalog is invalid: {e}"))
}

/// `pipes serve`.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    init_logging(&config);
    let _lock = lock_sqlite(&config)?;
    let vault = configured_vault(&config)?;
    let (listener, public_url) = bind(&config).await?;
    run_server(&config, vault, listener, &public_url).await
}

/// Binds the configured address; returns the listener and the public URL it serves.
pub async fn bind(config: &Config) -> anyhow::Result<(tokio::net::TcpListener, String)> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let public_url = config.public_url_for(listener.local_addr()?);
    Ok((listener, public_url))
}

/// SQLite serves one server process: the guard holds the database for this process.
pub fn lock_sqlite(config: &Config) -> anyhow::Result<Option<pipes_store::ServerLock>> {
    pipes_store::lock_for_server(&config.database_url).map_err(|e| anyhow!("{e}"))
}

/// Serves on a bound listener until SIGINT/SIGTERM.
pub async fn run_server(
    config: &Config,
    vault: Vault,
    listener: tokio::net::TcpListener,
    public_url: &str,
) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let settings = pipes_server::Settings {
        refresh: pipes_core::services::RefreshPolicy {
            max_margin: config.refresh_margin,
            cache_ttl: config.vend_cache,
            ..Default::default()
        },
        delivery: pipes_core::webhooks::DeliveryPolicy {
            poll: config.worker_poll,
            backoff_base: config.webhook_retry_base,
            backoff_max: config.webhook_retry_max,
            retry_for: config.webhook_retry_for,
            concurrency: config.webhook_concurrency,
            ..Default::default()
        },
        refresh_ahead: pipes_server::RefreshAheadPolicy {
            enabled: !config.refresh_ahead.is_zero(),
            ahead: config.refresh_ahead,
            every: config.worker_poll,
            per_provider: config.refresh_concurrency,
            ..Default::default()
        },
        janitor: pipes_server::JanitorPolicy {
            event_retention: config.event_retention,
            ..Default::default()
        },
        egress: config.egress.clone(),
        limits: config.limits.clone(),
    };
    let app = App::with_settings(store.clone(), vault, catalog()?, public_url, settings);
    let local = listener.local_addr()?;
    let open_files = pipes_server::raise_descriptor_limit();
    tracing::info!(
        listen = %local,
        public_url = %public_url,
        database = store.backend(),
        open_files,
        version = env!("CARGO_PKG_VERSION"),
        "pipes is serving"
    );
    pipes_server::serve(app, listener, shutdown_signal()).await?;
    tracing::info!("pipes stopped");
    Ok(())
}

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
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// `pipes migrate`.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = pipes_store::connect(&config.database_url)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let applied = store.migrate().await.map_err(|e| anyhow!("{e}"))?;
    if applied.is_empty() {
        println!(
            "database is up to date ({})",
            pipes_store::redact_url(&config.database_url)
        );
    } else {
        for name in applied {
            println!("applied {name}");
        }
    }
    Ok(())
}

async fn environments(config: &Config) -> anyhow::Result<Environments> {
    Ok(Environments::new(open_store(config).await?))
}

/// `pipes env …`.
pub async fn env(config: &Config, cmd: EnvCommand) -> anyhow::Result<()> {
    let envs = environments(config).await?;
    match cmd {
        EnvCommand::Create { name, production } => {
            let env = envs.create(&name, production).await?;
            println!(
                "created environment {} ({})",
                env.name,
                if env.production { "production" } else { "non-production" }
            );
            println!("id         {}", env.id);
            println!("client id  {}", env.client_id);
            println!("next: pipes keys create --env {}", env.name);
        }
        EnvCommand::List => {
            println!("{:<24} {:<12} {:<34} {:<32} created", "NAME", "KIND", "CLIENT ID", "ID");
            for env in envs.list().await? {
                println!(
                    "{:<24} {:<12} {:<34} {:<32} {}",
                    env.name.as_str(),
                    if env.production { "production" } else { "sandbox" },
                    env.client_id.to_string(),
                    env.id.to_string(),
                    format_ms(env.created_at)
                );
            }
        }
        EnvCommand::Settings {
            name,
            multiple_connections,
            connection_limit,
            membership,
            team_name,
            logo_url,
        } => {
            let mut settings = envs.by_name(&name).await?.settings;
            if let Some(team) = team_name {
                settings.team_name = Some(team).filter(|t| !t.is_empty());
            }
            if let Some(url) = logo_url {
                settings.logo_url = Some(url).filter(|u| !u.is_empty());
            }
            if let Some(on) = multiple_connections {
                settings.multiple_connections = matches!(on, Switch::On);
            }
            if let Some(limit) = connection_limit {
                settings.connection_limit = limit;
            }
            if let Some(mode) = membership {
                settings.membership = MembershipMode::parse(&mode)
                    .ok_or_else(|| anyhow!("--membership must be trust or registry, not '{mode}'"))?;
            }
            let env = envs.update_settings(&name, settings).await?;
            let s = env.settings;
            println!("environment           {}", env.name);
            println!(
                "multiple connections  {}",
                if s.multiple_connections { "on" } else { "off" }
            );
            println!("connection limit      {}", s.connection_limit);
            println!("membership            {}", s.membership.as_str());
            println!("team name             {}", s.team_name.as_deref().unwrap_or("-"));
            println!("logo URL              {}", s.logo_url.as_deref().unwrap_or("-"));
        }
    }
    Ok(())
}

/// `pipes keys …`.
pub async fn keys(config: &Config, cmd: KeysCommand) -> anyhow::Result<()> {
    let envs = environments(config).await?;
    match cmd {
        KeysCommand::Create { env } => {
            let env = envs.by_name(&env).await?;
            let key = envs.create_key(&env).await?;
            eprintln!("created API key {} for environment {}.", key.record.id, env.name);
            eprintln!("It is shown once and stored only as a hash: keep it now.");
            println!("{}", key.secret.expose());
        }
        KeysCommand::List { env } => {
            let env = envs.by_name(&env).await?;
            println!("{:<32} {:<18} {:<26} status", "ID", "PREFIX", "CREATED");
            for k in envs.list_keys(&env).await? {
                let status = k
                    .revoked_at
                    .map_or("active".to_owned(), |t| format!("revoked {}", format_ms(t)));
                println!(
                    "{:<32} {:<18} {:<26} {status}",
                    k.id.to_string(),
                    format!("{}…", k.prefix),
                    format_ms(k.created_at)
                );
            }
        }
        KeysCommand::Revoke { key_id } => {
            envs.revoke_key(&key_id).await?;
            println!("revoked {key_id}");
        }
    }
    Ok(())
}

/// `pipes redirect-uris …` and `pipes origins …`.
pub async fn allow_list(config: &Config, list: AllowList, cmd: AllowListCommand) -> anyhow::Result<()> {
    let envs = environments(config).await?;
    match cmd {
        AllowListCommand::Add { env, entry } => {
            let env = envs.by_name(&env).await?;
            let what = list.entry();
            if envs.allow(&env, list, &entry).await? {
                println!("added {what} {entry} to {}", env.name);
            } else {
                println!("{what} {entry} was already allowed for {}", env.name);
            }
        }
        AllowListCommand::List { env } => {
            let env = envs.by_name(&env).await?;
            for entry in envs.allowed(&env, list).await? {
                println!("{entry}");
            }
        }
        AllowListCommand::Remove { env, entry } => {
            let env = envs.by_name(&env).await?;
            envs.disallow(&env, list, &entry).await?;
            println!("removed {entry} from {}", env.name);
        }
    }
    Ok(())
}

/// `pipes vault …`.
pub async fn vault(config: &Config, cmd: VaultCommand) -> anyhow::Result<()> {
    match cmd {
        VaultCommand::GenerateKey { kid } => {
            let kid = kid.unwrap_or_else(|| format!("k{}", chrono_date()));
            println!("{}", Vault::generate_key_spec(&kid));
            Ok(())
        }
        VaultCommand::Rotate => rotate(config).await,
    }
}

fn chrono_date() -> String {
    format_ms(pipes_core::time::now_ms())[..10].replace('-', "")
}

async fn rotate(config: &Config) -> anyhow::Result<()> {
    let vault = configured_vault(config)?;
    let store = open_store(config).await?;
    let style = ProgressStyle::with_template("{msg:36} [{bar:40}] {pos}/{len} ({eta})")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let mut bar = ProgressBar::hidden();
    let report = rotate_vault(store.as_ref(), &vault, |step| match step {
        RotationProgress::Column { column, total } => {
            bar = ProgressBar::new(total)
                .with_message(column.purpose())
                .with_style(style.clone());
        }
        RotationProgress::Value => bar.inc(1),
        RotationProgress::ColumnDone => bar.finish(),
    })
    .await?;
    let RotationReport {
        resealed,
        current,
        raced,
        failures,
    } = report;
    println!(
        "re-sealed {resealed} value(s) under key '{}'; {current} already used it; {raced} changed during the run",
        vault.primary_kid()
    );
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("cannot open {f}");
        }
        bail!(
            "{} value(s) could not be opened with the configured keys; keep the old keys until they are fixed",
            failures.len()
        );
    }
    println!(
        "every sealed value now uses '{}': older keys can be removed from PIPES_VAULT_KEYS",
        vault.primary_kid()
    );
    Ok(())
}

/// `pipes providers`.
pub fn providers() -> anyhow::Result<()> {
    println!("{:<18} {:<20} {:<20} config fields", "SLUG", "NAME", "AUTH");
    let catalog = catalog()?;
    // One row per provider and authentication method (Salesforce also offers client credentials).
    for main in catalog.iter() {
        for p in catalog
            .auth_methods(&main.slug)
            .into_iter()
            .filter_map(|m| catalog.get_with(&main.slug, m))
        {
            let fields: Vec<&str> = p.config.iter().map(|f| f.key.as_str()).collect();
            println!(
                "{:<18} {:<20} {:<20} {}",
                p.slug,
                p.name,
                p.auth_method.as_str(),
                fields.join(", ")
            );
        }
    }
    Ok(())
}
