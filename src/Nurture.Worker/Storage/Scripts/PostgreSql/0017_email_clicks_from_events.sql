-- The clicks stored before 0016, from their events, as the experiments' reports read them until then: an emailClicked
-- activity whose properties name a track and a step (a plain number); "machine" = "true" marks a scanner's click.
INSERT INTO email_clicks (event_id, lead_id, track, step, at, by_machine)
SELECT c.event_id, c.lead_id, c.track, CAST(c.step AS INT), c.occurred_at, CASE WHEN lower(c.machine) = 'true' THEN 1 ELSE 0 END
FROM (
    SELECT e.event_id, e.lead_id, e.occurred_at,
           e.payload::jsonb -> 'properties' ->> 'track' AS track,
           e.payload::jsonb -> 'properties' ->> 'step' AS step,
           e.payload::jsonb -> 'properties' ->> 'machine' AS machine
    FROM lead_events e
    WHERE e.type = 'LeadActivityRecorded' AND e.lead_id IS NOT NULL AND e.payload LIKE '%emailClicked%'
      AND e.payload::jsonb ->> 'activity' = 'emailClicked'
) c
WHERE c.track IS NOT NULL AND c.step ~ '^(0|[1-9][0-9]{0,8})$'
ON CONFLICT (event_id) DO NOTHING;
