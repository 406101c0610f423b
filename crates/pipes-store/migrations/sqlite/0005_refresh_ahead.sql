-- Proactive refresh: per-connection backoff after failed refreshes, and the index the refresh
-- worker scans for connections whose tokens expire soon.

ALTER TABLE connected_accounts ADD COLUMN refresh_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE connected_accounts ADD COLUMN refresh_retry_at INTEGER;
CREATE INDEX connected_accounts_expiry ON connected_accounts (expires_at)
    WHERE state = 'connected' AND refresh_token IS NOT NULL;
