-- The clicks stored before 0016, from their events, as the experiments' reports read them until then: an emailClicked
-- activity whose properties name a track and a step (a plain number); "machine" = "true" marks a scanner's click.
INSERT INTO email_clicks (event_id, lead_id, track, step, at, by_machine)
SELECT c.event_id, c.lead_id, c.track, CAST(c.step AS INT), c.occurred_at, CASE WHEN LOWER(c.machine) = 'true' THEN 1 ELSE 0 END
FROM (
    SELECT e.event_id, e.lead_id, e.occurred_at,
           JSON_VALUE(e.payload, '$.properties.track') AS track,
           JSON_VALUE(e.payload, '$.properties.step') AS step,
           JSON_VALUE(e.payload, '$.properties.machine') AS machine
    FROM lead_events e
    WHERE e.type = 'LeadActivityRecorded' AND e.lead_id IS NOT NULL AND e.payload LIKE '%emailClicked%'
      AND ISJSON(e.payload) = 1 AND JSON_VALUE(e.payload, '$.activity') = 'emailClicked'
) c
WHERE c.track IS NOT NULL AND TRY_CAST(c.step AS INT) >= 0 AND CAST(TRY_CAST(c.step AS INT) AS NVARCHAR(12)) = c.step
  AND NOT EXISTS (SELECT 1 FROM email_clicks x WHERE x.event_id = c.event_id);
