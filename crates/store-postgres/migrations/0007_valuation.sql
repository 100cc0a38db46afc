-- 0007_valuation: what valuation, the journal and replenishment need beyond the ledger.
--
-- Costs are not stored per movement: valuation, COGS and the journal are folded from the ledger (movements in
-- id order) and the purchase orders' receipts every time, so they can never drift from the ledger. Only what the
-- ledger cannot know lives here: settings, landed costs entered per receipt, locked accounting periods, and the
-- alert state that makes each replenishment alert fire once per episode.

-- Settings of #7 as JSON documents, one per key (`costing`, `accounting`, `replenishment`), validated by the
-- application.
CREATE TABLE valuation_settings (
    key        TEXT   PRIMARY KEY,
    value      JSONB  NOT NULL CHECK (jsonb_typeof(value) = 'object'),
    updated_at BIGINT NOT NULL
);

-- Freight, duty and the like, entered against one receipt of a purchase order and spread over its lines by the
-- domain's allocation rule. Never negative: a refund is its own document in the accounting system.
CREATE TABLE landed_costs (
    id                BIGSERIAL PRIMARY KEY,
    purchase_order_id BIGINT  NOT NULL REFERENCES documents (id),
    receipt_number    BIGINT  NOT NULL CONSTRAINT "landed_costs.receipt_number" CHECK (receipt_number >= 1),
    amount            NUMERIC NOT NULL CONSTRAINT "landed_costs.amount" CHECK (amount >= 0),
    currency          TEXT    NOT NULL CONSTRAINT "landed_costs.currency" CHECK (length(currency) = 3),
    basis             TEXT    NOT NULL CONSTRAINT "landed_costs.basis" CHECK (basis IN ('value', 'quantity')),
    description       TEXT,
    created_at        BIGINT  NOT NULL
);

CREATE INDEX landed_costs_receipt ON landed_costs (purchase_order_id, receipt_number);

-- Accounting periods (`YYYY-MM`) that have been exported and must not change. The primary key makes locking
-- twice a conflict, even when two nodes race.
CREATE TABLE period_locks (
    period    TEXT   PRIMARY KEY CONSTRAINT "period_locks.period" CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    locked_at BIGINT NOT NULL
);

-- What replenishment alerts were last raised per item and warehouse (the domain's AlertState). Written with the
-- alert's outbox events in one transaction, under a row lock and only if unchanged since read, so that two nodes
-- evaluating at once raise an alert once.
CREATE TABLE replenishment_alerts (
    item_id      BIGINT NOT NULL REFERENCES items (id),
    warehouse_id BIGINT NOT NULL REFERENCES locations (id),
    state        JSONB  NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (item_id, warehouse_id)
);
