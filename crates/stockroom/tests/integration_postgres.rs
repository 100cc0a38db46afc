//! The integration tests again, on PostgreSQL (`STOCKROOM_TEST_POSTGRES_URL`; `.ci/run` sets it): each test gets a
//! database of its own, dropped when it ends.

#[path = "integration/admin_api.rs"]
mod admin_api;
#[path = "integration/bundles.rs"]
mod bundles;
#[path = "integration/catalog.rs"]
mod catalog;
#[path = "integration/channels.rs"]
mod channels;
#[path = "integration/cli.rs"]
mod cli;
#[path = "integration/common.rs"]
mod common;
#[path = "integration/conventions.rs"]
mod conventions;
#[path = "integration/inventory.rs"]
mod inventory;
#[path = "integration/locations.rs"]
mod locations;
#[path = "integration/nodes.rs"]
mod nodes;
#[path = "integration/orders.rs"]
mod orders;
#[path = "integration/purchasing.rs"]
mod purchasing;
#[path = "integration/rules_preview.rs"]
mod rules_preview;
#[path = "integration/stress.rs"]
mod stress;
#[path = "integration/trust.rs"]
mod trust;
#[path = "integration/valuation.rs"]
mod valuation;
#[path = "integration/webhooks.rs"]
mod webhooks;
