//! Uncertainty: Monte Carlo trajectories of the projection and their summaries
//! (MODEL.md §5).
//!
//! Each trajectory is the projection of MODEL.md §2 with yearly multipliers on the
//! fertility level, the mortality level and every migration flow, drawn from a
//! log-normal AR(1) process, and optionally with process noise: deaths, births and
//! movers drawn as Poisson counts around their expected values. Trajectories are not
//! stored: areas (or, with a closed internal system, the whole municipality) are run
//! one at a time for every trajectory, the outputs of that area are summarised into a
//! mean and quantiles, and only the summaries are kept.
//!
//! # Reproducibility
//! A trajectory's multipliers come from a random stream keyed by `(seed, trajectory)`
//! and its process noise in area `a` from one keyed by `(seed, trajectory, a)`. Work
//! is split among threads by blocks of trajectories, and every block's numbers are
//! the same whichever thread computes it, so the output is identical bit for bit
//! for any number of threads.
//!
//! # The kernel
//! Four trajectories run side by side in the lanes of one vector (`[f64; 4]`, one AVX
//! register where the processor has AVX2, chosen at run time): the ages are the inner
//! loop, so births, the open group and the service sums are plain vertical adds, and
//! an area's state (2 × 101 ages × 4 lanes, 6.5 kB) stays in the L1 cache.

// The kernels index lanes (`l in 0..LANES`) across several arrays at once: that is
// what the compiler turns into vector instructions.
#![allow(clippy::needless_range_loop)]

mod rng;

pub use rng::Rng;

use crate::population::Population;
use crate::projection::{
    lane, resolve, Direction, FlowValues, ProjectionError, ProjectionInputs, YearRates,
};
use crate::services::{service_fixed, year_values, Service, ServiceError, Weights, RESOURCES};
use ndarray::{Array2, ArrayView3};
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Trajectories run side by side in one block.
pub const LANES: usize = 8;
type V = [f64; LANES];

/// A log-normal AR(1) process of yearly multipliers: `z_y = ar · z_{y−1} + sd · ε_y`
/// with `z` = 0 in the base year and `ε` standard normal; the multiplier is `e^z`
/// (its median is 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ar1 {
    /// Standard deviation of the yearly innovation of `ln` multiplier.
    pub sd: f64,
    /// Persistence: 1 is a random walk (uncertainty grows with the horizon), 0 makes
    /// every year independent.
    pub ar: f64,
}

impl Ar1 {
    /// Defaults for the fertility level: 4 % a year, persistent.
    pub const FERTILITY: Ar1 = Ar1 { sd: 0.04, ar: 0.9 };
    /// Defaults for the mortality level: 2 % a year, persistent.
    pub const MORTALITY: Ar1 = Ar1 { sd: 0.02, ar: 0.9 };
    /// Defaults for each migration flow: 15 % a year, half of it carried to the next.
    pub const MIGRATION: Ar1 = Ar1 { sd: 0.15, ar: 0.5 };
    /// No uncertainty.
    pub const NONE: Ar1 = Ar1 { sd: 0.0, ar: 0.0 };
}

/// The settings of a Monte Carlo run (`[uncertainty]` in a scenario).
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// Number of trajectories.
    pub trajectories: usize,
    /// Seed of every random stream.
    pub seed: u64,
    /// Fertility level multipliers.
    pub fertility: Ar1,
    /// Mortality level multipliers.
    pub mortality: Ar1,
    /// Multipliers of each migration flow (independent of each other).
    pub migration: Ar1,
    /// Deaths, births and movers drawn as Poisson counts around their expected values.
    pub process_noise: bool,
    /// Quantile levels, each in (0, 1), ascending.
    pub quantiles: Vec<f64>,
}

/// The default quantile levels.
pub const QUANTILES: [f64; 5] = [0.05, 0.25, 0.5, 0.75, 0.95];

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            trajectories: 1000,
            seed: 42,
            fertility: Ar1::FERTILITY,
            mortality: Ar1::MORTALITY,
            migration: Ar1::MIGRATION,
            process_noise: false,
            quantiles: QUANTILES.to_vec(),
        }
    }
}

/// Which summaries to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    /// Population by area, sex, age and year.
    pub population: bool,
    /// Components by area, sex and projected year.
    pub components: bool,
    /// Demand of every service.
    pub demand: bool,
    /// Resources and costs of every service.
    pub costs: bool,
}

/// Mean and quantiles of one output over the trajectories, cell by cell.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// Mean of each cell.
    pub mean: Vec<f64>,
    /// Per quantile level, the quantile of each cell.
    pub q: Vec<Vec<f64>>,
}

impl Summary {
    fn zeros(cells: usize, levels: usize) -> Summary {
        Summary {
            mean: vec![0.0; cells],
            q: vec![vec![0.0; cells]; levels],
        }
    }
}

/// The mean and the quantiles (type 7: linear between order statistics, as R's
/// default and numpy's) of `values`.
pub fn summarise(values: &mut [f64], levels: &[f64]) -> (f64, Vec<f64>) {
    summarise_with(values, levels, &mut Vec::new())
}

/// As [`summarise`], with a reusable buffer: the values are turned into integer keys
/// that sort like the numbers (faster to select among than floats).
fn summarise_with(values: &mut [f64], levels: &[f64], keys: &mut Vec<i64>) -> (f64, Vec<f64>) {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    keys.clear();
    keys.extend(values.iter().map(|v| {
        let b = v.to_bits() as i64;
        b ^ (((b >> 63) as u64) >> 1) as i64
    }));
    let back = |k: i64| f64::from_bits((k ^ (((k >> 63) as u64) >> 1) as i64) as u64);
    // Every order statistic the levels need (⌊h⌋, and ⌊h⌋ + 1 to interpolate),
    // found together: select the middle one, then recurse into each side.
    let mut want: Vec<usize> = Vec::with_capacity(2 * levels.len());
    for &p in levels {
        let h = (n - 1) as f64 * p;
        let lo = h.floor() as usize;
        want.push(lo);
        if h > lo as f64 && lo + 1 < n {
            want.push(lo + 1);
        }
    }
    want.sort_unstable();
    want.dedup();
    multi_select(keys, &want, 0);
    let out = levels
        .iter()
        .map(|&p| {
            let h = (n - 1) as f64 * p;
            let lo = h.floor() as usize;
            let v_lo = back(keys[lo]);
            let frac = h - lo as f64;
            if frac > 0.0 && lo + 1 < n {
                v_lo + frac * (back(keys[lo + 1]) - v_lo)
            } else {
                v_lo
            }
        })
        .collect();
    (mean, out)
}

