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
//! The year is `crate::projection::kernel`'s, the one the deterministic run takes.
//! Eight trajectories run side by side in the lanes of `[f64; 8]` (two AVX registers
//! where the processor has AVX2, chosen at run time): the ages are the inner loop, so
//! births, the open group and the service sums are plain vertical adds, and an area's
//! state (2 × 101 ages × 8 lanes, 13 kB) stays in the L1 cache. The age pass is
//! specialised by the number of flows of each form (`FastFlows`). Closures are kept
//! out of the kernel: they are compiled outside the AVX2 copy.
//!
//! # Quantiles
//! Exact, of type 7: see `Selector` (bucketing, then ordering only the buckets that
//! hold a wanted order statistic).
//!
//! # Where things are
//! - `spec.rs`: what a run is asked for ([`Spec`], [`Ar1`], [`AgeGroups`], [`Want`])
//!   and the defaults;
//! - `rng.rs`: the random streams (counter-based, keyed by seed, trajectory and area);
//! - `crate::projection::kernel` (`src/projection/kernel.rs`): the year kernel,
//!   MODEL.md §2 per lane, the one the deterministic run takes with one lane;
//! - `observe.rs`: what a block records of each year (population, services' demand,
//!   resources and costs per lane; demand asked for alone is taken from the same
//!   pass);
//! - `quantiles.rs`: [`Summary`], the mean and exact quantiles of every cell;
//! - this file: the driver — validation, the blocks of trajectories and their
//!   threads, alignment (`crate::projection::align_year`, per lane), the windows of cells summarised at a time, and the result
//!   types.

// The kernels index lanes (`l in 0..LANES`) across several arrays at once: that is
// what the compiler turns into vector instructions.
#![allow(clippy::needless_range_loop)]

mod observe;
mod quantiles;
mod rng;
mod spec;

use crate::projection::kernel::{
    mv_at, step, step_general, GeneralScratch, LaneYear, Poisson, YearKernel,
};
pub use crate::projection::kernel::{COMPONENTS, MAX_FLOWS};
use observe::*;
use quantiles::*;
pub use quantiles::{summarise, Summary};
pub use rng::Rng;
pub use spec::{quantile_name, AgeGroup, AgeGroups, Ar1, MigrationRate, Spec, Want, QUANTILES};

use crate::population::Population;
use crate::projection::{align_year, lane, resolve, Parents, ProjectionError, ProjectionInputs};
use crate::services::{
    segment_growth, service_fixed, year_values_lanes, Service, ServiceError, Weights, RESOURCES,
};
use ndarray::{Array2, ArrayView3};
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Trajectories run side by side in one block.
pub const LANES: usize = 8;
type V = crate::projection::kernel::V<LANES>;

/// Alignment of the areas to control totals in every trajectory (MODEL.md §4), as
/// [`crate::projection::align`] does for the deterministic run: after each aligned
/// year, every trajectory's children of a parent are multiplied by
/// `control / Σ children` per sex and age (or share out the control where they are
/// all 0). As in the deterministic run the alignment is of the outputs: the
/// population and the services are taken from the aligned population, the next
/// year is projected from the unaligned one, and the components are the
/// projection's own.
///
/// Every trajectory meets the same control totals, so the intervals describe how the
/// parents' populations are spread over their areas, not the uncertainty of the
/// control forecast itself.
#[derive(Debug, Clone, Copy)]
pub struct AlignTo<'a> {
    /// Parent position (in `control`) of each area.
    pub parent_of: &'a [usize],
    /// Control population by `(year slot, parent, sex, age)`; only the year slots of
    /// `slots` are read.
    pub control: ndarray::ArrayView4<'a, f64>,
    /// The year slots aligned (ascending, none of them the base year).
    pub slots: &'a [usize],
}

/// What a block needs of an alignment.
struct AlignCtx<'a> {
    to: AlignTo<'a>,
    /// Per year slot, its position among the aligned slots.
    slot_of: Vec<Option<usize>>,
    /// The areas of each parent and their base-year totals.
    parents: Parents,
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
    /// Total cost of all areas, by year (when services are asked for).
    pub total_cost: Summary,
    /// Present value of the total cost (one cell), when services are asked for.
    pub present_value: Summary,
    /// The total cost of all areas in every trajectory, by `(year, trajectory)`
    /// (`k · trajectories + t`), when services are asked for: what a variant's impact
    /// compares trajectory by trajectory.
    pub total_cost_by_trajectory: Vec<f64>,
    /// Per unit of [`ServiceInput::units`], in that order (empty when neither demand
    /// nor costs are asked for).
    pub units: Vec<UnitSummary>,
}

/// The summaries of one unit of the service network (MODEL.md §9), by year.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitSummary {
    /// Demand sent to the unit, `Σ_a demand[a] · share[a]`.
    pub demand: Summary,
    /// `demand / capacity`; not a number in a year the unit has no places.
    pub utilisation: Summary,
    /// `max(0, demand − capacity · (1 − spare_target))`.
    pub shortage: Summary,
    /// The floor area the demand needs, when services are asked for and the service has a
    /// floor area.
    pub floor_area_need_m2: Option<Summary>,
    /// The share of trajectories with a shortage above 0.
    pub p_shortage: Vec<f64>,
}

/// The result of a Monte Carlo run.
#[derive(Debug, Clone, PartialEq)]
pub struct McResult {
    /// The number of trajectories run.
    pub trajectories: usize,
    /// The seed they were drawn with.
    pub seed: u64,
    /// The quantile levels.
    pub levels: Vec<f64>,
    /// Years from the base year.
    pub years: Vec<i32>,
    /// Population by `(area, sex, age group, year)`, if asked for: the sexes are
    /// female, male and both, the groups those of [`McResult::age_groups`].
    pub population: Option<Summary>,
    /// The labels of the population's age groups (`0-6`, …, `75+`, `all`).
    pub age_groups: Vec<String>,
    /// Components (births, deaths, in_migration, out_migration, unmet_out_migration,
    /// net_migration; see [`COMPONENTS`])
    /// by `(area, sex, projected year)`, if asked for.
    pub components: Option<Vec<Summary>>,
    /// The year slots that were projected (the components' years).
    pub projected: Vec<usize>,
    /// Movers by `(area, sex, projected year)`, one summary per row of
    /// `migration_rows`, if asked for.
    pub migration: Option<Vec<Summary>>,
    /// The rows of the migration summaries: (flow, whether the closed system's
    /// arrivals rather than the flow's own movers), in the order of the flows.
    pub migration_rows: Vec<(usize, bool)>,
    /// Per service, in the order given.
    pub services: Vec<ServiceSummary>,
    /// With an alignment: its factors by `(parent, sex, age, aligned year)`, the
    /// years in the order of [`AlignTo::slots`]; `NaN` in a trajectory where the
    /// children were all 0 and the control was shared out.
    pub alignment: Option<Summary>,
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
    /// More trajectories than fit in [`TRAJECTORY_MEMORY`].
    #[error("uncertainty: {trajectories} trajectories cannot run: this scenario's multipliers and sums per trajectory allow at most {limit} within kunta's limit of 8 GiB")]
    Trajectories {
        /// The number asked for.
        trajectories: usize,
        /// The most this scenario can run.
        limit: usize,
    },
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
    /// The units of the service's network, each with its share of every area's
    /// demand (see [`crate::network`]); each gets a [`UnitSummary`].
    pub units: Vec<UnitInput<'a>>,
}

