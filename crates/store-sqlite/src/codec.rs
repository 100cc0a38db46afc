//! Conversions between Rust values and their SQLite columns: times as microseconds, decimals and lists as text,
//! enums as their snake_case names, documents as JSON, and database errors as [`StoreError`]s.

use app::StoreError;
use domain::stock::{Balance, StockState};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

// The conversions every store shares.
pub(crate) use app::store_codec::*;

/// Reads the seven state columns (named as in [`STATE_COLUMNS`]) of a row.
pub(crate) fn balance(row: &SqliteRow) -> Result<Balance, StoreError> {
    let mut b = Balance::default();
    for state in StockState::ALL {
        b.add(state, row.try_get::<i64, _>(state.as_str()).map_err(internal)?);
    }
    Ok(b)
}

/// Any database error that no caller can act on.
pub(crate) fn internal(e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(e.to_string())
}

/// Maps a database error. SQLite names the clashing `table.column` in unique and (our named) check violations;
/// a foreign key violation names nothing, so the caller says which reference it was.
pub(crate) fn db_error(e: sqlx::Error, foreign_key: &str) -> StoreError {
    use sqlx::error::ErrorKind;
    match &e {
        sqlx::Error::Database(db) => match db.kind() {
            ErrorKind::UniqueViolation | ErrorKind::CheckViolation => {
                let message = db.message();
                let constraint = message.split_once(": ").map(|(_, c)| c).unwrap_or(message);
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
