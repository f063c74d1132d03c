-- The run of an external page that may send now: each claim of the page writes a number of
-- its own here, and a run that finds another number in its page's row has been overtaken
-- (Temporal gave up on it and started the page again) and starts no new send.
ALTER TABLE message_pages ADD COLUMN owner bigint;
