-- 0009_valuation: what valuation, the journal and replenishment need beyond the ledger.
--
-- Costs are not stored per movement: valuation, COGS and the journal are folded from the ledger (movements in
-- id order) and the purchase orders' receipts every time, so they can never drift from the ledger. Only what the
-- ledger cannot know lives here: settings, landed costs entered per receipt, locked accounting periods, and the
-- alert state that makes each replenishment alert fire once per episode.

-- Settings of #7 as JSON documents, one per key (`costing`, `accounting`, `replenishment`). Read and written
-- whole; the application validates them.
CREATE TABLE valuation_settings (
    key        TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL CHECK (json_valid(value) AND json_type(value) = 'object'),
    updated_at INTEGER NOT NULL
);

-- Freight, duty and the like, entered against one receipt of a purchase order and spread over its lines by the
-- domain's allocation rule. Money is TEXT (a decimal), never REAL. Not negative: a refund is its own document
-- in the accounting system, not a negative landed cost here.
CREATE TABLE landed_costs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    purchase_order_id INTEGER NOT NULL REFERENCES documents (id),
    receipt_number    INTEGER NOT NULL CONSTRAINT "landed_costs.receipt_number" CHECK (receipt_number >= 1),
    amount            TEXT    NOT NULL CONSTRAINT "landed_costs.amount" CHECK (CAST(amount AS REAL) >= 0),
    currency          TEXT    NOT NULL CONSTRAINT "landed_costs.currency" CHECK (length(currency) = 3),
    basis             TEXT    NOT NULL CONSTRAINT "landed_costs.basis" CHECK (basis IN ('value', 'quantity')),
    description       TEXT,
    created_at        INTEGER NOT NULL
);

CREATE INDEX landed_costs_receipt ON landed_costs (purchase_order_id, receipt_number);

-- Accounting periods (`YYYY-MM`) that have been exported and must not change. The primary key is what makes
-- locking twice a conflict, even when two requests race.
CREATE TABLE period_locks (
    period    TEXT    PRIMARY KEY CONSTRAINT "period_locks.period" CHECK (period GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]'),
    locked_at INTEGER NOT NULL
);

-- What replenishment alerts were last raised per item and warehouse (the domain's AlertState as JSON). Written
-- with the alert's outbox events in one transaction and only if unchanged since read, so that two evaluations
-- running at once (two nodes) raise an alert once.
CREATE TABLE replenishment_alerts (
    item_id      INTEGER NOT NULL REFERENCES items (id),
    warehouse_id INTEGER NOT NULL REFERENCES locations (id),
    state        TEXT    NOT NULL CHECK (json_valid(state)),
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (item_id, warehouse_id)
) WITHOUT ROWID;
