-- Signing keys are published before they sign (issue 16): a key made by
-- `guichet keys rotate` signs from `signs_from`, and the keys it replaces stop
-- signing then (`retired_at`). Clients that cached the JWKS (Cache-Control) have
-- fetched the new key by the time it signs. Keys made before this column signed
-- from their creation: 0 says so.
ALTER TABLE oidc_keys ADD COLUMN signs_from BIGINT NOT NULL DEFAULT 0;
