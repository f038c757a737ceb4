-- What an MQL was worth, overall (source '') and per source, each time the snapshot job ran: for dashboards that read SQL.
CREATE TABLE mql_value_snapshots (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at                 TIMESTAMPTZ NOT NULL,
    source             TEXT NOT NULL,
    mqls               INTEGER NOT NULL,
    customers          INTEGER NOT NULL,
    close_rate         DOUBLE PRECISION NOT NULL,
    close_rate_low     DOUBLE PRECISION NOT NULL,
    close_rate_high    DOUBLE PRECISION NOT NULL,
    average_revenue    NUMERIC(18, 2) NOT NULL,
    value              NUMERIC(18, 2) NOT NULL,
    value_low          NUMERIC(18, 2) NOT NULL,
    value_high         NUMERIC(18, 2) NOT NULL,
    currency           TEXT NOT NULL,
    definition_version TEXT NOT NULL,
    CONSTRAINT ux_mql_value_snapshots UNIQUE (at, source)
);
