//! Conversions between Rust values and their PostgreSQL columns: times as microseconds, decimals as NUMERIC (sent
//! and read as text, exactly), documents and lists as JSONB (sent and read as JSON text), enums as their snake_case
//! names, and database errors as [`StoreError`]s.

use std::str::FromStr;

use app::StoreError;
use chrono::{DateTime, Utc};
use domain::stock::{Balance, StockState, VirtualKind};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::Row;

/// Times are stored as microseconds since the epoch: exact, sortable, and the precision every client gets back.
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(v: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(v).ok_or_else(|| StoreError::Internal(format!("timestamp {v} is out of range")))
}

/// Decimals travel as text (`$n::numeric` on the way in, `column::text` on the way out): exact both ways, and no
/// second decimal type to keep in step with `rust_decimal`.
pub(crate) fn decimal(text: &str) -> Result<Decimal, StoreError> {
    Decimal::from_str(text).map_err(|e| StoreError::Internal(format!("bad decimal '{text}' in the database: {e}")))
}

pub(crate) fn opt_decimal(text: Option<String>) -> Result<Option<Decimal>, StoreError> {
    text.as_deref().map(decimal).transpose()
}

/// Lists are stored as JSON arrays of strings.
pub(crate) fn to_json_list(list: &[String]) -> String {
    serde_json::Value::from(list.to_vec()).to_string()
}

pub(crate) fn from_json_list(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Internal(format!("bad JSON list in the database: {e}")))
}

/// A value stored as a JSON document (an order, a hold, a list of addresses).
pub(crate) fn to_json<T: Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Internal(format!("cannot encode {what} as JSON: {e}")))
}

pub(crate) fn from_json<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Internal(format!("bad {what} JSON in the database: {e}")))
}

/// The serde name of a unit enum variant (`open`, `prepaid`), which is what its column holds. Going through serde
/// rather than a hand-written table means the column can never spell a variant differently from its document.
pub(crate) fn enum_name<T: Serialize>(value: &T) -> Result<String, StoreError> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => Ok(name),
        other => Err(StoreError::Internal(format!("expected a unit enum variant, got {other:?}"))),
    }
}

pub(crate) fn parse_enum<T: DeserializeOwned>(what: &str, name: String) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(name))
        .map_err(|e| StoreError::Internal(format!("bad {what} in the database: {e}")))
}

pub(crate) fn parse<T>(what: &str, r: Result<T, String>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Internal(format!("bad {what} in the database: {e}")))
}

pub(crate) fn virtual_kind_str(k: VirtualKind) -> &'static str {
    match k {
        VirtualKind::Supplier => "supplier",
        VirtualKind::Customer => "customer",
        VirtualKind::Adjustment => "adjustment",
        VirtualKind::Scrap => "scrap",
        VirtualKind::Transit => "transit",
    }
}

pub(crate) fn parse_virtual_kind(s: &str) -> Result<VirtualKind, StoreError> {
    VirtualKind::ALL
        .into_iter()
        .find(|k| virtual_kind_str(*k) == s)
        .ok_or_else(|| StoreError::Internal(format!("bad virtual kind '{s}' in the database")))
}

pub(crate) fn parse_state(s: Option<String>) -> Result<Option<StockState>, StoreError> {
    s.map(|s| parse("stock state", StockState::from_str(&s))).transpose()
}

/// The state columns of `stock_levels`, in [`StockState::ALL`] order; also the column names of folded balances.
pub(crate) const STATE_COLUMNS: &str =
    "available, committed, reserved, damaged, quality_control, safety_stock, incoming";

/// Reads the seven state columns (named as in [`STATE_COLUMNS`]) of a row.
pub(crate) fn balance(row: &PgRow) -> Result<Balance, StoreError> {
    let mut b = Balance::default();
    for state in StockState::ALL {
        b.add(state, row.try_get::<i64, _>(state.as_str()).map_err(internal)?);
    }
    Ok(b)
}

/// Shorthand for reading a column, with a decoding error as an internal one.
pub(crate) fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column).map_err(internal)
}

/// Any database error that no caller can act on.
pub(crate) fn internal(e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(e.to_string())
}

/// Whether an error only says "try again": a serialization failure (40001) or a deadlock that PostgreSQL broke by
/// failing this transaction (40P01). Nothing was written; the same work on fresh state may well succeed.
pub(crate) fn is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("40001" | "40P01")),
        _ => false,
    }
}

/// Maps a database error. PostgreSQL reports the name of the violated constraint in a field of its own, and our
/// constraints are named `table.column`. A foreign key violation is named by the caller, who knows which reference
/// a statement can miss and how the app words it (`movements.item_id` for "this item has history").
pub(crate) fn db_error(e: sqlx::Error, foreign_key: &str) -> StoreError {
    use sqlx::error::ErrorKind;
    match &e {
        sqlx::Error::Database(db) => match db.kind() {
            ErrorKind::UniqueViolation | ErrorKind::CheckViolation => {
                let constraint = db.constraint().unwrap_or(db.message());
                StoreError::Conflict { constraint: constraint.to_string() }
            }
            ErrorKind::ForeignKeyViolation => StoreError::Conflict { constraint: foreign_key.to_string() },
            _ => StoreError::Internal(e.to_string()),
        },
        sqlx::Error::RowNotFound => StoreError::NotFound,
        _ => StoreError::Internal(e.to_string()),
    }
}

/// [`db_error`] for statements whose only foreign keys cannot fail in practice.
pub(crate) fn db(e: sqlx::Error) -> StoreError {
    db_error(e, "foreign_key")
}
