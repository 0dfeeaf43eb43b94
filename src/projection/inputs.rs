//! The inputs of a projection as rate tables and levers, resolved year by year into
//! [`YearRates`](super::YearRates).

use super::{Direction, FlowValues, YearFlow, YearRates};
use crate::population::{Population, Sex};
use crate::rates::{AgeIndex, RateError, RateTable};
use ndarray::{Array2, Array3};

/// A yearly path of a lever: a constant, or a straight line between two
/// `(year, value)` points, constant before the first and after the last.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum YearPath {
    /// The same value every year.
    Constant(f64),
    /// A straight line from `from` to `to`.
    Linear {
        /// First point `(year, value)`.
        from: (i32, f64),
        /// Last point `(year, value)`.
        to: (i32, f64),
    },
}

impl YearPath {
    /// The value in `year`.
    pub fn at(&self, year: i32) -> f64 {
        match *self {
            YearPath::Constant(v) => v,
            YearPath::Linear { from, to } => {
                if year <= from.0 || from.0 == to.0 {
                    from.1
                } else if year >= to.0 {
                    to.1
                } else {
                    from.1 + (to.1 - from.1) * f64::from(year - from.0) / f64::from(to.0 - from.0)
                }
            }
        }
    }
}

/// How a migration flow is given (MODEL.md §2).
#[derive(Debug, Clone, PartialEq)]
pub enum FlowForm {
    /// Counts by sex and age.
    Counts(RateTable),
    /// A yearly total per area and an age × sex profile of shares: count = total × share.
    TotalProfile {
        /// Totals by `[area], [year]`.
        total: RateTable,
        /// Shares by `[area], [year], sex, age`, summing to 1.
        profile: RateTable,
    },
    /// Out-rates by sex and age: count = rate × population.
    OutRates(RateTable),
}

/// A named migration flow.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    /// Name (`internal`, `international`, …).
    pub name: String,
    /// In or out.
    pub direction: Direction,
    /// The numbers.
    pub form: FlowForm,
    /// Multiplier path (a scenario lever); 1 where absent.
    pub multiplier: Option<YearPath>,
    /// Destination shares `[area], sex, age, share` of a closed internal system: the
    /// movers of this out-flow are pooled and handed back to the areas by them.
    pub destinations: Option<RateTable>,
}

/// Everything a projection needs besides the base population.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionInputs {
    /// Births per woman by mother's age at the start of the year.
    pub fertility: RateTable,
    /// Probabilities of dying, by sex and age (birth index: `q_birth`, 0 if absent).
    pub mortality: RateTable,
    /// Share of boys among births.
    pub boys_share: f64,
    /// Total fertility path: rescales `f` so that `Σ f = TFR` each year.
    pub tfr: Option<YearPath>,
    /// Yearly mortality improvement `r`: `q_y = q · (1 − r)^(y − base_year)`.
    pub improvement: Option<f64>,
    /// Migration flows.
    pub flows: Vec<Flow>,
}

/// Why a year's rates could not be resolved.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// A table has no rates for the year, or misses an area.
    #[error("{table}: {source}")]
    Rate {
        /// The table (`fertility`, `mortality`, `migration internal out`, …).
        table: String,
        /// What is wrong.
        source: RateError,
    },
    /// A probability of dying outside 0..=1 after scaling and improvement.
    #[error("mortality: the probability of dying {value} for area `{area}`, {sex}, age {age}, year {year} is not between 0 and 1")]
    Probability {
        /// Area code.
        area: String,
        /// Sex.
        sex: Sex,
        /// Age index.
        age: AgeIndex,
        /// Year.
        year: i32,
        /// The value.
        value: f64,
    },
    /// A rate, count, share or total that is negative or not finite.
    #[error("{table}: value {value} for area `{area}`, year {year} is negative or not a number")]
    Negative {
        /// The table.
        table: String,
        /// Area code.
        area: String,
        /// Year.
        year: i32,
        /// The value.
        value: f64,
    },
}

fn rate_err(table: &str) -> impl Fn(RateError) -> InputError + '_ {
    move |source| InputError::Rate {
        table: table.to_string(),
        source,
    }
}

