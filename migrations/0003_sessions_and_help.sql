-- Guichet's own signed-in sessions (shared with OIDC): the cookie holds a random
-- value, only its SHA-256 is kept. A password change ends every session of the
-- account by setting ended_at.
CREATE TABLE sso_sessions (
    id_hash       TEXT PRIMARY KEY,
    account_dn    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    ended_at      BIGINT
);
CREATE INDEX sso_sessions_account ON sso_sessions (account_dn);

-- Help requests from the contact form, with the reference the student is given.
CREATE TABLE help_requests (
    reference     TEXT PRIMARY KEY,
    created_at    BIGINT NOT NULL,
    name          TEXT NOT NULL,
    identifier    TEXT NOT NULL,
    contact_email TEXT NOT NULL,
    category      TEXT NOT NULL,
    message       TEXT NOT NULL,
    account_dn    TEXT,
    client_ip     TEXT
);
CREATE INDEX help_requests_created ON help_requests (created_at);
