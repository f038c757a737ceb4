-- Dispatch claims read two index ranges: pending steps by due time (ix_nurture_steps_due, status then due_at) and
-- claims whose lease ran out by lease end (this index), so a claim's cost does not grow with the backlog.
CREATE INDEX ix_nurture_steps_lease ON nurture_steps (status, claim_until);
