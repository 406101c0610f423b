//! [`IntegrationStore`]: data integrations (roots) and custom providers.

use async_trait::async_trait;
use pipes_core::domain::{CustomProvider, DataIntegration, Ownership};
use pipes_core::events::Event;
use pipes_core::ids::{ConnectedAccountId, DataIntegrationId, EnvironmentId};
use pipes_core::pagination::Scan;
use pipes_core::slug::Slug;
use pipes_core::store::{IntegrationStore, StoreError, StoreResult};

use super::{append_events_in, direction, exec, Params, SqlStore};
use crate::backend_err;
use crate::rows::{self, get, ROOT_COLUMNS, ROOT_FROM};

/// A root's mutable columns: what an update writes, and an insert writes with the rest.
fn root_columns<'q>(p: &mut Params<'q>, r: &'q DataIntegration) {
    let creds = r.credentials.as_ref();
    p.set("description", r.description.as_deref())
        .set("enabled", i64::from(r.enabled))
        .set("state", r.state.as_str())
        .set("scopes", r.scopes.as_ref().map(rows::to_json))
        .set("credentials_type", creds.map(|c| c.kind.as_str()))
        .set("client_id", creds.and_then(|c| c.client_id.as_deref()))
        .set(
            "client_secret",
            creds.and_then(|c| c.client_secret.as_ref()).map(|s| s.0.clone()),
        )
        .set(
            "client_secret_last4",
            creds.and_then(|c| c.client_secret_last4.as_deref()),
        )
        .set("config", rows::to_json(&r.config))
        .set("updated_at", r.updated_at);
}

#[async_trait]
impl IntegrationStore for SqlStore {
    async fn custom_provider(&self, env: EnvironmentId, slug: &Slug) -> StoreResult<Option<CustomProvider>> {
        self.optional(
            q!(
                "SELECT * FROM custom_providers WHERE environment_id = $1 AND slug = $2",
                env.to_string(),
                slug.as_str()
            ),
            rows::custom_provider,
        )
        .await
    }

    async fn insert_data_integration(
        &self,
        root: &DataIntegration,
        new_custom_provider: Option<&CustomProvider>,
    ) -> StoreResult<()> {
        self.counted(async {
            let mut tx = self.begin_write().await?;
            if let Some(cp) = new_custom_provider {
                let mut p = Params::default();
                p.set("id", cp.id.to_string())
                    .set("environment_id", cp.environment_id.to_string())
                    .set("slug", cp.slug.as_str())
                    .set("auth_method", cp.auth_method.as_str())
                    .set("definition", rows::to_json(&cp.definition))
                    .set("created_at", cp.created_at)
                    .set("updated_at", cp.updated_at);
                let sql = format!("INSERT INTO custom_providers {}", p.insert());
                exec(&mut tx, p.query(&sql)?).await?;
            }
            let mut p = Params::default();
            root_columns(&mut p, root);
            p.set("id", root.id.to_string())
                .set("environment_id", root.environment_id.to_string())
                .set("slug", root.slug.as_str())
                .set("ownership", root.ownership.as_str())
                .set("auth_method", root.auth_method.as_str())
                .set("dik", root.dik.to_string())
                .set(
                    "custom_provider_id",
                    root.custom_provider.as_ref().map(|cp| cp.id.to_string()),
                )
                .set("created_at", root.created_at);
            let sql = format!("INSERT INTO data_integrations {}", p.insert());
            exec(&mut tx, p.query(&sql)?).await?;
            tx.commit().await.map_err(backend_err)
        })
        .await
    }

    async fn data_integration(
        &self,
        env: EnvironmentId,
        slug: &Slug,
        ownership: Ownership,
    ) -> StoreResult<Option<DataIntegration>> {
        let sql = format!(
            "SELECT {ROOT_COLUMNS} FROM {ROOT_FROM} WHERE di.environment_id = $1 AND di.slug = $2 AND di.ownership = $3"
        );
        self.optional(
            q!(&sql, env.to_string(), slug.as_str(), ownership.as_str()),
            rows::data_integration,
        )
        .await
    }

