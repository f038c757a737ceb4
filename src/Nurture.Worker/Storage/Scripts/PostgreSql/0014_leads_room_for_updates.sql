-- Room in each page of leads for a lead's next row version: most events change a lead's score and state but not its
-- stage, so the update can stay in its page (a HOT update) instead of adding an entry to each of the table's indexes.
-- Pages written before this keep their fill until they are rewritten.
ALTER TABLE leads SET (fillfactor = 70);
