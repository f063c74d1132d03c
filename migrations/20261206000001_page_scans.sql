-- A page scans a bounded range of user ids past its lane's cursor, whatever the audience's
-- density, so that a sparse audience never costs a page more than that range
-- (docs/architecture.md, "Pages"). A page that finds fewer recipients than its limit has
-- scanned its whole range, and its lane goes on from the range's end, not from its last
-- recipient.
--
-- `scanned_to`: the lane's cursor after this page (the page's last user id when it is full,
-- else the end of its range). `ends_lane`: the page reached the lane's bound, so the lane
-- is done. Both are NULL on rows written before bounded scans, whose pages always scanned to the
-- lane's bound: such a row ends its lane when it is short, and leaves it at its last id.
ALTER TABLE message_pages
    ADD COLUMN scanned_to bigint,
    ADD COLUMN ends_lane boolean;
