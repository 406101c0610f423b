-- Environments, API keys, redirect URIs, custom providers and data integrations.
-- Times are milliseconds since the Unix epoch; booleans are 0/1; JSON is stored as text.

CREATE TABLE environments (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    production  BIGINT NOT NULL,
    client_id   TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,
    environment_id  TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    prefix          TEXT NOT NULL,
    key_hash        TEXT NOT NULL UNIQUE,
    created_at      BIGINT NOT NULL,
    revoked_at      BIGINT
);
CREATE INDEX api_keys_environment ON api_keys (environment_id, id);

CREATE TABLE redirect_uris (
    environment_id  TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    uri             TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (environment_id, uri)
);

CREATE TABLE custom_providers (
    id              TEXT PRIMARY KEY,
    environment_id  TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    slug            TEXT NOT NULL,
    auth_method     TEXT NOT NULL,
    definition      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (environment_id, slug)
);

CREATE TABLE data_integrations (
    id                   TEXT PRIMARY KEY,
    environment_id       TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    slug                 TEXT NOT NULL,
    ownership            TEXT NOT NULL,
    description          TEXT,
    enabled              BIGINT NOT NULL,
    state                TEXT NOT NULL,
    scopes               TEXT,
    auth_method          TEXT NOT NULL,
    credentials_type     TEXT,
    client_id            TEXT,
    client_secret        BYTEA,
    client_secret_last4  TEXT,
    config               TEXT NOT NULL,
    dik                  TEXT NOT NULL UNIQUE,
    custom_provider_id   TEXT REFERENCES custom_providers(id),
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    UNIQUE (environment_id, slug, ownership)
);
CREATE INDEX data_integrations_environment ON data_integrations (environment_id, id);
