-- The claim indexes hold only what can be claimed: pending steps by due time and claimed ones by lease end. Sent and
-- cancelled steps, most rows in time, leave them. And a read of a lead's recent sends can no longer take them for an
-- index of sent steps: a plan made while no step had been sent read every sent step through (status, claim_until) for
-- each claimed step, instead of the lead's few sends through ix_nurture_steps_sent.
-- The new indexes are built first (writes wait, reads go on); dropping the old ones, which blocks reads too, comes last
-- and is quick.
CREATE INDEX ix_nurture_steps_due_pending ON nurture_steps (due_at) WHERE status = 'pending';
CREATE INDEX ix_nurture_steps_lease_claimed ON nurture_steps (claim_until) WHERE status = 'claimed';
DROP INDEX ix_nurture_steps_due;
DROP INDEX ix_nurture_steps_lease;
ALTER INDEX ix_nurture_steps_due_pending RENAME TO ix_nurture_steps_due;
ALTER INDEX ix_nurture_steps_lease_claimed RENAME TO ix_nurture_steps_lease;
