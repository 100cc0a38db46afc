//! `serve --demo`: a sample catalog, two warehouses with halls, shelves and bins, and stock, so that a newcomer
//! sees something real at once. Everything goes through the same use cases (and the one write path) as the API.

use app::catalog::{NewProduct, NewVariant};
use app::inventory::{AdjustmentLine, AdjustmentRequest, MoveLineRequest, MoveRequest};
use app::locations::NewLocation;
use app::page::PageRequest;
use app::store::{Address, ProductFilter};
use app::{Actor, App};
use domain::catalog::{InventoryPolicy, ProductStatus};
use domain::location::LocationKind;
use domain::stock::{Reason, StockState};
use rust_decimal::Decimal;

use crate::error::CliResult;

const COLORS: [(&str, &str); 6] =
    [("Black", "BLK"), ("White", "WHT"), ("Navy", "NVY"), ("Olive", "OLV"), ("Red", "RED"), ("Grey", "GRY")];
const SIZES: [&str; 6] = ["XS", "S", "M", "L", "XL", "XXL"];

/// (title, SKU code, category, vendor, price in cents, colors used, sizes used): 297 variants in all.
const MODELS: [(&str, &str, &str, &str, i64, usize, usize); 15] = [
    ("Classic Tee", "TEE", "Apparel > Shirts > T-Shirts", "Northwind", 1999, 6, 6),
    ("Heavy Hoodie", "HOOD", "Apparel > Sweaters > Hoodies", "Northwind", 5900, 4, 6),
    ("Slim Chino", "CHINO", "Apparel > Trousers", "Fjord & Co", 6900, 4, 6),
    ("Rain Jacket", "RAIN", "Apparel > Outerwear", "Fjord & Co", 12900, 3, 6),
    ("Merino Crew", "MERINO", "Apparel > Sweaters", "Highland", 8900, 5, 6),
    ("Oxford Shirt", "OXFORD", "Apparel > Shirts", "Highland", 4900, 3, 6),
    ("Running Short", "RUNSHORT", "Sports > Running", "Stride", 2900, 4, 4),
    ("Trail Sock", "TRAILSOCK", "Sports > Running > Socks", "Stride", 1200, 4, 3),
    ("Canvas Tote", "TOTE", "Accessories > Bags", "Northwind", 2400, 5, 1),
    ("Wool Beanie", "BEANIE", "Accessories > Hats", "Highland", 1900, 6, 1),
    ("Linen Shirt", "LINEN", "Apparel > Shirts", "Fjord & Co", 5400, 4, 6),
    ("Denim Jacket", "DENIM", "Apparel > Outerwear", "Fjord & Co", 11900, 2, 6),
    ("Polo Shirt", "POLO", "Apparel > Shirts", "Northwind", 3400, 6, 6),
    ("Track Pant", "TRACK", "Sports > Training", "Stride", 3900, 3, 6),
    ("Crew Sock", "CREWSOCK", "Accessories > Socks", "Northwind", 900, 6, 3),
];

/// A small deterministic generator, so that every demo database looks the same.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

async fn location(
    app: &App,
    code: &str,
    parent: Option<&str>,
    kind: LocationKind,
    seq: Option<i64>,
) -> CliResult<String> {
    let l = app
        .create_location(NewLocation {
            code: code.into(),
            parent: parent.map(str::to_string),
            kind,
            name: None,
            address: None,
            latitude: None,
            longitude: None,
            pick_sequence: seq,
            sellable: None,
        })
        .await?;
    Ok(l.path)
}

async fn warehouse(app: &App, code: &str, name: &str, city: &str, postal: &str, lat: f64, lon: f64) -> CliResult<()> {
    app.create_location(NewLocation {
        code: code.into(),
        parent: None,
        kind: LocationKind::Warehouse,
        name: Some(name.into()),
        address: Some(Address {
            line1: "Lagerstraße 1".into(),
            line2: None,
            city: city.into(),
            postal_code: postal.into(),
            region: None,
            country: "DE".into(),
        }),
        latitude: Some(lat),
        longitude: Some(lon),
        pick_sequence: None,
        sellable: None,
    })
    .await?;
    Ok(())
}

