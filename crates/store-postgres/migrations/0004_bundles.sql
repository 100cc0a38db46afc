-- 0004_bundles: bundles (kits), variants that sell a set of component items instead of an item of their own.
--
-- The rules of 0001 hold here. A bundle is an item like any other (its variant has a SKU, a price, a policy); what
-- makes it a bundle is having rows in `bundle_components`: "each unit of the bundle is `quantity` units of the
-- component". A component may itself be a bundle (a gift box containing a starter kit), so the rows form a graph,
-- and the application flattens it into the items that really hold stock whenever it sells a bundle.
--
-- Three rules keep that graph meaningful:
--
--   1. No bundle contains itself, directly or through nested bundles. A row cannot see the whole graph, so the
--      direct case is a CHECK here and the indirect one is checked by the store in the write transaction that
--      replaces a definition. Several server nodes may define bundles at once, so that transaction first takes a
--      SHARE ROW EXCLUSIVE lock on the table, which only one transaction can hold: two definitions that would
--      close a loop together can never both pass the check.
--   2. A bundle's own item never holds stock: its availability is derived from its components', and selling it
--      commits them. The application refuses adjustments, moves and imports of a bundle SKU with a clear error;
--      the trigger at the end of this file refuses any movement of a bundle item all the same. Making an item with
--      stock a bundle is refused by the store, which takes the item's advisory lock (the one the write path takes)
--      before it looks, so that no batch books stock for the item between the look and the commit.
--   3. Quantities are whole units, at least one.

CREATE TABLE bundle_components (
    -- Cascade: a bundle's definition means nothing without its item (deleting the variant deletes the item).
    bundle_item_id    BIGINT NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    -- No cascade: an item that some bundle is made of must not silently vanish from it.
    component_item_id BIGINT NOT NULL
                      CONSTRAINT "bundle_components.component_item_id" REFERENCES items (id),
    -- The order the merchant listed the components in, for readers (0, 1, 2, …).
    position          INTEGER NOT NULL,
    -- Units of the component in each unit of the bundle.
    quantity          BIGINT NOT NULL
                      CONSTRAINT "bundle_components.quantity" CHECK (quantity BETWEEN 1 AND 1000000000),
    -- The item once per bundle, with one quantity: two rows for one item would be counted twice.
    CONSTRAINT "bundle_components.component" PRIMARY KEY (bundle_item_id, component_item_id),
    CONSTRAINT "bundle_components.position" UNIQUE (bundle_item_id, position),
    CONSTRAINT "bundle_components.contains_itself" CHECK (bundle_item_id <> component_item_id)
);

-- "Which bundles use this item" (a component's stock changes every bundle above it), and the foreign key check
-- when an item is deleted.
CREATE INDEX bundle_components_component ON bundle_components (component_item_id);

-- Rule 2 in the database. Like the side check of 0001, one check per INSERT statement over all its new rows, named
-- like a CHECK constraint so that the store reports it as a conflict.
CREATE FUNCTION bundles_hold_no_stock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM new_movements m JOIN bundle_components b ON b.bundle_item_id = m.item_id
    ) THEN
        RAISE EXCEPTION 'bundle_components.holds_no_stock: a bundle''s own item never holds stock'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'bundle_components.holds_no_stock',
                  TABLE = 'movements';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER bundles_hold_no_stock AFTER INSERT ON movements
    REFERENCING NEW TABLE AS new_movements
    FOR EACH STATEMENT EXECUTE FUNCTION bundles_hold_no_stock();
