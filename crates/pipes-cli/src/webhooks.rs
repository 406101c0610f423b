//! `pipes webhooks`: endpoints, their deliveries, and redelivery by hand.

use anyhow::anyhow;
use clap::Subcommand;
use pipes_core::domain::DeliveryState;
use pipes_core::egress::Egress;
use pipes_core::pagination::{Order, PageRequest};
use pipes_core::services::Environments;
use pipes_core::time::format_ms;
use pipes_core::webhooks::{CreateWebhookEndpoint, OpenedEndpoint, UpdateWebhookEndpoint, Webhooks};

use crate::config::Config;
use crate::ops::{configured_vault, open_store};

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// List an environment's webhook endpoints.
    List {
        /// The environment.
        #[arg(long = "env", value_name = "NAME")]
        env: String,
    },
    /// Register an endpoint. Prints it with its signing secret (whsec_…).
    Create {
        /// The environment.
        #[arg(long = "env", value_name = "NAME")]
        env: String,
        /// https URL (http only on localhost/127.0.0.1/[::1]). Redirects are never followed.
        url: String,
        /// Event types to send, comma-separated, e.g. pipes.connected_account.connected.
        #[arg(long, value_delimiter = ',', required = true)]
        events: Vec<String>,
    },
    /// Change an endpoint's URL, event types or status.
    Update {
        /// The environment.
        #[arg(long = "env", value_name = "NAME")]
        env: String,
        /// The endpoint id (we_…).
        id: String,
        /// New URL.
        #[arg(long)]
        url: Option<String>,
        /// New event types, comma-separated.
        #[arg(long, value_delimiter = ',')]
        events: Option<Vec<String>>,
        /// Stop sending to it (events meanwhile are not replayed on enable).
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        /// Start sending to it again.
        #[arg(long)]
        enable: bool,
    },
    /// Delete an endpoint and its delivery history.
    Delete {
        /// The environment.
        #[arg(long = "env", value_name = "NAME")]
        env: String,
        /// The endpoint id (we_…).
        id: String,
    },
    /// Show an endpoint's deliveries, newest first, or with --event the attempts of one.
    Deliveries {
        /// The environment.
        #[arg(long = "env", value_name = "NAME")]
        env: String,
        /// The endpoint id (we_…).
        id: String,
        /// Only deliveries in this state: pending, delivered or failed.
        #[arg(long)]
        state: Option<String>,
        /// Show every attempt to deliver this event (event_…).
        #[arg(long)]
        event: Option<String>,
        /// How many deliveries to show.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Send an event to an endpoint again, now, ahead of any backoff (for a failed delivery,
    /// or an event sent before the endpoint subscribed).
    Redeliver {
        /// The environment.
        #[arg(long = "env", value_name = "NAME")]
        env: String,
        /// The endpoint id (we_…).
        id: String,
        /// The event id (event_…).
        event: String,
    },
}

/// `pipes webhooks …`.
pub async fn run(config: &Config, cmd: WebhooksCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let envs = Environments::new(store.clone());
    let webhooks = Webhooks::new(store, configured_vault(config)?, Egress::new(config.egress.clone()));
    let header = || println!("{:<32} {:<9} {:<44} events", "ID", "STATUS", "URL");
    let row = |e: &OpenedEndpoint| {
        let ep = &e.endpoint;
        let events: Vec<&str> = ep.events.iter().map(|t| t.as_str()).collect();
        println!(
            "{:<32} {:<9} {:<44} {}",
            ep.id.to_string(),
            ep.status.as_str(),
            ep.endpoint_url,
            events.join(",")
        );
    };
    match cmd {
        WebhooksCommand::List { env } => {
            let env = envs.by_name(&env).await?;
            header();
            let mut after = None;
            loop {
                let page = PageRequest::parse(Some("100"), None, after.as_deref(), Some("asc"), Order::Asc)?;
                let page = webhooks.list(&env, page).await?;
                page.data.iter().for_each(row);
                match page.after {
                    Some(a) => after = Some(a),
                    None => break,
                }
            }
        }
        WebhooksCommand::Create { env, url, events } => {
            let env = envs.by_name(&env).await?;
            let created = webhooks
                .create(&env, CreateWebhookEndpoint::parse(&url, &events)?)
                .await?;
            header();
            row(&created);
            eprintln!("Signing secret (verify WorkOS-Signature with it):");
            println!("{}", created.secret.expose());
        }
        WebhooksCommand::Update {
            env,
            id,
            url,
            events,
            disable,
            enable,
        } => {
            let env = envs.by_name(&env).await?;
            let status = match (enable, disable) {
                (true, _) => Some("enabled"),
                (_, true) => Some("disabled"),
                _ => None,
            };
            let req = UpdateWebhookEndpoint::parse(url.as_deref(), status, events.as_deref())?;
            let updated = webhooks.update(&env, &id, req).await?;
            header();
            row(&updated);
        }
        WebhooksCommand::Delete { env, id } => {
            let env = envs.by_name(&env).await?;
            webhooks.delete(&env, &id).await?;
            println!("deleted {id}");
        }
        WebhooksCommand::Deliveries {
            env,
            id,
            state,
            event,
            limit,
        } => {
            let env = envs.by_name(&env).await?;
            if let Some(event) = event {
                println!("{:<8} {:<26} {:<7} {:>8}  error", "ATTEMPT", "STARTED", "STATUS", "MS");
                for a in webhooks.attempts(&env, &id, &event).await? {
                    println!(
                        "{:<8} {:<26} {:<7} {:>8}  {}",
                        a.attempt,
                        format_ms(a.started_at),
                        a.status.map_or("-".into(), |s| s.to_string()),
                        a.latency_ms,
                        a.error.as_deref().unwrap_or("")
                    );
                }
                return Ok(());
            }
            let state = state
                .map(|s| {
                    DeliveryState::parse(&s).ok_or_else(|| anyhow!("--state must be pending, delivered or failed"))
                })
                .transpose()?;
            println!(
                "{:<32} {:<48} {:<10} {:>8} {:<7} last error",
                "EVENT", "TYPE", "STATE", "ATTEMPTS", "STATUS"
            );
            for d in webhooks.deliveries(&env, &id, state, limit.clamp(1, 10_000)).await? {
                println!(
                    "{:<32} {:<48} {:<10} {:>8} {:<7} {}",
                    d.event_id.to_string(),
                    d.event,
                    d.state.as_str(),
                    d.attempts,
                    d.last_status.map_or("-".into(), |s| s.to_string()),
                    d.last_error.as_deref().unwrap_or("")
                );
            }
        }
        WebhooksCommand::Redeliver { env, id, event } => {
            let env = envs.by_name(&env).await?;
            webhooks.redeliver(&env, &id, &event).await?;
            println!("{event} will be sent to {id} again now (by a running server)");
        }
    }
    Ok(())
}
