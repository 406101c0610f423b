//! The built-in provider catalog: one TOML file per provider in `providers/`, embedded at build
//! time. Provider quirks are fields here, never `if slug == …` in the engine.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::Regex;
use serde::Deserialize;

use crate::domain::{
    AuthMethod, AuthenticateVia, DataIntegration, Effective, OrganizationSettings, TokenBodyContentType,
};

mod files {
    include!(concat!(env!("OUT_DIR"), "/providers.rs"));
}

/// Where a config value is supplied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigScope {
    /// Pinned on the integration by the developer or the organization.
    Integration,
    /// Supplied per connection at connect time.
    Installation,
}

/// How long access tokens live, as far as the catalog knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenExpiry {
    /// Use `expires_in` from the token response.
    FromResponse,
    /// Tokens do not expire.
    Never,
    /// Expiry is not reported (e.g. Salesforce sessions): refresh on a schedule or on a 401.
    Unknown,
}

/// Refresh-token behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshModel {
    /// No refresh tokens.
    None,
    /// Refresh tokens that stay valid across refreshes.
    Static,
    /// Each refresh returns a new refresh token and invalidates the old one.
    Rotating,
}

/// A provider-declared config field (tenant, subdomain, login host…).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigField {
    /// Key used in `config` maps and `${config.key}` placeholders.
    pub key: String,
    /// Label for forms.
    pub label: String,
    /// Help text.
    #[serde(default)]
    pub description: Option<String>,
    /// Example value.
    #[serde(default)]
    pub example: Option<String>,
    /// Value used when none is given.
    #[serde(default)]
    pub default: Option<String>,
    /// Anchored regular expression the value must match.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Whether a value (or a default) is required.
    #[serde(default)]
    pub required: bool,
    /// Secret values are never shown back.
    #[serde(default)]
    pub secret: bool,
    /// Integration- or installation-scope.
    pub scope: ConfigScope,
    #[serde(skip)]
    compiled: Option<Regex>,
}

impl ConfigField {
    /// Whether `value` is acceptable for this field.
    pub fn accepts(&self, value: &str) -> bool {
        !value.is_empty() && self.compiled.as_ref().is_none_or(|re| re.is_match(value))
    }
}

fn default_separator() -> String {
    " ".to_owned()
}
fn default_client_auth() -> AuthenticateVia {
    AuthenticateVia::RequestBody
}
fn default_token_body() -> TokenBodyContentType {
    TokenBodyContentType::Form
}
fn default_expiry() -> TokenExpiry {
    TokenExpiry::FromResponse
}
fn default_refresh() -> RefreshModel {
    RefreshModel::Static
}
fn default_auth_method() -> AuthMethod {
    AuthMethod::Oauth
}

/// One built-in provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    /// Catalog key; equals the file name.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Another provider whose fields this one starts from (Google products share endpoints).
    #[serde(default)]
    pub extends: Option<String>,
    /// How accounts authenticate.
    #[serde(default = "default_auth_method")]
    pub auth_method: AuthMethod,
    /// Authorization endpoint; may contain `${config.key}`.
    #[serde(default)]
    pub authorization_url: Option<String>,
    /// Token endpoint; may contain `${config.key}`.
    #[serde(default)]
    pub token_url: Option<String>,
    /// Refresh endpoint when it differs from the token endpoint.
    #[serde(default)]
    pub refresh_token_url: Option<String>,
    /// Joins requested scopes.
    #[serde(default = "default_separator")]
    pub scope_separator: String,
    /// Send PKCE (S256) on the authorization request.
    #[serde(default)]
    pub pkce: bool,
    /// Client authentication at the token endpoint.
    #[serde(default = "default_client_auth")]
    pub client_auth: AuthenticateVia,
    /// Token request body encoding.
    #[serde(default = "default_token_body")]
    pub token_body: TokenBodyContentType,
    /// Extra headers on token requests (GitHub needs `Accept: application/json`).
    #[serde(default)]
    pub token_request_headers: BTreeMap<String, String>,
    /// The token endpoint may report errors in a 2xx body (`error` field).
    #[serde(default)]
    pub errors_in_success_body: bool,
    /// Scopes requested when the integration sets none.
    #[serde(default)]
    pub default_scopes: Vec<String>,
    /// Extra authorization-request parameters (`access_type=offline`, `prompt=consent`…).
    #[serde(default)]
    pub authorization_params: BTreeMap<String, String>,
    /// Access-token lifetime model.
    #[serde(default = "default_expiry")]
    pub token_expiry: TokenExpiry,
    /// Refresh-token model.
    #[serde(default = "default_refresh")]
    pub refresh: RefreshModel,
    /// Refresh idle connections at least this often so the provider keeps the grant alive.
    #[serde(default)]
    pub keepalive_hours: Option<u32>,
    /// Non-secret token-response fields kept as connection metadata (`instance_url`).
    #[serde(default)]
    pub metadata_fields: Vec<String>,
    /// How long to treat an access token as valid when the token response has no
    /// `expires_in` (sessions that end by the provider's policy), so it is renewed in time.
    #[serde(default)]
    pub assumed_lifetime_seconds: Option<i64>,
    /// Where the provider's API lives, for Relay path routing.
    #[serde(default)]
    pub api_base_url: Option<String>,
    /// Hosts Relay may call with this provider's credential; may contain `${config.key}`.
    #[serde(default)]
    pub relay_hosts: Vec<String>,
    /// Declared config fields.
    #[serde(default)]
    pub config: Vec<ConfigField>,
    /// The provider's developer documentation.
    #[serde(default)]
    pub docs_url: Option<String>,
}

