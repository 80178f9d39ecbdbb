-- The tamper-evident audit log (docs/audit.md): sealed records, signed checkpoints and the
-- chain state. Records and checkpoints are kept as their JSON text, byte for byte, so that a
-- record read back hashes to the value it was sealed with; the other columns are indexed copies.

CREATE TABLE audit_records (
    seq         BIGINT PRIMARY KEY,
    time        BIGINT NOT NULL,
    actor       TEXT   NOT NULL,
    action      TEXT   NOT NULL,
    resource    TEXT   NOT NULL,
    status      TEXT   NOT NULL,
    request_id  TEXT,
    record      TEXT   NOT NULL
);

CREATE INDEX audit_records_time ON audit_records (time);
CREATE INDEX audit_records_actor ON audit_records (actor, seq);
CREATE INDEX audit_records_action ON audit_records (action, seq);
CREATE INDEX audit_records_resource ON audit_records (resource, seq);

CREATE TABLE audit_checkpoints (
    idx         BIGINT PRIMARY KEY,
    time        BIGINT NOT NULL,
    tree_size   BIGINT NOT NULL,
    checkpoint  TEXT   NOT NULL
);

-- One row: the chain's state (NULL before the first record). Appends lock it, so nodes sharing
-- the database append to one chain in turn.
CREATE TABLE audit_chain (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    state  TEXT
);

INSERT INTO audit_chain (id, state) VALUES (1, NULL);
