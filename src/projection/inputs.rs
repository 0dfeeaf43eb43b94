//! The inputs of a projection as rate tables and levers, resolved year by year into
//! [`YearRates`](super::YearRates).

use super::{Direction, FlowValues, YearFlow, YearRates};
use crate::population::{Population, Sex};
use crate::rates::{AgeIndex, RateError, RateTable};
use ndarray::{Array2, Array3};
use std::sync::Arc;

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
    /// movers of this out-flow are pooled and handed back to the areas by them. Only
    /// for a flow given as out-rates ([`InputError::ClosedCounts`] otherwise).
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
    /// A lever or a table's value out of its range (see
    /// [`ProjectionInputs::check_ranges`]).
    #[error("{what}: {message}")]
    Lever {
        /// The lever or table.
        what: String,
        /// Why, with the value.
        message: String,
    },
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
    /// Destinations given to a flow that is not an out-flow given as rates.
    #[error("migration flow `{flow}`: a closed internal system (destinations) needs an out-flow given as rates")]
    ClosedCounts {
        /// The flow's name.
        flow: String,
    },
}

fn rate_err(table: &str) -> impl Fn(RateError) -> InputError + '_ {
    move |source| InputError::Rate {
        table: table.to_string(),
        source,
    }
}

impl ProjectionInputs {
    /// The year slot of every table in `year`: a year's arrays need resolving again
    /// only when these change (tables without years never change).
    ///
    /// # Errors
    /// [`InputError::Rate`] for a year before a table's first year.
    pub fn slots(&self, year: i32) -> Result<Vec<usize>, InputError> {
        let mut v = vec![
            self.mortality
                .year_slot(year)
                .map_err(rate_err("mortality"))?,
            self.fertility
                .year_slot(year)
                .map_err(rate_err("fertility"))?,
        ];
        for f in &self.flows {
            let name = format!("migration {}", f.name);
            let tables: Vec<&RateTable> = match &f.form {
                FlowForm::Counts(t) | FlowForm::OutRates(t) => vec![t],
                FlowForm::TotalProfile { total, profile } => vec![total, profile],
            };
            for t in tables.into_iter().chain(&f.destinations) {
                v.push(t.year_slot(year).map_err(rate_err(&name))?);
            }
        }
        Ok(v)
    }

