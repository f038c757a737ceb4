-- Webhooks out: per subscription, how far it has read the outbox (by id), and one row per subscription and message
-- with its delivery state. No response bodies are kept: only the last status code and a short error.
CREATE TABLE webhook_cursors (
    subscription   NVARCHAR(64) NOT NULL PRIMARY KEY,
    last_outbox_id BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               BIGINT IDENTITY(1,1) PRIMARY KEY,
    subscription     NVARCHAR(64) NOT NULL,
    outbox_id        BIGINT NOT NULL,
    message_id       UNIQUEIDENTIFIER NOT NULL,
    type             NVARCHAR(64) NOT NULL,
    order_key        NVARCHAR(128) NOT NULL,
    status           NVARCHAR(16) NOT NULL,
    attempts         INT NOT NULL DEFAULT 0,
    next_attempt_at  DATETIMEOFFSET NULL,
    claim_until      DATETIMEOFFSET NULL,
    last_status_code INT NULL,
    last_error       NVARCHAR(400) NULL,
    created_at       DATETIMEOFFSET NOT NULL,
    delivered_at     DATETIMEOFFSET NULL,
    CONSTRAINT ux_webhook_deliveries UNIQUE (subscription, outbox_id)
);
CREATE INDEX ix_webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX ix_webhook_deliveries_order ON webhook_deliveries (subscription, order_key, outbox_id);
