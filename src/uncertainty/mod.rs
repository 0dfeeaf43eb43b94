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
//! Eight trajectories run side by side in the lanes of `[f64; 8]` (one register
//! where the processor has AVX-512, two where it has AVX2, chosen at run time): the
//! ages are the inner loop, so
//! births, the open group and the service sums are plain vertical adds, and an area's
//! state (2 × 101 ages × 8 lanes, 13 kB) stays in the L1 cache. The age pass is
//! specialised by the number of flows of each form (`FastFlows`). Closures are kept
//! out of the kernel: they are compiled outside the wide copies.
//!
//! # Two orders of work
//! A group of areas (one area, or every area where a closed internal system or an
//! alignment couples them) whose blocks run on one thread runs a year at a time
//! (`run_years`): every block takes year 1, then every block year 2, and so on. Each
//! block carries its state (13 kB an area) and its random streams from year to year,
//! and writes its lanes of the year's cells into rows over all trajectories (640 kB
//! for 1000 trajectories on the national scenario), which are summarised at once
//! while they are still in the cache. Separate areas run so, one a thread, each
//! thread taking the next area as soon as it is free. A group whose blocks run in
//! parallel (a lone group, or every group when there are more threads than groups
//! can run at once), an aligned group, or one whose blocks' states would not fit in
//! its share of the memory runs each block through every year (`run_blocks`): the
//! blocks write their cells past the caches, and the cells are then gathered over
//! the blocks a tile at a time. Both orders give the same numbers.
//!
//! # Quantiles
//! Exact, of type 7: see `Selector` (bucketing, then ordering only the buckets that
//! hold a wanted order statistic). A year at a time, rows of movers found to be
//! their component's to the bit (one flow in and one out) are not selected again:
//! their summaries are the component's (`orders::twin_rows`).
//!
//! # Where things are
//! - `spec.rs`: what a run is asked for ([`Spec`], [`Ar1`], [`AgeGroups`], [`Want`])
//!   and the defaults;
//! - `rng.rs`: the random streams (counter-based, keyed by seed, trajectory and area);
//! - `crate::projection::kernel` (`src/projection/kernel.rs`): the year kernel,
//!   MODEL.md §2 per lane, the one the deterministic run takes with one lane;
//! - `block.rs`: one block of eight trajectories through a run of years for a group
//!   of areas — the kernel's step, the net migration rate's shock, the alignment
//!   (`crate::projection::align_year`, per lane) — what it carries from year to
//!   year, and where it writes its cells;
//! - `observe.rs`: what a block records of each year (population, services' demand,
//!   resources and costs per lane);
//! - `gather.rs`: how many trajectories fit in memory, the windows of cells
//!   summarised at a time, and the gathering of each tile of cells over the blocks;
//! - `quantiles.rs`: [`Summary`], the mean and exact quantiles of every cell;
//! - `tables.rs`: the summaries a run fills in (`Tables`: where each group's packed
//!   summaries go in the output tables, and the services' totals over the areas) and
//!   the affine services' resources and costs from their demand's summaries;
//! - `schedule.rs`: the groups of areas on the threads (each thread taking the next
//!   group, the running sums handed on and the results put in place in group order,
//!   `run_in_order`) and the units' sums over the groups;
//! - `units.rs`: a unit's summaries (demand, utilisation, shortage, floor area
//!   need, the probability of a shortage) from its sums by (year, trajectory);
//! - `result.rs`: what a run is given besides the projection ([`ServiceInput`],
//!   [`UnitInput`], [`AlignTo`]) and what it gives back ([`McResult`], [`McError`]);
//! - `orders.rs`: a group's blocks run a year at a time (`run_years`) or each
//!   through every year (`run_blocks`), and their cells summarised;
//! - this file: the driver — validation, the run's context (`Ctx`), the lanes'
//!   multipliers, how the groups run (a year at a time or block by block, on one
//!   thread or several), and the run's results put together.

// The kernels index lanes (`l in 0..LANES`) across several arrays at once: that is
// what the compiler turns into vector instructions.
#![allow(clippy::needless_range_loop)]

mod block;
mod gather;
mod observe;
mod orders;
mod quantiles;
mod result;
mod rng;
mod schedule;
mod spec;
mod tables;
mod units;

