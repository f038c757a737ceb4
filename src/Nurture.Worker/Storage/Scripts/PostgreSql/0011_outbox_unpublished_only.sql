-- The relay looks only at unpublished rows, from where its last rounds left off: an index of those rows alone, so a
-- mark leaves it (instead of adding an entry) and a claim's cost does not grow with what was published before.
DROP INDEX ix_outbox_unpublished;
CREATE INDEX ix_outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
-- Room in each page for the claim's new row version: a claim changes no indexed column, so it stays in its page (a HOT
-- update) instead of adding an entry to every index.
ALTER TABLE outbox SET (fillfactor = 60);
