//! What operators and the vault rotation need: liveness, and every sealed value by column.

use async_trait::async_trait;

use super::StoreResult;
use crate::vault::SealedColumn;

/// One sealed value and the id of its row.
#[derive(Debug, Clone)]
pub struct SealedRow {
    /// Row id (the vault's associated data).
    pub id: String,
    /// The ciphertext.
    pub sealed: Vec<u8>,
}

/// Liveness and vault rotation.
#[async_trait]
pub trait MaintenanceStore: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Cheap liveness check for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;

    /// Up to `limit` sealed values of a column with row id greater than `after`, by id.
    async fn sealed_values(&self, column: SealedColumn, after: Option<&str>, limit: u32)
        -> StoreResult<Vec<SealedRow>>;
    /// How many sealed values a column holds.
    async fn count_sealed(&self, column: SealedColumn) -> StoreResult<u64>;
    /// Replaces a sealed value only if it still equals `old` (a concurrent write wins).
    async fn replace_sealed(&self, column: SealedColumn, id: &str, old: &[u8], new: &[u8]) -> StoreResult<bool>;
}
