//! Rates from history (MODEL.md §11): fertility, mortality and a `net` migration flow
//! in kunta's convention (ages at the start of the year) from a population history and
//! births and deaths (or published rates) by the age at the event.
//!
//! Everything here takes arrays; reading the tables is `io`'s. [`estimate`] gives an
//! [`Estimate`] whose tables ([`Estimate::fertility_rows`], …) are kunta's rate tables,
//! ready for [`crate::projection::ProjectionInputs`] or to be written as CSV.

pub mod backtest;

use crate::population::{Population, Sex, Year};
use crate::rates::{AgeIndex, RateRow};
use ndarray::{Array2, Array3, Array4};

/// Counts or rates by area, year, sex and age at the event: births by the mother's age
/// at the birth, deaths by the age at death (Statistics Finland's convention).
#[derive(Debug, Clone, PartialEq)]
pub struct Events {
    /// The years of the series, ascending.
    pub years: Vec<i32>,
    /// Values by `(area, year slot, sex, age)` over the history's areas; the sex axis
    /// has one slot (births, either sex) or two (female, male); ages from 0 to the
    /// table's top age (for deaths, ages above it take the top age's value; there are
    /// no births above it).
    pub values: Array4<f64>,
    /// Counts (persons) or rates (per person-year of exposure).
    pub kind: EventKind,
    /// Where the values came from (a file name), for messages.
    pub source: String,
}

/// What the values of [`Events`] are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Births or deaths.
    Counts,
    /// Births per woman or deaths per person-year (a central rate `m`).
    Rates,
}

/// How the fertility level of the projection is set.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum FertilityLevel {
    /// The mean of the window's years.
    Mean,
    /// The window's age schedule at the last year's total fertility.
    #[default]
    Last,
    /// The last year's total fertility moved along the window's linear trend for
    /// `years` more years, then held (never below half or above twice the last level).
    Trend {
        /// Years the trend is followed.
        years: u32,
    },
    /// The last year's total fertility moved along the damped trend of all areas'
    /// together: year `h` has `last · exp(g · (φ + φ² + … + φ^h))`, `g` the window's
    /// yearly slope of the log total fertility of all areas together (pooled births
    /// over pooled exposure, by age), `φ` the damping.
    Damped {
        /// The damping `φ` (0: no trend; 1: the whole trend, for the
        /// [`DAMPED_YEARS`] years written, then held).
        phi: f64,
    },
}

/// Years a damped fertility trend is written out for (then held: `φ^h` is small by
/// then for any `φ` below 0.9).
pub const DAMPED_YEARS: i32 = 30;

/// How mortality improves in the projection.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Improvement {
    /// No improvement.
    None,
    /// The same yearly rate for every sex and age.
    Rate(f64),
    /// The log-linear trend of the probabilities of dying of all areas together
    /// (`q = 1 − exp(−m)` of each year's death rate), by sex and age group (0–14,
    /// 15–49, 50–64, 65–79, 80+), over `years` years before the base year, held
    /// between 0 and 5 % a year.
    #[default]
    Trend,
}

/// The choices of an estimate, each documented in the README.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Years before the base year the rates are averaged over (`K`, default 5).
    pub years: usize,
    /// The fertility level.
    pub fertility: FertilityLevel,
    /// Mortality improvement.
    pub improvement: Improvement,
    /// Years the improvement trend is fitted over (default 15, as far as the history
    /// reaches).
    pub improvement_years: usize,
    /// A multiplier on the net migration (default 1).
    pub migration_level: f64,
    /// Shrinkage of each area's fertility and mortality schedules toward all areas'
    /// together: the weight of the pooled schedule in person-years (0: none).
    pub shrink: f64,
    /// Share of boys among births, for births given without sex (default 0.512).
    pub boys_share: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            years: 5,
            fertility: FertilityLevel::default(),
            improvement: Improvement::default(),
            improvement_years: 15,
            migration_level: 1.0,
            shrink: 0.0,
            boys_share: 0.512,
        }
    }
}

