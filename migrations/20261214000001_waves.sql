-- Local-time delivery (docs/local-time.md): a campaign sent at a wall time in each
-- recipient's own zone keeps its plan of waves, made once when its audience is fixed: each
-- wave's opening, the zones it holds, and its size (`herald_wire::local::WavePlan`). Each
-- wave's pages are numbered in a block of lanes of its own (`message_pages.lane` = wave × 64
-- + lane), so the ledger's lane totals add up per wave.
ALTER TABLE messages ADD COLUMN waves jsonb;
