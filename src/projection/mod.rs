//! Cohort-component projection (väestöennuste), one year at a time: MODEL.md §2.
//!
//! Every flow of year `y` is indexed by the age `i` its people had at the start of the
//! year (31 Dec `y−1`); children born during the year have the birth index, stored
//! after the oldest age (`i = ω + 1`, Statistics Finland's "alle 0", `-1` in files).
//! For each area and sex, with `P` the population at the start of the year:
//!
//! ```text
//! D(i)  = P(i) · q(i)                                deaths
//! S(i)  = P(i) − D(i) + I(i) − O(i)                  survivors (migrants in and out)
//! P'(i+1) = S(i)  for i = 0..=ω−2,   P'(ω) = S(ω−1) + S(ω)
//! B     = Σ_i f(i) · P_female(i)                     births (mother's age at start)
//! P'(0) = B · c_s · (1 − q_birth) + I(birth) − O(birth)
//! ```
//!
//! Where a survivor count would be negative it is set to 0 and the shortfall is
//! reported as `unmet_out_migration`, so that for every area, sex and year
//! `ΣP' = ΣP + births − deaths + Σin − Σout + unmet` holds exactly (up to rounding).
//!
//! This module is pure numerics: it takes resolved rates as arrays and never reads a
//! file. Out-migration given as rates is applied to the start population `P(i)`; for
//! the birth index the base is the year's newborns of that sex after birth-year
//! deaths, `B · c_s · (1 − q_birth)`.

mod align;
mod inputs;
mod simd;

pub(crate) use simd::{dispatch as simd_dispatch, Kernel};

pub(crate) use align::shared_out;
pub use align::{align, Alignment};

pub use inputs::{Flow, FlowForm, InputError, ProjectionInputs, YearPath};

use crate::population::{Population, Sex, Year};
use ndarray::{Array2, Array3, Array4, ArrayView3, ArrayViewMut3, Axis};
use std::sync::Arc;

/// A projected population with its components.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    /// Area codes.
    pub areas: Vec<String>,
    /// Years from the base year to the end year.
    pub years: Vec<i32>,
    /// Persons by `(year, area, sex, age)`, the base year first.
    pub population: Array4<f64>,
    /// Components of each year (`None` for the base year and for years taken as given
    /// from a published forecast).
    pub components: Vec<Option<YearComponents>>,
    /// The migration flows, in the order of `flow_movers`.
    pub flows: Vec<FlowInfo>,
}

/// What the output tables need to know of a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowInfo {
    /// Name.
    pub name: String,
    /// Direction of the flow's own movers.
    pub direction: Direction,
    /// Whether the flow is a closed internal system (its movers come back in).
    pub closed: bool,
}

/// Why a projection could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    /// The base year is not in the population table.
    #[error("the base year {0} is not a year of the population table")]
    BaseYear(i32),
    /// A year must be projected but there are no rates.
    #[error("year {0} is not in the population table, and the scenario has no [fertility] and [mortality] to project it")]
    NoInputs(i32),
    /// A year's rates could not be resolved.
    #[error("year {year}: {source}")]
    Input {
        /// The year.
        year: i32,
        /// What is wrong.
        source: InputError,
    },
}