/// Why rates could not be estimated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EstimateError {
    /// The history lacks a year the window needs.
    #[error("the population history has no year {0}: estimating from {1} years before the base year needs every year from {2} to the base year")]
    NoYear(i32, usize, i32),
    /// The base year is not a year of the history (which covers the two years given).
    #[error("the base year {0} is not a year of the population history (it covers {1}–{2})")]
    BaseYear(i32, i32, i32),
    /// Births or deaths lack a year of the window.
    #[error("{0} has no year {1} (it covers {2}–{3})")]
    EventsYear(String, i32, i32, i32),
    /// An events table over other areas than the history's.
    #[error("{0} has {1} areas, the history {2}")]
    Areas(String, usize, usize),
    /// A bad option.
    #[error("{0}")]
    Option(String),
}

/// Rates estimated from history, in kunta's convention.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// The areas, as in the history.
    pub areas: Vec<String>,
    /// The base year (the last year of the window).
    pub base_year: i32,
    /// The open top age.
    pub omega: usize,
    /// Births per woman by age at the start of the year, `(area, age 0..=ω)`, at the
    /// base year's level.
    pub fertility: Array2<f64>,
    /// The total fertility of each area by year from the base year (one year for a
    /// constant level; [`FertilityLevel::Trend`] gives a path, the last year held).
    pub tfr: Vec<Vec<f64>>,
    /// Probabilities of dying by `(area, sex, age slot)`: ages `0..=ω`, then the birth
    /// index at `ω + 1`.
    pub mortality: Array3<f64>,
    /// Yearly improvement by `(sex, age slot)`, if any.
    pub improvement: Option<Array2<f64>>,
    /// Net migration per year by `(area, sex, age slot)` (signed counts).
    pub net: Array3<f64>,
    /// The total fertility of each area in each year of the window, and the window's
    /// years (for the calibration of the spreads).
    pub tfr_history: (Vec<i32>, Vec<Vec<f64>>),
    /// Each area's net migration in each year of the window (persons).
    pub net_history: Vec<Vec<f64>>,
    /// Each area's net migration rate in each year of the window by age band at the
    /// end of the year ([`RATE_BANDS`]): `(area, band, year)`, the residual over the
    /// cohort's population at the start of the year (the newborns' expected number
    /// for the birth index).
    pub net_rate_history: Array3<f64>,
}

/// The persistence `estimate` gives the net migration rate's process
/// ([`crate::uncertainty::MigrationRate`]): a random walk, whose yearly step is the
/// window's yearly spread of the rate ([`Estimate::migration_rate_sd`]). On the 19
/// regions' backtests (ACCURACY.md) its 90 % intervals hold 85 % of the cells at 5
/// and at 10 years; a persistence of 0.9 holds 81 % and 83 %, 0.8 holds 76 % and
/// 78 %. A random walk's spread grows without bound, so for horizons of decades a
/// user may prefer a persistence below 1.
pub const MIGRATION_RATE_AR: f64 = 1.0;

/// The largest yearly spread of a net migration rate [`Estimate::migration_rate_sd`]
/// gives: 3 % a year. An age band of a small municipality holds few people, and its
/// yearly rates swing by chance far more than its expected level will; uncapped, a
/// random walk of such steps would make every interval meaningless within a decade.
pub const MAX_RATE_SD: f64 = 0.03;

/// The age bands (at the end of the year, lowest ages) over which [`Estimate::migration_rate_sd`]
/// measures the yearly variation of net migration: the planning groups, with the
/// working ages split where people move most.
pub const RATE_BANDS: [usize; 10] = [0, 7, 13, 16, 19, 25, 35, 50, 65, 75];

/// The band of [`RATE_BANDS`] that age `x` falls in.
fn rate_band(x: usize) -> usize {
    RATE_BANDS.iter().rposition(|lo| *lo <= x).unwrap_or(0)
}

/// Looks a year up in a series.
fn slot(years: &[i32], y: i32) -> Option<usize> {
    years.iter().position(|x| *x == y)
}

