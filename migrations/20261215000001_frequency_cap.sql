-- The frequency cap (docs/local-time.md, "Frequency cap"): at most N capped campaigns reach
-- a user in a window. A campaign's cap is in its spec (`frequency_cap`, "2/24h").

-- Per user, when capped campaigns reached them (`sent_at`): the newest first, at most 20 (the
-- largest cap). A capped page takes its recipients through this table in the same statement
-- that writes their ledger rows, with `INSERT … ON CONFLICT DO UPDATE … WHERE <under the
-- cap>`: the row lock makes two capped campaigns reaching one user at once take turns, and
-- the second sees the first's delivery, so together they never exceed the cap. A cap of N in
-- a window is "the N-th newest is outside it", one look at the array, and a delivery is
-- prepended with the time it took the lock (`clock_timestamp()`), so the array stays newest
-- first (store/src/cap.rs). Uncapped and transactional campaigns never touch it. Kept narrow,
-- with room on each page for its updates to stay on the page (HOT).
CREATE TABLE recent_deliveries (
    user_id bigint PRIMARY KEY,
    sent_at timestamptz[] NOT NULL
) WITH (fillfactor = 70);

-- A page's recipients left out by the cap: part of its `suppressed` (those left out), so that
-- a page's arithmetic and the workflow's counts stay as they are, shown apart.
ALTER TABLE message_pages ADD COLUMN capped integer NOT NULL DEFAULT 0;
ALTER TABLE message_lanes ADD COLUMN capped bigint NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION herald_lane_totals() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    gain_sent bigint := 0;
    gain_failed bigint := 0;
    gain_retried bigint := 0;
    gain_suppressed bigint := 0;
    gain_capped bigint := 0;
BEGIN
    IF NEW.recipients <= NEW.sent + NEW.failed THEN
        gain_sent := NEW.sent;
        gain_failed := NEW.failed;
        gain_retried := NEW.retried;
        gain_suppressed := NEW.suppressed;
        gain_capped := NEW.capped;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF OLD.recipients <= OLD.sent + OLD.failed THEN
            gain_sent := gain_sent - OLD.sent;
            gain_failed := gain_failed - OLD.failed;
            gain_retried := gain_retried - OLD.retried;
            gain_suppressed := gain_suppressed - OLD.suppressed;
            gain_capped := gain_capped - OLD.capped;
        END IF;
    END IF;
    INSERT INTO message_lanes AS l (message_id, lane, sent, failed, retried, suppressed, capped,
                                    first_after, scanned_to)
    VALUES (NEW.message_id, NEW.lane, gain_sent, gain_failed, gain_retried, gain_suppressed,
            gain_capped, NEW.after_user_id,
            coalesce(NEW.scanned_to, NEW.last_user_id, NEW.after_user_id))
    ON CONFLICT (message_id, lane) DO UPDATE SET
        sent = l.sent + excluded.sent,
        failed = l.failed + excluded.failed,
        retried = l.retried + excluded.retried,
        suppressed = l.suppressed + excluded.suppressed,
        capped = l.capped + excluded.capped,
        first_after = least(l.first_after, excluded.first_after),
        scanned_to = greatest(l.scanned_to, excluded.scanned_to);
    RETURN NULL;
END
$$;

DROP TRIGGER message_pages_lane_totals_update ON message_pages;
CREATE TRIGGER message_pages_lane_totals_update
    AFTER UPDATE OF recipients, sent, failed, retried, suppressed, capped ON message_pages
    FOR EACH ROW
    WHEN ((OLD.recipients <= OLD.sent + OLD.failed OR NEW.recipients <= NEW.sent + NEW.failed)
          AND (OLD.recipients, OLD.sent, OLD.failed, OLD.retried, OLD.suppressed, OLD.capped)
              IS DISTINCT FROM
              (NEW.recipients, NEW.sent, NEW.failed, NEW.retried, NEW.suppressed, NEW.capped))
    EXECUTE FUNCTION herald_lane_totals();

-- Settings every process reads alike: the frequency cap a campaign gets when its launch
-- names none (`herald settings frequency-cap 2/24h`).
CREATE TABLE settings (
    name    text PRIMARY KEY CHECK (name IN ('frequency_cap')),
    value   text NOT NULL,
    set_by  text,
    set_at  timestamptz NOT NULL DEFAULT now()
);
