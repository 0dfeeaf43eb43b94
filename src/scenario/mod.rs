//! The scenario (skenaario) in memory: the population, the rates, the services, the
//! service network and the alignment a run needs, built in code or by
//! `kunta::io::scenario` (the `io` feature) from a TOML file, and checked once into a
//! [`ValidScenario`] that [`crate::run::run`] trusts. A variant's cohort-linked effects
//! (MODEL.md §10) change a scenario here, before it is checked.
//!
//! ```
//! use kunta::population::{Age, Population, Record, Sex, Year};
//! use kunta::scenario::{Scenario, ScenarioError};
//!
//! let records = (0..=20u16).flat_map(|x| {
//!     Sex::ALL.map(|sex| Record {
//!         area: "091".into(),
//!         sex,
//!         age: Age(x),
//!         year: Year(2024),
//!         value: 100.0,
//!     })
//! });
//! let population = Population::from_records(records)?;
//! // An end year before the base year is refused when the scenario is checked.
//! let wrong = Scenario::new("Kunta", population.clone(), 2024, 2020).validate();
//! assert!(matches!(wrong, Err(ScenarioError::Invalid(_))));
//! let valid = Scenario::new("Kunta", population, 2024, 2030).validate()?;
//! assert_eq!(valid.end_year, 2030);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::network::Network;
use crate::population::{Population, Year};
use crate::projection::ProjectionInputs;
use crate::services::{Service, ServiceError};

mod effect;
pub use effect::CohortEffect;

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

/// A scenario in memory: everything [`crate::run::run`] needs.
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

    /// Checks the scenario once, so that [`crate::run::run`] can trust it.
    ///
    /// # Errors
    /// [`ScenarioError::Invalid`] for an end year before the base year, a base year
    /// the population does not hold, a discount rate that is negative or not a number,
    /// an alignment or a network that does not give one entry per area, a unit of a
    /// service that does not exist; [`ScenarioError::Service`] for a teaching model
    /// that does not fit its service.
    pub fn validate(self) -> Result<ValidScenario, ScenarioError> {
        let bad = |m: String| Err(ScenarioError::Invalid(m));
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

/// Why a scenario does not hold together.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// A year, a rate, an alignment, a network or an effect that does not fit the
    /// scenario, in one sentence.
    #[error("{0}")]
    Invalid(String),
    /// A service's teaching model does not fit the service.
    #[error(transparent)]
    Service(#[from] ServiceError),
}
