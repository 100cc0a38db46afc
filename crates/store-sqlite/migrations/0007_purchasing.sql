-- 0007_purchasing: suppliers, purchase orders, transfers and cycle counts, kept as versioned documents.
--
-- The rules of 0001 hold here. Each document is a domain aggregate (crates/domain/src/purchasing.rs) stored as
-- JSON, like an order's `doc`, with the few header columns readers filter on. Quantities never live here: stock
-- only ever changes through movements, and a document step that moves stock (a receipt, a shipment, an arrival, a
-- count's approval) is written in the same write transaction as its movements.
--
-- `incoming` is not booked anywhere: it is derived from the open documents (those with open = 1), so the ledger
-- keeps only what physically happened and `verify` has nothing to reconcile.
--
-- Every write names the version it read and bumps it (`WHERE version = ?`): a writer that lost a race changes
-- nothing and is told so, which is what keeps a retried or concurrent receipt from being booked twice.

CREATE TABLE documents (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT    NOT NULL
               CONSTRAINT "documents.kind" CHECK (kind IN ('supplier', 'purchase_order', 'transfer', 'count')),
    -- Copied from the body's status, for filters.
    status     TEXT    NOT NULL,
    -- 1 while the document still brings stock (an ordered purchase order, a transfer in transit).
    open       INTEGER NOT NULL DEFAULT 0 CONSTRAINT "documents.open" CHECK (open IN (0, 1)),
    body       TEXT    NOT NULL CONSTRAINT "documents.body" CHECK (json_valid(body) AND json_type(body) = 'object'),
    version    INTEGER NOT NULL DEFAULT 1 CONSTRAINT "documents.version" CHECK (version >= 1),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Lists per kind in id order (the cursor), optionally by status.
CREATE INDEX documents_kind ON documents (kind, id);
CREATE INDEX documents_kind_status ON documents (kind, status, id);
-- The incoming derivation reads only the open documents.
CREATE INDEX documents_open ON documents (kind) WHERE open = 1;