use crate::projection::kernel::YearKernel;
pub use crate::projection::kernel::COMPONENTS;
use block::*;
use gather::*;
pub use gather::{trajectory_limit, TRAJECTORY_MEMORY};
use observe::*;
use orders::*;
use quantiles::*;
pub use quantiles::{summarise, summarise_rows, Summary};
pub use result::*;
pub use rng::Rng;
use schedule::*;
pub use spec::{quantile_name, AgeGroup, AgeGroups, Ar1, MigrationRate, Spec, Want, QUANTILES};
use tables::Tables;
use units::*;

use crate::population::Population;
use crate::projection::{
    align_year, lane, resolve, Direction, Parents, ProjectionError, ProjectionInputs, YearRates,
};
use crate::services::{
    segment_growth, service_fixed, year_values_lanes, Service, ServiceError, Weights, RESOURCES,
};
use ndarray::{Array2, ArrayView3};
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Trajectories run side by side in one block.
pub const LANES: usize = 8;
type V = crate::projection::kernel::V<LANES>;

/// What a block needs of an alignment.
struct AlignCtx<'a> {
    to: AlignTo<'a>,
    /// Per year slot, its position among the aligned slots.
    slot_of: Vec<Option<usize>>,
    /// The areas of each parent and their base-year totals.
    parents: Parents,
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

/// Everything a block needs.
struct Ctx<'a> {
    spec: &'a Spec,
    want: Want,
    known: &'a [Option<ArrayView3<'a, f64>>],
    years: &'a [i32],
    /// The year kernel: the rates and what every step needs of them.
    kernel: YearKernel<'a>,
    /// Every block's lane multipliers by `(year slot, block, j)`, `j` the fertility
    /// level, the mortality level, then each flow (times its own multiplier of the
    /// year): they do not depend on the area, so they are worked out once. A year's
    /// lie together, as the blocks of a group run a year at a time take them
    /// ([`Ctx::lane_mult_at`]).
    lane_mult: Vec<V>,
    services: &'a [ServiceInput<'a>],
    weights: &'a [Weights],
    /// Which resources each service has (floor, groups, hours, teachers, staff).
    has: Vec<[bool; 5]>,
    /// How many resources each service has (of `has`).
    n_res: Vec<usize>,
    projected: &'a [usize],
    /// The rows of the migration output: (flow, arrivals of its closed system).
    mig_rows: Vec<(usize, bool)>,
    /// Per row of the migration output, the component its movers may equal lane for
    /// lane (a flow's own movers: in- or out-migration), see [`migration_twins`].
    mig_twins: Vec<Option<usize>>,
    /// The alignment, if any.
    align: Option<AlignCtx<'a>>,
    /// The population's age groups as ranges of ages.
    groups: Vec<std::ops::Range<usize>>,
    /// Per age group: earlier groups that split its ages between them, in age order,
    /// as [`group_parts`] finds them (the default `all` is the sum of the other
    /// seven); empty where its ages are summed one by one.
    group_parts: Vec<Vec<usize>>,
    /// Per service and year slot: each segment's growth factors.
    grow: Vec<Vec<Vec<[f64; 4]>>>,
    /// Per service and year slot: the fixed cost per service and its overhead.
    fixed: Vec<Vec<(f64, f64)>>,
    /// Per service: whether its resources and costs are increasing affine functions
    /// of its demand (one segment, no teaching model; see [`affine_increasing`]).
    /// Such a service's block records only its demand, and the summaries of its
    /// resources and costs are those functions of the demand's: the quantiles of
    /// `α + β·X`, `β ≥ 0`, are `α + β` times those of `X`, and so is the mean.
    affine: Vec<bool>,
    /// Per service: whether its demand is summed side by side with the next
    /// service's (see [`pair_with_next`]): two sums over the same ages, neither waiting
    /// on the other's adds.
    paired: Vec<bool>,
}

