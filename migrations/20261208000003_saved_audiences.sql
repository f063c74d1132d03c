-- Filters kept under a name (`herald audience save`), to launch with `--audience-name` or the
-- API's `audience_name`. A launch copies the filter into its campaign's spec: editing a saved
-- audience never changes a campaign already launched with it.
CREATE TABLE saved_audiences (
    name        text PRIMARY KEY,
    filter      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The name a campaign's filter was copied from: the same launch repeated by name (a retry
-- with its key) compares with what was copied then, not with what the name holds now.
ALTER TABLE messages ADD COLUMN audience_name text;
