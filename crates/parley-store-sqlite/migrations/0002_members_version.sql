-- Membership changes are decided by the core against one state of the members and applied
-- only if that state still stands: this version moves on with every change.
ALTER TABLE conversations ADD COLUMN members_version INTEGER NOT NULL DEFAULT 0;