/// Puts the elements of `keys` at the positions `want` (ascending, relative to
/// `keys` plus `offset`) where a full sort would put them.
fn multi_select(keys: &mut [i64], want: &[usize], offset: usize) {
    if want.is_empty() || keys.is_empty() {
        return;
    }
    let mid = want.len() / 2;
    let k = want[mid] - offset;
    keys.select_nth_unstable(k);
    let (left, right) = keys.split_at_mut(k);
    multi_select(left, &want[..mid], offset);
    multi_select(&mut right[1..], &want[mid + 1..], offset + k + 1);
}

/// The summaries of one service: demand by `(segment, area, year)`, each resource and
/// each cost component by `(area, year)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSummary {
    /// Demand by `(segment, area, year)`.
    pub demand: Summary,
    /// Resources the service defines, in the order floor_area_m2, groups,
    /// weekly_hours, teacher_fte, staff_fte, by `(area, year)`.
    pub resources: Vec<(&'static str, Summary)>,
    /// Costs by component (units, premises, staff, fixed, overhead, total), by
    /// `(area, year)`.
    pub costs: Vec<Summary>,
    /// Demand of all areas and segments, by year.
    pub total_demand: Summary,
    /// Total cost of all areas, by year (when costs are asked for).
    pub total_cost: Summary,
    /// Present value of the total cost (one cell), when costs are asked for.
    pub present_value: Summary,
}

/// The result of a Monte Carlo run.
#[derive(Debug, Clone, PartialEq)]
pub struct McResult {
    /// The quantile levels.
    pub levels: Vec<f64>,
    /// Years from the base year.
    pub years: Vec<i32>,
    /// Population by `(area, sex, age, year)`, if asked for.
    pub population: Option<Summary>,
    /// Components (births, deaths, in_migration, out_migration, unmet_out_migration)
    /// by `(area, sex, projected year)`, if asked for.
    pub components: Option<Vec<Summary>>,
    /// The year slots that were projected (the components' years).
    pub projected: Vec<usize>,
    /// Per service, in the order given.
    pub services: Vec<ServiceSummary>,
}

/// Why a Monte Carlo run failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum McError {
    /// The projection's inputs.
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    /// A service.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A setting out of range.
    #[error("uncertainty: {0}")]
    Spec(String),
}

/// A service with what the run needs of it.
pub struct ServiceInput<'a> {
    /// The service.
    pub service: &'a Service,
    /// Shares of a fixed cost per service by `(area, year)`: each area's share of the
    /// deterministic run's demand. Under uncertainty a per-service fixed cost is
    /// carried by the areas in these shares.
    pub fixed_shares: Option<&'a Array2<f64>>,
    /// Discount rate of the present value.
    pub discount_rate: f64,
}

/// The multipliers of every trajectory by year slot: fertility, mortality, flows.
struct Multipliers {
    /// `(trajectory, slot)`.
    fert: Vec<f64>,
    mort: Vec<f64>,
    /// `(trajectory, flow, slot)`.
    flows: Vec<f64>,
    ny: usize,
    nf: usize,
}

impl Multipliers {
    fn new(spec: &Spec, ny: usize, nf: usize) -> Multipliers {
        let n = spec.trajectories;
        let mut m = Multipliers {
            fert: vec![1.0; n * ny],
            mort: vec![1.0; n * ny],
            flows: vec![1.0; n * nf * ny],
            ny,
            nf,
        };
        let path = |rng: &mut Rng, p: Ar1, out: &mut [f64]| {
            let mut z = 0.0;
            out[0] = 1.0;
            for o in &mut out[1..] {
                z = p.ar * z + p.sd * rng.normal();
                *o = z.exp();
            }
        };
        for t in 0..n {
            let mut rng = Rng::new(&[spec.seed, t as u64, 0]);
            path(&mut rng, spec.fertility, &mut m.fert[t * ny..(t + 1) * ny]);
            path(&mut rng, spec.mortality, &mut m.mort[t * ny..(t + 1) * ny]);
            for f in 0..nf {
                let at = (t * nf + f) * ny;
                path(&mut rng, spec.migration, &mut m.flows[at..at + ny]);
            }
        }
        m
    }

    fn get(&self, v: &[f64], t: usize, k: usize) -> f64 {
        v.get(t * self.ny + k).copied().unwrap_or(1.0)
    }

    fn flow(&self, t: usize, f: usize, k: usize) -> f64 {
        self.flows
            .get((t * self.nf + f) * self.ny + k)
            .copied()
            .unwrap_or(1.0)
    }
}

/// What one block of trajectories wrote, per cell and lane.
struct BlockOut {
    /// Population by `(cell, lane)`, cells `(area, sex, age, year)` of the group.
    pop: Vec<f64>,
    /// Components by `(component, cell, lane)`, cells `(area, sex, projected year)`.
    comps: Vec<f64>,
    /// Per service: by `(cell, lane)`, cells demand `(segment, area, year)`, then
    /// resources `(resource, area, year)`, then costs `(component, area, year)`.
    services: Vec<Vec<f64>>,
    /// Working space: demand by `(segment, age)` per lane, and one lane's.
    scratch: Vec<V>,
    by_age: Vec<f64>,
}

/// Everything a block needs.
struct Ctx<'a> {
    spec: &'a Spec,
    want: Want,
    known: &'a [Option<ArrayView3<'a, f64>>],
    rates: &'a [Option<YearRates>],
    years: &'a [i32],
    base_year: i32,
    n: usize,
    mult: &'a Multipliers,
    services: &'a [ServiceInput<'a>],
    weights: &'a [Weights],
    /// Which resources each service has (floor, groups, hours, teachers, staff).
    has: Vec<[bool; 5]>,
    projected: &'a [usize],
    /// Per year slot, per flow given as counts, the sum over indices per
    /// `(row, sex)`.
    count_sums: Vec<Vec<Vec<f64>>>,
}

impl Ctx<'_> {
    fn service_cells(&self, i: usize, ga: usize) -> usize {
        let ny = self.years.len();
        let ng = self.services[i].service.segments.len();
        let nr = self.has[i].iter().filter(|h| **h).count();
        if self.want.costs {
            (ng + nr + 6) * ga * ny
        } else {
            ng * ga * ny
        }
    }

    fn services_wanted(&self) -> bool {
        self.want.demand || self.want.costs
    }
}