    /// Checks the levers and the rate tables' values as a scenario file's are
    /// checked: a share of boys between 0 and 1; a mortality improvement below 1; a
    /// total fertility and flow multipliers not negative; every value of the
    /// fertility, mortality and migration tables finite and not negative (a net
    /// flow's counts may be negative); every number finite.
    ///
    /// # Errors
    /// [`InputError::Lever`] naming the lever or table and the value.
    pub fn check_ranges(&self) -> Result<(), InputError> {
        let bad = |what: String, message: String| Err(InputError::Lever { what, message });
        if !(0.0..=1.0).contains(&self.boys_share) {
            return bad(
                "fertility.boys_share".into(),
                format!("{} is not a share between 0 and 1", self.boys_share),
            );
        }
        if let Some(r) = self.improvement {
            if !(r.is_finite() && r < 1.0) {
                return bad(
                    "mortality.improvement".into(),
                    format!("{r} must be below 1 (a yearly rate such as 0.01)"),
                );
            }
        }
        let path = |what: &str, p: &YearPath| {
            let v = match p {
                YearPath::Constant(c) => vec![*c],
                YearPath::Linear { from, to } => vec![from.1, to.1],
            };
            match v.into_iter().find(|x| !(x.is_finite() && *x >= 0.0)) {
                Some(x) => bad(what.to_string(), format!("{x} must not be negative")),
                None => Ok(()),
            }
        };
        if let Some(t) = &self.tfr {
            path("fertility.tfr", t)?;
        }
        let table = |what: String, t: &RateTable, signed: bool| match t
            .scaled_values()
            .find(|x| !(x.is_finite() && (signed || *x >= 0.0)))
        {
            Some(x) => bad(
                what,
                format!("holds {x}, which is not a finite value of 0 or more"),
            ),
            None => Ok(()),
        };
        table("fertility".into(), &self.fertility, false)?;
        table("mortality".into(), &self.mortality, false)?;
        for f in &self.flows {
            let name = format!("migration `{}`", f.name);
            if let Some(m) = &f.multiplier {
                path(&format!("{name}.multiplier"), m)?;
            }
            let signed = f.direction == Direction::Net;
            match &f.form {
                FlowForm::Counts(t) | FlowForm::OutRates(t) => table(name.clone(), t, signed)?,
                FlowForm::TotalProfile { total, profile } => {
                    table(format!("{name}.total"), total, signed)?;
                    table(format!("{name}.profile"), profile, false)?;
                }
            }
            if let Some(t) = &f.destinations {
                table(format!("{name}.destinations"), t, false)?;
            }
        }
        Ok(())
    }

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
        let mut r = self.resolve(pop, year)?;
        self.set_factors(&mut r, pop, base_year, year)?;
        Ok(r)
    }

    /// Sets the scalar levers of a year (mortality improvement, TFR level, flow
    /// multipliers) on rates resolved for a year with the same table slots.
    ///
    /// # Errors
    /// [`InputError::Probability`] if improvement pushes a probability above 1.
    pub fn set_factors(
        &self,
        r: &mut YearRates,
        pop: &Population,
        base_year: i32,
        year: i32,
    ) -> Result<(), InputError> {
        r.q_factor = self
            .improvement
            .map_or(1.0, |rate| (1.0 - rate).powi(year - base_year));
        if r.q_factor > 1.0 {
            if let Some(((a, s, i), v)) = r.q.indexed_iter().find(|(_, v)| **v * r.q_factor > 1.0) {
                let n = pop.n_ages();
                return Err(InputError::Probability {
                    area: pop.areas()[a.min(pop.areas().len() - 1)].clone(),
                    sex: Sex::ALL[s],
                    age: AgeIndex::of_slot(i, n),
                    year,
                    value: v * r.q_factor,
                });
            }
        }
        r.fertility_factor.clear();
        if let Some(tfr) = self.tfr {
            let target = tfr.at(year);
            let areas = pop.areas().len();
            r.fertility_factor.extend((0..areas).map(|a| {
                let row = if r.fertility.dim().0 == 1 { 0 } else { a };
                let sum: f64 = r.fertility.row(row).sum();
                if sum > 0.0 {
                    target / sum
                } else {
                    1.0
                }
            }));
        }
        for (flow, spec) in r.flows.iter_mut().zip(&self.flows) {
            flow.multiplier = spec.multiplier.map_or(1.0, |m| m.at(year));
        }
        Ok(())
    }

    fn resolve(&self, pop: &Population, year: i32) -> Result<YearRates, InputError> {
        let areas = pop.areas().len();
        let n = pop.n_ages();
        let index = |i: usize| AgeIndex::of_slot(i, n);
        let rows = |t: &RateTable| if t.by_area() { areas } else { 1 };
        let m = &self.mortality;
        let mslot = m.year_slot(year).map_err(rate_err("mortality"))?;
        let mut q = Array3::zeros((rows(m), 2, n + 1));
        for ((a, s, i), q) in q.indexed_iter_mut() {
            *q = match m.get(a, mslot, Sex::ALL[s], index(i)) {
                Some(v) => v,
                None if i == n => 0.0,
                None => {
                    return Err(InputError::Rate {
                        table: "mortality".into(),
                        source: RateError::Missing {
                            cell: format!(
                                "area `{}`, {}, age {}",
                                pop.areas()[a],
                                Sex::ALL[s],
                                index(i)
                            ),
                            range: format!("the population's ages 0–{}", n - 1),
                        },
                    })
                }
            };
            if !(0.0..=1.0).contains(q) {
                return Err(InputError::Probability {
                    area: pop.areas()[a].clone(),
                    sex: Sex::ALL[s],
                    age: index(i),
                    year,
                    value: *q,
                });
            }
        }
        let f = &self.fertility;
        let fslot = f.year_slot(year).map_err(rate_err("fertility"))?;
        let mut fertility = Array2::zeros((rows(f), n));
        for ((a, i), v) in fertility.indexed_iter_mut() {
            if !f.covers_area(a) {
                return Err(InputError::Rate {
                    table: "fertility".into(),
                    source: RateError::Missing {
                        cell: format!("area `{}`", pop.areas()[a]),
                        range: "every area of the population".into(),
                    },
                });
            }
            *v = f
                .get(a, fslot, Sex::Female, AgeIndex::Age(i as u16))
                .unwrap_or(0.0);
        }
        let mut flows = Vec::with_capacity(self.flows.len());
        for f in &self.flows {
            flows.push(self.resolve_flow(f, pop, year)?);
        }
        Ok(YearRates {
            q: q.into(),
            q_factor: 1.0,
            fertility: fertility.into(),
            fertility_factor: Vec::new(),
            boys_share: self.boys_share,
            flows,
        })
    }

    fn resolve_flow(&self, f: &Flow, pop: &Population, year: i32) -> Result<YearFlow, InputError> {
        let areas = pop.areas().len();
        let n = pop.n_ages();
        let table_name = format!("migration {} {}", f.name, f.direction.as_str());
        let index = |i: usize| AgeIndex::of_slot(i, n);
        let cover = |t: &RateTable, what: &str| -> Result<usize, InputError> {
            for a in 0..areas {
                if !t.covers_area(a) {
                    return Err(InputError::Rate {
                        table: format!("{table_name} {what}"),
                        source: RateError::Missing {
                            cell: format!("area `{}`", pop.areas()[a]),
                            range: "every area of the population".into(),
                        },
                    });
                }
            }
            t.year_slot(year).map_err(|e| InputError::Rate {
                table: format!("{table_name} {what}"),
                source: e,
            })
        };
        let rates = matches!(f.form, FlowForm::OutRates(_));
        if f.destinations.is_some() && !rates {
            return Err(InputError::ClosedCounts {
                flow: f.name.clone(),
            });
        }
        let values = match &f.form {
            FlowForm::Counts(t) | FlowForm::OutRates(t) => {
                let y = cover(t, "")?;
                let rows = if t.by_area() { areas } else { 1 };
                Array3::from_shape_fn((rows, 2, n + 1), |(a, s, i)| {
                    t.get(a, y, Sex::ALL[s], index(i)).unwrap_or(0.0)
                })
            }
            FlowForm::TotalProfile { total, profile } => {
                let yt = cover(total, "total")?;
                let yp = cover(profile, "profile")?;
                let rows = if total.by_area() || profile.by_area() {
                    areas
                } else {
                    1
                };
                Array3::from_shape_fn((rows, 2, n + 1), |(a, s, i)| {
                    let t = total
                        .get(a, yt, Sex::ALL[s], AgeIndex::Age(0))
                        .unwrap_or(0.0);
                    t * profile.get(a, yp, Sex::ALL[s], index(i)).unwrap_or(0.0)
                })
            }
        };
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
                FlowValues::OutRates(values.into())
            } else {
                FlowValues::Counts(values.into())
            },
            multiplier: 1.0,
            destinations: destinations.map(Arc::new),
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
