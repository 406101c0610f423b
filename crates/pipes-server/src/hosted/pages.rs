//! The HTML of the hosted pages: plain, accessible, self-contained (no external assets).

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use pipes_core::services::{ConfirmScreen, PageOutcome};

/// A page that ends the flow, in words.
#[derive(Debug)]
pub struct Page {
    /// HTTP status.
    pub status: StatusCode,
    /// Whether the connection was made.
    pub success: bool,
    /// Heading.
    pub title: String,
    /// What happened and what to do.
    pub message: String,
    /// Error code, on failure.
    pub error: Option<String>,
}

impl Page {
    /// A failure page without a state.
    pub fn failure(status: StatusCode, title: &str, message: &str, error: &str) -> Self {
        Self {
            status,
            success: false,
            title: title.to_owned(),
            message: message.to_owned(),
            error: Some(error.to_owned()),
        }
    }
}

/// The words and status of each way a flow can end on a page.
impl From<PageOutcome> for Page {
    fn from(o: PageOutcome) -> Self {
        match o {
            PageOutcome::Connected { provider, .. } => Self {
                status: StatusCode::OK,
                success: true,
                title: format!("{provider} is connected"),
                message: "You can close this window and return to the application.".into(),
                error: None,
            },
            PageOutcome::Failed {
                provider,
                code,
                description,
                ..
            } => Self {
                status: StatusCode::BAD_REQUEST,
                success: false,
                title: format!("Could not connect {provider}"),
                message: format!("{description} Close this window and try connecting again from the application."),
                error: Some(code.to_owned()),
            },
            PageOutcome::Unverified => Self::failure(
                StatusCode::FORBIDDEN,
                "This request could not be verified",
                "The form was not submitted from this page. Go back to the application and start connecting again.",
                "invalid_csrf_token",
            ),
            PageOutcome::WrongBrowser { provider } => Self::failure(
                StatusCode::FORBIDDEN,
                &format!("Finish connecting {provider} where you started"),
                "For your safety, a connection completes only in the browser that started it. Nothing was saved. Go back to the application in the browser you started from and connect again.",
                "browser_mismatch",
            ),
            PageOutcome::Unmatched => Self::failure(
                StatusCode::BAD_REQUEST,
                "This sign-in could not be matched",
                "The provider sent you back with a link that is unknown, already used or expired. Close this window and start connecting again from the application.",
                "authorization_state_expired",
            ),
            PageOutcome::Expired => Self::failure(
                StatusCode::GONE,
                "This link has expired",
                "Connection links work once and only for a few minutes. Go back to the application and start connecting again.",
                "authorization_state_expired",
            ),
        }
    }
}

pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
:root { color-scheme: light dark; --fg: #1b1f24; --muted: #57606a; --bg: #f6f8fa; --card: #fff; --line: #d0d7de;
        --accent: #3b5bdb; --accent-fg: #fff; --bad: #c92a2a; --good: #2b8a3e; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --muted: #9da7b3; --bg: #0d1117; --card: #161b22;
        --line: #30363d; --accent: #5c7cfa; } }
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; display: grid; place-items: center; background: var(--bg); color: var(--fg);
       font: 16px/1.5 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; padding: 24px; }
main { width: 100%; max-width: 440px; background: var(--card); border: 1px solid var(--line); border-radius: 12px;
       padding: 32px; box-shadow: 0 8px 24px rgba(0,0,0,.06); }
h1 { font-size: 1.35rem; margin: 0 0 12px; }
p { margin: 0 0 16px; color: var(--muted); }
dl { margin: 0 0 24px; display: grid; grid-template-columns: auto 1fr; gap: 6px 16px; }
dt { color: var(--muted); } dd { margin: 0; font-weight: 600; word-break: break-all; }
.actions { display: flex; gap: 12px; }
button { flex: 1; font: inherit; font-weight: 600; padding: 10px 16px; border-radius: 8px; cursor: pointer;
         border: 1px solid var(--line); background: transparent; color: var(--fg); }
button.primary { background: var(--accent); border-color: var(--accent); color: var(--accent-fg); }
button:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.mark { font-size: 2rem; line-height: 1; margin-bottom: 12px; }
.ok { color: var(--good); } .bad { color: var(--bad); }
code { font-size: .85em; }
footer { margin-top: 24px; font-size: .8rem; color: var(--muted); }
ul.providers { list-style: none; margin: 0 0 20px; padding: 0; border: 1px solid var(--line); border-radius: 10px; }
ul.providers > li { padding: 14px 16px; border-top: 1px solid var(--line); }
ul.providers > li:first-child { border-top: 0; }
.head { display: flex; align-items: center; justify-content: space-between; gap: 12px; }
.name { font-weight: 600; margin: 0; color: var(--fg); } .desc { color: var(--muted); font-size: .9rem; margin: 2px 0 0; }
.status { font-size: .85rem; color: var(--muted); white-space: nowrap; }
form.fields { margin-top: 10px; } form.fields .actions { margin-top: 10px; }
label { display: block; font-size: .85rem; color: var(--muted); margin: 8px 0 4px; }
input { font: inherit; width: 100%; padding: 8px 10px; border: 1px solid var(--line); border-radius: 8px;
        background: var(--bg); color: var(--fg); }
input:focus-visible { outline: 3px solid var(--accent); outline-offset: 1px; }
button.small { flex: 0 0 auto; padding: 6px 14px; font-size: .9rem; }
.banner { padding: 10px 12px; border-radius: 8px; margin: 0 0 16px; border: 1px solid var(--line); }
.banner.bad { color: var(--bad); border-color: var(--bad); } .banner.ok { color: var(--good); border-color: var(--good); }
";

