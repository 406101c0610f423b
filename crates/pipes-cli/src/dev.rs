//! `pipes dev`: everything a newcomer needs, in one command, on their own machine.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use clap::Args;
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
    ops::init_logging(&config);

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
    let envs = Environments::new(store);
    let (env, _) = envs.ensure(&args.env, false).await?;
    for uri in ["http://localhost", "http://127.0.0.1"] {
        envs.add_redirect_uri(&env, uri).await?;
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
