//! Stockroom's pure rules and types: the vocabulary of DESIGN.md as Rust, with no IO, no async and no clock.
//!
//! Everything here decides; nothing here fetches or saves. Time, when a rule needs it, is passed in.

pub mod availability;
pub mod bundle;
pub mod catalog;
pub mod codes;
pub mod costing;
pub mod forecast;
pub mod journal;
pub mod location;
pub mod order;
pub mod orders;
pub mod payment;
pub mod purchasing;
pub mod replenishment;
pub mod stock;
pub mod webhooks;

/// A field-level validation failure: which field (a JSON-pointer-like path such as `variants[2].sku`) and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Collects field errors so that one response can name every bad field at once.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<FieldError>);

impl Problems {
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn into_result(self) -> Result<(), Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}
