//! What a channel may sell of an item: the availability rules, their precedence, and the pure evaluation that
//! turns stock and rules into a quantity, a status, a listed flag and a step-by-step explanation.
//!
//! # Where a rule comes from (precedence)
//!
//! Rules are [`RuleSet`]s attached to a channel at four scopes. Every field of a rule set is optional, and each
//! field is resolved on its own: the most specific scope that sets it wins, in this order:
//!
//! 1. `item` (the SKU),
//! 2. `tag` (tags of the item's product, in alphabetical order: the first tag that sets the field wins),
//! 3. `category` (the product's category and its ancestors, deepest first),
//! 4. `channel` (the channel's defaults),
//! 5. the catalog (only `policy`: the variant's `inventory_policy`); every other field is "no rule" when unset.
//!
//! A map or list field (`safety_stock`, `excluded_warehouses`) is taken whole from the winning scope; it is
//! never merged across scopes, so that a merchant reading one rule set sees all of that field.
//!
//! # The order of evaluation
//!
//! 1. `warehouses`: the available stock of each of the channel's warehouses (negative counts as 0);
//! 2. `excluded_warehouses`: those warehouses' stock is dropped;
//! 3. `safety_stock`: per warehouse code, that many units are held back in the warehouse (floored at 0);
//!    the sum is the **pooled** quantity. A bundle feeds its pooled quantity in directly ([`Stock::Pooled`]),
//!    skipping steps 1–3;
//! 4. `channel_buffer`: N units are held back from this channel;
//! 5. `velocity_days`: D days of the item's recent average daily sales are held back (rounded up);
//! 6. `share_percent` / `share_units`: at most X% (rounded down) or N units of the pooled quantity;
//! 7. `policy`: at zero, `deny` shows out_of_stock, `backorder` shows backorder, `continue` keeps in_stock;
//! 8. `low_stock_below`: a positive quantity below N is low_stock;
//! 9. `hide_below`: a quantity below N is not listed.
//!
//! The quantity never goes below zero and never above the pooled quantity: every step only holds back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::InventoryPolicy;
use crate::Problems;

/// The most a percentage may be.
pub const MAX_SHARE_PERCENT: i64 = 100;
/// The longest sales window a velocity buffer may look at.
pub const MAX_VELOCITY_DAYS: i64 = 365;

/// One scope's rules. `None` means "not set here": a less specific scope (or the default) decides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// What the channel shows at zero; overrides the variant's `inventory_policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<InventoryPolicy>,
    /// Units held back per warehouse code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety_stock: Option<BTreeMap<String, i64>>,
    /// Units held back from this channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_buffer: Option<i64>,
    /// At most this percentage (0 to 100) of the pooled stock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_percent: Option<i64>,
    /// At most this many units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_units: Option<i64>,
    /// Hold back this many days of the item's recent average daily sales.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub velocity_days: Option<i64>,
    /// Not listed below this quantity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hide_below: Option<i64>,
    /// Status low_stock below this quantity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_stock_below: Option<i64>,
    /// Warehouse codes this channel does not sell from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded_warehouses: Option<Vec<String>>,
}

impl RuleSet {
    /// Checks every field; `prefix` is prepended to field names. Warehouse codes are checked by the caller, who
    /// knows which exist.
    pub fn validate(&self, prefix: &str, p: &mut Problems) {
        let non_negative = |p: &mut Problems, name: &str, v: Option<i64>| {
            if v.is_some_and(|v| v < 0) {
                p.push(format!("{prefix}{name}"), "must not be negative");
            }
        };
        non_negative(p, "channel_buffer", self.channel_buffer);
        non_negative(p, "share_units", self.share_units);
        non_negative(p, "hide_below", self.hide_below);
        non_negative(p, "low_stock_below", self.low_stock_below);
        if let Some(s) = self.share_percent {
            if !(0..=MAX_SHARE_PERCENT).contains(&s) {
                p.push(format!("{prefix}share_percent"), format!("must be between 0 and {MAX_SHARE_PERCENT}"));
            }
        }
        if let Some(d) = self.velocity_days {
            if !(1..=MAX_VELOCITY_DAYS).contains(&d) {
                p.push(format!("{prefix}velocity_days"), format!("must be between 1 and {MAX_VELOCITY_DAYS}"));
            }
        }
        for (code, n) in self.safety_stock.iter().flatten() {
            if *n < 0 {
                p.push(format!("{prefix}safety_stock.{code}"), "must not be negative");
            }
        }
    }

    /// The warehouse codes this rule set names, for the caller to check.
    pub fn warehouse_codes(&self) -> impl Iterator<Item = &String> {
        self.safety_stock.iter().flat_map(|m| m.keys()).chain(self.excluded_warehouses.iter().flatten())
    }
}

/// Where a rule came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "scope", content = "key", rename_all = "snake_case")]
pub enum RuleSource {
    Item(String),
    Tag(String),
    Category(String),
    Channel,
    /// The catalog's own setting (the variant's inventory policy).
    Catalog,
}