/// A unit of the service network and its catchment.
#[derive(Debug, Clone, Copy)]
pub struct UnitInput<'a> {
    /// The unit.
    pub unit: &'a crate::network::Unit,
    /// Each area's share of the service's demand going to the unit; with `by_year`,
    /// its largest share in any year (not 0 where the unit ever takes demand).
    pub shares: &'a [f64],
    /// Each area's share by year slot, where the catchment is redrawn (empty:
    /// `shares` in every year).
    pub by_year: &'a [Vec<f64>],
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
        // Each trajectory from its own stream, so in parallel with the same numbers.
        let flow_len = (nf * ny).max(1);
        let mut none = Vec::new();
        let flows: &mut [f64] = if nf == 0 {
            none.resize(n, 0.0);
            &mut none
        } else {
            &mut m.flows
        };
        m.fert
            .par_chunks_mut(ny)
            .zip(m.mort.par_chunks_mut(ny))
            .zip(flows.par_chunks_mut(flow_len))
            .enumerate()
            .for_each(|(t, ((fert, mort), flows))| {
                let mut rng = Rng::new(&[spec.seed, t as u64, 0]);
                path(&mut rng, spec.fertility, fert);
                path(&mut rng, spec.mortality, mort);
                for f in 0..nf {
                    path(&mut rng, spec.migration, &mut flows[f * ny..(f + 1) * ny]);
                }
            });
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

/// Where one block of trajectories writes, per cell and lane.
struct BlockOut<'o> {
    /// Population by `(cell, lane)`, cells `(area, sex, age group, year)` of the group.
    pop: &'o mut [f64],
    /// Components by `(component, cell, lane)`, cells `(area, sex, projected year)`.
    comps: &'o mut [f64],
    /// Movers by `(row, cell, lane)`, cells `(area, sex, projected year)`.
    mig: &'o mut [f64],
    /// Alignment factors by `(cell, lane)`, cells `(parent, sex, age, aligned year)`.
    align: &'o mut [f64],
    /// Per service: by `(cell, lane)`, cells demand `(segment, area, year)`, then
    /// resources `(resource, area, year)`, then costs `(component, area, year)`.
    services: Vec<&'o mut [f64]>,
    /// From one cell's lanes to the next.
    stride: usize,
    /// Working space: demand by `(segment, age)` per lane.
    scratch: Vec<V>,
}

/// Everything a block needs.
struct Ctx<'a> {
    spec: &'a Spec,
    want: Want,
    known: &'a [Option<ArrayView3<'a, f64>>],
    years: &'a [i32],
    /// The year kernel: the rates and what every step needs of them.
    kernel: YearKernel<'a>,
    /// Every block's lane multipliers by `(block, year slot, j)`, `j` the fertility
    /// level, the mortality level, then each flow (times its own multiplier of the
    /// year): they do not depend on the area, so they are worked out once.
    lane_mult: Vec<V>,
    services: &'a [ServiceInput<'a>],
    weights: &'a [Weights],
    /// Which resources each service has (floor, groups, hours, teachers, staff).
    has: Vec<[bool; 5]>,
    projected: &'a [usize],
    /// The rows of the migration output: (flow, arrivals of its closed system).
    mig_rows: Vec<(usize, bool)>,
    /// The alignment, if any.
    align: Option<AlignCtx<'a>>,
    /// The population's age groups as ranges of ages.
    groups: Vec<std::ops::Range<usize>>,
    /// Per service and year slot: each segment's growth factors.
    grow: Vec<Vec<Vec<[f64; 4]>>>,
    /// Per service and year slot: the fixed cost per service and its overhead.
    fixed: Vec<Vec<(f64, f64)>>,
}

impl Ctx<'_> {
    /// A service's cells in a group of `ga` areas: demand by segment, each resource,
    /// the five cost components and the total, by `(area, year)`.
    fn service_cells(&self, i: usize, ga: usize) -> usize {
        let ny = self.years.len();
        let ng = self.services[i].service.segments.len();
        let nr = self.has[i].iter().filter(|h| **h).count();
        (ng + nr + 6) * ga * ny
    }

    fn services_wanted(&self) -> bool {
        self.want.demand || self.want.costs
    }

    /// Whether the steps keep components and movers.
    fn sums_wanted(&self) -> bool {
        self.kernel.sums
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
    run_aligned(
        pop, base_year, end_year, inputs, spec, services, want, None, progress,
    )
}

