//! What a Monte Carlo run is given besides the projection (the services and their
//! units, an alignment) and what it gives back: the summaries by name, and why a
//! run failed.

use super::*;

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
    /// Per unit of [`ServiceInput::units`], in that order: in a run of a scenario
    /// ([`crate::run::run`]), the units of this service in the network's order
    /// ([`crate::network::Network::units_of`]); each names its unit
    /// ([`UnitSummary::id`]). Empty when neither demand nor costs are asked for.
    pub units: Vec<UnitSummary>,
}

/// The summaries of one unit of the service network (MODEL.md §9), by year.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitSummary {
    /// The unit's id ([`crate::network::Unit::id`]): a service's units come in the
    /// order of its own units, so find a unit of the network by its id.
    pub id: String,
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

impl McResult {
    /// Where quantile `level` (0.05 for p05) lies in every summary's
    /// [`Summary::q`], if the run summarised it: `summary.q[i][cell]` is that
    /// quantile of `cell`.
    pub fn quantile_index(&self, level: f64) -> Option<usize> {
        self.levels.iter().position(|l| (l - level).abs() < 1e-12)
    }

    /// The year slot of `year` in every summary by year ([`McResult::years`]).
    pub fn year_index(&self, year: i32) -> Option<usize> {
        self.years.iter().position(|y| *y == year)
    }
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
    #[error("uncertainty: {trajectories} trajectories cannot run: this scenario's multipliers and sums per trajectory allow at most {limit} within kunta's limit of {} GiB", crate::uncertainty::TRAJECTORY_MEMORY >> 30)]
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
