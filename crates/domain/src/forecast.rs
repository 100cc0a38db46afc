//! Daily demand forecasting per item: the demand series (stocked-out days left out), the candidate models, their
//! parameters fitted by grid search, the model chosen by rolling-origin backtest, and its accuracy (MASE, bias).
//!
//! How it decides, so that a buyer can trust (or question) a number:
//!
//! - **Stocked-out days are unknown, not zero.** A day the item could not be sold says nothing about demand, so it
//!   is a gap. Smoothing models step over a gap as if the day had sold exactly what they forecast (their state
//!   advances, nothing is learned); Croston does not count the day in its interval; errors skip it.
//! - **Candidates by demand class.** A series whose average interval between sales days (ADI) is at least
//!   [`ForecastConfig::intermittent_adi`] (1.32, Syntetos–Boylan) is intermittent: its candidates are Croston and
//!   SBA (Croston with the Syntetos–Boylan bias correction). Other series try simple exponential smoothing, Holt
//!   (additive trend), Holt-Winters (additive trend and weekly seasonality), and — when the item has at least two
//!   years of history — Holt-Winters on the series with a yearly profile taken out (see below). A series that never
//!   sold gets [`Model::NoDemand`]: a true zero, not a guess.
//! - **Yearly seasonality** is an additive profile of 52 weekly buckets: the series is detrended by a straight
//!   line, residuals are averaged per week of the year, smoothed over neighbouring weeks and centred on zero. The
//!   model fits Holt-Winters to the series minus the profile and adds the profile back to its forecasts. In the
//!   backtest the profile comes from the training part only.
//! - **Parameters** are chosen per model by a small grid search minimising the one-step squared error on the
//!   training part (everything before the first backtest origin).
//! - **Backtest**: origins every [`ForecastConfig::fold_step`] days, the last one [`ForecastConfig::backtest_horizon`]
//!   days before the end; at each origin the model (parameters fixed, state updated with the data up to the
//!   origin) forecasts the next `backtest_horizon` days. The model with the lowest mean absolute error wins
//!   (ties go to the simpler model). Accuracy is that winner's backtest: MASE (MAE scaled by the in-sample MAE of
//!   the one-day naive forecast on the training part) and bias (mean of forecast − actual; positive means the
//!   forecast runs high).
//! - **Too little history** (fewer than [`MIN_OBSERVED_DAYS`] known days before the backtest, or not room for one
//!   backtest window) is [`ForecastError::NotEnoughHistory`], never a number.
//!
//! Forecasts are clamped at zero: demand is never negative.

use chrono::{Datelike, Duration, NaiveDate};
use serde::{Deserialize, Serialize};

pub mod synthetic;

/// Fewest known (not stocked-out) days the training part must hold for any model.
pub const MIN_OBSERVED_DAYS: usize = 28;
/// Length of history from which a yearly profile is a candidate.
pub const YEARLY_MIN_DAYS: usize = 728;
/// Longest series and horizon accepted: ten years of days, far beyond any use and far from overflow.
pub const MAX_DAYS: usize = 3_660;
const WEEK: usize = 7;
const YEAR_BUCKETS: usize = 52;

/// Days of demand for one item, from `start`; `None` marks a day the item was out of stock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemandSeries {
    start: NaiveDate,
    days: Vec<Option<f64>>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize)]
pub enum ForecastError {
    #[error("not enough history: {observed} known days, {needed} needed")]
    NotEnoughHistory { observed: usize, needed: usize },
    #[error("demand must be a finite, non-negative number (day {day})")]
    BadDemand { day: NaiveDate },
    #[error("sale on {day} lies outside the series")]
    OutsideSeries { day: NaiveDate },
    #[error("the series may hold at most {MAX_DAYS} days")]
    TooLong,
    #[error("bad configuration: {0}")]
    BadConfig(&'static str),
}

impl DemandSeries {
    /// A series from one value per day. Values must be finite and non-negative.
    pub fn new(start: NaiveDate, days: Vec<Option<f64>>) -> Result<Self, ForecastError> {
        if days.len() > MAX_DAYS {
            return Err(ForecastError::TooLong);
        }
        for (i, d) in days.iter().enumerate() {
            if let Some(v) = d {
                if !v.is_finite() || *v < 0.0 {
                    return Err(ForecastError::BadDemand { day: start + Duration::days(i as i64) });
                }
            }
        }
        Ok(Self { start, days })
    }

