-- The clicks stored before 0016, from their events, as the experiments' reports read them until then: an emailClicked
-- activity whose properties name a track and a step (a plain number); "machine" = "true" marks a scanner's click.
INSERT OR IGNORE INTO email_clicks (event_id, lead_id, track, step, at, by_machine)
SELECT c.event_id, c.lead_id, c.track, CAST(c.step AS INTEGER), c.occurred_at, CASE WHEN lower(c.machine) = 'true' THEN 1 ELSE 0 END
FROM (
    SELECT e.event_id, e.lead_id, e.occurred_at,
           json_extract(e.payload, '$.properties.track') AS track,
           json_extract(e.payload, '$.properties.step') AS step,
           json_extract(e.payload, '$.properties.machine') AS machine
    FROM lead_events e
    WHERE e.type = 'LeadActivityRecorded' AND e.lead_id IS NOT NULL AND e.payload LIKE '%emailClicked%'
      AND json_extract(e.payload, '$.activity') = 'emailClicked'
) c
WHERE c.track IS NOT NULL AND typeof(c.step) = 'text' AND c.step = CAST(CAST(c.step AS INTEGER) AS TEXT) AND CAST(c.step AS INTEGER) >= 0;
