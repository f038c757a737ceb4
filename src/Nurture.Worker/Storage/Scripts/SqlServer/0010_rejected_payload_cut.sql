-- Rejected payloads are cut to Nurture:Rejections:MaxPayloadBytes; the whole payload's SHA-256 and length in bytes are
-- kept, and the lead it names (when it names one) so an erase finds it.
ALTER TABLE rejected_events ADD lead_id NVARCHAR(128) NULL, payload_sha256 CHAR(64) NULL, payload_length BIGINT NULL;
GO
CREATE INDEX ix_rejected_events_lead ON rejected_events (lead_id);
