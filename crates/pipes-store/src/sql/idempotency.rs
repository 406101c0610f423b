//! [`IdempotencyStore`]: idempotency keys and their recorded answers.

use async_trait::async_trait;
use pipes_core::ids::EnvironmentId;
use pipes_core::store::{IdempotencyBegin, IdempotencyStore, StoreResult};

use super::SqlStore;
use crate::backend_err;
use crate::rows::get;

#[async_trait]
impl IdempotencyStore for SqlStore {
    async fn idempotency_begin(
        &self,
        env: EnvironmentId,
        key: &str,
        fingerprint: &str,
        now: i64,
        expired_before: i64,
        stale_before: i64,
    ) -> StoreResult<IdempotencyBegin> {
        let env = env.to_string();
        self.write(q!(
            "DELETE FROM idempotency_keys WHERE environment_id = $1 AND idempotency_key = $2 \
             AND (created_at < $3 OR (status = 0 AND created_at < $4))",
            &env,
            key,
            expired_before,
            stale_before
        ))
        .await?;
        let inserted = self.write(q!("INSERT INTO idempotency_keys (environment_id, idempotency_key, fingerprint, status, body, created_at) \
             VALUES ($1, $2, $3, 0, NULL, $4) ON CONFLICT DO NOTHING", &env, key, fingerprint, now)).await?;
        if inserted == 1 {
            return Ok(IdempotencyBegin::Started);
        }
        let row = sqlx::query(
            "SELECT fingerprint, status, body FROM idempotency_keys WHERE environment_id = $1 AND idempotency_key = $2",
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
        if get::<String>(&row, "fingerprint")? != fingerprint {
            return Ok(IdempotencyBegin::Mismatch);
        }
        match get::<i64>(&row, "status")? {
            0 => Ok(IdempotencyBegin::InFlight),
            status => Ok(IdempotencyBegin::Completed {
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
