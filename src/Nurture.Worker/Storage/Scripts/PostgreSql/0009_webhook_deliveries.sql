-- Webhooks out: per subscription, how far it has read the outbox (by id), and one row per subscription and message
-- with its delivery state. No response bodies are kept: only the last status code and a short error.
CREATE TABLE webhook_cursors (
    subscription   VARCHAR(64) NOT NULL PRIMARY KEY,
    last_outbox_id BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription     VARCHAR(64) NOT NULL,
    outbox_id        BIGINT NOT NULL,
    message_id       UUID NOT NULL,
    type             VARCHAR(64) NOT NULL,
    order_key        VARCHAR(128) NOT NULL,
    status           VARCHAR(16) NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NULL,
    claim_until      TIMESTAMPTZ NULL,
    last_status_code INTEGER NULL,
    last_error       TEXT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    delivered_at     TIMESTAMPTZ NULL,
    CONSTRAINT ux_webhook_deliveries UNIQUE (subscription, outbox_id)
);
CREATE INDEX ix_webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX ix_webhook_deliveries_order ON webhook_deliveries (subscription, order_key, outbox_id);
