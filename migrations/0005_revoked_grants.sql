-- Grants revoked because a code or refresh token was replayed. Checked after tokens
-- are stored, so a replay racing the first redemption cannot leave the first
-- redemption's tokens alive (the revocation may run before they exist).
CREATE TABLE oidc_revoked_grants (
    grant_id   TEXT PRIMARY KEY,
    revoked_at BIGINT NOT NULL
);
