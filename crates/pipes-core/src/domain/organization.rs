use std::collections::BTreeMap;

use crate::ids::{DataIntegrationId, DikId, EnvironmentId};
use crate::time::Millis;
use crate::vault::Sealed;

/// How an environment knows who is an active member of an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MembershipMode {
    /// The application vouches: every acting member it names is taken as active, unless it
    /// told Pipes that the membership ended.
    #[default]
    Trust,
    /// Only members the application declared active may act for an organization.
    Registry,
}

impl MembershipMode {
    /// The storage and CLI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trust => "trust",
            Self::Registry => "registry",
        }
    }

    /// Whether a member is active, given what the application declared (`None`: nothing).
    pub fn is_active(self, declared: Option<bool>) -> bool {
        declared.unwrap_or(self == Self::Trust)
    }

    /// Parses the storage and CLI spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "trust" => Some(Self::Trust),
            "registry" => Some(Self::Registry),
            _ => None,
        }
    }
}

/// The per-environment switches of the connection model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentSettings {
    /// Whether an owner may hold several connections of one provider.
    pub multiple_connections: bool,
    /// At most this many connections per owner and provider.
    pub connection_limit: u32,
    /// Where organization membership comes from.
    pub membership: MembershipMode,
    /// The application's name in the widget's connect dialog.
    pub team_name: Option<String>,
    /// The application's logo (an https URL) in the widget's connect dialog.
    pub logo_url: Option<String>,
}

impl Default for EnvironmentSettings {
    fn default() -> Self {
        Self {
            multiple_connections: false,
            connection_limit: 25,
            membership: MembershipMode::Trust,
            team_name: None,
            logo_url: None,
        }
    }
}

/// A user's membership in an organization, as the application declared it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Environment.
    pub environment_id: EnvironmentId,
    /// The organization.
    pub organization_id: String,
    /// The member.
    pub user_id: String,
    /// Active or ended.
    pub active: bool,
    /// First declared.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
}

/// An organization's own OAuth app for an organization-credential root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationApp {
    /// Client id.
    pub client_id: String,
    /// Sealed client secret.
    pub client_secret: Sealed,
    /// Its last four characters, for display.
    pub client_secret_last_4: String,
}

/// An organization's override of a user-owned root (contract §4.13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationSettings {
    /// `dik_…`: the organization's own redirect key.
    pub id: DikId,
    /// Environment.
    pub environment_id: EnvironmentId,
    /// The root it overrides.
    pub data_integration_id: DataIntegrationId,
    /// The organization.
    pub organization_id: String,
    /// Enabled override; `None` inherits the root's.
    pub enabled: Option<bool>,
    /// Requested scopes override; `None` inherits the root's.
    pub scopes: Option<Vec<String>>,
    /// The organization's OAuth app (organization-credential roots).
    pub app: Option<OrganizationApp>,
    /// Integration-scope config values (organization-credential roots).
    pub config: BTreeMap<String, String>,
    /// Creation time.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
}

/// What an organization gets of a root: the root's settings with the organization's override
/// on top (see `Catalog::effective`).
#[derive(Debug, Clone)]
pub struct Effective {
    /// Users may connect.
    pub enabled: bool,
    /// Requested scopes; `None` when none are configured.
    pub scopes: Option<Vec<String>>,
    /// The override, when the organization has one.
    pub settings: Option<OrganizationSettings>,
}