/// Projects `pop` from `base_year` to `end_year` (MODEL.md §2–3). Years after the
/// base year that the population table already holds (a published forecast) are used
/// as they are; the others are projected from the year before.
///
/// # Errors
/// [`ProjectionError`] if the base year is missing, a year must be projected without
/// inputs, or a year's rates cannot be resolved.
pub fn project(
    pop: &Population,
    base_year: i32,
    end_year: i32,
    inputs: Option<&ProjectionInputs>,
) -> Result<Projection, ProjectionError> {
    let Resolved {
        years,
        known,
        year_rates,
    } = resolve(pop, base_year, end_year, inputs)?;
    let (na, nx) = (pop.areas().len(), pop.n_ages());
    let closed = year_rates
        .iter()
        .flatten()
        .any(|r| r.flows.iter().any(|f| f.destinations.is_some()));
    let (population, components) = if closed {
        // A closed internal system couples the areas within each year: year by year.
        let mut population = Array4::zeros((years.len(), na, 2, nx));
        let mut components = vec![None];
        for (k, rates) in year_rates.iter().enumerate() {
            let (before, mut after) = population.view_mut().split_at(Axis(0), k);
            let mut end = after.index_axis_mut(Axis(0), 0);
            match (&known[k], rates) {
                (Some(given), _) => end.assign(given),
                (None, Some(r)) => {
                    components.push(Some(project_year(
                        before.index_axis(Axis(0), k - 1),
                        r,
                        end,
                    )));
                    continue;
                }
                (None, None) => {}
            }
            if k > 0 {
                components.push(None);
            }
        }
        (population, components)
    } else {
        // Areas are independent: each area runs through every year while its few
        // kilobytes of state stay in the cache.
        project_by_area(&known, &year_rates)
    };
    Ok(Projection {
        areas: pop.areas().to_vec(),
        years,
        population,
        components,
        flows: inputs
            .map(|i| {
                i.flows
                    .iter()
                    .map(|f| FlowInfo {
                        name: f.name.clone(),
                        direction: f.direction,
                        closed: f.destinations.is_some(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// The years of a projection with what is known of each: the population where the
/// table gives it (always the base year), the resolved rates where it must be
/// projected.
pub(crate) struct Resolved<'p> {
    /// Every year from the base year.
    pub years: Vec<i32>,
    /// The given population of each year slot by `(area, sex, age)`, if given.
    pub known: Vec<Option<ArrayView3<'p, f64>>>,
    /// The rates of each year slot that is projected.
    pub year_rates: Vec<Option<YearRates>>,
}

/// Resolves the rates of every year to project (MODEL.md §2–3).
pub(crate) fn resolve<'p>(
    pop: &'p Population,
    base_year: i32,
    end_year: i32,
    inputs: Option<&ProjectionInputs>,
) -> Result<Resolved<'p>, ProjectionError> {
    let base = pop
        .year_index(Year(base_year))
        .ok_or(ProjectionError::BaseYear(base_year))?;
    let years: Vec<i32> = (base_year..=end_year.max(base_year)).collect();
    // The rates of every year first: resolved again only when a table's year slot
    // changes; the scalar levers are set every year. Years the population table holds
    // (the base year, a published forecast) are known and taken as given.
    let mut known = vec![Some(pop.values().index_axis_move(Axis(0), base.0))];
    let mut year_rates: Vec<Option<YearRates>> = vec![None];
    let mut cache: Option<(Vec<usize>, YearRates)> = None;
    for &y in &years[1..] {
        if let Some(given) = pop.year_index(Year(y)) {
            known.push(Some(pop.values().index_axis_move(Axis(0), given.0)));
            year_rates.push(None);
            continue;
        }
        let inputs = inputs.ok_or(ProjectionError::NoInputs(y))?;
        let err = |source| ProjectionError::Input { year: y, source };
        let slots = inputs.slots(y).map_err(err)?;
        let rates = match &cache {
            Some((cached, rates)) if *cached == slots => {
                let mut rates = rates.clone();
                inputs
                    .set_factors(&mut rates, pop, base_year, y)
                    .map_err(err)?;
                rates
            }
            _ => inputs.year_rates(pop, base_year, y).map_err(err)?,
        };
        cache = Some((slots, rates.clone()));
        known.push(None);
        year_rates.push(Some(rates));
    }
    Ok(Resolved {
        years,
        known,
        year_rates,
    })
}

/// How a migration flow's numbers turn into movers.
#[derive(Debug, Clone, PartialEq)]
pub enum FlowValues {
    /// Movers by `(area, sex, index)`, index `0..=ω` ages at the start of the year and
    /// `ω + 1` the birth index.
    Counts(Arc<Array3<f64>>),
    /// Out-migration rates by `(area, sex, index)`: movers = rate × base.
    OutRates(Arc<Array3<f64>>),
}

/// Whether a flow brings people in, takes them out, or is a net balance of both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Into the area.
    In = 0,
    /// Out of the area.
    Out = 1,
    /// Net migration: signed counts (in minus out), as a residual estimate from
    /// population history gives them (MODEL.md §2, §11).
    Net = 2,
}

impl Direction {
    /// `+1` for a flow whose counts add to the population (in, net), `−1` for out.
    pub fn sign(self) -> f64 {
        match self {
            Direction::In | Direction::Net => 1.0,
            Direction::Out => -1.0,
        }
    }

    /// `in`, `out` or `net`, as in the `migration` table.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
            Direction::Net => "net",
        }
    }
}

/// One migration flow of one year, resolved to arrays.
///
/// Arrays by `(area, sex, index)` may have a single area row, which then applies to
/// every area (a table without an `area` column).
#[derive(Debug, Clone, PartialEq)]
pub struct YearFlow {
    /// In or out.
    pub direction: Direction,
    /// Counts or out-rates, before the multiplier.
    pub values: FlowValues,
    /// The year's multiplier on the flow (a scenario lever; 1 for none).
    pub multiplier: f64,
    /// For a closed internal system: destination shares `d[b, s, i]` (summing to 1 over
    /// areas `b`). The movers of this out-flow, pooled over all areas per sex and
    /// index, come back in to the areas by these shares.
    pub destinations: Option<Arc<Array3<f64>>>,
}

/// The rates of one projection year.
///
/// The arrays are shared (`Arc`): the years between two changes of a rate table hold
/// the same arrays, so resolving a year that only changes the scalar factors copies
/// no array.
///
/// Arrays by area may have a single area row that applies to every area; the scalar
/// factors (mortality improvement, fertility level, flow multipliers) are applied in
/// the step, so that tables that do not change from year to year are resolved once.
#[derive(Debug, Clone, PartialEq)]
pub struct YearRates {
    /// Probability of dying during the year by `(area, sex, index)`, before
    /// improvement; index `ω + 1` is `q_birth`, the risk of a child born during the year.
    pub q: Arc<Array3<f64>>,
    /// Mortality improvement factor of the year, `(1 − r)^(y − base_year)`.
    pub q_factor: f64,
    /// Births per woman by `(area, age at the start of the year)`.
    pub fertility: Arc<Array2<f64>>,
    /// Fertility level factor per area (a TFR path rescales `f`); empty for none.
    pub fertility_factor: Vec<f64>,
    /// Share of boys among births, `c`.
    pub boys_share: f64,
    /// Migration flows.
    pub flows: Vec<YearFlow>,
}

/// The `(area, sex)` lane of a `(areas or 1, 2, width)` array.
#[inline(always)]
pub(crate) fn lane(arr: &Array3<f64>, a: usize, s: usize) -> &[f64] {
    Flat::new(arr).lane(a, s)
}

/// A `(areas or 1, 2, width)` rate array as one slice: kept, it gives its lanes
/// without the array's checks each time.
#[derive(Clone, Copy)]
pub(crate) struct Flat<'r> {
    v: &'r [f64],
    rows: usize,
    w: usize,
}

impl<'r> Flat<'r> {
    #[inline(always)]
    pub(crate) fn new(a: &'r Array3<f64>) -> Flat<'r> {
        let (rows, _, w) = a.dim();
        Flat {
            v: a.as_slice().expect("rate arrays are in standard layout"),
            rows,
            w,
        }
    }

    /// The lane of area position `a` (row 0 for an array without areas) and sex `s`.
    #[inline(always)]
    pub(crate) fn lane(&self, a: usize, s: usize) -> &'r [f64] {
        let a = if self.rows == 1 { 0 } else { a };
        &self.v[(a * 2 + s) * self.w..(a * 2 + s + 1) * self.w]
    }
}

/// The components of one year, by `(area, sex)`, plus movers per flow by
/// `(flow, area, sex)`.
#[derive(Debug, Clone, PartialEq)]
pub struct YearComponents {
    /// Births by sex of the child, before birth-year deaths.
    pub births: Array2<f64>,
    /// Deaths, including deaths of children born during the year.
    pub deaths: Array2<f64>,
    /// Movers in, all flows.
    pub in_migration: Array2<f64>,
    /// Movers out, all flows.
    pub out_migration: Array2<f64>,
    /// Out-migration that could not happen because nobody was left.
    pub unmet_out_migration: Array2<f64>,
    /// The net flows' movers (signed), all net flows.
    pub net_flows: Array2<f64>,
    /// Movers of each flow (in the flow's own direction), by `(flow, area, sex)`.
    pub flow_movers: Array3<f64>,
    /// Arrivals of each closed internal system by `(flow, area, sex)` (0 for other
    /// flows).
    pub flow_arrivals: Array3<f64>,
}

impl YearComponents {
    /// Net migration by `(area, sex)`: movers in, less movers out, plus the net flows.
    pub fn net_migration(&self) -> Array2<f64> {
        &self.in_migration - &self.out_migration + &self.net_flows
    }

    /// Puts the areas of `part` in place as this one's areas from `first` on.
    fn put_rows(&mut self, first: usize, part: &YearComponents) {
        let rows = first..first + part.births.nrows();
        let two = ndarray::s![rows.clone(), ..];
        let three = ndarray::s![.., rows, ..];
        self.births.slice_mut(two).assign(&part.births);
        self.deaths.slice_mut(two).assign(&part.deaths);
        self.in_migration.slice_mut(two).assign(&part.in_migration);
        self.out_migration
            .slice_mut(two)
            .assign(&part.out_migration);
        self.unmet_out_migration
            .slice_mut(two)
            .assign(&part.unmet_out_migration);
        self.net_flows.slice_mut(two).assign(&part.net_flows);
        self.flow_movers.slice_mut(three).assign(&part.flow_movers);
        self.flow_arrivals
            .slice_mut(three)
            .assign(&part.flow_arrivals);
    }

    fn zeros(areas: usize, flows: usize) -> Self {
        let z = || Array2::zeros((areas, 2));
        YearComponents {
            births: z(),
            deaths: z(),
            in_migration: z(),
            out_migration: z(),
            unmet_out_migration: z(),
            net_flows: z(),
            flow_movers: Array3::zeros((flows, areas, 2)),
            flow_arrivals: Array3::zeros((flows, areas, 2)),
        }
    }
}

/// Projects one year: from the population at the start, `start[(area, sex, age)]`,
/// writes the population at the end into `end` and returns the year's components.
///
/// The caller guarantees the shapes: `start` and `end` are `(areas, 2, ω + 1)`, rate
/// arrays are `(areas or 1, 2, ω + 2)`, `fertility` is `(areas or 1, ω + 1)`,
/// `fertility_factor` is empty or has one entry per area, and destination shares are
/// `(areas, 2, ω + 2)`. The loop runs over contiguous ages and allocates only the
/// year's small component arrays.
pub fn project_year(
    start: ArrayView3<'_, f64>,
    rates: &YearRates,
    mut end: ArrayViewMut3<'_, f64>,
) -> YearComponents {
    let (areas, _, n) = start.dim();
    let w = n + 1;
    let start = start.as_standard_layout();
    let p_all = start.as_slice().expect("standard layout");
    let pr = Prepared::new(rates, n);
    let mut c = YearComponents::zeros(areas, rates.flows.len());

    // Closed systems: movers pooled over every area, per flow, sex and index.
    let pooled: Vec<Option<[Vec<f64>; 2]>> = rates
        .flows
        .iter()
        .map(|f| {
            f.destinations.as_ref()?;
            let mut pool = [vec![0.0; w], vec![0.0; w]];
            let m = f.multiplier;
            for a in 0..areas {
                let p = &p_all[a * 2 * n..(a + 1) * 2 * n];
                let births = pr.births(a, &p[..n]);
                for (s, pool) in pool.iter_mut().enumerate() {
                    let p = &p[s * n..(s + 1) * n];
                    match &f.values {
                        FlowValues::OutRates(r) => {
                            let r = lane(r, a, s);
                            for ((x, v), p) in pool[..n].iter_mut().zip(&r[..n]).zip(p) {
                                *x += m * v * p;
                            }
                            pool[n] += m * r[n] * pr.newborns(a, s, births);
                        }
                        FlowValues::Counts(v) => {
                            for (x, v) in pool.iter_mut().zip(lane(v, a, s)) {
                                *x += m * v;
                            }
                        }
                    }
                }
            }
            Some(pool)
        })
        .collect();

    let out_all = end
        .as_slice_mut()
        .expect("the end population is in standard layout");
    let mut arrivals = vec![0.0; w];
    simd::dispatch(StepAreas {
        pr: &pr,
        p_all,
        out_all,
        pooled: &pooled,
        arrivals: &mut arrivals,
        c: &mut c,
    });
    c
}

/// Every area's step of one year (the year-by-year path).
struct StepAreas<'r, 'a> {
    pr: &'r Prepared<'a>,
    p_all: &'r [f64],
    out_all: &'r mut [f64],
    pooled: &'r [Option<[Vec<f64>; 2]>],
    arrivals: &'r mut [f64],
    c: &'r mut YearComponents,
}

impl simd::Kernel for StepAreas<'_, '_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let lane = 2 * self.pr.n;
        for (a, (p, out)) in self
            .p_all
            .chunks_exact(lane)
            .zip(self.out_all.chunks_exact_mut(lane))
            .enumerate()
        {
            self.pr
                .step_area(a, a, p, out, self.pooled, self.arrivals, self.c);
        }
    }
}

