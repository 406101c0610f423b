//! `pipes accounts`: what Pipes knows about one connection, without its tokens.

use anyhow::{anyhow, bail};
use clap::Subcommand;
use pipes_core::ids::ConnectedAccountId;
use pipes_core::services::Environments;
use pipes_core::time::{format_ms, now_ms};

use crate::config::Config;
use crate::ops::open_store;

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Show a connection: owner, state, scopes, token expiry, last refresh and the last refresh
    /// error (code, time, failures in a row, next try). Never a token.
    Show {
        /// The environment.
        #[arg(long = "env", value_name = "NAME")]
        env: String,
        /// The connection id (data_installation_…).
        id: String,
    },
}

/// `pipes accounts …`.
pub async fn run(config: &Config, cmd: AccountsCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let envs = Environments::new(store.clone());
    match cmd {
        AccountsCommand::Show { env, id } => {
            let env = envs.by_name(&env).await?;
            let parsed =
                ConnectedAccountId::parse(&id).map_err(|_| anyhow!("'{id}' is not a data_installation_… id"))?;
            let Some(a) = store.connected_account(env.id, parsed).await? else {
                bail!("no connection {id} in environment {}", env.name);
            };
            let roots = store.all_data_integrations(env.id, a.owner.ownership).await?;
            let slug = roots
                .iter()
                .find(|r| r.id == a.data_integration_id)
                .map_or("?", |r| r.slug.as_str());
            let opt = |v: Option<&str>| v.unwrap_or("-").to_owned();
            let time = |t: Option<i64>| t.map_or("-".to_owned(), format_ms);
            let rows: Vec<(&str, String)> = vec![
                ("id", a.id.to_string()),
                ("integration", format!("{slug} ({})", a.data_integration_id)),
                ("ownership", a.owner.ownership.as_str().to_owned()),
                ("user", opt(a.owner.user_id.as_deref())),
                ("organization", opt(a.owner.organization_id.as_deref())),
                ("role", a.role.as_str().to_owned()),
                ("state", a.state.as_str().to_owned()),
                ("state reason", opt(a.state_reason.as_deref())),
                ("auth method", a.auth_method.as_str().to_owned()),
                ("scopes", a.scopes.join(" ")),
                ("display name", opt(a.account_display_name.as_deref())),
                ("established by", opt(a.established_by_user_id.as_deref())),
                (
                    "access token",
                    match (&a.tokens.access_token, a.tokens.expires_at) {
                        (None, _) => "none".into(),
                        (Some(_), None) => "held, does not expire".into(),
                        (Some(_), Some(e)) if e > now_ms() => format!("held, expires {}", format_ms(e)),
                        (Some(_), Some(e)) => format!("held, expired {}", format_ms(e)),
                    },
                ),
                (
                    "refresh token",
                    if a.tokens.refresh_token.is_some() {
                        "held"
                    } else {
                        "none"
                    }
                    .into(),
                ),
                ("last refreshed", time(a.last_refreshed_at)),
                (
                    "last refresh error",
                    a.last_refresh_error.as_ref().map_or("-".to_owned(), |e| {
                        format!(
                            "{} at {} ({} in a row; next try {})",
                            e.code,
                            format_ms(e.at),
                            e.failures,
                            time(e.retry_at)
                        )
                    }),
                ),
                ("created", format_ms(a.created_at)),
                ("updated", format_ms(a.updated_at)),
            ];
            for (k, v) in rows {
                println!("{k:<20}{v}");
            }
        }
    }
    Ok(())
}