/// As [`run`], with the areas aligned to control totals in every trajectory when
/// `align` is given (see [`AlignTo`]); the result then holds the alignment factors'
/// summaries.
///
/// # Errors
/// As [`run`], and [`McError::Spec`] for an alignment whose shapes do not fit the
/// population.
#[allow(clippy::too_many_arguments)]
pub fn run_aligned(
    pop: &Population,
    base_year: i32,
    end_year: i32,
    inputs: Option<&ProjectionInputs>,
    spec: &Spec,
    services: &[ServiceInput<'_>],
    want: Want,
    align: Option<&AlignTo<'_>>,
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
    if let Some(m) = &spec.migration_rate {
        let (na, n) = (pop.areas().len(), pop.n_ages());
        if m.sd.dim() != (na, 2, n) {
            return Err(McError::Spec(format!(
                "the spread of the net migration rate is by {:?} (area, sex, age), not by ({na}, 2, {n})",
                m.sd.dim()
            )));
        }
        if !(m.sd.iter().all(|v| *v >= 0.0 && v.is_finite()) && (-1.0..=1.0).contains(&m.ar)) {
            return Err(McError::Spec(
                "migration rate: the spread must be 0 or more and the persistence between -1 and 1"
                    .into(),
            ));
        }
    }
    // Demand is summarised from the services' full pass (resources and costs with it):
    // the one path `kunta run` takes.
    let want = Want {
        costs: want.costs || want.demand,
        ..want
    };
    if inputs.is_some_and(|i| i.flows.len() > MAX_FLOWS) {
        return Err(McError::Spec(format!(
            "at most {MAX_FLOWS} migration flows can run under uncertainty"
        )));
    }
    let r = resolve(pop, base_year, end_year, inputs)?;
    let (na, n) = (pop.areas().len(), pop.n_ages());
    if services
        .iter()
        .flat_map(|s| &s.units)
        .any(|u| u.shares.len() != na)
    {
        return Err(McError::Spec(
            "a unit's catchment needs one share per area of the population".into(),
        ));
    }
    let ny = r.years.len();
    if services.iter().flat_map(|s| &s.units).any(|u| {
        !u.by_year.is_empty() && (u.by_year.len() != ny || u.by_year.iter().any(|v| v.len() != na))
    }) {
        return Err(McError::Spec(
            "a unit's catchment by year needs one share per area in every year".into(),
        ));
    }
    let align = match align {
        None => None,
        Some(to) => {
            let (cy, parents, cs, cx) = to.control.dim();
            if to.parent_of.len() != na
                || to.parent_of.iter().any(|p| *p >= parents)
                || cy != ny
                || cs != 2
                || cx != n
                || to.slots.iter().any(|k| *k == 0 || *k >= ny)
            {
                return Err(McError::Spec(
                    "the alignment does not fit the population: one parent per area, \
                     control by (year, parent, sex, age) over the projection's years"
                        .into(),
                ));
            }
            let mut slot_of = vec![None; ny];
            for (j, k) in to.slots.iter().enumerate() {
                slot_of[*k] = Some(j);
            }
            let base = r.known[0].as_ref().expect("the base year is given");
            let parents = Parents::new(to.parent_of, parents, base.view());
            Some(AlignCtx {
                // The view shortened to the run's own borrows (views are invariant).
                to: AlignTo {
                    parent_of: to.parent_of,
                    control: to.control.reborrow(),
                    slots: to.slots,
                },
                slot_of,
                parents,
            })
        }
    };
    let nf = inputs.map_or(0, |i| i.flows.len());
    let closed = r
        .year_rates
        .iter()
        .flatten()
        .any(|y| y.flows.iter().any(|f| f.destinations.is_some()));
    // Areas are independent unless a closed internal system or an alignment couples
    // them.
    let groups: Vec<std::ops::Range<usize>> = if closed || align.is_some() {
        std::iter::once(0..na).collect()
    } else {
        (0..na).map(|a| a..a + 1).collect()
    };
    // Refused before anything is allocated.
    let shares: Vec<&[f64]> = services
        .iter()
        .flat_map(|s| &s.units)
        .map(|u| u.shares)
        .collect();
    let limit = trajectory_limit(na, ny, nf, services.len(), &shares, groups.len() == 1);
    if spec.trajectories > limit {
        return Err(McError::Trajectories {
            trajectories: spec.trajectories,
            limit,
        });
    }
    let age_groups = spec.age_groups.resolve(n);
    let npg = 3 * age_groups.len();
    // Resolved in parallel; the first service's error in order is the one reported.
    let weights = services
        .par_iter()
        .map(|s| {
            crate::services::check_teaching(s.service)?;
            Weights::new(s.service, na, &r.years, n - 1)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let mult = Multipliers::new(spec, ny, nf);
    let projected: Vec<usize> = (1..ny).filter(|k| r.year_rates[*k].is_some()).collect();
    let ctx = Ctx {
        spec,
        want,
        known: &r.known,
        years: &r.years,
        kernel: YearKernel::new(
            &r.year_rates,
            n,
            nf,
            want.components || want.migration,
            want.migration,
        ),
        lane_mult: {
            let nb = spec.trajectories.div_ceil(LANES);
            let mut v = vec![[1.0; LANES]; nb * ny * (2 + nf)];
            for b in 0..nb {
                for k in 0..ny {
                    let Some(yr) = &r.year_rates[k] else { continue };
                    let at = (b * ny + k) * (2 + nf);
                    for l in 0..LANES {
                        // The last block's spare lanes repeat the last trajectory.
                        let t = (b * LANES + l).min(spec.trajectories - 1);
                        v[at][l] = mult.get(&mult.fert, t, k);
                        v[at + 1][l] = mult.get(&mult.mort, t, k);
                        for (f, fl) in yr.flows.iter().enumerate() {
                            v[at + 2 + f][l] = mult.flow(t, f, k) * fl.multiplier;
                        }
                    }
                }
            }
            v
        },
        services,
        weights: &weights,
        has: services.iter().map(|s| s.service.resources()).collect(),
        projected: &projected,
        mig_rows: inputs.map_or_else(Vec::new, |i| {
            i.flows
                .iter()
                .enumerate()
                .flat_map(|(f, fl)| {
                    std::iter::once((f, false))
                        .chain(fl.destinations.is_some().then_some((f, true)))
                })
                .collect()
        }),
        align,
        groups: age_groups.iter().map(|(r, _)| r.clone()).collect(),
        grow: services
            .iter()
            .map(|s| {
                r.years
                    .iter()
                    .map(|y| segment_growth(s.service, *y, base_year))
                    .collect()
            })
            .collect(),
        fixed: services
            .iter()
            .map(|s| {
                r.years
                    .iter()
                    .map(|y| service_fixed(s.service, *y, base_year))
                    .collect()
            })
            .collect(),
    };
    let nt = spec.trajectories;
    let nb = nt.div_ceil(LANES);
    // Groups run at once, one a thread (at most `SLOTS`): a lone group has the
    // whole memory budget, groups running at once share it. The sums do not depend
    // on it: every group's totals are added in group order.
    let chunk = if groups.len() == 1 {
        1
    } else {
        rayon::current_num_threads().clamp(1, SLOTS)
    };
    let passes = |ga: usize| {
        let cells = Layout::new(&ctx, ga).cells;
        cells.div_ceil(window(cells, nt, chunk)).max(1)
    };
    let total: usize = groups.iter().map(|g| nb * passes(g.len())).sum();
    let done = AtomicUsize::new(0);
    let levels = &spec.quantiles;
    let nl = levels.len();
    let nyp = projected.len();
    let mut population = want.population.then(|| Summary::zeros(na * npg * ny, nl));
    let mut components = want
        .components
        .then(|| vec![Summary::zeros(na * 2 * nyp, nl); COMPONENTS]);
    let mut migration = want
        .migration
        .then(|| vec![Summary::zeros(na * 2 * nyp, nl); ctx.mig_rows.len()]);
    let mut alignment = ctx
        .align
        .as_ref()
        .map(|al| Summary::zeros(al.parents.children.len() * 2 * n * al.to.slots.len(), nl));
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
            total_cost_by_trajectory: Vec::new(),
            present_value: Summary::default(),
            units: Vec::new(),
        })
        .collect();
    // Every unit's place among all services' units.
    let unit_base: Vec<usize> = services
        .iter()
        .scan(0, |at, s| {
            let b = *at;
            *at += s.units.len();
            Some(b)
        })
        .collect();
    let n_units = services.iter().map(|s| s.units.len()).sum::<usize>();
    // Per service: demand and total cost by (year, trajectory), summed over areas.
    let (tot_d, tot_c) = (ctx.services_wanted(), want.costs);
    let sized = |on: bool| if on { vec![0.0; ny * nt] } else { Vec::new() };
    let mut totals: Vec<(Vec<f64>, Vec<f64>)> = services
        .iter()
        .map(|_| (sized(tot_d), sized(tot_c)))
        .collect();
    let stride = 1 + nl;
    // One group: its blocks (in parallel when it is the only group) write their lanes
    // into the slot's buffer, by (block, cell, lane); then each cell's values are
    // gathered over the trajectories and summarised, packed `stride` values a cell
    // (mean, then the quantiles), and every service's demand and total cost summed
    // over the group's cells by (year, trajectory).
    let run_group = |g: &std::ops::Range<usize>, parallel: bool, slot: &mut Slot| {
        let ga = g.len();
        let lay = Layout::new(&ctx, ga);
        // Every block writes its lanes of every cell into its own part, by (cell,
        // lane): a block's part stays in the cache while it runs. Where every
        // trajectory's cells would not fit in the memory budget, the cells are taken a
        // window at a time and the (reproducible) blocks are run again for each: a
        // block then writes into a scratch part and only the window's cells are kept.
        let per_block = lay.cells * LANES;
        let win = window(lay.cells, nt, chunk);
        // Per service: the slot's demand and total cost by (year, trajectory), summed
        // over the groups it has run, in their order, and in cell order over each
        // group's demand cells `(segment, area, year)` and total-cost cells `(area,
        // year)`.
        slot.tots.resize_with(services.len(), Default::default);
        let mut to_total: Vec<Option<Total>> = vec![None; lay.cells];
        for (i, (d, cost)) in slot.tots.iter_mut().enumerate() {
            let ng = services[i].service.segments.len();
            let nres = ctx.has[i].iter().filter(|h| **h).count();
            let (off, per) = (lay.services[i], ga * ny);
            // Cells run (block, area, year): the year is fastest.
            let mut mark = |from: usize, cells: usize, cost: bool| {
                for c in from..from + cells {
                    to_total[c] = Some(Total {
                        service: i,
                        cost,
                        year: (c - from) % ny,
                    });
                }
            };
            if tot_d {
                // This group's alone: its cells add to it.
                d.clear();
                d.resize(ny * nt, 0.0);
                mark(off, ng * per, false);
            }
            if tot_c {
                cost.clear();
                cost.resize(ny * nt, 0.0);
                mark(off + (ng + nres + 5) * per, per, true);
            }
        }
        // Per unit: the slot's demand and floor area need by (year, trajectory), from
        // the service's demand cells and floor-area cells of the areas it serves, in
        // cell order.
        slot.units.resize_with(n_units, Default::default);
        let mut unit_adds: Vec<UnitAdd> = Vec::new();
        for (i, s) in services.iter().enumerate() {
            if s.units.is_empty() || !ctx.services_wanted() {
                continue;
            }
            let ng = s.service.segments.len();
            let (off, per) = (lay.services[i], ga * ny);
            let floor = ctx.has[i][0];
            for (j, u) in s.units.iter().enumerate() {
                let target = unit_base[i] + j;
                // Only the units the group sends demand to hold sums in this slot.
                if u.shares[g.clone()].iter().all(|sh| *sh == 0.0) {
                    continue;
                }
                let (d, f) = &mut slot.units[target];
                d.resize(ny * nt, 0.0);
                if floor {
                    f.resize(ny * nt, 0.0);
                }
                for al in 0..ga {
                    let share = u.shares[g.start + al];
                    if share == 0.0 {
                        continue;
                    }
                    let mut add = |row: usize, floor: bool, k: usize, scale: f64| {
                        unit_adds.push(UnitAdd {
                            cell: off + row * per + al * ny + k,
                            target,
                            floor,
                            year: k,
                            scale,
                        });
                    };
                    for k in 0..ny {
                        let share = if u.by_year.is_empty() {
                            share
                        } else {
                            u.by_year[k][g.start + al]
                        };
                        (0..ng).for_each(|r| add(r, false, k, share));
                        if floor {
                            add(ng, true, k, share);
                        }
                    }
                }
            }
        }
        unit_adds.sort_by_key(|a| a.cell);
        // Cells are gathered a tile at a time: each block's lanes of the tile's cells
        // lie together (a short run the prefetcher follows), and the tile's rows
        // (256 kB) stay in the L2 cache while they are summarised.
        slot.packed.resize(lay.cells * stride, 0.0);
        let mut next = 0;
        for w0 in (0..lay.cells).step_by(win) {
            let wc = win.min(lay.cells - w0);
            let kept = wc * LANES;
            if slot.blocks.len() < nb * kept {
                // Every cell of every block is written, so the buffer is only grown.
                slot.blocks.resize(nb * kept, 0.0);
            }
            let blocks = &mut slot.blocks[..nb * kept];
            let whole = wc == lay.cells;
            let block = |(state, scratch): &mut (BlockState, Vec<f64>),
                         (b, chunk): (usize, &mut [f64])| {
                let out: &mut [f64] = if whole {
                    chunk
                } else {
                    scratch.resize(per_block, 0.0);
                    scratch
                };
                crate::projection::simd_dispatch(BlockRun {
                    ctx: &ctx,
                    group: g.clone(),
                    t0: b * LANES,
                    lay: &lay,
                    out,
                    state,
                });
                if !whole {
                    chunk.copy_from_slice(&scratch[w0 * LANES..w0 * LANES + kept]);
                }
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            };
            if parallel {
                blocks
                    .par_chunks_mut(kept)
                    .enumerate()
                    .for_each_init(|| (BlockState::default(), Vec::new()), block);
            } else {
                let mut state = (
                    std::mem::take(&mut slot.state),
                    std::mem::take(&mut slot.scratch),
                );
                blocks
                    .chunks_mut(kept)
                    .enumerate()
                    .for_each(|x| block(&mut state, x));
                (slot.state, slot.scratch) = state;
            }
            let blocks = &slot.blocks[..nb * kept];
            let packed = &mut slot.packed[w0 * stride..(w0 + wc) * stride];
            if parallel {
                packed
                    .par_chunks_mut(TILE * stride)
                    .enumerate()
                    .for_each_init(
                        || (Vec::new(), Selector::default()),
                        |(tile, sel), (t, packed)| {
                            let tc = packed.len() / stride;
                            gather_tile(blocks, wc, t * TILE, tc, nt, tile);
                            sel.summarise_rows(tile, nt, levels, packed);
                        },
                    );
                // The totals after, in cell order.
                let tile = &mut slot.vals;
                for c0 in (w0..w0 + wc).step_by(TILE) {
                    let tc = TILE.min(w0 + wc - c0);
                    let to_units = unit_adds.get(next).is_some_and(|a| a.cell < c0 + tc);
                    if to_units || to_total[c0..c0 + tc].iter().any(Option::is_some) {
                        gather_tile(blocks, wc, c0 - w0, tc, nt, tile);
                        next = add_tile(
                            &mut slot.tots,
                            &mut slot.units,
                            &to_total,
                            &unit_adds,
                            next,
                            c0,
                            tile,
                            nt,
                        );
                    }
                }
            } else {
                let (tile, sel) = (&mut slot.vals, &mut slot.sel);
                for (t, packed) in packed.chunks_mut(TILE * stride).enumerate() {
                    let (c0, tc) = (w0 + t * TILE, packed.len() / stride);
                    gather_tile(blocks, wc, c0 - w0, tc, nt, tile);
                    sel.summarise_rows(tile, nt, levels, packed);
                    next = add_tile(
                        &mut slot.tots,
                        &mut slot.units,
                        &to_total,
                        &unit_adds,
                        next,
                        c0,
                        tile,
                        nt,
                    );
                }
            }
        }
    };
    let set = |sm: &mut Summary, cell: usize, packed: &[f64]| set_packed(sm, cell, packed);
    // Independent areas run in parallel, `chunk` at a time so that their outputs
    // stay small, each in a slot whose buffers are reused, and are put in place in
    // order; a single coupled group runs its blocks in parallel instead. Each group's
    // totals and units' sums are added in group order, so the sums do not depend on
    // the threads. With more threads than slots, each slot's blocks run in parallel
    // too.
    let nested = rayon::current_num_threads() > SLOTS;
    let whole = |v: &mut [f64], cells: usize| -> Summary {
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
    // Per unit: the groups still to send it demand, its sums over the groups done
    // (by year and trajectory: demand, floor area need), and its summary once no
    // group is left, so that only the units still open hold a row per trajectory.
    let unit_of: Vec<(usize, usize)> = services
        .iter()
        .enumerate()
        .flat_map(|(i, s)| (0..s.units.len()).map(move |j| (i, j)))
        .collect();
    let mut unit_left: Vec<usize> = unit_of
        .iter()
        .map(|&(i, j)| {
            let shares = services[i].units[j].shares;
            groups
                .iter()
                .filter(|g| shares[(*g).clone()].iter().any(|sh| *sh != 0.0))
                .count()
        })
        .collect();
    let mut unit_sums: Vec<(Vec<f64>, Vec<f64>)> = vec![Default::default(); n_units];
    let mut unit_done: Vec<Option<UnitSummary>> = vec![None; n_units];
    let finish_unit = |u: usize, mut d: Vec<f64>, f: Vec<f64>| -> UnitSummary {
        let (i, j) = unit_of[u];
        let unit = services[i].units[j].unit;
        d.resize(ny * nt, 0.0);
        let floor = ctx.has[i][0];
        let year = |k: usize| r.years[k];
        let per_traj = |g: &dyn Fn(f64, i32) -> f64| -> Vec<f64> {
            d.chunks_exact(nt)
                .enumerate()
                .flat_map(|(k, row)| row.iter().map(move |v| g(*v, year(k))))
                .collect()
        };
        let mut util = per_traj(&|v, y| unit.utilisation(v, y));
        let mut short = per_traj(&|v, y| unit.shortage(v, y));
        let p_shortage = short
            .chunks_exact(nt)
            .map(|row| row.iter().filter(|v| **v > 0.0).count() as f64 / nt as f64)
            .collect();
        UnitSummary {
            utilisation: whole(&mut util, ny),
            shortage: whole(&mut short, ny),
            floor_area_need_m2: floor.then(|| {
                let mut f = f;
                f.resize(ny * nt, 0.0);
                whole(&mut f, ny)
            }),
            p_shortage,
            demand: whole(&mut d, ny),
        }
    };
    let mut slots: Vec<Slot> = (0..chunk.min(groups.len()))
        .map(|_| Slot::default())
        .collect();
    for gs in groups.chunks(chunk) {
        let slots = &mut slots[..gs.len()];
        if gs.len() == 1 {
            run_group(&gs[0], true, &mut slots[0]);
        } else {
            slots
                .par_iter_mut()
                .zip(gs)
                .for_each(|(slot, g)| run_group(g, nested, slot));
        }
        for (g, o) in gs.iter().zip(slots.iter_mut()) {
            // The group's totals and units' sums, added in group order; a unit no
            // group is left to send demand to is summarised and its sums dropped.
            for ((d, c), (od, oc)) in totals.iter_mut().zip(&o.tots) {
                for (v, part) in [(&mut *d, od), (&mut *c, oc)] {
                    v.iter_mut().zip(part).for_each(|(x, y)| *x += y);
                }
            }
            for (u, part) in o.units.iter_mut().enumerate() {
                if part.0.is_empty() {
                    continue;
                }
                let (od, of) = std::mem::take(part);
                let (d, f) = &mut unit_sums[u];
                for (v, part) in [(d, od), (f, of)] {
                    if v.is_empty() {
                        *v = part;
                    } else {
                        v.iter_mut().zip(&part).for_each(|(x, y)| *x += y);
                    }
                }
                unit_left[u] -= 1;
                if unit_left[u] == 0 {
                    let (d, f) = std::mem::take(&mut unit_sums[u]);
                    unit_done[u] = Some(finish_unit(u, d, f));
                }
            }
            let ga = g.len();
            let lay = Layout::new(&ctx, ga);
            let packed = |at: usize, cells: usize| {
                o.packed[at * stride..(at + cells) * stride].chunks_exact(stride)
            };
            if let Some(ps) = &mut population {
                let offset = g.start * npg * ny;
                for (c, p) in packed(lay.pop, ga * npg * ny).enumerate() {
                    set(ps, offset + c, p);
                }
            }
            if let Some(cs) = &mut components {
                let (offset, per) = (g.start * 2 * nyp, ga * 2 * nyp);
                for (j, comp) in cs.iter_mut().enumerate() {
                    for (c, p) in packed(lay.comps + j * per, per).enumerate() {
                        set(comp, offset + c, p);
                    }
                }
            }
            if let Some(ms) = &mut migration {
                let (offset, per) = (g.start * 2 * nyp, ga * 2 * nyp);
                for (r, row) in ms.iter_mut().enumerate() {
                    for (c, p) in packed(lay.mig + r * per, per).enumerate() {
                        set(row, offset + c, p);
                    }
                }
            }
            if let Some(sm) = &mut alignment {
                // The one group holds every area: its cells are the whole table's.
                for (c, p) in packed(lay.align, sm.mean.len()).enumerate() {
                    set(sm, c, p);
                }
            }
            if ctx.services_wanted() {
                for (i, s) in svc.iter_mut().enumerate() {
                    let ng = services[i].service.segments.len();
                    let nres = s.resources.len();
                    let per = ga * ny;
                    let cells = ctx.service_cells(i, ga);
                    for (c, p) in packed(lay.services[i], cells).enumerate() {
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
            }
        }
    }
    // Units no group sends demand to: no demand in any trajectory.
    if ctx.services_wanted() {
        for (u, done) in unit_done.iter_mut().enumerate() {
            if done.is_none() {
                let (d, f) = std::mem::take(&mut unit_sums[u]);
                *done = Some(finish_unit(u, d, f));
            }
        }
    }
    for (u, done) in unit_done.into_iter().enumerate() {
        if let Some(sm) = done {
            svc[unit_of[u].0].units.push(sm);
        }
    }
    for (i, (d, c)) in totals.iter_mut().enumerate() {
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
            svc[i].total_cost_by_trajectory = c[..ny * nt].to_vec();
            svc[i].total_cost = whole(c, ny);
        }
        if ctx.services_wanted() {
            svc[i].total_demand = whole(d, ny);
        }
    }
    let migration_rows = ctx.mig_rows.clone();
    Ok(McResult {
        trajectories: spec.trajectories,
        seed: spec.seed,
        levels: levels.clone(),
        years: r.years.clone(),
        population,
        age_groups: age_groups.into_iter().map(|(_, l)| l).collect(),
        components,
        projected,
        migration,
        migration_rows,
        services: svc,
        alignment,
    })
}

/// The most memory a Monte Carlo run holds in rows of one value per trajectory
/// (multipliers, sums over areas, open units' sums, the windows of cells): 8 GiB on
/// any machine, so that a scenario is run or refused alike everywhere. A count of
/// trajectories above it is refused before anything is allocated.
pub const TRAJECTORY_MEMORY: usize = 8 << 30;

/// Bytes a run holds per trajectory whatever the windows: the multipliers (drawn and
/// by lane), every service's demand and cost totals (all groups' and each running
/// group's), the units whose groups are not all done (their sums, the groups'
/// parts and the summary's copies) and a window of a tile of cells per running
/// group.
fn bytes_per_trajectory(ny: usize, nf: usize, services: usize, open: usize, chunk: usize) -> usize {
    let values = 2 * (2 + nf) * ny + 2 * ny * services * (1 + chunk) + 6 * ny * open + TILE * chunk;
    values * std::mem::size_of::<f64>()
}

/// The most trajectories a run can take within [`TRAJECTORY_MEMORY`]: for `areas`
/// areas, `years` year slots (the base year too), `flows` migration flows,
/// `services` services and units with these shares of each area's demand, the
/// areas run as one group when `coupled` (a closed internal system or an alignment)
/// and one by one otherwise. The same on any machine and with any threads.
pub fn trajectory_limit(
    areas: usize,
    years: usize,
    flows: usize,
    services: usize,
    unit_shares: &[&[f64]],
    coupled: bool,
) -> usize {
    let groups: Vec<std::ops::Range<usize>> = if coupled {
        std::iter::once(0..areas).collect()
    } else {
        (0..areas).map(|a| a..a + 1).collect()
    };
    // Groups counted as running `SLOTS` at a time, the most there can be.
    let most = if groups.len() == 1 { 1 } else { SLOTS };
    let open = most_open_units(unit_shares, &groups, most);
    TRAJECTORY_MEMORY / bytes_per_trajectory(years, flows, services, open, most).max(1)
}

/// The most units whose sums are held at once: a unit's sums are kept from the
/// first group that sends it demand until the last, groups running `chunk` at a time.
fn most_open_units(
    unit_shares: &[&[f64]],
    groups: &[std::ops::Range<usize>],
    chunk: usize,
) -> usize {
    let spans: Vec<(usize, usize)> = unit_shares
        .iter()
        .filter_map(|shares| {
            let sends = |g: &std::ops::Range<usize>| {
                shares
                    .get(g.clone())
                    .is_some_and(|s| s.iter().any(|v| *v != 0.0))
            };
            let first = groups.iter().position(sends)? / chunk;
            let last = groups.iter().rposition(sends)? / chunk;
            Some((first, last))
        })
        .collect();
    (0..groups.len().div_ceil(chunk.max(1)))
        .map(|c| spans.iter().filter(|(a, b)| *a <= c && c <= *b).count())
        .max()
        .unwrap_or(0)
}

/// Groups of areas run at once, each in a slot whose buffers are reused.
const SLOTS: usize = 8;

/// Cells summarised together (their rows stay in the L2 cache).
const TILE: usize = 32;

/// The memory the trajectories' values of the groups running at once may take.
const MEMORY_BUDGET: usize = 256 << 20;

/// How many of a group's `cells` are kept at a time over `nt` trajectories: all of
/// them when every trajectory's values fit in the memory budget (shared by the
/// `sharing` groups running at once), else a window of whole tiles, for which the
/// blocks are run again. At least one cell.
fn window(cells: usize, nt: usize, sharing: usize) -> usize {
    let budget = MEMORY_BUDGET / sharing.max(1);
    let fit = budget / (nt.div_ceil(LANES) * LANES * std::mem::size_of::<f64>());
    if fit >= cells {
        cells.max(1)
    } else {
        (fit / TILE * TILE).max(TILE)
    }
}

/// Puts a cell's packed summary (the mean, then the quantiles) in place.
fn set_packed(sm: &mut Summary, cell: usize, packed: &[f64]) {
    sm.mean[cell] = packed[0];
    for (q, v) in sm.q.iter_mut().zip(&packed[1..]) {
        q[cell] = *v;
    }
}

/// The buffers of one group's run, reused from group to group.
#[derive(Default)]
struct Slot {
    /// Every block's lanes by `(block, cell, lane)`, cells as in [`Layout`].
    blocks: Vec<f64>,
    /// Per cell: the mean, then the quantiles.
    packed: Vec<f64>,
    /// Per service: the group's demand and total cost by (year, trajectory).
    tots: Vec<(Vec<f64>, Vec<f64>)>,
    /// Per unit (all services' in order): the demand and the floor area need by
    /// (year, trajectory); the floor area's is empty when not summed.
    units: Vec<(Vec<f64>, Vec<f64>)>,
    /// A tile of cells' values over the trajectories, a row per cell.
    vals: Vec<f64>,
    /// The state of the blocks run one after another.
    state: BlockState,
    /// A block's lanes of every cell, when only a window of them is kept.
    scratch: Vec<f64>,
    sel: Selector,
}

/// A cell that adds to a service's totals by (year, trajectory).
#[derive(Debug, Clone, Copy)]
struct Total {
    service: usize,
    /// The total cost rather than the demand.
    cost: bool,
    year: usize,
}

/// A cell that adds to a unit's sums by (year, trajectory).
#[derive(Debug, Clone, Copy)]
struct UnitAdd {
    cell: usize,
    /// The unit among all services' units.
    target: usize,
    /// To the floor area need rather than the demand.
    floor: bool,
    year: usize,
    /// The area's share of the unit.
    scale: f64,
}

/// Adds a gathered tile of cells from `c0` (a row of `nt` values each) to the service
/// totals and the units they go to; returns where the next tile's unit adds start.
#[allow(clippy::too_many_arguments)]
fn add_tile(
    tots: &mut [(Vec<f64>, Vec<f64>)],
    units: &mut [(Vec<f64>, Vec<f64>)],
    to_total: &[Option<Total>],
    adds: &[UnitAdd],
    next: usize,
    c0: usize,
    tile: &[f64],
    nt: usize,
) -> usize {
    let tc = tile.len() / nt;
    for j in 0..tc {
        add_total(tots, to_total[c0 + j], &tile[j * nt..(j + 1) * nt]);
    }
    add_units(units, adds, next, c0, tc, tile, nt)
}

/// Adds the tile `c0..c0 + tc`'s cells to the units they go to, from `adds[next..]`
/// (sorted by cell); returns where the next tile's adds start.
fn add_units(
    units: &mut [(Vec<f64>, Vec<f64>)],
    adds: &[UnitAdd],
    mut next: usize,
    c0: usize,
    tc: usize,
    tile: &[f64],
    nt: usize,
) -> usize {
    while let Some(a) = adds.get(next).filter(|a| a.cell < c0 + tc) {
        let v = &tile[(a.cell - c0) * nt..(a.cell - c0 + 1) * nt];
        let (d, f) = &mut units[a.target];
        let row = if a.floor { f } else { d };
        row[a.year * nt..(a.year + 1) * nt]
            .iter_mut()
            .zip(v)
            .for_each(|(x, y)| *x += a.scale * y);
        next += 1;
    }
    next
}

/// Adds a cell's values over the trajectories `v` to the totals it belongs to.
fn add_total(tots: &mut [(Vec<f64>, Vec<f64>)], t: Option<Total>, v: &[f64]) {
    let Some(t) = t else { return };
    let (d, c) = &mut tots[t.service];
    let row = if t.cost { c } else { d };
    let nt = v.len();
    let dst = &mut row[t.year * nt..(t.year + 1) * nt];
    dst.iter_mut().zip(v).for_each(|(x, y)| *x += y);
}

/// The values over the trajectories of cells `c0..c0 + tc`, gathered from blocks
/// laid out by `(block, cell, lane)` into `tile`, a row of `nt` per cell.
fn gather_tile(blocks: &[f64], cells: usize, c0: usize, tc: usize, nt: usize, tile: &mut Vec<f64>) {
    tile.resize(tc * nt, 0.0);
    for b in 0..nt.div_ceil(LANES) {
        let (t0, m) = (b * LANES, LANES.min(nt - b * LANES));
        let src = &blocks[(b * cells + c0) * LANES..(b * cells + c0 + tc) * LANES];
        for (j, lanes) in src.chunks_exact(LANES).enumerate() {
            let dst = &mut tile[j * nt + t0..j * nt + t0 + m];
            // Whole blocks as fixed-size copies (a call to `memcpy` each otherwise).
            if let (Ok(d), Ok(l)) = (
                <&mut [f64; LANES]>::try_from(&mut *dst),
                <&[f64; LANES]>::try_from(lanes),
            ) {
                *d = *l;
            } else {
                dst.copy_from_slice(&lanes[..m]);
            }
        }
    }
}

/// Where a group's outputs lie among its cells: the population `(area, sex, age,
/// year)`, the components `(component, area, sex, projected year)`, then each
/// movers `(row, area, sex, projected year)`, then each service's cells (see
/// [`Ctx::service_cells`]); every part is empty unless asked for.
struct Layout {
    cells: usize,
    pop: usize,
    comps: usize,
    /// Movers by `(row, area, sex, projected year)`.
    mig: usize,
    /// Alignment factors by `(parent, sex, age, aligned year)`.
    align: usize,
    /// Where each service's cells start.
    services: Vec<usize>,
}

impl Layout {
    fn new(ctx: &Ctx<'_>, ga: usize) -> Layout {
        let (n, ny, nyp) = (ctx.kernel.n, ctx.years.len(), ctx.projected.len());
        let pop = 0;
        let mut at = if ctx.want.population {
            ga * 3 * ctx.groups.len() * ny
        } else {
            0
        };
        let comps = at;
        if ctx.want.components {
            at += COMPONENTS * ga * 2 * nyp;
        }
        let mig = at;
        if ctx.want.migration {
            at += ctx.mig_rows.len() * ga * 2 * nyp;
        }
        let align = at;
        if let Some(al) = &ctx.align {
            at += al.parents.children.len() * 2 * n * al.to.slots.len();
        }
        let services = (0..ctx.services.len())
            .map(|i| {
                let o = at;
                if ctx.services_wanted() {
                    at += ctx.service_cells(i, ga);
                }
                o
            })
            .collect();
        Layout {
            cells: at,
            pop,
            comps,
            mig,
            align,
            services,
        }
    }
}

/// One block of trajectories through every year for a group of areas, writing its
/// lanes of cell `c` of `lay` at `out[c · LANES..][..LANES]`.
struct BlockRun<'c, 'a> {
    ctx: &'c Ctx<'a>,
    group: std::ops::Range<usize>,
    t0: usize,
    lay: &'c Layout,
    out: &'c mut [f64],
    state: &'c mut BlockState,
}

/// A block's state before and after a year step, by `(area, sex, age)`, kept from
/// block to block: every cell is written before it is read (the base year is given),
/// so the buffers are neither zeroed nor allocated again.
#[derive(Default)]
struct BlockState {
    cur: Vec<V>,
    next: Vec<V>,
}

impl crate::projection::Kernel for BlockRun<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        if self.ctx.spec.process_noise {
            run_block::<true>(self);
        } else {
            run_block::<false>(self);
        }
    }
}

#[inline(always)]
fn run_block<const NOISE: bool>(run: BlockRun<'_, '_>) {
    let BlockRun {
        ctx,
        group,
        t0,
        lay,
        out,
        state,
    } = run;
    let stride = LANES;
    let (n, ny) = (ctx.kernel.n, ctx.years.len());
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
    // The net migration rate's AR(1) per (area, lane), each from its own stream, so
    // that a trajectory draws the same numbers in every block, window and variant.
    let shock = ctx.spec.migration_rate.as_ref();
    let mut shock_rngs: Vec<[Rng; LANES]> = match shock {
        Some(_) => group
            .clone()
            .map(|a| {
                std::array::from_fn(|l| Rng::new(&[ctx.spec.seed, lanes_t[l] as u64, 3, a as u64]))
            })
            .collect(),
        None => Vec::new(),
    };
    let mut shock_z: Vec<V> = vec![[0.0; LANES]; if shock.is_some() { ga } else { 0 }];
    // The parts of `out`: population, components, then each service.
    let mut bounds = vec![lay.pop, lay.comps, lay.mig, lay.align];
    bounds.extend(&lay.services);
    bounds.push(lay.cells);
    let mut parts = Vec::with_capacity(bounds.len() - 1);
    let mut rest = out;
    for w in bounds.windows(2) {
        let (mine, more) = std::mem::take(&mut rest).split_at_mut((w[1] - w[0]) * stride);
        parts.push(mine);
        rest = more;
    }
    let mut parts = parts.into_iter();
    let (pop, comps, mig, align) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let mut out = BlockOut {
        pop,
        comps,
        mig,
        align,
        services: parts.collect(),
        stride,
        scratch: Vec::new(),
    };
    state.cur.resize(ga * 2 * n, [0.0; LANES]);
    state.next.resize(ga * 2 * n, [0.0; LANES]);
    let (mut cur, mut next) = (&mut state.cur, &mut state.next);
    let nfl = ctx
        .kernel
        .rates
        .iter()
        .flatten()
        .map(|r| r.flows.len())
        .max()
        .unwrap_or(0);
    let mut scratch = GeneralScratch::<LANES>::default();
    let mut comp: Vec<[V; COMPONENTS]> = vec![[[0.0; LANES]; COMPONENTS]; ga * 2];
    // Movers by (area, sex, flow) and a closed system's arrivals: `mv_at`.
    let nf = ctx.kernel.nf;
    let mut mv: Vec<V> = if ctx.sums_wanted() {
        vec![[0.0; LANES]; ga * 2 * nf * 2]
    } else {
        Vec::new()
    };
    let mut ly = LaneYear::<LANES>::ones(nfl);
    // A year's alignment factors by (parent, sex, age).
    let mut factors: Vec<V> = match &ctx.align {
        Some(al) => vec![[1.0; LANES]; al.parents.children.len() * 2 * n],
        None => Vec::new(),
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
        } else if let Some(r) = &ctx.kernel.rates[k] {
            let at = ((t0 / LANES) * ny + k) * (2 + ctx.kernel.nf);
            ly.mf = ctx.lane_mult[at];
            ly.mq = ctx.lane_mult[at + 1];
            for f in 0..r.flows.len() {
                ly.mm[f] = ctx.lane_mult[at + 2 + f];
            }
            if NOISE {
                step_general(
                    &ctx.kernel,
                    k,
                    r,
                    &ly,
                    &group,
                    cur,
                    next,
                    &mut scratch,
                    &mut comp,
                    &mut mv,
                    &mut Poisson(&mut rngs),
                );
            } else if step(
                &ctx.kernel,
                k,
                r,
                &ly,
                &group,
                cur,
                next,
                &mut scratch,
                &mut comp,
                &mut mv,
            ) {
                // The step was made in place: `cur` is the new state.
                std::mem::swap(&mut cur, &mut next);
            }
            // `next` is the new state.
            if let Some(m) = shock {
                migration_shock(
                    m,
                    &group,
                    n,
                    &mut shock_rngs,
                    &mut shock_z,
                    next,
                    ctx.sums_wanted().then_some(&mut comp[..]),
                );
            }
            if ctx.want.migration {
                let kp = ctx.projected.iter().position(|p| *p == k).unwrap_or(0);
                let per = ga * 2 * nyp;
                for (row, &(f, arrivals)) in ctx.mig_rows.iter().enumerate() {
                    for i in 0..ga * 2 {
                        let cell = row * per + i * nyp + kp;
                        let v = &mv[mv_at(nf, i, f, arrivals)];
                        out.mig[cell * out.stride..cell * out.stride + LANES].copy_from_slice(v);
                    }
                }
            }
            if ctx.want.components {
                let kp = ctx.projected.iter().position(|p| *p == k).unwrap_or(0);
                let per = ga * 2 * nyp;
                for (i, c) in comp.iter().enumerate() {
                    for (j, v) in c.iter().enumerate() {
                        let cell = j * per + i * nyp + kp;
                        out.comps[cell * out.stride..cell * out.stride + LANES].copy_from_slice(v);
                    }
                }
            }
        }
        std::mem::swap(&mut cur, &mut next);
        // One call of `observe` (it is inlined: a second would double the kernel).
        let state: &[V] = match ctx.align.as_ref().and_then(|al| Some((al, al.slot_of[k]?))) {
            Some((al, j)) => {
                // `next` is free until the next year: it takes the aligned copy.
                let control = al.to.control.index_axis(ndarray::Axis(0), k);
                align_year(&al.parents, control, cur, next, &mut factors);
                // By (parent, sex, age, aligned year).
                let nslots = al.to.slots.len();
                for (i, f) in factors.iter().enumerate() {
                    let cell = i * nslots + j;
                    out.align[cell * out.stride..cell * out.stride + LANES].copy_from_slice(f);
                }
                next
            }
            None => cur,
        };
        observe(ctx, &group, k, state, &mut out);
    }
}

