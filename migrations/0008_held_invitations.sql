-- An entry whose personal address other entries share is invited nowhere (each
-- activation would be refused): its row is held from that time, with the shared
-- address, until the address names it alone; then it is invited as a first time.
ALTER TABLE invitations ADD COLUMN held_at BIGINT;
