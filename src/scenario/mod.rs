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
    /// service that does not exist, two services with one id, a lever or rate out of
    /// its range ([`ProjectionInputs::check_ranges`]); [`ScenarioError::Service`] for
    /// a service's number out of its range ([`crate::services::check_ranges`]) or a
    /// teaching model that does not fit its service.
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
        if let Some(inputs) = &self.inputs {
            inputs
                .check_ranges()
                .map_err(|e| ScenarioError::Invalid(e.to_string()))?;
        }
        // A table by area refers to areas by position: it must have been built for
        // the population's areas, in their order.
        for (what, t) in self.tables() {
            if let Some(codes) = t.built_for() {
                if codes != self.population.areas() {
                    return bad(format!(
                        "the {what} table was built for the areas {} and the population's are {}: build it with the population's areas (`population.areas()`), in their order",
                        codes.join(", "),
                        self.population.areas().join(", ")
                    ));
                }
            }
        }
        for (k, s) in self.services.iter().enumerate() {
            if self.services[..k].iter().any(|o| o.id == s.id) {
                return bad(format!("two services have the id `{}`", s.id));
            }
            crate::services::check_ranges(s)?;
            crate::services::check_teaching(s)?;
        }
        Ok(ValidScenario(self))
    }
}

impl Scenario {
    /// Every rate table of the scenario, named: the projection's and the services'.
    fn tables(&self) -> Vec<(String, &crate::rates::RateTable)> {
        use crate::projection::FlowForm;
        use crate::services::Value;
        let mut out: Vec<(String, &crate::rates::RateTable)> = Vec::new();
        if let Some(i) = &self.inputs {
            out.push(("fertility".into(), &i.fertility));
            out.push(("mortality".into(), &i.mortality));
            for f in &i.flows {
                let name = format!("migration `{}`", f.name);
                match &f.form {
                    FlowForm::Counts(t) | FlowForm::OutRates(t) => out.push((name.clone(), t)),
                    FlowForm::TotalProfile { total, profile } => {
                        out.push((format!("{name} total"), total));
                        out.push((format!("{name} profile"), profile));
                    }
                }
                if let Some(d) = &f.destinations {
                    out.push((format!("{name} destinations"), d));
                }
            }
        }
        for s in &self.services {
            if let Value::Table(t) = &s.coverage {
                out.push((format!("service `{}` coverage", s.id), t));
            }
            for g in &s.segments {
                if let Value::Table(t) = &g.share {
                    out.push((format!("service `{}` segment `{}` share", s.id, g.id), t));
                }
            }
        }
        out
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::population::{Age, Record, Sex};
    use crate::projection::{Direction, Flow, FlowForm};
    use crate::rates::{AgeIndex, RateRow, RateTable};
    use crate::services::{self, Segment, Service, ServiceError};

    /// Two areas, ages 0–15, 2024; a school with two segments; rates for everyone.
    fn scenario() -> Scenario {
        let records = ["A", "B"].into_iter().flat_map(|area| {
            (0..=15u16).flat_map(move |x| {
                Sex::ALL.map(|sex| Record {
                    area: area.into(),
                    sex,
                    age: Age(x),
                    year: Year(2024),
                    value: 10.0,
                })
            })
        });
        let pop = Population::from_records(records).unwrap();
        let areas = pop.areas().to_vec();
        let by_age = |value: f64| -> RateTable {
            let rows: Vec<RateRow> = (0..=15u16)
                .map(|x| RateRow {
                    area: None,
                    year: None,
                    sex: None,
                    age: Some(AgeIndex::Age(x)),
                    value,
                })
                .collect();
            RateTable::from_rows(&rows, 1.0, &areas).unwrap()
        };
        let mut s = Scenario::new("t", pop, 2024, 2030);
        s.inputs = Some(ProjectionInputs {
            fertility: by_age(0.05),
            mortality: by_age(0.001),
            boys_share: 0.512,
            tfr: None,
            improvement: Some(0.01),
            flows: vec![Flow {
                name: "net".into(),
                direction: Direction::Net,
                form: FlowForm::Counts(by_age(-1.0)),
                multiplier: None,
                destinations: None,
            }],
        });
        let mut school = Service::new("school", (7, 12));
        school.segments = vec![
            Segment {
                share: services::Value::Constant(0.8),
                max_group_size: Some(20.0),
                ..Segment::new("general")
            },
            Segment {
                share: services::Value::Constant(0.2),
                max_group_size: Some(8.0),
                ..Segment::new("special")
            },
        ];
        s.services.push(school);
        s
    }

    fn refused(s: Scenario) -> String {
        s.validate().map(|_| ()).unwrap_err().to_string()
    }

    #[test]
    fn a_scenario_built_in_code_is_checked_as_a_file_is() {
        // The scenario as built holds together; a net flow's counts may be negative.
        assert!(scenario().validate().is_ok());

        let mut s = scenario();
        s.inputs.as_mut().unwrap().boys_share = 51.2;
        assert_eq!(
            refused(s),
            "fertility.boys_share: 51.2 is not a share between 0 and 1"
        );
        let mut s = scenario();
        s.inputs.as_mut().unwrap().improvement = Some(f64::NAN);
        assert!(refused(s).starts_with("mortality.improvement: NaN must be below 1"));
        let mut s = scenario();
        s.inputs.as_mut().unwrap().fertility = {
            let areas = s.population.areas().to_vec();
            let row = RateRow {
                area: None,
                year: None,
                sex: None,
                age: Some(AgeIndex::Age(20)),
                value: -0.1,
            };
            RateTable::from_rows(&[row], 1.0, &areas).unwrap()
        };
        assert_eq!(
            refused(s),
            "fertility: holds -0.1, which is not a finite value of 0 or more"
        );

        let service = |f: &dyn Fn(&mut Service)| {
            let mut s = scenario();
            f(&mut s.services[0]);
            s.validate().map(|_| ()).unwrap_err()
        };
        let number = |e: ScenarioError| match e {
            ScenarioError::Service(ServiceError::Number { key, message, .. }) => {
                format!("{key}: {message}")
            }
            other => panic!("not a number out of range: {other}"),
        };
        assert_eq!(
            number(service(&|s| s.segments[1].max_group_size = Some(0.0))),
            "segment[special].max_group_size: 0 must be positive"
        );
        assert_eq!(
            number(service(&|s| s.segments[0].cost.per_unit = -5.0)),
            "segment[general].cost.per_unit: -5 must not be negative"
        );
        assert_eq!(
            number(service(&|s| s.segments[0].cost.growth[2] = -1.0)),
            "segment[general].cost.growth.staff: -1 must be above -1"
        );
        assert_eq!(
            number(service(
                &|s| s.segments[1].share = services::Value::Constant(0.3)
            )),
            "segment.share: the segments' shares sum to 1.1; they must sum to 1"
        );
        assert_eq!(
            number(service(&|s| s.segments[1].id = "general".into())),
            "segment[general].id: another segment has the same id"
        );
        assert_eq!(
            number(service(&|s| s.coverage = services::Value::Constant(1.5))),
            "coverage: 1.5 is not a share between 0 and 1"
        );
        // A table by area built for the areas in another order.
        let mut s = scenario();
        let swapped = ["B".to_string(), "A".to_string()];
        let rows: Vec<RateRow> = ["A", "B"]
            .iter()
            .flat_map(|a| {
                (0..=15u16).map(move |x| RateRow {
                    area: Some((*a).into()),
                    year: None,
                    sex: None,
                    age: Some(AgeIndex::Age(x)),
                    value: 0.001,
                })
            })
            .collect();
        s.inputs.as_mut().unwrap().mortality = RateTable::from_rows(&rows, 1.0, &swapped).unwrap();
        assert_eq!(
            refused(s),
            "the mortality table was built for the areas B, A and the population's are A, B: build it with the population's areas (`population.areas()`), in their order"
        );
        let mut s = scenario();
        let areas = s.population.areas().to_vec();
        s.inputs.as_mut().unwrap().mortality = RateTable::from_rows(&rows, 1.0, &areas).unwrap();
        assert!(s.validate().is_ok());
        let mut s = scenario();
        let twin = s.services[0].clone();
        s.services.push(twin);
        assert_eq!(refused(s), "two services have the id `school`");
    }
}
