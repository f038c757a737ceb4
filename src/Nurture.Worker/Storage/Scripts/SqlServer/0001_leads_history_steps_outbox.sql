-- Leads, their event history (the inbox), stage transitions, nurture steps, the outbox, suppressions, deals and spend.
CREATE TABLE leads (
    lead_id            NVARCHAR(128) NOT NULL PRIMARY KEY,
    stage              NVARCHAR(16) NOT NULL,
    furthest_stage     NVARCHAR(16) NOT NULL,
    score              FLOAT NOT NULL,
    fit                FLOAT NOT NULL,
    source             NVARCHAR(256) NOT NULL,
    definition_version NVARCHAR(64) NULL,
    email              NVARCHAR(254) NULL,
    first_name         NVARCHAR(256) NULL,
    last_name          NVARCHAR(256) NULL,
    company            NVARCHAR(256) NULL,
    first_seen_at      DATETIMEOFFSET NOT NULL,
    stage_entered_at   DATETIMEOFFSET NOT NULL,
    first_mql_at       DATETIMEOFFSET NULL,
    deals_won          INT NOT NULL DEFAULT 0,
    revenue            DECIMAL(18,2) NOT NULL DEFAULT 0,
    state              NVARCHAR(MAX) NOT NULL,
    version            INT NOT NULL,
    updated_at         DATETIMEOFFSET NOT NULL
);
CREATE INDEX ix_leads_stage ON leads (stage);
CREATE INDEX ix_leads_first_mql_at ON leads (first_mql_at);

CREATE TABLE lead_events (
    event_id    UNIQUEIDENTIFIER NOT NULL PRIMARY KEY,
    lead_id     NVARCHAR(128) NULL,
    type        NVARCHAR(64) NOT NULL,
    occurred_at DATETIMEOFFSET NOT NULL,
    received_at DATETIMEOFFSET NOT NULL,
    outcome     NVARCHAR(2000) NULL,
    payload     NVARCHAR(MAX) NOT NULL
);
CREATE INDEX ix_lead_events_lead ON lead_events (lead_id, occurred_at);

CREATE TABLE stage_transitions (
    id                 BIGINT IDENTITY(1,1) PRIMARY KEY,
    lead_id            NVARCHAR(128) NOT NULL,
    event_id           UNIQUEIDENTIFIER NOT NULL,
    from_stage         NVARCHAR(16) NOT NULL,
    to_stage           NVARCHAR(16) NOT NULL,
    at                 DATETIMEOFFSET NOT NULL,
    reason             NVARCHAR(2000) NOT NULL,
    skipped            NVARCHAR(64) NOT NULL,
    definition_version NVARCHAR(64) NOT NULL,
    source             NVARCHAR(256) NOT NULL
);
CREATE INDEX ix_stage_transitions_lead ON stage_transitions (lead_id, at);

CREATE TABLE nurture_steps (
    id          BIGINT IDENTITY(1,1) PRIMARY KEY,
    lead_id     NVARCHAR(128) NOT NULL,
    track       NVARCHAR(64) NOT NULL,
    enrolment   INT NOT NULL,
    step        INT NOT NULL,
    template    NVARCHAR(128) NOT NULL,
    due_at      DATETIMEOFFSET NOT NULL,
    status      NVARCHAR(16) NOT NULL,
    claimed_by  NVARCHAR(128) NULL,
    claim_until DATETIMEOFFSET NULL,
    attempts    INT NOT NULL DEFAULT 0,
    last_error  NVARCHAR(2000) NULL,
    message_id  NVARCHAR(256) NULL,
    sent_at     DATETIMEOFFSET NULL,
    CONSTRAINT ux_nurture_steps UNIQUE (lead_id, track, enrolment, step)
);
CREATE INDEX ix_nurture_steps_due ON nurture_steps (status, due_at);

CREATE TABLE outbox (
    id           BIGINT IDENTITY(1,1) PRIMARY KEY,
    message_id   UNIQUEIDENTIFIER NOT NULL UNIQUE,
    type         NVARCHAR(64) NOT NULL,
    payload      NVARCHAR(MAX) NOT NULL,
    created_at   DATETIMEOFFSET NOT NULL,
    published_at DATETIMEOFFSET NULL
);
CREATE INDEX ix_outbox_unpublished ON outbox (published_at, id);

-- Suppressed addresses are kept as SHA-256 of the lower-cased address, so an erased lead stays suppressed without its address.
CREATE TABLE suppressions (
    email_hash NCHAR(64) NOT NULL PRIMARY KEY,
    reason NVARCHAR(2000) NOT NULL,
    at     DATETIMEOFFSET NOT NULL
);

CREATE TABLE deals (
    event_id UNIQUEIDENTIFIER NOT NULL PRIMARY KEY,
    lead_id  NVARCHAR(128) NOT NULL,
    revenue  DECIMAL(18,2) NOT NULL,
    currency NCHAR(3) NOT NULL,
    at       DATETIMEOFFSET NOT NULL
);

CREATE TABLE spend (
    event_id     UNIQUEIDENTIFIER NOT NULL PRIMARY KEY,
    channel      NVARCHAR(256) NOT NULL,
    amount       DECIMAL(18,2) NOT NULL,
    currency     NCHAR(3) NOT NULL,
    period_start DATE NOT NULL,
    period_end   DATE NOT NULL
);
