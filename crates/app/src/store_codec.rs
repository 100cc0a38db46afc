//! Conversions every store shares between Rust values and database columns: times as microseconds since the
//! epoch, decimals as exact text, lists and documents as JSON, enums as their serde names. Each backend adds its
//! own row reading and error mapping.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use domain::stock::{StockState, VirtualKind};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::StoreError;

/// Times are stored as microseconds since the epoch: exact, sortable, and the precision every client gets back.
pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn from_micros(v: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(v).ok_or_else(|| StoreError::Internal(format!("timestamp {v} is out of range")))
}

pub fn decimal(text: &str) -> Result<Decimal, StoreError> {
    Decimal::from_str(text).map_err(|e| StoreError::Internal(format!("bad decimal '{text}' in the database: {e}")))
}

pub fn opt_decimal(text: Option<String>) -> Result<Option<Decimal>, StoreError> {
    text.as_deref().map(decimal).transpose()
}

/// Lists are stored as JSON arrays of strings.
pub fn to_json_list(list: &[String]) -> String {
    serde_json::Value::from(list.to_vec()).to_string()
}

pub fn from_json_list(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Internal(format!("bad JSON list in the database: {e}")))
}

/// A value stored as a JSON document (an order, a hold, a list of addresses).
pub fn to_json<T: Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Internal(format!("cannot encode {what} as JSON: {e}")))
}

pub fn from_json<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Internal(format!("bad {what} JSON in the database: {e}")))
}

/// The serde name of a unit enum variant (`open`, `prepaid`), which is what its column holds. Going through serde
/// rather than a hand-written table means the column can never spell a variant differently from its document.
pub fn enum_name<T: Serialize>(value: &T) -> Result<String, StoreError> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => Ok(name),
        other => Err(StoreError::Internal(format!("expected a unit enum variant, got {other:?}"))),
    }
}

pub fn parse_enum<T: DeserializeOwned>(what: &str, name: String) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(name))
        .map_err(|e| StoreError::Internal(format!("bad {what} in the database: {e}")))
}

pub fn parse<T>(what: &str, r: Result<T, String>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Internal(format!("bad {what} in the database: {e}")))
}

pub fn virtual_kind_str(k: VirtualKind) -> &'static str {
    match k {
        VirtualKind::Supplier => "supplier",
        VirtualKind::Customer => "customer",
        VirtualKind::Adjustment => "adjustment",
        VirtualKind::Scrap => "scrap",
        VirtualKind::Transit => "transit",
    }
}

pub fn parse_virtual_kind(s: &str) -> Result<VirtualKind, StoreError> {
    VirtualKind::ALL
        .into_iter()
        .find(|k| virtual_kind_str(*k) == s)
        .ok_or_else(|| StoreError::Internal(format!("bad virtual kind '{s}' in the database")))
}

pub fn parse_state(s: Option<String>) -> Result<Option<StockState>, StoreError> {
    s.map(|s| parse("stock state", StockState::from_str(&s))).transpose()
}

/// The state columns of `stock_levels`, in [`StockState::ALL`] order; also the column names of folded balances.
pub const STATE_COLUMNS: &str = "available, committed, reserved, damaged, quality_control, safety_stock, incoming";
