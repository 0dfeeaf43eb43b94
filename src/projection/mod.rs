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
pub(crate) mod kernel;
mod simd;

pub(crate) use simd::{
    avx2 as simd_avx2, avx512 as simd_avx512, dispatch as simd_dispatch, prefetch, stream_copy,
    stream_fence, Kernel,
};

pub use align::{align, Alignment};
pub(crate) use align::{align_year, Parents};

pub use inputs::{Flow, FlowForm, InputError, ProjectionInputs, YearPath};

use kernel::{mv_at, step, GeneralScratch, LaneYear, YearKernel, COMPONENTS};

use crate::population::{Population, Year};
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
    let nf = inputs.map_or(0, |i| i.flows.len());
    let (population, components) = run(&known, &year_rates, nf);
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
    /// index, come back in to the areas by these shares. Only for a flow of
    /// [`FlowValues::OutRates`]: the year kernel takes counts with destinations as
    /// plain counts.
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
/// `(areas, 2, ω + 2)`. It is the year [`project`] runs, through the same kernel.
pub fn project_year(
    start: ArrayView3<'_, f64>,
    rates: &YearRates,
    mut end: ArrayViewMut3<'_, f64>,
) -> YearComponents {
    let (areas, _, n) = start.dim();
    let slots = [None, Some(rates.clone())];
    let kernel = YearKernel::new(&slots, n, rates.flows.len(), true, true);
    let mut years = vec![0.0; 2 * areas * 2 * n];
    for (x, v) in years.iter_mut().zip(start.iter()) {
        *x = *v;
    }
    let mut components = vec![None, Some(YearComponents::zeros(areas, rates.flows.len()))];
    simd::dispatch(Years {
        kernel: &kernel,
        known: &[None, None],
        group: 0..areas,
        years: &mut years,
        components: &mut components,
        row: 0,
        scratch: &mut Scratch::default(),
    });
    for (x, v) in end.iter_mut().zip(&years[areas * 2 * n..]) {
        *x = *v;
    }
    components.pop().flatten().expect("the year was projected")
}

