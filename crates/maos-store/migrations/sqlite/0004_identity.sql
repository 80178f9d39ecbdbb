-- The identity provider: principals, their credentials, token signing keys, refresh-token
-- families and revoked access tokens. Secrets are never stored in the clear: passwords as
-- Argon2id PHC strings, API key secrets and recovery codes as SHA-256 hashes, TOTP seeds and
-- signing keys wrapped by the data directory's key-encryption key.

CREATE TABLE principals (
    id          TEXT   PRIMARY KEY,
    status      TEXT   NOT NULL,
    attributes  TEXT   NOT NULL,
    roles       TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE principal_passwords (
    principal   TEXT   PRIMARY KEY REFERENCES principals (id) ON DELETE CASCADE,
    hash        TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE principal_totp (
    principal        TEXT    PRIMARY KEY REFERENCES principals (id) ON DELETE CASCADE,
    sealed_secret    TEXT    NOT NULL,
    config           TEXT    NOT NULL,
    confirmed        BOOLEAN NOT NULL,
    last_used_step   BIGINT,
    recovery_hashes  TEXT    NOT NULL,
    updated_at       BIGINT  NOT NULL
);

CREATE TABLE principal_api_keys (
    id          TEXT   PRIMARY KEY,
    principal   TEXT   NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    record      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE INDEX principal_api_keys_by_principal ON principal_api_keys (principal);

CREATE TABLE token_signing_keys (
    kid             TEXT   PRIMARY KEY,
    algorithm       TEXT   NOT NULL,
    sealed_private  TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    replaced_at     BIGINT
);

-- One row: the refresh-token families as the identity core persists them.
CREATE TABLE refresh_families (
    id          INTEGER PRIMARY KEY,
    snapshot    TEXT    NOT NULL,
    updated_at  BIGINT  NOT NULL
);

CREATE TABLE token_revocations (
    jti         TEXT   PRIMARY KEY,
    expires_at  BIGINT NOT NULL
);
