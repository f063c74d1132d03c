-- The range added NOT VALID by the previous migration, checked for the rows already there
-- (SHARE UPDATE EXCLUSIVE: reads and writes of `users` go on meanwhile).
ALTER TABLE users VALIDATE CONSTRAINT users_id_range;
