//! Backtests (MODEL.md §12): projections from past jump-off years with rates estimated
//! only from the years up to them, against what happened, beside the naive and the
//! linear baselines.

use super::{estimate, improved_rows, trend, EstimateError, Events, Options};
use crate::population::{Population, Year};
use crate::projection::{project, Direction, Flow, FlowForm, ProjectionInputs};
use crate::rates::RateTable;
use ndarray::{s, Array4};

/// The groups a backtest scores: the total and the planning age groups (MODEL.md §5).
pub const GROUPS: [(&str, usize, usize); 8] = [
    ("total", 0, usize::MAX),
    ("0-6", 0, 6),
    ("7-12", 7, 12),
    ("13-15", 13, 15),
    ("16-18", 16, 18),
    ("19-64", 19, 64),
    ("65-74", 65, 74),
    ("75+", 75, usize::MAX),
];

/// The methods compared.
pub const METHODS: [&str; 3] = ["kunta", "naive", "linear"];

/// One cell of a backtest: a group of an area `horizon` years after `jump_off`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The jump-off year.
    pub jump_off: i32,
    /// Years after it.
    pub horizon: u32,
    /// The area.
    pub area: String,
    /// The group (`total`, `0-6`, …).
    pub group: &'static str,
    /// The method (`kunta`, `naive`, `linear`).
    pub method: &'static str,
    /// Its projection.
    pub predicted: f64,
    /// What happened.
    pub observed: f64,
    /// `(predicted − observed) / observed · 100`.
    pub error_pct: f64,
    /// kunta's interval with trajectories: p05, p25, p75, p95.
    pub interval: Option<[f64; 4]>,
}

/// Trajectories for the coverage of kunta's intervals: how many, and their seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trajectories {
    /// Number of trajectories.
    pub n: usize,
    /// Seed.
    pub seed: u64,
}

/// Why a backtest could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BacktestError {
    /// The rates of a jump-off year.
    #[error("jump-off {0}: {1}")]
    Estimate(i32, EstimateError),
    /// Building the rate tables or projecting.
    #[error("jump-off {0}: {1}")]
    Projection(i32, String),
    /// Nothing observed to compare with.
    #[error("no jump-off year has an observed population {0} years later in the history (it ends in {1})")]
    Nothing(u32, i32),
}

/// The population of `year` alone, as a projection's base.
fn year_of(history: &Population, year: i32) -> Option<Population> {
    let k = history.year_index(Year(year))?;
    let v = history.values().slice(s![k.0..=k.0, .., .., ..]).to_owned();
    Population::new(history.areas().to_vec(), vec![Year(year)], v).ok()
}

/// Sum of a group over sexes and ages of `(area, sex, age)` cells.
fn group_sum(cells: ndarray::ArrayView3<'_, f64>, a: usize, lo: usize, hi: usize) -> f64 {
    let nx = cells.dim().2;
    if lo >= nx {
        return 0.0;
    }
    let hi = hi.min(nx - 1);
    cells.slice(s![a, .., lo..=hi]).sum()
}

/// The projection inputs of an estimate, up to `end`.
///
/// # Errors
/// A sentence if a table cannot be built.
pub fn inputs_of(
    e: &super::Estimate,
    end: i32,
    boys_share: f64,
) -> Result<ProjectionInputs, String> {
    let areas = &e.areas;
    let fertility =
        RateTable::from_rows(&e.fertility_rows(), 1.0, areas).map_err(|x| x.to_string())?;
    let mut mortality_rows = e.mortality_rows();
    if let Some(imp) = &e.improvement {
        let nx = e.omega + 1;
        mortality_rows = improved_rows(&mortality_rows, e.base_year, end, &|row| {
            let sex = row.sex.map_or(0, |s| s.index());
            let slot = match row.age {
                Some(crate::rates::AgeIndex::Age(x)) => usize::from(x).min(nx - 1),
                Some(crate::rates::AgeIndex::Birth) | None => nx,
            };
            imp[[sex, slot]]
        });
    }
    let mortality = RateTable::from_rows(&mortality_rows, 1.0, areas).map_err(|x| x.to_string())?;
    let net = RateTable::from_rows(&e.net_rows(), 1.0, areas).map_err(|x| x.to_string())?;
    Ok(ProjectionInputs {
        fertility,
        mortality,
        boys_share,
        tfr: None,
        improvement: None,
        flows: vec![Flow {
            name: "net".into(),
            direction: Direction::Net,
            form: FlowForm::Counts(net),
            multiplier: None,
            destinations: None,
        }],
    })
}

/// Projects from each jump-off year with rates estimated from the years up to it and
/// compares each area's groups `horizon` years later with the history, for kunta and
/// the two baselines. Horizons the history does not reach are left out.
///
/// # Errors
/// [`BacktestError`] when a jump-off's rates cannot be estimated or projected, or no
/// horizon can be scored.
pub fn backtest(
    history: &Population,
    births: &Events,
    deaths: &Events,
    jump_offs: &[i32],
    horizons: &[u32],
    opts: &Options,
) -> Result<Vec<Row>, BacktestError> {
    backtest_with(history, births, deaths, jump_offs, horizons, opts, None)
}

