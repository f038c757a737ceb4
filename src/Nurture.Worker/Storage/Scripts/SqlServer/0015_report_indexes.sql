-- The funnel the metrics read again every Nurture:Metrics:RefreshSeconds counts hand-off breaches, and per day emails
-- sent, new MQLs and breaches: an index of just those rows each, so the read no longer goes through the whole outbox
-- (which keeps every message) and every sent step. A full scan of the outbox took 145 ms of PostgreSQL's time after
-- 30,000 events and grew with it; every 15 s it put a latency spike into the event pipeline.
-- The leads that entered each stage are counted from (to_stage, lead_id) alone: 120 ms instead of 606 ms a stage with
-- a million transitions on PostgreSQL.
CREATE INDEX ix_outbox_handoff_breaches ON outbox (created_at) WHERE type = 'HandOffSlaBreached';
CREATE INDEX ix_nurture_steps_sent_at ON nurture_steps (sent_at) WHERE status = 'sent';
CREATE INDEX ix_stage_transitions_mql ON stage_transitions (at) WHERE to_stage = 'Mql';
CREATE INDEX ix_stage_transitions_entered ON stage_transitions (to_stage, lead_id);
