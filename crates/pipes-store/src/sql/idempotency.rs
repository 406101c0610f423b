//! [`IdempotencyStore`]: idempotency keys and their recorded answers.

use async_trait::async_trait;
use pipes_core::ids::EnvironmentId;
use pipes_core::store::{IdempotencyBegin, IdempotencyClaim, IdempotencyStore, StoreResult};

use super::SqlStore;
use crate::backend_err;
use crate::rows::get;

#[async_trait]
impl IdempotencyStore for SqlStore {
    async fn idempotency_begin(&self, c: &IdempotencyClaim<'_>) -> StoreResult<IdempotencyBegin> {
        let env = c.env.to_string();
        let key = c.key;
        self.write(q!(
            "DELETE FROM idempotency_keys WHERE environment_id = $1 AND idempotency_key = $2 \
             AND (created_at < $3 OR (status = 0 AND created_at < $4))",
            &env,
            key,
            c.expired_before,
            c.stale_before
        ))
        .await?;
        let inserted = self.write(q!("INSERT INTO idempotency_keys (id, environment_id, idempotency_key, fingerprint, status, body, created_at) \
             VALUES ($1, $2, $3, $4, 0, NULL, $5) ON CONFLICT DO NOTHING", c.record_id, &env, key, c.fingerprint, c.now)).await?;
        if inserted == 1 {
            return Ok(IdempotencyBegin::Started);
        }
        let row = sqlx::query(
            "SELECT id, fingerprint, status, body FROM idempotency_keys WHERE environment_id = $1 AND idempotency_key = $2",
        )
        .bind(&env)
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend_err)?;
        let Some(row) = row else {
            // Released between our insert and read: the caller may simply retry.
            return Ok(IdempotencyBegin::InFlight);
        };
        if get::<String>(&row, "fingerprint")? != c.fingerprint {
            return Ok(IdempotencyBegin::Mismatch);
        }
        match get::<i64>(&row, "status")? {
            0 => Ok(IdempotencyBegin::InFlight),
            status => Ok(IdempotencyBegin::Completed {
                record_id: get(&row, "id")?,
                status: u16::try_from(status).unwrap_or(500),
                body: get::<Option<Vec<u8>>>(&row, "body")?.unwrap_or_default(),
            }),
        }
    }

    async fn idempotency_complete(&self, env: EnvironmentId, key: &str, status: u16, body: &[u8]) -> StoreResult<()> {
        self.write(q!(
            "UPDATE idempotency_keys SET status = $1, body = $2 WHERE environment_id = $3 AND idempotency_key = $4",
            i64::from(status),
            body.to_vec(),
            env.to_string(),
            key
        ))
        .await?;
        Ok(())
    }

    async fn purge_idempotency(&self, before: i64) -> StoreResult<u64> {
        self.write(q!("DELETE FROM idempotency_keys WHERE created_at < $1", before))
            .await
    }

    async fn idempotency_release(&self, env: EnvironmentId, key: &str) -> StoreResult<()> {
        self.write(q!(
            "DELETE FROM idempotency_keys WHERE environment_id = $1 AND idempotency_key = $2 AND status = 0",
            env.to_string(),
            key
        ))
        .await?;
        Ok(())
    }
}