    async fn data_integration_exists(&self, env: EnvironmentId, id: DataIntegrationId) -> StoreResult<bool> {
        self.exists(q!(
            "SELECT 1 FROM data_integrations WHERE environment_id = $1 AND id = $2",
            env.to_string(),
            id.to_string()
        ))
        .await
    }

    async fn scan_data_integrations(
        &self,
        env: EnvironmentId,
        ownership: Option<Ownership>,
        scan: &Scan,
    ) -> StoreResult<Vec<DataIntegration>> {
        let (cmp, dir) = direction(scan);
        let sql = format!(
            "SELECT {ROOT_COLUMNS} FROM {ROOT_FROM} WHERE di.environment_id = $1 \
             AND ($2 IS NULL OR di.ownership = $2) AND ($3 IS NULL OR di.id {cmp} $3) \
             ORDER BY di.id {dir} LIMIT $4"
        );
        self.all(
            q!(
                &sql,
                env.to_string(),
                ownership.map(Ownership::as_str),
                scan.cursor.as_deref(),
                i64::from(scan.limit)
            ),
            rows::data_integration,
        )
        .await
    }

    async fn all_data_integrations(
        &self,
        env: EnvironmentId,
        ownership: Ownership,
    ) -> StoreResult<Vec<DataIntegration>> {
        let sql = format!(
            "SELECT {ROOT_COLUMNS} FROM {ROOT_FROM} WHERE di.environment_id = $1 AND di.ownership = $2 ORDER BY di.id"
        );
        self.all(q!(&sql, env.to_string(), ownership.as_str()), rows::data_integration)
            .await
    }

    async fn update_data_integration(&self, root: &DataIntegration) -> StoreResult<()> {
        self.counted(async {
            let mut tx = self.begin_write().await?;
            if let Some(cp) = &root.custom_provider {
                exec(
                    &mut tx,
                    q!(
                        "UPDATE custom_providers SET definition = $1, updated_at = $2 WHERE id = $3",
                        rows::to_json(&cp.definition),
                        cp.updated_at,
                        cp.id.to_string()
                    ),
                )
                .await?;
            }
            let mut p = Params::default();
            root_columns(&mut p, root);
            let sql = format!(
                "UPDATE data_integrations SET {} WHERE id = {} AND environment_id = {}",
                p.assignments(),
                p.push(root.id.to_string()),
                p.push(root.environment_id.to_string()),
            );
            exec(&mut tx, p.query(&sql)?).await?;
            tx.commit().await.map_err(backend_err)
        })
        .await
    }

    async fn delete_data_integration(
        &self,
        env: EnvironmentId,
        id: DataIntegrationId,
        accounts: &[ConnectedAccountId],
        events: &[Event],
    ) -> StoreResult<bool> {
        self.with_events(events, async {
            let mut tx = self.begin_write().await?;
            let current = sqlx::query("SELECT id FROM connected_accounts WHERE data_integration_id = $1")
                .bind(id.to_string())
                .fetch_all(&mut *tx)
                .await
                .map_err(backend_err)?;
            let mut current: Vec<String> = current.iter().map(|r| get(r, "id")).collect::<StoreResult<_>>()?;
            let mut expected: Vec<String> = accounts.iter().map(ToString::to_string).collect();
            current.sort();
            expected.sort();
            if current != expected {
                return Err(StoreError::Conflict(
                    "the integration's connections changed meanwhile".into(),
                ));
            }
            let gone = sqlx::query(
                "DELETE FROM data_integrations WHERE environment_id = $1 AND id = $2 RETURNING custom_provider_id",
            )
            .bind(env.to_string())
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend_err)?;
            let Some(row) = gone else {
                return Ok(false);
            };
            if let Some(cp) = get::<Option<String>>(&row, "custom_provider_id")? {
                exec(
                    &mut tx,
                    q!(
                        "DELETE FROM custom_providers WHERE id = $1 \
                     AND NOT EXISTS (SELECT 1 FROM data_integrations WHERE custom_provider_id = $1)",
                        cp
                    ),
                )
                .await?;
            }
            append_events_in(&mut tx, events).await?;
            tx.commit().await.map_err(backend_err)?;
            Ok(true)
        })
        .await
    }
}