/// Loads the demo data into a database without products and warehouses; returns a summary, or `None` (and does
/// nothing) when the merchant's own data is there.
pub async fn load(app: &App) -> CliResult<Option<String>> {
    let one = PageRequest::parse(None, Some(1))?;
    let products = app.list_products(ProductFilter::default(), one).await?;
    let warehouses = app.list_locations(Some(LocationKind::Warehouse), None, one).await?;
    if !products.items.is_empty() || !warehouses.items.is_empty() {
        return Ok(None);
    }
    // WH1: two halls of four shelves with four bins each; WH2: one zone of three shelves.
    warehouse(app, "WH1", "Berlin main warehouse", "Berlin", "10115", 52.53, 13.38).await?;
    warehouse(app, "WH2", "Leipzig outlet store room", "Leipzig", "04109", 51.34, 12.37).await?;
    let mut bins = Vec::new();
    let mut seq = 0;
    for hall in ["HALL-1", "HALL-2"] {
        let h = location(app, hall, Some("WH1"), LocationKind::Zone, None).await?;
        for shelf in 1..=4 {
            let s = location(app, &format!("SHELF-{shelf}"), Some(&h), LocationKind::Shelf, None).await?;
            for rack in 1..=4 {
                seq += 10;
                bins.push(location(app, &format!("RACK-{rack}"), Some(&s), LocationKind::Bin, Some(seq)).await?);
            }
        }
    }
    let z = location(app, "ZONE-A", Some("WH2"), LocationKind::Zone, None).await?;
    for shelf in 1..=3 {
        let s = location(app, &format!("SHELF-{shelf}"), Some(&z), LocationKind::Shelf, None).await?;
        for b in 1..=4 {
            seq += 10;
            bins.push(location(app, &format!("BIN-{b}"), Some(&s), LocationKind::Bin, Some(seq)).await?);
        }
    }

    let mut rng = Lcg(0x5eed);
    let mut skus = Vec::new();
    for (title, code, category, vendor, cents, colors, sizes) in MODELS {
        let handle = domain::codes::handle_from_title(title);
        let mut variants = Vec::new();
        for (color, color_code) in &COLORS[..colors] {
            for size in &SIZES[..sizes] {
                let sku =
                    if sizes == 1 { format!("{code}-{color_code}") } else { format!("{code}-{color_code}-{size}") };
                skus.push(sku.clone());
                variants.push(NewVariant {
                    sku,
                    barcode: Some(format!("400{:010}", 1_000_000 + skus.len() as u64 * 7919)),
                    options: if sizes == 1 {
                        vec![color.to_string()]
                    } else {
                        vec![color.to_string(), size.to_string()]
                    },
                    price: Decimal::new(cents, 2),
                    compare_at_price: (rng.next(4) == 0).then(|| Decimal::new(cents + 1000, 2)),
                    currency: "EUR".into(),
                    cost: Some(Decimal::new(cents * 2 / 5, 2)),
                    weight_grams: Some(150 + rng.next(900) as i64),
                    length_mm: Some(300),
                    width_mm: Some(250),
                    height_mm: Some(20 + rng.next(60) as i64),
                    tracked: Some(true),
                    inventory_policy: match rng.next(6) {
                        0 => InventoryPolicy::Backorder,
                        1 => InventoryPolicy::Continue,
                        _ => InventoryPolicy::Deny,
                    },
                });
            }
        }
        app.create_product(NewProduct {
            handle: Some(handle.clone()),
            title: title.into(),
            description: format!("The {title} from {vendor}, in {colors} colors."),
            vendor: Some(vendor.into()),
            category: Some(category.into()),
            tags: vec!["demo".into(), vendor.to_lowercase().replace(' ', "-").replace('&', "and")],
            images: vec![format!("https://images.invalid/{handle}.jpg")],
            status: ProductStatus::Active,
            options: if sizes == 1 { vec!["Color".into()] } else { vec!["Color".into(), "Size".into()] },
            variants,
        })
        .await?;
    }

    // Receive stock: most SKUs in one or two bins, a few sold out, some damaged.
    let actor = Actor::new("demo");
    let mut lines = Vec::new();
    for sku in &skus {
        if rng.next(10) == 0 {
            continue;
        }
        let bin = &bins[rng.next(bins.len() as u64) as usize];
        lines.push(AdjustmentLine {
            sku: sku.clone(),
            location: bin.clone(),
            state: None,
            delta: Some(1 + rng.next(40) as i64),
            set: None,
            expected_on_hand: None,
            reason: Reason::Received,
            note: Some("demo delivery".into()),
        });
        if rng.next(3) == 0 {
            let other = &bins[rng.next(bins.len() as u64) as usize];
            if other != bin {
                lines.push(AdjustmentLine {
                    sku: sku.clone(),
                    location: other.clone(),
                    state: None,
                    delta: Some(1 + rng.next(12) as i64),
                    set: None,
                    expected_on_hand: None,
                    reason: Reason::Received,
                    note: None,
                });
            }
        }
    }
    let received = lines.len();
    for chunk in lines.chunks(domain::stock::MAX_LINES_PER_COMMAND) {
        app.adjust(AdjustmentRequest { lines: chunk.to_vec(), reference: Some("DEMO-PO-1".into()) }, actor.clone())
            .await?;
    }
    // A few units found damaged on arrival, moved aside into the damaged state.
    let mut moves = Vec::new();
    for l in lines.iter().step_by(17) {
        moves.push(MoveLineRequest {
            sku: l.sku.clone(),
            quantity: 1,
            from_location: l.location.clone(),
            to_location: None,
            from_state: None,
            to_state: Some(StockState::Damaged),
            reason: Some(Reason::Damaged),
            note: Some("box crushed".into()),
        });
    }
    let damaged = moves.len();
    app.move_stock(MoveRequest { lines: moves, reference: Some("DEMO-INSPECTION".into()) }, actor).await?;
    Ok(Some(format!(
        "{} products, {} variants, 2 warehouses with {} bins, {received} receipts, {damaged} damaged units",
        MODELS.len(),
        skus.len(),
        bins.len()
    )))
}
