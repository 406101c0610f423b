-- The widgets: the browser origins allowed to call the widget API, the branding the connect
-- dialog shows, and authorizations that proceed only after the widget's handoff.

CREATE TABLE web_origins (
    environment_id  TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    origin          TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (environment_id, origin)
);
CREATE INDEX web_origins_origin ON web_origins (origin);

ALTER TABLE environments ADD COLUMN team_name TEXT;
ALTER TABLE environments ADD COLUMN logo_url TEXT;

-- 1: the hosted page waits for the opener's handoff instead of showing a Continue button.
ALTER TABLE authorizations ADD COLUMN handoff INTEGER NOT NULL DEFAULT 0;
