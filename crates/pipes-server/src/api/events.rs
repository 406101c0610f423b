//! `GET /events`: the stored bodies, byte for byte, in the contract's envelope.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use pipes_core::pagination::Order;
use pipes_core::services::EventQuery;

use crate::auth::EnvAuth;
use crate::error::ApiError;
use crate::extract::QueryMap;
use crate::state::App;

pub fn routes() -> Router<App> {
    Router::new().route("/events", get(list_events))
}

async fn list_events(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    query: QueryMap,
) -> Result<impl IntoResponse, ApiError> {
    let page = query.page(Order::Asc)?;
    let filters = EventQuery {
        events: query.many("events"),
        range_start: query.one("range_start")?,
        range_end: query.one("range_end")?,
        organization_id: query.one("organization_id")?,
    };
    let page = app.events.list(&env, filters, page).await?;
    // The events are already JSON: splice them in rather than parse and re-serialise.
    let mut body = String::with_capacity(64 + page.data.iter().map(|e| e.body.len() + 1).sum::<usize>());
    body.push_str(r#"{"object":"list","data":["#);
    for (i, e) in page.data.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&e.body);
    }
    body.push_str(r#"],"list_metadata":{"after":"#);
    body.push_str(&serde_json::to_string(&page.after).unwrap_or_else(|_| "null".into()));
    body.push_str("}}");
    Ok(([(header::CONTENT_TYPE, "application/json")], body))
}
