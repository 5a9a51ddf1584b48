-- Flow state only: the directory is the system of record for accounts.
-- One schema for SQLite and PostgreSQL: TEXT, BIGINT and no backend-specific types.
-- Times are Unix seconds (UTC).

-- One-time links (activation, reset, e-mail change). Only the SHA-256 of the token is
-- kept; a newer link for the same account and purpose voids the older.
CREATE TABLE one_time_tokens (
    token_hash   TEXT PRIMARY KEY,
    purpose      TEXT NOT NULL,
    account_dn   TEXT NOT NULL,
    payload      TEXT NOT NULL DEFAULT '{}',
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT,
    voided_at    BIGINT
);
CREATE INDEX one_time_tokens_account ON one_time_tokens (account_dn, purpose);

-- Transactional outbox: a row is written with the state change that needs the mail.
CREATE TABLE outbox (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    recipient      TEXT NOT NULL,
    lang           TEXT NOT NULL,
    payload        TEXT NOT NULL,
    account_dn     TEXT,
    created_at     BIGINT NOT NULL,
    attempts       BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until    BIGINT,
    sent_at        BIGINT,
    -- Set when the relay refused the message for good or retries ran out.
    failed_at      BIGINT,
    last_error     TEXT
);
CREATE INDEX outbox_pending ON outbox (sent_at, next_attempt_at);

-- Rate-limit counters shared by every instance: one row per key and window.
CREATE TABLE rate_limits (
    bucket       TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    hits         BIGINT NOT NULL,
    PRIMARY KEY (bucket, window_start)
);

-- Security events: who, what, when, from where, with what outcome.
CREATE TABLE audit_events (
    id          TEXT PRIMARY KEY,
    at          BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    account     TEXT,
    client_ip   TEXT,
    request_id  TEXT,
    detail      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_account ON audit_events (account, at);
CREATE INDEX audit_events_kind ON audit_events (kind, at);
