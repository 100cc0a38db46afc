//! Forecasts on synthetic series of known level, trend, seasonality, intermittency and noise; explicit refusals;
//! and a property test that any series gives a sane forecast or says why not.

use super::synthetic::{Rng, Spec};
use super::*;
use proptest::prelude::*;

fn start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 1, 1).unwrap()
}

fn series(spec: Spec, days: usize, seed: u64) -> DemandSeries {
    DemandSeries::new(start(), spec.generate(start(), days, &mut Rng::new(seed))).unwrap()
}

fn close(got: f64, want: f64, rel: f64) -> bool {
    (got - want).abs() <= rel * want.abs()
}

const WEEKLY: [f64; 7] = [20.0, 10.0, 0.0, -5.0, -10.0, -15.0, 0.0];

#[test]
fn weekly_seasonal_series_is_forecast_by_holt_winters_with_small_error() {
    let spec = Spec { weekly: WEEKLY, ..Spec::smooth(100.0, 3.0) };
    let s = series(spec, 365, 1);
    let f = forecast(&s, &ForecastConfig::default()).unwrap();
    assert!(matches!(f.model, Model::HoltWinters { .. }), "{:?}", f.model);
    assert_eq!(f.class, DemandClass::Smooth);
    // Noise alone costs about 0.8 × 3 = 2.4 in MAE; the naive forecast pays for the weekday swings too.
    assert!(f.accuracy.mae < 4.0, "{:?}", f.accuracy);
    assert!(f.accuracy.mase.unwrap() < 0.5, "{:?}", f.accuracy);
    for k in 0..28 {
        let truth = spec.mean_at(start(), 365 + k);
        assert!((f.daily[k] - truth).abs() < 6.0, "day {k}: {} vs {truth}", f.daily[k]);
    }
    assert_eq!(f.first_day, NaiveDate::from_ymd_opt(2024, 12, 31).unwrap());
}

#[test]
fn trend_is_followed() {
    let spec = Spec { trend_per_day: 0.5, ..Spec::smooth(50.0, 2.0) };
    let s = series(spec, 200, 2);
    let f = forecast(&s, &ForecastConfig::default()).unwrap();
    assert!(f.model.has_trend(), "{:?}", f.model);
    for k in [0usize, 13, 29] {
        let truth = spec.mean_at(start(), 200 + k);
        assert!(close(f.daily[k], truth, 0.05), "day {k}: {} vs {truth}", f.daily[k]);
    }
    assert!(f.accuracy.bias.abs() < 2.0, "{:?}", f.accuracy);
}

#[test]
fn intermittent_series_selects_croston() {
    // A sale about one day in five, of about three units: mean demand 0.2 × 3 = 0.6 a day. One series' forecast
    // wanders with its recent sales, so the level is checked over several.
    let spec = Spec { occurrence: 0.2, ..Spec::smooth(3.0, 0.0) };
    let mut sum = 0.0;
    for seed in 0..10 {
        let f = forecast(&series(spec, 365, 30 + seed), &ForecastConfig::default()).unwrap();
        assert_eq!(f.class, DemandClass::Intermittent);
        assert!(f.model.is_intermittent(), "{:?}", f.model);
        // Croston forecasts are flat.
        assert!(f.daily.iter().all(|d| *d == f.daily[0]));
        sum += f.daily[0];
    }
    assert!(close(sum / 10.0, 0.6, 0.2), "{}", sum / 10.0);
}

#[test]
fn backtest_reports_the_true_error_of_known_noise() {
    // Level 100 with N(0, 10) noise: the best forecast is 100, so RMSE ≈ 10, MAE ≈ 10·√(2/π) ≈ 7.98, bias ≈ 0, and
    // MASE ≈ 7.98 / (2·10/√π ≈ 11.28) ≈ 0.707 against the one-day naive forecast.
    let s = series(Spec::smooth(100.0, 10.0), 730, 4);
    let cfg = ForecastConfig { backtest_folds: 60, ..ForecastConfig::default() };
    let f = forecast(&s, &cfg).unwrap();
    let a = f.accuracy;
    assert_eq!(a.origins, 60);
    assert!(close(a.rmse, 10.0, 0.12), "{a:?}");
    assert!(close(a.mae, 7.98, 0.12), "{a:?}");
    assert!(close(a.mase.unwrap(), 0.707, 0.15), "{a:?}");
    assert!(a.bias.abs() < 2.0, "{a:?}");
    assert!(close(f.sigma_daily, 10.0, 0.12), "{}", f.sigma_daily);
    assert!(close(f.daily[0], 100.0, 0.05), "{}", f.daily[0]);
}