/// Runs `spec.trajectories` trajectories of the projection of `pop` from `base_year`
/// to `end_year` and summarises the outputs `want` asks for. `progress` is called
/// with (blocks done, blocks in all) as the run goes on.
///
/// # Errors
/// [`McError`] if the projection's rates cannot be resolved, a service's parameters
/// have no value for a cell, or a setting is out of range.
#[allow(clippy::too_many_arguments)]
pub fn run(
    pop: &Population,
    base_year: i32,
    end_year: i32,
    inputs: Option<&ProjectionInputs>,
    spec: &Spec,
    services: &[ServiceInput<'_>],
    want: Want,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<McResult, McError> {
    if spec.trajectories == 0 {
        return Err(McError::Spec("trajectories must be at least 1".into()));
    }
    if !spec.quantiles.iter().all(|q| *q > 0.0 && *q < 1.0)
        || spec.quantiles.windows(2).any(|w| w[0] >= w[1])
    {
        return Err(McError::Spec(
            "quantiles must lie strictly between 0 and 1, in ascending order".into(),
        ));
    }
    for (name, p) in [
        ("fertility", spec.fertility),
        ("mortality", spec.mortality),
        ("migration", spec.migration),
    ] {
        if !(p.sd >= 0.0 && p.sd.is_finite() && (-1.0..=1.0).contains(&p.ar)) {
            return Err(McError::Spec(format!(
                "{name}: the spread must be 0 or more and the persistence between -1 and 1"
            )));
        }
    }
    if inputs.is_some_and(|i| i.flows.len() > MAX_FLOWS) {
        return Err(McError::Spec(format!(
            "at most {MAX_FLOWS} migration flows can run under uncertainty"
        )));
    }
    let r = resolve(pop, base_year, end_year, inputs)?;
    let (na, n) = (pop.areas().len(), pop.n_ages());
    let ny = r.years.len();
    let nf = inputs.map_or(0, |i| i.flows.len());
    let weights = services
        .iter()
        .map(|s| {
            crate::services::check_teaching(s.service)?;
            Weights::new(s.service, na, &r.years, n - 1)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mult = Multipliers::new(spec, ny, nf);
    let closed = r
        .year_rates
        .iter()
        .flatten()
        .any(|y| y.flows.iter().any(|f| f.destinations.is_some()));
    let projected: Vec<usize> = (1..ny).filter(|k| r.year_rates[*k].is_some()).collect();
    let ctx = Ctx {
        spec,
        want,
        known: &r.known,
        rates: &r.year_rates,
        years: &r.years,
        base_year,
        n,
        mult: &mult,
        services,
        weights: &weights,
        has: services.iter().map(|s| s.service.resources()).collect(),
        projected: &projected,
        count_sums: r
            .year_rates
            .iter()
            .map(|yr| {
                yr.as_ref().map_or_else(Vec::new, |yr| {
                    yr.flows
                        .iter()
                        .map(|f| match &f.values {
                            FlowValues::Counts(c) => c
                                .as_slice()
                                .expect("standard layout")
                                .chunks_exact(c.dim().2)
                                .map(|l| l.iter().sum())
                                .collect(),
                            FlowValues::OutRates(_) => Vec::new(),
                        })
                        .collect()
                })
            })
            .collect(),
    };
    // Areas are independent unless a closed internal system couples them.
    let groups: Vec<std::ops::Range<usize>> = if closed {
        std::iter::once(0..na).collect()
    } else {
        (0..na).map(|a| a..a + 1).collect()
    };
    let nt = spec.trajectories;
    let nb = nt.div_ceil(LANES);
    let total = groups.len() * nb;
    let done = AtomicUsize::new(0);
    let levels = &spec.quantiles;
    let nl = levels.len();
    let nyp = projected.len();
    let mut population = want.population.then(|| Summary::zeros(na * 2 * n * ny, nl));
    let mut components = want
        .components
        .then(|| vec![Summary::zeros(na * 2 * nyp, nl); 5]);
    let mut svc: Vec<ServiceSummary> = services
        .iter()
        .enumerate()
        .map(|(i, s)| ServiceSummary {
            demand: Summary::zeros(s.service.segments.len() * na * ny, nl),
            resources: RESOURCES
                .iter()
                .zip(ctx.has[i])
                .filter(|(_, h)| *h && want.costs)
                .map(|(r, _)| (*r, Summary::zeros(na * ny, nl)))
                .collect(),
            costs: if want.costs {
                vec![Summary::zeros(na * ny, nl); 6]
            } else {
                Vec::new()
            },
            total_demand: Summary::default(),
            total_cost: Summary::default(),
            present_value: Summary::default(),
        })
        .collect();
    // Per service: demand and total cost by (year, trajectory), summed over areas.
    let mut totals: Vec<(Vec<f64>, Vec<f64>)> = services
        .iter()
        .map(|_| (vec![0.0; ny * nt], vec![0.0; ny * nt]))
        .collect();
    let stride = 1 + nl;
    // One group: its blocks (in parallel when it is the only group), then each cell's
    // values gathered over the trajectories and summarised, packed `stride` values a
    // cell (mean, then the quantiles).
    let run_group = |g: &std::ops::Range<usize>, parallel: bool, vals: &mut Vec<f64>| -> GroupOut {
        let ga = g.len();
        let block = |b: usize| {
            let out = crate::projection::simd_dispatch(BlockRun {
                ctx: &ctx,
                group: g.clone(),
                t0: b * LANES,
            });
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            out
        };
        let blocks: Vec<BlockOut> = if parallel {
            (0..nb).into_par_iter().map(block).collect()
        } else {
            (0..nb).map(block).collect()
        };
        let mut gather = |get: &(dyn Fn(&BlockOut) -> &[f64] + Sync), cells: usize| -> Vec<f64> {
            vals.clear();
            vals.resize(cells * nt, 0.0);
            for (b, blk) in blocks.iter().enumerate() {
                let t0 = b * LANES;
                let m = LANES.min(nt - t0);
                let src = get(blk).chunks_exact(LANES).take(cells);
                for (dst, src) in vals.chunks_exact_mut(nt).zip(src) {
                    dst[t0..t0 + m].copy_from_slice(&src[..m]);
                }
            }
            let summarise_cell = |keys: &mut Vec<i64>, v: &mut [f64], packed: &mut [f64]| {
                let (mean, q) = summarise_with(v, levels, keys);
                packed[0] = mean;
                packed[1..].copy_from_slice(&q);
            };
            let mut packed = vec![0.0; cells * stride];
            if parallel {
                vals.par_chunks_mut(nt)
                    .zip(packed.par_chunks_mut(stride))
                    .for_each_init(Vec::new, |keys, (v, p)| summarise_cell(keys, v, p));
            } else {
                let mut keys = Vec::new();
                for (v, p) in vals.chunks_mut(nt).zip(packed.chunks_mut(stride)) {
                    summarise_cell(&mut keys, v, p);
                }
            }
            packed
        };
        let pop = want
            .population
            .then(|| gather(&|b| &b.pop, ga * 2 * n * ny));
        let per = ga * 2 * nyp;
        let comps = want.components.then(|| {
            (0..5)
                .map(|j| gather(&|b| &b.comps[j * per * LANES..(j + 1) * per * LANES], per))
                .collect()
        });
        let svcs: Vec<Vec<f64>> = if ctx.services_wanted() {
            (0..services.len())
                .map(|i| gather(&|b| &b.services[i], ctx.service_cells(i, ga)))
                .collect()
        } else {
            Vec::new()
        };
        // Per trajectory: every service's demand and total cost of this group by year.
        let mut tots: Vec<(Vec<f64>, Vec<f64>)> = Vec::new();
        if ctx.services_wanted() {
            for i in 0..services.len() {
                let (mut d, mut c) = (vec![0.0; ny * nt], vec![0.0; ny * nt]);
                let ng = services[i].service.segments.len();
                let nres = ctx.has[i].iter().filter(|h| **h).count();
                let per = ga * ny;
                for (b, blk) in blocks.iter().enumerate() {
                    let src = &blk.services[i];
                    for l in 0..LANES.min(nt - b * LANES) {
                        let t = b * LANES + l;
                        for al in 0..ga {
                            for k in 0..ny {
                                for g in 0..ng {
                                    d[k * nt + t] += src[((g * per) + al * ny + k) * LANES + l];
                                }
                                if want.costs {
                                    let cell = (ng + nres + 5) * per + al * ny + k;
                                    c[k * nt + t] += src[cell * LANES + l];
                                }
                            }
                        }
                    }
                }
                tots.push((d, c));
            }
        }
        GroupOut {
            pop,
            comps,
            svcs,
            tots,
        }
    };
    let set = |sm: &mut Summary, cell: usize, packed: &[f64]| {
        sm.mean[cell] = packed[0];
        for (q, v) in sm.q.iter_mut().zip(&packed[1..]) {
            q[cell] = *v;
        }
    };
    // Independent areas run in parallel, a few at a time so that their outputs stay
    // small, and are put in place in order (so sums over areas are the same whatever
    // the threads); a single coupled group runs its blocks in parallel instead.
    let chunk = if groups.len() == 1 {
        1
    } else {
        4 * rayon::current_num_threads()
    };
    for gs in groups.chunks(chunk) {
        let outs: Vec<GroupOut> = if gs.len() == 1 {
            vec![run_group(&gs[0], true, &mut Vec::new())]
        } else {
            gs.par_iter()
                .map_init(Vec::new, |vals, g| run_group(g, false, vals))
                .collect()
        };
        for (g, o) in gs.iter().zip(outs) {
            let ga = g.len();
            if let (Some(ps), Some(v)) = (&mut population, &o.pop) {
                let offset = g.start * 2 * n * ny;
                for (c, p) in v.chunks_exact(stride).enumerate() {
                    set(ps, offset + c, p);
                }
            }
            if let (Some(cs), Some(v)) = (&mut components, &o.comps) {
                let offset = g.start * 2 * nyp;
                for (comp, v) in cs.iter_mut().zip(v.iter()) {
                    for (c, p) in v.chunks_exact(stride).enumerate() {
                        set(comp, offset + c, p);
                    }
                }
            }
            for (i, (s, v)) in svc.iter_mut().zip(&o.svcs).enumerate() {
                let ng = services[i].service.segments.len();
                let nres = s.resources.len();
                let per = ga * ny;
                for (c, p) in v.chunks_exact(stride).enumerate() {
                    // Cells: demand (g, a, k), resources (r, a, k), costs (c, a, k).
                    let (block, rest) = (c / per, c % per);
                    let (al, k) = (rest / ny, rest % ny);
                    let cell = (g.start + al) * ny + k;
                    if block < ng {
                        set(&mut s.demand, block * na * ny + cell, p);
                    } else if block < ng + nres {
                        set(&mut s.resources[block - ng].1, cell, p);
                    } else {
                        set(&mut s.costs[block - ng - nres], cell, p);
                    }
                }
            }
            for ((d, c), (gd, gc)) in totals.iter_mut().zip(&o.tots) {
                for (x, y) in d.iter_mut().zip(gd) {
                    *x += y;
                }
                for (x, y) in c.iter_mut().zip(gc) {
                    *x += y;
                }
            }
        }
    }
    for (i, (d, c)) in totals.iter_mut().enumerate() {
        let whole = |v: &mut Vec<f64>, cells: usize| -> Summary {
            let mut sm = Summary::zeros(cells, nl);
            for (k, chunk) in v.chunks_exact_mut(nt).enumerate().take(cells) {
                let (mean, q) = summarise(chunk, levels);
                sm.mean[k] = mean;
                for (dst, v) in sm.q.iter_mut().zip(q) {
                    dst[k] = v;
                }
            }
            sm
        };
        if want.costs {
            let rate = services[i].discount_rate;
            let mut pv: Vec<f64> = (0..nt)
                .map(|t| {
                    (0..ny)
                        .map(|k| {
                            c[k * nt + t]
                                * crate::services::discount_factor(rate, r.years[k], base_year)
                        })
                        .sum()
                })
                .collect();
            svc[i].present_value = whole(&mut pv, 1);
            svc[i].total_cost = whole(c, ny);
        }
        if ctx.services_wanted() {
            svc[i].total_demand = whole(d, ny);
        }
    }
    Ok(McResult {
        levels: levels.clone(),
        years: r.years.clone(),
        population,
        components,
        projected,
        services: svc,
    })
}

/// What one group of areas gives: packed summaries (mean, then quantiles, per cell)
/// and, per service, its demand and total cost by (year, trajectory).
struct GroupOut {
    pop: Option<Vec<f64>>,
    comps: Option<Vec<Vec<f64>>>,
    svcs: Vec<Vec<f64>>,
    tots: Vec<(Vec<f64>, Vec<f64>)>,
}

/// One block of trajectories through every year for a group of areas.
struct BlockRun<'c, 'a> {
    ctx: &'c Ctx<'a>,
    group: std::ops::Range<usize>,
    t0: usize,
}

impl crate::projection::Kernel for BlockRun<'_, '_> {
    type Output = BlockOut;

    #[inline(always)]
    fn run(self) -> BlockOut {
        if self.ctx.spec.process_noise {
            run_block::<true>(self.ctx, self.group, self.t0)
        } else {
            run_block::<false>(self.ctx, self.group, self.t0)
        }
    }
}

/// Per-lane multipliers of a year.
struct LaneYear {
    mf: V,
    mq: V,
    /// Per flow, its multiplier times the flow's own (lever) multiplier.
    mm: Vec<V>,
}

#[inline(always)]
fn run_block<const NOISE: bool>(
    ctx: &Ctx<'_>,
    group: std::ops::Range<usize>,
    t0: usize,
) -> BlockOut {
    let (n, ny) = (ctx.n, ctx.years.len());
    let ga = group.len();
    let nyp = ctx.projected.len();
    let lanes_t: [usize; LANES] = std::array::from_fn(|l| (t0 + l).min(ctx.spec.trajectories - 1));
    let mut rngs: Vec<[Rng; LANES]> = if NOISE {
        group
            .clone()
            .map(|a| {
                std::array::from_fn(|l| Rng::new(&[ctx.spec.seed, lanes_t[l] as u64, 1, a as u64]))
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut out = BlockOut {
        pop: if ctx.want.population {
            vec![0.0; ga * 2 * n * ny * LANES]
        } else {
            Vec::new()
        },
        comps: if ctx.want.components {
            vec![0.0; 5 * ga * 2 * nyp * LANES]
        } else {
            Vec::new()
        },
        services: if ctx.services_wanted() {
            (0..ctx.services.len())
                .map(|i| vec![0.0; ctx.service_cells(i, ga) * LANES])
                .collect()
        } else {
            Vec::new()
        },
        scratch: Vec::new(),
        by_age: Vec::new(),
    };
    let mut cur: Vec<V> = vec![[0.0; LANES]; ga * 2 * n];
    let mut next: Vec<V> = cur.clone();
    let nfl = ctx
        .rates
        .iter()
        .flatten()
        .map(|r| r.flows.len())
        .max()
        .unwrap_or(0);
    // Scratch: births by area, newborns by (area, sex), closed-system movers by
    // (flow, area, sex, index) and pools by (flow, sex, index).
    let mut births: Vec<V> = vec![[0.0; LANES]; ga];
    let mut movers: Vec<V> = Vec::new();
    let mut pool: Vec<V> = Vec::new();
    let mut comp: Vec<[V; 5]> = vec![[[0.0; LANES]; 5]; ga * 2];
    let mut ly = LaneYear {
        mf: [1.0; LANES],
        mq: [1.0; LANES],
        mm: vec![[1.0; LANES]; nfl],
    };
    for k in 0..ny {
        if let Some(given) = &ctx.known[k] {
            for (al, a) in group.clone().enumerate() {
                for s in 0..2 {
                    for x in 0..n {
                        next[(al * 2 + s) * n + x] = [given[[a, s, x]]; LANES];
                    }
                }
            }
        } else if let Some(r) = &ctx.rates[k] {
            for l in 0..LANES {
                let t = lanes_t[l];
                ly.mf[l] = ctx.mult.get(&ctx.mult.fert, t, k);
                ly.mq[l] = ctx.mult.get(&ctx.mult.mort, t, k);
                for (f, fl) in r.flows.iter().enumerate() {
                    ly.mm[f][l] = ctx.mult.flow(t, f, k) * fl.multiplier;
                }
            }
            if NOISE {
                step_noisy(
                    ctx,
                    r,
                    &ly,
                    &group,
                    &cur,
                    &mut next,
                    &mut births,
                    &mut movers,
                    &mut pool,
                    &mut comp,
                    &mut rngs,
                );
            } else {
                step_fast(
                    ctx, k, r, &ly, &group, &cur, &mut next, &mut pool, &mut comp,
                );
            }
            if ctx.want.components {
                let kp = ctx.projected.iter().position(|p| *p == k).unwrap_or(0);
                let per = ga * 2 * nyp;
                for (i, c) in comp.iter().enumerate() {
                    for (j, v) in c.iter().enumerate() {
                        let cell = j * per + i * nyp + kp;
                        out.comps[cell * LANES..(cell + 1) * LANES].copy_from_slice(v);
                    }
                }
            }
        }
        std::mem::swap(&mut cur, &mut next);
        observe(ctx, &group, k, &cur, &mut out);
    }
    out
}

/// Records year slot `k`'s state: the population, and each service's demand,
/// resources and costs per lane.
#[inline(always)]
fn observe(ctx: &Ctx<'_>, group: &std::ops::Range<usize>, k: usize, cur: &[V], out: &mut BlockOut) {
    let (n, ny) = (ctx.n, ctx.years.len());
    let ga = group.len();
    if ctx.want.population {
        for (i, v) in cur.iter().enumerate() {
            let cell = i * ny + k;
            out.pop[cell * LANES..(cell + 1) * LANES].copy_from_slice(v);
        }
    }
    if !ctx.services_wanted() {
        return;
    }
    let y = ctx.years[k];
    let per = ga * ny;
    for (i, s) in ctx.services.iter().enumerate() {
        let sv = s.service;
        let w = ctx.weights[i]
            .w
            .as_slice()
            .expect("weights are in standard layout");
        let (ng, ni) = (sv.segments.len(), ctx.weights[i].w.dim().4);
        let lo = usize::from(sv.ages.0);
        let dst = &mut out.services[i];
        let d = &mut out.scratch;
        d.clear();
        d.resize(ng * ni, [0.0; LANES]);
        for (al, a) in group.clone().enumerate() {
            let at = |block: usize| (block * per + al * ny + k) * LANES;
            if !ctx.want.costs {
                // Demand only: each segment's sum over ages straight from the state.
                for g in 0..ng {
                    let mut sum = [0.0; LANES];
                    for sx in 0..2 {
                        let base = ((a * ny + k) * 2 + sx) * ng * ni + g * ni;
                        let wg = &w[base..base + ni];
                        let p = &cur[(al * 2 + sx) * n + lo..(al * 2 + sx) * n + lo + ni];
                        for (wv, p) in wg.iter().zip(p) {
                            for l in 0..LANES {
                                sum[l] += p[l] * wv;
                            }
                        }
                    }
                    dst[at(g)..at(g) + LANES].copy_from_slice(&sum);
                }
                continue;
            }
            for v in d.iter_mut() {
                *v = [0.0; LANES];
            }
            for sx in 0..2 {
                let base = ((a * ny + k) * 2 + sx) * ng * ni;
                let ws = &w[base..base + ng * ni];
                let p = &cur[(al * 2 + sx) * n + lo..(al * 2 + sx) * n + lo + ni];
                for (dg, wg) in d.chunks_exact_mut(ni).zip(ws.chunks_exact(ni)) {
                    for ((o, wv), p) in dg.iter_mut().zip(wg).zip(p) {
                        for l in 0..LANES {
                            o[l] += p[l] * wv;
                        }
                    }
                }
            }
            for (g, dg) in d.chunks_exact(ni).enumerate() {
                let mut sum = [0.0; LANES];
                for v in dg {
                    for l in 0..LANES {
                        sum[l] += v[l];
                    }
                }
                dst[at(g)..at(g) + LANES].copy_from_slice(&sum);
            }
            if !ctx.want.costs {
                continue;
            }
            let (fixed, overhead) = service_fixed(sv, y, ctx.base_year);
            let share = s.fixed_shares.map_or(0.0, |f| f[[a, k]]);
            let has = ctx.has[i];
            let nres = has.iter().filter(|h| **h).count();
            let by_age = &mut out.by_age;
            by_age.resize(ng * ni, 0.0);
            for l in 0..LANES {
                for (b, v) in by_age.iter_mut().zip(d.iter()) {
                    *b = v[l];
                }
                let v = year_values(sv, by_age, y, ctx.base_year);
                let res = [
                    v.floor_area_m2,
                    v.groups,
                    v.weekly_hours,
                    v.teacher_fte,
                    v.staff_fte,
                ];
                let mut r = 0;
                for (h, val) in has.iter().zip(res) {
                    if *h {
                        dst[at(ng + r) + l] = val;
                        r += 1;
                    }
                }
                let mut costs = v.costs;
                costs[3] += fixed * share;
                costs[4] += overhead * share;
                let total = costs.iter().sum::<f64>();
                for (c, val) in costs.iter().chain(std::iter::once(&total)).enumerate() {
                    dst[at(ng + nres + c) + l] = *val;
                }
            }
        }
    }
}

/// The most migration flows a Monte Carlo run takes.
pub const MAX_FLOWS: usize = 16;

/// The flows of one (area, sex) in a year, with their lane multipliers.
struct FlowLanes<'f> {
    /// Out-rates by index and their multipliers.
    rates: &'f [(&'f [f64], V)],
    /// Counts by index and their signed multipliers.
    counts: &'f [(&'f [f64], V)],
    /// Destination shares by index and the closed system's position in `pool`.
    closed: &'f [(&'f [f64], usize)],
    pool: &'f [V],
    s: usize,
    w: usize,
}

