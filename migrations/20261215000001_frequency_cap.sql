-- The frequency cap (docs/local-time.md, "Frequency cap"): at most N capped campaigns reach
-- a user in a window. A campaign's cap is in its spec (`frequency_cap`, "2/24h").

-- What capped campaigns sent, a row per page: when, and the ids it reached (the ledger's own
-- rows say the same, but only per campaign). A capped page asks, for its candidates, how many
-- rows of the window hold each of them, and writes its own row: one small write per page, not
-- one per recipient, and a look at the few pages of recent capped campaigns that cover its ids
-- (`herald_cap_reach`).
--
-- The ids are kept as `runs` of consecutive ids when they make few (a page of a campaign to
-- everyone is one run, a page with some users opted out a few), else as the sorted `users`.
-- Runs are counted by set arithmetic on ranges, a few operations a page; a list has to be
-- taken apart id by id (ten times the work), so it is only for pages too scattered for runs.
CREATE TABLE capped_pages (
    at        timestamptz NOT NULL,
    campaign  bigint NOT NULL,
    -- From the first id reached to the last.
    span      int8range NOT NULL,
    runs      int8multirange,
    users     bigint[],
    CHECK (num_nonnulls(runs, users) = 1)
);
CREATE INDEX capped_pages_span ON capped_pages USING gist (span);
-- A page's 500 ids are 4 KB: kept out of line as they are, not compressed first (which halves
-- nothing and costs each page's insert ten times more). No index on `at`: pages are found by
-- their span, and an index on time would tempt the planner into reading every page of the
-- window instead of the few that cover the ids.
ALTER TABLE capped_pages ALTER COLUMN users SET STORAGE EXTERNAL;

-- The ids a row of `capped_pages` reached, whichever way they are kept.
CREATE FUNCTION herald_capped_ids(runs int8multirange, users bigint[])
RETURNS SETOF bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT unnest(users)
    UNION ALL
    SELECT generate_series(lower(r), upper(r) - 1) FROM unnest(runs) r
$$;

-- Of `ids` (ascending and distinct), those a campaign capped at `most` per `window_secs` must
-- leave out now; records the others as reached by `campaign`. Exact under concurrency: it first
-- locks the blocks of 4,096 ids its candidates fall in (in one order, so pages never
-- deadlock), and being
-- VOLATILE, each query after that reads with a snapshot taken after the lock, so it sees
-- every capped page that held the lock before it. The locks last until the page's statement
-- commits. It answers with those left out, usually none, so that the page keeps the others
-- without a join.
CREATE FUNCTION herald_cap_reach(campaign bigint, ids bigint[], most integer,
                                 window_secs integer)
RETURNS bigint[] LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    first bigint := ids[1];
    last bigint := ids[cardinality(ids)];
    candidate_span int8range := int8range(first, last, '[]');
    stamp timestamptz;
    listed integer;
    pages int8multirange[];
    candidates int8multirange;
    -- The stretches of ids that `most` or more of the pages reached.
    crowded int8multirange;
    over bigint[] := '{}';
    reached bigint[];
    runs int8multirange;
