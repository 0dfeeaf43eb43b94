//! A whole scenario as one library function: projection (väestöennuste), alignment,
//! services (tuotteistetut palvelut) with their resources and costs, the service
//! network (palveluverkko) and, with trajectories, the Monte Carlo summaries — from
//! values in memory, never a file.
//!
//! `kunta::io` turns a scenario file and its tables into a [`Scenario`] and a
//! [`RunResult`] into tables, `summary.json` and `manifest.json`; the binary only
//! parses its arguments and prints. A Rust program builds a [`Scenario`] in code:
//!
//! ```
//! use kunta::population::{Age, Population, Record, Sex, Year};
//! use kunta::run::{run, Options, Scenario};
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
use crate::population::{Population, Year};
use crate::projection::{project, Projection, ProjectionError, ProjectionInputs};
use crate::services::{demand_shares, evaluate, Service, ServiceError, ServiceResult};
use crate::uncertainty::{
    run_aligned, AlignTo, McError, McResult, ServiceInput, Spec, UnitInput, Want,
};
use ndarray::Array4;

mod effect;
mod impact;
mod summary;
pub use effect::CohortEffect;
pub use impact::{
    break_even, impact, impact_trajectories, CostSources, Impact, ImpactPath, TrajectoryCosts,
    TrajectoryImpact,
};
pub use summary::{
    summarise, AreaFigures, FirstLast, Interval, Named, RunSummary, SegmentFigures, ServiceFigures,
    ServiceIntervals, UncertaintyFigures, UnitChances, UnitFigures, VariantChances, VariantFigures,
};

/// The most years a scenario projects after its base year: more than any planning
/// horizon, and few enough that every array of a run can be held.
pub const MAX_YEARS: i32 = 200;

/// The control totals the areas are aligned to (MODEL.md §4).
#[derive(Debug, Clone)]
pub struct ControlTotals {
    /// Parent position (in `control`'s areas) of each area of the population.
    pub parent_of: Vec<usize>,
    /// The parents' population; the projected years it holds are aligned.
    pub control: Population,
}

/// A scenario in memory: everything [`run`] needs.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Name (the `scenario` column of every table).
    pub name: String,
    /// The last observed year, `t0`.
    pub base_year: i32,
    /// The last projected year, `T`.
    pub end_year: i32,
    /// Discount rate of present values (0: undiscounted sums).
    pub discount_rate: f64,
    /// The population: the base year, and any published forecast years after it.
    pub population: Population,
    /// Rates for the years the population does not hold.
    pub inputs: Option<ProjectionInputs>,
    /// Alignment of the areas to control totals.
    pub alignment: Option<ControlTotals>,
    /// Services, in order.
    pub services: Vec<Service>,
    /// The service network; its units' services are positions in `services`.
    pub network: Option<Network>,
}

impl Scenario {
    /// A scenario of `population` from `base_year` to `end_year` with no rates,
    /// services, network or alignment, and no discounting: fill in what it needs.
    pub fn new(name: &str, population: Population, base_year: i32, end_year: i32) -> Scenario {
        Scenario {
            name: name.to_string(),
            base_year,
            end_year,
            discount_rate: 0.0,
            population,
            inputs: None,
            alignment: None,
            services: Vec::new(),
            network: None,
        }
    }

    /// Checks the scenario once, so that [`run`] can trust it.
    ///
    /// # Errors
    /// [`RunError::Invalid`] for an end year before the base year, a base year the
    /// population does not hold, a discount rate that is negative or not a number, an
    /// alignment or a network that does not give one entry per area, a unit of a
    /// service that does not exist; [`RunError::Service`] for a teaching model that
    /// does not fit its service.
    pub fn validate(self) -> Result<ValidScenario, RunError> {
        let bad = |m: String| Err(RunError::Invalid(m));
        if self.end_year < self.base_year {
            return bad(format!(
                "the end year {} is before the base year {}",
                self.end_year, self.base_year
            ));
        }
        if i64::from(self.end_year) - i64::from(self.base_year) > i64::from(MAX_YEARS) {
            return bad(format!(
                "the end year {} is more than {MAX_YEARS} years after the base year {}",
                self.end_year, self.base_year
            ));
        }
        if self.population.year_index(Year(self.base_year)).is_none() {
            return bad(format!(
                "the base year {} is not a year of the population",
                self.base_year
            ));
        }
        if !(self.discount_rate >= 0.0 && self.discount_rate.is_finite()) {
            return bad(format!(
                "the discount rate {} must be 0 or more",
                self.discount_rate
            ));
        }
        let na = self.population.areas().len();
        if let Some(a) = &self.alignment {
            let parents = a.control.areas().len();
            if a.parent_of.len() != na || a.parent_of.iter().any(|p| *p >= parents) {
                return bad("the alignment needs one parent of the control per area".into());
            }
            if a.control.n_ages() != self.population.n_ages() {
                return bad("the control population needs the population's ages".into());
            }
        }
        if let Some(net) = &self.network {
            for (u, unit) in net.units().iter().enumerate() {
                if unit.service >= self.services.len() {
                    return bad(format!("unit `{}` has no service", unit.id));
                }
                if net.shares(u).len() != na {
                    return bad(format!(
                        "unit `{}` needs one catchment share per area",
                        unit.id
                    ));
                }
            }
        }
        for s in &self.services {
            crate::services::check_teaching(s)?;
        }
        Ok(ValidScenario(self))
    }
}

/// A checked [`Scenario`] (see [`Scenario::validate`]); read it through `Deref`.
#[derive(Debug, Clone)]
pub struct ValidScenario(Scenario);

impl std::ops::Deref for ValidScenario {
    type Target = Scenario;
    fn deref(&self) -> &Scenario {
        &self.0
    }
}

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
    /// The scenario does not hold together.
    #[error("{0}")]
    Invalid(String),
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
/// (blocks of trajectories done, blocks in all).
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