impl FlowLanes<'_> {
    /// At index `i`: the combined out-rate, the net count and the arrivals per lane
    /// (`ARR`: of closed systems; 0 without).
    #[inline(always)]
    fn at<const ARR: bool>(&self, i: usize) -> (V, V, V) {
        let (mut rc, mut cn, mut arr) = ([0.0; LANES], [0.0; LANES], [0.0; LANES]);
        for (r, m) in self.rates {
            for l in 0..LANES {
                rc[l] += m[l] * r[i];
            }
        }
        for (c, m) in self.counts {
            for l in 0..LANES {
                cn[l] += m[l] * c[i];
            }
        }
        if ARR {
            for (d, ci) in self.closed {
                let p = &self.pool[(ci * 2 + self.s) * self.w + i];
                for l in 0..LANES {
                    arr[l] += d[i] * p[l];
                }
            }
        }
        (rc, cn, arr)
    }
}

/// Births per lane in area `a` (position `al` in the group) from its women.
#[inline(always)]
fn births_fast(r: &YearRates, ly: &LaneYear, cur: &[V], n: usize, al: usize, a: usize) -> V {
    let f = r
        .fertility
        .row(if r.fertility.dim().0 == 1 { 0 } else { a });
    let f = f.as_slice().expect("standard layout");
    let level = r.fertility_factor.get(a).copied().unwrap_or(1.0);
    let women = &cur[al * 2 * n..al * 2 * n + n];
    let mut b = [0.0; LANES];
    for (fx, p) in f.iter().zip(women) {
        if *fx != 0.0 {
            for l in 0..LANES {
                b[l] += fx * p[l];
            }
        }
    }
    for l in 0..LANES {
        b[l] *= level * ly.mf[l];
    }
    b
}