/// Projects every area through every year, area by area, for rates without closed
/// internal systems. `known[k]` is the population of year slot `k` by
/// `(area, sex, age)` where it is given (always for slot 0); `year_rates[k]` are the
/// rates of the other slots.
///
/// The result is stored area by area, each area's years one after another, and
/// returned as a `(year, area, sex, age)` view of that storage. Ranges of areas run in
/// parallel, each into its own part of the storage and its own component arrays;
/// every area's arithmetic is the same whatever the ranges, so the bits do not depend
/// on the number of threads.
fn project_by_area(
    known: &[Option<ArrayView3<'_, f64>>],
    year_rates: &[Option<YearRates>],
) -> (Array4<f64>, Vec<Option<YearComponents>>) {
    use rayon::prelude::*;
    let ny = known.len();
    let (areas, _, n) = known[0].as_ref().map_or((0, 2, 0), |k| k.dim());
    let prepared: Vec<Option<Prepared<'_>>> = year_rates
        .iter()
        .map(|r| r.as_ref().map(|r| Prepared::new(r, n)))
        .collect();
    let lane = 2 * n;
    // Small projections run as one task: splitting them costs more than it saves.
    let len = areas * ny * lane;
    let tasks = if len < 1 << 18 {
        1
    } else {
        rayon::current_num_threads()
    };
    // The storage is zeroed first (a year slot with nothing known and nothing to
    // project from stays 0), by all the threads when there are several.
    let mut all = if tasks == 1 {
        vec![0.0; len]
    } else {
        let mut v = Vec::with_capacity(len);
        v.par_extend(rayon::iter::repeat_n(0.0, len));
        v
    };
    let per_task = areas.div_ceil(tasks).max(1);
    // Component arrays of `count` areas for every projected year slot.
    let zeros = |count: usize| -> Vec<Option<YearComponents>> {
        year_rates
            .iter()
            .map(|r| {
                r.as_ref()
                    .map(|r| YearComponents::zeros(count, r.flows.len()))
            })
            .collect()
    };
    let mut parts: Vec<Vec<Option<YearComponents>>> = all
        .par_chunks_mut((per_task * ny * lane).max(1))
        .enumerate()
        .map(|(t, out)| {
            let mut components = zeros(out.len() / (ny * lane).max(1));
            let mut arrivals = vec![0.0; n + 1];
            simd::dispatch(&mut AreaRun {
                known,
                prepared: &prepared,
                components: &mut components,
                first: t * per_task,
                all: out,
                lane,
                arrivals: &mut arrivals,
            });
            components
        })
        .collect();
    let components = if parts.len() == 1 {
        parts.pop().expect("one part")
    } else {
        // The component arrays of the whole: each part's rows put in place.
        let mut whole = zeros(areas);
        for (t, part) in parts.iter().enumerate() {
            for (w, p) in whole.iter_mut().zip(part) {
                if let (Some(w), Some(p)) = (w, p) {
                    w.put_rows(t * per_task, p);
                }
            }
        }
        whole
    };
    let by_area =
        Array4::from_shape_vec((areas, ny, 2, n), all).expect("one lane pair per area and year");
    (by_area.permuted_axes([1, 0, 2, 3]), components)
}

/// The working state of [`project_by_area`] for one range of areas.
struct AreaRun<'r, 'a> {
    known: &'r [Option<ArrayView3<'a, f64>>],
    prepared: &'r [Option<Prepared<'r>>],
    /// Components of the range's areas, by year slot.
    components: &'r mut [Option<YearComponents>],
    /// The range's first area.
    first: usize,
    /// The range's part of the result: its areas' years one after another.
    all: &'r mut [f64],
    /// Values per area and year: both sexes' ages.
    lane: usize,
    arrivals: &'r mut [f64],
}