#[test]
fn yearly_seasonality_is_used_with_two_years_of_history() {
    let spec = Spec { weekly: WEEKLY, yearly_amplitude: 40.0, ..Spec::smooth(100.0, 4.0) };
    let s = series(spec, 3 * 365, 5);
    // Over a fortnight Holt-Winters tracks a slow wave almost as well; the profile pays off over longer horizons.
    let cfg = ForecastConfig { backtest_horizon: 56, ..ForecastConfig::default() };
    let f = forecast(&s, &cfg).unwrap();
    assert!(matches!(f.model, Model::HoltWintersYearly { .. }), "{:?} {:?}", f.model, f.accuracy);
    // Over the next quarter the yearly wave moves demand by tens of units; the forecast follows it.
    let err: f64 = (0..90).map(|k| (f.daily[k] - spec.mean_at(start(), 3 * 365 + k)).abs()).sum::<f64>() / 90.0;
    assert!(err < 8.0, "mean abs error over 90 days {err}");
    // One year of history does not support a yearly profile.
    let f = forecast(&series(spec, 400, 5), &cfg).unwrap();
    assert!(!matches!(f.model, Model::HoltWintersYearly { .. }));
}

#[test]
fn stocked_out_days_do_not_read_as_low_demand() {
    let spec = Spec { stockout: 0.4, integer: true, ..Spec::smooth(10.0, 1.0) };
    let days = spec.generate(start(), 200, &mut Rng::new(6));
    let mut sales = Vec::new();
    let mut out = Vec::new();
    for (t, d) in days.iter().enumerate() {
        let day = start() + Duration::days(t as i64);
        match d {
            Some(q) => sales.push((day, *q as i64)),
            None => out.push(day),
        }
    }
    let end = start() + Duration::days(199);
    let honest = DemandSeries::from_sales(start(), end, &sales, &out).unwrap();
    assert_eq!(honest.observed_days(), 200 - out.len());
    let f = forecast(&honest, &ForecastConfig::default()).unwrap();
    assert!(close(f.daily[0], 10.0, 0.1), "{}", f.daily[0]);
    // Counting the empty shelf as no demand reads about 40% low.
    let naive = DemandSeries::from_sales(start(), end, &sales, &[]).unwrap();
    let g = forecast(&naive, &ForecastConfig::default()).unwrap();
    assert!(g.daily[0] < 8.0, "{}", g.daily[0]);
}

#[test]
fn too_little_history_is_said_not_guessed() {
    let cfg = ForecastConfig::default();
    let need = MIN_OBSERVED_DAYS + cfg.backtest_horizon;
    for days in [0, 1, 20, need - 1] {
        let s = series(Spec::smooth(5.0, 1.0), days, 7);
        assert_eq!(
            forecast(&s, &cfg),
            Err(ForecastError::NotEnoughHistory { observed: days, needed: need }),
            "{days} days"
        );
    }
    assert!(forecast(&series(Spec::smooth(5.0, 1.0), need, 7), &cfg).is_ok());
    // Long enough, but hardly ever in stock.
    let s = DemandSeries::new(start(), (0..100).map(|t| (t % 5 == 0).then_some(3.0)).collect()).unwrap();
    assert!(matches!(forecast(&s, &cfg), Err(ForecastError::NotEnoughHistory { observed: 20, .. })));
}

#[test]
fn an_item_that_never_sold_forecasts_a_true_zero() {
    let s = DemandSeries::new(start(), vec![Some(0.0); 60]).unwrap();
    let f = forecast(&s, &ForecastConfig::default()).unwrap();
    assert_eq!((f.model, f.class), (Model::NoDemand, DemandClass::None));
    assert!(f.daily.iter().all(|d| *d == 0.0));
    assert_eq!(f.accuracy.mase, None);
}

