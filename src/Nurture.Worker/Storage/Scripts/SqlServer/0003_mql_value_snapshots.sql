-- What an MQL was worth, overall (source '') and per source, each time the snapshot job ran: for dashboards that read SQL.
CREATE TABLE mql_value_snapshots (
    id                 BIGINT IDENTITY(1, 1) NOT NULL PRIMARY KEY,
    at                 DATETIMEOFFSET NOT NULL,
    source             NVARCHAR(256) NOT NULL,
    mqls               INT NOT NULL,
    customers          INT NOT NULL,
    close_rate         FLOAT NOT NULL,
    close_rate_low     FLOAT NOT NULL,
    close_rate_high    FLOAT NOT NULL,
    average_revenue    DECIMAL(18, 2) NOT NULL,
    value              DECIMAL(18, 2) NOT NULL,
    value_low          DECIMAL(18, 2) NOT NULL,
    value_high         DECIMAL(18, 2) NOT NULL,
    currency           NVARCHAR(3) NOT NULL,
    definition_version NVARCHAR(64) NOT NULL,
    CONSTRAINT ux_mql_value_snapshots UNIQUE (at, source)
);