impl simd::Kernel for &mut AreaRun<'_, '_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let (ny, lane) = (self.known.len(), self.lane);
        if ny == 0 || lane == 0 {
            return;
        }
        for (i, years) in self.all.chunks_exact_mut(ny * lane).enumerate() {
            let a = self.first + i;
            for k in 0..ny {
                // The year before is the part of the result just written (still in L1).
                let (done, rest) = years.split_at_mut(k * lane);
                let next = &mut rest[..lane];
                match (&self.known[k], &self.prepared[k], &mut self.components[k]) {
                    (Some(given), _, _) => {
                        for (x, v) in next.iter_mut().zip(given.slice(ndarray::s![a, .., ..])) {
                            *x = *v;
                        }
                    }
                    (None, Some(pr), Some(c)) if k > 0 => {
                        let start = &done[(k - 1) * lane..];
                        pr.step_area(a, i, start, next, &[], self.arrivals, c);
                    }
                    // Nothing known and nothing to project from: left at 0.
                    _ => {}
                }
            }
        }
    }
}

/// What a year's step needs besides the population, derived once from its rates and
/// shared by every area: every flow's counts combined into one signed array and every
/// out-rate into one rate, so that each lane takes a single pass over its ages.
struct Prepared<'a> {
    rates: &'a YearRates,
    n: usize,
    counts: Option<Array3<f64>>,
    out_rates: Option<Array3<f64>>,
    /// Per counts flow, its sums per (row, sex); counts do not depend on the population.
    count_sums: Vec<Vec<f64>>,
    /// The flow's position, when exactly one flow is given as rates: its movers then
    /// come out of the lane pass.
    single_rate_flow: Option<usize>,
    /// The ages where any area's fertility is not 0: births need only these.
    fertile: std::ops::Range<usize>,
    zeros: Vec<f64>,
}

