-- The outbox relay claims rows for a lease and commits before it talks to the broker, so no lock is held while publishing.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT NULL;
ALTER TABLE outbox ADD COLUMN claim_until TIMESTAMPTZ NULL;
