//! [`OrganizationStore`]: memberships and per-organization settings, and the membership rule
//! every write of a shared connection is checked against.

use async_trait::async_trait;
use pipes_core::domain::{ConnectedAccount, Membership, OrganizationSettings};
use pipes_core::events::Event;
use pipes_core::ids::{DataIntegrationId, DikId, EnvironmentId};
use pipes_core::store::{OrganizationStore, StoreError, StoreResult};

use super::accounts::account_columns;
use super::membership::lock_member;
use super::{append_events_in, exec, Params, SqlStore};
use crate::backend_err;
use crate::rows::{self, get, ACCOUNT_COLUMNS, ACCOUNT_FROM};

/// Shared connections ($1 environment, $2 organization) whose establishing member is $3.
const ESTABLISHED_BY: &str = "ca.environment_id = $1 AND di.ownership = 'organization' \
     AND ca.organization_id = $2 AND ca.established_by_user_id = $3";

#[async_trait]
impl OrganizationStore for SqlStore {
    async fn membership(&self, env: EnvironmentId, organization: &str, user: &str) -> StoreResult<Option<Membership>> {
        self.optional(q!("SELECT * FROM organization_members WHERE environment_id = $1 AND organization_id = $2 AND user_id = $3", env.to_string(), organization, user), rows::membership).await
    }

    async fn organization_known(&self, env: EnvironmentId, organization: &str) -> StoreResult<bool> {
        self.exists(q!(
            "SELECT 1 AS one FROM organization_members WHERE environment_id = $1 AND organization_id = $2 LIMIT 1",
            env.to_string(),
            organization
        ))
        .await
    }

    async fn memberships(&self, env: EnvironmentId, organization: &str) -> StoreResult<Vec<Membership>> {
        self.all(q!("SELECT * FROM organization_members WHERE environment_id = $1 AND organization_id = $2 ORDER BY user_id", env.to_string(), organization), rows::membership).await
    }

    async fn put_membership(&self, m: &Membership, cleared: &[ConnectedAccount], events: &[Event]) -> StoreResult<()> {
        self.with_events(events, async {
            let mut tx = self.begin_write().await?;
            let env = m.environment_id.to_string();
            lock_member(&mut tx, self.backend, &env, &m.organization_id, &m.user_id).await?;
            let mut p = Params::default();
            p.set("environment_id", env.as_str())
                .set("organization_id", m.organization_id.as_str())
                .set("user_id", m.user_id.as_str())
                .set("active", i64::from(m.active))
                .set("created_at", m.created_at)
                .set("updated_at", m.updated_at);
            let sql = format!(
                "INSERT INTO organization_members {} ON CONFLICT (environment_id, organization_id, user_id) \
                 DO UPDATE SET active = excluded.active, updated_at = excluded.updated_at",
                p.insert()
            );
            exec(&mut tx, p.query(&sql)?).await?;
            for a in cleared {
                // Only a connection still established by this member is cleared: a reconnect by
                // someone else meanwhile wins, and the caller re-reads.
                let mut p = Params::default();
                account_columns(&mut p, a);
                let sql = format!(
                    "UPDATE connected_accounts SET {} WHERE id = {} AND environment_id = {} \
                     AND established_by_user_id = {}",
                    p.assignments(),
                    p.push(a.id.to_string()),
                    p.push(a.environment_id.to_string()),
                    p.push(m.user_id.as_str()),
                );
                let done = exec(&mut tx, p.query(&sql)?).await?;
                if done != 1 {
                    return Err(StoreError::Conflict(format!("connected account {} changed", a.id)));
                }
            }
            if !m.active {
                // A connection this member established after the caller listed them would
                // outlive the membership: refuse, and let the caller list again.
                let left = sqlx::query(&format!(
                    "SELECT COUNT(*) AS n FROM {ACCOUNT_FROM} WHERE {ESTABLISHED_BY}"
                ))
                .bind(&env)
                .bind(m.organization_id.as_str())
                .bind(m.user_id.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(backend_err)?;
                let n: i64 = get(&left, "n")?;
                if n != 0 {
                    return Err(StoreError::Conflict(format!(
                        "{n} connection(s) established by the member were not listed"
                    )));
                }
            }
            append_events_in(&mut tx, events).await?;
            tx.commit().await.map_err(backend_err)
        })
        .await
    }

    async fn accounts_established_by(
        &self,
        env: EnvironmentId,
        organization: &str,
        user: &str,
    ) -> StoreResult<Vec<ConnectedAccount>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM {ACCOUNT_FROM} WHERE {ESTABLISHED_BY} ORDER BY ca.id");
        self.all(q!(&sql, env.to_string(), organization, user), rows::connected_account)
            .await
    }

    async fn organization_settings(
        &self,
        root: DataIntegrationId,
        organization: &str,
    ) -> StoreResult<Option<OrganizationSettings>> {
        let sql = "SELECT * FROM organization_settings WHERE data_integration_id = $1 AND organization_id = $2";
        self.optional(q!(sql, root.to_string(), organization), rows::organization_settings)
            .await
    }

    async fn organization_settings_by_id(&self, id: DikId) -> StoreResult<Option<OrganizationSettings>> {
        self.optional(
            q!("SELECT * FROM organization_settings WHERE id = $1", id.to_string()),
            rows::organization_settings,
        )
        .await
    }

    async fn organization_settings_of(
        &self,
        env: EnvironmentId,
        organization: &str,
    ) -> StoreResult<Vec<OrganizationSettings>> {
        self.all(
            q!(
                "SELECT * FROM organization_settings WHERE environment_id = $1 AND organization_id = $2 ORDER BY id",
                env.to_string(),
                organization
            ),
            rows::organization_settings,
        )
        .await
    }

    async fn put_organization_settings(&self, o: &OrganizationSettings, overwrite: bool) -> StoreResult<()> {
        self.counted(async {
            let app = o.app.as_ref();
            let mut p = Params::default();
            p.set("id", o.id.to_string())
                .set("environment_id", o.environment_id.to_string())
                .set("data_integration_id", o.data_integration_id.to_string())
                .set("organization_id", o.organization_id.as_str())
                .set("created_at", o.created_at);
            let keys = p.mark();
            p.set("enabled", o.enabled.map(i64::from))
                .set("scopes", o.scopes.as_ref().map(rows::to_json))
                .set("client_id", app.map(|a| a.client_id.as_str()))
                .set("client_secret", app.map(|a| a.client_secret.0.clone()))
                .set("client_secret_last_4", app.map(|a| a.client_secret_last_4.as_str()))
                .set("config", rows::to_json(&o.config))
                .set("updated_at", o.updated_at);
            let on_conflict = if overwrite {
                format!("DO UPDATE SET {}", p.excluded_assignments(keys))
            } else {
                "DO NOTHING".to_owned()
            };
            let sql = format!(
                "INSERT INTO organization_settings {} ON CONFLICT (data_integration_id, organization_id) {on_conflict}",
                p.insert()
            );
            self.write(p.query(&sql)?).await?;
            Ok(())
        })
        .await
    }
}