BEGIN
    IF first IS NULL THEN
        RETURN '{}';
    END IF;
    -- Under a stricter isolation the queries below would read from the statement's start,
    -- not from after the lock, and miss a page that held it (Herald's connections ask for
    -- READ COMMITTED; this is for any other caller).
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'herald_cap_reach needs READ COMMITTED, not %',
            current_setting('transaction_isolation');
    END IF;
    -- The blocks the candidates' span covers when they are four or fewer (a dense page's one
    -- or two), else only those that hold candidates (never more than the candidates however
    -- sparse), in the order of their keys. Two pages that share a user share that user's
    -- block.
    IF (last >> 12) - (first >> 12) < 4 THEN
        PERFORM pg_advisory_xact_lock(hashtext('herald: frequency cap'), k)
        FROM (SELECT DISTINCT ((b % 2147483647)::integer) AS k
              FROM generate_series(first >> 12, last >> 12) b) blocks
        ORDER BY k;
    ELSE
        PERFORM pg_advisory_xact_lock(hashtext('herald: frequency cap'), k)
        FROM (SELECT DISTINCT ((u >> 12) % 2147483647)::integer AS k FROM unnest(ids) u) blocks
        ORDER BY k;
    END IF;
    -- From here, times are read after the lock: a page that waited for it counts from when
    -- it got it.
    stamp := clock_timestamp();
    SELECT count(*) FILTER (WHERE p.users IS NOT NULL),
           coalesce(array_agg(p.runs) FILTER (WHERE p.runs IS NOT NULL), '{}')
    INTO listed, pages
    FROM capped_pages p
    WHERE p.span && candidate_span AND p.at > stamp - make_interval(secs => window_secs);
    IF listed = 0 THEN
        -- Only runs: count by set arithmetic, and not at all when fewer pages cover the
        -- candidates than the cap allows.
        IF cardinality(pages) >= most THEN
            IF last - first + 1 = cardinality(ids) THEN
                candidates := int8multirange(candidate_span);
            ELSE
                SELECT range_agg(int8range(u, u, '[]')) INTO candidates FROM unnest(ids) u;
            END IF;
            -- Where the pages' runs start and end, and how many cover each stretch between.
            SELECT range_agg(int8range(x, next)) FILTER (WHERE n >= most) INTO crowded
            FROM (SELECT x, sum(d) OVER (ORDER BY x) AS n, lead(x) OVER (ORDER BY x) AS next
                  FROM (SELECT e.x, sum(e.d) AS d
                        FROM unnest(pages) p, unnest(p * candidates) r,
                             LATERAL (VALUES (lower(r), 1), (upper(r), -1)) e(x, d)
                        GROUP BY e.x) g) c;
            IF crowded IS NULL THEN
                over := '{}';
            ELSIF isempty(candidates - crowded) THEN
                over := ids;
            ELSE
                over := ARRAY(SELECT u FROM unnest(ids) u WHERE crowded @> u ORDER BY u);
            END IF;
        END IF;
    ELSE
        -- Some lists: count id by id, the runs taken apart within the candidates' span.
        over := ARRAY(
            SELECT u FROM unnest(ids) u WHERE u IN (
                SELECT x FROM (
                    SELECT x FROM capped_pages p, unnest(p.users) x
                    WHERE p.users IS NOT NULL AND p.span && candidate_span
                      AND p.at > stamp - make_interval(secs => window_secs)
                      AND x BETWEEN first AND last
                    UNION ALL
                    SELECT x
                    FROM capped_pages p, unnest(p.runs * int8multirange(candidate_span)) r,
                         generate_series(lower(r), upper(r) - 1) x
                    WHERE p.runs IS NOT NULL AND p.span && candidate_span
                      AND p.at > stamp - make_interval(secs => window_secs)) c
                GROUP BY x HAVING count(*) >= most)
            ORDER BY u);
    END IF;
    IF cardinality(over) = cardinality(ids) THEN
        RETURN over;
    END IF;
    reached := CASE WHEN cardinality(over) = 0 THEN ids
                    ELSE ARRAY(SELECT unnest(ids) EXCEPT SELECT unnest(over) ORDER BY 1) END;
    first := reached[1];
    last := reached[cardinality(reached)];
    IF last - first + 1 = cardinality(reached) THEN
        runs := int8multirange(int8range(first, last, '[]'));
    ELSE
        SELECT range_agg(int8range(u, u, '[]')) INTO runs FROM unnest(reached) u;
        IF (SELECT count(*) FROM unnest(runs)) > 32 THEN
            runs := NULL;
        END IF;
    END IF;
    INSERT INTO capped_pages (at, campaign, span, runs, users)
    VALUES (stamp, campaign, int8range(first, last, '[]'), runs,
            CASE WHEN runs IS NULL THEN reached END);
    RETURN over;
END $$;

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
