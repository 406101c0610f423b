//! The hosted connect page (`/pipes/connect`) for applications without React: a server-rendered
//! list of the session's providers where the user connects (OAuth, API key, client credentials),
//! reauthorizes and disconnects, then tells the opener (popup) or goes back (`return_to`).
//!
//! The link's single-use code is traded on the first visit for an HttpOnly cookie scoped to this
//! page; every form carries the session's CSRF token. No credential that lasts is ever in a URL.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use pipes_core::catalog::ConfigScope;
use pipes_core::domain::{AccountState, AuthMethod, ConnectSession, ConnectionIntent, Environment};
use pipes_core::fields::Labels;
use pipes_core::secret::SecretString;
use pipes_core::services::{
    constant_time_eq, Authorize, Intent, Listing, OwnerChoice, OwnerInput, ProviderListing, StoreCredential,
    TenantSecret, CONNECT_PAGE,
};
use pipes_core::ServiceError;
use serde::Deserialize;

use super::pages::{escape, page};
use super::{cookie, harden, render};
use crate::state::App;

const COOKIE: &str = "pipes_connect";

pub fn routes() -> Router<App> {
    Router::new()
        .route(CONNECT_PAGE, get(show))
        .route("/pipes/connect/{slug}/{action}", post(act))
        .route("/pipes/connect/installations/{id}/disconnect", post(disconnect))
}

/// What the page's links and the flows' returns carry.
#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    code: Option<String>,
    error: Option<String>,
}

fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn expired() -> Response {
    let body = "<div class=\"mark bad\" aria-hidden=\"true\">!</div><h1>This link has expired</h1>\
                <p>Connection links work once and only for a while. Go back to the application and open it again.</p>";
    harden((StatusCode::GONE, Html(page("Link expired", body))).into_response())
}

fn failed(e: &ServiceError) -> String {
    match e {
        ServiceError::Internal(cause) | ServiceError::StorageUnavailable(cause) => {
            tracing::error!(error = %cause, "connect page failed");
            "Something went wrong. Try again in a moment.".to_owned()
        }
        other => other.to_string(),
    }
}

/// The session the request's cookie opens, with its owner.
async fn current(app: &App, headers: &HeaderMap) -> Option<(Environment, ConnectSession, OwnerChoice)> {
    let cookie = cookie(headers, COOKIE)?;
    let (env, session) = app.connect.session(&cookie).await.ok().flatten()?;
    let choice = OwnerInput {
        connection_owner: None,
        user_id: session.owner.user_id.as_deref(),
        organization_id: session.owner.organization_id.as_deref(),
    }
    .parse(true)
    .ok()?;
    Some((env, session, choice))
}

async fn show(State(app): State<App>, headers: HeaderMap, Query(q): Query<PageQuery>) -> Response {
    if let Some(code) = q.code.as_deref() {
        // The first visit: trade the code for the cookie and drop the code from the address.
        return match app.connect.open_session(code).await {
            Ok(Some(cookie)) => {
                let secure = if app.is_https() { "; Secure" } else { "" };
                let mut r = see_other(CONNECT_PAGE);
                let value = format!(
                    "{COOKIE}={}; Path={CONNECT_PAGE}; HttpOnly; SameSite=Lax; Max-Age=1800{secure}",
                    cookie.expose()
                );
                if let Ok(v) = HeaderValue::from_str(&value) {
                    r.headers_mut().insert(header::SET_COOKIE, v);
                }
                harden(r)
            }
            Ok(None) if cookie(&headers, COOKIE).is_some() => harden(see_other(CONNECT_PAGE)),
            Ok(None) => expired(),
            Err(e) => notice_page(&app, &headers, Some(failed(&e))).await,
        };
    }
    // The banner is Pipes' own words for the error code: free text from the URL would let
    // anyone put their words on this page with a crafted link.
    let banner = q.error.as_deref().map(connection_failed);
    notice_page(&app, &headers, banner).await
}

