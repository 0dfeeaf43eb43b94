//! A whole scenario as one library function: projection (väestöennuste), alignment,
//! services (tuotteistetut palvelut) with their resources and costs, the service
//! network (palveluverkko) and, with trajectories, the Monte Carlo summaries — from
//! values in memory, never a file.
//!
//! `kunta::io` turns a scenario file and its tables into a
//! [`Scenario`](crate::scenario::Scenario) and a
//! [`RunResult`] into tables, `summary.json` and `manifest.json`; the binary only
//! parses its arguments and prints. A Rust program builds a scenario in code
//! (see [`crate::scenario`]):
//!
//! ```
//! use kunta::population::{Age, Population, Record, Sex, Year};
//! use kunta::run::{run, Options};
//! use kunta::scenario::Scenario;
//! use kunta::services::Service;
//!
//! // 100 persons of each sex and age 0–20 in one area; no rates: a population that
//! // holds every year to the end year is used as given (a published forecast).
//! let records = (2024..=2026).flat_map(|y| {
//!     (0..=20u16).flat_map(move |x| {
//!         Sex::ALL.map(|sex| Record {
//!             area: "091".into(),
//!             sex,
//!             age: Age(x),
//!             year: Year(y),
//!             value: 100.0,
//!         })
//!     })
//! });
//! let population = Population::from_records(records)?;
//! let mut scenario = Scenario::new("Kunta", population, 2024, 2026);
//! scenario.services.push(Service::new("school", (7, 12)));
//! let result = run(&scenario.validate()?, &Options::default(), &|_, _| {})?;
//! // Ages 7–12 of both sexes: 6 × 2 × 100 pupils in every year.
//! assert_eq!(result.services[0].demand[[0, 0, 2]], 1200.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::network::{Network, UnitCapacity};
use crate::population::Year;
use crate::projection::{project, Projection, ProjectionError};
use crate::scenario::{ControlTotals, ValidScenario};
use crate::services::{demand_shares, evaluate, ServiceError, ServiceResult};
use crate::uncertainty::{
    run_aligned, AlignTo, McError, McResult, ServiceInput, Spec, UnitInput, Want,
};
use ndarray::Array4;

mod impact;
mod summary;
pub use impact::{
    break_even, impact, impact_trajectories, CostSources, Impact, ImpactPath, TrajectoryCosts,
    TrajectoryImpact,
};
pub use summary::{
    summarise, AreaFigures, FirstLast, Interval, Named, RunSummary, SegmentFigures, ServiceFigures,
    ServiceIntervals, UncertaintyFigures, UnitChances, UnitFigures, VariantChances, VariantFigures,
};

/// How to run a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Monte Carlo trajectories and their settings; none for a deterministic run.
    pub uncertainty: Option<Spec>,
    /// Whether the trajectories summarise the population, the components and the
    /// movers (besides the services and units).
    pub population_quantiles: bool,
}

impl Default for Options {
    /// Deterministic.
    fn default() -> Options {
        Options {
            uncertainty: None,
            population_quantiles: true,
        }
    }
}

/// The alignment of a run: the factors and the year slots aligned.
#[derive(Debug, Clone, PartialEq)]
pub struct AlignmentResult {
    /// Factors by `(year slot, parent, sex, age)`; `NaN` where the children were all 0
    /// and the control was shared out.
    pub factors: Array4<f64>,
    /// The year slots aligned (those the control holds).
    pub slots: Vec<usize>,
}

