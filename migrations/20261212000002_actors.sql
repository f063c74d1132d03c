-- Who did what: every launch, request and status change names its actor. An actor is the
-- name of the API key a front end was called with (`api-token` for HERALD_API_TOKEN, `dev`
-- when the API serves without one), `cli:<OS user>` for the command line, `temporal` for a
-- bare signal sent to the workflow through Temporal, and `herald` for what a campaign does
-- by itself (it completes, fails, pauses itself). NULL: before actors were recorded. A
-- writer that names no actor (hand-written SQL) leaves the previous one in the row, and its
-- request is logged under that name.
ALTER TABLE messages
    ADD COLUMN created_by text,
    -- Who made the newest pause, resume, cancel or retry (the request `intent_seq` numbers).
    ADD COLUMN requested_by text,
    -- Who set the newest rate (`rate_seq`).
    ADD COLUMN rate_by text;

ALTER TABLE message_status_log ADD COLUMN actor text;

-- Every request a campaign has had, with its actor: the timeline's "who asked". Written by
-- a trigger, like the status log, so that every writer is logged alike; a repeated request
-- (the same number) is not a new one.
CREATE TABLE message_requests (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id  bigint NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    -- launch, pause, resume, cancel, retry-failed, rate
    request     text NOT NULL,
    -- The reason given, or the new rate.
    detail      text,
    actor       text,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX message_requests_by_message ON message_requests (message_id, id);

CREATE FUNCTION herald_log_request() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO message_requests (message_id, request, actor)
        VALUES (NEW.id, 'launch', NEW.created_by);
        RETURN NULL;
    END IF;
    IF NEW.retry_seq IS DISTINCT FROM OLD.retry_seq THEN
        INSERT INTO message_requests (message_id, request, detail, actor)
        VALUES (NEW.id, 'retry-failed', NEW.intent_reason, NEW.requested_by);
    ELSIF NEW.intent_seq IS DISTINCT FROM OLD.intent_seq THEN
        INSERT INTO message_requests (message_id, request, detail, actor)
        VALUES (NEW.id, CASE NEW.intent WHEN 0 THEN 'resume' WHEN 1 THEN 'pause' ELSE 'cancel' END,
                NEW.intent_reason, NEW.requested_by);
    END IF;
    IF NEW.rate_seq IS DISTINCT FROM OLD.rate_seq THEN
        INSERT INTO message_requests (message_id, request, detail, actor)
        VALUES (NEW.id, 'rate', coalesce(NEW.rate || '/s', 'unlimited'), NEW.rate_by);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER messages_request_log_insert
    AFTER INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION herald_log_request();

CREATE TRIGGER messages_request_log_update
    AFTER UPDATE OF intent_seq, rate_seq, retry_seq ON messages
    FOR EACH ROW
    WHEN ((OLD.intent_seq, OLD.rate_seq, OLD.retry_seq)
          IS DISTINCT FROM (NEW.intent_seq, NEW.rate_seq, NEW.retry_seq))
    EXECUTE FUNCTION herald_log_request();

-- A status change is the doing of whoever asked for it: the launch's actor when a campaign
-- starts (at once, or at its send time), the newest request's when the status is what that
-- request asked for (a pause, a resume or retry, a cancel), and the campaign's own
-- otherwise (it completed, failed, or paused itself). A status written after a newer
-- request of another kind reached the row (a resume committed while a pause was still being
-- applied) is credited to `herald`.
CREATE OR REPLACE FUNCTION herald_log_status() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO message_status_log (message_id, status, reason, actor)
    VALUES (NEW.id, NEW.status, NEW.status_reason,
            CASE
                WHEN TG_OP = 'INSERT' THEN NEW.created_by
                WHEN OLD.status = 0 AND NEW.status = 1 THEN NEW.created_by
                WHEN NEW.status IN (0, 1) AND NEW.intent = 0 AND NEW.intent_seq > 0
                    THEN NEW.requested_by
                WHEN NEW.status = 2 AND NEW.intent = 1 THEN NEW.requested_by
                WHEN NEW.status = 4 AND NEW.intent = 2 THEN NEW.requested_by
                ELSE 'herald'
            END);
    RETURN NULL;
END
$$;

-- Campaigns from before this table: their launch is where their requests start.
INSERT INTO message_requests (message_id, request, at)
SELECT id, 'launch', created_at FROM messages;