impl<'a> Ctx<'a> {
    /// The context of a run of `spec` asking for `want`: the projection's resolved
    /// rates `r` (of `inputs`), the services with their `weights`, the projected year
    /// slots, the alignment, the population's age groups (as ranges of ages) and
    /// number of ages, and the base year the services' growth runs from.
    #[allow(clippy::too_many_arguments)]
    fn new(
        spec: &'a Spec,
        want: Want,
        r: &'a crate::projection::Resolved<'a>,
        inputs: Option<&ProjectionInputs>,
        services: &'a [ServiceInput<'a>],
        weights: &'a [Weights],
        projected: &'a [usize],
        align: Option<AlignCtx<'a>>,
        ranges: Vec<std::ops::Range<usize>>,
        n: usize,
        base_year: i32,
    ) -> Ctx<'a> {
        let nf = inputs.map_or(0, |i| i.flows.len());
        let mig_rows = migration_rows(inputs);
        let has: Vec<[bool; 5]> = services.iter().map(|s| s.service.resources()).collect();
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
            lane_mult: lane_multipliers(spec, &r.year_rates, nf),
            services,
            weights,
            n_res: has
                .iter()
                .map(|h| h.iter().filter(|h| **h).count())
                .collect(),
            has,
            projected,
            mig_twins: migration_twins(inputs, &mig_rows),
            mig_rows,
            align,
            group_parts: group_parts(&ranges),
            groups: ranges,
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
            affine: Vec::new(),
            paired: Vec::new(),
        };
        let ctx = Ctx {
            affine: (0..services.len())
                .map(|i| affine_increasing(&ctx, i))
                .collect(),
            ..ctx
        };
        let mut paired = vec![false; services.len()];
        for i in 0..services.len() {
            paired[i] = !(i > 0 && paired[i - 1]) && pair_with_next(&ctx, i);
        }
        Ctx { paired, ..ctx }
    }
}

impl Ctx<'_> {
    /// A service's cells in a group of `ga` areas: demand by segment, each resource,
    /// the five cost components and the total, by `(area, year)`.
    /// A service whose resources and costs follow from its demand (see
    /// [`Ctx::affine`]) has only its demand cells.
    fn service_cells(&self, i: usize, ga: usize) -> usize {
        self.service_width(i) * ga * self.years.len()
    }

    /// A service's cells in one area and year: demand by segment, then (unless it is
    /// affine) each resource, the five cost components and the total. A group's cells
    /// of a service run `(year, area, cell)`, so that a block writes each year's
    /// cells side by side.
    fn service_width(&self, i: usize) -> usize {
        let ng = self.services[i].service.segments.len();
        if self.affine[i] {
            return ng;
        }
        ng + self.n_res[i] + 6
    }

    /// Where block `b`'s lane multipliers of year slot `k` start in
    /// [`Ctx::lane_mult`].
    fn lane_mult_at(&self, b: usize, k: usize) -> usize {
        let per = 2 + self.kernel.nf;
        let nb = self.lane_mult.len() / (per * self.years.len()).max(1);
        (k * nb + b) * per
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
/// with (block-years done, block-years in all: a block of eight trajectories through
/// one year is one) as the run goes on.
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
        pop,
        base_year,
        end_year,
        inputs,
        spec,
        services,
        want,
        None,
        progress,
        &mut Workspace::default(),
    )
}

/// Buffers a Monte Carlo run leaves for the next one ([`run_aligned`]): runs one
/// after another (a scenario and its variants) take them instead of fresh memory,
/// which the system would first have to fault in page by page. They hold nothing a
/// result depends on; dropping the workspace frees them.
#[derive(Default)]
pub struct Workspace {
    slots: Vec<Slot>,
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let values: usize = self
            .slots
            .iter()
            .map(|s| s.blocks.capacity() + s.packed.capacity())
            .sum();
        f.debug_struct("Workspace")
            .field("slots", &self.slots.len())
            .field("values", &values)
            .finish()
    }
}

/// As [`run`], with the areas aligned to control totals in every trajectory when
/// `align` is given (see [`AlignTo`]; the result then holds the alignment factors'
/// summaries), and with the buffers of `ws`, left there for the next run (a scenario's
/// variants run one after another): the same result whatever `ws` held.
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
    ws: &mut Workspace,
) -> Result<McResult, McError> {
    run_budgeted(
        pop,
        base_year,
        end_year,
        inputs,
        spec,
        services,
        want,
        align,
        progress,
        ws,
        SUMS_BUDGET,
    )
}

