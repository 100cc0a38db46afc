//! Deterministic synthetic demand with known level, trend, seasonality, noise and intermittency, for tests and
//! benchmarks of the forecaster. The service never uses it.

use std::f64::consts::PI;

use chrono::{Datelike, Duration, NaiveDate};

/// SplitMix64: tiny, fast and good enough for synthetic data; the same seed always gives the same series.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal by Box–Muller.
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }
    /// Poisson by Knuth's product method: fine for the small means used here.
    pub fn poisson(&mut self, mean: f64) -> u64 {
        let limit = (-mean).exp();
        let mut k = 0;
        let mut p = self.uniform();
        while p > limit {
            k += 1;
            p *= self.uniform();
        }
        k
    }
}

/// The shape of a synthetic series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spec {
    pub level: f64,
    pub trend_per_day: f64,
    /// Added per day of the week, indexed by days since the start modulo 7.
    pub weekly: [f64; 7],
    /// Amplitude of a yearly sine wave (peak on day 91 of the year).
    pub yearly_amplitude: f64,
    pub noise_sd: f64,
    /// Chance that a day sells at all; below 1 the series is intermittent and a sales day sells
    /// `1 + Poisson(level - 1)` units.
    pub occurrence: f64,
    /// Chance that a day is out of stock (unknown).
    pub stockout: f64,
    /// Round to whole units, as real sales are.
    pub integer: bool,
}

impl Spec {
    pub fn smooth(level: f64, noise_sd: f64) -> Self {
        Self {
            level,
            trend_per_day: 0.0,
            weekly: [0.0; 7],
            yearly_amplitude: 0.0,
            noise_sd,
            occurrence: 1.0,
            stockout: 0.0,
            integer: false,
        }
    }

    /// The noiseless mean demand of day `t`.
    pub fn mean_at(&self, start: NaiveDate, t: usize) -> f64 {
        let doy = (start + Duration::days(t as i64)).ordinal0() as f64;
        self.level
            + self.trend_per_day * t as f64
            + self.weekly[t % 7]
            + self.yearly_amplitude * (2.0 * PI * doy / 365.25).sin()
    }

    pub fn generate(&self, start: NaiveDate, days: usize, rng: &mut Rng) -> Vec<Option<f64>> {
        (0..days)
            .map(|t| {
                let v = if self.occurrence < 1.0 {
                    if rng.uniform() < self.occurrence {
                        1.0 + rng.poisson((self.level - 1.0).max(0.0)) as f64
                    } else {
                        0.0
                    }
                } else {
                    (self.mean_at(start, t) + self.noise_sd * rng.normal()).max(0.0)
                };
                let v = if self.integer { v.round() } else { v };
                (rng.uniform() >= self.stockout).then_some(v)
            })
            .collect()
    }
}
