-- Named API keys (`herald keys create`), each with scopes. A key is `hk_` and 32 random bytes:
-- only its SHA-256 is kept, which is enough for a secret nobody can guess. A revoked key
-- stays, name and all, so that a name always means one key.
CREATE TABLE api_keys (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    scopes      text[] NOT NULL CHECK (cardinality(scopes) > 0
                                       AND scopes <@ ARRAY['read', 'operate', 'launch', 'admin']),
    hash        bytea NOT NULL UNIQUE,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- Dashboard sessions: one row per sign-in, keyed by the SHA-256 of its cookie. `key_hash` is
-- the key signed in with (a named key, or HERALD_API_TOKEN under the name `api-token`): a
-- session lasts while that key does, until it expires or is signed out of.
CREATE TABLE api_sessions (
    hash        bytea PRIMARY KEY,
    key_name    text NOT NULL,
    key_hash    bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    ended_at    timestamptz
);
CREATE INDEX api_sessions_open ON api_sessions (key_hash) WHERE ended_at IS NULL;
