-- Rejected payloads are cut to Nurture:Rejections:MaxPayloadBytes; the whole payload's SHA-256 and length in bytes are
-- kept, and the lead it names (when it names one) so an erase finds it.
ALTER TABLE rejected_events ADD COLUMN lead_id TEXT NULL;
ALTER TABLE rejected_events ADD COLUMN payload_sha256 TEXT NULL;
ALTER TABLE rejected_events ADD COLUMN payload_length INTEGER NULL;
CREATE INDEX ix_rejected_events_lead ON rejected_events (lead_id);
