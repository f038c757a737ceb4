-- Only clicks on the steps of tracks Nurture has scheduled stay rows of their own. A click's track comes from its
-- properties, text a publisher may fill with anything, and these rows outlive an erase (they hold no personal data).
-- From this script on, a click is kept here only on a step of a track the definition names; 0017 took any.
DELETE FROM email_clicks WHERE NOT EXISTS (SELECT 1 FROM nurture_steps s WHERE s.track = email_clicks.track AND s.step = email_clicks.step);
