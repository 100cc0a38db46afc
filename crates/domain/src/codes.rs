//! Natural keys users type: SKUs, product handles, location codes and paths. Parsed once at the boundary.

use std::fmt;

/// Longest SKU we accept; marketplaces cap theirs at 40–64 characters.
pub const SKU_MAX_LEN: usize = 64;
/// Longest single location code (one path segment).
pub const LOCATION_CODE_MAX_LEN: usize = 32;
/// Deepest location tree we accept: warehouse › zone › shelf › … › bin.
pub const LOCATION_MAX_DEPTH: usize = 8;

/// A stock keeping unit: printable, no whitespace, at most [`SKU_MAX_LEN`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sku(String);

impl Sku {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s.chars().count() > SKU_MAX_LEN {
            return Err(format!("must be at most {SKU_MAX_LEN} characters"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain whitespace or control characters".into());
        }
        Ok(Self(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A product handle: the URL-safe name shops use (`classic-tee`): lowercase letters, digits and dashes.
pub fn validate_handle(raw: &str) -> Result<(), String> {
    if raw.is_empty() || raw.len() > 100 {
        return Err("must be 1 to 100 characters".into());
    }
    if !raw.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err("may contain only lowercase letters, digits and '-'".into());
    }
    if raw.starts_with('-') || raw.ends_with('-') {
        return Err("must not start or end with '-'".into());
    }
    Ok(())
}

/// Turns a title into a handle candidate (`"Classic Tee / Blue"` → `classic-tee-blue`).
pub fn handle_from_title(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out.truncate(100);
    out
}

/// One segment of a location path (`HALL-1`): letters, digits, `-`, `_`, `.`; case is kept.
pub fn validate_location_code(raw: &str) -> Result<(), String> {
    if raw.is_empty() || raw.len() > LOCATION_CODE_MAX_LEN {
        return Err(format!("must be 1 to {LOCATION_CODE_MAX_LEN} characters"));
    }
    if !raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Err("may contain only letters, digits, '-', '_' and '.'".into());
    }
    Ok(())
}

/// A full location path such as `WH1/HALL-1/SHELF-5/RACK-2`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocationPath(String);

impl LocationPath {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim().trim_matches('/');
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        let segments: Vec<&str> = s.split('/').collect();
        if segments.len() > LOCATION_MAX_DEPTH {
            return Err(format!("must have at most {LOCATION_MAX_DEPTH} levels"));
        }
        for seg in &segments {
            validate_location_code(seg).map_err(|e| format!("segment '{seg}' {e}"))?;
        }
        Ok(Self(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn depth(&self) -> usize {
        self.0.split('/').count()
    }
    /// The last segment, which is the location's own code.
    pub fn code(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
    pub fn parent(&self) -> Option<LocationPath> {
        self.0.rsplit_once('/').map(|(p, _)| LocationPath(p.to_string()))
    }
    pub fn root(&self) -> &str {
        self.0.split('/').next().unwrap_or(&self.0)
    }
    pub fn child(&self, code: &str) -> LocationPath {
        LocationPath(format!("{}/{}", self.0, code))
    }
    /// True when `self` is `other` or lies below it in the tree.
    pub fn is_within(&self, other: &LocationPath) -> bool {
        self.0 == other.0 || (self.0.starts_with(&other.0) && self.0.as_bytes().get(other.0.len()) == Some(&b'/'))
    }
}

impl fmt::Display for LocationPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ISO 4217 currency code: three uppercase ASCII letters.
pub fn validate_currency(raw: &str) -> Result<(), String> {
    if raw.len() == 3 && raw.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err("must be an ISO 4217 code such as EUR or USD".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sku_rejects_whitespace_and_overlong() {
        assert!(Sku::parse(" TEE-BLK-M ").is_ok());
        assert_eq!(Sku::parse(" TEE-BLK-M ").unwrap().as_str(), "TEE-BLK-M");
        assert!(Sku::parse("TEE BLK").is_err());
        assert!(Sku::parse("").is_err());
        assert!(Sku::parse(&"X".repeat(65)).is_err());
    }

    #[test]
    fn paths_know_their_family() {
        let p = LocationPath::parse("WH1/HALL-1/SHELF-5/RACK-2").unwrap();
        assert_eq!(p.depth(), 4);
        assert_eq!(p.code(), "RACK-2");
        assert_eq!(p.root(), "WH1");
        assert_eq!(p.parent().unwrap().as_str(), "WH1/HALL-1/SHELF-5");
        assert!(p.is_within(&LocationPath::parse("WH1/HALL-1").unwrap()));
        assert!(!p.is_within(&LocationPath::parse("WH1/HALL").unwrap()));
        assert!(LocationPath::parse("WH1//X").is_err());
        assert!(LocationPath::parse("WH 1").is_err());
    }

    #[test]
    fn handles() {
        assert_eq!(handle_from_title("Classic Tee / Blue!"), "classic-tee-blue");
        assert!(validate_handle("classic-tee").is_ok());
        assert!(validate_handle("Classic").is_err());
        assert!(validate_handle("-x").is_err());
    }
}