/// What the page says about a failed connection, by error code.
fn connection_failed(code: &str) -> String {
    let plain = !code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    match code {
        "access_denied" => "The connection was cancelled.".to_owned(),
        _ if plain => format!("The connection failed ({code}). Try again."),
        _ => "The connection failed. Try again.".to_owned(),
    }
}

/// The page, with a message when the last action failed.
async fn notice_page(app: &App, headers: &HeaderMap, problem: Option<String>) -> Response {
    let Some((env, session, choice)) = current(app, headers).await else {
        return expired();
    };
    let listing = Listing {
        plural: false,
        keep_connected: true,
    };
    let rows = match app.accounts.data_providers(&env, &choice, listing).await {
        Ok(rows) => rows,
        Err(e) => return harden(Html(page("Connections", &format!("<p>{}</p>", escape(&failed(&e))))).into_response()),
    };
    let rows: Vec<&ProviderListing> = rows.iter().filter(|l| offers(&session, l.root.slug.as_str())).collect();
    let status = if problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let team = env.settings.team_name.as_deref().unwrap_or("This application");
    harden((status, Html(list_html(app, team, &session, &rows, problem.as_deref()))).into_response())
}

fn list_html(
    app: &App,
    team: &str,
    session: &ConnectSession,
    rows: &[&ProviderListing],
    problem: Option<&str>,
) -> String {
    let csrf = escape(&session.csrf_token);
    let mut items = String::new();
    for l in rows {
        let slug = escape(l.root.slug.as_str());
        let account = l.compatibility.as_ref();
        let (status, class) = match account.map(|a| a.state) {
            None => ("Not connected", ""),
            Some(AccountState::Connected) => ("Connected", " ok"),
            Some(AccountState::NeedsReauthorization) => ("Needs reauthorization", " bad"),
        };
        let description = l
            .root
            .description
            .as_deref()
            .map(|d| format!("<p class=\"desc\">{}</p>", escape(d)))
            .unwrap_or_default();
        let fields = installation_fields(app, l);
        let action = |what: &str, label: &str, inputs: &str| {
            format!(
                "<form class=\"fields\" method=\"post\" action=\"/pipes/connect/{slug}/{what}\">\
                 <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">{inputs}\
                 <div class=\"actions\"><button class=\"primary small\" type=\"submit\">{label}</button></div></form>"
            )
        };
        let controls = match (l.root.auth_method, account) {
            (AuthMethod::Oauth, Some(a)) if a.state == AccountState::Connected => String::new(),
            (AuthMethod::Oauth, Some(_)) => action("authorize", "Reauthorize", &fields),
            (AuthMethod::Oauth, None) => action("authorize", "Connect", &fields),
            (AuthMethod::ApiKey, a) => action(
                "api-key",
                if a.is_some() { "Replace key" } else { "Connect" },
                &format!(
                    "<label for=\"key-{slug}\">API key</label>\
                     <input id=\"key-{slug}\" name=\"secret\" type=\"password\" autocomplete=\"off\" required>"
                ),
            ),
            (AuthMethod::ClientCredentials, a) => action(
                "client-credentials",
                if a.is_some() { "Replace credentials" } else { "Connect" },
                &format!(
                    "<label for=\"id-{slug}\">Client ID</label>\
                     <input id=\"id-{slug}\" name=\"client_id\" autocomplete=\"off\" required>\
                     <label for=\"secret-{slug}\">Client secret</label>\
                     <input id=\"secret-{slug}\" name=\"client_secret\" type=\"password\" autocomplete=\"off\" required>{fields}"
                ),
            ),
        };
        let disconnect = account
            .map(|a| {
                format!(
                    "<form method=\"post\" action=\"/pipes/connect/installations/{}/disconnect\">\
                     <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
                     <button class=\"small\" type=\"submit\">Disconnect</button></form>",
                    escape(&a.id.to_string())
                )
            })
            .unwrap_or_default();
        items.push_str(&format!(
            "<li><div class=\"head\"><div><p class=\"name\">{name}</p>{description}</div>\
             <span class=\"status{class}\">{status}</span>{disconnect}</div>{controls}</li>",
            name = escape(&l.name),
        ));
    }
    if rows.is_empty() {
        items.push_str("<li><p class=\"desc\">No integrations are available yet.</p></li>");
    }
    let banner = problem
        .map(|p| format!("<div class=\"banner bad\" role=\"alert\">{}</div>", escape(p)))
        .unwrap_or_default();
    let done = done_html(session);
    let whose = match (&session.owner.user_id, &session.owner.organization_id) {
        (Some(user), Some(org)) => format!(
            "user <strong>{}</strong> in organization <strong>{}</strong>",
            escape(user),
            escape(org)
        ),
        (Some(user), None) => format!("user <strong>{}</strong>", escape(user)),
        _ => String::new(),
    };
    let body = format!(
        "<h1>Your connections</h1><p>{team} uses Pipes to connect to these services for you.</p>\
         <p>Accounts you connect here are saved for {whose}. Only continue if this is you.</p>\
         {banner}<ul class=\"providers\">{items}</ul>{done}",
        team = escape(team)
    );
    page("Your connections", &body)
}

