-- OpenID Connect provider state. Secrets (client secrets, codes, tokens) are kept
-- only as SHA-256 hashes; they are 256-bit random values, so a plain hash is enough.

-- Signing keys: the newest active key signs; retired keys stay published in the JWKS
-- until `published_until`, so tokens signed before a rotation still verify.
CREATE TABLE oidc_keys (
    kid             TEXT PRIMARY KEY,
    alg             TEXT NOT NULL,
    private_der     TEXT NOT NULL,
    public_jwk      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    retired_at      BIGINT,
    published_until BIGINT
);

CREATE TABLE oidc_clients (
    client_id        TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    -- NULL: a public client (PKCE required, no secret).
    secret_hash      TEXT,
    redirect_uris    TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]',
    backchannel_logout_uri TEXT,
    first_party      BIGINT NOT NULL DEFAULT 1,
    id_token_alg     TEXT NOT NULL DEFAULT 'RS256',
    created_at       BIGINT NOT NULL
);

CREATE TABLE oidc_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL,
    account_dn     TEXT NOT NULL,
    session_hash   TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT,
    auth_time      BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);

-- Access and refresh tokens. `grant` ties every token issued from one code together:
-- a replayed code or refresh token revokes the whole grant.
CREATE TABLE oidc_tokens (
    token_hash   TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    grant_id     TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    account_dn   TEXT NOT NULL,
    session_hash TEXT NOT NULL,
    scope        TEXT NOT NULL,
    auth_time    BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    rotated_at   BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX oidc_tokens_grant ON oidc_tokens (grant_id);
CREATE INDEX oidc_tokens_account ON oidc_tokens (account_dn);

-- What a student agreed to share with a third-party client (first-party clients,
-- the institution's own applications, need no consent).
CREATE TABLE oidc_consents (
    account_dn  TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    scope       TEXT NOT NULL,
    granted_at  BIGINT NOT NULL,
    PRIMARY KEY (account_dn, client_id)
);
