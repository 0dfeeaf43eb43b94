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

pub use align::{align, Alignment};

pub use inputs::{Flow, FlowForm, InputError, ProjectionInputs, YearPath};

use crate::population::{Population, Sex, Year};
use ndarray::{Array2, Array3, Array4, ArrayView3, ArrayViewMut3, Axis};

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
    let base = pop
        .year_index(Year(base_year))
        .ok_or(ProjectionError::BaseYear(base_year))?;
    let years: Vec<i32> = (base_year..=end_year.max(base_year)).collect();
    let (na, nx) = (pop.areas().len(), pop.n_ages());
    let mut population = Array4::zeros((years.len(), na, 2, nx));
    population
        .index_axis_mut(Axis(0), 0)
        .assign(&pop.values().index_axis(Axis(0), base.0));
    let mut components = vec![None];
    // Rates are resolved again only when a table's year slot changes; the scalar
    // levers are set every year.
    let mut cache: Option<(Vec<usize>, YearRates)> = None;
    for (k, &y) in years.iter().enumerate().skip(1) {
        let (before, mut after) = population.view_mut().split_at(Axis(0), k);
        let start = before.index_axis(Axis(0), k - 1);
        let end = after.index_axis_mut(Axis(0), 0);
        if let Some(given) = pop.year_index(Year(y)) {
            let mut end = end;
            end.assign(&pop.values().index_axis(Axis(0), given.0));
            components.push(None);
            continue;
        }
        let inputs = inputs.ok_or(ProjectionError::NoInputs(y))?;
        let err = |source| ProjectionError::Input { year: y, source };
        let slots = inputs.slots(y).map_err(err)?;
        let rates = match cache.take() {
            Some((cached, mut rates)) if cached == slots => {
                inputs
                    .set_factors(&mut rates, pop, base_year, y)
                    .map_err(err)?;
                rates
            }
            _ => inputs.year_rates(pop, base_year, y).map_err(err)?,
        };
        components.push(Some(project_year(start, &rates, end)));
        cache = Some((slots, rates));
    }
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

/// How a migration flow's numbers turn into movers.
#[derive(Debug, Clone, PartialEq)]
pub enum FlowValues {
    /// Movers by `(area, sex, index)`, index `0..=ω` ages at the start of the year and
    /// `ω + 1` the birth index.
    Counts(Array3<f64>),
    /// Out-migration rates by `(area, sex, index)`: movers = rate × base.
    OutRates(Array3<f64>),
}

/// Whether a flow brings people in or takes them out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Into the area.
    In,
    /// Out of the area.
    Out,
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
    pub destinations: Option<Array3<f64>>,
}

/// The rates of one projection year.
///
/// Arrays by area may have a single area row that applies to every area; the scalar
/// factors (mortality improvement, fertility level, flow multipliers) are applied in
/// the step, so that tables that do not change from year to year are resolved once.
#[derive(Debug, Clone, PartialEq)]
pub struct YearRates {
    /// Probability of dying during the year by `(area, sex, index)`, before
    /// improvement; index `ω + 1` is `q_birth`, the risk of a child born during the year.
    pub q: Array3<f64>,
    /// Mortality improvement factor of the year, `(1 − r)^(y − base_year)`.
    pub q_factor: f64,
    /// Births per woman by `(area, age at the start of the year)`.
    pub fertility: Array2<f64>,
    /// Fertility level factor per area (a TFR path rescales `f`); empty for none.
    pub fertility_factor: Vec<f64>,
    /// Share of boys among births, `c`.
    pub boys_share: f64,
    /// Migration flows.
    pub flows: Vec<YearFlow>,
}

/// The `(area, sex)` lane of a `(areas or 1, 2, width)` array.
fn lane(arr: &Array3<f64>, a: usize, s: usize) -> &[f64] {
    let (na, _, w) = arr.dim();
    let a = if na == 1 { 0 } else { a };
    let all = arr.as_slice().expect("rate arrays are in standard layout");
    &all[(a * 2 + s) * w..(a * 2 + s + 1) * w]
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
    /// Movers of each flow (in the flow's own direction), by `(flow, area, sex)`.
    pub flow_movers: Array3<f64>,
    /// Arrivals of each closed internal system by `(flow, area, sex)` (0 for other
    /// flows).
    pub flow_arrivals: Array3<f64>,
}