/// [`run_aligned`] with the services' running sums held within `sums_budget` bytes
/// (see [`running_sums`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_budgeted(
    pop: &Population,
    base_year: i32,
    end_year: i32,
    inputs: Option<&ProjectionInputs>,
    spec: &Spec,
    services: &[ServiceInput<'_>],
    want: Want,
    align: Option<&AlignTo<'_>>,
    progress: &(dyn Fn(usize, usize) + Sync),
    ws: &mut Workspace,
    sums_budget: usize,
) -> Result<McResult, McError> {
    check_spec(spec, pop)?;
    // Demand is summarised from the services' full pass (resources and costs with it):
    // the one path `kunta run` takes.
    let want = Want {
        costs: want.costs || want.demand,
        ..want
    };
    let r = resolve(pop, base_year, end_year, inputs)?;
    let (na, n) = (pop.areas().len(), pop.n_ages());
    let ny = r.years.len();
    check_units(services, na, ny)?;
    let base = r.known[0].as_ref().expect("the base year is given");
    let align = align.map(|to| align_ctx(to, base.view(), ny)).transpose()?;
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
    let ranges: Vec<std::ops::Range<usize>> = age_groups.iter().map(|(r, _)| r.clone()).collect();
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
    let projected: Vec<usize> = (1..ny).filter(|k| r.year_rates[*k].is_some()).collect();
    let ctx = Ctx::new(
        spec, want, &r, inputs, services, &weights, &projected, align, ranges, n, base_year,
    );
    let nt = spec.trajectories;
    let nb = nt.div_ceil(LANES);
    // The services' totals by (year, trajectory) are added up in `running` sums
    // (see below), as many as fit in the budget.
    let (tot_d, tot_c) = (ctx.services_wanted(), want.costs);
    let sum_bytes = services.len()
        * (usize::from(tot_d) + usize::from(tot_c))
        * ny
        * nt
        * std::mem::size_of::<f64>();
    let running = running_sums(sum_bytes, sums_budget);
    // Groups run at once, one a thread (at most `running`, each needs a sum of its
    // own): a lone group has the whole memory budget, groups running at once share
    // it. The sums do not depend on it: group `g`'s totals go to running sum
    // `g % running`, in group order.
    let threads = rayon::current_num_threads();
    let chunk = if groups.len() == 1 {
        1
    } else {
        threads.clamp(1, running)
    };
    // A group's blocks run in parallel when it is the only group or when there are
    // more threads than groups could run at once: the groups then run one after
    // another. Otherwise a group runs on one thread, `chunk` of them at once, each
    // a year at a time where its blocks' states and a year's cells fit in its share
    // of the memory budget (and without an alignment).
    let alone = groups.len() == 1;
    let parallel = threads > chunk || (alone && threads > 1);
    let workers = if parallel { 1 } else { chunk };
    let yearwise = |ga: usize| {
        !parallel && ctx.align.is_none() && yearwise_bytes(&ctx, ga, nt) <= MEMORY_BUDGET / workers
    };
    let passes = |ga: usize| {
        let cells = Layout::new(&ctx, ga).cells;
        cells.div_ceil(window(cells, nt, workers))
    };
    // Progress in block-years.
    let total: usize = groups
        .iter()
        .map(|g| {
            if yearwise(g.len()) {
                nb * ny
            } else {
                nb * ny * passes(g.len())
            }
        })
        .sum();
    let done = AtomicUsize::new(0);
    let levels = &spec.quantiles;
    let nl = levels.len();
    let mut tables = Tables::new(&ctx, na, npg, nl);
    let unit_plan = UnitPlan::new(services, &groups);
    let mut unit_sums = UnitSums::new(&unit_plan);
    let finish_unit = |u: usize, d: Vec<f64>, f: Vec<f64>| -> UnitSummary {
        let (i, j) = unit_plan.unit_of[u];
        unit_summary(
            services[i].units[j].unit,
            ctx.has[i][0],
            d,
            f,
            &r.years,
            nt,
            levels,
        )
    };
    let stride = 1 + nl;
    // One group: its blocks run a year at a time (`run_years`) or each through every
    // year (`run_blocks`); each cell's values over the trajectories are summarised,
    // packed `stride` values a cell (mean, then the quantiles), and every service's
    // demand and total cost summed over the group's cells by (year, trajectory).
    let run_group = |g: &std::ops::Range<usize>, slot: &mut Slot| {
        let ga = g.len();
        let lay = Layout::new(&ctx, ga);
        let (to_total, unit_adds) = group_sums(&ctx, g, &lay, &unit_plan.base, nt, slot);
        slot.packed.resize(lay.cells * stride, 0.0);
        let sums = Sums {
            to_total: &to_total,
            unit_adds: &unit_adds,
        };
        let progress =
            |years: usize| progress(done.fetch_add(years, Ordering::Relaxed) + years, total);
        if yearwise(ga) {
            run_years(&ctx, g, &lay, slot, sums, levels, &progress);
        } else {
            let win = window(lay.cells, nt, workers);
            run_blocks(
                &ctx,
                g,
                &lay,
                slot,
                sums,
                levels,
                (parallel, win),
                &progress,
            );
        }
        // A unit only this group sends demand to is summarised here, side by side
        // with the other groups, rather than when the groups' sums are added (its sums
        // are this group's alone either way).
        slot.finished.clear();
        for (u, part) in slot.units.iter_mut().enumerate() {
            if !part.0.is_empty() && unit_plan.n_groups[u] == 1 {
                let (d, f) = std::mem::take(part);
                slot.finished.push((u, finish_unit(u, d, f)));
            }
        }
    };
    // Independent areas run in parallel, one a thread: each thread takes the next
    // group in order as soon as it is free, in a slot whose buffers it reuses, and
    // the groups' summaries and units are put in place in group order. Every
    // service's demand and total cost by (year, trajectory) are summed over the
    // groups in `running` sums, group `g` into sum `g % running` once group
    // `g − running` is done with it, and the sums are added in order at the end: the
    // bits do not depend on the threads. A single coupled group runs its blocks in
    // parallel instead, and so does every group when there are more threads than
    // slots.
    let mut slots = std::mem::take(&mut ws.slots);
    slots.resize_with(workers.min(groups.len()), Slot::default);
    let commit = |g: &std::ops::Range<usize>, o: GroupOut| {
        unit_sums.commit(o.finished, o.units, &finish_unit);
        tables.place(&ctx, g, &Layout::new(&ctx, g.len()), &o.packed);
    };
    let sums = run_in_order(&groups, running, &mut slots, run_group, commit);
    ws.slots = slots;
    // Every unit's summary, in unit order (a unit no group sends demand to has none
    // in any trajectory).
    for (u, sm) in unit_sums.finish(ctx.services_wanted(), &finish_unit) {
        tables.services[unit_plan.unit_of[u].0].units.push(sm);
    }
    tables.add_totals(&ctx, &sums, base_year);
    let migration_rows = ctx.mig_rows.clone();
    Ok(McResult {
        trajectories: spec.trajectories,
        seed: spec.seed,
        levels: levels.clone(),
        years: r.years.clone(),
        population: tables.population,
        age_groups: age_groups.into_iter().map(|(_, l)| l).collect(),
        components: tables.components,
        projected,
        migration: tables.migration,
        migration_rows,
        services: tables.services,
        alignment: tables.alignment,
    })
}

