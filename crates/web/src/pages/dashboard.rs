//! The dashboard (being built).

use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::html;

use crate::client::User;
use crate::layout::{self, Flash};
use crate::WebState;

pub fn routes() -> Router<WebState> {
    Router::new().route("/admin", get(dashboard))
}

async fn dashboard(user: User, Query(flash): Query<Flash>) -> Response {
    layout::page(&user, "Dashboard", &flash, html! { p { "Signed in as " (user.caller.name) "." } }).into_response()
}
