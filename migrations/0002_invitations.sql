-- Invitations sent to pre-provisioned accounts, so each is invited once (and
-- reminded on schedule) whichever instance runs the job.
CREATE TABLE invitations (
    account_dn    TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    first_sent_at BIGINT NOT NULL,
    last_sent_at  BIGINT NOT NULL,
    reminders     BIGINT NOT NULL DEFAULT 0
);