impl<'a> Prepared<'a> {
    fn new(rates: &'a YearRates, n: usize) -> Self {
        let w = n + 1;
        let rows = |v: &FlowValues| match v {
            FlowValues::Counts(a) | FlowValues::OutRates(a) => a.dim().0,
        };
        let combined = |want_rates: bool| -> Option<Array3<f64>> {
            let flows: Vec<&YearFlow> = rates
                .flows
                .iter()
                .filter(|f| matches!(f.values, FlowValues::OutRates(_)) == want_rates)
                .collect();
            if flows.is_empty() {
                return None;
            }
            let nrows = flows.iter().map(|f| rows(&f.values)).max().unwrap_or(1);
            let mut sum = Array3::<f64>::zeros((nrows, 2, w));
            let dst_all = sum.as_slice_mut().expect("standard layout");
            for f in flows {
                let sign = if want_rates { 1.0 } else { f.direction.sign() };
                let (FlowValues::Counts(v) | FlowValues::OutRates(v)) = &f.values;
                for r in 0..nrows {
                    for s in 0..2 {
                        let dst = &mut dst_all[(r * 2 + s) * w..(r * 2 + s + 1) * w];
                        for (x, v) in dst.iter_mut().zip(lane(v, r, s)) {
                            *x += sign * f.multiplier * v;
                        }
                    }
                }
            }
            Some(sum)
        };
        let rate_flows: Vec<usize> = (0..rates.flows.len())
            .filter(|k| matches!(rates.flows[*k].values, FlowValues::OutRates(_)))
            .collect();
        Prepared {
            rates,
            n,
            counts: combined(false),
            out_rates: combined(true),
            count_sums: rates
                .flows
                .iter()
                .map(|f| match &f.values {
                    FlowValues::Counts(v) => v
                        .as_slice()
                        .expect("standard layout")
                        .chunks_exact(w)
                        .map(|l| l.iter().sum())
                        .collect(),
                    FlowValues::OutRates(_) => Vec::new(),
                })
                .collect(),
            single_rate_flow: (rate_flows.len() == 1).then(|| rate_flows[0]),
            fertile: {
                let nonzero = |i: &usize| rates.fertility.column(*i).iter().any(|f| *f != 0.0);
                let lo = (0..n).find(nonzero).unwrap_or(0);
                let hi = (0..n).rev().find(nonzero).map_or(lo, |h| h + 1);
                lo..hi
            },
            zeros: vec![0.0; w],
        }
    }

    /// Births in area `a` from its women at the start of the year.
    #[inline(always)]
    fn births(&self, a: usize, women: &[f64]) -> f64 {
        let f = &self.rates.fertility;
        let row = f.row(if f.dim().0 == 1 { 0 } else { a });
        let row = row.as_slice().expect("standard layout");
        let level = self.rates.fertility_factor.get(a).copied().unwrap_or(1.0);
        let ages = self.fertile.clone();
        level * dot(&women[ages.clone()], &row[ages])
    }

    #[inline(always)]
    fn share(&self, s: usize) -> f64 {
        if s == Sex::Male.index() {
            self.rates.boys_share
        } else {
            1.0 - self.rates.boys_share
        }
    }

    /// Newborns of sex `s` after birth-year deaths: the base of out-rates at the birth
    /// index.
    #[inline(always)]
    fn newborns(&self, a: usize, s: usize, births: f64) -> f64 {
        births * self.share(s) * (1.0 - lane(&self.rates.q, a, s)[self.n] * self.rates.q_factor)
    }

