-- CAS 3.0 (issue 15): the registered services, the tickets issued on the SSO
-- session, and what single logout owes each session's services.

-- A service is matched by its exact normalised URL or by an anchored regular
-- expression over it. `attributes` is a JSON array of the claim names (from the
-- OIDC claim mapping) it is given. `proxy_callbacks` is NULL when the service may
-- not obtain proxy-granting tickets, else the anchored pattern its pgtUrl must
-- match. `single_logout` is NULL (none), 'service' (posted to the URL the ticket
-- was issued for) or a URL.
CREATE TABLE cas_services (
    name            TEXT PRIMARY KEY,
    display_name    TEXT NOT NULL,
    match_kind      TEXT NOT NULL,
    url             TEXT NOT NULL,
    attributes      TEXT NOT NULL DEFAULT '[]',
    proxy_callbacks TEXT,
    single_logout   TEXT,
    created_at      BIGINT NOT NULL
);

-- Service (ST), proxy (PT) and proxy-granting (PGT) tickets, by SHA-256 only.
-- An ST or PT is spent (`used_at`) by its first validation, whatever its outcome;
-- a PGT lives as long as its session. Every ticket carries the credential epoch
-- it was issued under, and counts only while it is the account's current one.
-- `proxies` is the JSON chain of proxy callbacks, the most recent first.
CREATE TABLE cas_tickets (
    ticket_hash    TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    service_name   TEXT NOT NULL,
    service_url    TEXT NOT NULL,
    session_hash   TEXT NOT NULL,
    account_dn     TEXT NOT NULL,
    epoch          BIGINT NOT NULL,
    auth_time      BIGINT NOT NULL,
    from_new_login BIGINT NOT NULL,
    proxies        TEXT NOT NULL DEFAULT '[]',
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);
CREATE INDEX cas_tickets_expiry ON cas_tickets (expires_at);
-- A sign-in vouches for one ticket as a new login (`isFromNewLogin`, `renew`):
-- reopening the address that got it gives the SSO session's kind of ticket.
CREATE UNIQUE INDEX cas_tickets_new_login ON cas_tickets (session_hash) WHERE from_new_login = 1;

-- The services a session signed in to, with the ticket each validated: single
-- logout names it (`SessionIndex`). A validated ticket is spent and opens
-- nothing, so it is kept as sent.
CREATE TABLE cas_session_services (
    session_hash TEXT NOT NULL,
    service_name TEXT NOT NULL,
    service_url  TEXT NOT NULL,
    ticket       TEXT NOT NULL,
    cas_user     TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX cas_session_services_session ON cas_session_services (session_hash);

-- Single logout goes through the back-channel queue: a CAS row names the service
-- (client_id), the user (subject), the ticket and the URL it was issued for.
ALTER TABLE oidc_logout_deliveries ADD COLUMN protocol TEXT NOT NULL DEFAULT 'oidc';
ALTER TABLE oidc_logout_deliveries ADD COLUMN cas_ticket TEXT;
ALTER TABLE oidc_logout_deliveries ADD COLUMN cas_service_url TEXT;