impl YearComponents {
    fn zeros(areas: usize, flows: usize) -> Self {
        let z = || Array2::zeros((areas, 2));
        YearComponents {
            births: z(),
            deaths: z(),
            in_migration: z(),
            out_migration: z(),
            unmet_out_migration: z(),
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
    let w = n + 1; // ages 0..=ω and the birth index
    let mut c = YearComponents::zeros(areas, rates.flows.len());
    let start = start.as_standard_layout();
    let p_all = start.as_slice().expect("standard layout");
    let p_lane = |a: usize, s: usize| &p_all[(a * 2 + s) * n..(a * 2 + s + 1) * n];
    let qf = rates.q_factor;
    let share = [1.0 - rates.boys_share, rates.boys_share];

    // Births by area, from women at the start of the year.
    let births: Vec<f64> = (0..areas)
        .map(|a| {
            let fa = if rates.fertility.dim().0 == 1 { 0 } else { a };
            let f = rates.fertility.row(fa);
            let f = f.as_slice().expect("standard layout");
            let level = rates.fertility_factor.get(a).copied().unwrap_or(1.0);
            level * dot(p_lane(a, Sex::Female.index()), f)
        })
        .collect();
    // Newborns of a sex after birth-year deaths: the base of out-rates at the birth index.
    let newborns = |a: usize, s: usize| births[a] * share[s] * (1.0 - lane(&rates.q, a, s)[n] * qf);

    // Closed systems: movers pooled over every area, per flow, sex and index.
    let pooled: Vec<Option<[Vec<f64>; 2]>> = rates
        .flows
        .iter()
        .map(|f| {
            f.destinations.as_ref()?;
            let mut pool = [vec![0.0; w], vec![0.0; w]];
            for a in 0..areas {
                for (s, pool) in pool.iter_mut().enumerate() {
                    let v = match &f.values {
                        FlowValues::Counts(m) => lane(m, a, s),
                        FlowValues::OutRates(r) => lane(r, a, s),
                    };
                    let m = f.multiplier;
                    if matches!(f.values, FlowValues::OutRates(_)) {
                        for ((x, v), p) in pool[..n].iter_mut().zip(&v[..n]).zip(p_lane(a, s)) {
                            *x += m * v * p;
                        }
                        pool[n] += m * v[n] * newborns(a, s);
                    } else {
                        for (x, v) in pool.iter_mut().zip(v) {
                            *x += m * v;
                        }
                    }
                }
            }
            Some(pool)
        })
        .collect();

    let mut net = vec![0.0; w];
    let out_all = end
        .as_slice_mut()
        .expect("the end population is in standard layout");
    for a in 0..areas {
        for s in 0..2 {
            let p = p_lane(a, s);
            net.fill(0.0);
            for (k, f) in rates.flows.iter().enumerate() {
                let m = f.multiplier;
                let (movers, sign) = match f.direction {
                    Direction::In => (&mut c.in_migration[[a, s]], 1.0),
                    Direction::Out => (&mut c.out_migration[[a, s]], -1.0),
                };
                let total = match &f.values {
                    FlowValues::Counts(v) => m * add_scaled(&mut net, lane(v, a, s), sign * m),
                    FlowValues::OutRates(r) => {
                        let r = lane(r, a, s);
                        let mv = m * r[n] * newborns(a, s);
                        net[n] -= mv;
                        m * sub_products(&mut net[..n], &r[..n], p, m) + mv
                    }
                };
                *movers += total;
                c.flow_movers[[k, a, s]] = total;
                if let (Some(pool), Some(d)) = (&pooled[k], &f.destinations) {
                    let t = add_products(&mut net, lane(d, a, s), &pool[s]);
                    c.in_migration[[a, s]] += t;
                    c.flow_arrivals[[k, a, s]] = t;
                }
            }
            let q = lane(&rates.q, a, s);
            let out = &mut out_all[(a * 2 + s) * n..(a * 2 + s + 1) * n];
            // Survivors of age i at the start are age i + 1 at the end: they are
            // written one place up, and the open group ω keeps its own survivors too.
            let last = n - 1;
            let (mut deaths, mut unmet) =
                survive(&p[..last], &q[..last], qf, &net[..last], &mut out[1..]);
            let d = p[last] * q[last] * qf;
            let x = p[last] - d + net[last];
            deaths += d;
            unmet += if x < 0.0 { -x } else { 0.0 };
            let open = if x > 0.0 { x } else { 0.0 };
            let born = births[a] * share[s];
            let born_deaths = born * q[n] * qf;
            let newborn = born - born_deaths + net[n];
            unmet += (-newborn).max(0.0);
            if last == 0 {
                out[0] = newborn.max(0.0) + open;
            } else {
                out[0] = newborn.max(0.0);
                out[last] += open;
            }
            c.births[[a, s]] = born;
            c.deaths[[a, s]] = deaths + born_deaths;
            c.unmet_out_migration[[a, s]] = unmet;
        }
    }
    c
}

/// Deaths and survivors of one lane: `d = p·q·qf`, `S = p − d + m`, with negative
/// survivors set to 0. Returns (deaths, shortfall). Sums run in four independent
/// accumulators so that the loop vectorises.
fn survive(p: &[f64], q: &[f64], qf: f64, m: &[f64], out: &mut [f64]) -> (f64, f64) {
    let n = p.len();
    let (q, m, out) = (&q[..n], &m[..n], &mut out[..n]);
    let mut dacc = [0.0f64; 4];
    let mut uacc = [0.0f64; 4];
    let body = n / 4 * 4;
    for j in (0..body).step_by(4) {
        let (p, q, m) = (&p[j..j + 4], &q[j..j + 4], &m[j..j + 4]);
        let o = &mut out[j..j + 4];
        for k in 0..4 {
            let d = p[k] * q[k] * qf;
            dacc[k] += d;
            let x = p[k] - d + m[k];
            // Selects rather than `f64::max`, so that the lanes vectorise.
            uacc[k] += if x < 0.0 { -x } else { 0.0 };
            o[k] = if x > 0.0 { x } else { 0.0 };
        }
    }
    for j in body..n {
        let d = p[j] * q[j] * qf;
        dacc[0] += d;
        let x = p[j] - d + m[j];
        uacc[0] += if x < 0.0 { -x } else { 0.0 };
        out[j] = if x > 0.0 { x } else { 0.0 };
    }
    (
        (dacc[0] + dacc[1]) + (dacc[2] + dacc[3]),
        (uacc[0] + uacc[1]) + (uacc[2] + uacc[3]),
    )
}

/// `net += k·v`; returns `Σ v`. Sums run in four independent accumulators so that
/// the loop vectorises (as in the helpers below).
fn add_scaled(net: &mut [f64], v: &[f64], k: f64) -> f64 {
    let n = net.len().min(v.len());
    let (net, v) = (&mut net[..n], &v[..n]);
    let mut acc = [0.0f64; 4];
    let body = n / 4 * 4;
    for j in (0..body).step_by(4) {
        let (x, v) = (&mut net[j..j + 4], &v[j..j + 4]);
        for i in 0..4 {
            x[i] += k * v[i];
            acc[i] += v[i];
        }
    }
    for j in body..n {
        net[j] += k * v[j];
        acc[0] += v[j];
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// `net −= m·r·p`; returns `Σ r·p`.
fn sub_products(net: &mut [f64], r: &[f64], p: &[f64], m: f64) -> f64 {
    let n = net.len().min(r.len()).min(p.len());
    let (net, r, p) = (&mut net[..n], &r[..n], &p[..n]);
    let mut acc = [0.0f64; 4];
    let body = n / 4 * 4;
    for j in (0..body).step_by(4) {
        let (x, r, p) = (&mut net[j..j + 4], &r[j..j + 4], &p[j..j + 4]);
        for i in 0..4 {
            let rp = r[i] * p[i];
            x[i] -= m * rp;
            acc[i] += rp;
        }
    }
    for j in body..n {
        let rp = r[j] * p[j];
        net[j] -= m * rp;
        acc[0] += rp;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// `net += d·q`; returns `Σ d·q`.
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
            q: Array3::from_elem((areas, 2, n + 1), q),
            q_factor: 1.0,
            fertility: Array2::from_elem((areas, n), f),
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
        r.fertility[[0, 1]] = 0.1;
        r.q[[0, 0, 3]] = 0.0;
        r.q[[0, 1, 3]] = 0.0;
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
            values: FlowValues::Counts(Array3::from_elem((1, 2, 4), 8.0)),
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
            (pop, q, f, counts, rates_out, dest, 0.0f64..1.0).prop_map(
                move |(pop, q, f, counts, rates_out, dest, c)| {
                    let shape = (areas, 2, n + 1);
                    let mut d = Array3::from_shape_vec(shape, dest).unwrap();
                    let sums = d.sum_axis(Axis(0));
                    for mut lane in d.axis_iter_mut(Axis(0)) {
                        lane /= &sums;
                    }
                    let rates = YearRates {
                        q: Array3::from_shape_vec(shape, q).unwrap(),
                        q_factor: 0.95,
                        fertility: Array2::from_shape_vec((areas, n), f).unwrap(),
                        fertility_factor: vec![1.1; areas],
                        boys_share: c,
                        flows: vec![
                            YearFlow {
                                direction: Direction::Out,
                                values: FlowValues::Counts(
                                    Array3::from_shape_vec(shape, counts).unwrap(),
                                ),
                                multiplier: 1.3,
                                destinations: None,
                            },
                            YearFlow {
                                direction: Direction::Out,
                                values: FlowValues::OutRates(
                                    Array3::from_shape_vec(shape, rates_out).unwrap(),
                                ),
                                multiplier: 0.9,
                                destinations: Some(d),
                            },
                        ],
                    };
                    (Array3::from_shape_vec((areas, 2, n), pop).unwrap(), rates)
                },
            )
        })
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
                        + c.in_migration[[a, s]] - c.out_migration[[a, s]]
                        + c.unmet_out_migration[[a, s]];
                    prop_assert!((after - expected).abs() <= 1e-9 * after.abs().max(1.0),
                        "area {} sex {}: {} vs {}", a, s, after, expected);
                }
            }
        }

        #[test]
        fn closed_system_keeps_the_total((start, mut rates) in arb_case()) {
            rates.flows.remove(0);
            rates.q.fill(0.0);
            rates.fertility.fill(0.0);
            let mut end = Array3::zeros(start.dim());
            let c = project_year(start.view(), &rates, end.view_mut());
            prop_assert_eq!(c.unmet_out_migration.sum(), 0.0);
            prop_assert!((end.sum() - start.sum()).abs() <= 1e-9 * start.sum().max(1.0));
        }
    }
}
