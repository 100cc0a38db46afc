-- 0006_bundles: bundles (kits), variants that sell a set of component items instead of an item of their own.
--
-- The rules of 0001 hold here. A bundle is an item like any other (its variant has a SKU, a price, a policy); what
-- makes it a bundle is having rows in `bundle_components`: "each unit of the bundle is `quantity` units of the
-- component". A component may itself be a bundle (a gift box containing a starter kit), so the rows form a graph,
-- and the application flattens it into the items that really hold stock whenever it sells a bundle.
--
-- Three rules keep that graph meaningful:
--
--   1. No bundle contains itself, directly or through nested bundles. A row cannot see the whole graph, so the
--      direct case is a CHECK here and the indirect one is checked by the store, in the same write transaction as
--      the new rows (SQLite has one writer at a time, so no second definition can slip in between).
--   2. A bundle's own item never holds stock: its availability is derived from its components', and selling it
--      commits them. The application refuses adjustments, moves and imports of a bundle SKU with a clear error;
--      the trigger at the end of this file refuses any movement of a bundle item all the same, so that a bug or a
--      lost race cannot book one. Making an item with stock a bundle is refused by the store.
--   3. Quantities are whole units, at least one.

CREATE TABLE bundle_components (
    -- Cascade: a bundle's definition means nothing without its item (deleting the variant deletes the item).
    bundle_item_id    INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    -- No cascade: an item that some bundle is made of must not silently vanish from it.
    component_item_id INTEGER NOT NULL REFERENCES items (id),
    -- The order the merchant listed the components in, for readers (0, 1, 2, …).
    position          INTEGER NOT NULL,
    -- Units of the component in each unit of the bundle.
    quantity          INTEGER NOT NULL
                      CONSTRAINT "bundle_components.quantity" CHECK (quantity BETWEEN 1 AND 1000000000),
    -- The item once per bundle, with one quantity: two rows for one item would be counted twice.
    PRIMARY KEY (bundle_item_id, component_item_id),
    UNIQUE (bundle_item_id, position),
    CONSTRAINT "bundle_components.contains_itself" CHECK (bundle_item_id <> component_item_id)
) WITHOUT ROWID;

-- "Which bundles use this item" (a component's stock changes every bundle above it), and the foreign key check
-- when an item is deleted.
CREATE INDEX bundle_components_component ON bundle_components (component_item_id);

-- Rule 2 in the database: one index probe per movement, refused when its item is a bundle.
CREATE TRIGGER bundles_hold_no_stock BEFORE INSERT ON movements
WHEN EXISTS (SELECT 1 FROM bundle_components WHERE bundle_item_id = NEW.item_id)
BEGIN
    SELECT RAISE(ABORT, 'bundle_components.holds_no_stock: a bundle''s own item never holds stock');
END;
