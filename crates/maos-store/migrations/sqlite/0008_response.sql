-- Automated response actions (block_ip, disable_user, quarantine_resource, rotate_credentials,
-- increase_monitoring): one row per action taken or rehearsed (dry run). An action is `active`
-- until it expires or is undone; at most one action per kind and target is active at a time,
-- which is what makes a repeated trigger one effect. `body` holds the whole record as JSON.

CREATE TABLE response_actions (
    id          TEXT   PRIMARY KEY,
    action      TEXT   NOT NULL,
    target      TEXT   NOT NULL,
    state       TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    ended_at    BIGINT,
    body        TEXT   NOT NULL
);

CREATE UNIQUE INDEX response_actions_one_active ON response_actions (action, target)
    WHERE state = 'active';
CREATE INDEX response_actions_created ON response_actions (created_at);
CREATE INDEX response_actions_history ON response_actions (action, target, created_at);
CREATE INDEX response_actions_expiry ON response_actions (state, expires_at);