impl Provider {
    /// The declared config field with this key.
    pub fn config_field(&self, key: &str) -> Option<&ConfigField> {
        self.config.iter().find(|f| f.key == key)
    }
}

/// The loaded, validated catalog.
#[derive(Debug)]
pub struct Catalog {
    providers: BTreeMap<String, Provider>,
    /// Other authentication methods of a provider (`[variants.client_credentials]` in its
    /// file): the same slug and name, everything else stated by the variant.
    variants: Vec<Provider>,
}

impl Catalog {
    /// The built-in catalog, loaded and validated once.
    pub fn builtin() -> Result<&'static Catalog, String> {
        static CATALOG: OnceLock<Result<Catalog, String>> = OnceLock::new();
        CATALOG
            .get_or_init(|| Catalog::load(files::PROVIDER_FILES))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Loads a catalog from (file name, TOML) pairs, resolving `extends` and validating.
    pub fn load(files: &[(&str, &str)]) -> Result<Catalog, String> {
        let mut tables = BTreeMap::new();
        for (name, text) in files {
            let table: toml::Table = toml::from_str(text).map_err(|e| format!("{name}: {e}"))?;
            let stem = name.trim_end_matches(".toml").to_owned();
            tables.insert(stem, table);
        }
        let mut providers = BTreeMap::new();
        let mut variants = Vec::new();
        for (stem, table) in &tables {
            let mut merged = table.clone();
            if let Some(base) = table.get("extends").and_then(|v| v.as_str()) {
                let base_table = tables
                    .get(base)
                    .ok_or_else(|| format!("{stem}.toml: extends unknown provider '{base}'"))?;
                if base_table.contains_key("extends") {
                    return Err(format!("{stem}.toml: '{base}' itself extends another provider"));
                }
                merged = base_table.clone();
                for (k, v) in table {
                    merged.insert(k.clone(), v.clone());
                }
            }
            let variant_tables = match merged.remove("variants") {
                None => toml::Table::new(),
                Some(toml::Value::Table(t)) => t,
                Some(_) => return Err(format!("{stem}.toml: variants must be a table")),
            };
            let mut provider: Provider = toml::Value::Table(merged)
                .try_into()
                .map_err(|e| format!("{stem}.toml: {e}"))?;
            validate(stem, &mut provider)?;
            for (method, body) in variant_tables {
                let toml::Value::Table(mut body) = body else {
                    return Err(format!("{stem}.toml: variants.{method} must be a table"));
                };
                if AuthMethod::parse(&method).is_none_or(|m| m == provider.auth_method) {
                    return Err(format!("{stem}.toml: variants.{method} is not another auth method"));
                }
                body.insert("slug".into(), provider.slug.clone().into());
                body.insert("name".into(), provider.name.clone().into());
                body.insert("auth_method".into(), method.clone().into());
                let mut variant: Provider = toml::Value::Table(body)
                    .try_into()
                    .map_err(|e| format!("{stem}.toml: variants.{method}: {e}"))?;
                validate(stem, &mut variant)?;
                variants.push(variant);
            }
            providers.insert(provider.slug.clone(), provider);
        }
        Ok(Catalog { providers, variants })
    }

    /// A provider by slug, as described for its main authentication method.
    pub fn get(&self, slug: &str) -> Option<&Provider> {
        self.providers.get(slug)
    }

    /// A provider by slug as described for `method`.
    pub fn get_with(&self, slug: &str, method: AuthMethod) -> Option<&Provider> {
        self.get(slug)
            .filter(|p| p.auth_method == method)
            .or_else(|| self.variants.iter().find(|v| v.slug == slug && v.auth_method == method))
    }

