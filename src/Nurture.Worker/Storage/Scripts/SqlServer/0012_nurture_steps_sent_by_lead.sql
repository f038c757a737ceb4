-- The send rules read each claimed step's lead's recent sends: an index of sent steps by lead and time, so the read
-- finds a lead's few sends instead of going through every sent step by status.
CREATE INDEX ix_nurture_steps_sent ON nurture_steps (lead_id, sent_at) WHERE status = 'sent';
