-- Users come from imports and the API now, and not every user has an e-mail address (a
-- user reached only through the inbox or a webhook). The e-mail channel fails a recipient
-- without one, with that reason (herald_activities::channels::email).
ALTER TABLE users ALTER COLUMN email DROP NOT NULL;

-- Most users carry no segment: an index entry for each of them cost every insert into
-- `users` (an import's largest single cost after the primary key) and held nothing a filter
-- asks for. A segment test is `segments @> ARRAY[$s] AND segments <> '{}'`
-- (herald_store::filter), which this partial index answers.
DROP INDEX users_segments_gin;
CREATE INDEX users_segments_gin ON users USING gin (segments) WHERE segments <> '{}';
