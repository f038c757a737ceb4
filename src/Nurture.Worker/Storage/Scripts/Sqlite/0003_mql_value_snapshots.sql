-- What an MQL was worth, overall (source '') and per source, each time the snapshot job ran: for dashboards that read SQL.
CREATE TABLE mql_value_snapshots (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    at                 TEXT NOT NULL,
    source             TEXT NOT NULL,
    mqls               INTEGER NOT NULL,
    customers          INTEGER NOT NULL,
    close_rate         REAL NOT NULL,
    close_rate_low     REAL NOT NULL,
    close_rate_high    REAL NOT NULL,
    average_revenue    NUMERIC NOT NULL,
    value              NUMERIC NOT NULL,
    value_low          NUMERIC NOT NULL,
    value_high         NUMERIC NOT NULL,
    currency           TEXT NOT NULL,
    definition_version TEXT NOT NULL,
    CONSTRAINT ux_mql_value_snapshots UNIQUE (at, source)
);
