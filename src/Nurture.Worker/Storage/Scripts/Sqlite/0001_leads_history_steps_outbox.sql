-- Leads, their event history (the inbox), stage transitions, nurture steps, the outbox, suppressions, deals and spend.
-- Times are stored as UTC ISO 8601 text, so they compare correctly as text.
CREATE TABLE leads (
    lead_id            TEXT NOT NULL PRIMARY KEY,
    stage              TEXT NOT NULL,
    furthest_stage     TEXT NOT NULL,
    score              REAL NOT NULL,
    fit                REAL NOT NULL,
    source             TEXT NOT NULL,
    definition_version TEXT NULL,
    email              TEXT NULL,
    first_name         TEXT NULL,
    last_name          TEXT NULL,
    company            TEXT NULL,
    first_seen_at      TEXT NOT NULL,
    stage_entered_at   TEXT NOT NULL,
    first_mql_at       TEXT NULL,
    deals_won          INTEGER NOT NULL DEFAULT 0,
    revenue            REAL NOT NULL DEFAULT 0,
    state              TEXT NOT NULL,
    version            INTEGER NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX ix_leads_stage ON leads (stage);
CREATE INDEX ix_leads_first_mql_at ON leads (first_mql_at);

CREATE TABLE lead_events (
    event_id    TEXT NOT NULL PRIMARY KEY,
    lead_id     TEXT NULL,
    type        TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    outcome     TEXT NULL,
    payload     TEXT NOT NULL
);
CREATE INDEX ix_lead_events_lead ON lead_events (lead_id, occurred_at);

CREATE TABLE stage_transitions (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    lead_id            TEXT NOT NULL,
    event_id           TEXT NOT NULL,
    from_stage         TEXT NOT NULL,
    to_stage           TEXT NOT NULL,
    at                 TEXT NOT NULL,
    reason             TEXT NOT NULL,
    skipped            TEXT NOT NULL,
    definition_version TEXT NOT NULL,
    source             TEXT NOT NULL
);
CREATE INDEX ix_stage_transitions_lead ON stage_transitions (lead_id, at);

CREATE TABLE nurture_steps (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    lead_id     TEXT NOT NULL,
    track       TEXT NOT NULL,
    enrolment   INTEGER NOT NULL,
    step        INTEGER NOT NULL,
    template    TEXT NOT NULL,
    due_at      TEXT NOT NULL,
    status      TEXT NOT NULL,
    claimed_by  TEXT NULL,
    claim_until TEXT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT NULL,
    message_id  TEXT NULL,
    sent_at     TEXT NULL,
    CONSTRAINT ux_nurture_steps UNIQUE (lead_id, track, enrolment, step)
);
CREATE INDEX ix_nurture_steps_due ON nurture_steps (status, due_at);

CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id   TEXT NOT NULL UNIQUE,
    type         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    published_at TEXT NULL
);
CREATE INDEX ix_outbox_unpublished ON outbox (published_at, id);

-- Suppressed addresses are kept as SHA-256 of the lower-cased address, so an erased lead stays suppressed without its address.
CREATE TABLE suppressions (
    email_hash TEXT NOT NULL PRIMARY KEY,
    reason TEXT NOT NULL,
    at     TEXT NOT NULL
);

CREATE TABLE deals (
    event_id TEXT NOT NULL PRIMARY KEY,
    lead_id  TEXT NOT NULL,
    revenue  REAL NOT NULL,
    currency TEXT NOT NULL,
    at       TEXT NOT NULL
);

CREATE TABLE spend (
    event_id     TEXT NOT NULL PRIMARY KEY,
    channel      TEXT NOT NULL,
    amount       REAL NOT NULL,
    currency     TEXT NOT NULL,
    period_start TEXT NOT NULL,
    period_end   TEXT NOT NULL
);