impl std::fmt::Display for RuleSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleSource::Item(k) => write!(f, "item:{k}"),
            RuleSource::Tag(k) => write!(f, "tag:{k}"),
            RuleSource::Category(k) => write!(f, "category:{k}"),
            RuleSource::Channel => f.write_str("channel"),
            RuleSource::Catalog => f.write_str("catalog"),
        }
    }
}

/// The rule sets that apply to one item on one channel, most specific first (see the module's precedence).
#[derive(Debug, Clone, Default)]
pub struct RuleStack<'a>(pub Vec<(RuleSource, &'a RuleSet)>);

impl<'a> RuleStack<'a> {
    /// Orders the given scoped rule sets by precedence: item, tags alphabetically, categories deepest first,
    /// channel. Sets that do not apply to the item (another SKU, tag or category) are left out.
    pub fn for_item(
        sets: impl IntoIterator<Item = (&'a RuleSource, &'a RuleSet)>,
        sku: &str,
        category: Option<&str>,
        tags: &[String],
    ) -> RuleStack<'a> {
        let mut picked: Vec<(u8, i64, RuleSource, &'a RuleSet)> = vec![];
        for (source, set) in sets {
            let rank = match source {
                RuleSource::Item(s) if s == sku => Some((0, 0)),
                RuleSource::Tag(t) if tags.iter().any(|x| x == t) => Some((1, 0)),
                RuleSource::Category(c) => {
                    category.filter(|cat| category_matches(cat, c)).map(|_| (2, -(c.split(" > ").count() as i64)))
                }
                RuleSource::Channel => Some((3, 0)),
                _ => None,
            };
            if let Some((a, b)) = rank {
                picked.push((a, b, source.clone(), set));
            }
        }
        picked.sort_by(|x, y| (x.0, x.1, &x.2).cmp(&(y.0, y.1, &y.2)));
        RuleStack(picked.into_iter().map(|(_, _, s, r)| (s, r)).collect())
    }

    /// The winning value of one field and where it came from.
    fn pick<T: Clone>(&self, field: impl Fn(&RuleSet) -> Option<T>) -> Option<(T, RuleSource)> {
        self.0.iter().find_map(|(source, set)| field(set).map(|v| (v, source.clone())))
    }
}

/// Whether an item in `category` falls under a rule for `rule_category` (the same category or one above it).
pub fn category_matches(category: &str, rule_category: &str) -> bool {
    category == rule_category
        || (category.len() > rule_category.len()
            && category.starts_with(rule_category)
            && category[rule_category.len()..].starts_with(" > "))
}

/// The stock a channel's availability starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stock {
    /// Available units per warehouse (code, units), in the channel's priority order.
    Warehouses(Vec<(String, i64)>),
    /// A pooled quantity computed elsewhere (a bundle: the minimum over its components); warehouse rules are
    /// the components' business and are skipped.
    Pooled { available: i64, note: String },
}

/// Everything the evaluation needs about one item on one channel.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub stock: Stock,
    /// The variant's `inventory_policy`.
    pub catalog_policy: InventoryPolicy,
    /// Units sold over the last [`velocity_days`] days; only read when a velocity rule applies.
    pub recent_sales: i64,
    pub rules: RuleStack<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AvailabilityStatus {
    InStock,
    LowStock,
    Backorder,
    OutOfStock,
}

impl AvailabilityStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AvailabilityStatus::InStock => "in_stock",
            AvailabilityStatus::LowStock => "low_stock",
            AvailabilityStatus::Backorder => "backorder",
            AvailabilityStatus::OutOfStock => "out_of_stock",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "in_stock" => AvailabilityStatus::InStock,
            "low_stock" => AvailabilityStatus::LowStock,
            "backorder" => AvailabilityStatus::Backorder,
            "out_of_stock" => AvailabilityStatus::OutOfStock,
            _ => return None,
        })
    }
}

/// One step of the explanation: the quantity before and after a rule, and where the rule came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Step {
    /// The rule's name (`excluded_warehouses`, `channel_buffer`, …).
    pub rule: String,
    /// `item:SKU`, `tag:T`, `category:C`, `channel`, `catalog`, or `stock` for the starting quantities.
    pub source: String,
    pub before: i64,
    pub after: i64,
    pub detail: String,
}

/// What a channel shows for an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Evaluation {
    pub quantity: i64,
    pub status: AvailabilityStatus,
    pub listed: bool,
    /// The pooled quantity (after warehouse rules) the channel rules started from.
    pub pooled: i64,
    pub steps: Vec<Step>,
}

/// The velocity window the rules ask for, if any: the caller measures sales over it before evaluating.
pub fn velocity_days(rules: &RuleStack<'_>) -> Option<i64> {
    rules.pick(|r| r.velocity_days).map(|(d, _)| d)
}

