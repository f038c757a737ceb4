-- Each click on a nurture email's link is also a row of its own, by the email's track and step, written with its
-- event. An experiment's report reads which of its exposed leads clicked every Nurture:Metrics:RefreshSeconds; read from
-- the events, that was a scan of every stored event. 0017 fills the table from the clicks stored before it.
CREATE TABLE email_clicks (
    event_id   TEXT NOT NULL PRIMARY KEY,
    lead_id    TEXT NOT NULL,
    track      TEXT NOT NULL,
    step       INTEGER NOT NULL,
    at         TEXT NOT NULL,
    by_machine INTEGER NOT NULL
);
CREATE INDEX ix_email_clicks_step ON email_clicks (track, step, lead_id);
