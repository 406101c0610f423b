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
        self.all(q!(&sql, after, i64::from(limit)), |r| {
            Ok(SealedRow {
                id: get(r, "id")?,
                sealed: get(r, "sealed")?,
            })
        })
        .await
    }

    async fn count_sealed(&self, column: SealedColumn) -> StoreResult<u64> {
        let (table, col) = column.table_and_column();
        let n = self
            .count(q!(&format!(
                "SELECT COUNT(*) AS n FROM {table} WHERE {col} IS NOT NULL"
            )))
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn replace_sealed(&self, column: SealedColumn, id: &str, old: &[u8], new: &[u8]) -> StoreResult<bool> {
        self.counted(async {
            let (table, col) = column.table_and_column();
            Ok(self
                .write(q!(
                    &format!("UPDATE {table} SET {col} = $1 WHERE id = $2 AND {col} = $3"),
                    new.to_vec(),
                    id,
                    old.to_vec()
                ))
                .await?
                == 1)
        })
        .await
    }
}
