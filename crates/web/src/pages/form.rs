//! What the pages share in reading a form or a scan: the page's own refusals (shown like the API's, nothing sent),
//! blank fields, counted words, and what a scanned code stands for.

use axum::http::StatusCode;
use axum::response::Response;

use crate::client::{enc, Failure, User};
use crate::layout;

/// A refusal decided by the page itself (a scan or form that makes no sense): the API was not asked.
pub(crate) fn refusal(detail: impl Into<String>) -> Failure {
    Failure {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        code: "validation_failed".into(),
        detail: detail.into(),
        errors: Vec::new(),
    }
}

/// A refusal of one field (a quantity that is not a number), named as the API names its field errors.
pub(crate) fn invalid(field: &str, message: &str) -> Failure {
    Failure { errors: vec![(field.to_string(), message.to_string())], ..refusal("The form has an error.") }
}

/// Back to `to` with a refusal of one field.
pub(crate) fn refuse_field(to: &str, field: &str, message: &str) -> Response {
    layout::failed(to, &invalid(field, message))
}

/// A field or query value, trimmed; `None` when absent or blank.
pub(crate) fn blank(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// `1 line`, `2 lines`.
pub(crate) fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The SKU a scanned or typed code stands for, in one order: an exact SKU first, then a barcode. With `allowed`
/// (the SKUs of the order or list at hand) the SKU is matched among those without asking the API; a barcode is
/// looked up in the whole catalog either way, so that the page can say the item is not on its list.
/// `Ok(None)`: no item has this code.
pub(crate) async fn scanned_sku(user: &User, code: &str, allowed: Option<&[&str]>) -> Result<Option<String>, Failure> {
    let code = code.trim();
    if code.is_empty() {
        return Ok(None);
    }
    let filters: &[&str] = match allowed {
        Some(skus) => match skus.iter().find(|s| s.eq_ignore_ascii_case(code)) {
            Some(s) => return Ok(Some(s.to_string())),
            None => &["barcode"],
        },
        None => &["sku", "barcode"],
    };
    for filter in filters {
        let found = user.get(&format!("/v1/variants?{filter}={}&limit=1", enc(code))).await?;
        if let Some(sku) = found["items"][0]["sku"].as_str() {
            return Ok(Some(sku.to_string()));
        }
    }
    Ok(None)
}

/// [`scanned_sku`] for the floor pages that take any item: a blank scan or an unknown code is refused.
pub(crate) async fn scanned_item(user: &User, code: &str) -> Result<String, Failure> {
    if code.trim().is_empty() {
        return Err(refusal("Scan an item's barcode or type its SKU."));
    }
    match scanned_sku(user, code, None).await? {
        Some(sku) => Ok(sku),
        None => Err(refusal(format!("No item has the barcode or SKU '{}'.", code.trim()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_counted_and_blanks_are_none() {
        assert_eq!(plural(1, "line"), "1 line");
        assert_eq!(plural(0, "line"), "0 lines");
        assert_eq!(plural(3, "stop"), "3 stops");
        assert_eq!(blank(&Some("  ".into())), None);
        assert_eq!(blank(&Some(" a ".into())), Some("a"));
        assert_eq!(blank(&None), None);
    }

    #[test]
    fn a_field_refusal_names_its_field() {
        let f = invalid("quantity", "must be a whole number");
        assert_eq!(f.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(f.message(), "The form has an error. · quantity: must be a whole number");
    }
}
