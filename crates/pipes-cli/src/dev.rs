//! `pipes dev`: everything a newcomer needs, in one command, on their own machine.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use clap::Args;
use pipes_core::domain::AllowList;
use pipes_core::egress::{Egress, EgressPolicy};
use pipes_core::services::Environments;
use pipes_core::vault::Vault;

use crate::config::{Config, DEFAULT_DATABASE_URL};
use crate::ops;

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Where the development database, vault key and API key are kept.
    #[arg(long, value_name = "DIR", default_value = "./pipes-data")]
    data_dir: PathBuf,
    /// Name of the environment to create and use.
    #[arg(long, value_name = "NAME", default_value = "sandbox")]
    env: String,
    /// Port of the built-in mock OAuth provider (a `mock` integration uses it, so you can click
    /// through a whole connection with no internet). 0 picks a free port.
    #[arg(long, value_name = "PORT", default_value_t = 8089)]
    mock_provider_port: u16,
    /// Do not start the mock provider.
    #[arg(long)]
    no_mock_provider: bool,
}

const MOCK_CLIENT_ID: &str = "pipes-dev-client";
const MOCK_CLIENT_SECRET: &str = "pipes-dev-secret";

/// Starts the mock provider and points the environment's `mock` integration at it.
async fn start_mock_provider(
    port: u16,
    integrations: &pipes_core::services::Integrations,
    env: &pipes_core::domain::Environment,
) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot start the mock provider on 127.0.0.1:{port} (use --mock-provider-port)"))?;
    let mock = pipes_mock_provider::MockProvider::serve(listener, MOCK_CLIENT_ID, MOCK_CLIENT_SECRET);
    use pipes_core::services::{CreateIntegration, CredentialsInput, CustomProviderInput, Patch, UpdateIntegration};
    let provider = || CustomProviderInput {
        name: Some("Mock Provider".into()),
        authorization_url: Patch::Value(format!("{}/authorize", mock.base_url)),
        token_url: Patch::Value(format!("{}/token", mock.base_url)),
        ..Default::default()
    };
    let credentials = || CredentialsInput {
        kind: "custom".into(),
        client_id: Some(MOCK_CLIENT_ID.into()),
        client_secret: Some(pipes_core::secret::SecretString::new(MOCK_CLIENT_SECRET)),
    };
    let (slug, ownership) = (
        pipes_core::slug::Slug::parse("mock")?,
        pipes_core::domain::Ownership::User,
    );
    match integrations.get(env, &slug, ownership).await {
        Ok(_) => {
            let update = UpdateIntegration {
                custom_provider: Some(provider()),
                credentials: Some(credentials()),
                ..Default::default()
            };
            integrations.update(env, &slug, ownership, update).await?;
        }
        Err(_) => {
            let create = CreateIntegration {
                provider: slug,
                ownership,
                auth_method: None,
                description: Some("A local OAuth provider for trying Pipes out; not a real service.".into()),
                enabled: true,
                scopes: Some(vec!["profile".into(), "email".into()]),
                config: Default::default(),
                credentials: Some(credentials()),
                api_key: None,
                custom_provider: Some(provider()),
            };
            integrations.create(env, create).await?;
        }
    }
    Ok(mock.base_url)
}

/// Writes a file readable only by its owner.
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

pub async fn run(mut config: Config, args: DevArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir).with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    if config.database_url == DEFAULT_DATABASE_URL {
        config.database_url = format!("sqlite://{}", args.data_dir.join("pipes.db").display());
    }
    // Development providers and webhook receivers run on this machine.
    config.egress.allow.extend(EgressPolicy::allowing_loopback().allow);
    ops::init_logging(&config);
    let _lock = ops::lock_sqlite(&config)?;

    let vault_spec = match &config.vault_keys {
        Some(spec) => spec.clone(),
        None => {
            let path = args.data_dir.join("dev-vault.key");
            let spec = match read_trimmed(&path) {
                Some(spec) => spec,
                None => {
                    let spec = Vault::generate_key_spec("dev");
                    write_private(&path, &spec)?;
                    spec
                }
            };
            eprintln!();
            eprintln!(
                "  !! DEVELOPMENT VAULT KEY: secrets are sealed with a key stored in {}.",
                path.display()
            );
            eprintln!("  !! Anyone who can read that file can read every token. Never use `pipes dev` in production;");
            eprintln!("  !! run `pipes serve` with PIPES_VAULT_KEYS from your secret manager instead.");
            eprintln!();
            spec
        }
    };
    let vault = Vault::from_spec(&vault_spec).map_err(|e| anyhow!("vault key: {e}"))?;

    let store = ops::open_store(&config).await?;
    let envs = Environments::new(store.clone());
    let (env, _) = envs.ensure(&args.env, false).await?;
    for uri in ["http://localhost", "http://127.0.0.1"] {
        envs.allow(&env, AllowList::RedirectUris, uri).await?;
    }
    let key_path = args.data_dir.join("dev-api-key");
    let key = match read_trimmed(&key_path) {
        Some(key) if envs.authenticate(&key).await?.is_some_and(|e| e.id == env.id) => key,
        _ => {
            let minted = envs.create_key(&env).await?;
            write_private(&key_path, minted.secret.expose())?;
            minted.secret.expose().to_owned()
        }
    };

    let (listener, url) = ops::bind(&config).await?;
    let bound = listener.local_addr()?;
    let catalog = pipes_core::catalog::Catalog::builtin().map_err(|e| anyhow!(e))?;
    let mock = if args.no_mock_provider {
        None
    } else {
        let integrations = pipes_core::services::Integrations::new(
            store.clone(),
            vault.clone(),
            catalog,
            Egress::new(config.egress.clone()),
        );
        Some(start_mock_provider(args.mock_provider_port, &integrations, &env).await?)
    };
    println!();
    println!("  Pipes is running for development");
    println!();
    println!("  API          {url}");
    println!("  environment  {} (client id {})", env.name, env.client_id);
    println!("  API key      {key}");
    println!("  database     {}", pipes_store::redact_url(&config.database_url));
    println!();
    println!("  try it:");
    println!("    curl -s {url}/data-integrations -H 'Authorization: Bearer {key}'");
    println!();
    if let Some(mock) = &mock {
        println!("  mock OAuth provider at {mock}, used by the `mock` integration. Connect an account:");
        println!(
            "    curl -s -X POST {url}/data-integrations/mock/authorize -H 'Authorization: Bearer {key}' \\\n      -H 'Content-Type: application/json' -d '{{\"user_id\":\"user_123\"}}'"
        );
        println!("    (open the \"url\" it returns in your browser and press Continue), then fetch a token:");
        println!(
            "    curl -s -X POST {url}/data-integrations/mock/token -H 'Authorization: Bearer {key}' \\\n      -H 'Content-Type: application/json' -d '{{\"user_id\":\"user_123\"}}'"
        );
        println!();
    }
    println!(
        "  Node:   new WorkOS('{key}', {{ apiHostname: '{}', port: {}, https: false }})",
        bound.ip(),
        bound.port()
    );
    println!(
        "  Python: WorkOSClient(api_key='{key}', client_id='{}', base_url='{url}')",
        env.client_id
    );
    println!();
    ops::run_server(&config, vault, listener, &url).await
}