/// Runs every year slot through the year kernel ([`kernel`], one lane: each flow's
/// multiplier its scenario lever, no other multiplier): `known[k]` is the
/// population of slot `k` by `(area, sex, age)` where it is given (always for slot
/// 0), `year_rates[k]` the rates of the other slots.
///
/// Areas are independent unless a closed internal system couples them. Independent
/// areas each run through every year while their few kilobytes of state stay in the
/// cache, stored area by area and returned as a `(year, area, sex, age)` view of
/// that storage; ranges of areas run in parallel, each into its own part of the
/// storage and its own component arrays. Coupled areas run together, year by year.
/// Every area's arithmetic is the same whatever the ranges, so the bits do not depend
/// on the number of threads.
fn run(
    known: &[Option<ArrayView3<'_, f64>>],
    year_rates: &[Option<YearRates>],
    nf: usize,
) -> (Array4<f64>, Vec<Option<YearComponents>>) {
    use rayon::prelude::*;
    let ny = known.len();
    let (areas, _, n) = known[0].as_ref().map_or((0, 2, 0), |k| k.dim());
    let kernel = YearKernel::new(year_rates, n, nf, true, true);
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
    let lane = 2 * n;
    let len = areas * ny * lane;
    let closed = year_rates
        .iter()
        .flatten()
        .any(|r| r.flows.iter().any(|f| f.destinations.is_some()));
    if closed {
        let mut all = vec![0.0; len];
        let mut components = zeros(areas);
        simd::dispatch(Years {
            kernel: &kernel,
            known,
            group: 0..areas,
            years: &mut all,
            components: &mut components,
            row: 0,
            scratch: &mut Scratch::default(),
        });
        let all = Array4::from_shape_vec((ny, areas, 2, n), all)
            .expect("one lane pair per area and year");
        return (all, components);
    }
    // Small projections run as one task: splitting them costs more than it saves.
    let tasks = if len < 1 << 18 {
        1
    } else {
        rayon::current_num_threads()
    };
    // The storage is zeroed first, by all the threads when there are several.
    let mut all = if tasks == 1 {
        vec![0.0; len]
    } else {
        let mut v = Vec::with_capacity(len);
        v.par_extend(rayon::iter::repeat_n(0.0, len));
        v
    };
    let per_task = areas.div_ceil(tasks).max(1);
    let mut parts: Vec<Vec<Option<YearComponents>>> = all
        .par_chunks_mut((per_task * ny * lane).max(1))
        .enumerate()
        .map(|(t, out)| {
            let mut components = zeros(out.len() / (ny * lane).max(1));
            let mut scratch = Scratch::default();
            let first = t * per_task;
            for (i, years) in out.chunks_exact_mut((ny * lane).max(1)).enumerate() {
                simd::dispatch(Years {
                    kernel: &kernel,
                    known,
                    group: first + i..first + i + 1,
                    years,
                    components: &mut components,
                    row: i,
                    scratch: &mut scratch,
                });
            }
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

/// A group's working space, kept from group to group.
#[derive(Default)]
struct Scratch {
    comp: Vec<[[f64; 1]; COMPONENTS]>,
    mv: Vec<[f64; 1]>,
    general: GeneralScratch<1>,
}

/// A group of areas through every year slot: `years` holds the group's state of each
/// slot one after another (by `(area, sex, age)`), and the group's components go to
/// rows `row..` of `components`.
struct Years<'r, 'a, 'p> {
    kernel: &'r YearKernel<'a>,
    known: &'r [Option<ArrayView3<'p, f64>>],
    group: std::ops::Range<usize>,
    years: &'r mut [f64],
    components: &'r mut [Option<YearComponents>],
    row: usize,
    scratch: &'r mut Scratch,
}

impl simd::Kernel for Years<'_, '_, '_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Years {
            kernel: kx,
            known,
            group,
            years,
            components,
            row,
            scratch,
        } = self;
        let (n, nf, ga) = (kx.n, kx.nf, group.len());
        let len = ga * 2 * n;
        if len == 0 {
            return;
        }
        scratch.comp.clear();
        scratch.comp.resize(ga * 2, [[0.0]; COMPONENTS]);
        scratch.mv.clear();
        scratch.mv.resize(ga * 2 * nf * 2, [0.0]);
        let mut ly = LaneYear::<1>::ones(nf);
        for k in 0..years.len() / len {
            let (done, rest) = years.split_at_mut(k * len);
            let next = &mut rest[..len];
            match (&known[k], &kx.rates[k], &mut components[k]) {
                (Some(given), _, _) => {
                    let given = given.slice(ndarray::s![group.clone(), .., ..]);
                    for (x, v) in next.iter_mut().zip(given.iter()) {
                        *x = *v;
                    }
                }
                (None, Some(r), Some(c)) if k > 0 => {
                    for (m, f) in ly.mm.iter_mut().zip(&r.flows) {
                        *m = [f.multiplier];
                    }
                    let cur = done[(k - 1) * len..].as_chunks_mut::<1>().0;
                    let next = next.as_chunks_mut::<1>().0;
                    let in_place = step(
                        kx,
                        k,
                        r,
                        &ly,
                        &group,
                        cur,
                        next,
                        &mut scratch.general,
                        &mut scratch.comp,
                        &mut scratch.mv,
                    );
                    debug_assert!(!in_place, "the components are kept");
                    for (al, comp) in scratch.comp.chunks_exact(2).enumerate() {
                        for (s, cs) in comp.iter().enumerate() {
                            let ca = row + al;
                            c.births[[ca, s]] = cs[0][0];
                            c.deaths[[ca, s]] = cs[1][0];
                            c.in_migration[[ca, s]] = cs[2][0];
                            c.out_migration[[ca, s]] = cs[3][0];
                            c.unmet_out_migration[[ca, s]] = cs[4][0];
                            let mut net = 0.0;
                            for (f, fl) in r.flows.iter().enumerate() {
                                let movers = scratch.mv[mv_at(nf, al * 2 + s, f, false)][0];
                                c.flow_movers[[f, ca, s]] = movers;
                                if fl.direction == Direction::Net {
                                    net += movers;
                                }
                                if fl.destinations.is_some() {
                                    c.flow_arrivals[[f, ca, s]] =
                                        scratch.mv[mv_at(nf, al * 2 + s, f, true)][0];
                                }
                            }
                            c.net_flows[[ca, s]] = net;
                        }
                    }
                }
                // Nothing known and nothing to project from: left at 0.
                _ => {}
            }
        }
    }
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
    fn hand_computed_closed_system() {
        // Areas A and B, ages 0..=1, no deaths or births; a closed system with an
        // out-rate of 0.1 everywhere, its movers shared half and half.
        let mut start = Array3::zeros((2, 2, 2));
        start[[0, 0, 0]] = 100.0;
        start[[0, 0, 1]] = 50.0;
        start[[1, 1, 0]] = 20.0;
        start[[1, 1, 1]] = 20.0;
        let mut r = rates(2, 2, 0.0, 0.0);
        r.flows.push(YearFlow {
            direction: Direction::Out,
            values: FlowValues::OutRates(Array3::from_elem((1, 2, 3), 0.1).into()),
            multiplier: 1.0,
            destinations: Some(Array3::from_elem((2, 2, 3), 0.5).into()),
        });
        let mut end = Array3::zeros((2, 2, 2));
        let c = project_year(start.view(), &r, end.view_mut());
        // Women: A loses 10 and 5 and gets back half of them; B gets the other half.
        assert_eq!(
            end.slice(ndarray::s![0, 0, ..]).to_vec(),
            [0.0, 95.0 + 47.5]
        );
        assert_eq!(end.slice(ndarray::s![1, 0, ..]).to_vec(), [0.0, 7.5]);
        // Men: B loses 2 and 2, and each area gets 1 and 1.
        assert_eq!(end.slice(ndarray::s![0, 1, ..]).to_vec(), [0.0, 2.0]);
        assert_eq!(end.slice(ndarray::s![1, 1, ..]).to_vec(), [0.0, 38.0]);
        assert_eq!(c.out_migration[[0, 0]], 15.0);
        assert_eq!(c.in_migration[[0, 0]], 7.5);
        assert_eq!(c.flow_movers[[0, 1, 1]], 4.0);
        assert_eq!(c.flow_arrivals[[0, 0, 1]], 2.0);
        assert_eq!(c.unmet_out_migration.sum(), 0.0);
    }

    #[test]
    fn any_number_of_flows() {
        // Eighteen flows of one mover in at every index (the general step, which
        // takes any number): 18 at every index of every lane.
        let start = Array3::zeros((1, 2, 3));
        let mut r = rates(1, 3, 0.0, 0.0);
        for _ in 0..18 {
            r.flows.push(YearFlow {
                direction: Direction::In,
                values: FlowValues::Counts(Array3::from_elem((1, 2, 4), 1.0).into()),
                multiplier: 1.0,
                destinations: None,
            });
        }
        let mut end = Array3::zeros((1, 2, 3));
        let c = project_year(start.view(), &r, end.view_mut());
        assert_eq!(
            end.slice(ndarray::s![0, 1, ..]).to_vec(),
            [18.0, 18.0, 36.0]
        );
        assert_eq!(c.in_migration[[0, 0]], 72.0);
        assert_eq!(c.flow_movers[[17, 0, 1]], 4.0);
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

    /// A case big enough for [`run`] to split its areas between tasks:
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
                .install(|| run(&known, &year_rates, 2))
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
            let (by_area, got) = run(&[Some(start.view()), None, None], &[None, Some(rates.clone()), Some(rates)], 3);
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
