-- Every status a campaign has had, with its reason and when: the dashboard's timeline
-- (each pause and resume, not only the latest). Written by a trigger, so every writer of
-- `messages.status` (the workflow's transitions, retry-failed, hand-written SQL) is logged
-- alike, and only on a real change. A handful of rows per campaign, never one per recipient.
CREATE TABLE message_status_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id  bigint NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    status      smallint NOT NULL,
    reason      text,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX message_status_log_by_message ON message_status_log (message_id, id);

CREATE FUNCTION herald_log_status() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO message_status_log (message_id, status, reason)
    VALUES (NEW.id, NEW.status, NEW.status_reason);
    RETURN NULL;
END
$$;

CREATE TRIGGER messages_status_log_insert
    AFTER INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION herald_log_status();

CREATE TRIGGER messages_status_log_update
    AFTER UPDATE OF status ON messages
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION herald_log_status();

-- Campaigns from before this table: their present status is where their history starts.
INSERT INTO message_status_log (message_id, status, reason, at)
SELECT id, status, status_reason, updated_at FROM messages;
