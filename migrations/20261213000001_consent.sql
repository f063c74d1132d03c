-- Consent (docs/consent.md): a campaign's category, users' opt-outs, suppressed addresses,
-- and a new outcome, `suppressed`, for a recipient a page left out because of them.

-- The categories a campaign may have: `marketing` (the default) and `transactional` (which
-- ignores opt-outs, asked for by name), and those an operator declares.
CREATE TABLE categories (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,39}$'),
    description text,
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Whether anybody ever opted out of this category (kept by `opt_outs_mark`): a page asks
    -- it once before asking per recipient. It is never cleared, so at worst a page asks in
    -- vain; a planner cannot guess this from opt_outs' statistics, since the category a
    -- page compares with is a parameter.
    opted_out   boolean NOT NULL DEFAULT false
);
INSERT INTO categories (name, description, created_by) VALUES
    ('marketing', 'news, offers, announcements: what a user may opt out of', 'herald'),
    ('transactional', 'receipts, security notices: sent whatever the user opted out of', 'herald');

ALTER TABLE messages ADD COLUMN category text NOT NULL DEFAULT 'marketing'
    REFERENCES categories (name);

-- A user's "no": to one category, on one channel or on all (`all`). Kept with when and how
-- (one-click, api, operator, import), so that a complaint can be answered.
CREATE TABLE opt_outs (
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Nobody opts out of transactional messages.
    category    text NOT NULL REFERENCES categories (name) ON DELETE CASCADE
                CHECK (category <> 'transactional'),
    channel     text NOT NULL CHECK (channel IN ('inbox', 'webhook', 'email', 'all')),
    source      text NOT NULL CHECK (source IN ('one-click', 'api', 'operator', 'import')),
    actor       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, category, channel)
);
CREATE INDEX opt_outs_category ON opt_outs (category);

CREATE FUNCTION opt_outs_mark() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE categories c SET opted_out = true
    WHERE NOT c.opted_out AND c.name IN (SELECT DISTINCT n.category FROM new_opt_outs n);
    RETURN NULL;
END $$;
CREATE TRIGGER opt_outs_mark AFTER INSERT ON opt_outs
    REFERENCING NEW TABLE AS new_opt_outs
    FOR EACH STATEMENT EXECUTE FUNCTION opt_outs_mark();

-- An address a channel must not send to, whoever has it: a hard bounce, a list imported
-- from another sender, an operator's entry. The address is the lower-cased e-mail address
-- for e-mail, the user id for the other channels.
CREATE TABLE suppressions (
    channel     text NOT NULL CHECK (channel IN ('inbox', 'webhook', 'email')),
    address     text NOT NULL CHECK (address <> '' AND address = lower(address)),
    reason      text NOT NULL CHECK (reason IN ('bounce', 'import', 'operator')),
    detail      text,
    actor       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, address)
);

-- Secrets Herald makes for itself when none is configured (the unsubscribe links' key), so
-- that every worker and API process signs and checks alike.
CREATE TABLE herald_secrets (
    name        text PRIMARY KEY,
    value       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- An item of an external channel's recipient found opted out or suppressed when their page
-- ran: status 3. (An inbox page writes no item for them; its counter says how many.)
-- Re-adding the check reads every partition under a lock that stops page writes: on a large
-- ledger, migrate with the workers stopped.
ALTER TABLE message_items DROP CONSTRAINT message_items_status_check;
ALTER TABLE message_items ADD CONSTRAINT message_items_status_check CHECK (status BETWEEN 0 AND 3);

-- A page's `recipients` stay those it delivers to; `suppressed` counts those of its scan it
-- left out. A pending recipient found opted out when the page runs again moves from one to
-- the other, so "closed" (`recipients <= sent + failed`) keeps its meaning and its index.
ALTER TABLE message_pages ADD COLUMN suppressed integer NOT NULL DEFAULT 0;
ALTER TABLE message_lanes ADD COLUMN suppressed bigint NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION herald_lane_totals() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    gain_sent bigint := 0;
    gain_failed bigint := 0;
    gain_retried bigint := 0;
    gain_suppressed bigint := 0;
BEGIN
    IF NEW.recipients <= NEW.sent + NEW.failed THEN
        gain_sent := NEW.sent;
        gain_failed := NEW.failed;
        gain_retried := NEW.retried;
        gain_suppressed := NEW.suppressed;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF OLD.recipients <= OLD.sent + OLD.failed THEN
            gain_sent := gain_sent - OLD.sent;
            gain_failed := gain_failed - OLD.failed;
            gain_retried := gain_retried - OLD.retried;
            gain_suppressed := gain_suppressed - OLD.suppressed;
        END IF;
    END IF;
    INSERT INTO message_lanes AS l (message_id, lane, sent, failed, retried, suppressed,
                                    first_after, scanned_to)
    VALUES (NEW.message_id, NEW.lane, gain_sent, gain_failed, gain_retried, gain_suppressed,
            NEW.after_user_id, coalesce(NEW.scanned_to, NEW.last_user_id, NEW.after_user_id))
    ON CONFLICT (message_id, lane) DO UPDATE SET
        sent = l.sent + excluded.sent,
        failed = l.failed + excluded.failed,
        retried = l.retried + excluded.retried,
        suppressed = l.suppressed + excluded.suppressed,
        first_after = least(l.first_after, excluded.first_after),
        scanned_to = greatest(l.scanned_to, excluded.scanned_to);
    RETURN NULL;
END
$$;

DROP TRIGGER message_pages_lane_totals_update ON message_pages;
CREATE TRIGGER message_pages_lane_totals_update
    AFTER UPDATE OF recipients, sent, failed, retried, suppressed ON message_pages
    FOR EACH ROW
    WHEN ((OLD.recipients <= OLD.sent + OLD.failed OR NEW.recipients <= NEW.sent + NEW.failed)
          AND (OLD.recipients, OLD.sent, OLD.failed, OLD.retried, OLD.suppressed) IS DISTINCT FROM
              (NEW.recipients, NEW.sent, NEW.failed, NEW.retried, NEW.suppressed))
    EXECUTE FUNCTION herald_lane_totals();

-- Test sends (`herald test-send`): what was sent to whom, by whom, outside every ledger
-- count.
CREATE TABLE test_sends (
    -- Taken before the send: it is in the test delivery's id (`test_KEY_USER_N`).
    id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    campaign    text,
    channel     text NOT NULL,
    user_id     bigint NOT NULL,
    title       text NOT NULL,
    outcome     text NOT NULL,
    error       text,
    actor       text,
    at          timestamptz NOT NULL DEFAULT now()
);
