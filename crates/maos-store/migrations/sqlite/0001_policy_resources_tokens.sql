-- Policy bundle versions, their activation history, registered resources and API tokens.
-- Later issues add their own numbered files (principals, keys, audit records, events).

CREATE TABLE policy_versions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at  BIGINT  NOT NULL,
    author      TEXT    NOT NULL,
    comment     TEXT    NOT NULL DEFAULT '',
    source      TEXT    NOT NULL,
    active      BOOLEAN NOT NULL DEFAULT FALSE
);

-- At most one version is active at any time.
CREATE UNIQUE INDEX policy_versions_one_active ON policy_versions (active) WHERE active;

-- Every activation, in order; a rollback marks the latest one undone and the previous one
-- that is not undone becomes the active version again.
CREATE TABLE policy_activations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    version_id    BIGINT  NOT NULL REFERENCES policy_versions (id),
    activated_at  BIGINT  NOT NULL,
    author        TEXT    NOT NULL,
    undone        BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE resources (
    kind        TEXT   NOT NULL,
    id          TEXT   NOT NULL,
    attributes  TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);

CREATE TABLE api_tokens (
    id           TEXT   PRIMARY KEY,
    principal    TEXT   NOT NULL,
    roles        TEXT   NOT NULL,
    description  TEXT   NOT NULL DEFAULT '',
    token_hash   TEXT   NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT
);
