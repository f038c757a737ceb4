-- Events that could not be processed, with the reason: nothing is dropped silently.
CREATE TABLE rejected_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at TIMESTAMPTZ NOT NULL,
    origin      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    payload     TEXT NOT NULL
);
CREATE INDEX ix_rejected_events_received ON rejected_events (received_at);