    /// The series of `start..=end` from individual sales (several per day add up) and the days the item was out of
    /// stock. A day out of stock for any part of it is left out: its sales are censored and would read low.
    pub fn from_sales(
        start: NaiveDate,
        end: NaiveDate,
        sales: &[(NaiveDate, i64)],
        stocked_out: &[NaiveDate],
    ) -> Result<Self, ForecastError> {
        if end < start {
            return Err(ForecastError::BadConfig("end is before start"));
        }
        let n = (end - start).num_days() as usize + 1;
        if n > MAX_DAYS {
            return Err(ForecastError::TooLong);
        }
        let mut days = vec![Some(0.0); n];
        for &(day, q) in sales {
            if day < start || day > end {
                return Err(ForecastError::OutsideSeries { day });
            }
            if q < 0 {
                return Err(ForecastError::BadDemand { day });
            }
            let i = (day - start).num_days() as usize;
            days[i] = days[i].map(|v| v + q as f64);
        }
        for &day in stocked_out {
            if day >= start && day <= end {
                days[(day - start).num_days() as usize] = None;
            }
        }
        Ok(Self { start, days })
    }

    pub fn start(&self) -> NaiveDate {
        self.start
    }
    pub fn len(&self) -> usize {
        self.days.len()
    }
    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }
    pub fn days(&self) -> &[Option<f64>] {
        &self.days
    }
    /// The day after the last one: where a forecast starts.
    pub fn next_day(&self) -> NaiveDate {
        self.start + Duration::days(self.days.len() as i64)
    }
    pub fn observed_days(&self) -> usize {
        self.days.iter().filter(|d| d.is_some()).count()
    }
}

/// A forecasting model with its fitted parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum Model {
    Ses { alpha: f64 },
    Holt { alpha: f64, beta: f64 },
    HoltWinters { alpha: f64, beta: f64, gamma: f64 },
    HoltWintersYearly { alpha: f64, beta: f64, gamma: f64 },
    Croston { alpha: f64 },
    Sba { alpha: f64 },
    NoDemand,
}

