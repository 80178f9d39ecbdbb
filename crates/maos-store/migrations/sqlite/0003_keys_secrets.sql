-- The key service's records, the encrypted secrets store and its re-encryption jobs.

-- One row per key: its KeyRing record as JSON (metadata and KEK-wrapped material only), a
-- revision counter for optimistic concurrency between nodes, and an HMAC-SHA256 over name,
-- revision and record under a key wrapped by the KEK (see docs/keys.md).
CREATE TABLE key_records (
    name        TEXT   PRIMARY KEY,
    revision    BIGINT NOT NULL,
    record      TEXT   NOT NULL,
    mac         TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Settings of the key service, such as the KEK-wrapped record authentication key.
CREATE TABLE key_service_settings (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

-- Every version of every secret, encrypted with a key of the key service.
CREATE TABLE secrets (
    path         TEXT   NOT NULL,
    version      BIGINT NOT NULL,
    key_name     TEXT   NOT NULL,
    key_version  BIGINT NOT NULL,
    ciphertext   TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (path, version)
);

-- Re-encryption of every secret to the latest version of its key; the cursor is the last
-- (path, version) handled, so that a restarted server resumes after it.
CREATE TABLE secret_rewrap_jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    key_name        TEXT   NOT NULL,
    target_version  BIGINT NOT NULL,
    state           TEXT   NOT NULL,
    total           BIGINT NOT NULL,
    done            BIGINT NOT NULL DEFAULT 0,
    failed          BIGINT NOT NULL DEFAULT 0,
    cursor_path     TEXT,
    cursor_version  BIGINT,
    started_at      BIGINT NOT NULL,
    finished_at     BIGINT
);

-- At most one job runs at a time.
CREATE UNIQUE INDEX secret_rewrap_jobs_one_running ON secret_rewrap_jobs (state)
    WHERE state = 'running';

-- One result per secret version and job.
CREATE TABLE secret_rewrap_results (
    job_id        BIGINT NOT NULL REFERENCES secret_rewrap_jobs (id),
    path          TEXT   NOT NULL,
    version       BIGINT NOT NULL,
    from_version  BIGINT NOT NULL,
    to_version    BIGINT,
    result        TEXT   NOT NULL,
    PRIMARY KEY (job_id, path, version)
);
