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
    app.move_stock(MoveRequest { lines: moves, reference: Some("DEMO-INSPECTION".into()) }, actor.clone()).await?;
    let in_stock: Vec<String> = lines.iter().map(|l| l.sku.clone()).collect();
    let orders = business(app, &in_stock, &skus, &mut rng, actor).await?;
    Ok(Some(format!(
        "{} products, {} variants, 2 warehouses with {} bins, {received} receipts, {damaged} damaged units, \
         2 channels, {orders} orders, a supplier with an open purchase order",
        MODELS.len(),
        skus.len(),
        bins.len()
    )))
}

/// Built from JSON like an API body, so that the demo cannot drift from what the API accepts.
fn body<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> CliResult<T> {
    serde_json::from_value(v).map_err(|e| crate::error::CliError(format!("demo data does not fit the API: {e}")))
}

/// A day of trading on top of the stock: two channels, orders in every state a floor sees (waiting to be picked,
/// paid and shipped, one waiting for stock), and a supplier with a purchase order on its way. Returns the orders.
async fn business(app: &App, in_stock: &[String], skus: &[String], rng: &mut Lcg, actor: Actor) -> CliResult<usize> {
    use serde_json::json;
    app.create_channel(body(json!({"code": "webshop-de", "name": "Webshop DE", "market_country": "DE",
        "currency": "EUR", "warehouses": ["WH1", "WH2"]}))?)
        .await?;
    app.create_channel(body(json!({"code": "pos-leipzig", "name": "Leipzig store", "market_country": "DE",
        "currency": "EUR", "warehouses": ["WH2"]}))?)
        .await?;
    let tees: Vec<&String> = skus.iter().filter(|s| s.starts_with("TEE-")).take(8).collect();
    let supplier = app
        .create_supplier(body(json!({"name": "Northwind Textiles", "currency": "EUR", "lead_time_days": 14,
            "contact": {"name": "Ana Weber", "email": "orders@northwind.invalid"},
            "items": tees.iter().map(|sku| json!({"sku": sku, "unit_cost": "7.20", "min_order_quantity": 12,
                "pack_size": 6})).collect::<Vec<_>>()}))?)
        .await?;
    app.create_purchase_order(
        body(json!({"supplier_id": supplier.id, "warehouse": "WH1", "order": true,
            "lines": tees.iter().take(3).map(|sku| json!({"sku": sku, "quantity": 24})).collect::<Vec<_>>()}))?,
        actor.clone(),
    )
    .await?;

    const NAMES: [&str; 8] = [
        "Mia Schulz",
        "Noah Becker",
        "Emma Wolf",
        "Leon Hoffmann",
        "Lina Braun",
        "Paul Krüger",
        "Hanna Lang",
        "Ben Roth",
    ];
    let mut placed = 0;
    for n in 0..30u64 {
        let source = ["webshop-de", "webshop-de", "phone", "pos-leipzig"][rng.next(4) as usize];
        let name = NAMES[rng.next(NAMES.len() as u64) as usize];
        let lines: Vec<serde_json::Value> = (0..1 + rng.next(3))
            .map(|_| json!({"sku": in_stock[rng.next(in_stock.len() as u64) as usize], "quantity": 1 + rng.next(2)}))
            .collect();
        let email = format!("{}@example.invalid", name.to_lowercase().replace(' ', ".").replace('ü', "ue"));
        let order = body(json!({"source": source, "external_number": format!("DEMO-{}", 1001 + n),
            "currency": "EUR", "customer": {"name": name, "email": email}, "lines": lines}))?;
        let (order, _) = match app.place_order(order, format!("demo-{n}"), actor.clone()).await {
            Ok(o) => o,
            // A store order for a bin another channel does not sell from, say: the demo goes on without it.
            Err(e) => {
                tracing::debug!(error = %e, "demo order skipped");
                continue;
            }
        };
        placed += 1;
        if n % 3 == 2 {
            continue; // reserved, not paid yet
        }
        let pay = body(json!({"kind": "capture", "amount": order.total, "currency": "EUR",
            "reference": format!("psp_demo_{n}")}))?;
        app.pay(order.id, pay, actor.clone()).await?;
        if n % 3 == 0 && order.lines.iter().all(|l| l.backordered == 0 && l.oversold == 0) {
            let ship = body(json!({"carrier": "DHL", "tracking_number": format!("00340434{:010}", 7_000_000 + n)}))?;
            app.ship(order.id, ship, actor.clone()).await?;
        }
    }
    // One order for more than there is: it waits for the purchase order.
    if let Some(sku) = tees.first() {
        let order = body(json!({"source": "webshop-de", "external_number": "DEMO-2001", "currency": "EUR",
            "customer": {"name": "Greta Vogel", "email": "greta.vogel@example.invalid"},
            "lines": [{"sku": sku, "quantity": 60}]}))?;
        if app.place_order(order, "demo-backorder".into(), actor).await.is_ok() {
            placed += 1;
        }
    }
    Ok(placed)
}
