//! Connected accounts of users (`/user_management/users/{user_id}/…`) and organizations
//! (`/organizations/{organization_id}/…`), and their data-providers lists.

use axum::extract::{Path, State};
use axum::handler::Handler;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use pipes_core::domain::Environment;
use pipes_core::fields::{self, Labels};
use pipes_core::secret::SecretString;
use pipes_core::services::{
    AccountRef, ImportAccount, Intent, Listing, OwnerChoice, OwnerInput, Patch, PlainTokens, Selector, UpdateAccount,
};
use pipes_core::ServiceError;
use serde::Deserialize;

use super::views::{ConnectedAccountView, DataProviderView, PlainList};
use crate::auth::EnvAuth;
use crate::error::ApiError;
use crate::extract::{slug, ApiJson, QueryMap};
use crate::state::App;

pub fn routes(app: &App) -> Router<App> {
    let idempotent = axum::middleware::from_fn_with_state(app.clone(), crate::idempotency::idempotent);
    Router::new()
        .route(
            "/user_management/users/{user_id}/connected_accounts/{slug}",
            get(get_user_account)
                .post(import_user_account.layer(idempotent.clone()))
                .put(update_user_account)
                .delete(delete_user_account),
        )
        .route(
            "/user_management/users/{user_id}/data_providers",
            get(list_user_data_providers),
        )
        .route(
            "/organizations/{organization_id}/connected_accounts/{slug}",
            get(get_organization_account)
                .post(import_organization_account.layer(idempotent))
                .put(update_organization_account)
                .delete(delete_organization_account),
        )
        .route(
            "/organizations/{organization_id}/data_providers",
            get(list_organization_data_providers),
        )
}

/// The body of `POST …/connected_accounts/{slug}`, as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ImportBody {
    access_token: Option<SecretString>,
    refresh_token: Option<SecretString>,
    expires_at: Option<String>,
    scopes: Option<Vec<String>>,
    state: Option<String>,
    connection_intent: Option<String>,
    account_display_name: Patch<String>,
    account_identifier: Patch<String>,
    /// The acting member (organization connections).
    user_id: Option<String>,
}

impl ImportBody {
    fn parse(self) -> Result<ImportAccount, ApiError> {
        let intent = match self.connection_intent.as_deref() {
            None => Intent::Compatibility,
            Some("add") => Intent::Add,
            Some(_) => {
                return Err(ServiceError::bad_request(
                    "invalid_connection_intent",
                    "connection_intent must be 'add' on import.",
                )
                .into())
            }
        };
        Ok(ImportAccount {
            tokens: PlainTokens {
                access: self.access_token,
                refresh: self.refresh_token,
                expires_at: self
                    .expires_at
                    .map(|raw| fields::timestamp("expires_at", &raw))
                    .transpose()?,
            },
            scopes: self.scopes.map(fields::granted_scopes).transpose()?,
            state: self.state.map(|raw| fields::account_state(&raw)).transpose()?,
            intent,
            labels: Labels::parse(self.account_display_name, self.account_identifier)?,
        })
    }
}

/// The body of `PUT …/connected_accounts/{slug}`, as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UpdateBody {
    access_token: Patch<SecretString>,
    refresh_token: Patch<SecretString>,
    expires_at: Patch<String>,
    scopes: Option<Vec<String>>,
    state: Option<String>,
    account_display_name: Patch<String>,
    account_identifier: Patch<String>,
    /// The acting member (organization connections).
    user_id: Option<String>,
}

impl UpdateBody {
    fn parse(self) -> Result<UpdateAccount, ApiError> {
        Ok(UpdateAccount {
            access_token: self.access_token,
            refresh_token: self.refresh_token,
            expires_at: self.expires_at.try_map(|raw| fields::timestamp("expires_at", &raw))?,
            scopes: self.scopes.map(fields::granted_scopes).transpose()?,
            state: self.state.map(|raw| fields::account_state(&raw)).transpose()?,
            labels: Labels::parse(self.account_display_name, self.account_identifier)?,
        })
    }
}

fn selector(query: &QueryMap) -> Result<Selector, ApiError> {
    let intent = query.one("connection_intent")?;
    if intent.is_some_and(|i| i != "reauthorize") {
        return Err(ApiError::bad_request("connection_intent must be reauthorize here."));
    }
    let connected_account_id = query.one("connected_account_id")?;
    if intent.is_some() && connected_account_id.is_none() {
        return Err(ApiError::bad_request(
            "connection_intent reauthorize requires connected_account_id.",
        ));
    }
    Ok(Selector {
        connected_account_id: connected_account_id.map(AccountRef::parse),
        supports_multiple_connections: query.flag("supports_multiple_connections")?,
    })
}

fn user_owner(user_id: &str, query: &QueryMap) -> Result<OwnerChoice, ApiError> {
    Ok(OwnerInput {
        connection_owner: None,
        user_id: Some(user_id),
        organization_id: query.one("organization_id")?,
    }
    .parse(true)?)
}

fn org_owner(organization_id: &str, acting_user: Option<&str>) -> Result<OwnerChoice, ApiError> {
    Ok(OwnerInput {
        connection_owner: Some("organization"),
        user_id: acting_user,
        organization_id: Some(organization_id),
    }
    .parse(false)?)
}

