-- Per-campaign questions in constant work (docs/architecture.md, "The ledger").
--
-- A campaign's progress was the sum of its page rows, and its report a scan of its items:
-- both grew with the campaign (a paced campaign has a page row per recipient; ten million
-- recipients are ten million items). Now:
--
-- * `message_lanes` holds each lane's totals over its closed pages (those with nothing
--   pending), kept by a trigger on `message_pages` whoever writes them. Progress is a lane's
--   row plus its open pages (a page per lane as it runs, or what a pause left), found through
--   a partial index: a few rows, however many pages.
-- * `message_failures` counts each lane's failed items by error class, with the class's
--   latest message, written by the statement that records them. The report reads it.
-- * `herald retry-failed` no longer rewrites every failed item at once: it numbers the retry
--   (`messages.retry_seq`), and each page with failures from before that number makes them
--   pending again when its lane reaches it (`message_pages.retry_seq`), so the request is
--   one row and the work is spread over the run that sends.

-- How many of a page's sent items needed more than one try.
ALTER TABLE message_pages ADD COLUMN retried integer NOT NULL DEFAULT 0;
-- The retry whose failures the page holds: a page with failures and a number below its
-- campaign's `retry_seq` has failures waiting to be sent again.
ALTER TABLE message_pages ADD COLUMN retry_seq integer NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN retry_seq integer NOT NULL DEFAULT 0;

-- What the ledger holds already, before the trigger below exists.
UPDATE message_pages p SET retried = s.n
FROM (SELECT p.message_id, p.lane, p.after_user_id, count(*) AS n
      FROM message_pages p JOIN message_items i
        ON i.message_id = p.message_id AND i.user_id > p.after_user_id
       AND i.user_id <= p.last_user_id
      WHERE i.status = 1 AND i.attempts > 1
      GROUP BY 1, 2, 3) s
WHERE p.message_id = s.message_id AND p.lane = s.lane AND p.after_user_id = s.after_user_id;

CREATE TABLE message_lanes (
    message_id  bigint NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    lane        integer NOT NULL,
    sent        bigint NOT NULL,
    failed      bigint NOT NULL,
    retried     bigint NOT NULL,
    -- The ids the lane's closed pages have scanned: from its first page's cursor to where its
    -- last scan ended (how far a campaign has got, for a sparse audience).
    first_after bigint NOT NULL,
    scanned_to  bigint NOT NULL,
    PRIMARY KEY (message_id, lane)
);

INSERT INTO message_lanes (message_id, lane, sent, failed, retried, first_after, scanned_to)
SELECT message_id, lane, sum(sent), sum(failed), sum(retried), min(after_user_id),
       max(coalesce(scanned_to, last_user_id, after_user_id))
FROM message_pages WHERE recipients <= sent + failed GROUP BY 1, 2;

-- Keep a lane's row equal to the sum of its closed pages: add a page as it closes (an inbox
-- page at once, an external one at its last record), take it away if it opens again (its
-- failures retried). A lane's row changes once per page, not per batch of outcomes, so a
-- long transaction elsewhere (a dump) leaves it few dead versions to step over.
CREATE FUNCTION herald_lane_totals() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    -- What the lane's row gains: the page as it now stands if it is closed, less the page as
    -- it stood if it was.
    gain_sent bigint := 0;
    gain_failed bigint := 0;
    gain_retried bigint := 0;
BEGIN
    IF NEW.recipients <= NEW.sent + NEW.failed THEN
        gain_sent := NEW.sent;
        gain_failed := NEW.failed;
        gain_retried := NEW.retried;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF OLD.recipients <= OLD.sent + OLD.failed THEN
            gain_sent := gain_sent - OLD.sent;
            gain_failed := gain_failed - OLD.failed;
            gain_retried := gain_retried - OLD.retried;
        END IF;
    END IF;
    INSERT INTO message_lanes AS l (message_id, lane, sent, failed, retried, first_after,
                                    scanned_to)
    VALUES (NEW.message_id, NEW.lane, gain_sent, gain_failed, gain_retried, NEW.after_user_id,
            coalesce(NEW.scanned_to, NEW.last_user_id, NEW.after_user_id))
    ON CONFLICT (message_id, lane) DO UPDATE SET
        sent = l.sent + excluded.sent,
        failed = l.failed + excluded.failed,
        retried = l.retried + excluded.retried,
        first_after = least(l.first_after, excluded.first_after),
        scanned_to = greatest(l.scanned_to, excluded.scanned_to);
    RETURN NULL;
END
$$;

CREATE TRIGGER message_pages_lane_totals_insert
    AFTER INSERT ON message_pages
    FOR EACH ROW WHEN (NEW.recipients <= NEW.sent + NEW.failed)
    EXECUTE FUNCTION herald_lane_totals();
CREATE TRIGGER message_pages_lane_totals_update
    AFTER UPDATE OF sent, failed, retried ON message_pages
    FOR EACH ROW
    WHEN ((OLD.recipients <= OLD.sent + OLD.failed OR NEW.recipients <= NEW.sent + NEW.failed)
          AND (OLD.sent, OLD.failed, OLD.retried) IS DISTINCT FROM
              (NEW.sent, NEW.failed, NEW.retried))
    EXECUTE FUNCTION herald_lane_totals();

CREATE TABLE message_failures (
    message_id  bigint NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    lane        integer NOT NULL,
    error_class text NOT NULL,
    items       bigint NOT NULL,
    retried     bigint NOT NULL,            -- of those, how many had more than one try
    error       text,                       -- the latest message of the class
    PRIMARY KEY (message_id, lane, error_class)
);

-- What the ledger holds already.
INSERT INTO message_failures (message_id, lane, error_class, items, retried, error)
SELECT p.message_id, p.lane, coalesce(i.error_class, 'unknown'), count(*),
       count(*) FILTER (WHERE i.attempts > 1), max(i.error)
FROM message_pages p JOIN message_items i
  ON i.message_id = p.message_id AND i.user_id > p.after_user_id AND i.user_id <= p.last_user_id
WHERE i.status = 2 AND p.failed > 0
GROUP BY 1, 2, 3;

-- The pages a per-campaign question looks into, without walking every page of a campaign
-- (a paced campaign has a page row per recipient): those with items still pending, and
-- those with failures, in id order (the failed list pages through them).
CREATE INDEX message_pages_open ON message_pages (message_id, lane, after_user_id)
    WHERE recipients > sent + failed;
CREATE INDEX message_pages_failures ON message_pages (message_id, last_user_id)
    WHERE failed > 0;