impl Model {
    pub fn name(&self) -> &'static str {
        match self {
            Model::Ses { .. } => "ses",
            Model::Holt { .. } => "holt",
            Model::HoltWinters { .. } => "holt_winters",
            Model::HoltWintersYearly { .. } => "holt_winters_yearly",
            Model::Croston { .. } => "croston",
            Model::Sba { .. } => "sba",
            Model::NoDemand => "no_demand",
        }
    }
    pub fn has_trend(&self) -> bool {
        matches!(self, Model::Holt { .. } | Model::HoltWinters { .. } | Model::HoltWintersYearly { .. })
    }
    pub fn is_intermittent(&self) -> bool {
        matches!(self, Model::Croston { .. } | Model::Sba { .. })
    }
    fn family(&self) -> Family {
        match self {
            Model::Ses { .. } => Family::Ses,
            Model::Holt { .. } => Family::Holt,
            Model::HoltWinters { .. } => Family::HoltWinters,
            Model::HoltWintersYearly { .. } => Family::HoltWintersYearly,
            Model::Croston { .. } => Family::Croston,
            Model::Sba { .. } => Family::Sba,
            Model::NoDemand => Family::NoDemand,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Ses,
    Holt,
    HoltWinters,
    HoltWintersYearly,
    Croston,
    Sba,
    NoDemand,
}

const ALPHAS_SES: [f64; 7] = [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8];
const ALPHAS_TREND: [f64; 4] = [0.05, 0.1, 0.2, 0.4];
const BETAS: [f64; 4] = [0.005, 0.02, 0.05, 0.1];
const BETAS_HW: [f64; 3] = [0.005, 0.02, 0.08];
const GAMMAS: [f64; 3] = [0.05, 0.1, 0.2];
const ALPHAS_CROSTON: [f64; 4] = [0.05, 0.1, 0.2, 0.3];

impl Family {
    /// Parameter sets the grid search tries.
    fn grid(self) -> Vec<Model> {
        match self {
            Family::Ses => ALPHAS_SES.iter().map(|&alpha| Model::Ses { alpha }).collect(),
            Family::Holt => ALPHAS_TREND
                .iter()
                .flat_map(|&alpha| BETAS.iter().map(move |&beta| Model::Holt { alpha, beta }))
                .collect(),
            Family::HoltWinters | Family::HoltWintersYearly => {
                let yearly = self == Family::HoltWintersYearly;
                let mut v = Vec::new();
                for &alpha in &ALPHAS_TREND {
                    for &beta in &BETAS_HW {
                        for &gamma in &GAMMAS {
                            v.push(if yearly {
                                Model::HoltWintersYearly { alpha, beta, gamma }
                            } else {
                                Model::HoltWinters { alpha, beta, gamma }
                            });
                        }
                    }
                }
                v
            }
            Family::Croston => ALPHAS_CROSTON.iter().map(|&alpha| Model::Croston { alpha }).collect(),
            Family::Sba => ALPHAS_CROSTON.iter().map(|&alpha| Model::Sba { alpha }).collect(),
            Family::NoDemand => vec![Model::NoDemand],
        }
    }
}

/// How the forecast is built and judged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ForecastConfig {
    /// Days to forecast after the series ends.
    pub horizon: usize,
    /// Days each backtest origin forecasts.
    pub backtest_horizon: usize,
    /// Most backtest origins; fewer are used when the history is short (at least one).
    pub backtest_folds: usize,
    /// Days between backtest origins.
    pub fold_step: usize,
    /// Average interval between sales days from which a series counts as intermittent.
    pub intermittent_adi: f64,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        Self { horizon: 90, backtest_horizon: 28, backtest_folds: 8, fold_step: 7, intermittent_adi: 1.32 }
    }
}

impl ForecastConfig {
    fn validate(&self) -> Result<(), ForecastError> {
        if self.horizon == 0 || self.horizon > MAX_DAYS {
            return Err(ForecastError::BadConfig("horizon must be 1 to 3660 days"));
        }
        if self.backtest_horizon == 0 || self.backtest_horizon > 365 {
            return Err(ForecastError::BadConfig("backtest_horizon must be 1 to 365 days"));
        }
        if self.backtest_folds == 0 || self.backtest_folds > 520 || self.fold_step == 0 || self.fold_step > 365 {
            return Err(ForecastError::BadConfig("backtest_folds must be 1 to 520 and fold_step 1 to 365"));
        }
        if !(self.intermittent_adi.is_finite() && self.intermittent_adi >= 1.0) {
            return Err(ForecastError::BadConfig("intermittent_adi must be at least 1"));
        }
        Ok(())
    }
}

/// Whether demand comes most days or in rare lumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DemandClass {
    Smooth,
    Intermittent,
    None,
}

/// How well the chosen model did in its backtest.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Mean absolute scaled error; `None` when the training part never changed (the naive scale is zero).
    pub mase: Option<f64>,
    pub mae: f64,
    pub rmse: f64,
    /// Mean of forecast − actual: positive runs high, negative runs low.
    pub bias: f64,
    /// Errors the backtest measured (known days inside its windows).
    pub errors: usize,
    pub origins: usize,
}

/// A forecast for the days after the series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    pub model: Model,
    pub class: DemandClass,
    /// First forecast day: the day after the series ends.
    pub first_day: NaiveDate,
    /// Forecast demand per day from `first_day`, never negative.
    pub daily: Vec<f64>,
    /// Root mean square of one-day forecast errors over the whole history (after the warm-up): the daily demand
    /// uncertainty that safety stock covers.
    pub sigma_daily: f64,
    pub accuracy: Accuracy,
}

