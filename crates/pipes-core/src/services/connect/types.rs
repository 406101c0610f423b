//! What the connection flow takes and gives: requests, outcomes, and the state it keeps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::super::selection::OwnerChoice;
use crate::domain::ConnectionIntent;
use crate::fields::Label;
use crate::secret::SecretString;
use crate::time::Millis;

/// `POST /data-integrations/{slug}/authorize`, parsed at the edge.
#[derive(Debug)]
pub struct Authorize {
    /// Whose connection, and who acts.
    pub choice: OwnerChoice,
    /// The user the connection is made by (the owner, or the acting member).
    pub user_id: String,
    /// Where the browser returns; checked against the registered redirect URIs.
    pub return_to: Option<String>,
    /// Session binding (S256, checked).
    pub code_challenge: Option<String>,
    /// Installation-scope config values.
    pub config: BTreeMap<String, String>,
    /// Which connection the flow makes or re-targets.
    pub intent: ConnectionIntent,
    /// Label for the connection: `Some(None)` clears it.
    pub display_name: Option<Option<Label>>,
    /// A widget flow: the hosted page proceeds only with the handoff token the widget posts
    /// to it.
    pub handoff: bool,
}

/// What `authorize` answers.
#[derive(Debug)]
pub struct AuthorizeOutcome {
    /// The authorization's id (the hosted URL's path segment).
    pub id: String,
    /// The hosted URL to send the browser to.
    pub url: String,
    /// The caller-facing state.
    pub state: String,
    /// Whether `finish` is required (session binding).
    pub finish_required: bool,
    /// For a widget flow: the token the widget posts to the hosted page to let it proceed.
    pub handoff_token: Option<SecretString>,
}

/// `POST /data-integrations/finish`.
#[derive(Debug, Deserialize)]
pub struct FinishRequest {
    /// From the `return_to` redirect.
    pub connect_code: SecretString,
    /// The verifier behind the challenge.
    pub code_verifier: SecretString,
    /// For log correlation only.
    #[serde(default)]
    pub state: Option<String>,
}

/// The provider's answer at the callback.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    /// Authorization code.
    pub code: Option<SecretString>,
    /// Our provider-facing state.
    pub state: Option<String>,
    /// The provider's error.
    pub error: Option<String>,
    /// Its description.
    pub error_description: Option<String>,
}

/// What the browser is shown or sent to.
#[derive(Debug)]
pub enum Ending {
    /// 302 to this URL.
    Redirect(String),
    /// 302 to the provider, giving the browser the cookie the callback must bring back.
    ToProvider {
        /// The provider's authorization URL.
        url: String,
        /// The authorization, which names the cookie.
        authorization: String,
        /// The cookie's value.
        browser: SecretString,
    },
    /// The confirmation screen.
    Confirm(ConfirmScreen),
    /// The page that waits for the widget's handoff, then continues to the provider.
    Handoff {
        /// Provider display name.
        provider: String,
        /// The web origins whose pages may hand over (the environment's allowed origins).
        origins: Vec<String>,
    },
    /// A final page (no `return_to`), or an error page.
    Page(PageOutcome),
}

/// What the confirmation screen shows.
pub struct ConfirmScreen {
    /// Provider display name.
    pub provider: String,
    /// The user the connection is for.
    pub user_id: String,
    /// The organization, if any.
    pub organization_id: Option<String>,
    /// Whether the organization will own it.
    pub organization_owned: bool,
    /// The label, if set.
    pub account_display_name: Option<String>,
    /// The form's CSRF token.
    pub csrf_token: String,
}

impl std::fmt::Debug for ConfirmScreen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfirmScreen")
            .field("provider", &self.provider)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// How a flow ended when there is no `return_to` to send the browser back to: what happened,
/// not how a page says it (the server's hosted pages own the words and the status codes).
#[derive(Debug)]
pub enum PageOutcome {
    /// The connection was made.
    Connected {
        /// Provider display name.
        provider: String,
        /// The caller's state.
        state: String,
    },
    /// The attempt failed; nothing was saved.
    Failed {
        /// Provider display name.
        provider: String,
        /// The error code also sent to `return_to` flows.
        code: &'static str,
        /// Why, in a sentence.
        description: String,
        /// The caller's state.
        state: String,
    },
    /// The confirmation form did not come from the confirmation page.
    Unverified,
    /// The provider sent back a browser other than the one the flow was sent from.
    WrongBrowser {
        /// Provider display name.
        provider: String,
    },
    /// The provider sent the browser back with a state no live authorization has.
    Unmatched,
    /// The link expired or was already used.
    Expired,
}

/// The tokens held between the callback and `finish`.
#[derive(Serialize, Deserialize)]
pub(super) struct HeldTokens {
    pub(super) access_token: String,
    pub(super) refresh_token: Option<String>,
    pub(super) expires_at: Option<Millis>,
    pub(super) scopes: Vec<String>,
    pub(super) metadata: BTreeMap<String, serde_json::Value>,
    pub(super) exchanged_at: Millis,
}

impl std::fmt::Debug for HeldTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeldTokens([REDACTED])")
    }
}

/// A failure that ends a flow in the browser.
#[derive(Debug)]
pub(super) struct FlowError {
    pub(super) code: &'static str,
    pub(super) description: String,
    /// The provider's own `error` and `error_description`, when it sent them.
    pub(super) provider_error: Option<(String, Option<String>)>,
}

impl FlowError {
    pub(super) fn new(code: &'static str, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            provider_error: None,
        }
    }

    /// The user or the provider refused: `error` as the provider (or our screen) said it.
    pub(super) fn refused(
        code: &'static str,
        description: String,
        error: &str,
        error_description: Option<String>,
    ) -> Self {
        Self {
            code,
            description,
            provider_error: Some((error.to_owned(), error_description)),
        }
    }
}
