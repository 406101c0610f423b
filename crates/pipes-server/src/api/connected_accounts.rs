//! Connected accounts of users (`/user_management/users/{user_id}/…`) and organizations
//! (`/organizations/{organization_id}/…`), and their data-providers lists.

use axum::extract::{Path, State};
use axum::handler::Handler;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use pipes_core::domain::Environment;
use pipes_core::services::{AccountRef, ImportAccount, OwnerChoice, OwnerInput, Selector, UpdateAccount};

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

fn flag(query: &QueryMap, name: &str) -> Result<bool, ApiError> {
    match query.one(name)? {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::bad_request(format!("{name} must be true or false."))),
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
        supports_multiple_connections: flag(query, "supports_multiple_connections")?,
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
    req: ImportAccount,
) -> Created {
    let (account, warnings) = app.accounts.import(env, &slug(raw_slug)?, &choice, req).await?;
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
    req: UpdateAccount,
) -> AccountResult {
    let selector = selector(query)?;
    let (account, warnings) = app
        .accounts
        .update(env, &slug(raw_slug)?, &choice, &selector, req)
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
        .data_providers(env, &choice, flag(query, "supports_multiple_connections")?)
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
    ApiJson(req): ApiJson<ImportAccount>,
) -> Created {
    import_account(&app, &env, &raw_slug, user_owner(&user_id, &query)?, req).await
}

async fn update_user_account(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    Path((user_id, raw_slug)): Path<(String, String)>,
    query: QueryMap,
    ApiJson(req): ApiJson<UpdateAccount>,
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
    ApiJson(req): ApiJson<ImportAccount>,
) -> Created {
    let acting = req.user_id.clone().ok_or_else(|| {
        ApiError::from(pipes_core::ServiceError::invalid_field(
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
    ApiJson(req): ApiJson<UpdateAccount>,
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