/// Newborns of sex `s` per lane and their deaths in the birth year: (born, deaths).
#[inline(always)]
fn newborns_fast(r: &YearRates, qfm: &V, n: usize, a: usize, s: usize, b: &V) -> (V, V) {
    let share = if s == 1 {
        r.boys_share
    } else {
        1.0 - r.boys_share
    };
    let qb = lane(&r.q, a, s)[n];
    let (mut born, mut bd) = ([0.0; LANES], [0.0; LANES]);
    for l in 0..LANES {
        born[l] = b[l] * share;
        bd[l] = (born[l] * (qb * qfm[l])).min(born[l]);
    }
    (born, bd)
}

/// The survivors of one index per lane; adds to the lane sums.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn survive_lanes(
    p: &V,
    d: &V,
    rc: &V,
    cn: &V,
    arr: &V,
    deaths: &mut V,
    leave: &mut V,
    arrived: &mut V,
    unmet: &mut V,
) -> V {
    let mut x = [0.0; LANES];
    for l in 0..LANES {
        let lv = rc[l] * p[l];
        let v = p[l] - d[l] + cn[l] + arr[l] - lv;
        let kept = if v > 0.0 { v } else { 0.0 };
        deaths[l] += d[l];
        leave[l] += lv;
        arrived[l] += arr[l];
        unmet[l] += kept - v;
        x[l] = kept;
    }
    x
}

