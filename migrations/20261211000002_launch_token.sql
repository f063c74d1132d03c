-- A random value per campaign row, given to its workflow's memo at every start. When a
-- launch finds the key's workflow already there, the token says whether that workflow is this
-- row's (a racing launch of the same campaign started it) or another ledger's campaign under
-- the same key on the same Temporal namespace, whatever their specs.
ALTER TABLE messages ADD COLUMN launch_token text NOT NULL
    DEFAULT md5(random()::text || clock_timestamp()::text);