/// Adds a year's net migration of [`MigrationRate`] to a block's new state `next`
/// (every area of the group, by `(area, sex, age)`) and to the net migration of the
/// components `comp`, after advancing each area's `z`.
#[inline(never)]
fn migration_shock(
    m: &MigrationRate,
    group: &std::ops::Range<usize>,
    n: usize,
    rngs: &mut [[Rng; LANES]],
    z: &mut [V],
    next: &mut [V],
    mut comp: Option<&mut [[V; COMPONENTS]]>,
) {
    for (al, a) in group.clone().enumerate() {
        for l in 0..LANES {
            z[al][l] = m.ar * z[al][l] + rngs[al][l].normal();
        }
        let za = z[al];
        for s in 0..2 {
            let sd = &lane(&m.sd, a, s)[..n];
            let cells = &mut next[(al * 2 + s) * n..(al * 2 + s + 1) * n];
            let mut gained = [0.0; LANES];
            for (v, sd) in cells.iter_mut().zip(sd) {
                for l in 0..LANES {
                    let x = v[l] + v[l] * (za[l] * sd);
                    let x = if x > 0.0 { x } else { 0.0 };
                    gained[l] += x - v[l];
                    v[l] = x;
                }
            }
            if let Some(c) = comp.as_deref_mut() {
                for l in 0..LANES {
                    c[al * 2 + s][5][l] += gained[l];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