impl ProjectionInputs {
    /// Resolves the rates of projection year `year` for the areas and ages of `pop`.
    ///
    /// # Errors
    /// [`InputError`] for a year before a table's first year, an area a table lacks,
    /// a mortality table that does not reach the top age, a probability outside 0..=1
    /// or a negative value.
    pub fn year_rates(
        &self,
        pop: &Population,
        base_year: i32,
        year: i32,
    ) -> Result<YearRates, InputError> {
        let areas = pop.areas().len();
        let n = pop.n_ages();
        let birth = n;
        let mut q = Array3::zeros((areas, 2, n + 1));
        let mslot = self
            .mortality
            .year_slot(year)
            .map_err(rate_err("mortality"))?;
        let improvement = self
            .improvement
            .map_or(1.0, |r| (1.0 - r).powi(year - base_year));
        for a in 0..areas {
            for s in Sex::ALL {
                for i in 0..=n {
                    let age = if i == birth {
                        AgeIndex::Birth
                    } else {
                        AgeIndex::Age(i as u16)
                    };
                    let v = match self.mortality.get(a, mslot, s, age) {
                        Some(v) => v * improvement,
                        None if i == birth => 0.0,
                        None => {
                            return Err(InputError::Rate {
                                table: "mortality".into(),
                                source: RateError::Missing {
                                    cell: format!("area `{}`, {s}, age {age}", pop.areas()[a]),
                                },
                            })
                        }
                    };
                    if !(0.0..=1.0).contains(&v) {
                        return Err(InputError::Probability {
                            area: pop.areas()[a].clone(),
                            sex: s,
                            age,
                            year,
                            value: v,
                        });
                    }
                    q[[a, s.index(), i]] = v;
                }
            }
        }
        let fslot = self
            .fertility
            .year_slot(year)
            .map_err(rate_err("fertility"))?;
        let mut fertility = Array2::zeros((areas, n));
        for a in 0..areas {
            if !self.fertility.covers_area(a) {
                return Err(InputError::Rate {
                    table: "fertility".into(),
                    source: RateError::Missing {
                        cell: format!("area `{}`", pop.areas()[a]),
                    },
                });
            }
            for i in 0..n {
                let v = self
                    .fertility
                    .get(a, fslot, Sex::Female, AgeIndex::Age(i as u16))
                    .unwrap_or(0.0);
                if !(v.is_finite() && v >= 0.0) {
                    return Err(InputError::Negative {
                        table: "fertility".into(),
                        area: pop.areas()[a].clone(),
                        year,
                        value: v,
                    });
                }
                fertility[[a, i]] = v;
            }
            if let Some(tfr) = self.tfr {
                let sum: f64 = fertility.row(a).sum();
                if sum > 0.0 {
                    let k = tfr.at(year) / sum;
                    fertility.row_mut(a).mapv_inplace(|f| f * k);
                }
            }
        }
        let mut flows = Vec::with_capacity(self.flows.len());
        for f in &self.flows {
            flows.push(self.resolve_flow(f, pop, year)?);
        }
        Ok(YearRates {
            q,
            fertility,
            boys_share: self.boys_share,
            flows,
        })
    }

    fn resolve_flow(&self, f: &Flow, pop: &Population, year: i32) -> Result<YearFlow, InputError> {
        let areas = pop.areas().len();
        let n = pop.n_ages();
        let table_name = format!(
            "migration {} {}",
            f.name,
            match f.direction {
                Direction::In => "in",
                Direction::Out => "out",
            }
        );
        let mult = f.multiplier.map_or(1.0, |m| m.at(year));
        let index = |i: usize| {
            if i == n {
                AgeIndex::Birth
            } else {
                AgeIndex::Age(i as u16)
            }
        };
        let check = |a: usize, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(v)
            } else {
                Err(InputError::Negative {
                    table: table_name.clone(),
                    area: pop.areas()[a].clone(),
                    year,
                    value: v,
                })
            }
        };
        let cover = |t: &RateTable, what: &str| -> Result<usize, InputError> {
            for a in 0..areas {
                if !t.covers_area(a) {
                    return Err(InputError::Rate {
                        table: format!("{table_name} {what}"),
                        source: RateError::Missing {
                            cell: format!("area `{}`", pop.areas()[a]),
                        },
                    });
                }
            }
            t.year_slot(year).map_err(|e| InputError::Rate {
                table: format!("{table_name} {what}"),
                source: e,
            })
        };
        let mut values = Array3::zeros((areas, 2, n + 1));
        let rates = matches!(f.form, FlowForm::OutRates(_));
        match &f.form {
            FlowForm::Counts(t) | FlowForm::OutRates(t) => {
                let y = cover(t, "")?;
                for ((a, s, i), v) in values.indexed_iter_mut() {
                    *v = check(a, t.get(a, y, Sex::ALL[s], index(i)).unwrap_or(0.0))? * mult;
                }
            }
            FlowForm::TotalProfile { total, profile } => {
                let yt = cover(total, "total")?;
                let yp = cover(profile, "profile")?;
                for ((a, s, i), v) in values.indexed_iter_mut() {
                    let t = check(
                        a,
                        total
                            .get(a, yt, Sex::ALL[s], AgeIndex::Age(0))
                            .unwrap_or(0.0),
                    )?;
                    let share = check(a, profile.get(a, yp, Sex::ALL[s], index(i)).unwrap_or(0.0))?;
                    *v = t * share * mult;
                }
            }
        }
        let destinations = match &f.destinations {
            None => None,
            Some(d) => {
                let y = cover(d, "destinations")?;
                Some(Array3::from_shape_fn((areas, 2, n + 1), |(a, s, i)| {
                    d.get(a, y, Sex::ALL[s], index(i)).unwrap_or(0.0)
                }))
            }
        };
        Ok(YearFlow {
            direction: f.direction,
            values: if rates {
                FlowValues::OutRates(values)
            } else {
                FlowValues::Counts(values)
            },
            destinations,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_paths_are_constant_outside() {
        let p = YearPath::Linear {
            from: (2025, 1.0),
            to: (2030, 2.0),
        };
        assert_eq!(p.at(2020), 1.0);
        assert_eq!(p.at(2027), 1.4);
        assert_eq!(p.at(2035), 2.0);
        assert_eq!(YearPath::Constant(0.7).at(1900), 0.7);
    }
}
