//! The pages of the web admin, one module per area; each adds its routes under `/admin`.

pub mod catalog;
pub mod channels;
pub mod counts;
pub mod dashboard;
pub mod form;
pub mod items;
pub mod keys;
pub mod locations;
pub mod moves;
pub mod orders;
pub mod picking;
pub mod purchasing;
pub mod receiving;
pub mod replenishment;
pub mod reports;
pub mod transfers;
pub mod webhooks;

use axum::Router;

use crate::WebState;

pub fn routes() -> Router<WebState> {
    Router::new()
        .merge(dashboard::routes())
        .merge(items::routes())
        .merge(orders::routes())
        .merge(picking::routes())
        .merge(receiving::routes())
        .merge(transfers::routes())
        .merge(counts::routes())
        .merge(moves::routes())
        .merge(catalog::routes())
        .merge(locations::routes())
        .merge(channels::routes())
        .merge(purchasing::routes())
        .merge(replenishment::routes())
        .merge(reports::routes())
        .merge(webhooks::routes())
        .merge(keys::routes())
}