/// The summary of `cells` rows of `nt` values each (`v` holds at least that many).
fn whole(v: &[f64], cells: usize, nt: usize, levels: &[f64]) -> Summary {
    debug_assert!(v.len() >= cells * nt, "{} values for {cells} rows", v.len());
    summarise_rows(&v[..cells * nt], nt, levels)
}

/// Checks the settings of a run: a trajectory at least, quantile levels inside
/// 0..1 in ascending order, spreads of 0 or more and persistences within −1..=1,
/// and a net migration rate spread by the population's (area, sex, age).
fn check_spec(spec: &Spec, pop: &Population) -> Result<(), McError> {
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
    Ok(())
}

/// Checks that every unit's catchment gives one share per area (in every year where
/// it is redrawn).
fn check_units(services: &[ServiceInput<'_>], na: usize, ny: usize) -> Result<(), McError> {
    if services
        .iter()
        .flat_map(|s| &s.units)
        .any(|u| u.shares.len() != na)
    {
        return Err(McError::Spec(
            "a unit's catchment needs one share per area of the population".into(),
        ));
    }
    if services.iter().flat_map(|s| &s.units).any(|u| {
        !u.by_year.is_empty() && (u.by_year.len() != ny || u.by_year.iter().any(|v| v.len() != na))
    }) {
        return Err(McError::Spec(
            "a unit's catchment by year needs one share per area in every year".into(),
        ));
    }
    Ok(())
}

/// What the blocks need of an alignment `to` of `ny` year slots, checked against
/// the base population `base` by `(area, sex, age)`.
fn align_ctx<'a>(
    to: &'a AlignTo<'_>,
    base: ArrayView3<'_, f64>,
    ny: usize,
) -> Result<AlignCtx<'a>, McError> {
    let (na, _, n) = base.dim();
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
    Ok(AlignCtx {
        // The view shortened to the run's own borrows (views are invariant).
        to: AlignTo {
            parent_of: to.parent_of,
            control: to.control.reborrow(),
            slots: to.slots,
        },
        slot_of,
        parents: Parents::new(to.parent_of, parents, base),
    })
}

