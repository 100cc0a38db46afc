-- 0002_orders: customers, orders, the backorder queue and holds.
--
-- The same rules as in 0001 hold here. Two more shape this file:
--
--   1. An order and a hold are aggregates of the domain (lines, picks, what is still owed) that the application
--      reads and writes whole. Each is stored as one JSON document (`doc`, the serde form of `domain::order::Order`
--      and `domain::orders::Hold`), and the few facts that something must find or check without reading documents
--      (source and external number, status, expiry, which items an order still owes) are copied into columns by
--      the store in the same statement. The document is the truth; the columns are its index.
--   2. Orders and holds change only through the ledger's one write path (`apply_batch`), in the same transaction
--      as the movements that commit or reserve their stock, so that an order never exists without its stock
--      promised, nor the stock without its order.
--
-- Ids of customers, orders and holds are AUTOINCREMENT: they are handed to clients and used as paging cursors,
-- so an id must never come back for a different row, even after rows are deleted (expired holds will be).

-- ---------------------------------------------------------------------------------------------------------------
-- Customers
-- ---------------------------------------------------------------------------------------------------------------

-- Who orders. An order from the phone or a shop reuses the customer found by email or else by phone, so both are
-- unique when given (NULLs never clash). The application normalizes them first (email lowercased, phone to digits
-- and a leading `+`), so that uniqueness means "the same person", not "the same spelling".
CREATE TABLE customers (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    email      TEXT    UNIQUE,
    phone      TEXT    UNIQUE,
    -- JSON array of address objects, read and written whole.
    addresses  TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(addresses) AND json_type(addresses) = 'array'),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- ---------------------------------------------------------------------------------------------------------------
-- Orders
-- ---------------------------------------------------------------------------------------------------------------

CREATE TABLE orders (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- A channel's code, or `phone`, `email`, `staff`.
    source          TEXT    NOT NULL,
    -- The source's own order number. Together with source it is unique (below), which makes inbound orders
    -- idempotent: a channel that sends the same order twice finds the first instead of creating a second.
    external_number TEXT,
    -- Fingerprint of the placing request: the same number with a different body is a different order, refused.
    request_hash    TEXT    NOT NULL,
    -- No cascade: a customer with orders is kept.
    customer_id     INTEGER REFERENCES customers (id),
    -- ISO 4217 code of every amount of the order.
    currency        TEXT    NOT NULL,
    payment_terms   TEXT    NOT NULL
                    CONSTRAINT "orders.payment_terms" CHECK (payment_terms IN ('prepaid', 'invoice')),
    -- Copied from doc's `status`, for filters.
    status          TEXT    NOT NULL CONSTRAINT "orders.status" CHECK (status IN ('open', 'cancelled')),
    notes           TEXT,
    -- The domain aggregate: lines, picks, backordered and oversold units, cancellations.
    doc             TEXT    NOT NULL CHECK (json_valid(doc) AND json_type(doc) = 'object'),
    -- Placement time: the backorder queue is first come, first served by it.
    placed_at       INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    -- NULL external numbers (phone orders) never clash. SQLite reports a violation as
    -- `orders.source, orders.external_number`; the store names it `orders.external_number`.
    UNIQUE (source, external_number)
);

-- A customer's orders, and the foreign key check when a customer is deleted.
CREATE INDEX orders_customer ON orders (customer_id) WHERE customer_id IS NOT NULL;

-- The backorder queue: one row per (order, item) that the order still owes units of (backordered or oversold),
-- kept by the store from the document whenever an order is written (delete and insert), so that "who waits for
-- item X, oldest first" is one index range instead of a scan of every order's document.
--
-- placed_at is copied from the order so that the index below alone answers the queue in order.
CREATE TABLE order_backorders (
    -- Cascade: the rows are derived from the order and mean nothing without it.
    order_id  INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    -- No cascade: an item that an open order still waits for must not be deleted.
    item_id   INTEGER NOT NULL REFERENCES items (id),
    placed_at INTEGER NOT NULL,
    PRIMARY KEY (order_id, item_id)
) WITHOUT ROWID;

-- The queue of one item, oldest placement first (order id breaks ties), as arriving stock fills it; also the
-- foreign key check when an item is deleted.
CREATE INDEX order_backorders_queue ON order_backorders (item_id, placed_at, order_id);

-- ---------------------------------------------------------------------------------------------------------------
-- Holds
-- ---------------------------------------------------------------------------------------------------------------

-- A reservation of bin stock (available → reserved) with an expiry, for a cart or a checkout. It ends converted
-- (into an order, which takes over its picks), released, or expired.
CREATE TABLE holds (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Copied from doc's `status` and `expires_at`, so that the expiry worker and every availability read find the
    -- live and the due holds through the index below.
    status     TEXT    NOT NULL
               CONSTRAINT "holds.status" CHECK (status IN ('active', 'converted', 'released', 'expired')),
    expires_at INTEGER NOT NULL,
    -- The domain hold: status, expiry and the picks of every line.
    doc        TEXT    NOT NULL CHECK (json_valid(doc) AND json_type(doc) = 'object'),
    -- The SKU and the quantity asked for of each line, in line order: what a reader shows without resolving items.
    skus       TEXT    NOT NULL CHECK (json_valid(skus) AND json_type(skus) = 'array'),
    quantities TEXT    NOT NULL CHECK (json_valid(quantities) AND json_type(quantities) = 'array'),
    reference  TEXT,
    -- The order the hold was converted into.
    order_id   INTEGER REFERENCES orders (id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- "Active holds whose time is up": the expiry worker's queue and the batch's due holds, one index range.
CREATE INDEX holds_status_expiry ON holds (status, expires_at);
-- Which hold became this order, and the foreign key check when an order is deleted.
CREATE INDEX holds_order ON holds (order_id) WHERE order_id IS NOT NULL;

-- ---------------------------------------------------------------------------------------------------------------
-- Locations
-- ---------------------------------------------------------------------------------------------------------------

-- Allocation asks for every sellable bin with no unsellable location above it. Unsellable locations are few (a
-- returns area, a quarantine zone); this index lets that check read only them.
CREATE INDEX locations_unsellable ON locations (path) WHERE sellable = 0;
