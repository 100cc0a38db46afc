-- 0001_schema: the schema of Stockroom's PostgreSQL store.
--
-- Read this file as the data model's manual. It is the same model as the SQLite store's (0001_foundation,
-- 0002_orders, 0003_pick_lists), written once more in PostgreSQL's own terms. Three rules shape everything below:
--
--   1. The ledger (`movements`) is the truth; `stock_levels` is a cache of it, written in the same transaction
--      by the one write path. `stockroom verify` folds the ledger and must always agree with the cache.
--   2. The application checks every rule first, and the database checks the important ones again (uniqueness,
--      references, non-negative quantities, an immutable ledger). On PostgreSQL this matters more than anywhere:
--      several server nodes may write to one database, each sure of its own view, and the database is the one
--      place that sees all of them. A lost race is refused here instead of becoming wrong stock.
--   3. Nothing here relies on a lock held inside one process. The write path serializes batches that touch the
--      same item with a transaction-scoped advisory lock per item id (`pg_advisory_xact_lock(item_id)`, taken in
--      ascending id order), and locks the orders and holds it rewrites with row locks. The advisory lock key
--      space of single bigint keys therefore belongs to the ledger's items: nothing else in this database may use
--      `pg_advisory_xact_lock(bigint)`. (sqlx's migrator uses its own key, derived from the database name.)
--
-- Conventions:
--   * ids are BIGSERIAL: 64 bits, handed out by a sequence, never reused. (A sequence is not transactional: a
--     rolled-back batch leaves a gap, and concurrent transactions may commit ids out of order. Ids say "which",
--     and within one item they follow commit order; they are not a gapless counter.)
--   * times are BIGINT microseconds since the Unix epoch (UTC), exactly as in the SQLite store: sortable,
--     compact, exact, and one codec for both backends. TIMESTAMPTZ would do too, but would round-trip through a
--     second representation for no gain.
--   * money is NUMERIC, which is exact decimal arithmetic, never binary floating point. NUMERIC without a
--     precision keeps the scale it was given (`19.90` stays `19.90`).
--   * documents and lists (tags, images, option names and values, addresses, orders, holds, pick list lines) are
--     JSONB: read and written whole, checked to be the right JSON type, and still searchable (`@>`, GIN) where a
--     filter needs it.
--   * paths, SKUs and handles are `COLLATE "C"`: compared byte by byte, so that "ordered by path" means the same
--     on every server whatever its locale, and the same as on SQLite.
--   * a constraint that the application may trip is named `table.column`, so that the error (whose constraint
--     name PostgreSQL reports in a field of its own) tells the store which rule refused the write. The app
--     matches on those names: `handle`, `sku`, `path`, `external_number`, `email`, `phone`, `stock_levels.*`.
--
-- A migration is never edited once released: a later change is a new file (0002_…), because sqlx records a
-- checksum of every applied migration and refuses to start when an applied one has changed.

-- ---------------------------------------------------------------------------------------------------------------
-- Catalog
-- ---------------------------------------------------------------------------------------------------------------

-- A product is what a shop lists: title, description, images, and the names of its options (Color, Size).
CREATE TABLE products (
    id          BIGSERIAL PRIMARY KEY,
    -- The URL-safe natural key shops and imports use; unique so that an import can upsert by it.
    handle      TEXT COLLATE "C" NOT NULL CONSTRAINT "products.handle" UNIQUE,
    title       TEXT   NOT NULL,
    description TEXT   NOT NULL DEFAULT '',
    vendor      TEXT,
    -- A path such as `Apparel > Shirts`; filters match a category and everything below it by prefix.
    category    TEXT,
    tags        JSONB  NOT NULL DEFAULT '[]' CONSTRAINT "products.tags" CHECK (jsonb_typeof(tags) = 'array'),
    images      JSONB  NOT NULL DEFAULT '[]' CONSTRAINT "products.images" CHECK (jsonb_typeof(images) = 'array'),
    status      TEXT   NOT NULL DEFAULT 'draft'
                CONSTRAINT "products.status" CHECK (status IN ('draft', 'active', 'archived')),
    options     JSONB  NOT NULL DEFAULT '[]' CONSTRAINT "products.options" CHECK (jsonb_typeof(options) = 'array'),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- "Products tagged X" is `tags @> '["X"]'`, which this index answers without reading every product.
CREATE INDEX products_tags ON products USING GIN (tags jsonb_path_ops);

-- An item is what is counted: one SKU. It is its own table (rather than a column of variants) because the
-- ledger and the balances speak of items, and a later bundle variant will sell several items at once. The SKU
-- lives here, unique across the whole catalog, so that "which item is SKU X" is one index lookup.
CREATE TABLE items (
    id         BIGSERIAL PRIMARY KEY,
    sku        TEXT COLLATE "C" NOT NULL CONSTRAINT "items.sku" UNIQUE,
    created_at BIGINT NOT NULL
);

-- A variant is one sellable version of a product (Red / M) and sells exactly one item. Its SKU is its item's
-- SKU: changing a variant's SKU renames the item, and the ledger, which refers to the item id, keeps its history.
CREATE TABLE variants (
    id               BIGSERIAL PRIMARY KEY,
    -- Deleting a product deletes its variants (the store deletes their items in the same transaction, after
    -- checking that no item has ledger history).
    product_id       BIGINT  NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    -- UNIQUE: an item belongs to one variant. No cascade: an item with movements must never silently vanish.
    item_id          BIGINT  NOT NULL CONSTRAINT "variants.item_id" UNIQUE REFERENCES items (id),
    -- Display order within the product.
    position         BIGINT  NOT NULL,
    barcode          TEXT,
    -- One value per product option name, in the same order.
    options          JSONB   NOT NULL DEFAULT '[]' CONSTRAINT "variants.options" CHECK (jsonb_typeof(options) = 'array'),
    price            NUMERIC NOT NULL,
    compare_at_price NUMERIC,
    -- ISO 4217 code of price, compare_at_price and cost.
    currency         TEXT    NOT NULL,
    cost             NUMERIC,
    -- Units last in the name, so that nobody has to guess them.
    weight_grams     BIGINT,
    length_mm        BIGINT,
    width_mm         BIGINT,
    height_mm        BIGINT,
    tracked          BOOLEAN NOT NULL DEFAULT TRUE,
    inventory_policy TEXT    NOT NULL DEFAULT 'deny'
                     CONSTRAINT "variants.inventory_policy" CHECK (inventory_policy IN ('deny', 'continue', 'backorder')),
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);

-- Loads a product's variants in position order, and serves the foreign key check when a product is deleted.
CREATE INDEX variants_product_position ON variants (product_id, position);
-- Scanners look variants up by barcode.
CREATE INDEX variants_barcode ON variants (barcode) WHERE barcode IS NOT NULL;

-- ---------------------------------------------------------------------------------------------------------------
-- Locations
-- ---------------------------------------------------------------------------------------------------------------

-- The location tree: warehouse › zone › shelf › bin, plus the virtual locations that are the ledger's other
-- sides. The full path (`WH1/HALL-1/SHELF-5/BIN-2`) is stored, not only the code, because people and imports
-- address locations by path, and "everything within WH1" is then a prefix match on one column.
CREATE TABLE locations (
    id            BIGSERIAL PRIMARY KEY,
    -- No cascade: the store refuses to delete a location that still has children.
    parent_id     BIGINT REFERENCES locations (id),
    path          TEXT COLLATE "C" NOT NULL CONSTRAINT "locations.path" UNIQUE,
    -- The last segment of path.
    code          TEXT   NOT NULL,
    kind          TEXT   NOT NULL
                  CONSTRAINT "locations.kind" CHECK (kind IN ('warehouse', 'zone', 'shelf', 'bin', 'virtual')),
    -- Set only on the five built-in virtual locations; UNIQUE so that each kind exists once (NULLs do not clash).
    virtual_kind  TEXT   CONSTRAINT "locations.virtual_kind" UNIQUE
                  CONSTRAINT "locations.virtual_kind_name"
                  CHECK (virtual_kind IN ('supplier', 'customer', 'adjustment', 'scrap', 'transit')),
    name          TEXT   NOT NULL,
    -- A JSON object; warehouses only.
    address       JSONB  CONSTRAINT "locations.address" CHECK (address IS NULL OR jsonb_typeof(address) = 'object'),
    latitude      DOUBLE PRECISION,
    longitude     DOUBLE PRECISION,
    -- The order in which pickers walk the bins; lower first.
    pick_sequence BIGINT,
    sellable      BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    -- A virtual location is exactly one that names its virtual kind.
    CONSTRAINT "locations.kind/virtual_kind" CHECK ((kind = 'virtual') = (virtual_kind IS NOT NULL))
);

-- Lists children, and serves the foreign key check when a location is deleted.
CREATE INDEX locations_parent ON locations (parent_id);
-- Allocation asks for every sellable bin with no unsellable location above it. Unsellable locations are few (a
-- returns area, a quarantine zone); this index lets that check read only them.
CREATE INDEX locations_unsellable ON locations (path) WHERE NOT sellable;

-- The ledger's sources and sinks exist from the start, so that the very first receipt has somewhere to come
-- from. Their path is their code; they sit at the root and are never sellable.
INSERT INTO locations (parent_id, path, code, kind, virtual_kind, name, sellable, created_at, updated_at)
SELECT NULL, code, code, 'virtual', kind, name, FALSE, t.now, t.now
  FROM (VALUES ('SUPPLIER', 'supplier', 'Supplier'),
               ('CUSTOMER', 'customer', 'Customer'),
               ('ADJUSTMENT', 'adjustment', 'Adjustment'),
               ('SCRAP', 'scrap', 'Scrap'),
               ('TRANSIT', 'transit', 'Transit')) AS v (code, kind, name),
       (SELECT (extract(epoch FROM now()) * 1000000)::BIGINT AS now) AS t;

-- ---------------------------------------------------------------------------------------------------------------
-- Stock
-- ---------------------------------------------------------------------------------------------------------------

-- The current balance of one item at one location, one column per state. A cache of the ledger, written only by
-- the write path, in the same transaction as the movements that explain it.
--
-- Every state is CHECKed non-negative: the domain already refuses a command that would oversell, and this is the
-- second, independent check, so that a bug or a racing second server node fails its transaction instead of
-- writing a negative quantity. The write path writes balances as increments (`available = available + delta`),
-- never as values computed elsewhere, so that even a writer that had not locked the row could not overwrite
-- another's change; this CHECK then refuses the one increment too many.
--
-- Rows are kept when they return to zero: the ledger still explains them.
--
-- fillfactor 80: a hot item's row is updated by every batch that sells it. Leaving a fifth of each page free lets
-- PostgreSQL put the new row version on the same page (a HOT update) and skip touching the indexes.
CREATE TABLE stock_levels (
    item_id         BIGINT NOT NULL REFERENCES items (id),
    location_id     BIGINT NOT NULL REFERENCES locations (id),
    available       BIGINT NOT NULL DEFAULT 0 CONSTRAINT "stock_levels.available" CHECK (available >= 0),
    committed       BIGINT NOT NULL DEFAULT 0 CONSTRAINT "stock_levels.committed" CHECK (committed >= 0),
    reserved        BIGINT NOT NULL DEFAULT 0 CONSTRAINT "stock_levels.reserved" CHECK (reserved >= 0),
    damaged         BIGINT NOT NULL DEFAULT 0 CONSTRAINT "stock_levels.damaged" CHECK (damaged >= 0),
    quality_control BIGINT NOT NULL DEFAULT 0
                    CONSTRAINT "stock_levels.quality_control" CHECK (quality_control >= 0),
    safety_stock    BIGINT NOT NULL DEFAULT 0 CONSTRAINT "stock_levels.safety_stock" CHECK (safety_stock >= 0),
    incoming        BIGINT NOT NULL DEFAULT 0 CONSTRAINT "stock_levels.incoming" CHECK (incoming >= 0),
    PRIMARY KEY (item_id, location_id)
) WITH (fillfactor = 80);

-- "What is in this bin", the delete guard of locations, and the foreign key check when a location is deleted.
CREATE INDEX stock_levels_location ON stock_levels (location_id);

-- The ledger: one row per movement of `quantity` units of an item from (location, state) to (location, state).
-- A side at a virtual location has no state (NULL): supplier, customer, adjustment and scrap have no balance.
-- Every change of a quantity is explained by rows here, and so `stock_levels` can always be rebuilt from them.
CREATE TABLE movements (
    -- The write path draws the ids from the sequence before inserting, one per movement in the batch's order,
    -- so that the ids of a batch follow the order of its movements for sure, not by an accident of the plan.
    id               BIGSERIAL PRIMARY KEY,
    item_id          BIGINT NOT NULL REFERENCES items (id),
    -- The direction is in from/to; a quantity is always positive.
    quantity         BIGINT NOT NULL CONSTRAINT "movements.quantity" CHECK (quantity > 0),
    from_location_id BIGINT NOT NULL REFERENCES locations (id),
    from_state       TEXT CONSTRAINT "movements.from_state" CHECK (from_state IN
                         ('available', 'committed', 'reserved', 'damaged', 'quality_control', 'safety_stock', 'incoming')),
    to_location_id   BIGINT NOT NULL REFERENCES locations (id),
    to_state         TEXT CONSTRAINT "movements.to_state" CHECK (to_state IN
                         ('available', 'committed', 'reserved', 'damaged', 'quality_control', 'safety_stock', 'incoming')),
    -- Deliberately not CHECKed against a list: a new reason in a later release must not need a migration that
    -- rewrites a CHECK on the largest table. The application validates reasons.
    reason           TEXT   NOT NULL,
    reference        TEXT,
    note             TEXT,
    -- Who made the change (user or API key name) and the request that carried it, for the audit trail.
    actor            TEXT   NOT NULL,
    request_id       TEXT,
    recorded_at      BIGINT NOT NULL,
    -- A movement from a place and state to the very same place and state would explain nothing.
    CONSTRAINT "movements.to_location_id"
        CHECK (from_location_id <> to_location_id OR from_state IS DISTINCT FROM to_state)
);

-- One item's history in order (the most common ledger read), and the foreign key check when an item is deleted.
CREATE INDEX movements_item ON movements (item_id, id);
-- Levels as of a past time fold the movements recorded up to that time; the write path reads the newest time.
CREATE INDEX movements_recorded_at ON movements (recorded_at);
-- Delete guards on locations ("has this bin ever held stock?") and their foreign key checks.
CREATE INDEX movements_from_location ON movements (from_location_id);
CREATE INDEX movements_to_location ON movements (to_location_id);

-- The ledger is immutable: a wrong movement is corrected by a reversing movement, never by editing history.
-- These triggers make that a property of the database, not only of the code that happens to use it. They are
-- statement triggers, so that even an UPDATE or DELETE that matches no row is refused, and TRUNCATE too.
CREATE FUNCTION movements_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'movements are immutable: book a correcting movement instead'
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER movements_are_immutable_update BEFORE UPDATE ON movements
    FOR EACH STATEMENT EXECUTE FUNCTION movements_are_immutable();
CREATE TRIGGER movements_are_immutable_delete BEFORE DELETE ON movements
    FOR EACH STATEMENT EXECUTE FUNCTION movements_are_immutable();
CREATE TRIGGER movements_are_immutable_truncate BEFORE TRUNCATE ON movements
    FOR EACH STATEMENT EXECUTE FUNCTION movements_are_immutable();

-- A side has a state exactly when its location is a real one: virtual locations (supplier, scrap, …) hold no
-- balances, and stock may only be booked into bins. The application never breaks this; the database makes sure.
--
-- One check per INSERT statement over all its new rows (a transition table), not one per row: the write path
-- inserts a whole batch of movements in one statement, and an import may insert hundreds of thousands. The error
-- names the rule like a CHECK constraint would (`movements.side`), so the store reports it as a conflict.
CREATE FUNCTION movements_sides_match_their_locations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1
          FROM new_movements m
          JOIN locations f ON f.id = m.from_location_id
          JOIN locations t ON t.id = m.to_location_id
         WHERE (m.from_state IS NULL) <> (f.kind = 'virtual')
            OR (m.to_state IS NULL) <> (t.kind = 'virtual')
            OR (m.from_state IS NOT NULL AND f.kind <> 'bin')
            OR (m.to_state IS NOT NULL AND t.kind <> 'bin')
    ) THEN
        RAISE EXCEPTION 'movements.side: a state belongs to a bin, and a virtual location has none'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'movements.side', TABLE = 'movements';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER movements_sides_match_their_locations AFTER INSERT ON movements
    REFERENCING NEW TABLE AS new_movements
    FOR EACH STATEMENT EXECUTE FUNCTION movements_sides_match_their_locations();

-- ---------------------------------------------------------------------------------------------------------------
-- Outbox
-- ---------------------------------------------------------------------------------------------------------------

-- Events to announce (webhooks, feeds), written in the same transaction as the change they announce: a change is
-- never committed without its event, and an event never announces a change that rolled back. Workers on any node
-- claim pending events with `FOR UPDATE SKIP LOCKED`, deliver them and stamp delivered_at.
CREATE TABLE outbox (
    id           BIGSERIAL PRIMARY KEY,
    topic        TEXT   NOT NULL,
    payload      JSONB  NOT NULL,
    created_at   BIGINT NOT NULL,
    delivered_at BIGINT
);

-- The delivery workers' queue: only undelivered events, in order.
CREATE INDEX outbox_pending ON outbox (id) WHERE delivered_at IS NULL;

-- ---------------------------------------------------------------------------------------------------------------
-- Idempotency
-- ---------------------------------------------------------------------------------------------------------------

-- One row per Idempotency-Key seen within a scope (such as an API key). The first request claims the key with
-- status NULL ("in progress") by inserting the row; a request on another node that inserts the same key at the
-- same moment waits for the first insert to commit and then finds it, so a key is claimed once across all nodes.
-- When the request finishes, its response is stored so that a retry gets the same answer instead of a second
-- effect. request_hash tells a retry from a different request reusing the key.
CREATE TABLE idempotency_keys (
    scope        TEXT   NOT NULL,
    key          TEXT   NOT NULL,
    request_hash TEXT   NOT NULL,
    -- The HTTP status of the stored response; NULL while the first request is still running.
    status       INTEGER CONSTRAINT "idempotency_keys.status" CHECK (status IS NULL OR status BETWEEN 100 AND 599),
    body         BYTEA,
    content_type TEXT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);

-- Keys are kept for a day; this index makes the periodic clean-up cheap.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

-- ---------------------------------------------------------------------------------------------------------------
-- Customers
-- ---------------------------------------------------------------------------------------------------------------

-- Who orders. An order from the phone or a shop reuses the customer found by email or else by phone, so both are
-- unique when given (NULLs never clash). The application normalizes them first (email lowercased, phone to digits
-- and a leading `+`), so that uniqueness means "the same person", not "the same spelling".
CREATE TABLE customers (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT   NOT NULL,
    email      TEXT   CONSTRAINT "customers.email" UNIQUE,
    phone      TEXT   CONSTRAINT "customers.phone" UNIQUE,
    -- A JSON array of address objects, read and written whole.
    addresses  JSONB  NOT NULL DEFAULT '[]' CONSTRAINT "customers.addresses" CHECK (jsonb_typeof(addresses) = 'array'),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- ---------------------------------------------------------------------------------------------------------------
-- Orders
-- ---------------------------------------------------------------------------------------------------------------

-- An order and a hold are aggregates of the domain (lines, picks, what is still owed) that the application reads
-- and writes whole. Each is stored as one JSONB document (`doc`, the serde form of `domain::order::Order` and
-- `domain::orders::Hold`), and the few facts that something must find or check without reading documents (source
-- and external number, status, expiry, which items an order still owes) are copied into columns by the store in
-- the same statement. The document is the truth; the columns are its index.
--
-- Orders and holds change only through the ledger's one write path (`apply_batch`), in the same transaction as
-- the movements that commit or reserve their stock, so that an order never exists without its stock promised,
-- nor the stock without its order. A batch locks the rows it may rewrite (`FOR NO KEY UPDATE`) before it
-- decides, so that two nodes never both rewrite the same order from the same old version.
CREATE TABLE orders (
    id              BIGSERIAL PRIMARY KEY,
    -- A channel's code, or `phone`, `email`, `staff`.
    source          TEXT   NOT NULL,
    -- The source's own order number. Together with source it is unique (below), which makes inbound orders
    -- idempotent: a channel that sends the same order twice, to any node, finds the first instead of creating a
    -- second.
    external_number TEXT,
    -- Fingerprint of the placing request: the same number with a different body is a different order, refused.
    request_hash    TEXT   NOT NULL,
    -- No cascade: a customer with orders is kept.
    customer_id     BIGINT REFERENCES customers (id),
    -- ISO 4217 code of every amount of the order.
    currency        TEXT   NOT NULL,
    payment_terms   TEXT   NOT NULL
                    CONSTRAINT "orders.payment_terms" CHECK (payment_terms IN ('prepaid', 'invoice')),
    -- Copied from doc's `status`, for filters.
    status          TEXT   NOT NULL CONSTRAINT "orders.status" CHECK (status IN ('open', 'cancelled')),
    notes           TEXT,
    -- The domain aggregate: lines, picks, backordered and oversold units, cancellations.
    doc             JSONB  NOT NULL CONSTRAINT "orders.doc" CHECK (jsonb_typeof(doc) = 'object'),
    -- Placement time: the backorder queue is first come, first served by it.
    placed_at       BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    -- NULL external numbers (phone orders) never clash: UNIQUE treats NULLs as distinct.
    CONSTRAINT "orders.external_number" UNIQUE (source, external_number)
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
    order_id  BIGINT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    -- No cascade: an item that an open order still waits for must not be deleted.
    item_id   BIGINT NOT NULL REFERENCES items (id),
    placed_at BIGINT NOT NULL,
    PRIMARY KEY (order_id, item_id)
);

-- The queue of one item, oldest placement first (order id breaks ties), as arriving stock fills it; also the
-- foreign key check when an item is deleted.
CREATE INDEX order_backorders_queue ON order_backorders (item_id, placed_at, order_id);

-- ---------------------------------------------------------------------------------------------------------------
-- Holds
-- ---------------------------------------------------------------------------------------------------------------

-- A reservation of bin stock (available → reserved) with an expiry, for a cart or a checkout. It ends converted
-- (into an order, which takes over its picks), released, or expired. A hold expires once although every node
-- sweeps: the batch that ends it holds its row lock and its items' locks, and the next one finds it expired.
CREATE TABLE holds (
    id         BIGSERIAL PRIMARY KEY,
    -- Copied from doc's `status` and `expires_at`, so that the expiry sweep and every availability read find the
    -- live and the due holds through the index below.
    status     TEXT   NOT NULL
               CONSTRAINT "holds.status" CHECK (status IN ('active', 'converted', 'released', 'expired')),
    expires_at BIGINT NOT NULL,
    -- The domain hold: status, expiry and the picks of every line.
    doc        JSONB  NOT NULL CONSTRAINT "holds.doc" CHECK (jsonb_typeof(doc) = 'object'),
    -- The SKU and the quantity asked for of each line, in line order: what a reader shows without resolving items.
    skus       JSONB  NOT NULL CONSTRAINT "holds.skus" CHECK (jsonb_typeof(skus) = 'array'),
    quantities JSONB  NOT NULL CONSTRAINT "holds.quantities" CHECK (jsonb_typeof(quantities) = 'array'),
    reference  TEXT,
    -- The order the hold was converted into.
    order_id   BIGINT REFERENCES orders (id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- "Active holds whose time is up": the expiry sweep's queue and the batch's due holds, one index range.
CREATE INDEX holds_status_expiry ON holds (status, expires_at);
-- Which hold became this order, and the foreign key check when an order is deleted.
CREATE INDEX holds_order ON holds (order_id) WHERE order_id IS NOT NULL;

-- ---------------------------------------------------------------------------------------------------------------
-- Pick lists
-- ---------------------------------------------------------------------------------------------------------------

-- Pick lists are the walks that take the committed stock of several orders off one warehouse's bins. Like an
-- order, a pick list is read and written whole: its lines (which order line, which SKU, from which bin, how many,
-- how many were confirmed, in walking order) are one JSONB document, the serde form of
-- `Vec<app::store::PickListLine>`. The warehouse and the status are columns, for filters; which orders a pick
-- list carries is a table of its own (`pick_list_orders`), rewritten from the lines whenever the pick list is
-- written, so that "which orders of this warehouse are being picked already" is one indexed query.
CREATE TABLE pick_lists (
    id           BIGSERIAL PRIMARY KEY,
    -- The warehouse whose bins the list walks. No cascade: a warehouse with pick lists is kept. Readers get its
    -- path by joining locations, so that a renamed path never leaves a stale copy here.
    warehouse_id BIGINT NOT NULL REFERENCES locations (id),
    -- Open while being picked; picked when every line was picked; cancelled when abandoned (its orders may then go
    -- on another pick list).
    status       TEXT   NOT NULL
                 CONSTRAINT "pick_lists.status" CHECK (status IN ('open', 'picked', 'cancelled')),
    -- The lines, in walking order.
    lines        JSONB  NOT NULL CONSTRAINT "pick_lists.lines" CHECK (jsonb_typeof(lines) = 'array'),
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- A warehouse's pick lists of one status (the open ones, above all), and the foreign key check when a location is
-- deleted.
CREATE INDEX pick_lists_warehouse_status ON pick_lists (warehouse_id, status);

-- The distinct orders that have a line on a pick list: derived from the lines by the store (delete and insert)
-- every time the pick list is created or updated.
CREATE TABLE pick_list_orders (
    -- Cascade: the rows are derived from the pick list and mean nothing without it.
    pick_list_id BIGINT NOT NULL REFERENCES pick_lists (id) ON DELETE CASCADE,
    -- No cascade: an order that is on a pick list must not be deleted.
    order_id     BIGINT NOT NULL REFERENCES orders (id),
    PRIMARY KEY (pick_list_id, order_id)
);

-- The pick lists an order is on, and the foreign key check when an order is deleted.
CREATE INDEX pick_list_orders_order ON pick_list_orders (order_id);
