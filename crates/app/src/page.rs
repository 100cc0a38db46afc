//! Cursor pagination shared by every list: a page of rows and an opaque cursor for the next one.

use serde::Serialize;

use crate::error::AppError;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

/// One page of a list. `next_cursor` is absent on the last page; pass it as `after` to get the next.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A validated page request: `after` decoded, `limit` within bounds.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub after: Option<i64>,
    pub limit: u32,
}

impl PageRequest {
    pub fn parse(after: Option<&str>, limit: Option<u32>) -> Result<Self, AppError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(AppError::field("limit", format!("must be between 1 and {MAX_LIMIT}")));
        }
        let after = match after {
            None | Some("") => None,
            Some(c) => {
                Some(decode_cursor(c).ok_or_else(|| AppError::field("after", "is not a cursor from this list"))?)
            }
        };
        Ok(Self { after, limit })
    }

    /// Ask the store for one row more than the page holds, to know whether another page follows.
    pub fn fetch_limit(&self) -> u32 {
        self.limit + 1
    }

    /// Cuts the extra row off and makes the cursor from the last row's key.
    pub fn finish<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> i64) -> Page<T> {
        let more = rows.len() > self.limit as usize;
        rows.truncate(self.limit as usize);
        let next_cursor = if more { rows.last().map(|r| encode_cursor(key(r))) } else { None };
        Page { items: rows, next_cursor }
    }
}

// Cursors are opaque to clients: a prefix keeps them from being mistaken for (or built from) row ids.
fn encode_cursor(id: i64) -> String {
    format!("c{id:x}")
}

fn decode_cursor(c: &str) -> Option<i64> {
    c.strip_prefix('c').and_then(|h| i64::from_str_radix(h, 16).ok()).filter(|v| *v >= 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_pages_end() {
        let pr = PageRequest::parse(None, Some(2)).unwrap();
        let page = pr.finish(vec![1, 2, 3], |x| *x);
        assert_eq!(page.items, vec![1, 2]);
        let next = PageRequest::parse(page.next_cursor.as_deref(), Some(2)).unwrap();
        assert_eq!(next.after, Some(2));
        assert!(pr.finish(vec![1, 2], |x| *x).next_cursor.is_none());
        assert!(PageRequest::parse(Some("12"), None).is_err());
        assert!(PageRequest::parse(None, Some(0)).is_err());
    }

    proptest::proptest! {
        // Cursors come from clients: any text must be refused or accepted, never panic, and a refused one names
        // the `after` field.
        #[test]
        fn any_cursor_text_is_parsed_or_refused(c in ".{0,40}", limit in proptest::option::of(0u32..2000)) {
            match PageRequest::parse(Some(&c), limit) {
                Ok(p) => {
                    proptest::prop_assert!(p.limit >= 1 && p.limit <= MAX_LIMIT);
                    proptest::prop_assert!(p.after.is_none_or(|a| a >= 0));
                }
                Err(AppError::Validation(fields)) => {
                    proptest::prop_assert!(fields.iter().all(|f| f.field == "after" || f.field == "limit"));
                }
                Err(e) => proptest::prop_assert!(false, "unexpected error {e:?}"),
            }
        }

        #[test]
        fn every_row_key_round_trips_through_its_cursor(id in 0i64..=i64::MAX) {
            let c = encode_cursor(id);
            proptest::prop_assert_eq!(PageRequest::parse(Some(&c), None).unwrap().after, Some(id));
        }
    }
}
