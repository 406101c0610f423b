-- Connected accounts ("installations") and pending authorizations.

CREATE TABLE connected_accounts (
    id                      TEXT PRIMARY KEY,
    environment_id          TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    data_integration_id     TEXT NOT NULL REFERENCES data_integrations(id) ON DELETE CASCADE,
    -- user_id and organization_id joined with U+001F: the owner shape, for lookups.
    owner_key               TEXT NOT NULL,
    user_id                 TEXT,
    organization_id         TEXT,
    connection_role         TEXT NOT NULL,
    account_identifier      TEXT,
    account_display_name    TEXT,
    auth_method             TEXT NOT NULL,
    state                   TEXT NOT NULL,
    state_reason            TEXT,
    established_by_user_id  TEXT,
    scopes                  TEXT NOT NULL,
    config                  TEXT NOT NULL,
    metadata                TEXT NOT NULL,
    access_token            BYTEA,
    expires_at              BIGINT,
    refresh_token           BYTEA,
    -- Bumped by every successful refresh: a re-read tells whether someone else refreshed.
    refresh_generation      BIGINT NOT NULL,
    -- Cross-process single flight: whoever holds an unexpired lease refreshes.
    refresh_lease_owner     TEXT,
    refresh_lease_until     BIGINT,
    last_refreshed_at       BIGINT,
    last_refresh_error      TEXT,
    last_refresh_error_at   BIGINT,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL
);
CREATE INDEX connected_accounts_owner ON connected_accounts (data_integration_id, owner_key, connection_role);
CREATE UNIQUE INDEX connected_accounts_compatibility
    ON connected_accounts (data_integration_id, owner_key) WHERE connection_role = 'compatibility';

CREATE TABLE authorizations (
    id                      TEXT PRIMARY KEY,
    environment_id          TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    data_integration_id     TEXT NOT NULL REFERENCES data_integrations(id) ON DELETE CASCADE,
    connection_owner        TEXT NOT NULL,
    user_id                 TEXT NOT NULL,
    organization_id         TEXT,
    connection_intent       TEXT,
    target_account_id       TEXT,
    return_to               TEXT,
    state                   TEXT NOT NULL,
    provider_state          TEXT NOT NULL UNIQUE,
    pkce_verifier           BYTEA,
    code_challenge          TEXT,
    config                  TEXT NOT NULL,
    account_display_name    TEXT,
    display_name_given      BIGINT NOT NULL,
    csrf_token              TEXT NOT NULL,
    status                  TEXT NOT NULL,
    connect_code_hash       TEXT UNIQUE,
    connect_code_expires_at BIGINT,
    held_tokens             BYTEA,
    connected_account_id    TEXT,
    created_at              BIGINT NOT NULL,
    expires_at              BIGINT NOT NULL
);
CREATE INDEX authorizations_expiry ON authorizations (expires_at);