/// [`backtest`], and with `trajectories` kunta's intervals too: each jump-off runs
/// that many Monte Carlo trajectories with the spreads its estimate calibrates
/// ([`super::Estimate::spreads`] and [`super::Estimate::migration_rate_sd`] with
/// [`super::MIGRATION_RATE_AR`]; mortality at kunta's default), and each kunta row
/// gets its p05, p25, p75 and p95 (see [`coverage`]).
///
/// # Errors
/// As [`backtest`], and when the trajectories cannot run.
pub fn backtest_with(
    history: &Population,
    births: &Events,
    deaths: &Events,
    jump_offs: &[i32],
    horizons: &[u32],
    opts: &Options,
    trajectories: Option<Trajectories>,
) -> Result<Vec<Row>, BacktestError> {
    let last = history.years().last().map_or(0, |y| y.0);
    let max_h = horizons.iter().copied().max().unwrap_or(0);
    let mut rows = Vec::new();
    let hist = history.values();
    for &j in jump_offs {
        let reach: Vec<u32> = horizons
            .iter()
            .copied()
            .filter(|h| j + *h as i32 <= last)
            .collect();
        if reach.is_empty() {
            continue;
        }
        let e = estimate(history, births, deaths, j, opts)
            .map_err(|x| BacktestError::Estimate(j, x))?;
        let end = (j + max_h as i32).min(last);
        let inputs =
            inputs_of(&e, end, opts.boys_share).map_err(|x| BacktestError::Projection(j, x))?;
        let base = year_of(history, j).ok_or(BacktestError::Estimate(
            j,
            EstimateError::NoYear(j, opts.years, j - opts.years as i32),
        ))?;
        let p = project(&base, j, end, Some(&inputs))
            .map_err(|x| BacktestError::Projection(j, x.to_string()))?;
        let pop: &Array4<f64> = &p.population;
        // With trajectories: the population's quantiles by area, sex, group and year.
        let mc = match trajectories {
            None => None,
            Some(t) => {
                let (fert_sd, mig_sd) = e.spreads(history);
                let spec = crate::uncertainty::Spec {
                    trajectories: t.n,
                    seed: t.seed,
                    fertility: crate::uncertainty::Ar1 {
                        sd: fert_sd,
                        ..crate::uncertainty::Ar1::FERTILITY
                    },
                    migration: crate::uncertainty::Ar1 {
                        sd: mig_sd,
                        ..crate::uncertainty::Ar1::MIGRATION
                    },
                    migration_rate: Some(crate::uncertainty::MigrationRate {
                        sd: e.migration_rate_sd(),
                        ar: super::MIGRATION_RATE_AR,
                    }),
                    ..crate::uncertainty::Spec::default()
                };
                let mut sc = crate::scenario::Scenario::new("backtest", base.clone(), j, end);
                sc.inputs = Some(inputs.clone());
                let valid = sc
                    .validate()
                    .map_err(|x| BacktestError::Projection(j, x.to_string()))?;
                let r = crate::run::monte_carlo(&valid, &[], &spec, true, &|_, _| {})
                    .map_err(|x| BacktestError::Projection(j, x.to_string()))?;
                let labels = r.age_groups.clone();
                let ny = r.years.len();
                r.population.map(|s| (s, labels, ny))
            }
        };
        let interval = |a: usize, group: &str, k: usize| -> Option<[f64; 4]> {
            let (s, labels, ny) = mc.as_ref()?;
            let label = if group == "total" { "all" } else { group };
            let g = labels.iter().position(|l| l == label)?;
            let ng = labels.len();
            let cell = ((a * 3 + 2) * ng + g) * ny + k;
            // The levels are p05, p25, p50, p75, p95.
            Some([s.q[0][cell], s.q[1][cell], s.q[3][cell], s.q[4][cell]])
        };
        let at_hist = |y: i32| {
            history
                .year_index(Year(y))
                .map(|i| hist.index_axis(ndarray::Axis(0), i.0))
        };
        let j_cells = at_hist(j).expect("the jump-off year is in the history");
        for &h in &reach {
            let y = j + h as i32;
            let k = (y - j) as usize;
            let obs_cells = at_hist(y).expect("a reached year is in the history");
            let pred_cells = pop.index_axis(ndarray::Axis(0), k);
            for (a, area) in history.areas().iter().enumerate() {
                for &(group, lo, hi) in &GROUPS {
                    let observed = group_sum(obs_cells, a, lo, hi);
                    // The linear baseline: the group's least-squares trend over the
                    // estimate's years before the jump-off, extended.
                    let past: Vec<f64> = (j - opts.years as i32..=j)
                        .filter_map(|t| at_hist(t).map(|c| group_sum(c, a, lo, hi)))
                        .collect();
                    let naive = group_sum(j_cells, a, lo, hi);
                    let linear = (naive + trend(&past) * f64::from(h)).max(0.0);
                    let kunta = group_sum(pred_cells, a, lo, hi);
                    for (method, predicted) in METHODS.into_iter().zip([kunta, naive, linear]) {
                        rows.push(Row {
                            interval: if method == "kunta" {
                                interval(a, group, k)
                            } else {
                                None
                            },
                            jump_off: j,
                            horizon: h,
                            area: area.clone(),
                            group,
                            method,
                            predicted,
                            observed,
                            error_pct: if observed > 0.0 {
                                (predicted - observed) / observed * 100.0
                            } else {
                                f64::NAN
                            },
                        });
                    }
                }
            }
        }
    }
    if rows.is_empty() {
        return Err(BacktestError::Nothing(
            horizons.iter().copied().min().unwrap_or(0),
            last,
        ));
    }
    Ok(rows)
}