#[test]
fn bad_input_is_refused() {
    let day = NaiveDate::from_ymd_opt(2024, 1, 5).unwrap();
    assert!(matches!(DemandSeries::new(start(), vec![Some(-1.0)]), Err(ForecastError::BadDemand { .. })));
    assert!(matches!(DemandSeries::new(start(), vec![Some(f64::NAN)]), Err(ForecastError::BadDemand { .. })));
    assert_eq!(DemandSeries::from_sales(start(), start(), &[(day, 1)], &[]), Err(ForecastError::OutsideSeries { day }));
    assert_eq!(DemandSeries::from_sales(start(), day, &[(day, -2)], &[]), Err(ForecastError::BadDemand { day }));
    let s = series(Spec::smooth(5.0, 1.0), 100, 8);
    for cfg in [
        ForecastConfig { horizon: 0, ..ForecastConfig::default() },
        ForecastConfig { backtest_folds: 0, ..ForecastConfig::default() },
        ForecastConfig { intermittent_adi: f64::NAN, ..ForecastConfig::default() },
    ] {
        assert!(matches!(forecast(&s, &cfg), Err(ForecastError::BadConfig(_))));
    }
}

#[test]
fn sales_on_one_day_add_up() {
    let s = DemandSeries::from_sales(start(), start() + Duration::days(2), &[(start(), 2), (start(), 3)], &[]).unwrap();
    assert_eq!(s.days(), &[Some(5.0), Some(0.0), Some(0.0)]);
}

#[test]
fn demand_over_handles_fractions_and_the_tail() {
    let f = Forecast {
        model: Model::NoDemand,
        class: DemandClass::Smooth,
        first_day: start(),
        daily: vec![1.0, 2.0, 3.0],
        sigma_daily: 0.0,
        accuracy: Accuracy { mase: None, mae: 0.0, rmse: 0.0, bias: 0.0, errors: 0, origins: 0 },
    };
    assert_eq!(f.demand_over(2.5), 1.0 + 2.0 + 1.5);
    assert_eq!(f.tail_mean(), 2.0);
    assert_eq!(f.demand_over(5.0), 6.0 + 2.0 * 2.0);
    assert_eq!(f.demand_over(-1.0), 0.0);
}

#[test]
fn side_by_side_grid_search_gives_each_model_its_own_error() {
    let spec = Spec { weekly: WEEKLY, stockout: 0.1, ..Spec::smooth(40.0, 5.0) };
    let y: Vec<f64> =
        spec.generate(start(), 200, &mut Rng::new(9)).into_iter().map(|d| d.unwrap_or(f64::NAN)).collect();
    for family in [Family::Ses, Family::Holt, Family::HoltWinters, Family::Croston, Family::Sba] {
        let grid = family.grid();
        let together = grid_sse(&grid, &y, 150, None);
        assert_eq!(together.len(), grid.len());
        for (m, sse) in grid.iter().zip(together) {
            // Alone, the model's lane sweeps beside copies of itself: neighbours must not leak into its error.
            assert_eq!(sse, grid_sse(&[*m], &y, 150, None)[0], "{m:?}");
            // And by hand: the model's one-step errors after the warm-up.
            let mut st = init(*m, &y, 150);
            let mut want = 0.0;
            for (t, &v) in y[..150].iter().enumerate() {
                if t >= 14 && !v.is_nan() {
                    want += (st.forecast(*m, t, 1, None) - v).powi(2);
                }
                st.step(*m, t, v, None);
            }
            assert_eq!(sse, want, "{m:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_series_gives_a_sane_forecast_or_says_why_not(
        days in prop::collection::vec(prop::option::weighted(0.8, 0u32..50), 0..160),
        horizon in 1usize..60,
    ) {
        let s = DemandSeries::new(start(), days.iter().map(|d| d.map(f64::from)).collect()).unwrap();
        let cfg = ForecastConfig { horizon, ..ForecastConfig::default() };
        match forecast(&s, &cfg) {
            Ok(f) => {
                prop_assert_eq!(f.daily.len(), horizon);
                prop_assert!(f.daily.iter().all(|d| d.is_finite() && *d >= 0.0));
                prop_assert!(f.sigma_daily.is_finite() && f.sigma_daily >= 0.0);
                prop_assert!(f.accuracy.mae.is_finite() && f.accuracy.bias.is_finite());
                prop_assert!(f.accuracy.errors > 0);
            }
            Err(ForecastError::NotEnoughHistory { observed, .. }) => prop_assert_eq!(observed, s.observed_days()),
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
        }
    }
}
