-- Fair rate limits (DESIGN §7): a counted attempt remembers when it happened, for
-- the account-wide throttle's growing delay; refusals are counted apart, so that
-- a refused request never adds to the count and only the first refusal of a
-- window is audited.
ALTER TABLE rate_limits ADD COLUMN last_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE rate_limits ADD COLUMN refused BIGINT NOT NULL DEFAULT 0;

-- Browsers that signed in to an account (OWASP's device cookies): they are not
-- slowed when strangers guess that account's password. Only hashes are kept.
CREATE TABLE trusted_devices (
    device_hash  TEXT NOT NULL,
    login_digest TEXT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (device_hash, login_digest)
);
CREATE INDEX trusted_devices_expiry ON trusted_devices (expires_at);
