-- A completion in progress (on any node) holds its upload until this time (ms), so two
-- completions never write the served objects of one upload at once.
ALTER TABLE media ADD COLUMN claimed_until BIGINT;