type AccountResult = Result<Json<ConnectedAccountView>, ApiError>;
type Created = Result<(StatusCode, Json<ConnectedAccountView>), ApiError>;

// What the user-owned and organization-owned routes share once the owner is known.

async fn get_account(
    app: &App,
    env: &Environment,
    raw_slug: &str,
    choice: OwnerChoice,
    query: &QueryMap,
) -> AccountResult {
    let selector = selector(query)?;
    let account = app.accounts.get(env, &slug(raw_slug)?, &choice, &selector).await?;
    Ok(Json(ConnectedAccountView::new(&account)))
}

async fn import_account(
    app: &App,
    env: &Environment,
    raw_slug: &str,
    choice: OwnerChoice,
    body: ImportBody,
) -> Created {
    let slug = slug(raw_slug)?;
    let (account, warnings) = app.accounts.import(env, &slug, &choice, body.parse()?).await?;
    Ok((
        StatusCode::CREATED,
        Json(ConnectedAccountView::written(&account, &warnings)),
    ))
}

async fn update_account(
    app: &App,
    env: &Environment,
    raw_slug: &str,
    choice: OwnerChoice,
    query: &QueryMap,
    body: UpdateBody,
) -> AccountResult {
    let (slug, selector) = (slug(raw_slug)?, selector(query)?);
    let (account, warnings) = app
        .accounts
        .update(env, &slug, &choice, &selector, body.parse()?)
        .await?;
    Ok(Json(ConnectedAccountView::written(&account, &warnings)))
}

async fn delete_account(
    app: &App,
    env: &Environment,
    raw_slug: &str,
    choice: OwnerChoice,
    query: &QueryMap,
) -> Result<StatusCode, ApiError> {
    let selector = selector(query)?;
    app.accounts.delete(env, &slug(raw_slug)?, &choice, &selector).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_data_providers(
    app: &App,
    env: &Environment,
    choice: OwnerChoice,
    query: &QueryMap,
) -> Result<Json<PlainList<DataProviderView>>, ApiError> {
    let listings = app
        .accounts
        .data_providers(
            env,
            &choice,
            Listing {
                plural: query.flag("supports_multiple_connections")?,
                keep_connected: false,
            },
        )
        .await?;
    Ok(Json(PlainList {
        object: "list",
        data: listings.iter().map(DataProviderView::new).collect(),
    }))
}

async fn get_user_account(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    Path((user_id, raw_slug)): Path<(String, String)>,
    query: QueryMap,
) -> AccountResult {
    get_account(&app, &env, &raw_slug, user_owner(&user_id, &query)?, &query).await
}

async fn import_user_account(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    Path((user_id, raw_slug)): Path<(String, String)>,
    query: QueryMap,
    ApiJson(req): ApiJson<ImportBody>,
) -> Created {
    import_account(&app, &env, &raw_slug, user_owner(&user_id, &query)?, req).await
}

async fn update_user_account(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    Path((user_id, raw_slug)): Path<(String, String)>,
    query: QueryMap,
    ApiJson(req): ApiJson<UpdateBody>,
) -> AccountResult {
    update_account(&app, &env, &raw_slug, user_owner(&user_id, &query)?, &query, req).await
}

async fn delete_user_account(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    Path((user_id, raw_slug)): Path<(String, String)>,
    query: QueryMap,
) -> Result<StatusCode, ApiError> {
    delete_account(&app, &env, &raw_slug, user_owner(&user_id, &query)?, &query).await
}

async fn list_user_data_providers(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    Path(user_id): Path<String>,
    query: QueryMap,
) -> Result<Json<PlainList<DataProviderView>>, ApiError> {
    list_data_providers(&app, &env, user_owner(&user_id, &query)?, &query).await
}

async fn get_organization_account(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    Path((organization_id, raw_slug)): Path<(String, String)>,
    query: QueryMap,
) -> AccountResult {
    get_account(&app, &env, &raw_slug, org_owner(&organization_id, None)?, &query).await
}

async fn import_organization_account(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    Path((organization_id, raw_slug)): Path<(String, String)>,
    ApiJson(req): ApiJson<ImportBody>,
) -> Created {
    let acting = req.user_id.clone().ok_or_else(|| {
        ApiError::from(ServiceError::invalid_field(
            "user_id",
            "required",
            "user_id is required.",
        ))
    })?;
    import_account(&app, &env, &raw_slug, org_owner(&organization_id, Some(&acting))?, req).await
}

async fn update_organization_account(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    Path((organization_id, raw_slug)): Path<(String, String)>,
    query: QueryMap,
    ApiJson(req): ApiJson<UpdateBody>,
) -> AccountResult {
    let choice = org_owner(&organization_id, req.user_id.as_deref())?;
    update_account(&app, &env, &raw_slug, choice, &query, req).await
}

async fn delete_organization_account(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    Path((organization_id, raw_slug)): Path<(String, String)>,
    query: QueryMap,
) -> Result<StatusCode, ApiError> {
    delete_account(&app, &env, &raw_slug, org_owner(&organization_id, None)?, &query).await
}

async fn list_organization_data_providers(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    Path(organization_id): Path<String>,
    query: QueryMap,
) -> Result<Json<PlainList<DataProviderView>>, ApiError> {
    list_data_providers(&app, &env, org_owner(&organization_id, None)?, &query).await
}
