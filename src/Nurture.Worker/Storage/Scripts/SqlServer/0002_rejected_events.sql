-- Events that could not be processed, with the reason: nothing is dropped silently.
CREATE TABLE rejected_events (
    id          BIGINT IDENTITY(1,1) PRIMARY KEY,
    received_at DATETIMEOFFSET NOT NULL,
    origin      NVARCHAR(64) NOT NULL,
    reason      NVARCHAR(2000) NOT NULL,
    payload     NVARCHAR(MAX) NOT NULL
);
CREATE INDEX ix_rejected_events_received ON rejected_events (received_at);
