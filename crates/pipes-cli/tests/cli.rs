//! The `pipes` binary as an operator uses it.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};
use std::sync::Arc;

use pipes_core::catalog::Catalog;
use pipes_core::domain::Ownership;
use pipes_core::egress::{Egress, EgressPolicy};
use pipes_core::secret::SecretString;
use pipes_core::services::{CreateIntegration, CredentialsInput, Environments, Integrations};
use pipes_core::vault::{Sealed, SealedColumn, Vault};

struct Env {
    _dir: tempfile::TempDir,
    db: String,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("pipes.db").display());
        Self { _dir: dir, db }
    }

    fn run(&self, vault_keys: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipes"));
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("PIPES_")) {
            cmd.env_remove(k);
        }
        cmd.env("PIPES_DATABASE_URL", &self.db)
            .env("PIPES_LISTEN", "127.0.0.1:0")
            .args(args);
        if let Some(keys) = vault_keys {
            cmd.env("PIPES_VAULT_KEYS", keys);
        }
        cmd.output().unwrap()
    }

    fn ok(&self, vault_keys: Option<&str>, args: &[&str]) -> String {
        let out = self.run(vault_keys, args);
        assert!(
            out.status.success(),
            "pipes {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

#[test]
fn keys_are_printed_once_alone_on_the_last_line_and_revoke_works() {
    let env = Env::new();
    let created = env.ok(None, &["env", "create", "staging"]);
    assert!(created.contains("client id  client_"), "{created}");
    let out = env.ok(None, &["keys", "create", "--env", "staging"]);
    let key = out.lines().last().unwrap();
    assert!(key.starts_with("sk_test_") && key.len() == 48, "{out}");
    let list = env.ok(None, &["keys", "list", "--env", "staging"]);
    assert!(
        list.contains(&key[..14]) && !list.contains(key),
        "listing shows only the prefix"
    );
    let id = list
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    env.ok(None, &["keys", "revoke", &id]);
    assert!(env.ok(None, &["keys", "list", "--env", "staging"]).contains("revoked"));
    assert!(
        !env.run(None, &["keys", "revoke", &id]).status.success(),
        "revoking twice is an error"
    );

    env.ok(None, &["env", "create", "prod", "--production"]);
    let live = env.ok(None, &["keys", "create", "--env", "prod"]);
    assert!(live.lines().last().unwrap().starts_with("sk_live_"));
    assert!(
        !env.run(None, &["env", "create", "prod"]).status.success(),
        "duplicate names are refused"
    );
    assert!(!env.run(None, &["keys", "create", "--env", "missing"]).status.success());
}

#[test]
fn redirect_uris_are_validated() {
    let env = Env::new();
    env.ok(None, &["env", "create", "sandbox"]);
    env.ok(
        None,
        &["redirect-uris", "add", "--env", "sandbox", "https://app.example.com/cb"],
    );
    env.ok(
        None,
        &["redirect-uris", "add", "--env", "sandbox", "http://localhost:3000/cb"],
    );
    for bad in [
        "http://app.example.com/cb",
        "ftp://x/y",
        "not a url",
        "https://*.example.com/cb",
    ] {
        assert!(
            !env.run(None, &["redirect-uris", "add", "--env", "sandbox", bad])
                .status
                .success(),
            "{bad}"
        );
    }
    let list = env.ok(None, &["redirect-uris", "list", "--env", "sandbox"]);
    assert_eq!(list.lines().count(), 2, "{list}");
    env.ok(
        None,
        &[
            "redirect-uris",
            "remove",
            "--env",
            "sandbox",
            "https://app.example.com/cb",
        ],
    );
    assert_eq!(
        env.ok(None, &["redirect-uris", "list", "--env", "sandbox"])
            .lines()
            .count(),
        1
    );
}

#[test]
fn serve_refuses_to_start_without_a_vault_key() {
    let env = Env::new();
    let out = env.run(None, &["serve"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PIPES_VAULT_KEYS is not set"), "{err}");
    let out = env.run(Some("k1:not-base64"), &["serve"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PIPES_VAULT_KEYS"));
}

#[test]
fn every_command_has_help() {
    let env = Env::new();
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["dev", "--help"],
        vec!["migrate", "--help"],
        vec!["env", "create", "--help"],
        vec!["env", "list", "--help"],
        vec!["keys", "create", "--help"],
        vec!["keys", "list", "--help"],
        vec!["keys", "revoke", "--help"],
        vec!["redirect-uris", "add", "--help"],
        vec!["redirect-uris", "list", "--help"],
        vec!["redirect-uris", "remove", "--help"],
        vec!["vault", "rotate", "--help"],
        vec!["vault", "generate-key", "--help"],
        vec!["accounts", "show", "--help"],
        vec!["webhooks", "list", "--help"],
        vec!["webhooks", "create", "--help"],
        vec!["webhooks", "update", "--help"],
        vec!["webhooks", "delete", "--help"],
        vec!["webhooks", "deliveries", "--help"],
        vec!["webhooks", "redeliver", "--help"],
        vec!["providers", "--help"],
    ] {
        let help = env.ok(None, &args);
        assert!(help.contains("Usage: pipes"), "{args:?}: {help}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn vault_rotate_reseals_every_secret_under_the_first_key() {
    let env = Env::new();
    let old = Vault::generate_key_spec("old");
    let new = Vault::generate_key_spec("new");
    let store = pipes_store::open(&env.db).await.unwrap();
    let envs = Environments::new(store.clone());
    let tenant = envs.create("sandbox", false).await.unwrap();
    let integrations = Integrations::new(
        store.clone(),
        Vault::from_spec(&old).unwrap(),
        Catalog::builtin().unwrap(),
        Egress::new(EgressPolicy::default()),
    );
    for (i, slug) in ["github", "gitlab", "slack"].iter().enumerate() {
        integrations
            .create(&tenant, custom_app(slug, &format!("secret-{i}")))
            .await
            .unwrap();
    }
    let out = env.ok(Some(&format!("{new},{old}")), &["vault", "rotate"]);
    assert!(out.contains("re-sealed 3 value(s) under key 'new'"), "{out}");
    let again = env.ok(Some(&format!("{new},{old}")), &["vault", "rotate"]);
    assert!(
        again.contains("re-sealed 0 value(s)") && again.contains("3 already used it"),
        "{again}"
    );

    let only_new = Vault::from_spec(&new).unwrap();
    let col = SealedColumn::IntegrationClientSecret;
    let rows = Arc::clone(&store).sealed_values(col, None, 10).await.unwrap();
    assert_eq!(rows.len(), 3);
    let mut secrets: Vec<String> = rows
        .iter()
        .map(|r| {
            let aad = col.aad(&r.id);
            only_new
                .open_secret(&Sealed(r.sealed.clone()), aad)
                .unwrap()
                .expose()
                .to_owned()
        })
        .collect();
    secrets.sort();
    assert_eq!(secrets, vec!["secret-0", "secret-1", "secret-2"]);

    let out = env.run(Some(&Vault::generate_key_spec("unrelated")), &["vault", "rotate"]);
    assert!(
        !out.status.success(),
        "values sealed under a missing key are reported, not skipped"
    );
}

#[test]
fn a_second_server_on_the_same_sqlite_file_is_refused() {
    let env = Env::new();
    let keys = Vault::generate_key_spec("k");
    let mut first = Command::new(env!("CARGO_BIN_EXE_pipes"))
        .arg("serve")
        .env("PIPES_DATABASE_URL", &env.db)
        .env("PIPES_VAULT_KEYS", &keys)
        .env("PIPES_LISTEN", "127.0.0.1:0")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(first.stderr.take().unwrap()));
    assert!(
        lines.any(|l| l.unwrap().contains("pipes is serving")),
        "the first server starts"
    );
    let second = env.run(Some(&keys), &["serve"]);
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("another pipes server") && err.contains(&first.id().to_string()),
        "{err}"
    );
    assert!(err.contains("PostgreSQL"), "says how to run several: {err}");
    env.ok(None, &["env", "create", "while-serving"]);
    first.kill().unwrap();
    first.wait().unwrap();
}

#[test]
fn webhooks_are_managed_from_the_cli_and_their_secrets_rotate_with_the_vault() {
    let env = Env::new();
    let key = Vault::generate_key_spec("one");
    env.ok(Some(&key), &["env", "create", "sandbox"]);
    let created = env.ok(
        Some(&key),
        &[
            "webhooks",
            "create",
            "--env",
            "sandbox",
            "https://hooks.example.com/pipes",
            "--events",
            "pipes.connected_account.connected,pipes.connected_account.disconnected",
        ],
    );
    let secret = created.lines().last().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() == 38, "{created}");
    let id = created
        .split_whitespace()
        .find(|w| w.starts_with("we_"))
        .unwrap()
        .to_owned();
    let bad = env.run(
        Some(&key),
        &[
            "webhooks",
            "create",
            "--env",
            "sandbox",
            "http://hooks.example.com/x",
            "--events",
            "pipes.connected_account.connected",
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("https"), "a clear reason");

    let listed = env.ok(Some(&key), &["webhooks", "list", "--env", "sandbox"]);
    assert!(
        listed.contains(&id) && listed.contains("enabled") && !listed.contains(&secret),
        "{listed}"
    );
    let updated = env.ok(
        Some(&key),
        &["webhooks", "update", "--env", "sandbox", &id, "--disable"],
    );
    assert!(updated.contains("disabled"), "{updated}");
    let deliveries = env.ok(Some(&key), &["webhooks", "deliveries", "--env", "sandbox", &id]);
    assert!(deliveries.starts_with("EVENT"), "{deliveries}");
    let missing = env.run(
        Some(&key),
        &[
            "webhooks",
            "redeliver",
            "--env",
            "sandbox",
            &id,
            "event_01EHZNVPK3SFK441A1RGBFSHRT",
        ],
    );
    assert!(!missing.status.success());

    // The secret is sealed by the vault, and re-sealed by a rotation.
    let two = Vault::generate_key_spec("two");
    let rotated = env.ok(Some(&format!("{two},{key}")), &["vault", "rotate"]);
    assert!(rotated.contains("re-sealed 1 value(s)"), "{rotated}");
    let after = env.ok(Some(&two), &["webhooks", "update", "--env", "sandbox", &id, "--enable"]);
    assert!(after.contains("enabled"), "{after}");
    env.ok(Some(&two), &["webhooks", "delete", "--env", "sandbox", &id]);
    assert!(!env
        .ok(Some(&two), &["webhooks", "list", "--env", "sandbox"])
        .contains(&id));
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_show_reports_the_last_refresh_error_and_never_a_token() {
    let env = Env::new();
    let key = Vault::generate_key_spec("one");
    let vault = Vault::from_spec(&key).unwrap();
    let store = pipes_store::open(&env.db).await.unwrap();
    let tenant = Environments::new(store.clone()).create("sandbox", false).await.unwrap();
    let catalog = Catalog::builtin().unwrap();
    Integrations::new(
        store.clone(),
        vault.clone(),
        catalog,
        Egress::new(EgressPolicy::default()),
    )
    .create(&tenant, custom_app("github", "s"))
    .await
    .unwrap();
    let import = pipes_core::services::ImportAccount {
        tokens: pipes_core::services::PlainTokens {
            access: Some(SecretString::new("gho_secret_access")),
            refresh: Some(SecretString::new("ghr_secret_refresh")),
            expires_at: Some(1_893_456_000_000),
        },
        scopes: Some(vec!["repo".into()]),
        state: None,
        intent: pipes_core::services::Intent::Compatibility,
        labels: Default::default(),
    };
    let owner = pipes_core::services::OwnerInput {
        connection_owner: None,
        user_id: Some("user_1"),
        organization_id: None,
    }
    .parse(true)
    .unwrap();
    let deps = pipes_core::services::Deps {
        organizations: pipes_core::services::Organizations::new(store.clone(), vault.clone(), catalog),
        store: store.clone(),
        vault,
        catalog,
        oauth: pipes_core::oauth::OAuthClient::new(Egress::new(EgressPolicy::default())),
    };
    let (account, _) = pipes_core::services::Accounts::new(deps)
        .import(
            &tenant,
            &pipes_core::slug::Slug::parse("github").unwrap(),
            &owner,
            import,
        )
        .await
        .unwrap();
    assert!(store.take_refresh_lease(account.id, "w", 1, 2).await.unwrap().is_some());
    let error = pipes_core::domain::RefreshError {
        code: "server_error".into(),
        at: 1_768_478_400_000,
        failures: 2,
        retry_at: Some(1_768_478_460_000),
    };
    assert!(store
        .record_refresh_failure(account.id, "w", 0, &error, false, &[])
        .await
        .unwrap());

    let shown = env.ok(
        Some(&key),
        &["accounts", "show", "--env", "sandbox", &account.id.to_string()],
    );
    assert!(shown.contains("github"), "{shown}");
    assert!(shown.contains("connected") && shown.contains("user_1"), "{shown}");
    assert!(
        shown.contains("server_error at 2026-01-15T12:00:00.000Z (2 in a row; next try 2026-01-15T12:01:00.000Z)"),
        "{shown}"
    );
    assert!(shown.contains("held, expires 2030-01-01T00:00:00.000Z"), "{shown}");
    assert!(
        !shown.contains("gho_secret") && !shown.contains("ghr_secret"),
        "{shown}"
    );
    let missing = env.run(
        Some(&key),
        &["accounts", "show", "--env", "sandbox", "data_installation_nope"],
    );
    assert!(!missing.status.success());
}

/// A user-owned integration of a built-in provider with its own OAuth app.
fn custom_app(slug: &str, client_secret: &str) -> CreateIntegration {
    CreateIntegration {
        provider: pipes_core::slug::Slug::parse(slug).unwrap(),
        ownership: Ownership::User,
        auth_method: None,
        description: None,
        enabled: false,
        scopes: None,
        config: Default::default(),
        credentials: Some(CredentialsInput {
            kind: "custom".into(),
            client_id: Some("id".into()),
            client_secret: Some(SecretString::new(client_secret)),
        }),
        api_key: None,
        custom_provider: None,
    }
}