/// The running sums of a lane pass.
struct Sums<'s> {
    deaths: &'s mut V,
    leave: &'s mut V,
    arrived: &'s mut V,
    unmet: &'s mut V,
}

/// Survivors of ages `0..ω` of one (area, sex) per lane, written one age up into
/// `out`; returns the open group's own survivors. `COMP`: keep the sums; `ARR`: add
/// arrivals of closed systems.
#[inline(always)]
fn ages_pass<const COMP: bool, const ARR: bool>(
    flows: &FlowLanes<'_>,
    p: &[V],
    q: &[f64],
    qfm: &V,
    out: &mut [V],
    sums: &mut Sums<'_>,
) -> V {
    let n = p.len();
    let mut open = [0.0; LANES];
    for i in 0..n {
        let (rc, cn, arr) = flows.at::<ARR>(i);
        let pi = &p[i];
        let mut x = [0.0; LANES];
        for l in 0..LANES {
            let dv = pi[l] * (q[i] * qfm[l]);
            let d = if dv < pi[l] { dv } else { pi[l] };
            let lv = rc[l] * pi[l];
            let v = pi[l] - d + cn[l] + arr[l] - lv;
            let kept = if v > 0.0 { v } else { 0.0 };
            if COMP {
                sums.deaths[l] += d;
                sums.leave[l] += lv;
                sums.arrived[l] += arr[l];
                sums.unmet[l] += kept - v;
            }
            x[l] = kept;
        }
        if i + 1 < n {
            out[i + 1] = x;
        } else {
            open = x;
        }
    }
    open
}

