-- 0001_foundation: the first schema of Stockroom's embedded SQLite store.
--
-- Read this file as the data model's manual. Two rules shape everything below:
--
--   1. The ledger (`movements`) is the truth; `stock_levels` is a cache of it, written in the same transaction
--      by the one write path. `stockroom verify` folds the ledger and must always agree with the cache.
--   2. The application checks every rule first, and the database checks the important ones again (uniqueness,
--      references, non-negative quantities, an immutable ledger), so that a bug or a lost race is refused here
--      instead of becoming wrong stock.
--
-- Conventions:
--   * times are INTEGER microseconds since the Unix epoch (UTC): sortable, compact, exact, no time-zone text;
--   * money is TEXT holding a decimal (`19.90`): SQLite's REAL is binary floating point and would round cents;
--   * lists (tags, images, option names and values) and the address are JSON TEXT: read and written whole, and
--     still searchable with json_each() where a filter needs it;
--   * booleans are INTEGER 0/1, as SQLite has no boolean type;
--   * CHECK constraints that the application may trip carry a name `table.column`, so that the error message
--     (`CHECK constraint failed: stock_levels.available`) tells the store which rule refused the write. UNIQUE
--     violations name `table.column` by themselves.
--
-- A migration is never edited once applied: a later change is a new file (0002_…), because sqlx records a
-- checksum of every applied migration and refuses to start when an applied one has changed.

-- ---------------------------------------------------------------------------------------------------------------
-- Catalog
-- ---------------------------------------------------------------------------------------------------------------

-- A product is what a shop lists: title, description, images, and the names of its options (Color, Size).
CREATE TABLE products (
    id          INTEGER PRIMARY KEY,
    -- The URL-safe natural key shops and imports use; unique so that an import can upsert by it.
    handle      TEXT    NOT NULL UNIQUE,
    title       TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    vendor      TEXT,
    -- A path such as `Apparel > Shirts`; filters match a category and everything below it by prefix.
    category    TEXT,
    tags        TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(tags) AND json_type(tags) = 'array'),
    images      TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(images) AND json_type(images) = 'array'),
    status      TEXT    NOT NULL DEFAULT 'draft'
                CONSTRAINT "products.status" CHECK (status IN ('draft', 'active', 'archived')),
    options     TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(options) AND json_type(options) = 'array'),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- An item is what is counted: one SKU. It is its own table (rather than a column of variants) because the