/// The value of an events table at `(area, year slot, sex, age)`, ages above the
/// table's top taking the top's value and a one-sex table serving both.
fn ev(e: &Events, a: usize, k: usize, s: usize, x: usize) -> f64 {
    let (_, _, ns, nx) = e.values.dim();
    e.values[[a, k, s.min(ns - 1), x.min(nx - 1)]]
}

/// Estimates the rates for `base_year` from the `opts.years` years before it.
///
/// # Errors
/// [`EstimateError`] when the history or the events lack a year of the window, or
/// cover other areas.
pub fn estimate(
    history: &Population,
    births: &Events,
    deaths: &Events,
    base_year: i32,
    opts: &Options,
) -> Result<Estimate, EstimateError> {
    let k = opts.years.max(1);
    if !(opts.migration_level.is_finite() && opts.shrink >= 0.0) {
        return Err(EstimateError::Option(
            "the migration level must be a number and the shrinkage not negative".into(),
        ));
    }
    let first = base_year - k as i32;
    let years = history.years();
    if let (Some(lo), Some(hi)) = (years.first(), years.last()) {
        if history.year_index(Year(base_year)).is_none() && !(lo.0..=hi.0).contains(&base_year) {
            return Err(EstimateError::BaseYear(base_year, lo.0, hi.0));
        }
    }
    let hy = |y: i32| {
        history
            .year_index(Year(y))
            .map(|i| i.0)
            .ok_or(EstimateError::NoYear(y, k, first))
    };
    let na = history.areas().len();
    let nx = history.n_ages();
    let omega = nx - 1;
    for e in [births, deaths] {
        if e.values.dim().0 != na {
            return Err(EstimateError::Areas(e.source.clone(), e.values.dim().0, na));
        }
    }
    let pop = history.values();
    // Window: transitions t−1 → t for t in first+1 ..= base.
    let window: Vec<i32> = (first + 1..=base_year).collect();
    let mut hslots = Vec::new();
    for &t in &window {
        hslots.push((hy(t - 1)?, hy(t)?));
    }
    let eslot = |_: &'static str, e: &Events, t: i32| {
        slot(&e.years, t).ok_or_else(|| {
            EstimateError::EventsYear(
                e.source.clone(),
                t,
                *e.years.first().unwrap_or(&0),
                *e.years.last().unwrap_or(&0),
            )
        })
    };
    let f = Sex::Female.index();
    // Exposure (mean of the populations at the two ends of the year).
    let exposure = |a: usize, s: usize, x: usize, (p0, p1): (usize, usize)| {
        0.5 * (pop[[p0, a, s, x]] + pop[[p1, a, s, x]])
    };

    // Deaths by count: the table's top age is an open group (its deaths shared over
    // the ages from it by exposure), and deaths above the population's top age count
    // at it.
    let d_top = deaths.values.dim().3 - 1;
    let death_count = |a: usize, k: usize, s: usize, x: usize, hs: (usize, usize)| -> f64 {
        if x < d_top.min(omega) {
            return ev(deaths, a, k, s, x);
        }
        if d_top >= omega {
            // x == ω: the ω row and every row above it.
            return (omega..=d_top).map(|y| ev(deaths, a, k, s, y)).sum();
        }
        let share = {
            let e_open: f64 = (d_top..nx).map(|y| exposure(a, s, y, hs)).sum();
            if e_open > 0.0 {
                exposure(a, s, x, hs) / e_open
            } else {
                0.0
            }
        };
        ev(deaths, a, k, s, d_top) * share
    };
    // Death rates m by (area, sex, age), for each year and averaged.
    let mut m_year = Array4::<f64>::zeros((window.len(), na, 2, nx));
    let mut d_sum = Array3::<f64>::zeros((na, 2, nx));
    let mut e_sum = Array3::<f64>::zeros((na, 2, nx));
    for (w, &t) in window.iter().enumerate() {
        let kd = eslot("deaths", deaths, t)?;
        for a in 0..na {
            for s in 0..2 {
                for x in 0..nx {
                    let e = exposure(a, s, x, hslots[w]);
                    let (d, m) = match deaths.kind {
                        EventKind::Counts => {
                            let v = death_count(a, kd, s, x, hslots[w]);
                            (v, if e > 0.0 { v / e } else { 0.0 })
                        }
                        EventKind::Rates => {
                            let v = ev(deaths, a, kd, s, x);
                            (v * e, v)
                        }
                    };
                    m_year[[w, a, s, x]] = m;
                    d_sum[[a, s, x]] += d;
                    e_sum[[a, s, x]] += e;
                }
            }
        }
    }
    let shrunk = |num: &Array3<f64>, den: &Array3<f64>| -> Array3<f64> {
        let (na, ns, nx) = num.dim();
        let mut out = Array3::<f64>::zeros((na, ns, nx));
        for s in 0..ns {
            for x in 0..nx {
                let (pn, pd): (f64, f64) = (0..na).fold((0.0, 0.0), |(n, d), a| {
                    (n + num[[a, s, x]], d + den[[a, s, x]])
                });
                let pooled = if pd > 0.0 { pn / pd } else { 0.0 };
                for a in 0..na {
                    let (n, d) = (num[[a, s, x]], den[[a, s, x]]);
                    out[[a, s, x]] = if d + opts.shrink > 0.0 {
                        (n + opts.shrink * pooled) / (d + opts.shrink)
                    } else {
                        pooled
                    };
                }
            }
        }
        out
    };
    let m = shrunk(&d_sum, &e_sum);
    let to_q = |m: &dyn Fn(usize) -> f64| -> Vec<f64> {
        let mut q = vec![0.0; nx + 1];
        for (i, qi) in q.iter_mut().enumerate().take(nx) {
            *qi = if i < omega {
                1.0 - (-(m(i) + m(i + 1)) / 2.0).exp()
            } else {
                1.0 - (-m(omega)).exp()
            };
        }
        q[nx] = 1.0 - (-m(0) / 2.0).exp();
        q
    };
    let mut mortality = Array3::<f64>::zeros((na, 2, nx + 1));
    for a in 0..na {
        for s in 0..2 {
            let q = to_q(&|x| m[[a, s, x]]);
            for (i, v) in q.into_iter().enumerate() {
                mortality[[a, s, i]] = v;
            }
        }
    }

    // Fertility: F by the mother's age at the birth, then f(i) = (F(i) + F(i+1)) / 2.
    let mut b_sum = Array3::<f64>::zeros((na, 1, nx));
    let mut ef_sum = Array3::<f64>::zeros((na, 1, nx));
    let mut births_year = Array2::<f64>::zeros((window.len(), na));
    let mut tfr_year = vec![vec![0.0; window.len()]; na];
    // All areas together, by (window year, age): births and exposure.
    let mut pooled = vec![(0.0, 0.0); window.len() * nx];
    for (w, &t) in window.iter().enumerate() {
        let kb = eslot("births", births, t)?;
        for a in 0..na {
            for x in 0..nx {
                let e = exposure(a, f, x, hslots[w]);
                // No births above the table's top age (unlike deaths, whose top age
                // serves the ages above it).
                let v = if x < births.values.dim().3 {
                    ev(births, a, kb, 0, x)
                } else {
                    0.0
                };
                let (b, rate) = match births.kind {
                    EventKind::Counts => (v, if e > 0.0 { v / e } else { 0.0 }),
                    EventKind::Rates => (v * e, v),
                };
                b_sum[[a, 0, x]] += b;
                ef_sum[[a, 0, x]] += e;
                pooled[w * nx + x].0 += b;
                pooled[w * nx + x].1 += e;
                births_year[[w, a]] += b;
                tfr_year[a][w] += rate;
            }
        }
    }
    let big_f = shrunk(&b_sum, &ef_sum);
    let mut fertility = Array2::<f64>::zeros((na, nx));
    for a in 0..na {
        for i in 0..nx {
            let next = if i < omega { big_f[[a, 0, i + 1]] } else { 0.0 };
            fertility[[a, i]] = (big_f[[a, 0, i]] + next) / 2.0;
        }
    }
    // The yearly slope of the log total fertility of all areas together.
    let pooled_tfr: Vec<f64> = pooled
        .chunks_exact(nx)
        .map(|c| {
            c.iter()
                .map(|(b, e)| if *e > 0.0 { b / e } else { 0.0 })
                .sum()
        })
        .collect();
    let log_slope = if pooled_tfr.iter().all(|v| *v > 0.0) {
        trend(&pooled_tfr.iter().map(|v| v.ln()).collect::<Vec<_>>())
    } else {
        0.0
    };
    let mut tfr = Vec::with_capacity(na);
    for (a, years_tfr) in tfr_year.iter().enumerate() {
        let mean: f64 = fertility.row(a).sum();
        let last = years_tfr[window.len() - 1];
        let path = match opts.fertility {
            FertilityLevel::Mean => vec![mean],
            FertilityLevel::Last => vec![last],
            FertilityLevel::Trend { years } => {
                let slope = trend(years_tfr);
                (0..=years)
                    .map(|h| (last + slope * f64::from(h)).clamp(0.5 * last, 2.0 * last))
                    .collect()
            }
            FertilityLevel::Damped { phi } => {
                let mut damp = 0.0;
                (0..=DAMPED_YEARS)
                    .map(|h| {
                        if h > 0 {
                            damp += phi.powi(h);
                        }
                        (last * (log_slope * damp).exp()).clamp(0.5 * last, 2.0 * last)
                    })
                    .collect()
            }
        };
        if mean > 0.0 {
            let scale = path[0] / mean;
            fertility.row_mut(a).mapv_inplace(|v| v * scale);
        }
        tfr.push(path);
    }

    // Improvement: the log-linear trend of m of all areas by sex and age group.
    let improvement = match opts.improvement {
        Improvement::None => None,
        Improvement::Rate(r) => Some(Array2::from_elem((2, nx + 1), r)),
        Improvement::Trend => Some(improvement_trend(
            history,
            deaths,
            base_year,
            opts.improvement_years.max(2),
        )),
    };

    // Net migration, the residual of the balancing equation, year by year.
    let mut net = Array3::<f64>::zeros((na, 2, nx + 1));
    let mut net_history = vec![vec![0.0; window.len()]; na];
    // By (area, band, year): net migrants and the population they are a rate of.
    let nb = RATE_BANDS.len();
    let mut band_net = Array3::<f64>::zeros((na, nb, window.len()));
    let mut band_pop = Array3::<f64>::zeros((na, nb, window.len()));
    for (w, _) in window.iter().enumerate() {
        let (p0, p1) = hslots[w];
        for a in 0..na {
            for s in 0..2 {
                let q = to_q(&|x| m_year[[w, a, s, x]]);
                let surv = |i: usize| pop[[p0, a, s, i]] * (1.0 - q[i]);
                // Index `i` at the start is age `end` at the end of the year, out of
                // `base` people.
                let mut add = |i: usize, end: usize, base: f64, v: f64| {
                    net[[a, s, i]] += v;
                    net_history[a][w] += v;
                    band_net[[a, rate_band(end), w]] += v;
                    band_pop[[a, rate_band(end), w]] += base;
                };
                for i in 0..omega.saturating_sub(1) {
                    add(
                        i,
                        i + 1,
                        pop[[p0, a, s, i]],
                        pop[[p1, a, s, i + 1]] - surv(i),
                    );
                }
                if omega >= 1 {
                    // The open group: shared between ω − 1 and ω by their survivors.
                    let (s1, s2) = (surv(omega - 1), surv(omega));
                    let r = pop[[p1, a, s, omega]] - s1 - s2;
                    let share = if s1 + s2 > 0.0 { s1 / (s1 + s2) } else { 0.5 };
                    add(omega - 1, omega, pop[[p0, a, s, omega - 1]], r * share);
                    add(omega, omega, pop[[p0, a, s, omega]], r * (1.0 - share));
                }
                let sex_share = if s == Sex::Male.index() {
                    opts.boys_share
                } else {
                    1.0 - opts.boys_share
                };
                let newborns = births_year[[w, a]] * sex_share * (1.0 - q[nx]);
                add(nx, 0, newborns, pop[[p1, a, s, 0]] - newborns);
            }
        }
    }
    let net_rate_history = Array3::from_shape_fn(band_net.dim(), |c| {
        if band_pop[c] > 0.0 {
            band_net[c] / band_pop[c]
        } else {
            0.0
        }
    });
    let scale = opts.migration_level / window.len() as f64;
    net.mapv_inplace(|v| v * scale);
    Ok(Estimate {
        areas: history.areas().to_vec(),
        base_year,
        omega,
        fertility,
        tfr,
        mortality,
        improvement,
        net,
        tfr_history: (window, tfr_year),
        net_history,
        net_rate_history,
    })
}

