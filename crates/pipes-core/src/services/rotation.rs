//! Vault key rotation: re-seals every sealed value under the vault's first key, online.

use crate::store::{MaintenanceStore, StoreResult};
use crate::vault::{Sealed, SealedColumn, Vault};

/// How many values one read takes.
const BATCH: u32 = 200;

/// What a rotation reports while it runs.
#[derive(Debug, Clone, Copy)]
pub enum RotationProgress {
    /// A column starts; it holds about `total` values.
    Column {
        /// The column.
        column: SealedColumn,
        /// Values in it when it started.
        total: u64,
    },
    /// One more value of the current column was handled.
    Value,
    /// The current column is done.
    ColumnDone,
}

/// What a rotation did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RotationReport {
    /// Values re-sealed under the first key.
    pub resealed: u64,
    /// Values that already used it.
    pub current: u64,
    /// Values rewritten meanwhile by a running server (under the current key, so nothing to do).
    pub raced: u64,
    /// Values no configured key opens: `purpose row_id: error`.
    pub failures: Vec<String>,
}

/// Re-seals every value of every [`SealedColumn`] under `vault`'s first key. Safe while servers
/// run: a value is replaced only if it did not change meanwhile. Values that do not open are
/// reported, not skipped silently.
pub async fn rotate_vault(
    store: &dyn MaintenanceStore,
    vault: &Vault,
    mut progress: impl FnMut(RotationProgress),
) -> StoreResult<RotationReport> {
    let mut report = RotationReport::default();
    for &column in SealedColumn::ALL {
        let total = store.count_sealed(column).await?;
        progress(RotationProgress::Column { column, total });
        let mut after: Option<String> = None;
        loop {
            let batch = store.sealed_values(column, after.as_deref(), BATCH).await?;
            let Some(last) = batch.last() else { break };
            after = Some(last.id.clone());
            for row in batch {
                match vault.reseal(&Sealed(row.sealed.clone()), column.aad(&row.id)) {
                    Ok(None) => report.current += 1,
                    Ok(Some(new)) => {
                        if store.replace_sealed(column, &row.id, &row.sealed, &new.0).await? {
                            report.resealed += 1;
                        } else {
                            report.raced += 1;
                        }
                    }
                    Err(e) => report.failures.push(format!("{} {}: {e}", column.purpose(), row.id)),
                }
                progress(RotationProgress::Value);
            }
        }
        progress(RotationProgress::ColumnDone);
    }
    Ok(report)
}
