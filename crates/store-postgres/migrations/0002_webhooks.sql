-- Webhooks: endpoints that subscribe to outbox events, and the deliveries that carry each event to each endpoint.
--
-- The outbox (0001) already holds every event, written in the same transaction as its change. Delivery happens in
-- two steps, each one transaction, so that a crash between them loses nothing and repeats nothing:
--
--   1. fan-out: lock the cursor row (FOR UPDATE, so two nodes never fan out the same events), read the events after
--      it in id order, insert one delivery per matching endpoint, move the cursor and stamp outbox.delivered_at.
--   2. send: claim due deliveries with FOR UPDATE SKIP LOCKED (nodes never wait on each other's claims), POST
--      them, record each attempt and the delivery's next state.
--
-- Times are microseconds since the Unix epoch (UTC), like every other table.

-- A receiver of events. The secret is Standard Webhooks' `whsec_` + base64 of random bytes; it signs every
-- message and is shown only on create and by the explicit secret call.
CREATE TABLE webhook_endpoints (
    id              BIGSERIAL PRIMARY KEY,
    url             TEXT    NOT NULL CHECK (url LIKE 'http://%' OR url LIKE 'https://%'),
    secret          TEXT    NOT NULL CHECK (starts_with(secret, 'whsec_') AND length(secret) > 6),
    -- Topics and prefix patterns (`order.*`); empty means every event.
    event_types     TEXT[]  NOT NULL,
    -- Only events of this channel (the payload's `channel`, or an order's `source`); NULL: every channel.
    channel         TEXT,
    enabled         BOOLEAN NOT NULL,
    -- Why the endpoint was disabled (by a person, or automatically after failing too long).
    disabled_reason TEXT,
    -- Start of the current run of failed attempts; NULL after a success. Disabling looks at this.
    failing_since   BIGINT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    CHECK (enabled OR disabled_reason IS NOT NULL)
);

-- Where fan-out stands in the outbox: events with ids up to last_event_id have their deliveries. One row only;
-- fan-out locks it, which makes fan-out one-at-a-time across nodes.
CREATE TABLE webhook_cursor (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    last_event_id BIGINT  NOT NULL CHECK (last_event_id >= 0)
);
INSERT INTO webhook_cursor (id, last_event_id) VALUES (1, 0);

-- One event to one endpoint. Retries update the row; every attempt is logged in webhook_attempts.
-- Per endpoint, deliveries go out in id order (fan-out inserts them in event order): a delivery is only claimed
-- when no earlier pending delivery of its endpoint exists, so a receiver hears the latest state last.
CREATE TABLE webhook_deliveries (
    id               BIGSERIAL PRIMARY KEY,
    endpoint_id      BIGINT  NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id         BIGINT  NOT NULL REFERENCES outbox (id),
    status           TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- When the next attempt may start.
    due_at           BIGINT  NOT NULL,
    -- A claim is a lease: a node that dies mid-send leaves claimed_until in the past, and the delivery comes
    -- back. The token tells the claimant's result from a late one after someone else re-claimed.
    claimed_until    BIGINT,
    claim_token      BIGINT,
    first_attempt_at BIGINT,
    -- Created by a replay request rather than by fan-out.
    replay           BOOLEAN NOT NULL DEFAULT FALSE,
    created_at       BIGINT  NOT NULL,
    finished_at      BIGINT,
    CHECK ((status = 'pending') = (finished_at IS NULL)),
    CHECK ((claimed_until IS NULL) = (claim_token IS NULL))
);

-- The claim query's "earliest pending delivery of each endpoint".
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (endpoint_id, id) WHERE status = 'pending';
-- "Is anything due?": the worker's cheap look before it takes locks.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (due_at) WHERE status = 'pending';
-- A fan-out never makes two deliveries of one event to one endpoint (replays are not fan-out).
CREATE UNIQUE INDEX webhook_deliveries_fanned_out ON webhook_deliveries (endpoint_id, event_id) WHERE NOT replay;

-- The delivery log: one row per attempt, kept for the endpoint's owner to read.
CREATE TABLE webhook_attempts (
    id              BIGSERIAL PRIMARY KEY,
    delivery_id     BIGINT  NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    endpoint_id     BIGINT  NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    attempted_at    BIGINT  NOT NULL,
    -- The receiver's HTTP status; NULL when no answer came (refused, timed out).
    status_code     INTEGER CHECK (status_code IS NULL OR status_code BETWEEN 100 AND 599),
    error           TEXT,
    duration_ms     BIGINT  NOT NULL CHECK (duration_ms >= 0),
    -- When the delivery will be tried again; NULL when it was delivered or given up.
    next_attempt_at BIGINT,
    CHECK (status_code IS NOT NULL OR error IS NOT NULL)
);

CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id);
