-- Back-channel logouts still to deliver: a client that is down gets its logout
-- when it is back, across restarts and instances. The logout token is signed at
-- each attempt (it lives two minutes), from these claims.
CREATE TABLE oidc_logout_deliveries (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL,
    session_hash    TEXT NOT NULL,
    subject         TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    delivered_at    BIGINT,
    failed_at       BIGINT,
    last_error      TEXT
);
CREATE INDEX oidc_logout_deliveries_due ON oidc_logout_deliveries (delivered_at, next_attempt_at);