/// "Done": tells a popup's opener and closes, or goes back to the application.
fn done_html(session: &ConnectSession) -> String {
    let opener = serde_json::to_string(&session.opener_origin).unwrap_or_else(|_| "null".into());
    let back = session.return_to.as_deref().map(escape).unwrap_or_default();
    let link = if back.is_empty() {
        "<button class=\"primary\" type=\"button\" id=\"done\">Done</button>".to_owned()
    } else {
        format!("<a href=\"{back}\" id=\"done\"><button class=\"primary\" type=\"button\" tabindex=\"-1\">Done</button></a>")
    };
    format!(
        "<div class=\"actions\">{link}</div><script>(function () {{\
           var opener = {opener}; var done = document.getElementById('done');\
           done.addEventListener('click', function (e) {{\
             if (window.opener && opener) {{ e.preventDefault();\
               window.opener.postMessage({{ type: 'pipes:connect', status: 'done' }}, opener); window.close(); }}\
             else if (done.tagName === 'BUTTON') {{ window.close(); }}\
           }});\
         }})();</script>",
        opener = opener.replace('<', "\\u003c")
    )
}

/// Inputs for the provider's per-connection config fields.
fn installation_fields(app: &App, l: &ProviderListing) -> String {
    let Some(provider) = app.catalog.for_root(&l.root) else {
        return String::new();
    };
    provider
        .config
        .iter()
        .filter(|f| f.scope == ConfigScope::Installation && !l.root.config.contains_key(&f.key))
        .map(|f| {
            let id = format!("cfg-{}-{}", l.root.slug, f.key);
            format!(
                "<label for=\"{id}\">{label}</label><input id=\"{id}\" name=\"config.{key}\"{required}{placeholder}>",
                id = escape(&id),
                label = escape(&f.label),
                key = escape(&f.key),
                required = if f.required && f.default.is_none() {
                    " required"
                } else {
                    ""
                },
                placeholder = f
                    .example
                    .as_deref()
                    .map(|e| format!(" placeholder=\"{}\"", escape(e)))
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// The fields of the page's forms.
type Fields = BTreeMap<String, String>;

/// The session a form was posted in, if it carries the session's CSRF token; otherwise the
/// page to answer with.
async fn posted(
    app: &App,
    headers: &HeaderMap,
    fields: &Fields,
) -> Result<(Environment, ConnectSession, OwnerChoice), Response> {
    let Some((env, session, choice)) = current(app, headers).await else {
        return Err(expired());
    };
    let token = fields.get("csrf_token").map(String::as_bytes).unwrap_or_default();
    if !constant_time_eq(token, session.csrf_token.as_bytes()) {
        let problem = "The form was not sent from this page; try again.".to_owned();
        return Err(notice_page(app, headers, Some(problem)).await);
    }
    Ok((env, session, choice))
}

/// Whether the session offers this provider.
fn offers(session: &ConnectSession, slug: &str) -> bool {
    session.providers.is_empty() || session.providers.iter().any(|p| p == slug)
}

fn config_of(fields: &Fields) -> BTreeMap<String, String> {
    fields
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("config.")?.to_owned(), v.clone())))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

async fn act(
    State(app): State<App>,
    headers: HeaderMap,
    Path((raw_slug, action)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Response {
    let (env, session, choice) = match posted(&app, &headers, &fields).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let slug = match pipes_core::slug::Slug::parse(&raw_slug) {
        Ok(slug) if offers(&session, slug.as_str()) => slug,
        _ => return notice_page(&app, &headers, Some("This page does not offer that provider.".into())).await,
    };
    let outcome = match action.as_str() {
        "authorize" => {
            let req = Authorize {
                user_id: choice.acting_user.clone().unwrap_or_default(),
                choice,
                return_to: Some(app.connect.connect_page()),
                code_challenge: None,
                config: config_of(&fields),
                intent: ConnectionIntent::Compatibility,
                display_name: None,
                handoff: true,
            };
            // The page itself is the session's proof: straight on to the provider.
            match app.connect.authorize(&env, &slug, req).await {
                Ok(out) => {
                    let token = out.handoff_token.map(|t| t.expose().to_owned()).unwrap_or_default();
                    return match app.connect.confirm(&out.id, &token, false).await {
                        Ok(ending) => render(ending, "", app.is_https()),
                        Err(e) => notice_page(&app, &headers, Some(failed(&e))).await,
                    };
                }
                Err(e) => Err(e),
            }
        }
        "api-key" | "client-credentials" => {
            let secret = if action == "api-key" {
                TenantSecret::api_key(fields.get("secret").map(|s| SecretString::new(s.trim())))
            } else {
                TenantSecret::client(
                    fields.get("client_id").cloned(),
                    fields.get("client_secret").map(SecretString::new),
                )
            };
            match secret {
                Ok(secret) => {
                    let config = Some(config_of(&fields)).filter(|c| !c.is_empty());
                    let req = StoreCredential {
                        choice,
                        intent: Intent::Compatibility,
                        secret,
                        labels: Labels::default(),
                        config,
                    };
                    app.stored.put(&env, &slug, req).await.map(|_| ())
                }
                Err(e) => Err(e),
            }
        }
        _ => Err(ServiceError::not_found("No such action.")),
    };
    match outcome {
        Ok(()) => harden(see_other(CONNECT_PAGE)),
        Err(e) => notice_page(&app, &headers, Some(failed(&e))).await,
    }
}

async fn disconnect(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let (env, session, choice) = match posted(&app, &headers, &fields).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    // Only a connection the page shows (one of the session's providers).
    let listing = Listing {
        plural: true,
        keep_connected: true,
    };
    let shown = match app.accounts.data_providers(&env, &choice, listing).await {
        Ok(rows) => rows
            .iter()
            .filter(|l| offers(&session, l.root.slug.as_str()))
            .any(|l| l.listed.iter().any(|a| a.id.to_string() == id)),
        Err(e) => return notice_page(&app, &headers, Some(failed(&e))).await,
    };
    if !shown {
        return notice_page(&app, &headers, Some("This page does not show that connection.".into())).await;
    }
    match app.accounts.delete_owned(&env, &choice, &id).await {
        Ok(()) => harden(see_other(CONNECT_PAGE)),
        Err(e) => notice_page(&app, &headers, Some(failed(&e))).await,
    }
}
