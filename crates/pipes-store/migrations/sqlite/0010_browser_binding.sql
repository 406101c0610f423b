-- The browser a connection flow was sent to the provider from: the hash of a cookie set then and
-- checked at the callback, so a consent link forwarded to someone else connects nothing.
ALTER TABLE authorizations ADD COLUMN browser_hash TEXT;
