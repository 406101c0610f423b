-- Hosted connect pages for applications without React: a link with a single-use code, traded
-- on the first visit for a cookie.
CREATE TABLE connect_sessions (
    id              TEXT PRIMARY KEY,
    environment_id  TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL,
    organization_id TEXT,
    providers       TEXT NOT NULL,
    return_to       TEXT,
    opener_origin   TEXT,
    code_hash       TEXT NOT NULL UNIQUE,
    cookie_hash     TEXT UNIQUE,
    csrf_token      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
);
