-- 0003_pick_lists: pick lists, the walks that take the committed stock of several orders off one warehouse's bins.
--
-- The rules of 0001 and 0002 hold here. Like an order, a pick list is read and written whole: its lines (which
-- order line, which SKU, from which bin, how many, how many were confirmed, in walking order) are one JSON
-- document, the serde form of `Vec<app::store::PickListLine>`. The facts that something must find without reading
-- documents are kept beside it by the store, in the same statement or transaction:
--
--   * the warehouse and the status are columns, for filters;
--   * which orders a pick list carries is a table of its own (`pick_list_orders`), rewritten from the lines
--     whenever the pick list is written, so that "which orders of this warehouse are being picked already" is one
--     indexed query instead of a scan of every pick list's lines.
--
-- The lines are the truth; the columns and `pick_list_orders` are their index.
--
-- Ids are AUTOINCREMENT, as for orders: they are handed to pickers and clients and used as paging cursors, so an id
-- must never come back for a different pick list.

CREATE TABLE pick_lists (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The warehouse whose bins the list walks. No cascade: a warehouse with pick lists is kept. Readers get its
    -- path by joining locations, so that a renamed path never leaves a stale copy here.
    warehouse_id INTEGER NOT NULL REFERENCES locations (id),
    -- Open while being picked; picked when every line was picked; cancelled when abandoned (its orders may then go
    -- on another pick list).
    status       TEXT    NOT NULL
                 CONSTRAINT "pick_lists.status" CHECK (status IN ('open', 'picked', 'cancelled')),
    -- JSON array of the lines, in walking order.
    lines        TEXT    NOT NULL CHECK (json_valid(lines) AND json_type(lines) = 'array'),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- A warehouse's pick lists of one status (the open ones, above all), and the foreign key check when a location is
-- deleted.
CREATE INDEX pick_lists_warehouse_status ON pick_lists (warehouse_id, status);

-- The distinct orders that have a line on a pick list: derived from the lines by the store (delete and insert)
-- every time the pick list is created or updated.
CREATE TABLE pick_list_orders (
    -- Cascade: the rows are derived from the pick list and mean nothing without it.
    pick_list_id INTEGER NOT NULL REFERENCES pick_lists (id) ON DELETE CASCADE,
    -- No cascade: an order that is on a pick list must not be deleted.
    order_id     INTEGER NOT NULL REFERENCES orders (id),
    PRIMARY KEY (pick_list_id, order_id)
) WITHOUT ROWID;

-- The pick lists an order is on, and the foreign key check when an order is deleted.
CREATE INDEX pick_list_orders_order ON pick_list_orders (order_id);
