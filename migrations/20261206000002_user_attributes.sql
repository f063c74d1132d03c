-- Users as real user bases have them: a display name, a locale and an IANA time zone (which
-- templates and local-time delivery read), and every other attribute in `attrs`, typed by
-- `user_attributes` (docs/architecture.md, "Audiences"). Audience filters compile to SQL
-- over these columns (herald_store::filter).
ALTER TABLE users
    ADD COLUMN name     text,
    ADD COLUMN locale   text,
    ADD COLUMN timezone text,
    ADD COLUMN attrs    jsonb NOT NULL DEFAULT '{}';

-- Each attribute's type: every user's value of it has this type (imports and the API refuse
-- others), so that a filter is checked at launch against it and a comparison never meets a
-- value it cannot read. Times are stored in `attrs` as RFC 3339 text in UTC to the
-- microsecond (`2026-12-01T09:30:00.000000Z`), whose text order is their time order.
CREATE TABLE user_attributes (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    type       text NOT NULL CHECK (type IN ('text', 'int', 'number', 'bool', 'time')),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The audience filter a campaign was launched with (herald_wire::audience::Filter, JSON,
-- its relative times fixed at launch); NULL: every user. `segment` still names the segment
-- of a campaign whose filter is exactly one segment, for older readers.
ALTER TABLE messages ADD COLUMN audience jsonb;
UPDATE messages SET audience = jsonb_build_object('segment', segment)
 WHERE segment IS NOT NULL AND audience IS NULL;
