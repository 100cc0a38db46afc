-- 0010_outbox_commit_order: webhook fan-out hands events on in id order even when ids commit out of order.
--
-- Several writers (two nodes, or a ledger batch beside a purchase order) draw outbox ids and commit in either
-- order, so id 4 may be visible while id 3 is still in flight. Fan-out that took whatever was visible would send 4
-- before 3 to an endpoint, against the promise that each endpoint hears events in order. So fan-out only moves over
-- a missing id once it is settled: no transaction that could still commit it is running.
--
-- That is decidable because a transaction holds its xid before it draws an outbox id (the default below asks for
-- the xid first). When fan-out first sees a gap below a visible id, the transaction that drew the missing id is
-- either finished or running with an xid below the snapshot's xmax; once the xmin of a later snapshot has reached
-- that xmax, every such transaction has ended, and a missing id that is still not visible never will be.
-- `webhook_cursor` keeps that observation: the visible id it covers, the xmax to wait for, and when it was made
-- (a transaction left open for minutes must not hold every webhook back for good).

CREATE FUNCTION outbox_next_id() RETURNS BIGINT LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_current_xact_id();
    RETURN nextval('outbox_id_seq');
END
$$;

ALTER TABLE outbox ALTER COLUMN id SET DEFAULT outbox_next_id();

ALTER TABLE webhook_cursor
    ADD COLUMN gap_below   BIGINT,
    ADD COLUMN gap_horizon BIGINT,
    ADD COLUMN gap_seen_at BIGINT,
    ADD CONSTRAINT "webhook_cursor.gap" CHECK ((gap_below IS NULL) = (gap_horizon IS NULL)
                                               AND (gap_below IS NULL) = (gap_seen_at IS NULL));