/// The sample standard deviation of `v` (statrs' `std_dev`, divided by `n − 1`), 0 for
/// fewer than two values.
fn sample_sd(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    statrs::statistics::Statistics::std_dev(v)
}

/// The least-squares slope of `v` against its position.
pub fn trend(v: &[f64]) -> f64 {
    let n = v.len() as f64;
    if v.len() < 2 {
        return 0.0;
    }
    let mx = (n - 1.0) / 2.0;
    let my = v.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, y) in v.iter().enumerate() {
        let dx = i as f64 - mx;
        sxy += dx * (y - my);
        sxx += dx * dx;
    }
    sxy / sxx
}

/// The age groups of the improvement trend.
const IMPROVEMENT_GROUPS: [(usize, usize); 5] =
    [(0, 14), (15, 49), (50, 64), (65, 79), (80, usize::MAX)];

/// Yearly improvement by `(sex, age slot)` from the log-linear trend of the death
/// rates of all areas together by sex and age group, over `years` years before the
/// base year (as far as the history and the deaths reach), held between 0 and 5 %.
fn improvement_trend(
    history: &Population,
    deaths: &Events,
    base: i32,
    years: usize,
) -> Array2<f64> {
    let nx = history.n_ages();
    let pop = history.values();
    let na = history.areas().len();
    let mut out = Array2::<f64>::zeros((2, nx + 1));
    for s in 0..2 {
        for &(lo, hi) in &IMPROVEMENT_GROUPS {
            let hi = hi.min(nx - 1);
            if lo > hi {
                continue;
            }
            let mut logs = Vec::new();
            for t in (base - years as i32 + 1)..=base {
                let (Some(p0), Some(p1), Some(kd)) = (
                    history.year_index(Year(t - 1)),
                    history.year_index(Year(t)),
                    slot(&deaths.years, t),
                ) else {
                    continue;
                };
                let (mut d, mut e) = (0.0, 0.0);
                let d_top = deaths.values.dim().3 - 1;
                for a in 0..na {
                    for x in lo..=hi {
                        let ex = 0.5 * (pop[[p0.0, a, s, x]] + pop[[p1.0, a, s, x]]);
                        let v = match deaths.kind {
                            // Counts: the table's top row holds the ages above it, and
                            // rows above the population's top age count at it.
                            EventKind::Counts if x > d_top => 0.0,
                            EventKind::Counts if x == nx - 1 => {
                                (x..=d_top).map(|y| ev(deaths, a, kd, s, y)).sum()
                            }
                            _ => ev(deaths, a, kd, s, x),
                        };
                        d += match deaths.kind {
                            EventKind::Counts => v,
                            EventKind::Rates => v * ex,
                        };
                        e += ex;
                    }
                }
                if d > 0.0 && e > 0.0 {
                    // The log-linear trend of the group's probability of dying.
                    logs.push((1.0 - (-(d / e)).exp()).ln());
                }
            }
            let r = if logs.len() >= 2 {
                (1.0 - trend(&logs).exp()).clamp(0.0, 0.05)
            } else {
                0.0
            };
            for x in lo..=hi {
                out[[s, x]] = r;
            }
            if lo == 0 {
                out[[s, nx]] = r;
            }
        }
    }
    out
}