    /// One area's year: `start` and `end` hold its female then male lanes of ages
    /// `0..=ω`; the area's components are written into row `ca` of `c` (which may hold
    /// only a range of the areas).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn step_area(
        &self,
        a: usize,
        ca: usize,
        start: &[f64],
        end: &mut [f64],
        pooled: &[Option<[Vec<f64>; 2]>],
        arrivals: &mut [f64],
        c: &mut YearComponents,
    ) {
        let (n, rates) = (self.n, self.rates);
        let qf = rates.q_factor;
        let births = self.births(a, &start[..n]);
        for s in 0..2 {
            let p = &start[s * n..(s + 1) * n];
            let nb = self.newborns(a, s, births);
            let cl = self
                .counts
                .as_ref()
                .map_or(&self.zeros[..], |c| lane(c, a, s));
            let rl = self
                .out_rates
                .as_ref()
                .map_or(&self.zeros[..], |r| lane(r, a, s));
            // Movers of each flow, for the components and the migration table.
            for (k, f) in rates.flows.iter().enumerate() {
                let m = f.multiplier;
                let total = match &f.values {
                    FlowValues::Counts(v) => {
                        let row = if v.dim().0 == 1 { 0 } else { a };
                        m * self.count_sums[k][row * 2 + s]
                    }
                    FlowValues::OutRates(_) if self.single_rate_flow == Some(k) => 0.0,
                    FlowValues::OutRates(r) => {
                        let r = lane(r, a, s);
                        m * (dot(&r[..n], p) + r[n] * nb)
                    }
                };
                c.flow_movers[[k, ca, s]] = total;
                match f.direction {
                    Direction::In => c.in_migration[[ca, s]] += total,
                    Direction::Out => c.out_migration[[ca, s]] += total,
                    Direction::Net => c.net_flows[[ca, s]] += total,
                }
            }
            let al = if pooled.iter().any(Option::is_some) {
                arrivals.fill(0.0);
                for (k, f) in rates.flows.iter().enumerate() {
                    if let (Some(pool), Some(d)) = (&pooled[k], &f.destinations) {
                        let t = add_products(arrivals, lane(d, a, s), &pool[s]);
                        c.in_migration[[ca, s]] += t;
                        c.flow_arrivals[[k, ca, s]] = t;
                    }
                }
                &arrivals[..]
            } else {
                &self.zeros[..]
            };
            let q = lane(&rates.q, a, s);
            let out = &mut end[s * n..(s + 1) * n];
            // Survivors of age i at the start are age i + 1 at the end: they are
            // written one place up, and the open group ω keeps its own survivors too.
            let last = n - 1;
            let lanes = Lanes {
                p: &p[..last],
                q: &q[..last],
                counts: &cl[..last],
                arrivals: &al[..last],
                rates: &rl[..last],
            };
            let (mut deaths, mut unmet, mut rated) = survive(&lanes, qf, &mut out[1..]);
            let d = p[last] * q[last] * qf;
            let leaving = rl[last] * p[last];
            let x = p[last] - d + cl[last] + al[last] - leaving;
            deaths += d;
            rated += leaving;
            unmet += if x < 0.0 { -x } else { 0.0 };
            let open = if x > 0.0 { x } else { 0.0 };
            let born = births * self.share(s);
            let born_deaths = born * q[n] * qf;
            let leaving = rl[n] * nb;
            rated += leaving;
            let newborn = born - born_deaths + cl[n] + al[n] - leaving;
            unmet += if newborn < 0.0 { -newborn } else { 0.0 };
            let newborn = if newborn > 0.0 { newborn } else { 0.0 };
            if last == 0 {
                out[0] = newborn + open;
            } else {
                out[0] = newborn;
                out[last] += open;
            }
            if let Some(k) = self.single_rate_flow {
                c.flow_movers[[k, ca, s]] = rated;
                c.out_migration[[ca, s]] += rated;
            }
            c.births[[ca, s]] = born;
            c.deaths[[ca, s]] = deaths + born_deaths;
            c.unmet_out_migration[[ca, s]] = unmet;
        }
    }
}

/// The inputs of one lane's pass over ages `0..ω`: population at the start, death
/// probabilities, net counts of movers, arrivals of closed systems, and out-rates.
struct Lanes<'a> {
    p: &'a [f64],
    q: &'a [f64],
    counts: &'a [f64],
    arrivals: &'a [f64],
    rates: &'a [f64],
}

/// Deaths and survivors of one lane: `d = p·q·qf`, leavers `l = r·p`,
/// `S = p − d + counts + arrivals − l`, with negative survivors set to 0. Returns
/// (deaths, shortfall, leavers).
///
/// One pass over the ages in four independent lanes (plain arrays that the compiler
/// turns into one AVX register, or two SSE2 registers), with the three sums kept per
/// lane and added in a fixed order, so that every build gives the same bits.
#[inline(always)]
fn survive(l: &Lanes<'_>, qf: f64, out: &mut [f64]) -> (f64, f64, f64) {
    let n = l.p.len();
    let (p, q, c, a, r) = (
        &l.p[..n],
        &l.q[..n],
        &l.counts[..n],
        &l.arrivals[..n],
        &l.rates[..n],
    );
    let out = &mut out[..n];
    let (mut dacc, mut uacc, mut racc) = ([0.0f64; 4], [0.0f64; 4], [0.0f64; 4]);
    let body = n / 4 * 4;
    let four = |v: &[f64]| -> [f64; 4] { v.try_into().expect("four lanes") };
    let lanes = p
        .chunks_exact(4)
        .zip(q.chunks_exact(4))
        .zip(c.chunks_exact(4))
        .zip(a.chunks_exact(4))
        .zip(r.chunks_exact(4))
        .zip(out.chunks_exact_mut(4));
    for (((((p, q), c), a), r), out) in lanes {
        let (p, q, c, a, r) = (four(p), four(q), four(c), four(a), four(r));
        let mut o = [0.0f64; 4];
        for i in 0..4 {
            let d = p[i] * q[i] * qf;
            let leave = r[i] * p[i];
            let x = p[i] - d + c[i] + a[i] - leave;
            o[i] = if x > 0.0 { x } else { 0.0 };
            dacc[i] += d;
            racc[i] += leave;
            // `o − x` is exactly the shortfall: 0 when x > 0, −x otherwise.
            uacc[i] += o[i] - x;
        }
        out.copy_from_slice(&o);
    }
    let sum = |v: [f64; 4]| (v[0] + v[1]) + (v[2] + v[3]);
    let (mut deaths, mut unmet, mut leavers) = (sum(dacc), sum(uacc), sum(racc));
    for j in body..n {
        let d = p[j] * q[j] * qf;
        let leave = r[j] * p[j];
        deaths += d;
        leavers += leave;
        let x = p[j] - d + c[j] + a[j] - leave;
        unmet += if x < 0.0 { -x } else { 0.0 };
        out[j] = if x > 0.0 { x } else { 0.0 };
    }
    (deaths, unmet, leavers)
}

