-- The SIEM's security events and alerts (docs/siem.md, "In the server"). Each row keeps the
-- event or alert as its JSON text; the other columns are indexed copies for search. Times are
-- microseconds (event and alert times) or milliseconds (arrival and update) since the epoch.

CREATE TABLE siem_events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    time            BIGINT  NOT NULL,
    received_at     BIGINT  NOT NULL,
    source          TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    severity        INTEGER NOT NULL,
    principal       TEXT,
    source_address  TEXT,
    resource        TEXT,
    correlation_id  TEXT,
    event           TEXT    NOT NULL
);

CREATE INDEX siem_events_time ON siem_events (time);
CREATE INDEX siem_events_received ON siem_events (received_at);
CREATE INDEX siem_events_source_address ON siem_events (source_address, seq);
CREATE INDEX siem_events_principal ON siem_events (principal, seq);
CREATE INDEX siem_events_correlation ON siem_events (correlation_id);

CREATE TABLE siem_alerts (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT    NOT NULL UNIQUE,
    rule_id          TEXT    NOT NULL,
    severity         INTEGER NOT NULL,
    first_seen       BIGINT  NOT NULL,
    last_seen        BIGINT  NOT NULL,
    hits             BIGINT  NOT NULL,
    source_address   TEXT,
    principal        TEXT,
    resource         TEXT,
    correlation_id   TEXT,
    status           TEXT    NOT NULL DEFAULT 'open',
    acknowledged_by  TEXT,
    acknowledged_at  BIGINT,
    updated_at       BIGINT  NOT NULL,
    alert            TEXT    NOT NULL
);

CREATE INDEX siem_alerts_rule ON siem_alerts (rule_id, seq);
CREATE INDEX siem_alerts_last_seen ON siem_alerts (last_seen);
CREATE INDEX siem_alerts_updated ON siem_alerts (updated_at);