/// The mothers' ages (at the start of the year) kunta's fertility tables cover.
pub const FERTILE: (usize, usize) = (10, 55);

/// An age slot of kunta's tables: ages `0..=ω`, then the birth index.
fn age_of(i: usize, nx: usize) -> AgeIndex {
    AgeIndex::of_slot(i, nx)
}

impl Estimate {
    /// The `[uncertainty]` spreads calibrated from the window's year-to-year
    /// variation: the fertility spread is the standard deviation of the yearly change
    /// of each area's log total fertility, the migration spread that of each year's
    /// net migration around the window's mean relative to the flow (at least 1 % of
    /// the area's population), both pooled over areas and held within 1–20 % and
    /// 5–100 %.
    pub fn spreads(&self, history: &Population) -> (f64, f64) {
        let mut fert = Vec::new();
        for path in &self.tfr_history.1 {
            for w in path.windows(2) {
                if w[0] > 0.0 && w[1] > 0.0 {
                    fert.push((w[1] / w[0]).ln());
                }
            }
        }
        let base = history.year_index(Year(self.base_year)).map_or(0, |y| y.0);
        let v = history.values();
        let mut mig = Vec::new();
        for (a, path) in self.net_history.iter().enumerate() {
            let total: f64 = v.slice(ndarray::s![base, a, .., ..]).sum();
            let mean = path.iter().sum::<f64>() / path.len().max(1) as f64;
            let scale = mean.abs().max(0.01 * total);
            if scale > 0.0 {
                mig.extend(path.iter().map(|n| (n - mean) / scale));
            }
        }
        (
            sample_sd(&fert).clamp(0.01, 0.2),
            sample_sd(&mig).clamp(0.05, 1.0),
        )
    }

