-- A page's ids (500 bigints, 4 KB) are written once, at its claim, and read only when the
-- page runs again; its counters are updated with every batch of outcomes. Compressed inline,
-- the ids made each of those updates copy a 1.7 KB row; kept out of line and uncompressed,
-- an update copies a pointer, and a claim spends no time compressing.
ALTER TABLE message_pages ALTER COLUMN ids SET STORAGE EXTERNAL;
