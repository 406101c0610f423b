//! The membership rule every write of a shared connection is checked against, inside the
//! write's transaction.

use pipes_core::domain::{ConnectedAccount, MembershipMode, Ownership};
use pipes_core::store::{StoreError, StoreResult};

use super::Tx;
use crate::rows::get;
use crate::{backend_err, Backend};

/// Serializes, per environment, organization and user, the writes that make the user the
/// establishing member of a shared connection with the writes that change that membership
/// (PostgreSQL: a transaction-scoped advisory lock; SQLite serializes every write already).
pub(super) async fn lock_member(
    tx: &mut Tx,
    backend: Backend,
    env: &str,
    organization: &str,
    user: &str,
) -> StoreResult<()> {
    if backend == Backend::Postgres {
        // Ids are visible ASCII, so the unit separator keeps the key unambiguous.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("member\u{1f}{env}\u{1f}{organization}\u{1f}{user}"))
            .execute(&mut **tx)
            .await
            .map_err(backend_err)?;
    }
    Ok(())
}

/// Refuses, inside the write's transaction, a write that makes a user the establishing member
/// of an organization's connection unless the user is an active member: declared active, or in
/// trust mode not declared inactive. A write that keeps the establishing member is not checked
/// (a connection is cleared when its member leaves); who established it is read under the
/// member's lock, so a membership that ends meanwhile is seen.
pub(super) async fn check_establishing_member(
    tx: &mut Tx,
    backend: Backend,
    a: &ConnectedAccount,
    inserting: bool,
) -> StoreResult<()> {
    let (Ownership::Organization, Some(org), Some(user)) = (
        a.owner.ownership,
        a.owner.organization_id.as_deref(),
        a.established_by_user_id.as_deref(),
    ) else {
        return Ok(());
    };
    let env = a.environment_id.to_string();
    lock_member(tx, backend, &env, org, user).await?;
    if !inserting {
        let previous: Option<String> =
            sqlx::query("SELECT established_by_user_id FROM connected_accounts WHERE id = $1 AND environment_id = $2")
                .bind(a.id.to_string())
                .bind(&env)
                .fetch_optional(&mut **tx)
                .await
                .map_err(backend_err)?
                .map(|r| get(&r, "established_by_user_id"))
                .transpose()?
                .flatten();
        if previous.as_deref() == Some(user) {
            return Ok(());
        }
    }
    let row = sqlx::query(
        "SELECT e.membership AS membership, m.active AS active FROM environments e \
         LEFT JOIN organization_members m ON m.environment_id = e.id AND m.organization_id = $2 AND m.user_id = $3 \
         WHERE e.id = $1",
    )
    .bind(&env)
    .bind(org)
    .bind(user)
    .fetch_one(&mut **tx)
    .await
    .map_err(backend_err)?;
    let declared: Option<i64> = get(&row, "active")?;
    let mode: String = get(&row, "membership")?;
    let mode =
        MembershipMode::parse(&mode).ok_or_else(|| StoreError::Backend(format!("unknown membership mode '{mode}'")))?;
    if mode.is_active(declared.map(|flag| flag != 0)) {
        Ok(())
    } else {
        Err(StoreError::NotMember)
    }
}