impl Forecast {
    /// Forecast demand over the next `days` (fractional days take that share of the next day; beyond the horizon
    /// the mean of the horizon's last four weeks continues).
    pub fn demand_over(&self, days: f64) -> f64 {
        if days <= 0.0 || !days.is_finite() {
            return 0.0;
        }
        let whole = days.floor() as usize;
        let frac = days - whole as f64;
        let tail = self.tail_mean();
        let at = |i: usize| self.daily.get(i).copied().unwrap_or(tail);
        let mut sum: f64 = self.daily.iter().take(whole).sum();
        if whole > self.daily.len() {
            sum += tail * (whole - self.daily.len()) as f64;
        }
        sum + frac * at(whole)
    }

    /// Mean daily demand at the end of the horizon, used past it.
    pub fn tail_mean(&self) -> f64 {
        let n = self.daily.len().min(28);
        if n == 0 {
            return 0.0;
        }
        self.daily[self.daily.len() - n..].iter().sum::<f64>() / n as f64
    }
}

/// The smoothing state of one model after some days.
#[derive(Debug, Clone, Copy)]
struct State {
    level: f64,
    trend: f64,
    season: [f64; WEEK],
    /// Croston: smoothed demand size, smoothed interval, days since the last sale.
    size: f64,
    interval: f64,
    since: f64,
}

fn mean(it: impl Iterator<Item = f64>) -> Option<f64> {
    let (s, n) = it.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| s / n as f64)
}

/// Values in `from..to` that are known.
fn known(y: &[f64], from: usize, to: usize) -> impl Iterator<Item = f64> + '_ {
    y[from.min(y.len())..to.min(y.len())].iter().copied().filter(|v| !v.is_nan())
}

/// Average interval between sales days over the known days of `y[..end]`; infinite when it never sold.
fn adi(y: &[f64], end: usize) -> f64 {
    let observed = known(y, 0, end).count();
    let sales = known(y, 0, end).filter(|v| *v > 0.0).count();
    if sales == 0 {
        f64::INFINITY
    } else {
        observed as f64 / sales as f64
    }
}

/// Starting state from the first weeks of the training part.
fn init(model: Model, y: &[f64], train_end: usize) -> State {
    let first = mean(known(y, 0, WEEK)).or_else(|| mean(known(y, 0, train_end))).unwrap_or(0.0);
    let week2 = mean(known(y, WEEK, 2 * WEEK));
    let trend = week2.map(|w| (w - first) / WEEK as f64).unwrap_or(0.0);
    let mut s = State { level: first, trend: 0.0, season: [0.0; WEEK], size: 0.0, interval: 1.0, since: 1.0 };
    match model.family() {
        Family::Ses | Family::NoDemand => {}
        Family::Holt => s.trend = trend,
        Family::HoltWinters | Family::HoltWintersYearly => {
            let span = (4 * WEEK).min(train_end);
            let base = mean(known(y, 0, span)).unwrap_or(0.0);
            for (j, slot) in s.season.iter_mut().enumerate() {
                *slot = mean((j..span).step_by(WEEK).map(|t| y[t]).filter(|v| !v.is_nan())).map_or(0.0, |m| m - base);
            }
            let c = s.season.iter().sum::<f64>() / WEEK as f64;
            s.season.iter_mut().for_each(|v| *v -= c);
            s.level = mean((0..WEEK.min(train_end)).filter(|&t| !y[t].is_nan()).map(|t| y[t] - s.season[t % WEEK]))
                .unwrap_or(base);
            s.trend = trend;
        }
        Family::Croston | Family::Sba => {
            s.size = mean(known(y, 0, train_end).filter(|v| *v > 0.0)).unwrap_or(0.0);
            s.interval = adi(y, train_end).min(train_end.max(1) as f64);
        }
    }
    s
}

