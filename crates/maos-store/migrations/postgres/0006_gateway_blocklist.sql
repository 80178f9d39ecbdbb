-- The gateway's dynamic blocklist: networks refused until a time, written by the admin API and
-- by automated responses. Expired rows are ignored by readers and may be deleted at any time.

CREATE TABLE gateway_blocklist (
    network        TEXT   PRIMARY KEY,
    blocked_until  BIGINT NOT NULL,
    reason         TEXT   NOT NULL DEFAULT '',
    created_by     TEXT   NOT NULL,
    created_at     BIGINT NOT NULL
);

CREATE INDEX gateway_blocklist_until ON gateway_blocklist (blocked_until);
