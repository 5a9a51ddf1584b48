-- The credential epoch of each account (DESIGN §7): a password reset, an activation
-- or a change of password raises it in the transaction that records the change.
-- Sessions, codes and tokens carry the epoch they were issued under and count only
-- while it is the account's current one, so a credential being issued at the very
-- moment of a reset dies with the others. No row means epoch 0. A password write
-- claims the account (claimed_until, a lease) so that two writes to one account
-- (a reset and a change signed in) never interleave.
CREATE TABLE account_epochs (
    account_dn    TEXT PRIMARY KEY,
    epoch         BIGINT NOT NULL,
    raised_at     BIGINT NOT NULL,
    claimed_until BIGINT
);

ALTER TABLE sso_sessions ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
-- What logout needs, kept with the session so that ending it never reads the
-- directory: the `sub` the applications know the student by.
ALTER TABLE sso_sessions ADD COLUMN subject TEXT;
ALTER TABLE oidc_codes ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE oidc_tokens ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
CREATE INDEX oidc_tokens_session ON oidc_tokens (session_hash);

-- A link being used is claimed for a short lease before the directory write, so
-- that two requests with the same link never both write, and no SQL transaction
-- stays open across the directory call. A claim that outlives its lease (the
-- instance died) lapses and the link can be used again.
ALTER TABLE one_time_tokens ADD COLUMN claimed_until BIGINT;