impl State {
    /// Forecast for `k` days (1-based) after day index `t - 1`, i.e. of day `t + k - 1`.
    #[inline]
    fn forecast(&self, model: Model, t: usize, k: usize, yearly: Option<&[f64]>) -> f64 {
        let f = match model {
            Model::Ses { .. } => self.level,
            Model::Holt { .. } => self.level + k as f64 * self.trend,
            Model::HoltWinters { .. } => self.level + k as f64 * self.trend + self.season[(t + k - 1) % WEEK],
            Model::HoltWintersYearly { .. } => {
                self.level
                    + k as f64 * self.trend
                    + self.season[(t + k - 1) % WEEK]
                    + yearly.map_or(0.0, |p| p[t + k - 1])
            }
            Model::Croston { .. } => self.size / self.interval,
            Model::Sba { alpha } => (1.0 - alpha / 2.0) * self.size / self.interval,
            Model::NoDemand => 0.0,
        };
        f.max(0.0)
    }

    /// Learns day `t` (NaN when unknown).
    #[inline]
    fn step(&mut self, model: Model, t: usize, y: f64, yearly: Option<&[f64]>) {
        match model {
            Model::Ses { alpha } => {
                if !y.is_nan() {
                    self.level += alpha * (y - self.level);
                }
            }
            Model::Holt { alpha, beta } => {
                let prev = self.level;
                let expected = self.level + self.trend;
                self.level = if y.is_nan() { expected } else { expected + alpha * (y - expected) };
                self.trend += if y.is_nan() { 0.0 } else { beta * (self.level - prev - self.trend) };
            }
            Model::HoltWinters { alpha, beta, gamma } | Model::HoltWintersYearly { alpha, beta, gamma } => {
                if y.is_nan() {
                    self.level += self.trend;
                    return;
                }
                let y = match (model, yearly) {
                    (Model::HoltWintersYearly { .. }, Some(p)) => y - p[t],
                    _ => y,
                };
                let j = t % WEEK;
                let prev = self.level;
                self.level = alpha * (y - self.season[j]) + (1.0 - alpha) * (prev + self.trend);
                self.trend = beta * (self.level - prev) + (1.0 - beta) * self.trend;
                self.season[j] = gamma * (y - self.level) + (1.0 - gamma) * self.season[j];
            }
            Model::Croston { alpha } | Model::Sba { alpha } => {
                if y.is_nan() {
                    return;
                }
                if y > 0.0 {
                    self.size += alpha * (y - self.size);
                    self.interval += alpha * (self.since - self.interval);
                    self.since = 1.0;
                } else {
                    self.since += 1.0;
                }
            }
            Model::NoDemand => {}
        }
    }
}

/// Accumulates forecast errors (forecast − actual).
#[derive(Debug, Clone, Copy, Default)]
struct Errors {
    abs: f64,
    sq: f64,
    sum: f64,
    n: usize,
}

impl Errors {
    #[inline]
    fn add(&mut self, e: f64) {
        self.abs += e.abs();
        self.sq += e * e;
        self.sum += e;
        self.n += 1;
    }
    fn mae(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.abs / self.n as f64
        }
    }
}

/// What one pass of a model over the series measured.
struct Pass {
    /// One-step errors over the whole series after the warm-up.
    all: Errors,
    /// Multi-step errors at the backtest origins.
    backtest: Errors,
    end: State,
}

/// Runs `model` over `y[..stop]`, measuring one-step errors and, at each origin, `h`-day forecasts.
fn pass(
    model: Model,
    y: &[f64],
    stop: usize,
    train_end: usize,
    origins: &[usize],
    h: usize,
    yearly: Option<&[f64]>,
) -> Pass {
    let mut s = init(model, y, train_end);
    let warmup = 2 * WEEK;
    let (mut all, mut backtest) = (Errors::default(), Errors::default());
    let mut next_origin = 0;
    for (t, &v) in y[..stop].iter().enumerate() {
        if next_origin < origins.len() && origins[next_origin] == t {
            next_origin += 1;
            for k in 1..=h.min(y.len() - t) {
                let a = y[t + k - 1];
                if !a.is_nan() {
                    backtest.add(s.forecast(model, t, k, yearly) - a);
                }
            }
        }
        if t >= warmup && !v.is_nan() {
            all.add(s.forecast(model, t, 1, yearly) - v);
        }
        s.step(model, t, v, yearly);
    }
    Pass { all, backtest, end: s }
}

