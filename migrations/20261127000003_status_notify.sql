-- Every change of a campaign's status is announced on the channel `herald_status` (payload:
-- the campaign key), whoever makes it: the workflow's bookkeeping, the CLI's fence, or an
-- operator's SQL. `herald watch` listens, so it reports a pause or the end of a campaign the
-- moment it is committed instead of at its next look (every 0.5 s).
CREATE FUNCTION herald_notify_status() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('herald_status', NEW.key);
    RETURN NULL;
END
$$;

CREATE TRIGGER messages_status_notify
    AFTER UPDATE OF status ON messages
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION herald_notify_status();