    /// The built-in provider a root uses, with the root's authentication method; `None` for
    /// custom providers.
    pub fn for_root(&self, root: &DataIntegration) -> Option<&Provider> {
        match root.custom_provider {
            Some(_) => None,
            None => self.get_with(root.slug.as_str(), root.auth_method),
        }
    }

    /// Every authentication method a provider supports, the main one first.
    pub fn auth_methods(&self, slug: &str) -> Vec<AuthMethod> {
        let variants = self.variants.iter().filter(|v| v.slug == slug).map(|v| v.auth_method);
        self.get(slug)
            .map(|p| p.auth_method)
            .into_iter()
            .chain(variants)
            .collect()
    }

    /// Every provider, by slug.
    pub fn iter(&self) -> impl Iterator<Item = &Provider> {
        self.providers.values()
    }
}

/// `${config.key}` placeholders in a template.
pub fn placeholders(template: &str) -> Vec<&str> {
    let mut out = vec![];
    let mut rest = template;
    while let Some(start) = rest.find("${config.") {
        let after = &rest[start + 9..];
        match after.find('}') {
            Some(end) => {
                out.push(&after[..end]);
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}

fn validate(stem: &str, p: &mut Provider) -> Result<(), String> {
    let err = |msg: String| Err(format!("{stem}.toml: {msg}"));
    if p.slug != stem {
        return err(format!("slug '{}' must equal the file name", p.slug));
    }
    if crate::slug::Slug::parse(&p.slug).is_err() {
        return err("slug is not lowercase kebab-case".into());
    }
    for field in &mut p.config {
        if let Some(pattern) = &field.pattern {
            let re = Regex::new(&format!("^(?:{pattern})$"))
                .map_err(|e| format!("{stem}.toml: config '{}' pattern: {e}", field.key))?;
            if let Some(default) = &field.default {
                if !re.is_match(default) {
                    return err(format!("config '{}' default does not match its pattern", field.key));
                }
            }
            field.compiled = Some(re);
        }
    }
    let mut urls: Vec<(&str, &str)> = vec![];
    match p.auth_method {
        AuthMethod::Oauth => {
            let (Some(a), Some(t)) = (&p.authorization_url, &p.token_url) else {
                return err("oauth providers need authorization_url and token_url".into());
            };
            urls.push(("authorization_url", a));
            urls.push(("token_url", t));
        }
        AuthMethod::ClientCredentials => {
            let Some(t) = &p.token_url else {
                return err("client_credentials providers need token_url".into());
            };
            urls.push(("token_url", t));
        }
        AuthMethod::ApiKey => {}
    }
    if let Some(r) = &p.refresh_token_url {
        urls.push(("refresh_token_url", r));
    }
    if let Some(b) = &p.api_base_url {
        urls.push(("api_base_url", b));
    }
    for (what, template) in urls {
        for key in placeholders(template) {
            if p.config_field(key).is_none() {
                return err(format!("{what} uses undeclared config field '{key}'"));
            }
        }
        let probe = template.replace("${config.", "x").replace('}', "");
        let parsed = url::Url::parse(&probe).map_err(|e| format!("{stem}.toml: {what}: {e}"))?;
        if parsed.scheme() != "https" {
            return err(format!("{what} must be https"));
        }
    }
    for host in &p.relay_hosts {
        if host.contains('/') || host.contains(':') || host.is_empty() {
            return err(format!("relay host '{host}' must be a bare host name"));
        }
        for key in placeholders(host) {
            if p.config_field(key).is_none() {
                return err(format!("relay host uses undeclared config field '{key}'"));
            }
        }
    }
    if p.scope_separator.is_empty() {
        return err("scope_separator must not be empty".into());
    }
    Ok(())
}

/// The rules the catalog decides for a root.
impl Catalog {
    /// The scopes a root requests: its own, else its provider's defaults; `None` when neither
    /// names any.
    pub fn requested_scopes(&self, root: &DataIntegration) -> Option<Vec<String>> {
        root.scopes.clone().or_else(|| {
            self.for_root(root)
                .map(|p| p.default_scopes.clone())
                .filter(|s| !s.is_empty())
        })
    }

    /// What an organization gets of a root: the root's settings with `settings` on top.
    pub fn effective(&self, root: &DataIntegration, settings: Option<OrganizationSettings>) -> Effective {
        Effective {
            enabled: settings.as_ref().and_then(|s| s.enabled).unwrap_or(root.enabled),
            scopes: settings
                .as_ref()
                .and_then(|s| s.scopes.clone())
                .or_else(|| self.requested_scopes(root)),
            settings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_catalog_loads_and_has_the_first_providers() {
        let catalog = Catalog::builtin().expect("catalog is valid");
        for slug in [
            "github",
            "gitlab",
            "google",
            "google-calendar",
            "google-drive",
            "gmail",
            "microsoft",
            "slack",
            "notion",
            "linear",
            "atlassian",
            "hubspot",
            "salesforce",
            "asana",
            "dropbox",
            "zoom",
            "figma",
            "intercom",
            "zendesk",
        ] {
            let p = catalog.get(slug).unwrap_or_else(|| panic!("{slug} missing"));
            assert!(!p.name.is_empty());
            if p.auth_method == AuthMethod::Oauth {
                assert!(!p.relay_hosts.is_empty(), "{slug} has no relay hosts");
            }
        }
        let zendesk = catalog.get("zendesk").unwrap();
        let sub = zendesk.config_field("subdomain").unwrap();
        assert_eq!(sub.scope, ConfigScope::Installation);
        assert!(sub.accepts("acme"));
        assert!(!sub.accepts("169.254.169.254/x"));
        let cal = catalog.get("google-calendar").unwrap();
        assert_eq!(cal.token_url, catalog.get("google").unwrap().token_url);
        assert_eq!(catalog.get("slack").unwrap().scope_separator, ",");
    }

    #[test]
    fn bad_provider_files_are_rejected_with_the_file_name() {
        let cases = [
            (
                "a.toml",
                "slug = \"b\"\nname = \"B\"\nauthorization_url = \"https://x\"\ntoken_url = \"https://y\"",
            ),
            (
                "a.toml",
                "slug = \"a\"\nname = \"A\"\nauthorization_url = \"http://x\"\ntoken_url = \"https://y\"",
            ),
            (
                "a.toml",
                "slug = \"a\"\nname = \"A\"\nauthorization_url = \"https://${config.t}.x\"\ntoken_url = \"https://y\"",
            ),
            ("a.toml", "slug = \"a\"\nname = \"A\"\ntoken_url = \"https://y\""),
            ("a.toml", "slug = \"a\"\nname = \"A\"\nunknown_field = 1"),
        ];
        for (name, text) in cases {
            let e = Catalog::load(&[(name, text)]).unwrap_err();
            assert!(e.starts_with("a.toml"), "{e}");
        }
    }

    #[test]
    fn variants_describe_other_auth_methods_and_are_validated() {
        let catalog = Catalog::builtin().unwrap();
        let sf = catalog.get("salesforce").unwrap();
        assert_eq!(sf.auth_method, AuthMethod::Oauth);
        assert_eq!(
            catalog.auth_methods("salesforce"),
            vec![AuthMethod::Oauth, AuthMethod::ClientCredentials]
        );
        let cc = catalog.get_with("salesforce", AuthMethod::ClientCredentials).unwrap();
        assert_eq!((cc.slug.as_str(), cc.name.as_str()), ("salesforce", "Salesforce"));
        assert_eq!(cc.metadata_fields, ["instance_url", "id"]);
        assert!(cc.assumed_lifetime_seconds.is_some());
        let domain = cc.config_field("my_domain").unwrap();
        assert_eq!(domain.scope, ConfigScope::Installation);
        assert!(domain.accepts("acme.my.salesforce.com") && !domain.accepts("evil.example.com"));
        assert!(catalog.get_with("salesforce", AuthMethod::ApiKey).is_none());
        assert!(catalog.get_with("github", AuthMethod::ClientCredentials).is_none());

        let base = "slug = \"a\"\nname = \"A\"\nauthorization_url = \"https://x\"\ntoken_url = \"https://y\"\n";
        for bad in [
            "[variants.oauth]\ntoken_url = \"https://z\"",
            "[variants.password]\ntoken_url = \"https://z\"",
            "[variants.client_credentials]\ntoken_url = \"http://z\"",
            "[variants.client_credentials]\nname = \"B\"\ntoken_url = \"https://z\"\nunknown = 1",
            "variants = 1",
        ] {
            let e = Catalog::load(&[("a.toml", &format!("{base}{bad}"))]).unwrap_err();
            assert!(e.starts_with("a.toml"), "{e}");
        }
    }

    #[test]
    fn finds_placeholders() {
        assert_eq!(
            placeholders("https://${config.sub}.x.com/${config.b}"),
            vec!["sub", "b"]
        );
        assert!(placeholders("https://x.com").is_empty());
    }
}
