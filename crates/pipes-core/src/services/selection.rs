//! Choosing the owner and the connection a request means (contract §3.8).

use crate::domain::{
    valid_external_id, ConnectedAccount, ConnectionIntent, ConnectionRole, DataIntegration, Environment, Owner,
    Ownership,
};
use crate::error::ServiceError;
use crate::ids::ConnectedAccountId;
use crate::slug::Slug;
use crate::store::Store;

/// The owner fields of a request, as sent.
#[derive(Debug, Clone, Default)]
pub struct OwnerInput<'a> {
    /// `user` (default) or `organization`.
    pub connection_owner: Option<&'a str>,
    /// The owner, or the acting member for organization-owned connections.
    pub user_id: Option<&'a str>,
    /// Organization scope or owner.
    pub organization_id: Option<&'a str>,
}

/// A parsed owner: whose connection, and who acts.
#[derive(Debug, Clone)]
pub struct OwnerChoice {
    /// The owner shape.
    pub owner: Owner,
    /// The acting user (the owner for user-owned connections).
    pub acting_user: Option<String>,
}

impl OwnerChoice {
    /// The member an organization's new connection is established by (and ends with).
    pub fn establishing_user(&self) -> Option<String> {
        match self.owner.ownership {
            Ownership::Organization => self.acting_user.clone(),
            Ownership::User => None,
        }
    }
}

pub(super) fn check_id(field: &str, value: &str) -> Result<(), ServiceError> {
    if valid_external_id(value) {
        Ok(())
    } else {
        Err(ServiceError::invalid_field(
            field,
            "invalid",
            format!("{field} must be 1-255 visible ASCII characters."),
        ))
    }
}

impl OwnerInput<'_> {
    /// Validates the owner fields. `user_id_required`: user-owned calls always need a user.
    pub fn parse(&self, user_id_required: bool) -> Result<OwnerChoice, ServiceError> {
        let ownership = match self.connection_owner {
            None => Ownership::User,
            Some(raw) => Ownership::parse(raw).ok_or_else(|| {
                ServiceError::invalid_field(
                    "connection_owner",
                    "invalid",
                    "connection_owner must be 'user' or 'organization'.",
                )
            })?,
        };
        if let Some(org) = self.organization_id {
            check_id("organization_id", org)?;
        }
        match ownership {
            Ownership::User => {
                let user = self
                    .user_id
                    .ok_or_else(|| ServiceError::invalid_field("user_id", "required", "user_id is required."))?;
                check_id("user_id", user)?;
                Ok(OwnerChoice {
                    owner: Owner::user(user, self.organization_id),
                    acting_user: Some(user.to_owned()),
                })
            }
            Ownership::Organization => {
                let org = self.organization_id.ok_or_else(|| ServiceError::Invalid {
                    code: "organization_id_required",
                    message: "organization_id is required when connection_owner is organization.".into(),
                    errors: vec![],
                })?;
                if let Some(user) = self.user_id {
                    check_id("user_id", user)?;
                } else if user_id_required {
                    return Err(ServiceError::invalid_field(
                        "user_id",
                        "required",
                        "user_id is required.",
                    ));
                }
                Ok(OwnerChoice {
                    owner: Owner::organization(org),
                    acting_user: self.user_id.map(str::to_owned),
                })
            }
        }
    }
}

/// A `connected_account_id` as the request sent it, parsed: an id, or text that no connection's
/// id can be (which selects nothing, once the integration is known to exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountRef {
    /// A well-formed id.
    Id(ConnectedAccountId),
    /// Not an id of a connection.
    Malformed,
}

impl AccountRef {
    /// Parses a `connected_account_id`.
    pub fn parse(raw: &str) -> Self {
        ConnectedAccountId::parse(raw).map_or(Self::Malformed, Self::Id)
    }
}

/// How to pick among an owner's connections.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    /// An exact connection.
    pub connected_account_id: Option<AccountRef>,
    /// The plural contract: consider every connection of the owner.
    pub supports_multiple_connections: bool,
}

/// "Data integration not found" for a slug.
pub fn root_not_found() -> ServiceError {
    ServiceError::not_found("Data integration not found for the given provider slug.")
}

/// 404 for a connection that does not belong to the owner.
pub fn account_not_found() -> ServiceError {
    ServiceError::NotFound {
        code: "connected_account_not_found",
        message: "No connected account with that ID exists for this owner.".into(),
    }
}

