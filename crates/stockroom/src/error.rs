//! The CLI's error: one message for the user, printed once, with a non-zero exit.

pub struct CliError(pub String);

pub type CliResult<T> = Result<T, CliError>;

pub fn fail<T>(msg: impl Into<String>) -> CliResult<T> {
    Err(CliError(msg.into()))
}

impl From<app::AppError> for CliError {
    fn from(e: app::AppError) -> Self {
        match e {
            app::AppError::Validation(errs) | app::AppError::UnknownReference(errs) => {
                CliError(errs.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("\n"))
            }
            other => CliError(other.to_string()),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError(e.to_string())
    }
}
