//! The location tree: which kind of location may sit under which, and which may hold stock.

use serde::{Deserialize, Serialize};

use crate::stock::VirtualKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LocationKind {
    Warehouse,
    Zone,
    Shelf,
    Bin,
    /// Supplier, customer, adjustment, scrap and transit: the ledger's other sides, never a place on a shelf.
    Virtual,
}

impl LocationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LocationKind::Warehouse => "warehouse",
            LocationKind::Zone => "zone",
            LocationKind::Shelf => "shelf",
            LocationKind::Bin => "bin",
            LocationKind::Virtual => "virtual",
        }
    }
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "warehouse" => Ok(Self::Warehouse),
            "zone" => Ok(Self::Zone),
            "shelf" => Ok(Self::Shelf),
            "bin" => Ok(Self::Bin),
            "virtual" => Ok(Self::Virtual),
            _ => Err(format!("unknown location kind '{s}'")),
        }
    }

    /// Only bins hold stock: every unit has a bin.
    pub fn holds_stock(self) -> bool {
        self == LocationKind::Bin
    }

    /// Whether a location of this kind may be created under `parent` (`None`: at the root).
    pub fn may_sit_under(self, parent: Option<LocationKind>) -> Result<(), String> {
        use LocationKind::*;
        match (self, parent) {
            (Warehouse, None) => Ok(()),
            (Warehouse, Some(_)) => Err("a warehouse must be at the root of the tree".into()),
            (Virtual, _) => Err("virtual locations are built in and cannot be created".into()),
            (_, None) => Err("must have a parent: only warehouses sit at the root".into()),
            (_, Some(Bin)) => Err("a bin cannot contain other locations".into()),
            (_, Some(Virtual)) => Err("virtual locations cannot contain other locations".into()),
            (Zone, Some(Shelf)) => Err("a zone cannot sit under a shelf".into()),
            _ => Ok(()),
        }
    }

    /// The kind an import gives a location it creates from a path: the root is a warehouse, the leaf a bin,
    /// the levels between are a zone and then shelves.
    pub fn for_depth(depth: usize, is_leaf: bool) -> LocationKind {
        match (depth, is_leaf) {
            (1, _) => LocationKind::Warehouse,
            (_, true) => LocationKind::Bin,
            (2, false) => LocationKind::Zone,
            _ => LocationKind::Shelf,
        }
    }
}

/// Names the virtual location of each kind, for seeding the first migration and for lookups.
pub fn virtual_locations() -> impl Iterator<Item = (VirtualKind, &'static str)> {
    VirtualKind::ALL.into_iter().map(|k| (k, k.code()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use LocationKind::*;

    #[test]
    fn tree_rules() {
        assert!(Warehouse.may_sit_under(None).is_ok());
        assert!(Warehouse.may_sit_under(Some(Zone)).is_err());
        assert!(Bin.may_sit_under(Some(Warehouse)).is_ok());
        assert!(Bin.may_sit_under(Some(Bin)).is_err());
        assert!(Zone.may_sit_under(Some(Shelf)).is_err());
        assert!(Shelf.may_sit_under(Some(Shelf)).is_ok());
        assert!(Bin.may_sit_under(None).is_err());
        assert!(Virtual.may_sit_under(None).is_err());
        assert!(Bin.holds_stock() && !Shelf.holds_stock());
    }

    #[test]
    fn import_kinds_by_depth() {
        assert_eq!(LocationKind::for_depth(1, false), Warehouse);
        assert_eq!(LocationKind::for_depth(2, false), Zone);
        assert_eq!(LocationKind::for_depth(3, false), Shelf);
        assert_eq!(LocationKind::for_depth(4, true), Bin);
        assert_eq!(LocationKind::for_depth(2, true), Bin);
    }
}