    /// The yearly spread of each area's net migration rate for
    /// [`crate::uncertainty::MigrationRate`], by `(area, sex, age 0..=ω)`: per age band
    /// ([`RATE_BANDS`]), the standard deviation of the window's year-to-year changes of
    /// the band's residual rate over `√2` (the spread of one year's rate around its
    /// level, measured so that a trend in the window does not count), at most
    /// [`MAX_RATE_SD`]. kunta uses it as the yearly step of a random walk
    /// ([`MIGRATION_RATE_AR`]), so it drives the cumulative error, not a year's noise.
    /// Both sexes get the same; a window of fewer than three years gives 0 (one change
    /// has no spread).
    pub fn migration_rate_sd(&self) -> Array3<f64> {
        let (na, _, nw) = self.net_rate_history.dim();
        let nx = self.omega + 1;
        let mut out = Array3::<f64>::zeros((na, 2, nx));
        for a in 0..na {
            for (b, band_lo) in RATE_BANDS.iter().enumerate() {
                let r: Vec<f64> = (0..nw).map(|w| self.net_rate_history[[a, b, w]]).collect();
                let d: Vec<f64> = r.windows(2).map(|w| w[1] - w[0]).collect();
                let sd = (sample_sd(&d) / std::f64::consts::SQRT_2).min(MAX_RATE_SD);
                let lo = (*band_lo).min(nx);
                let hi = RATE_BANDS.get(b + 1).map_or(nx, |h| (*h).min(nx));
                for s in 0..2 {
                    for x in lo..hi {
                        out[[a, s, x]] = sd;
                    }
                }
            }
        }
        out
    }

