//! The application's one error type. Every variant carries a stable machine code that the API turns into
//! problem+json; the HTTP status is the API's business, the meaning is ours.

use domain::FieldError;

/// Errors a store reports. Constraint names let the app turn a lost race into a precise client error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness or check constraint refused the write; `constraint` names what clashed (e.g. `items.sku`).
    #[error("constraint {constraint} violated")]
    Conflict { constraint: String },
    #[error("not found")]
    NotFound,
    /// Anything else: the database is down, the disk is full, a bug. Never shown to clients in detail.
    #[error("storage failure: {0}")]
    Internal(String),
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// One or more fields are invalid; each is named.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// The thing addressed does not exist.
    #[error("{entity} '{key}' not found")]
    NotFound { entity: &'static str, key: String },
    /// A referenced thing (a SKU or location in a body) does not exist; named by field.
    #[error("unknown reference")]
    UnknownReference(Vec<FieldError>),
    /// The request clashes with existing state: a duplicate key, a location with stock, a stale compare value.
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String, errors: Vec<FieldError> },
    /// Not enough stock in the named state for the named line.
    #[error("{detail}")]
    InsufficientStock { detail: String, errors: Vec<FieldError> },
    /// The write path is shutting down or overloaded.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AppError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Validation(vec![FieldError::new(field, message)])
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        AppError::Conflict { code, detail: detail.into(), errors: vec![] }
    }

    /// The stable machine code of this error, as listed in the API reference.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Validation(_) => "validation_failed",
            AppError::NotFound { .. } => "not_found",
            AppError::UnknownReference(_) => "unknown_reference",
            AppError::Conflict { code, .. } => code,
            AppError::InsufficientStock { .. } => "insufficient_stock",
            AppError::Unavailable(_) => "unavailable",
            AppError::Store(StoreError::Conflict { .. }) => "conflict",
            AppError::Store(StoreError::NotFound) => "not_found",
            AppError::Store(StoreError::Internal(_)) => "internal",
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;
