-- Events, webhook endpoints and their deliveries (the outbox).

CREATE TABLE events (
    id                  TEXT PRIMARY KEY,
    environment_id      TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    event               TEXT NOT NULL,
    -- data.organization_id, for GET /events?organization_id=
    organization_id     TEXT,
    created_at          BIGINT NOT NULL,
    -- The envelope's compact JSON: served and delivered byte for byte.
    body                TEXT NOT NULL
);
CREATE INDEX events_environment ON events (environment_id, id);
CREATE INDEX events_created ON events (created_at);

CREATE TABLE webhook_endpoints (
    id                  TEXT PRIMARY KEY,
    environment_id      TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    endpoint_url        TEXT NOT NULL,
    secret              BYTEA NOT NULL,
    status              TEXT NOT NULL,
    -- JSON array of subscribed event types.
    events              TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    -- Delivery scheduling: consecutive failures, when to try next, who is delivering.
    failure_streak      BIGINT NOT NULL DEFAULT 0,
    retry_at            BIGINT NOT NULL DEFAULT 0,
    lease_owner         TEXT,
    lease_until         BIGINT,
    UNIQUE (environment_id, endpoint_url)
);

CREATE TABLE webhook_deliveries (
    endpoint_id         TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    event_id            TEXT NOT NULL,
    event               TEXT NOT NULL,
    state               TEXT NOT NULL,
    attempts            BIGINT NOT NULL DEFAULT 0,
    pending_since       BIGINT NOT NULL,
    finished_at         BIGINT,
    last_status         BIGINT,
    last_error          TEXT,
    PRIMARY KEY (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (endpoint_id, event_id) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);

CREATE TABLE webhook_attempts (
    endpoint_id         TEXT NOT NULL,
    event_id            TEXT NOT NULL,
    attempt             BIGINT NOT NULL,
    started_at          BIGINT NOT NULL,
    status              BIGINT,
    latency_ms          BIGINT NOT NULL,
    error               TEXT,
    PRIMARY KEY (endpoint_id, event_id, attempt),
    FOREIGN KEY (endpoint_id, event_id) REFERENCES webhook_deliveries(endpoint_id, event_id) ON DELETE CASCADE
);
