//! The widget API (`/_widgets/…`): what WorkOS's `<Pipes/>` and `<PipesAdmin/>` React widgets
//! call from the browser. A widget token is the only credential these routes accept; it names
//! the environment, the user and the organization, and every route acts for exactly those.
//! Browsers reach the routes across origins: CORS answers from each environment's allowed web
//! origins (`pipes origins add`), and only here; the API-key API stays backend-only.

mod admin;
mod auth;
mod member;
mod views;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::MethodRouter;
use axum::{Json, Router};
use serde_json::json;

use crate::state::App;

pub use auth::Widget;

/// Every widget route, behind the CORS layer.
pub fn routes(app: &App) -> Router<App> {
    Router::new()
        .merge(member::routes())
        .merge(admin::routes())
        .layer(axum::middleware::from_fn_with_state(app.clone(), cors))
}

/// What the widgets send, so what a preflight allows.
const ALLOW_METHODS: &str = "GET, POST, PUT, DELETE";
const ALLOW_HEADERS: &str = "Authorization, Content-Type, WorkOS-Widgets-Type, WorkOS-Widgets-Version";

/// Answers preflights and marks responses readable by an allowed origin. An origin is allowed
/// here when some environment allows it; the route then checks that the token's environment
/// does, so a page of one environment's origin reads nothing of another's.
async fn cors(State(app): State<App>, req: Request, next: Next) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let allowed = match origin.as_ref().and_then(|o| o.to_str().ok()) {
        Some(o) => app.store.origin_allowed_anywhere(o).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read the allowed web origins");
            false
        }),
        None => false,
    };
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    if let (true, Some(origin)) = (allowed, origin) {
        allow(h, origin);
    }
    response
}

fn allow(h: &mut HeaderMap, origin: HeaderValue) {
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOW_METHODS),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOW_HEADERS),
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
}

/// A widget route that also answers its CORS preflight (the layer adds the headers).
fn preflight(route: MethodRouter<App>) -> MethodRouter<App> {
    route.options(|| async { StatusCode::NO_CONTENT })
}

/// The body of a successful delete: the widgets parse every 2xx as JSON.
fn deleted() -> Json<serde_json::Value> {
    Json(json!({ "success": true }))
}