pub(super) fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{}</title><style>{STYLE}</style></head>\
         <body><main>{body}<footer>Secured by Pipes</footer></main></body></html>",
        escape(title)
    )
}

/// The confirmation screen: whose account this connection will belong to, Continue or Cancel.
pub fn confirm(s: &ConfirmScreen, action: &str) -> Response {
    let mut rows = format!("<dt>Account</dt><dd>{}</dd>", escape(&s.provider));
    if s.organization_owned {
        rows.push_str(&format!(
            "<dt>Shared with</dt><dd>organization {}</dd><dt>Connected by</dt><dd>{}</dd>",
            escape(s.organization_id.as_deref().unwrap_or("")),
            escape(&s.user_id)
        ));
    } else {
        rows.push_str(&format!("<dt>For user</dt><dd>{}</dd>", escape(&s.user_id)));
        if let Some(org) = &s.organization_id {
            rows.push_str(&format!("<dt>Organization</dt><dd>{}</dd>", escape(org)));
        }
    }
    if let Some(label) = &s.account_display_name {
        rows.push_str(&format!("<dt>Label</dt><dd>{}</dd>", escape(label)));
    }
    let body = format!(
        "<h1>Connect your {provider} account</h1>\
         <p>You are about to sign in to {provider} and connect the account you choose there to:</p>\
         <dl>{rows}</dl>\
         <p>Only continue if you started this from the application and this is you.</p>\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
         <div class=\"actions\">\
         <button type=\"submit\" name=\"action\" value=\"cancel\">Cancel</button>\
         <button type=\"submit\" name=\"action\" value=\"continue\" class=\"primary\" autofocus>Continue to {provider}</button>\
         </div></form>",
        provider = escape(&s.provider),
        action = escape(action),
        csrf = escape(&s.csrf_token),
    );
    Html(page(&format!("Connect {}", s.provider), &body)).into_response()
}

/// The page a widget's popup is pointed at: it waits for the opener's handoff message
/// (`{handoffToken, redirectToken}`), from the opener only and only at one of the environment's
/// web `origins`, acknowledges it, and continues to the provider by posting the handoff token.
/// Opened any other way (a forwarded link, a new tab, another site's popup), it never learns a
/// token it accepts and connects nothing.
pub fn handoff(provider: &str, origins: &[String], action: &str) -> Response {
    // JSON inside a script: escape '<' so no value can close the tag.
    let origins = serde_json::to_string(origins)
        .unwrap_or_else(|_| "[]".into())
        .replace('<', "\\u003c");
    let body = format!(
        "<div class=\"mark\" aria-hidden=\"true\">&#8635;</div>\
         <h1>Connecting to {provider}</h1>\
         <p id=\"status\" role=\"status\">Waiting for the application to hand over&hellip;</p>\
         <form id=\"handoff\" method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"csrf_token\"><input type=\"hidden\" name=\"action\" value=\"continue\"></form>\
         <script>var allowedOrigins = {origins};{HANDOFF_SCRIPT}</script>",
        provider = escape(provider),
        action = escape(action),
    );
    Html(page(&format!("Connecting to {provider}"), &body)).into_response()
}

const HANDOFF_SCRIPT: &str = "(function () {
  var done = false, form = document.getElementById('handoff'), status = document.getElementById('status');
  function stranded() {
    if (!done) { status.textContent = 'This page continues only when the application opens it. Close it and press Connect in the application again.'; }
  }
  if (!window.opener) { stranded(); return; }
  window.addEventListener('message', function (e) {
    var d = e.data;
    if (done || e.source !== window.opener || allowedOrigins.indexOf(e.origin) < 0) { return; }
    if (!d || typeof d.handoffToken !== 'string' || typeof d.redirectToken !== 'string') { return; }
    done = true;
    try { (e.source || window.opener).postMessage({ redirectToken: d.redirectToken }, e.origin); } catch (_) {}
    status.textContent = 'Opening the sign-in page\\u2026';
    form.elements.csrf_token.value = d.handoffToken;
    form.submit();
  });
  setTimeout(stranded, 15000);
})();";

/// `/pipes/redirecting`: what the widget's popup shows while the application starts a flow.
pub fn redirecting() -> Response {
    let body = "<div class=\"mark\" aria-hidden=\"true\">&#8635;</div><h1>One moment</h1>\
                <p role=\"status\">Preparing the sign-in page&hellip;</p>";
    Html(page("One moment", body)).into_response()
}

/// A page that ends the flow; tells an opener window (popup flows) whether it succeeded. The
/// opener's origin is unknown here, so the message says nothing an unrelated page that opened
/// the link may not learn: not the application's `state`, not the error.
pub fn outcome(p: &Page) -> Response {
    let mark = if p.success {
        "<div class=\"mark ok\" aria-hidden=\"true\">&#10003;</div>"
    } else {
        "<div class=\"mark bad\" aria-hidden=\"true\">!</div>"
    };
    let message = serde_json::json!({
        "type": "pipes:complete",
        "status": if p.success { "success" } else { "error" },
    });
    // JSON inside a script: escape '<' so the payload can never close the tag.
    let script = format!(
        "<script>if (window.opener) {{ window.opener.postMessage({}, '*'); }}</script>",
        message.to_string().replace('<', "\\u003c")
    );
    let detail = p
        .error
        .as_deref()
        .map(|e| format!("<p><code>{}</code></p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "{mark}<h1>{}</h1><p>{}</p>{detail}{script}",
        escape(&p.title),
        escape(&p.message)
    );
    (p.status, Html(page(&p.title, &body))).into_response()
}