/// One year step of a block for a group of areas without process noise: MODEL.md §2
/// per lane with the lanes' multipliers. The rates of an (area, sex) are first
/// combined per lane into a few arrays; the pass over the ages is then a handful of
/// vertical vector operations per age.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn step_fast(
    ctx: &Ctx<'_>,
    k: usize,
    r: &YearRates,
    ly: &LaneYear,
    group: &std::ops::Range<usize>,
    cur: &[V],
    next: &mut [V],
    pool: &mut Vec<V>,
    comp: &mut [[V; 5]],
) {
    let n = ctx.n;
    let w = n + 1;
    let qf = r.q_factor;
    let zero: V = [0.0; LANES];
    let mut qfm = zero;
    for l in 0..LANES {
        qfm[l] = qf * ly.mq[l];
    }
    let births_of = |al: usize, a: usize| births_fast(r, ly, cur, n, al, a);
    let newborns = |a: usize, s: usize, b: &V| newborns_fast(r, &qfm, n, a, s, b);
    let mut closed = [0usize; MAX_FLOWS];
    let mut n_closed = 0;
    for (f, fl) in r.flows.iter().enumerate() {
        if fl.destinations.is_some() {
            closed[n_closed] = f;
            n_closed += 1;
        }
    }
    let closed = &closed[..n_closed];
    if !closed.is_empty() {
        // Every area's movers of each closed system, pooled per sex and index.
        pool.clear();
        pool.resize(closed.len() * 2 * w, zero);
        for (al, a) in group.clone().enumerate() {
            let b = births_of(al, a);
            for s in 0..2 {
                let (born, bd) = newborns(a, s, &b);
                let p = &cur[(al * 2 + s) * n..(al * 2 + s + 1) * n];
                for (ci, &f) in closed.iter().enumerate() {
                    let FlowValues::OutRates(rates) = &r.flows[f].values else {
                        continue;
                    };
                    let rl = lane(rates, a, s);
                    let m = &ly.mm[f];
                    let dst = &mut pool[(ci * 2 + s) * w..(ci * 2 + s + 1) * w];
                    for i in 0..n {
                        for l in 0..LANES {
                            dst[i][l] += m[l] * rl[i] * p[i][l];
                        }
                    }
                    for l in 0..LANES {
                        dst[n][l] += m[l] * rl[n] * (born[l] - bd[l]);
                    }
                }
            }
        }
    }
    for (al, a) in group.clone().enumerate() {
        let b = births_of(al, a);
        for s in 0..2 {
            let q = &lane(&r.q, a, s)[..w];
            let (born, bd) = newborns(a, s, &b);
            // The flows of this (area, sex): rates and signed counts with their lane
            // multipliers, arrivals of closed systems with their pools.
            let empty: &[f64] = &[];
            let mut rates = [(empty, zero); MAX_FLOWS];
            let mut counts = [(empty, zero); MAX_FLOWS];
            let mut closed = [(empty, 0usize); MAX_FLOWS];
            let (mut nr, mut nc, mut nd) = (0, 0, 0);
            let (mut count_in, mut count_out) = (zero, zero);
            let mut ci = 0;
            for (f, fl) in r.flows.iter().enumerate() {
                let m = ly.mm[f];
                match &fl.values {
                    FlowValues::Counts(c) => {
                        let row = if c.dim().0 == 1 { 0 } else { a };
                        let total = ctx.count_sums[k][f][row * 2 + s];
                        let sign = if fl.direction == Direction::In {
                            1.0
                        } else {
                            -1.0
                        };
                        let dst = if sign > 0.0 {
                            &mut count_in
                        } else {
                            &mut count_out
                        };
                        let mut signed = zero;
                        for l in 0..LANES {
                            dst[l] += m[l] * total;
                            signed[l] = sign * m[l];
                        }
                        counts[nc] = (&lane(c, a, s)[..w], signed);
                        nc += 1;
                    }
                    FlowValues::OutRates(rt) => {
                        rates[nr] = (&lane(rt, a, s)[..w], m);
                        nr += 1;
                        if let Some(dest) = &fl.destinations {
                            closed[nd] = (&lane(dest, a, s)[..w], ci);
                            nd += 1;
                            ci += 1;
                        }
                    }
                }
            }
            let p = &cur[(al * 2 + s) * n..(al * 2 + s + 1) * n];
            let out = &mut next[(al * 2 + s) * n..(al * 2 + s + 1) * n];
            let (mut deaths, mut leave, mut unmet, mut arrived) = (zero, zero, zero, zero);
            let flows = FlowLanes {
                rates: &rates[..nr],
                counts: &counts[..nc],
                closed: &closed[..nd],
                pool,
                s,
                w,
            };
            // Survivors of ages 0..ω−1 move one age up; ω keeps its own. The pass is
            // compiled without the sums when no components are asked for and without
            // arrivals when there is no closed system.
            let mut sums = Sums {
                deaths: &mut deaths,
                leave: &mut leave,
                arrived: &mut arrived,
                unmet: &mut unmet,
            };
            let open = match (ctx.want.components, nd > 0) {
                (true, true) => ages_pass::<true, true>(&flows, p, q, &qfm, out, &mut sums),
                (true, false) => ages_pass::<true, false>(&flows, p, q, &qfm, out, &mut sums),
                (false, true) => ages_pass::<false, true>(&flows, p, q, &qfm, out, &mut sums),
                (false, false) => ages_pass::<false, false>(&flows, p, q, &qfm, out, &mut sums),
            };
            // Newborns: out-rates at the birth index apply after birth-year deaths.
            let mut base = zero;
            for l in 0..LANES {
                base[l] = born[l] - bd[l];
                deaths[l] += bd[l];
            }
            let (rc, cn, arr) = flows.at::<true>(n);
            let x = survive_lanes(
                &base,
                &zero,
                &rc,
                &cn,
                &arr,
                &mut deaths,
                &mut leave,
                &mut arrived,
                &mut unmet,
            );
            if n == 1 {
                for l in 0..LANES {
                    out[0][l] = x[l] + open[l];
                }
            } else {
                out[0] = x;
                for l in 0..LANES {
                    out[n - 1][l] += open[l];
                }
            }
            let c = &mut comp[al * 2 + s];
            c[0] = born;
            c[1] = deaths;
            for l in 0..LANES {
                c[2][l] = count_in[l] + arrived[l];
                c[3][l] = count_out[l] + leave[l];
            }
            c[4] = unmet;
        }
    }
}

