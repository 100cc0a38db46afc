-- 0010_default_bins: each item's default bin per warehouse (the first putaway rule), and the index the reports'
-- time ranges over one movement reason use.
--
-- One default per (item, warehouse). The bin is checked by the application to be a bin inside that warehouse when
-- it is set, and again when it is read (a bin can be moved), so a stale row is ignored, never followed.
-- Deleting the item, the warehouse or the bin drops the default with it: it is a preference, not a record.

CREATE TABLE default_bins (
    item_id      INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    warehouse_id INTEGER NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    bin_id       INTEGER NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    updated_at   INTEGER NOT NULL,
    CONSTRAINT "default_bins.bin" CHECK (bin_id <> warehouse_id),
    PRIMARY KEY (item_id, warehouse_id)
) WITHOUT ROWID;

-- The foreign key checks when a bin or warehouse is deleted.
CREATE INDEX default_bins_bin ON default_bins (bin_id);
CREATE INDEX default_bins_warehouse ON default_bins (warehouse_id);

-- Shrinkage and ABC reports read one reason over a time range.
CREATE INDEX movements_reason_recorded_at ON movements (reason, recorded_at);