/// Finds the root of `slug` for the owner's ownership and the selected connection (or `None`
/// when the owner has no such connection). 404 for an unknown root or a foreign
/// `connected_account_id`; 409 when the plural contract matches several connections.
pub async fn select(
    store: &dyn Store,
    env: &Environment,
    slug: &Slug,
    owner: &Owner,
    selector: &Selector,
) -> Result<(DataIntegration, Option<ConnectedAccount>), ServiceError> {
    if selector.connected_account_id.is_none() && !selector.supports_multiple_connections {
        return store
            .root_with_compatibility_account(env.id, slug, owner.ownership, &owner.key())
            .await?
            .ok_or_else(root_not_found);
    }
    let root = store
        .data_integration(env.id, slug, owner.ownership)
        .await?
        .ok_or_else(root_not_found)?;
    if let Some(wanted) = selector.connected_account_id {
        let AccountRef::Id(id) = wanted else {
            return Err(account_not_found());
        };
        let account = store
            .connected_account(env.id, id)
            .await?
            .filter(|a| a.data_integration_id == root.id && a.owner == *owner)
            .ok_or_else(account_not_found)?;
        return Ok((root, Some(account)));
    }
    let mut all = store.accounts_of_owner(root.id, Some(&owner.key())).await?;
    match all.len() {
        0 => Ok((root, None)),
        1 => Ok((root, all.pop())),
        _ => Err(ServiceError::Conflict {
            code: "account_selection_required",
            message: "Several connections match; pass connected_account_id to choose one.".into(),
        }),
    }
}

/// What a write that creates or re-targets a connection asks for (contract §3.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// No intent: the compatibility connection, created when the slot is empty.
    Compatibility,
    /// `add`: a new connection.
    Add,
    /// `reauthorize` (or a bare `connected_account_id` on PUT): exactly this connection.
    Target(ConnectedAccountId),
}

impl From<&ConnectionIntent> for Intent {
    /// Where an authorization's connection lands.
    fn from(intent: &ConnectionIntent) -> Self {
        match intent {
            ConnectionIntent::Compatibility => Self::Compatibility,
            ConnectionIntent::Add => Self::Add,
            ConnectionIntent::Reauthorize(id) => Self::Target(*id),
        }
    }
}

/// Where a write lands.
#[derive(Debug, Clone)]
pub enum Placement {
    /// An existing connection, changed in place.
    Existing(Box<ConnectedAccount>),
    /// A new connection in this role.
    New(ConnectionRole),
}

/// Decides where a write with `intent` lands among the owner's connections of `root`:
/// `multiple_connections_unavailable` (404) when the environment does not allow another
/// connection, `connected_account_limit_reached` (409) at the limit.
pub async fn place(
    store: &dyn Store,
    env: &Environment,
    root: &DataIntegration,
    owner: &Owner,
    intent: Intent,
) -> Result<Placement, ServiceError> {
    let mut existing = store.accounts_of_owner(root.id, Some(&owner.key())).await?;
    match intent {
        Intent::Compatibility => Ok(existing
            .into_iter()
            .find(|a| a.role == ConnectionRole::Compatibility)
            .map_or(Placement::New(ConnectionRole::Compatibility), |a| {
                Placement::Existing(Box::new(a))
            })),
        Intent::Target(id) => {
            let at = existing.iter().position(|a| a.id == id).ok_or_else(account_not_found)?;
            Ok(Placement::Existing(Box::new(existing.swap_remove(at))))
        }
        Intent::Add if existing.is_empty() => Ok(Placement::New(ConnectionRole::Compatibility)),
        Intent::Add if !env.settings.multiple_connections => Err(ServiceError::NotFound {
            code: "multiple_connections_unavailable",
            message: "This owner already has a connection to this provider, and multiple connections are not \
                      enabled for this environment (pipes env settings --multiple-connections on)."
                .into(),
        }),
        Intent::Add if existing.len() >= env.settings.connection_limit as usize => Err(ServiceError::Conflict {
            code: "connected_account_limit_reached",
            message: format!(
                "This owner already has {} connections to this provider, the environment's limit.",
                existing.len()
            ),
        }),
        Intent::Add => Ok(Placement::New(ConnectionRole::Standard)),
    }
}

/// The `warnings` of a write that set `account_display_name` to a label another connection of
/// the same owner and provider already uses.
pub async fn label_warnings(store: &dyn Store, account: &ConnectedAccount) -> Result<Vec<Warning>, ServiceError> {
    let Some(label) = account.account_display_name.as_deref() else {
        return Ok(Vec::new());
    };
    let others = store
        .accounts_of_owner(account.data_integration_id, Some(&account.owner.key()))
        .await?;
    Ok(others
        .iter()
        .any(|a| a.id != account.id && a.account_display_name.as_deref() == Some(label))
        .then(|| Warning {
            code: "duplicate_account_display_name",
            message: format!("Another connection of this owner and provider is also labelled '{label}'."),
        })
        .into_iter()
        .collect())
}

/// A non-fatal remark on a write's response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Machine-readable code.
    pub code: &'static str,
    /// What it means.
    pub message: String,
}