    /// The fertility table `area, [year], age, rate` (births per woman by age at the
    /// start of the year); with a trend of the level, one year per step of the path.
    pub fn fertility_rows(&self) -> Vec<RateRow> {
        let nx = self.omega + 1;
        let steps = self.tfr.iter().map(Vec::len).max().unwrap_or(1);
        // The mothers' ages kunta takes (10–55): the rare births outside them are
        // counted at the nearest end, so the total fertility is kept.
        let (lo, hi) = (FERTILE.0.min(nx - 1), FERTILE.1.min(nx - 1));
        let mut rows = Vec::new();
        for (a, area) in self.areas.iter().enumerate() {
            let row = self.fertility.row(a);
            let base = row.sum();
            let mut f: Vec<f64> = (lo..=hi).map(|x| row[x]).collect();
            f[0] += (0..lo).map(|x| row[x]).sum::<f64>();
            *f.last_mut().expect("ages") += (hi + 1..nx).map(|x| row[x]).sum::<f64>();
            for h in 0..steps {
                let level = self.tfr[a][h.min(self.tfr[a].len() - 1)];
                let scale = if base > 0.0 { level / base } else { 0.0 };
                for (k, v) in f.iter().enumerate() {
                    rows.push(RateRow {
                        area: Some(area.clone()),
                        year: (steps > 1).then_some(self.base_year + h as i32),
                        sex: None,
                        age: Some(AgeIndex::Age((lo + k) as u16)),
                        value: v * scale,
                    });
                }
            }
        }
        rows
    }