-- ledger and the balances speak of items, and a later bundle variant will sell several items at once. The SKU
-- lives here, unique across the whole catalog, so that "which item is SKU X" is one index lookup.
CREATE TABLE items (
    id         INTEGER PRIMARY KEY,
    sku        TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

-- A variant is one sellable version of a product (Red / M) and sells exactly one item. Its SKU is its item's
-- SKU: changing a variant's SKU renames the item, and the ledger, which refers to the item id, keeps its history.
CREATE TABLE variants (
    id               INTEGER PRIMARY KEY,
    -- Deleting a product deletes its variants (the store deletes their items in the same transaction, after
    -- checking that no item has ledger history).
    product_id       INTEGER NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    -- UNIQUE: an item belongs to one variant. No cascade: an item with movements must never silently vanish.
    item_id          INTEGER NOT NULL UNIQUE REFERENCES items (id),
    -- Display order within the product.
    position         INTEGER NOT NULL,
    barcode          TEXT,
    -- One value per product option name, in the same order.
    options          TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(options) AND json_type(options) = 'array'),
    price            TEXT    NOT NULL,
    compare_at_price TEXT,
    -- ISO 4217 code of price, compare_at_price and cost.
    currency         TEXT    NOT NULL,
    cost             TEXT,
    -- Units last in the name, so that nobody has to guess them.
    weight_grams     INTEGER,
    length_mm        INTEGER,
    width_mm         INTEGER,
    height_mm        INTEGER,
    tracked          INTEGER NOT NULL DEFAULT 1 CHECK (tracked IN (0, 1)),
    inventory_policy TEXT    NOT NULL DEFAULT 'deny'
                     CONSTRAINT "variants.inventory_policy" CHECK (inventory_policy IN ('deny', 'continue', 'backorder')),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
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
-- address locations by path, and "everything within WH1" is then a prefix match on one indexed column.
CREATE TABLE locations (
    id            INTEGER PRIMARY KEY,
    -- No cascade: the store refuses to delete a location that still has children.
    parent_id     INTEGER REFERENCES locations (id),
    path          TEXT    NOT NULL UNIQUE,
    -- The last segment of path.
    code          TEXT    NOT NULL,
    kind          TEXT    NOT NULL
                  CONSTRAINT "locations.kind" CHECK (kind IN ('warehouse', 'zone', 'shelf', 'bin', 'virtual')),
    -- Set only on the five built-in virtual locations; UNIQUE so that each kind exists once (NULLs do not clash).
    virtual_kind  TEXT    UNIQUE
                  CONSTRAINT "locations.virtual_kind"
                  CHECK (virtual_kind IN ('supplier', 'customer', 'adjustment', 'scrap', 'transit')),
    name          TEXT    NOT NULL,
    -- JSON object; warehouses only.
    address       TEXT    CHECK (address IS NULL OR json_valid(address)),
    latitude      REAL,
    longitude     REAL,
    -- The order in which pickers walk the bins; lower first.
    pick_sequence INTEGER,
    sellable      INTEGER NOT NULL DEFAULT 1 CHECK (sellable IN (0, 1)),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    -- A virtual location is exactly one that names its virtual kind.
    CONSTRAINT "locations.kind/virtual_kind" CHECK ((kind = 'virtual') = (virtual_kind IS NOT NULL))
);

-- Lists children, and serves the foreign key check when a location is deleted.
CREATE INDEX locations_parent ON locations (parent_id);

-- The ledger's sources and sinks exist from the start, so that the very first receipt has somewhere to come
-- from. Their path is their code; they sit at the root and are never sellable.
INSERT INTO locations (parent_id, path, code, kind, virtual_kind, name, sellable, created_at, updated_at)
VALUES
    (NULL, 'SUPPLIER',   'SUPPLIER',   'virtual', 'supplier',   'Supplier',   0,
        CAST(strftime('%s', 'now') AS INTEGER) * 1000000, CAST(strftime('%s', 'now') AS INTEGER) * 1000000),
    (NULL, 'CUSTOMER',   'CUSTOMER',   'virtual', 'customer',   'Customer',   0,
        CAST(strftime('%s', 'now') AS INTEGER) * 1000000, CAST(strftime('%s', 'now') AS INTEGER) * 1000000),
    (NULL, 'ADJUSTMENT', 'ADJUSTMENT', 'virtual', 'adjustment', 'Adjustment', 0,
        CAST(strftime('%s', 'now') AS INTEGER) * 1000000, CAST(strftime('%s', 'now') AS INTEGER) * 1000000),
    (NULL, 'SCRAP',      'SCRAP',      'virtual', 'scrap',      'Scrap',      0,
        CAST(strftime('%s', 'now') AS INTEGER) * 1000000, CAST(strftime('%s', 'now') AS INTEGER) * 1000000),
    (NULL, 'TRANSIT',    'TRANSIT',    'virtual', 'transit',    'Transit',    0,
        CAST(strftime('%s', 'now') AS INTEGER) * 1000000, CAST(strftime('%s', 'now') AS INTEGER) * 1000000);

-- ---------------------------------------------------------------------------------------------------------------
-- Stock
-- ---------------------------------------------------------------------------------------------------------------

-- The current balance of one item at one location, one column per state. A cache of the ledger, written only by
-- the write path, in the same transaction as the movements that explain it.
--
-- Every state is CHECKed non-negative: the domain already refuses a command that would oversell, and this is the
-- second, independent check, so that a bug or a racing second server node fails its transaction instead of
-- writing a negative quantity. Rows are kept when they return to zero: the ledger still explains them.
--
-- WITHOUT ROWID: the table is looked up and stored by its natural key, so the primary key index is the table.
CREATE TABLE stock_levels (
    item_id         INTEGER NOT NULL REFERENCES items (id),
    location_id     INTEGER NOT NULL REFERENCES locations (id),
    available       INTEGER NOT NULL DEFAULT 0 CONSTRAINT "stock_levels.available" CHECK (available >= 0),
    committed       INTEGER NOT NULL DEFAULT 0 CONSTRAINT "stock_levels.committed" CHECK (committed >= 0),
    reserved        INTEGER NOT NULL DEFAULT 0 CONSTRAINT "stock_levels.reserved" CHECK (reserved >= 0),
    damaged         INTEGER NOT NULL DEFAULT 0 CONSTRAINT "stock_levels.damaged" CHECK (damaged >= 0),
    quality_control INTEGER NOT NULL DEFAULT 0
                    CONSTRAINT "stock_levels.quality_control" CHECK (quality_control >= 0),
    safety_stock    INTEGER NOT NULL DEFAULT 0 CONSTRAINT "stock_levels.safety_stock" CHECK (safety_stock >= 0),
    incoming        INTEGER NOT NULL DEFAULT 0 CONSTRAINT "stock_levels.incoming" CHECK (incoming >= 0),
    PRIMARY KEY (item_id, location_id)
) WITHOUT ROWID;

-- "What is in this bin", the delete guard of locations, and the foreign key check when a location is deleted.
CREATE INDEX stock_levels_location ON stock_levels (location_id);

-- The ledger: one row per movement of `quantity` units of an item from (location, state) to (location, state).
-- A side at a virtual location has no state (NULL): supplier, customer, adjustment and scrap have no balance.
-- Every change of a quantity is explained by rows here, and so `stock_levels` can always be rebuilt from them.
CREATE TABLE movements (
    -- AUTOINCREMENT: ids only ever grow and are never reused, so "movements after id N" is a stable cursor for
    -- readers and sync workers, and ids follow the order in which movements were written.
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id          INTEGER NOT NULL REFERENCES items (id),
    -- The direction is in from/to; a quantity is always positive.
    quantity         INTEGER NOT NULL CONSTRAINT "movements.quantity" CHECK (quantity > 0),
    from_location_id INTEGER NOT NULL REFERENCES locations (id),
    from_state       TEXT CONSTRAINT "movements.from_state" CHECK (from_state IN
                         ('available', 'committed', 'reserved', 'damaged', 'quality_control', 'safety_stock', 'incoming')),
    to_location_id   INTEGER NOT NULL REFERENCES locations (id),
    to_state         TEXT CONSTRAINT "movements.to_state" CHECK (to_state IN
                         ('available', 'committed', 'reserved', 'damaged', 'quality_control', 'safety_stock', 'incoming')),
    -- Deliberately not CHECKed against a list: a new reason in a later release must not force a rebuild of the
    -- largest table (SQLite cannot alter a CHECK in place). The application validates reasons.
    reason           TEXT    NOT NULL,
    reference        TEXT,
    note             TEXT,
    -- Who made the change (user or API key name) and the request that carried it, for the audit trail.
    actor            TEXT    NOT NULL,
    request_id       TEXT,
    recorded_at      INTEGER NOT NULL,
    -- A movement from a place and state to the very same place and state would explain nothing.
    CONSTRAINT "movements.to_location_id" CHECK (from_location_id <> to_location_id OR from_state IS NOT to_state)
);

-- One item's history in order (the most common ledger read), and the foreign key check when an item is deleted.
CREATE INDEX movements_item ON movements (item_id, id);
-- Levels as of a past time fold the movements recorded up to that time.
CREATE INDEX movements_recorded_at ON movements (recorded_at);
-- Delete guards on locations ("has this bin ever held stock?") and their foreign key checks.
CREATE INDEX movements_from_location ON movements (from_location_id);
CREATE INDEX movements_to_location ON movements (to_location_id);

-- The ledger is immutable: a wrong movement is corrected by a reversing movement, never by editing history.
-- These triggers make that a property of the database, not only of the code that happens to use it.
CREATE TRIGGER movements_are_immutable_update BEFORE UPDATE ON movements
BEGIN
    SELECT RAISE(ABORT, 'movements are immutable: book a correcting movement instead');
END;

CREATE TRIGGER movements_are_immutable_delete BEFORE DELETE ON movements
BEGIN
    SELECT RAISE(ABORT, 'movements are immutable: book a correcting movement instead');
END;

-- A side has a state exactly when its location is a real one: virtual locations (supplier, scrap, …) hold no
-- balances, and stock may only be booked into bins. The application never breaks this; the database makes sure.
CREATE TRIGGER movements_sides_match_their_locations BEFORE INSERT ON movements
WHEN (NEW.from_state IS NULL) <> ((SELECT kind FROM locations WHERE id = NEW.from_location_id) = 'virtual')
  OR (NEW.to_state IS NULL) <> ((SELECT kind FROM locations WHERE id = NEW.to_location_id) = 'virtual')
  OR (NEW.from_state IS NOT NULL AND (SELECT kind FROM locations WHERE id = NEW.from_location_id) <> 'bin')
  OR (NEW.to_state IS NOT NULL AND (SELECT kind FROM locations WHERE id = NEW.to_location_id) <> 'bin')
BEGIN
    SELECT RAISE(ABORT, 'movements.side: a state belongs to a bin, and a virtual location has none');
END;

-- ---------------------------------------------------------------------------------------------------------------
-- Outbox
-- ---------------------------------------------------------------------------------------------------------------

-- Events to announce (webhooks, feeds), written in the same transaction as the change they announce: a change is
-- never committed without its event, and an event never announces a change that rolled back. A worker delivers
-- them in id order and stamps delivered_at.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    topic        TEXT    NOT NULL,
    payload      TEXT    NOT NULL CHECK (json_valid(payload)),
    created_at   INTEGER NOT NULL,
    delivered_at INTEGER
);

-- The delivery worker's queue: only undelivered events, in order.
CREATE INDEX outbox_pending ON outbox (id) WHERE delivered_at IS NULL;

-- ---------------------------------------------------------------------------------------------------------------
-- Idempotency
-- ---------------------------------------------------------------------------------------------------------------

-- One row per Idempotency-Key seen within a scope (such as an API key). The first request claims the key with
-- status NULL ("in progress"); when it finishes, its response is stored so that a retry gets the same answer
-- instead of a second effect. request_hash tells a retry from a different request reusing the key.
CREATE TABLE idempotency_keys (
    scope        TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    -- The HTTP status of the stored response; NULL while the first request is still running.
    status       INTEGER CHECK (status IS NULL OR status BETWEEN 100 AND 599),
    body         BLOB,
    content_type TEXT,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;

-- Keys are kept for a day; this index makes the periodic clean-up cheap.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
