-- Channels: the web shops and markets that sell the stock, their availability rules, and what each of them may
-- sell of each item right now (materialized for the pull feed).
--
-- The rules live as JSON documents per scope: their fields are optional one by one and a later release will add
-- fields, which must not need a table rebuild. The application validates every document before it is written;
-- the database checks what it can see without knowing the fields (valid JSON, an object, the scope's shape).

-- ---------------------------------------------------------------------------------------------------------------
-- Channels
-- ---------------------------------------------------------------------------------------------------------------

CREATE TABLE channels (
    id             BIGSERIAL PRIMARY KEY,
    -- The natural key: orders name their channel by it in `source`, so it is unique and never reused while the
    -- channel exists.
    code           TEXT    NOT NULL CONSTRAINT "channels.code" UNIQUE,
    name           TEXT    NOT NULL,
    market_country TEXT    NOT NULL CONSTRAINT "channels.market_country"
                   CHECK (length(market_country) = 2 AND market_country = upper(market_country)),
    currency       TEXT    NOT NULL CONSTRAINT "channels.currency"
                   CHECK (length(currency) = 3 AND currency = upper(currency)),
    -- {"SKU": "12.50"}: prices overriding the catalog's, as decimal strings (exact, never floats).
    prices         JSONB   NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(prices) = 'object'),
    -- {"group": {"SKU": "10.00"}}: special pricing levels for customer groups.
    price_lists    JSONB   NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(price_lists) = 'object'),
    -- {"tax class": "19.0"}: rates in percent for the channel's market.
    tax_rates      JSONB   NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(tax_rates) = 'object'),
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL
);

-- The warehouses a channel sells from, in priority order: orders from the channel allocate in this order, and
-- its availability pools their stock. A foreign key, so that a channel can never name a location that does not
-- exist; that it is a warehouse (a root of the tree) is checked by the application, which knows the kinds.
CREATE TABLE channel_warehouses (
    channel_id  BIGINT  NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    position    BIGINT  NOT NULL CHECK (position >= 0),
    location_id BIGINT  NOT NULL REFERENCES locations (id),
    PRIMARY KEY (channel_id, position),
    -- A warehouse appears once in a list: a second place in the priority order would mean nothing.
    CONSTRAINT "channel_warehouses.location_id" UNIQUE (channel_id, location_id)
);

CREATE INDEX channel_warehouses_location ON channel_warehouses (location_id);

-- ---------------------------------------------------------------------------------------------------------------
-- Availability rules
-- ---------------------------------------------------------------------------------------------------------------

-- One rule set per (channel, scope, key). Scopes, from least to most specific: `channel` (key ''), `category`
-- (key: a category path; it covers the categories below it), `tag` (key: a tag), `item` (key: a SKU). Each field
-- of the document is resolved on its own: the most specific scope that sets it wins (see the domain module
-- `availability`).
CREATE TABLE availability_rules (
    channel_id BIGINT  NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    scope      TEXT    NOT NULL CONSTRAINT "availability_rules.scope"
               CHECK (scope IN ('channel', 'category', 'tag', 'item')),
    key        TEXT    NOT NULL,
    rules      JSONB   NOT NULL CHECK (jsonb_typeof(rules) = 'object'),
    updated_at BIGINT  NOT NULL,
    -- The channel scope has no key; every other scope needs one.
    CONSTRAINT "availability_rules.key" CHECK ((scope = 'channel') = (key = '')),
    PRIMARY KEY (channel_id, scope, key)
);

-- ---------------------------------------------------------------------------------------------------------------
-- Materialized availability and the feed
-- ---------------------------------------------------------------------------------------------------------------

-- What each channel may sell of each item, as last computed. Never on-hand: only the quantity after the rules.
-- A row is rewritten only when its quantity, status or listed flag changes, and then gets the next feed sequence.
CREATE TABLE channel_availability (
    channel_id BIGINT  NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    item_id    BIGINT  NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    quantity   BIGINT  NOT NULL CONSTRAINT "channel_availability.quantity" CHECK (quantity >= 0),
    status     TEXT    NOT NULL CONSTRAINT "channel_availability.status"
               CHECK (status IN ('in_stock', 'low_stock', 'backorder', 'out_of_stock')),
    listed     BOOLEAN NOT NULL,
    -- The feed's position: unique across all channels and assigned in commit order (writers are serialized by
    -- the feed_state row below), so "rows with seq > cursor" never skips a row that commits later.
    seq        BIGINT  NOT NULL CONSTRAINT "channel_availability.seq" UNIQUE,
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (channel_id, item_id)
);

-- The pull feed: one channel's changes in sequence order.
CREATE INDEX channel_availability_feed ON channel_availability (channel_id, seq);

-- The worker reads every channel's row of the items that changed; also what deleting an item looks up.
CREATE INDEX channel_availability_item ON channel_availability (item_id);

-- The availability writer's state: one row. Every availability write updates it first: the row lock it takes is
-- held until commit, so writers on every node run one at a time, and the sequence they hand out follows commit
-- order (a reader never sees seq N+1 committed while N is still to come).
CREATE TABLE feed_state (
    id        BIGINT  PRIMARY KEY CHECK (id = 1),
    -- The last feed sequence handed out.
    last_seq  BIGINT  NOT NULL CHECK (last_seq >= 0),
    -- The node that runs the availability worker, and until when (microseconds): one active writer at a time.
    -- A node takes the lease when it is free or ran out, renews it while it works, and every availability write
    -- checks it still holds it (fencing), so a paused node that lost its lease cannot write stale results.
    leader      TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0,
    -- The outbox id up to which every event has been turned into availability.
    watermark BIGINT  NOT NULL CHECK (watermark >= 0)
);

INSERT INTO feed_state (id, last_seq, watermark) VALUES (1, 0, 0);
