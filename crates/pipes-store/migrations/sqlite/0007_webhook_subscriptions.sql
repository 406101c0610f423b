-- Which event types each webhook endpoint subscribes to, one row each, so appending an event
-- finds its subscribers with a join. `webhook_endpoints.events` keeps the list as the API
-- was given it (for reads); both are written together.
CREATE TABLE webhook_subscriptions (
    endpoint_id         TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    event               TEXT NOT NULL,
    PRIMARY KEY (endpoint_id, event)
);
CREATE INDEX webhook_subscriptions_event ON webhook_subscriptions (event, endpoint_id);

INSERT INTO webhook_subscriptions (endpoint_id, event)
SELECT DISTINCT e.id, j.value FROM webhook_endpoints e, json_each(e.events) j;
