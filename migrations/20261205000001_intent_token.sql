-- Which bare request the workflow appended as the newest request (herald_wire::BareRequest's
-- token), NULL when a front end recorded it. Temporal runs a failed workflow task again,
-- local activities included; a look that appended a bare request in the lost task has
-- moved the row on, and the token tells the workflow that the request it then finds is its
-- own, not a newer one from an operator. (docs/architecture.md, "Operator requests".)
ALTER TABLE messages ADD COLUMN intent_token bigint;

-- Any other writer of a request (an older front end during a deploy, hand-written SQL) is
-- an operator's: a change to the request that does not write a new token clears the old one,
-- so that no operator's request is ever taken for the workflow's own.
CREATE FUNCTION herald_clear_intent_token() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.intent_token := NULL;
    RETURN NEW;
END
$$;

CREATE TRIGGER messages_intent_token
    BEFORE UPDATE OF intent, intent_seq, intent_reason ON messages
    FOR EACH ROW
    WHEN (NEW.intent_token IS NOT DISTINCT FROM OLD.intent_token
          AND OLD.intent_token IS NOT NULL
          AND (NEW.intent, NEW.intent_seq, NEW.intent_reason)
              IS DISTINCT FROM (OLD.intent, OLD.intent_seq, OLD.intent_reason))
    EXECUTE FUNCTION herald_clear_intent_token();
