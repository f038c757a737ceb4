-- Only clicks on the steps of tracks Nurture has scheduled stay rows of their own. A click's track comes from its
-- properties, text a publisher may fill with anything, and these rows outlive an erase (they hold no personal data).
-- From this script on, a click is kept here only on a step of a track the definition names; 0017 took any.
-- A list of the pairs (built once), not a lookup per click: no index of nurture_steps leads with track and step.
DELETE FROM email_clicks WHERE (track, step) NOT IN (SELECT track, step FROM nurture_steps);
