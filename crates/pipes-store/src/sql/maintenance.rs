//! [`MaintenanceStore`]: liveness, and the sealed values of every column for key rotation.

use async_trait::async_trait;
use pipes_core::store::{MaintenanceStore, SealedRow, StoreResult};
use pipes_core::vault::SealedColumn;

use super::SqlStore;
use crate::rows::get;
use crate::{backend_err, Backend};

#[async_trait]
impl MaintenanceStore for SqlStore {
    fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(backend_err)?;
        Ok(())
    }

    async fn sealed_values(
        &self,
        column: SealedColumn,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<SealedRow>> {
        let (table, col) = column.table_and_column();
        let sql = format!(
            "SELECT id, {col} AS sealed FROM {table} WHERE {col} IS NOT NULL AND ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend_err)?;
        rows.iter()
            .map(|r| {
                Ok(SealedRow {
                    id: get(r, "id")?,
                    sealed: get(r, "sealed")?,
                })
            })
            .collect()
    }

    async fn count_sealed(&self, column: SealedColumn) -> StoreResult<u64> {
        let (table, col) = column.table_and_column();
        let row = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table} WHERE {col} IS NOT NULL"))
            .fetch_one(&self.pool)
            .await
            .map_err(backend_err)?;
        Ok(u64::try_from(get::<i64>(&row, "n")?).unwrap_or(0))
    }

    async fn replace_sealed(&self, column: SealedColumn, id: &str, old: &[u8], new: &[u8]) -> StoreResult<bool> {
        self.counted(async {
            let (table, col) = column.table_and_column();
            let done = sqlx::query(&format!("UPDATE {table} SET {col} = $1 WHERE id = $2 AND {col} = $3"))
                .bind(new.to_vec())
                .bind(id)
                .bind(old.to_vec())
                .execute(&self.writer)
                .await
                .map_err(backend_err)?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }
}
