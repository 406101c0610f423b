-- Tenancy: per-environment connection settings, organization membership, stored per-tenant
-- secrets (API keys, client credentials) and per-organization integration settings.

ALTER TABLE environments ADD COLUMN multiple_connections BIGINT NOT NULL DEFAULT 0;
ALTER TABLE environments ADD COLUMN connection_limit BIGINT NOT NULL DEFAULT 25;
-- 'trust': the application vouches for every acting member; 'registry': only members
-- declared active here may act for an organization.
ALTER TABLE environments ADD COLUMN membership TEXT NOT NULL DEFAULT 'trust';

-- API key (api_key connections) or client secret (client_credentials connections), sealed.
ALTER TABLE connected_accounts ADD COLUMN client_id TEXT;
ALTER TABLE connected_accounts ADD COLUMN secret BYTEA;
ALTER TABLE connected_accounts ADD COLUMN secret_last_4 TEXT;

CREATE TABLE organization_members (
    environment_id  TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    active          BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (environment_id, organization_id, user_id)
);

-- An organization's override of a user-owned root. The id (dik_…) is the organization's own
-- redirect key when it brings its own OAuth app.
CREATE TABLE organization_settings (
    id                   TEXT PRIMARY KEY,
    environment_id       TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    data_integration_id  TEXT NOT NULL REFERENCES data_integrations(id) ON DELETE CASCADE,
    organization_id      TEXT NOT NULL,
    enabled              BIGINT,
    scopes               TEXT,
    client_id            TEXT,
    client_secret        BYTEA,
    client_secret_last_4 TEXT,
    config               TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    UNIQUE (data_integration_id, organization_id)
);
