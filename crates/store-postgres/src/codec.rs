//! Conversions between Rust values and their PostgreSQL columns: times as microseconds, decimals as NUMERIC (sent
//! and read as text, exactly), documents and lists as JSONB (sent and read as JSON text), enums as their snake_case
//! names, and database errors as [`StoreError`]s.

use app::StoreError;
use domain::stock::{Balance, StockState};
use sqlx::postgres::PgRow;
use sqlx::Row;

// The conversions every store shares. Decimals travel as text here (`$n::numeric` on the way in, `column::text` on
// the way out): exact both ways, and no second decimal type to keep in step with `rust_decimal`.
pub(crate) use app::store_codec::*;

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
