//! Wire shapes (`*View`). Every key the SDKs treat as "always present" is always serialised,
//! `null` included.

use std::collections::BTreeMap;

use pipes_core::domain::{CustomProviderDefinition, DataIntegration};
use pipes_core::pagination::Page;
use pipes_core::time::format_ms;
use serde::Serialize;

/// `list_metadata` of paginated lists.
#[derive(Debug, Serialize)]
pub struct ListMetadata {
    /// Cursor toward the start.
    pub before: Option<String>,
    /// Cursor toward the end; `null` on the last page.
    pub after: Option<String>,
}

/// A paginated list envelope.
#[derive(Debug, Serialize)]
pub struct ListView<T: Serialize> {
    /// Always `list`.
    pub object: &'static str,
    /// The rows.
    pub data: Vec<T>,
    /// Cursors.
    pub list_metadata: ListMetadata,
}

impl<T: Serialize> ListView<T> {
    /// Maps a page's rows into views.
    pub fn from_page<R>(page: Page<R>, view: impl Fn(&R) -> T) -> Self {
        Self {
            object: "list",
            data: page.data.iter().map(view).collect(),
            list_metadata: ListMetadata {
                before: page.before,
                after: page.after,
            },
        }
    }
}

/// `credentials` of a data integration.
#[derive(Debug, Serialize)]
pub struct CredentialView {
    #[serde(rename = "type")]
    kind: &'static str,
    client_id: Option<String>,
    redacted_client_secret: Option<String>,
}

/// The DataIntegration object.
#[derive(Debug, Serialize)]
pub struct DataIntegrationView {
    object: &'static str,
    id: String,
    slug: String,
    integration_type: String,
    ownership: &'static str,
    description: Option<String>,
    enabled: bool,
    state: &'static str,
    scopes: Option<Vec<String>>,
    redirect_uri: String,
    auth_methods: [&'static str; 1],
    credentials: Option<CredentialView>,
    installation: Option<serde_json::Value>,
    config: BTreeMap<String, String>,
    custom_provider: Option<CustomProviderDefinition>,
    created_at: String,
    updated_at: String,
}

impl DataIntegrationView {
    /// The view of a root; `public_url` builds its redirect URI.
    pub fn new(root: &DataIntegration, public_url: &str) -> Self {
        Self {
            object: "data_integration",
            id: root.id.to_string(),
            slug: root.slug.to_string(),
            integration_type: root.slug.to_string(),
            ownership: root.ownership.as_str(),
            description: root.description.clone(),
            enabled: root.enabled,
            state: root.state.as_str(),
            scopes: root.scopes.clone(),
            redirect_uri: root.redirect_uri(public_url),
            auth_methods: [root.auth_method.as_str()],
            credentials: root.credentials.as_ref().map(|c| CredentialView {
                kind: c.kind.as_str(),
                client_id: c.client_id.clone(),
                redacted_client_secret: c.client_secret_last4.clone(),
            }),
            installation: None,
            config: root.config.clone(),
            custom_provider: root.custom_provider.as_ref().map(|cp| cp.definition.clone()),
            created_at: format_ms(root.created_at),
            updated_at: format_ms(
                root.updated_at
                    .max(root.custom_provider.as_ref().map_or(0, |cp| cp.updated_at)),
            ),
        }
    }
}
