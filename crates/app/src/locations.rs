//! Location use cases: the warehouse tree of warehouses, zones, shelves and bins.

use std::collections::{BTreeMap, HashMap};

use chrono::Utc;
use domain::codes::{validate_location_code, LocationPath};
use domain::location::LocationKind;
use domain::stock::LocationId;
use domain::Problems;
use serde::Deserialize;

use crate::catalog::double_option;
use crate::error::{AppError, AppResult, StoreError};
use crate::page::{Page, PageRequest};
use crate::store::{Address, LocationFields, LocationFilter};
use crate::views::LocationView;
use crate::App;

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewLocation {
    /// This location's own code, one path segment (`SHELF-5`).
    pub code: String,
    /// Path of the parent; absent for a warehouse.
    #[serde(default)]
    pub parent: Option<String>,
    pub kind: LocationKind,
    /// The code when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// Warehouses only.
    #[serde(default)]
    pub address: Option<Address>,
    #[serde(default)]
    pub latitude: Option<f64>,
    #[serde(default)]
    pub longitude: Option<f64>,
    /// Order in which pickers walk the bins; lower first.
    #[serde(default)]
    pub pick_sequence: Option<i64>,
    /// Whether stock here may be sold; true when absent.
    #[serde(default)]
    pub sellable: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LocationPatch {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Address>))]
    pub address: Option<Option<Address>>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub latitude: Option<Option<f64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub longitude: Option<Option<f64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub pick_sequence: Option<Option<i64>>,
    pub sellable: Option<bool>,
}

fn validate_fields(kind: LocationKind, f: &LocationFields, p: &mut Problems) {
    let n = f.name.trim().chars().count();
    if !(1..=255).contains(&n) {
        p.push("name", "must be 1 to 255 characters");
    }
    if f.address.is_some() && kind != LocationKind::Warehouse {
        p.push("address", "only warehouses have an address");
    }
    if let Some(a) = &f.address {
        let iso_alpha2 = a.country.len() == 2 && a.country.chars().all(|c| c.is_ascii_uppercase());
        if !a.country.is_empty() && !iso_alpha2 {
            p.push("address.country", "must be an ISO 3166-1 alpha-2 code such as DE");
        }
    }
    if f.latitude.is_some_and(|v| !(-90.0..=90.0).contains(&v)) {
        p.push("latitude", "must be between -90 and 90");
    }
    if f.longitude.is_some_and(|v| !(-180.0..=180.0).contains(&v)) {
        p.push("longitude", "must be between -180 and 180");
    }
    if f.latitude.is_some() != f.longitude.is_some() {
        p.push("longitude", "latitude and longitude go together");
    }
}

fn clash(e: StoreError, path: &str) -> AppError {
    match e {
        StoreError::Conflict { constraint } if constraint.contains("path") => AppError::Conflict {
            code: "duplicate_location",
            detail: format!("location '{path}' exists already"),
            errors: vec![domain::FieldError::new("code", "is taken under this parent")],
        },
        StoreError::Conflict { constraint } if constraint.contains("parent") => {
            AppError::conflict("location_not_empty", format!("location '{path}' has locations below it"))
        }
        StoreError::Conflict { constraint } if constraint.contains("movements") || constraint.contains("stock") => {
            AppError::conflict("location_has_stock_history", format!("stock has been booked in '{path}'"))
        }
        other => other.into(),
    }
}

impl App {
    pub async fn create_location(&self, req: NewLocation) -> AppResult<LocationView> {
        let mut p = Problems::default();
        if let Err(e) = validate_location_code(req.code.trim()) {
            p.push("code", e);
        }
        let fields = LocationFields {
            name: req.name.clone().unwrap_or_else(|| req.code.trim().to_string()),
            address: req.address.clone(),
            latitude: req.latitude,
            longitude: req.longitude,
            pick_sequence: req.pick_sequence,
            sellable: req.sellable.unwrap_or(true),
        };
        validate_fields(req.kind, &fields, &mut p);
        p.into_result().map_err(AppError::Validation)?;
        let parent = match &req.parent {
            None => None,
            Some(path) => {
                let path = LocationPath::parse(path).map_err(|e| AppError::field("parent", e))?;
                Some(self.store.get_location(path.as_str()).await?.ok_or_else(|| {
                    AppError::UnknownReference(vec![domain::FieldError::new(
                        "parent",
                        format!("unknown location '{path}'"),
                    )])
                })?)
            }
        };
        req.kind.may_sit_under(parent.as_ref().map(|p| p.kind)).map_err(|e| AppError::field("kind", e))?;
        let path = match &parent {
            Some(p) => format!("{}/{}", p.path, req.code.trim()),
            None => req.code.trim().to_string(),
        };
        let path = LocationPath::parse(&path).map_err(|e| AppError::field("parent", e))?;
        let rec = self
            .store
            .create_location(parent.map(|p| p.id), path.as_str(), req.kind, &fields, Utc::now())
            .await
            .map_err(|e| clash(e, path.as_str()))?;
        self.ledger.locations_changed();
        Ok(rec.into())
    }

    pub async fn location(&self, path: &str) -> AppResult<LocationView> {
        let path = path.trim().trim_matches('/');
        self.store
            .get_location(path)
            .await?
            .map(Into::into)
            .ok_or_else(|| AppError::NotFound { entity: "location", key: path.to_string() })
    }

