-- Grants revoked because a code or refresh token was replayed. Checked after tokens
-- are stored, so a replay racing the first redemption cannot leave the first
-- redemption's tokens alive (the revocation may run before they exist).
CREATE TABLE oidc_revoked_grants (
    grant_id   TEXT PRIMARY KEY,
    revoked_at BIGINT NOT NULL
);

-- Resource servers (Dovecot) may introspect the tokens of other clients; any other
-- client only its own.
ALTER TABLE oidc_clients ADD COLUMN introspection BIGINT NOT NULL DEFAULT 0;
