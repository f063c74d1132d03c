-- Which bare request the workflow appended as the newest request (herald_wire::BareRequest's
-- token), NULL when a front end recorded it. Temporal runs a failed workflow task again,
-- local activities included; a look that appended a bare request in the lost task has
-- moved the row on, and the token tells the workflow that the request it then finds is its
-- own, not a newer one from an operator. (docs/architecture.md, "Operator requests".)
ALTER TABLE messages ADD COLUMN intent_token bigint;
