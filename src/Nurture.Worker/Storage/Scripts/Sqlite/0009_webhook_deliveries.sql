-- Webhooks out: per subscription, how far it has read the outbox (by id), and one row per subscription and message
-- with its delivery state. No response bodies are kept: only the last status code and a short error.
CREATE TABLE webhook_cursors (
    subscription   TEXT NOT NULL PRIMARY KEY,
    last_outbox_id INTEGER NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription     TEXT NOT NULL,
    outbox_id        INTEGER NOT NULL,
    message_id       TEXT NOT NULL,
    type             TEXT NOT NULL,
    order_key        TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NULL,
    claim_until      TEXT NULL,
    last_status_code INTEGER NULL,
    last_error       TEXT NULL,
    created_at       TEXT NOT NULL,
    delivered_at     TEXT NULL,
    CONSTRAINT ux_webhook_deliveries UNIQUE (subscription, outbox_id)
);
CREATE INDEX ix_webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX ix_webhook_deliveries_order ON webhook_deliveries (subscription, order_key, outbox_id);