/// One year step of a block for a group of areas: MODEL.md §2 per lane, with the
/// lanes' multipliers and Poisson draws of births, deaths and movers (process noise).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn step_noisy(
    ctx: &Ctx<'_>,
    r: &YearRates,
    ly: &LaneYear,
    group: &std::ops::Range<usize>,
    cur: &[V],
    next: &mut [V],
    births: &mut [V],
    movers: &mut Vec<V>,
    pool: &mut Vec<V>,
    comp: &mut [[V; 5]],
    rngs: &mut [[Rng; LANES]],
) {
    let n = ctx.n;
    let w = n + 1;
    let qf = r.q_factor;
    let share = [1.0 - r.boys_share, r.boys_share];
    let zero: V = [0.0; LANES];
    // Births from the women at the start of the year.
    for (al, a) in group.clone().enumerate() {
        births[al] = births_fast(r, ly, cur, n, al, a);
    }
    // Newborns of each sex after birth-year deaths, and their Poisson draws.
    let mut born = vec![[zero; 2]; group.len()];
    let mut born_deaths = vec![[zero; 2]; group.len()];
    for (al, a) in group.clone().enumerate() {
        for s in 0..2 {
            let qb = lane(&r.q, a, s)[n] * qf;
            for l in 0..LANES {
                let bs = rngs[al][l].poisson(births[al][l] * share[s]);
                let bd = rngs[al][l].poisson((bs * qb * ly.mq[l]).min(bs)).min(bs);
                born[al][s][l] = bs;
                born_deaths[al][s][l] = bd;
            }
        }
    }
    // Closed internal systems: every area's movers first, pooled per sex and index.
    let closed: Vec<usize> = (0..r.flows.len())
        .filter(|f| r.flows[*f].destinations.is_some())
        .collect();
    let ga = group.len();
    if !closed.is_empty() {
        movers.clear();
        movers.resize(closed.len() * ga * 2 * w, zero);
        pool.clear();
        pool.resize(closed.len() * 2 * w, zero);
        for (ci, &f) in closed.iter().enumerate() {
            let FlowValues::OutRates(rates) = &r.flows[f].values else {
                continue;
            };
            for (al, a) in group.clone().enumerate() {
                for s in 0..2 {
                    let rl = lane(rates, a, s);
                    for i in 0..w {
                        let mut m = zero;
                        for l in 0..LANES {
                            let base = if i < n {
                                cur[(al * 2 + s) * n + i][l]
                            } else {
                                born[al][s][l] - born_deaths[al][s][l]
                            };
                            m[l] = rngs[al][l].poisson(ly.mm[f][l] * rl[i] * base);
                        }
                        movers[((ci * ga + al) * 2 + s) * w + i] = m;
                        let p = &mut pool[(ci * 2 + s) * w + i];
                        for l in 0..LANES {
                            p[l] += m[l];
                        }
                    }
                }
            }
        }
    }
    for (al, a) in group.clone().enumerate() {
        for s in 0..2 {
            let q = lane(&r.q, a, s);
            let (mut deaths, mut unmet, mut inm, mut outm) = (zero, zero, zero, zero);
            let out = &mut next[(al * 2 + s) * n..(al * 2 + s + 1) * n];
            let p_lane = &cur[(al * 2 + s) * n..(al * 2 + s + 1) * n];
            for i in 0..w {
                // The base of index i: the population of age i at the start, or the
                // year's newborns after birth-year deaths.
                let (p, d) = if i < n {
                    let p = p_lane[i];
                    let mut d = zero;
                    for l in 0..LANES {
                        let expected = (p[l] * q[i] * qf * ly.mq[l]).min(p[l]);
                        d[l] = rngs[al][l].poisson(expected).min(p[l]);
                    }
                    (p, d)
                } else {
                    (born[al][s], born_deaths[al][s])
                };
                let (mut cin, mut cout, mut leave, mut arr) = (zero, zero, zero, zero);
                let mut ci = 0;
                for (f, fl) in r.flows.iter().enumerate() {
                    match &fl.values {
                        FlowValues::Counts(c) => {
                            let c = lane(c, a, s)[i];
                            let dst = if fl.direction == Direction::In {
                                &mut cin
                            } else {
                                &mut cout
                            };
                            for l in 0..LANES {
                                dst[l] += ly.mm[f][l] * c;
                            }
                        }
                        FlowValues::OutRates(rt) => {
                            if let Some(dest) = &fl.destinations {
                                let m = movers[((ci * ga + al) * 2 + s) * w + i];
                                let dv = lane(dest, a, s)[i];
                                let pl = pool[(ci * 2 + s) * w + i];
                                for l in 0..LANES {
                                    leave[l] += m[l];
                                    arr[l] += dv * pl[l];
                                }
                                ci += 1;
                            } else {
                                let rv = lane(rt, a, s)[i];
                                for l in 0..LANES {
                                    let base = p[l] - if i < n { 0.0 } else { d[l] };
                                    leave[l] += rngs[al][l].poisson(ly.mm[f][l] * rv * base);
                                }
                            }
                        }
                    }
                }
                for l in 0..LANES {
                    cin[l] = rngs[al][l].poisson(cin[l]);
                    cout[l] = rngs[al][l].poisson(cout[l]);
                }
                let mut x = zero;
                for l in 0..LANES {
                    x[l] = p[l] - d[l] + cin[l] - cout[l] + arr[l] - leave[l];
                    deaths[l] += d[l];
                    inm[l] += cin[l] + arr[l];
                    outm[l] += cout[l] + leave[l];
                    unmet[l] += if x[l] < 0.0 { -x[l] } else { 0.0 };
                    x[l] = if x[l] > 0.0 { x[l] } else { 0.0 };
                }
                // Survivors of age i are age i + 1 at the end; the open group keeps
                // its own; newborns are age 0.
                let dst = if i == n {
                    0
                } else if i + 1 < n {
                    i + 1
                } else {
                    n - 1
                };
                if i + 1 == n && n > 1 {
                    for l in 0..LANES {
                        out[dst][l] += x[l];
                    }
                } else if i == n && n == 1 {
                    for l in 0..LANES {
                        out[0][l] += x[l];
                    }
                } else {
                    out[dst] = x;
                }
            }
            let c = &mut comp[al * 2 + s];
            c[0] = born[al][s];
            c[1] = deaths;
            c[2] = inm;
            c[3] = outm;
            c[4] = unmet;
        }
    }
}

#[cfg(test)]
mod tests;
