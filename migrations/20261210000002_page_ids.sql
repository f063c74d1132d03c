-- One write per delivery: an external page's claim keeps its recipients' ids in its row, and
-- writes no item; each item is written once, with its outcome (or pending, after a try with
-- tries left). A page claimed before this column has none: its recipients all have items.
ALTER TABLE message_pages ADD COLUMN ids bigint[];
