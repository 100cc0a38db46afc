//! Conversions between Rust values and their SQLite columns: times as microseconds, decimals and lists as text,
//! enums as their snake_case names, documents as JSON, and database errors as [`StoreError`]s.

use app::StoreError;
use domain::stock::{Balance, StockState};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite};

// The conversions every store shares.
pub(crate) use app::store_codec::*;

/// A column type both drivers read.
pub(crate) trait Col: rusqlite::types::FromSql + for<'r> sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite> {}

impl<T: rusqlite::types::FromSql + for<'r> sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>> Col for T {}

/// A result row of sqlx or of rusqlite (the point reads, [`crate::readers`]), read by column name: a row decoder
/// written over it serves both.
pub(crate) trait Cols {
    fn col<T: Col>(&self, name: &str) -> Result<T, StoreError>;
}

impl Cols for SqliteRow {
    fn col<T: Col>(&self, name: &str) -> Result<T, StoreError> {
        self.try_get(name).map_err(internal)
    }
}

impl Cols for rusqlite::Row<'_> {
    fn col<T: Col>(&self, name: &str) -> Result<T, StoreError> {
        self.get(name).map_err(internal)
    }
}

/// Reads the seven state columns (named as in [`STATE_COLUMNS`]) of a row.
pub(crate) fn balance(row: &impl Cols) -> Result<Balance, StoreError> {
    let mut b = Balance::default();
    for state in StockState::ALL {
        b.add(state, row.col::<i64>(state.as_str())?);
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
