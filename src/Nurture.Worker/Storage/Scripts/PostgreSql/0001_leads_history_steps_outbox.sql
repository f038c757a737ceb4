-- Leads, their event history (the inbox), stage transitions, nurture steps, the outbox, suppressions, deals and spend.
-- Times are timestamptz (UTC).
CREATE TABLE leads (
    lead_id            VARCHAR(128) NOT NULL PRIMARY KEY,
    stage              TEXT NOT NULL,
    furthest_stage     TEXT NOT NULL,
    score              DOUBLE PRECISION NOT NULL,
    fit                DOUBLE PRECISION NOT NULL,
    source             TEXT NOT NULL,
    definition_version TEXT NULL,
    email              TEXT NULL,
    first_name         TEXT NULL,
    last_name          TEXT NULL,
    company            TEXT NULL,
    first_seen_at      TIMESTAMPTZ NOT NULL,
    stage_entered_at   TIMESTAMPTZ NOT NULL,
    first_mql_at       TIMESTAMPTZ NULL,
    deals_won          INT NOT NULL DEFAULT 0,
    revenue            NUMERIC(18,2) NOT NULL DEFAULT 0,
    state              TEXT NOT NULL,
    version            INT NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX ix_leads_stage ON leads (stage);
CREATE INDEX ix_leads_first_mql_at ON leads (first_mql_at);

CREATE TABLE lead_events (
    event_id    UUID NOT NULL PRIMARY KEY,
    lead_id     TEXT NULL,
    type        TEXT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    outcome     TEXT NULL,
    payload     TEXT NOT NULL
);
CREATE INDEX ix_lead_events_lead ON lead_events (lead_id, occurred_at);

CREATE TABLE stage_transitions (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id            TEXT NOT NULL,
    event_id           UUID NOT NULL,
    from_stage         TEXT NOT NULL,
    to_stage           TEXT NOT NULL,
    at                 TIMESTAMPTZ NOT NULL,
    reason             TEXT NOT NULL,
    skipped            TEXT NOT NULL,
    definition_version TEXT NOT NULL,
    source             TEXT NOT NULL
);
CREATE INDEX ix_stage_transitions_lead ON stage_transitions (lead_id, at);

CREATE TABLE nurture_steps (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id     TEXT NOT NULL,
    track       TEXT NOT NULL,
    enrolment   INT NOT NULL,
    step        INT NOT NULL,
    template    TEXT NOT NULL,
    due_at      TIMESTAMPTZ NOT NULL,
    status      TEXT NOT NULL,
    claimed_by  TEXT NULL,
    claim_until TIMESTAMPTZ NULL,
    attempts    INT NOT NULL DEFAULT 0,
    last_error  TEXT NULL,
    message_id  TEXT NULL,
    sent_at     TIMESTAMPTZ NULL,
    CONSTRAINT ux_nurture_steps UNIQUE (lead_id, track, enrolment, step)
);
CREATE INDEX ix_nurture_steps_due ON nurture_steps (status, due_at);

CREATE TABLE outbox (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id   UUID NOT NULL UNIQUE,
    type         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    published_at TIMESTAMPTZ NULL
);
CREATE INDEX ix_outbox_unpublished ON outbox (published_at, id);

-- Suppressed addresses are kept as SHA-256 of the lower-cased address, so an erased lead stays suppressed without its address.
CREATE TABLE suppressions (
    email_hash CHAR(64) NOT NULL PRIMARY KEY,
    reason TEXT NOT NULL,
    at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE deals (
    event_id UUID NOT NULL PRIMARY KEY,
    lead_id  TEXT NOT NULL,
    revenue  NUMERIC(18,2) NOT NULL,
    currency TEXT NOT NULL,
    at       TIMESTAMPTZ NOT NULL
);

CREATE TABLE spend (
    event_id     UUID NOT NULL PRIMARY KEY,
    channel      TEXT NOT NULL,
    amount       NUMERIC(18,2) NOT NULL,
    currency     TEXT NOT NULL,
    period_start DATE NOT NULL,
    period_end   DATE NOT NULL
);