/// The share of kunta's cells whose observed value lies inside each interval, by
/// horizon: `(horizon, nominal level, share, cells)` for the 50 % (p25–p75) and the
/// 90 % (p05–p95) intervals.
pub fn coverage(rows: &[Row]) -> Vec<(u32, f64, f64, usize)> {
    coverage_of(rows, None)
        .into_iter()
        .flat_map(|c| {
            [
                (c.horizon, 0.5, c.inside_50, c.cells),
                (c.horizon, 0.9, c.inside_90, c.cells),
            ]
        })
        .collect()
}

/// The coverage of kunta's intervals in one group (or all, `"all"`) at one horizon.
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    /// The horizon.
    pub horizon: u32,
    /// The group of [`GROUPS`], or `"all"` for every cell.
    pub group: &'static str,
    /// The share of cells inside the 50 % interval (p25–p75).
    pub inside_50: f64,
    /// The share of cells inside the 90 % interval (p05–p95).
    pub inside_90: f64,
    /// Cells counted.
    pub cells: usize,
}

/// [`coverage`] by horizon and group, in the order of [`GROUPS`] within a horizon.
pub fn coverage_by_group(rows: &[Row]) -> Vec<Coverage> {
    let mut v: Vec<Coverage> = GROUPS
        .iter()
        .flat_map(|(g, _, _)| coverage_of(rows, Some(g)))
        .collect();
    // A stable sort: the groups keep their order within a horizon.
    v.sort_by_key(|c| c.horizon);
    v
}

/// The coverage by horizon of the cells of `group` (every group with `None`).
fn coverage_of(rows: &[Row], group: Option<&'static str>) -> Vec<Coverage> {
    let mut horizons: Vec<u32> = rows
        .iter()
        .filter(|r| r.interval.is_some())
        .map(|r| r.horizon)
        .collect();
    horizons.sort_unstable();
    horizons.dedup();
    let mut out = Vec::new();
    for h in horizons {
        let cells: Vec<(&[f64; 4], f64)> = rows
            .iter()
            .filter(|r| r.horizon == h && r.observed > 0.0)
            .filter(|r| group.is_none_or(|g| r.group == g))
            .filter_map(|r| Some((r.interval.as_ref()?, r.observed)))
            .collect();
        let n = cells.len();
        if n == 0 {
            continue;
        }
        let inside = |lo: usize, hi: usize| {
            cells
                .iter()
                .filter(|(q, o)| q[lo] <= *o && *o <= q[hi])
                .count() as f64
                / n as f64
        };
        out.push(Coverage {
            horizon: h,
            group: group.unwrap_or("all"),
            inside_50: inside(1, 2),
            inside_90: inside(0, 3),
            cells: n,
        });
    }
    out
}

/// The errors of one method in one group at one horizon, over areas and jump-offs.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// The group.
    pub group: &'static str,
    /// The horizon.
    pub horizon: u32,
    /// The method.
    pub method: &'static str,
    /// Mean absolute percentage error.
    pub mape: f64,
    /// Mean algebraic percentage error (the bias).
    pub malpe: f64,
    /// Cells scored.
    pub cells: usize,
}

/// MAPE and MALPE by group, horizon and method, in the order of [`GROUPS`] and
/// [`METHODS`].
pub fn scores(rows: &[Row]) -> Vec<Score> {
    let mut horizons: Vec<u32> = rows.iter().map(|r| r.horizon).collect();
    horizons.sort_unstable();
    horizons.dedup();
    let mut out = Vec::new();
    for &h in &horizons {
        for &(group, _, _) in &GROUPS {
            for method in METHODS {
                let errs: Vec<f64> = rows
                    .iter()
                    .filter(|r| r.horizon == h && r.group == group && r.method == method)
                    .map(|r| r.error_pct)
                    .filter(|e| e.is_finite())
                    .collect();
                if errs.is_empty() {
                    continue;
                }
                let n = errs.len() as f64;
                out.push(Score {
                    group,
                    horizon: h,
                    method,
                    mape: errs.iter().map(|e| e.abs()).sum::<f64>() / n,
                    malpe: errs.iter().sum::<f64>() / n,
                    cells: errs.len(),
                });
            }
        }
    }
    out
}