/// Evaluates the rules for one item on one channel. Pure: same input, same result.
pub fn evaluate(input: &Input<'_>) -> Evaluation {
    let rules = &input.rules;
    let mut steps = vec![];
    let mut step = |rule: &str, source: &dyn std::fmt::Display, before: i64, after: i64, detail: String| {
        steps.push(Step { rule: rule.into(), source: source.to_string(), before, after, detail });
    };

    // 1–3: the pooled quantity.
    let pooled = match &input.stock {
        Stock::Pooled { available, note } => {
            let q = (*available).max(0);
            step("stock", &"stock", q, q, note.clone());
            q
        }
        Stock::Warehouses(warehouses) => {
            let mut per: Vec<(String, i64)> = warehouses.iter().map(|(c, q)| (c.clone(), (*q).max(0))).collect();
            let total: i64 = per.iter().map(|(_, q)| q).sum();
            let listing = per.iter().map(|(c, q)| format!("{c}: {q}")).collect::<Vec<_>>().join(", ");
            step("stock", &"stock", total, total, format!("available in the channel's warehouses ({listing})"));
            if let Some((excluded, source)) = rules.pick(|r| r.excluded_warehouses.clone()) {
                let before: i64 = per.iter().map(|(_, q)| q).sum();
                per.retain(|(c, _)| !excluded.contains(c));
                let after: i64 = per.iter().map(|(_, q)| q).sum();
                step("excluded_warehouses", &source, before, after, format!("not sold from {}", excluded.join(", ")));
            }
            if let Some((safety, source)) = rules.pick(|r| r.safety_stock.clone()) {
                let before: i64 = per.iter().map(|(_, q)| q).sum();
                let mut held = vec![];
                for (code, q) in per.iter_mut() {
                    if let Some(n) = safety.get(code) {
                        let kept = (*q).min(*n).max(0);
                        *q -= kept;
                        held.push(format!("{code}: {kept} of {n}"));
                    }
                }
                let after: i64 = per.iter().map(|(_, q)| q).sum();
                let detail = if held.is_empty() {
                    "no safety stock for these warehouses".to_string()
                } else {
                    format!("held back per warehouse ({})", held.join(", "))
                };
                step("safety_stock", &source, before, after, detail);
            }
            per.iter().map(|(_, q)| q).sum()
        }
    };

    // 4: channel buffer.
    let mut q = pooled;
    if let Some((n, source)) = rules.pick(|r| r.channel_buffer) {
        let after = (q - n.max(0)).max(0);
        step("channel_buffer", &source, q, after, format!("{n} units held back from this channel"));
        q = after;
    }
    // 5: velocity buffer.
    if let Some((days, source)) = rules.pick(|r| r.velocity_days) {
        let days = days.max(1);
        let sales = input.recent_sales.max(0);
        // The caller measured sales over the last `days` days, so D days of average daily sales is exactly that
        // total: no division, no rounding.
        let held = sales;
        let after = (q - held).max(0);
        step(
            "velocity_days",
            &source,
            q,
            after,
            format!("{sales} units sold in the last {days} days held back ({days} days of average daily sales)"),
        );
        q = after;
    }
    // 6: share caps.
    if let Some((pct, source)) = rules.pick(|r| r.share_percent) {
        let cap = pooled * pct.clamp(0, MAX_SHARE_PERCENT) / 100;
        let after = q.min(cap);
        step("share_percent", &source, q, after, format!("at most {pct}% of {pooled} pooled units = {cap}"));
        q = after;
    }
    if let Some((n, source)) = rules.pick(|r| r.share_units) {
        let after = q.min(n.max(0));
        step("share_units", &source, q, after, format!("at most {n} units"));
        q = after;
    }

    // 7: what happens at zero.
    let (policy, policy_source) = rules.pick(|r| r.policy).unwrap_or((input.catalog_policy, RuleSource::Catalog));
    let mut status = if q > 0 {
        AvailabilityStatus::InStock
    } else {
        match policy {
            InventoryPolicy::Deny => AvailabilityStatus::OutOfStock,
            InventoryPolicy::Continue => AvailabilityStatus::InStock,
            InventoryPolicy::Backorder => AvailabilityStatus::Backorder,
        }
    };
    step(
        "policy",
        &policy_source,
        q,
        q,
        if q > 0 {
            format!("{}: in stock", policy.as_str())
        } else {
            format!("{} at zero: {}", policy.as_str(), status.as_str())
        },
    );
    // 8: low stock.
    if let Some((n, source)) = rules.pick(|r| r.low_stock_below) {
        let low = q > 0 && q < n;
        if low {
            status = AvailabilityStatus::LowStock;
        }
        step(
            "low_stock_below",
            &source,
            q,
            q,
            format!("{} {n}: {}", if low { "below" } else { "not below" }, status.as_str()),
        );
    }
    // 9: listing.
    let mut listed = true;
    if let Some((n, source)) = rules.pick(|r| r.hide_below) {
        listed = q >= n;
        step(
            "hide_below",
            &source,
            q,
            q,
            format!("{} {n}: {}", if listed { "not below" } else { "below" }, if listed { "listed" } else { "hidden" }),
        );
    }
    Evaluation { quantity: q, status, listed, pooled, steps }
}

#[cfg(test)]
mod tests;