/// Every block's lane multipliers by `(block, year slot, j)`, `j` the fertility
/// level, the mortality level, then each of the `nf` flows (times its own lever of
/// the year); the last block's spare lanes repeat the last trajectory.
fn lane_multipliers(spec: &Spec, year_rates: &[Option<YearRates>], nf: usize) -> Vec<V> {
    let ny = year_rates.len();
    let mult = Multipliers::new(spec, ny, nf);
    let nb = spec.trajectories.div_ceil(LANES);
    let mut v = vec![[1.0; LANES]; nb * ny * (2 + nf)];
    for k in 0..ny {
        let Some(yr) = &year_rates[k] else { continue };
        for b in 0..nb {
            let at = (k * nb + b) * (2 + nf);
            for l in 0..LANES {
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
}

/// The rows of the migration summaries: each flow's movers, and after a closed
/// system's its arrivals.
fn migration_rows(inputs: Option<&ProjectionInputs>) -> Vec<(usize, bool)> {
    inputs.map_or_else(Vec::new, |i| {
        i.flows
            .iter()
            .enumerate()
            .flat_map(|(f, fl)| {
                std::iter::once((f, false)).chain(fl.destinations.is_some().then_some((f, true)))
            })
            .collect()
    })
}

/// Per row of [`migration_rows`] (`rows`), the component its movers may equal lane
/// for lane: a flow's own movers its in- or out-migration (components 2 and 3), as
/// where it is the only flow of its direction; none for a net flow or a closed
/// system's arrivals. Such a row is summarised as the component only when its values
/// are found to be the component's to the bit.
fn migration_twins(
    inputs: Option<&ProjectionInputs>,
    rows: &[(usize, bool)],
) -> Vec<Option<usize>> {
    let Some(i) = inputs else {
        return Vec::new();
    };
    rows.iter()
        .map(|&(f, arrivals)| match i.flows[f].direction {
            _ if arrivals => None,
            Direction::In => Some(2),
            Direction::Out => Some(3),
            Direction::Net => None,
        })
        .collect()
}

/// Per age group, earlier groups that split its ages between them in age order (at
/// least two, each starting where the one before ends), or none: a group so split
/// is summed from their sums instead of over its ages again. At each age the first
/// earlier group that starts there and fits is taken, with no second try: a split
/// that needs another choice is not found, and that group is summed by age (the
/// same values either way, to the last bits).
fn group_parts(groups: &[std::ops::Range<usize>]) -> Vec<Vec<usize>> {
    groups
        .iter()
        .enumerate()
        .map(|(j, r)| {
            let mut parts = Vec::new();
            let mut at = r.start;
            while at < r.end {
                let next = groups[..j]
                    .iter()
                    .position(|g| g.start == at && g.end > at && g.end <= r.end);
                let Some(i) = next else {
                    return Vec::new();
                };
                parts.push(i);
                at = groups[i].end;
            }
            if parts.len() < 2 {
                parts.clear();
            }
            parts
        })
        .collect()
}

#[cfg(test)]
mod tests;
