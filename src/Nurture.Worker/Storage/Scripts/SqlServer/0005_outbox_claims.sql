-- The outbox relay claims rows for a lease and commits before it talks to the broker, so no lock is held while publishing.
ALTER TABLE outbox ADD claimed_by NVARCHAR(200) NULL, claim_until DATETIMEOFFSET NULL;
