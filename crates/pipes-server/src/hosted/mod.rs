//! Browser pages: the authorize link, the confirmation screen and the provider callback.
//! They are unauthenticated and protected by unguessable single-use identifiers, a CSRF token
//! on the confirmation form, and headers that forbid framing, caching and referrers.

mod connect_page;
mod pages;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use pipes_core::services::{CallbackQuery, Ending, PageOutcome};
use serde::Deserialize;

use self::pages::Page;
use crate::error::ApiError;
use crate::state::App;

pub fn routes() -> Router<App> {
    Router::new()
        .merge(connect_page::routes())
        .route("/data-integrations/{id}/authorize-redirect", get(land).post(confirm))
        .route("/data-integrations/{slug}/{dik}/callback", get(callback))
        .route("/pipes/redirecting", get(|| async { harden(pages::redirecting()) }))
}

/// Security headers for every hosted page and redirect.
fn harden(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    r
}

/// The cookie that binds a flow to the browser sent to the provider.
fn browser_cookie(authorization: &str) -> String {
    format!("pipes_flow_{authorization}")
}

/// A request's cookie, by name.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.to_owned())
}

fn redirect(url: &str) -> Response {
    match HeaderValue::from_str(url) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => ApiError::internal("redirect URL is not a valid header".into()).into_response(),
    }
}

fn render(ending: Ending, action: &str, secure: bool) -> Response {
    harden(match ending {
        Ending::Redirect(url) => redirect(&url),
        Ending::ToProvider {
            url,
            authorization,
            browser,
        } => {
            let mut r = redirect(&url);
            // Sent back by the provider's top-level redirect to the callback (SameSite=Lax).
            let value = format!(
                "{}={}; Path=/data-integrations/; HttpOnly; SameSite=Lax; Max-Age=1800{}",
                browser_cookie(&authorization),
                browser.expose(),
                if secure { "; Secure" } else { "" }
            );
            if let Ok(v) = HeaderValue::from_str(&value) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        Ending::Confirm(screen) => pages::confirm(&screen, action).into_response(),
        Ending::Handoff { provider, origins } => pages::handoff(&provider, &origins, action).into_response(),
        Ending::Page(page) => pages::outcome(&page.into()).into_response(),
    })
}

fn internal(e: pipes_core::ServiceError) -> Response {
    let status = match e {
        pipes_core::ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        pipes_core::ServiceError::StorageUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    tracing::error!(error = %e, "hosted page failed");
    harden(
        pages::outcome(&Page::failure(
            status,
            "Something went wrong",
            "Pipes could not complete this step. Close this window and try connecting again from the application.",
            "internal_error",
        ))
        .into_response(),
    )
}

async fn land(State(app): State<App>, Path(id): Path<String>) -> Response {
    match app.connect.land(&id).await {
        Ok(ending) => render(
            ending,
            &format!("/data-integrations/{id}/authorize-redirect"),
            app.is_https(),
        ),
        Err(e) => internal(e),
    }
}

#[derive(Debug, Deserialize)]
struct ConfirmForm {
    csrf_token: String,
    #[serde(default)]
    action: Option<String>,
}

async fn confirm(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: Result<Form<ConfirmForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    // Only this page may continue a flow: a form another site makes the browser post (with a
    // token its author read or was handed) is refused. Browsers say where a request comes from.
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() != b"same-origin")
    {
        return harden(pages::outcome(&PageOutcome::Unverified.into()).into_response());
    }
    let Ok(Form(form)) = form else {
        return harden(
            pages::outcome(&Page::failure(
                StatusCode::BAD_REQUEST,
                "This request could not be verified",
                "Go back to the application and start connecting again.",
                "invalid_request",
            ))
            .into_response(),
        );
    };
    let cancel = form.action.as_deref() == Some("cancel");
    match app.connect.confirm(&id, &form.csrf_token, cancel).await {
        Ok(ending) => render(
            ending,
            &format!("/data-integrations/{id}/authorize-redirect"),
            app.is_https(),
        ),
        Err(e) => internal(e),
    }
}

async fn callback(
    State(app): State<App>,
    Path((slug, dik)): Path<(String, String)>,
    headers: HeaderMap,
    query: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let browser = |authorization: &str| cookie(&headers, &browser_cookie(authorization));
    match app.connect.callback(&slug, &dik, q, &browser).await {
        Ok(ending) => render(ending, "", false),
        Err(e) => internal(e),
    }
}