/// Parameter sets evaluated side by side in one sweep of the series.
const LANES: usize = 4;

/// One-step squared error on `y[..train_end]` (after the warm-up) for each model of `grid`: the grid search
/// criterion. Runs [`LANES`] models per sweep: each model's update is a chain of dependent arithmetic, and
/// independent chains side by side let the processor overlap them instead of waiting on each.
fn grid_sse(grid: &[Model], y: &[f64], train_end: usize, yearly: Option<&[f64]>) -> Vec<f64> {
    let warmup = 2 * WEEK;
    let mut out = Vec::with_capacity(grid.len());
    for chunk in grid.chunks(LANES) {
        let models: [Model; LANES] = std::array::from_fn(|i| chunk[i.min(chunk.len() - 1)]);
        let mut states = models.map(|m| init(m, y, train_end));
        let mut sse = [0.0; LANES];
        for (t, &v) in y[..train_end].iter().enumerate() {
            for i in 0..LANES {
                if t >= warmup && !v.is_nan() {
                    let e = states[i].forecast(models[i], t, 1, yearly) - v;
                    sse[i] += e * e;
                }
                states[i].step(models[i], t, v, yearly);
            }
        }
        out.extend_from_slice(&sse[..chunk.len()]);
    }
    out
}

/// The additive yearly profile per day index `0..len`, estimated from the known days of `y[..fit_end]`; `None` when
/// some week of the year has no known day there.
fn yearly_profile(start: NaiveDate, y: &[f64], fit_end: usize, len: usize) -> Option<Vec<f64>> {
    let bucket = |t: usize| {
        let d = start + Duration::days(t as i64);
        (d.ordinal0() as usize / WEEK).min(YEAR_BUCKETS - 1)
    };
    // Least-squares line through the known days, so that growth does not read as a season.
    let pts = || (0..fit_end).filter(|&t| !y[t].is_nan()).map(|t| (t as f64, y[t]));
    let n = pts().count() as f64;
    if n < 2.0 {
        return None;
    }
    let (mx, my) = (pts().map(|p| p.0).sum::<f64>() / n, pts().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = pts().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let mut sum = [0.0; YEAR_BUCKETS];
    let mut count = [0usize; YEAR_BUCKETS];
    for (t, v) in pts() {
        let b = bucket(t as usize);
        sum[b] += v - (my + slope * (t - mx));
        count[b] += 1;
    }
    if count.contains(&0) {
        return None;
    }
    let raw: Vec<f64> = (0..YEAR_BUCKETS).map(|b| sum[b] / count[b] as f64).collect();
    let mut smooth: Vec<f64> = (0..YEAR_BUCKETS)
        .map(|b| (raw[(b + YEAR_BUCKETS - 1) % YEAR_BUCKETS] + 2.0 * raw[b] + raw[(b + 1) % YEAR_BUCKETS]) / 4.0)
        .collect();
    let c = smooth.iter().sum::<f64>() / YEAR_BUCKETS as f64;
    smooth.iter_mut().for_each(|v| *v -= c);
    Some((0..len).map(|t| smooth[bucket(t)]).collect())
}

/// Where the backtest origins fall for a series of `n` days, or `None` when not even one fits after
/// [`MIN_OBSERVED_DAYS`] of training.
fn origins(n: usize, cfg: &ForecastConfig) -> Option<Vec<usize>> {
    let last = n.checked_sub(cfg.backtest_horizon)?;
    if last < MIN_OBSERVED_DAYS {
        return None;
    }
    let folds = ((last - MIN_OBSERVED_DAYS) / cfg.fold_step + 1).min(cfg.backtest_folds);
    Some((0..folds).rev().map(|i| last - i * cfg.fold_step).collect())
}

/// Fits, backtests and chooses a model for `series`, then forecasts `cfg.horizon` days after it.
pub fn forecast(series: &DemandSeries, cfg: &ForecastConfig) -> Result<Forecast, ForecastError> {
    cfg.validate()?;
    let y: Vec<f64> = series.days.iter().map(|d| d.unwrap_or(f64::NAN)).collect();
    let n = y.len();
    let not_enough = || ForecastError::NotEnoughHistory {
        observed: series.observed_days(),
        needed: MIN_OBSERVED_DAYS + cfg.backtest_horizon,
    };
    let origins = origins(n, cfg).ok_or_else(not_enough)?;
    let train_end = origins[0];
    if known(&y, 0, train_end).count() < MIN_OBSERVED_DAYS {
        return Err(not_enough());
    }
    let h = cfg.backtest_horizon;
    let a = adi(&y, n);
    let (class, families): (DemandClass, &[Family]) = if a.is_infinite() {
        (DemandClass::None, &[Family::NoDemand])
    } else if a >= cfg.intermittent_adi {
        (DemandClass::Intermittent, &[Family::Croston, Family::Sba])
    } else {
        (DemandClass::Smooth, &[Family::Ses, Family::Holt, Family::HoltWinters, Family::HoltWintersYearly])
    };
    let total_len = n + cfg.horizon;
    let backtest_profile = if n >= YEARLY_MIN_DAYS && families.contains(&Family::HoltWintersYearly) {
        yearly_profile(series.start, &y, train_end, total_len)
    } else {
        None
    };

    let mut best: Option<(Model, Pass)> = None;
    for &family in families {
        let yearly = match family {
            Family::HoltWintersYearly => match &backtest_profile {
                Some(p) => Some(p.as_slice()),
                None => continue,
            },
            _ => None,
        };
        // Grid search on the training part only; then one full pass of the winner for its backtest.
        let grid = family.grid();
        let mut fitted: Option<(Model, f64)> = None;
        for (model, sse) in grid.iter().zip(grid_sse(&grid, &y, train_end, yearly)) {
            if fitted.is_none_or(|(_, best)| sse < best) {
                fitted = Some((*model, sse));
            }
        }
        let (model, _) = fitted.expect("every family has a grid");
        let p = pass(model, &y, n, train_end, &origins, h, yearly);
        if best.as_ref().is_none_or(|(_, b)| p.backtest.mae() < b.backtest.mae()) {
            best = Some((model, p));
        }
    }
    let (model, mut chosen) = best.expect("every class has a candidate");
    // The yearly profile for the forecast itself uses the whole history.
    let final_profile = match model {
        Model::HoltWintersYearly { .. } => yearly_profile(series.start, &y, n, total_len).or(backtest_profile),
        _ => None,
    };
    if final_profile.is_some() {
        chosen = pass(model, &y, n, train_end, &origins, h, final_profile.as_deref());
    }
    let naive_scale = {
        let mut e = Errors::default();
        let mut prev = f64::NAN;
        for &v in &y[..train_end] {
            if !v.is_nan() {
                if !prev.is_nan() {
                    e.add(v - prev);
                }
                prev = v;
            }
        }
        e.mae()
    };
    let bt = chosen.backtest;
    let accuracy = Accuracy {
        mase: (naive_scale > 0.0 && bt.n > 0).then(|| bt.mae() / naive_scale),
        mae: bt.mae(),
        rmse: if bt.n > 0 { (bt.sq / bt.n as f64).sqrt() } else { 0.0 },
        bias: if bt.n > 0 { bt.sum / bt.n as f64 } else { 0.0 },
        errors: bt.n,
        origins: origins.len(),
    };
    // Root mean square rather than standard deviation: a forecast that runs low needs the cover just as much.
    let sigma_daily = if chosen.all.n > 0 { (chosen.all.sq / chosen.all.n as f64).sqrt() } else { 0.0 };
    let daily = (1..=cfg.horizon).map(|k| chosen.end.forecast(model, n, k, final_profile.as_deref())).collect();
    Ok(Forecast { model, class, first_day: series.next_day(), daily, sigma_daily, accuracy })
}

#[cfg(test)]
mod tests;