    /// The mortality table `area, sex, age, rate` (probabilities of dying; age `s`
    /// for the birth year).
    pub fn mortality_rows(&self) -> Vec<RateRow> {
        self.by_sex_rows(&self.mortality)
    }

    /// The improvement table `sex, age, rate`, if the estimate has one.
    pub fn improvement_rows(&self) -> Option<Vec<RateRow>> {
        let imp = self.improvement.as_ref()?;
        let nx = self.omega + 1;
        Some(
            Sex::ALL
                .iter()
                .flat_map(|&sex| {
                    (0..=nx).map(move |i| RateRow {
                        area: None,
                        year: None,
                        sex: Some(sex),
                        age: Some(age_of(i, nx)),
                        value: imp[[sex.index(), i]],
                    })
                })
                .collect(),
        )
    }

    /// The net migration table `area, sex, age, count` (signed, per year).
    pub fn net_rows(&self) -> Vec<RateRow> {
        self.by_sex_rows(&self.net)
    }

    /// Rows `area, sex, age` of an `(area, sex, age slot)` array, the birth index
    /// last.
    fn by_sex_rows(&self, v: &Array3<f64>) -> Vec<RateRow> {
        let nx = self.omega + 1;
        let mut rows = Vec::new();
        for (a, area) in self.areas.iter().enumerate() {
            for sex in Sex::ALL {
                for i in 0..=nx {
                    rows.push(RateRow {
                        area: Some(area.clone()),
                        year: None,
                        sex: Some(sex),
                        age: Some(age_of(i, nx)),
                        value: v[[a, sex.index(), i]],
                    });
                }
            }
        }
        rows
    }
}

/// The rows of a mortality table with an improvement table applied year by year:
/// `q_y = q · (1 − r)^(y − base)` for `y` from `base` to `end`, one year column
/// (MODEL.md §2, improvement by `[area], [sex], age`). `r` gives the rate of a row's
/// area, sex and age.
pub fn improved_rows(
    mortality: &[RateRow],
    base: i32,
    end: i32,
    r: &dyn Fn(&RateRow) -> f64,
) -> Vec<RateRow> {
    let mut out = Vec::with_capacity(mortality.len() * (end - base + 1).max(1) as usize);
    let years: Vec<i32> = {
        let mut y: Vec<i32> = mortality.iter().filter_map(|row| row.year).collect();
        y.sort_unstable();
        y.dedup();
        y
    };
    for y in base..=end {
        // The table's own year for `y`: the last of its years not after `y` (its
        // first before them).
        let own = years
            .iter()
            .rev()
            .find(|t| **t <= y)
            .or(years.first())
            .copied();
        for row in mortality
            .iter()
            .filter(|row| row.year.is_none() || row.year == own)
        {
            let factor = (1.0 - r(row)).powi(y - base);
            out.push(RateRow {
                year: Some(y),
                value: row.value * factor,
                ..row.clone()
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
