//! Benchmark of the replenishment pipeline: forecast, backtest and order suggestion for 100,000 synthetic items with
//! two years of daily history each. Run with `cargo bench -p stockroom-domain --bench forecast` (add an item count
//! to run fewer: `-- 10000`). Prints total time, items per second and peak memory (VmHWM).

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use stockroom_domain::forecast::synthetic::{Rng, Spec};
use stockroom_domain::forecast::{forecast, DemandSeries, ForecastConfig, ForecastError};
use stockroom_domain::replenishment::{
    classify, decide_alerts, plan, velocities, AlertState, HealthRules, LeadTime, OrderPolicy, Position,
};

const DAYS: usize = 730;
const SEED: u64 = 0x5EED_F0CA_0057;

/// What one worker saw; merged at the end so that the work cannot be optimised away and the mix is visible.
#[derive(Default)]
struct Tally {
    items: usize,
    not_enough: usize,
    by_model: BTreeMap<&'static str, usize>,
    mase_sum: f64,
    mase_n: usize,
    ordered_units: i64,
    orders: usize,
    alerts: usize,
    unhealthy: usize,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.items += o.items;
        self.not_enough += o.not_enough;
        for (k, v) in o.by_model {
            *self.by_model.entry(k).or_default() += v;
        }
        self.mase_sum += o.mase_sum;
        self.mase_n += o.mase_n;
        self.ordered_units += o.ordered_units;
        self.orders += o.orders;
        self.alerts += o.alerts;
        self.unhealthy += o.unhealthy;
    }
}

/// A deterministic mix: 40% smooth, 20% trending, 20% weekly + yearly seasonal, 20% intermittent, with some
/// stocked-out days everywhere and a few items new enough to have too little history.
fn spec(item: usize, rng: &mut Rng) -> (Spec, usize) {
    let level = 2.0 + rng.uniform() * 60.0;
    let mut s = Spec { integer: true, stockout: 0.02, ..Spec::smooth(level, level.sqrt()) };
    match item % 10 {
        0..=3 => {}
        4 | 5 => s.trend_per_day = (rng.uniform() - 0.3) * level / 365.0,
        6 | 7 => {
            for w in s.weekly.iter_mut() {
                *w = (rng.uniform() - 0.5) * level * 0.6;
            }
            s.yearly_amplitude = level * 0.4 * rng.uniform();
        }
        _ => {
            s.occurrence = 0.05 + rng.uniform() * 0.3;
            s.level = 1.0 + rng.uniform() * 4.0;
        }
    }
    let days = match item % 97 {
        0 => 30,
        _ => DAYS,
    };
    (s, days)
}

fn run(items: std::ops::Range<usize>) -> Tally {
    let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let cfg = ForecastConfig::default();
    let lead = LeadTime { mean_days: 10.0, sd_days: 3.0 };
    let policy = OrderPolicy {
        min_order_qty: 24,
        pack_size: 6,
        review_days: 14.0,
        holding_cost_per_unit_year: Some(Decimal::new(250, 2)),
        ordering_cost: Some(Decimal::from(40)),
    };
    let rules = HealthRules { dead_after_days: 90, overstock_cover_days: 180.0 };
    let mut t = Tally::default();
    for item in items {
        let mut rng = Rng::new(SEED ^ (item as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let (spec, days) = spec(item, &mut rng);
        let series = DemandSeries::new(start, spec.generate(start, days, &mut rng)).expect("synthetic demand is valid");
        t.items += 1;
        let v = velocities(&series);
        let f = match forecast(&series, &cfg) {
            Ok(f) => f,
            Err(ForecastError::NotEnoughHistory { .. }) => {
                t.not_enough += 1;
                continue;
            }
            Err(e) => panic!("item {item}: {e}"),
        };
        *t.by_model.entry(f.model.name()).or_default() += 1;
        if let Some(m) = f.accuracy.mase {
            t.mase_sum += m;
            t.mase_n += 1;
        }
        let daily = v[1].per_day.unwrap_or(0.0);
        let on_hand = (daily * (rng.uniform() * 60.0)) as i64;
        let position = Position { on_hand, on_order: 0, committed: (on_hand as f64 * 0.1) as i64 };
        let p = plan(&f, position, &[], lead, 0.95, &policy).expect("valid policy");
        if p.suggested_quantity > 0 {
            t.orders += 1;
            t.ordered_units += p.suggested_quantity;
        }
        let (alerts, _) = decide_alerts(AlertState::default(), &p, series.next_day(), 10);
        t.alerts += alerts.len();
        let value = Decimal::from(on_hand) * Decimal::new(1250, 2);
        let health =
            classify(series.next_day(), on_hand, value, Some(series.next_day()), Some(start), f.tail_mean(), rules);
        if !matches!(health, stockroom_domain::replenishment::StockHealth::Healthy) {
            t.unhealthy += 1;
        }
    }
    t
}

fn vm_hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l["VmHWM:".len()..].trim().to_string()))
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    // `cargo bench` passes `--bench`; the first plain number, if any, is the item count.
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(100_000);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(n.max(1));
    let began = Instant::now();
    let chunk = n.div_ceil(threads);
    let mut total = Tally::default();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads).map(|i| s.spawn(move || run(i * chunk..((i + 1) * chunk).min(n)))).collect();
        for w in workers {
            total.merge(w.join().expect("worker panicked"));
        }
    });
    let secs = began.elapsed().as_secs_f64();
    println!("items: {} ({} days of history each, {threads} threads)", total.items, DAYS);
    println!("total time: {secs:.2} s");
    println!("items per second: {:.0}", total.items as f64 / secs);
    println!("peak memory (VmHWM): {}", vm_hwm());
    println!("not enough history: {}", total.not_enough);
    println!("models chosen: {:?}", total.by_model);
    println!("mean backtest MASE: {:.3}", total.mase_sum / total.mase_n.max(1) as f64);
    println!(
        "orders suggested: {} ({} units), alerts: {}, overstock/dead/empty: {}",
        total.orders, total.ordered_units, total.alerts, total.unhealthy
    );
}