    pub async fn list_locations(
        &self,
        kind: Option<LocationKind>,
        within: Option<&str>,
        page: PageRequest,
    ) -> AppResult<Page<LocationView>> {
        let filter =
            LocationFilter { kind, within: within.map(|w| w.trim().trim_matches('/').to_string()), parent_id: None };
        let rows = self.store.list_locations(&filter, page.after, page.fetch_limit()).await?;
        let page = page.finish(rows, |r| r.id);
        Ok(Page { items: page.items.into_iter().map(Into::into).collect(), next_cursor: page.next_cursor })
    }

    pub async fn update_location(&self, path: &str, patch: LocationPatch) -> AppResult<LocationView> {
        let path = path.trim().trim_matches('/');
        let rec = self
            .store
            .get_location(path)
            .await?
            .ok_or_else(|| AppError::NotFound { entity: "location", key: path.to_string() })?;
        if rec.kind == LocationKind::Virtual {
            return Err(AppError::conflict("virtual_location", "virtual locations are built in and cannot be changed"));
        }
        let mut f = rec.fields.clone();
        if let Some(n) = patch.name {
            f.name = n;
        }
        if let Some(a) = patch.address {
            f.address = a;
        }
        if let Some(v) = patch.latitude {
            f.latitude = v;
        }
        if let Some(v) = patch.longitude {
            f.longitude = v;
        }
        if let Some(v) = patch.pick_sequence {
            f.pick_sequence = v;
        }
        if let Some(v) = patch.sellable {
            f.sellable = v;
        }
        let mut p = Problems::default();
        validate_fields(rec.kind, &f, &mut p);
        p.into_result().map_err(AppError::Validation)?;
        let updated = self.store.update_location(rec.id, &f, Utc::now()).await.map_err(|e| clash(e, path))?;
        self.ledger.locations_changed();
        Ok(updated.into())
    }

    pub async fn delete_location(&self, path: &str) -> AppResult<()> {
        let path = path.trim().trim_matches('/');
        let rec = self
            .store
            .get_location(path)
            .await?
            .ok_or_else(|| AppError::NotFound { entity: "location", key: path.to_string() })?;
        if rec.kind == LocationKind::Virtual {
            return Err(AppError::conflict("virtual_location", "virtual locations are built in and cannot be deleted"));
        }
        self.store.delete_location(rec.id).await.map_err(|e| clash(e, path))?;
        self.ledger.locations_changed();
        Ok(())
    }

    /// Checks that every `(field, path)` can name a bin, creating what is missing: an existing location at the path
    /// must be a bin, and each missing one (the root a warehouse, the leaf a bin, a zone and shelves between) must be
    /// allowed under its parent. Writes nothing; returns the locations to create, parents first.
    pub async fn plan_bins(&self, paths: &[(String, String)]) -> AppResult<Vec<(LocationPath, LocationKind)>> {
        let mut p = Problems::default();
        let mut leaves = Vec::with_capacity(paths.len());
        for (field, raw) in paths {
            match LocationPath::parse(raw) {
                Ok(path) => leaves.push((field, path)),
                Err(e) => p.push(field.clone(), e),
            }
        }
        let mut all: Vec<String> = Vec::new();
        for (_, leaf) in &leaves {
            let mut cur = Some(leaf.clone());
            while let Some(path) = cur {
                cur = path.parent();
                all.push(path.as_str().to_string());
            }
        }
        all.sort();
        all.dedup();
        let existing = self.store.resolve_paths(&all).await?;
        let mut planned: BTreeMap<LocationPath, LocationKind> = BTreeMap::new();
        for (field, leaf) in &leaves {
            let mut chain = vec![leaf.clone()];
            while let Some(parent) = chain.last().and_then(LocationPath::parent) {
                chain.push(parent);
            }
            chain.reverse();
            let mut parent_kind = None;
            for (depth, path) in chain.iter().enumerate() {
                let is_leaf = depth + 1 == chain.len();
                let known = existing.get(path.as_str()).map(|l| l.kind).or_else(|| planned.get(path).copied());
                let kind = match known {
                    Some(kind) => {
                        if is_leaf && !kind.holds_stock() {
                            p.push(field.as_str(), format!("'{path}' is a {}, not a bin", kind.as_str()));
                        }
                        kind
                    }
                    None => {
                        let kind = LocationKind::for_depth(depth + 1, is_leaf);
                        if let Err(e) = kind.may_sit_under(parent_kind) {
                            p.push(field.as_str(), format!("cannot create '{path}': {e}"));
                            break;
                        }
                        planned.insert(path.clone(), kind);
                        kind
                    }
                };
                parent_kind = Some(kind);
            }
        }
        p.into_result().map_err(AppError::Validation)?;
        // A path sorts after its parent, so creating in order always finds the parent made.
        Ok(planned.into_iter().collect())
    }

    /// Creates the locations [`App::plan_bins`] planned; returns how many.
    pub async fn create_planned(&self, planned: Vec<(LocationPath, LocationKind)>) -> AppResult<usize> {
        let now = Utc::now();
        let mut ids: HashMap<String, LocationId> = HashMap::new();
        for (path, kind) in &planned {
            let parent_id = match path.parent() {
                None => None,
                Some(parent) => match ids.get(parent.as_str()) {
                    Some(id) => Some(*id),
                    None => self.store.get_location(parent.as_str()).await?.map(|l| l.id),
                },
            };
            let fields = LocationFields {
                name: path.code().to_string(),
                address: None,
                latitude: None,
                longitude: None,
                pick_sequence: None,
                sellable: true,
            };
            let rec = self
                .store
                .create_location(parent_id, path.as_str(), *kind, &fields, now)
                .await
                .map_err(|e| clash(e, path.as_str()))?;
            ids.insert(rec.path, rec.id);
            self.ledger.locations_changed();
        }
        Ok(planned.len())
    }
}
