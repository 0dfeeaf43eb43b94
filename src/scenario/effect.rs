//! Cohort-linked effects (MODEL.md §10): an intervention reaches the cohorts that
//! use one service in the exposure years and changes another service's coverage for
//! those same cohorts at later ages.

use super::{Scenario, ScenarioError};
use crate::population::Sex;
use crate::rates::{AgeIndex, RateRow, RateTable};
use crate::services::Value;

/// A cohort-linked effect of a variant (`[[variant.effect]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct CohortEffect {
    /// The service whose users are reached (its id), service A.
    pub exposure: String,
    /// The first and last year of the exposure, `[e0, e1]`.
    pub years: (i32, i32),
    /// The service whose coverage changes (its id), service B.
    pub outcome: String,
    /// The relative change of B's coverage for a cohort exposed through all of A's
    /// ages (0.85: 15 % fewer).
    pub factor: f64,
}

impl CohortEffect {
    /// The multiplier of the outcome's coverage at age `x` in year `y`:
    /// `1 + (factor − 1) · e(c) / E` for cohort `c = y − x`, where `e(c)` counts the
    /// exposure years `y' ≤ y` in which the cohort's age lay in A's ages
    /// `ages = (lo, hi)` and `E = hi − lo + 1`.
    pub fn multiplier(&self, ages: (u16, u16), x: i32, y: i32) -> f64 {
        let c = y - x;
        let (lo, hi) = (i32::from(ages.0), i32::from(ages.1));
        let big_e = hi - lo + 1;
        if big_e <= 0 {
            return 1.0;
        }
        // Years the cohort is in A's ages: c + lo ..= c + hi, within the exposure
        // years and not after y.
        let first = (c + lo).max(self.years.0);
        let last = (c + hi).min(self.years.1).min(y);
        let e = (last - first + 1).max(0);
        1.0 + (self.factor - 1.0) * f64::from(e) / f64::from(big_e)
    }
}

impl Scenario {
    /// Applies a cohort-linked effect: the outcome service's coverage becomes a table
    /// by area, year, sex and age over the scenario's years, its own coverage times
    /// [`CohortEffect::multiplier`]. Effects apply one after another.
    ///
    /// # Errors
    /// [`ScenarioError::Invalid`] for a service id the scenario does not have, exposure
    /// years in the wrong order, a negative or non-finite factor, or an outcome
    /// coverage without a value in a year of the scenario.
    pub fn apply_effect(&mut self, e: &CohortEffect) -> Result<(), ScenarioError> {
        let bad = |m: String| Err(ScenarioError::Invalid(m));
        let Some(a) = self.services.iter().find(|s| s.id == e.exposure) else {
            return bad(format!(
                "the exposure service `{}` is not a service of the scenario",
                e.exposure
            ));
        };
        let ages = a.ages;
        let Some(b) = self.services.iter().position(|s| s.id == e.outcome) else {
            return bad(format!(
                "the outcome service `{}` is not a service of the scenario",
                e.outcome
            ));
        };
        if e.years.1 < e.years.0 {
            return bad(format!(
                "the exposure years {}–{} are in the wrong order",
                e.years.0, e.years.1
            ));
        }
        if !(e.factor.is_finite() && e.factor >= 0.0) {
            return bad(format!("the factor {} must be 0 or more", e.factor));
        }
        let areas = self.population.areas().to_vec();
        let out = &self.services[b];
        let (lo, hi) = out.ages;
        let mut rows = Vec::new();
        for (ai, area) in areas.iter().enumerate() {
            for y in self.base_year..=self.end_year {
                for sex in Sex::ALL {
                    for x in lo..=hi {
                        let c = out.coverage.at(ai, y, sex, x).map_err(|err| {
                            ScenarioError::Invalid(format!(
                                "the coverage of `{}` in {y}: {err}",
                                out.id
                            ))
                        })?;
                        rows.push(RateRow {
                            area: Some(area.clone()),
                            year: Some(y),
                            sex: Some(sex),
                            age: Some(AgeIndex::Age(x)),
                            value: c * e.multiplier(ages, i32::from(x), y),
                        });
                    }
                }
            }
        }
        let table = RateTable::from_rows(&rows, 1.0, &areas)
            .map_err(|err| ScenarioError::Invalid(format!("the effect on `{}`: {err}", out.id)))?;
        self.services[b].coverage = Value::Table(table);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::population::{Age, Population, Record, Year};
    use crate::services::Service;

    #[test]
    fn only_exposed_cohorts_change_in_proportion_to_their_exposure() {
        // Support in grades 1–6 (ages 7–12) in 2026–2035; outcome at 18–29.
        let e = CohortEffect {
            exposure: "a".into(),
            years: (2026, 2035),
            outcome: "b".into(),
            factor: 0.8,
        };
        let ages = (7, 12);
        // Born 2014: ages 12 in 2026 → one year of six.
        assert!((e.multiplier(ages, 18, 2032) - (1.0 - 0.2 / 6.0)).abs() < 1e-12);
        // Born 2019: ages 7–12 in 2026–2031, all inside → the full factor.
        assert!((e.multiplier(ages, 18, 2037) - 0.8).abs() < 1e-12);
        // Born 2026: ages 7–12 in 2033–2038, three of them in the exposure years.
        assert!((e.multiplier(ages, 18, 2044) - (1.0 - 0.2 * 3.0 / 6.0)).abs() < 1e-12);
        // Born 2013: 13 in 2026, never in grades 1–6 during the exposure.
        assert_eq!(e.multiplier(ages, 18, 2031), 1.0);
        // Born 2040: after the exposure.
        assert_eq!(e.multiplier(ages, 7, 2047), 1.0);
        // Only the years up to y count: born 2019, at age 8 in 2027 → two years.
        assert!((e.multiplier(ages, 8, 2027) - (1.0 - 0.2 * 2.0 / 6.0)).abs() < 1e-12);
    }

    #[test]
    fn the_outcome_coverage_becomes_a_table_of_the_scenario_years() {
        let records = (0..=30u16).flat_map(|x| {
            Sex::ALL.map(|sex| Record {
                area: "A".into(),
                sex,
                age: Age(x),
                year: Year(2024),
                value: 10.0,
            })
        });
        let pop = Population::from_records(records).unwrap();
        let mut s = Scenario::new("v", pop, 2024, 2040);
        s.services.push(Service::new("a", (7, 12)));
        s.services.push(Service {
            coverage: Value::Constant(0.1),
            ..Service::new("b", (18, 29))
        });
        let e = CohortEffect {
            exposure: "a".into(),
            years: (2026, 2035),
            outcome: "b".into(),
            factor: 0.5,
        };
        s.apply_effect(&e).unwrap();
        let cov = &s.services[1].coverage;
        // Born 2019 reaches 18 in 2037 after all six years: half the coverage.
        assert!((cov.at(0, 2037, Sex::Female, 18).unwrap() - 0.05).abs() < 1e-12);
        assert_eq!(cov.at(0, 2030, Sex::Male, 20).unwrap(), 0.1);
        let wrong = CohortEffect {
            outcome: "c".into(),
            ..e
        };
        assert!(s
            .apply_effect(&wrong)
            .unwrap_err()
            .to_string()
            .contains("`c`"));
    }
}
