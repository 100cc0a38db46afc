-- 0005_purchasing: suppliers, purchase orders, transfers and cycle counts, kept as versioned documents.
--
-- The rules of 0001 hold here. Each document is a domain aggregate (crates/domain/src/purchasing.rs) stored as
-- JSONB, like an order's `doc`, with the few header columns readers filter on. Quantities never live here: stock
-- only ever changes through movements, and a document step that moves stock (a receipt, a shipment, an arrival, a
-- count's approval) is written in the same batch transaction as its movements, with the document row locked
-- (FOR NO KEY UPDATE) from the batch's first read to its commit.
--
-- `incoming` is not booked anywhere: it is derived from the open documents (open = true), so the ledger keeps
-- only what physically happened and `verify` has nothing to reconcile.
--
-- Every write names the version it read and bumps it (`WHERE version = $n`): a writer that lost a race, on any
-- node, changes nothing and is told so, which is what keeps a retried or concurrent receipt from being booked
-- twice.

CREATE TABLE documents (
    id         BIGSERIAL PRIMARY KEY,
    kind       TEXT    NOT NULL
               CONSTRAINT "documents.kind" CHECK (kind IN ('supplier', 'purchase_order', 'transfer', 'count')),
    -- Copied from the body's status, for filters.
    status     TEXT    NOT NULL,
    -- True while the document still brings stock (an ordered purchase order, a transfer in transit).
    open       BOOLEAN NOT NULL DEFAULT FALSE,
    body       JSONB   NOT NULL CONSTRAINT "documents.body" CHECK (jsonb_typeof(body) = 'object'),
    version    BIGINT  NOT NULL DEFAULT 1 CONSTRAINT "documents.version" CHECK (version >= 1),
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);

-- Lists per kind in id order (the cursor), optionally by status.
CREATE INDEX documents_kind ON documents (kind, id);
CREATE INDEX documents_kind_status ON documents (kind, status, id);
-- The incoming derivation reads only the open documents.
CREATE INDEX documents_open ON documents (kind) WHERE open;
