-- The clicks stored before 0016, from their events, as the experiments' reports read them until then: an emailClicked
-- activity whose properties name a track and a step (a plain number); "machine" = "true" marks a scanner's click.
-- SQL Server may evaluate the select list before the filter, so nothing here may fail on a row the filter drops: TRY_CAST,
-- and JSON read only from valid JSON. '=' ignores trailing spaces, hence the lengths; tracks longer than the column are
-- no track of a definition (0018).
INSERT INTO email_clicks (event_id, lead_id, track, step, at, by_machine)
SELECT c.event_id, c.lead_id, LEFT(c.track, 64), TRY_CAST(c.step AS INT), c.occurred_at, CASE WHEN LOWER(c.machine) = 'true' THEN 1 ELSE 0 END
FROM (
    SELECT e.event_id, e.lead_id, e.occurred_at,
           CASE WHEN ISJSON(e.payload) = 1 THEN JSON_VALUE(e.payload, '$.properties.track') END AS track,
           CASE WHEN ISJSON(e.payload) = 1 THEN JSON_VALUE(e.payload, '$.properties.step') END AS step,
           CASE WHEN ISJSON(e.payload) = 1 THEN JSON_VALUE(e.payload, '$.properties.machine') END AS machine,
           CASE WHEN ISJSON(e.payload) = 1 THEN JSON_VALUE(e.payload, '$.activity') END AS activity
    FROM lead_events e
    WHERE e.type = 'LeadActivityRecorded' AND e.lead_id IS NOT NULL AND e.payload LIKE '%emailClicked%'
) c
WHERE c.activity = 'emailClicked' AND c.track IS NOT NULL AND LEN(c.track) <= 64 AND DATALENGTH(c.track) = DATALENGTH(RTRIM(c.track))
  AND TRY_CAST(c.step AS INT) >= 0 AND CAST(TRY_CAST(c.step AS INT) AS NVARCHAR(12)) = c.step AND DATALENGTH(c.step) = DATALENGTH(CAST(TRY_CAST(c.step AS INT) AS NVARCHAR(12)))
  AND NOT EXISTS (SELECT 1 FROM email_clicks x WHERE x.event_id = c.event_id);
