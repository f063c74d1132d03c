-- A user id is a whole number from 1 to 2^53 - 1 (herald_wire::users::MAX_USER_ID): past it a
-- browser, or any JSON reader that keeps numbers as doubles, reads another id, and the
-- ledger's partitions (herald_ledger_partition_of) would need bounds beyond bigint. Imports
-- and the API check this with a message that names the field; the table holds to it for
-- everything else (hand-written SQL, a restore).
ALTER TABLE users ALTER COLUMN id SET MAXVALUE 9007199254740991;
-- Added NOT VALID, then validated on its own (the next migration): adding it checked would hold
-- an ACCESS EXCLUSIVE lock on `users` while every row is read, and running campaigns' pages
-- read `users`; validating takes a lock that lets them go on.
ALTER TABLE users ADD CONSTRAINT users_id_range CHECK (id BETWEEN 1 AND 9007199254740991) NOT VALID;