/// Everything a run computes.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The projection (aligned, where the scenario aligns; its components are the
    /// projection's own).
    pub projection: Projection,
    /// The alignment, where the scenario aligns.
    pub alignment: Option<AlignmentResult>,
    /// Each service's demand, resources and costs, in the scenario's order.
    pub services: Vec<ServiceResult>,
    /// Each unit's demand against its places, in the network's order.
    pub capacity: Vec<UnitCapacity>,
    /// Each unit's own costs (MODEL.md §9), in the network's order.
    pub unit_costs: Vec<crate::network::UnitCosts>,
    /// The Monte Carlo summaries, with trajectories.
    pub monte_carlo: Option<McResult>,
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The scenario does not hold together (from [`ValidScenario`]'s checks, for a
    /// caller that validates and runs in one function).
    #[error(transparent)]
    Scenario(#[from] crate::scenario::ScenarioError),
    /// A year could not be projected.
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    /// A service could not be evaluated.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The Monte Carlo run failed.
    #[error(transparent)]
    Uncertainty(#[from] McError),
}

/// Runs a scenario: the deterministic projection, its alignment, services and
/// network, then, with [`Options::uncertainty`], the trajectories. `progress` gets
/// (block-years done, block-years in all: a block of eight trajectories through one
/// year is one).
///
/// # Errors
/// [`RunError`] if a year cannot be projected, a service evaluated or the
/// trajectories run (too many of them, among others).
pub fn run(
    s: &ValidScenario,
    o: &Options,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<RunResult, RunError> {
    let mut r = deterministic(s)?;
    if let Some(spec) = &o.uncertainty {
        let mc = monte_carlo(s, &r.services, spec, o.population_quantiles, progress)?;
        r.monte_carlo = Some(mc);
    }
    Ok(r)
}

/// The most trajectories this scenario can run within
/// [`crate::uncertainty::TRAJECTORY_MEMORY`] (see
/// [`crate::uncertainty::trajectory_limit`]): its areas run as one group when a
/// closed internal system or an alignment couples them.
pub fn trajectory_limit(s: &ValidScenario) -> usize {
    let years = usize::try_from(s.end_year - s.base_year).unwrap_or(0) + 1;
    let flows = s.inputs.as_ref().map_or(&[][..], |i| &i.flows[..]);
    let closed = flows.iter().any(|f| f.destinations.is_some());
    let reach: Vec<Vec<f64>> = s.network.as_ref().map_or_else(Vec::new, |net| {
        (0..net.units().len()).map(|u| net.reach(u)).collect()
    });
    let shares: Vec<&[f64]> = reach.iter().map(Vec::as_slice).collect();
    crate::uncertainty::trajectory_limit(
        s.population.areas().len(),
        years,
        flows.len(),
        s.services.len(),
        &shares,
        closed || s.alignment.is_some(),
    )
}

/// The deterministic run alone (what [`run`] does without trajectories).
///
/// # Errors
/// As [`run`].
pub fn deterministic(s: &ValidScenario) -> Result<RunResult, RunError> {
    use rayon::prelude::*;
    let mut p = project(&s.population, s.base_year, s.end_year, s.inputs.as_ref())?;
    let alignment = s.alignment.as_ref().map(|a| {
        let (control, slots) = control_slots(&p.years, a);
        let factors =
            crate::projection::align(&mut p.population, &a.parent_of, control.view(), &slots)
                .factors;
        AlignmentResult { factors, slots }
    });
    // Each service on its own, side by side; the first service's error in the
    // scenario's order is the one reported.
    let services = s
        .services
        .par_iter()
        .map(|sv| {
            evaluate(
                sv,
                p.population.view(),
                &p.years,
                s.base_year,
                s.discount_rate,
            )
        })
        .collect::<Vec<_>>()
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let capacity = s
        .network
        .as_ref()
        .map(|net| unit_capacity(net, &p, &services))
        .unwrap_or_default();
    let unit_costs = s
        .network
        .as_ref()
        .map(|net| crate::network::unit_costs(net, &p.years, s.discount_rate))
        .unwrap_or_default();
    Ok(RunResult {
        projection: p,
        alignment,
        services,
        capacity,
        unit_costs,
        monte_carlo: None,
    })
}

/// The Monte Carlo trajectories of a scenario whose deterministic services are
/// `det` (as [`deterministic`] gives them): the summaries of the services and units and, with `population`, of the population,
/// components and movers. A scenario that aligns is aligned in every trajectory to
/// the same control totals; a per-service fixed cost is carried by the areas in
/// their shares of the deterministic demand.
///
/// # Errors
/// As [`run`].
pub fn monte_carlo(
    s: &ValidScenario,
    det: &[ServiceResult],
    spec: &Spec,
    population: bool,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<McResult, RunError> {
    monte_carlo_in(
        s,
        det,
        spec,
        population,
        progress,
        &mut crate::uncertainty::Workspace::default(),
    )
}

/// As [`monte_carlo`], with the buffers of `ws`, left there for the next run (a
/// scenario's variants run one after another): the same result.
///
/// # Errors
/// As [`monte_carlo`].
pub fn monte_carlo_in(
    s: &ValidScenario,
    det: &[ServiceResult],
    spec: &Spec,
    population: bool,
    progress: &(dyn Fn(usize, usize) + Sync),
    ws: &mut crate::uncertainty::Workspace,
) -> Result<McResult, RunError> {
    let has_services = !s.services.is_empty();
    let years: Vec<i32> = (s.base_year..=s.end_year).collect();
    let want = Want {
        population,
        components: population,
        migration: population,
        demand: has_services,
        costs: has_services,
    };
    let shares: Vec<ndarray::Array2<f64>> = det.iter().map(|r| demand_shares(&r.demand)).collect();
    // Each unit's reach and, where the catchments are redrawn, its shares by year.
    let catchments: Vec<(Vec<f64>, Vec<Vec<f64>>)> =
        s.network.as_ref().map_or_else(Vec::new, |net| {
            (0..net.units().len())
                .map(|u| {
                    let by_year = if net.is_redrawn() {
                        years
                            .iter()
                            .map(|y| net.shares_in(u, *y).to_vec())
                            .collect()
                    } else {
                        Vec::new()
                    };
                    (net.reach(u), by_year)
                })
                .collect()
        });
    let inputs: Vec<ServiceInput<'_>> = s
        .services
        .iter()
        .zip(&shares)
        .enumerate()
        .map(|(i, (service, sh))| ServiceInput {
            service,
            fixed_shares: Some(sh),
            discount_rate: s.discount_rate,
            units: s.network.as_ref().map_or_else(Vec::new, |net| {
                net.units_of(i)
                    .into_iter()
                    .map(|u| UnitInput {
                        unit: &net.units()[u],
                        shares: &catchments[u].0,
                        by_year: &catchments[u].1,
                    })
                    .collect()
            }),
        })
        .collect();
    let control = s.alignment.as_ref().map(|a| (a, control_slots(&years, a)));
    let align = control.as_ref().map(|(a, (control, slots))| AlignTo {
        parent_of: &a.parent_of,
        control: control.view(),
        slots,
    });
    Ok(run_aligned(
        &s.population,
        s.base_year,
        s.end_year,
        s.inputs.as_ref(),
        spec,
        &inputs,
        want,
        align.as_ref(),
        progress,
        ws,
    )?)
}

/// The control population by `(year slot, parent, sex, age)` over the projection's
/// years, and the projected year slots it holds.
fn control_slots(years: &[i32], a: &ControlTotals) -> (Array4<f64>, Vec<usize>) {
    let nx = a.control.n_ages();
    let mut control = Array4::zeros((years.len(), a.control.areas().len(), 2, nx));
    let mut slots = Vec::new();
    for (k, y) in years.iter().enumerate().skip(1) {
        if let Some(c) = a.control.year_index(Year(*y)) {
            control
                .index_axis_mut(ndarray::Axis(0), k)
                .assign(&a.control.values().index_axis(ndarray::Axis(0), c.0));
            slots.push(k);
        }
    }
    (control, slots)
}

/// Each unit's demand against its places (MODEL.md §9).
fn unit_capacity(net: &Network, p: &Projection, r: &[ServiceResult]) -> Vec<UnitCapacity> {
    let demand: Vec<ndarray::Array2<f64>> = r
        .iter()
        .map(|s| s.demand.sum_axis(ndarray::Axis(0)))
        .collect();
    let views: Vec<_> = demand.iter().map(ndarray::Array2::view).collect();
    let floor: Vec<_> = r
        .iter()
        .map(|s| s.floor_area_m2.as_ref().map(ndarray::Array2::view))
        .collect();
    crate::network::capacity(net, &views, &floor, &p.years)
}