/// `net += d·q`; returns `Σ d·q`.
#[inline(always)]
fn add_products(net: &mut [f64], d: &[f64], q: &[f64]) -> f64 {
    let n = net.len().min(d.len()).min(q.len());
    let (net, d, q) = (&mut net[..n], &d[..n], &q[..n]);
    let mut acc = [0.0f64; 4];
    let body = n / 4 * 4;
    for j in (0..body).step_by(4) {
        let (x, d, q) = (&mut net[j..j + 4], &d[j..j + 4], &q[j..j + 4]);
        for i in 0..4 {
            let dq = d[i] * q[i];
            x[i] += dq;
            acc[i] += dq;
        }
    }
    for j in body..n {
        let dq = d[j] * q[j];
        net[j] += dq;
        acc[0] += dq;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// A dot product in four independent sums, so that it vectorises.
#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rates(areas: usize, n: usize, q: f64, f: f64) -> YearRates {
        YearRates {
            q: Array3::from_elem((areas, 2, n + 1), q).into(),
            q_factor: 1.0,
            fertility: Array2::from_elem((areas, n), f).into(),
            fertility_factor: Vec::new(),
            boys_share: 0.512,
            flows: Vec::new(),
        }
    }

    #[test]
    fn zero_rates_move_cohorts_one_age_up() {
        let start = Array3::from_shape_fn((1, 2, 4), |(_, s, x)| (10 * s + x + 1) as f64);
        let mut end = Array3::zeros((1, 2, 4));
        let c = project_year(start.view(), &rates(1, 4, 0.0, 0.0), end.view_mut());
        assert_eq!(
            end.slice(ndarray::s![0, 0, ..]).to_vec(),
            [0.0, 1.0, 2.0, 3.0 + 4.0]
        );
        assert_eq!(
            end.slice(ndarray::s![0, 1, ..]).to_vec(),
            [0.0, 11.0, 12.0, 13.0 + 14.0]
        );
        assert_eq!(c.births.sum(), 0.0);
    }

    #[test]
    fn hand_computed_year() {
        // One area, ages 0..=2; women 100 at each age, men 50; f = 0.1 at age 1.
        let start = Array3::from_shape_fn((1, 2, 3), |(_, s, _)| if s == 0 { 100.0 } else { 50.0 });
        let mut r = rates(1, 3, 0.1, 0.0);
        Arc::make_mut(&mut r.fertility)[[0, 1]] = 0.1;
        Arc::make_mut(&mut r.q)[[0, 0, 3]] = 0.0;
        Arc::make_mut(&mut r.q)[[0, 1, 3]] = 0.0;
        let mut end = Array3::zeros((1, 2, 3));
        let c = project_year(start.view(), &r, end.view_mut());
        // Births 10: 5.12 boys, 4.88 girls; women survive 90 each.
        assert!((c.births[[0, 1]] - 5.12).abs() < 1e-12);
        assert_eq!(
            end.slice(ndarray::s![0, 0, ..]).to_vec(),
            [10.0 * 0.488, 90.0, 180.0]
        );
        assert!((c.deaths[[0, 0]] - 30.0).abs() < 1e-12);
    }

    #[test]
    fn shortfall_is_unmet_out_migration() {
        let start = Array3::from_elem((1, 2, 3), 5.0);
        let mut r = rates(1, 3, 0.0, 0.0);
        r.flows.push(YearFlow {
            direction: Direction::Out,
            values: FlowValues::Counts(Array3::from_elem((1, 2, 4), 8.0).into()),
            multiplier: 1.0,
            destinations: None,
        });
        let mut end = Array3::zeros((1, 2, 3));
        let c = project_year(start.view(), &r, end.view_mut());
        assert!(end.iter().all(|v| *v == 0.0));
        // 3 ages short by 3 each, and 8 newborn movers with no births.
        assert_eq!(c.unmet_out_migration[[0, 0]], 3.0 * 3.0 + 8.0);
    }

    fn arb_case() -> impl Strategy<Value = (Array3<f64>, YearRates)> {
        (1usize..4, 2usize..8).prop_flat_map(|(areas, n)| {
            let pop = prop::collection::vec(0.0f64..500.0, areas * 2 * n);
            let q = prop::collection::vec(0.0f64..0.5, areas * 2 * (n + 1));
            let f = prop::collection::vec(0.0f64..0.2, areas * n);
            let counts = prop::collection::vec(0.0f64..60.0, areas * 2 * (n + 1));
            let rates_out = prop::collection::vec(0.0f64..0.3, areas * 2 * (n + 1));
            let dest = prop::collection::vec(0.01f64..1.0, areas * 2 * (n + 1));
            let net = prop::collection::vec(-80.0f64..40.0, areas * 2 * (n + 1));
            (pop, q, f, counts, rates_out, dest, net, 0.0f64..1.0).prop_map(
                move |(pop, q, f, counts, rates_out, dest, net, c)| {
                    let shape = (areas, 2, n + 1);
                    let mut d = Array3::from_shape_vec(shape, dest).unwrap();
                    let sums = d.sum_axis(Axis(0));
                    for mut lane in d.axis_iter_mut(Axis(0)) {
                        lane /= &sums;
                    }
                    let rates = YearRates {
                        q: Array3::from_shape_vec(shape, q).unwrap().into(),
                        q_factor: 0.95,
                        fertility: Array2::from_shape_vec((areas, n), f).unwrap().into(),
                        fertility_factor: vec![1.1; areas],
                        boys_share: c,
                        flows: vec![
                            YearFlow {
                                direction: Direction::Out,
                                values: FlowValues::Counts(
                                    Array3::from_shape_vec(shape, counts).unwrap().into(),
                                ),
                                multiplier: 1.3,
                                destinations: None,
                            },
                            YearFlow {
                                direction: Direction::Out,
                                values: FlowValues::OutRates(
                                    Array3::from_shape_vec(shape, rates_out).unwrap().into(),
                                ),
                                multiplier: 0.9,
                                destinations: Some(d.into()),
                            },
                            YearFlow {
                                direction: Direction::Net,
                                values: FlowValues::Counts(
                                    Array3::from_shape_vec(shape, net).unwrap().into(),
                                ),
                                multiplier: 1.1,
                                destinations: None,
                            },
                        ],
                    };
                    (Array3::from_shape_vec((areas, 2, n), pop).unwrap(), rates)
                },
            )
        })
    }

    /// A case big enough for [`project_by_area`] to split its areas between tasks:
    /// 61 areas × 101 ages × 31 year slots, with counts and out-rates.
    fn large_case() -> (Array3<f64>, YearRates) {
        let (areas, n) = (61, 101);
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let shape = (areas, 2, n + 1);
        let mut gen = |len: usize, scale: f64| (0..len).map(|_| scale * next()).collect::<Vec<_>>();
        let start = Array3::from_shape_vec((areas, 2, n), gen(areas * 2 * n, 200.0)).unwrap();
        let rates = YearRates {
            q: Array3::from_shape_vec(shape, gen(areas * 2 * (n + 1), 0.05))
                .unwrap()
                .into(),
            q_factor: 0.97,
            fertility: Array2::from_shape_vec((areas, n), gen(areas * n, 0.06))
                .unwrap()
                .into(),
            fertility_factor: vec![1.0; areas],
            boys_share: 0.51,
            flows: vec![
                YearFlow {
                    direction: Direction::In,
                    values: FlowValues::Counts(
                        Array3::from_shape_vec(shape, gen(areas * 2 * (n + 1), 3.0))
                            .unwrap()
                            .into(),
                    ),
                    multiplier: 1.0,
                    destinations: None,
                },
                YearFlow {
                    direction: Direction::Out,
                    values: FlowValues::OutRates(
                        Array3::from_shape_vec(shape, gen(areas * 2 * (n + 1), 0.1))
                            .unwrap()
                            .into(),
                    ),
                    multiplier: 1.2,
                    destinations: None,
                },
            ],
        };
        (start, rates)
    }

    /// The split between tasks changes nothing: the same bits with 1, 2 or 3 threads,
    /// and the same as projecting year by year.
    #[test]
    fn areas_split_between_tasks_give_the_same_bits() {
        let (start, rates) = large_case();
        let years = 31;
        let mut known = vec![None; years];
        known[0] = Some(start.view());
        let mut year_rates = vec![Some(rates.clone()); years];
        year_rates[0] = None;
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| project_by_area(&known, &year_rates))
        };
        let one = run(1);
        let (na, _, n) = start.dim();
        let mut by_year = Array4::zeros((years, na, 2, n));
        by_year.index_axis_mut(Axis(0), 0).assign(&start);
        for k in 1..years {
            let (before, mut after) = by_year.view_mut().split_at(Axis(0), k);
            let c = project_year(
                before.index_axis(Axis(0), k - 1),
                &rates,
                after.index_axis_mut(Axis(0), 0),
            );
            assert_eq!(one.1[k].as_ref(), Some(&c), "components of year slot {k}");
        }
        assert_eq!(one.0, by_year);
        for threads in [2, 3] {
            let split = run(threads);
            assert_eq!(split.0, one.0, "{threads} threads");
            assert_eq!(split.1, one.1, "{threads} threads");
        }
    }

    proptest! {
        #[test]
        fn balancing_equation_and_no_negatives((start, rates) in arb_case()) {
            let mut end = Array3::zeros(start.dim());
            let c = project_year(start.view(), &rates, end.view_mut());
            prop_assert!(end.iter().all(|v| *v >= 0.0));
            for a in 0..start.dim().0 {
                for s in 0..2 {
                    let before: f64 = start.slice(ndarray::s![a, s, ..]).sum();
                    let after: f64 = end.slice(ndarray::s![a, s, ..]).sum();
                    let expected = before + c.births[[a, s]] - c.deaths[[a, s]]
                        + c.net_migration()[[a, s]]
                        + c.unmet_out_migration[[a, s]];
                    prop_assert!((after - expected).abs() <= 1e-9 * after.abs().max(1.0),
                        "area {} sex {}: {} vs {}", a, s, after, expected);
                }
            }
        }

        #[test]
        fn area_by_area_equals_year_by_year((start, mut rates) in arb_case()) {
            for f in &mut rates.flows {
                f.destinations = None;
            }
            let (na, _, n) = start.dim();
            let mut by_year = Array4::zeros((3, na, 2, n));
            by_year.index_axis_mut(Axis(0), 0).assign(&start);
            let mut expected = Vec::new();
            for k in 1..3 {
                let (before, mut after) = by_year.view_mut().split_at(Axis(0), k);
                expected.push(project_year(before.index_axis(Axis(0), k - 1), &rates, after.index_axis_mut(Axis(0), 0)));
            }
            let (by_area, got) = project_by_area(&[Some(start.view()), None, None], &[None, Some(rates.clone()), Some(rates)]);
            prop_assert_eq!(by_area, by_year);
            prop_assert_eq!(got[1].as_ref(), Some(&expected[0]));
            prop_assert_eq!(got[2].as_ref(), Some(&expected[1]));
        }

        #[test]
        fn closed_system_keeps_the_total((start, mut rates) in arb_case()) {
            rates.flows.retain(|f| f.destinations.is_some());
            Arc::make_mut(&mut rates.q).fill(0.0);
            Arc::make_mut(&mut rates.fertility).fill(0.0);
            let mut end = Array3::zeros(start.dim());
            let c = project_year(start.view(), &rates, end.view_mut());
            prop_assert_eq!(c.unmet_out_migration.sum(), 0.0);
            prop_assert!((end.sum() - start.sum()).abs() <= 1e-9 * start.sum().max(1.0));
        }
    }
}
