-- Recorded answers are sealed by the vault from now on (they can hold secrets, such as a new
-- webhook endpoint's signing secret), under the record's own id. Records written before were
-- plaintext: forget them (they expired within 24 hours anyway; a retry then runs again).
DELETE FROM idempotency_keys;
ALTER TABLE idempotency_keys ADD COLUMN id TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX idempotency_keys_id ON idempotency_keys (id);
