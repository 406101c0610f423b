-- Idempotency-Key records: one per (environment, key), kept 24 hours.
-- status 0 = the first request is still running.
CREATE TABLE idempotency_keys (
    environment_id  TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    idempotency_key TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    status          BIGINT NOT NULL,
    body            BYTEA,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (environment_id, idempotency_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
