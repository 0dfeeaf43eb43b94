//! The scenario file (skenaario): a TOML document naming the inputs of a run and its
//! parameters, with the keys fixed by kunta's public contract.
//!
//! Parsing is separate from reading the files it names: [`ScenarioFile::parse`] takes
//! the TOML text and reports every unknown key (with its line) and every out-of-range
//! parameter at once, so `kunta validate` can list all problems in one go.
//!
//! # Examples
//! ```
//! use kunta::io::scenario::file::ScenarioFile;
//!
//! let text = r#"
//! [scenario]
//! name = "Esimerkkilä"
//! base_year = 2024
//! end_year = 2045
//!
//! [population]
//! file = "population.csv"
//! "#;
//! let s = ScenarioFile::parse(text).unwrap();
//! assert_eq!(s.scenario.base_year, 2024);
//!
//! let bad = text.replace("end_year", "end_yaer");
//! let problems = ScenarioFile::parse(&bad).unwrap_err();
//! assert!(problems[0].to_string().contains("`scenario.end_yaer`"));
//! ```

use serde::Deserialize;
use std::fmt;

/// A parameter that may be a constant, a table file, or a linear path between two
/// `(year, value)` points (constant outside them).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Param {
    /// One value for every age, year and area.
    Constant(f64),
    /// A table file (by age and/or year and/or area), relative to the scenario file.
    Table(String),
    /// A linear path from `from = [year, value]` to `to = [year, value]`.
    Path {
        /// First point.
        from: (i32, f64),
        /// Last point.
        to: (i32, f64),
    },
}

/// `[scenario]`: name and horizon.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ScenarioSection {
    /// Name written into every output table.
    pub name: String,
    /// Last year of observed population (31 December).
    pub base_year: i32,
    /// Last projected year.
    pub end_year: i32,
    /// Real discount rate for present values.
    pub discount_rate: Option<f64>,
}

/// `[population]`: the base population, optionally with a published forecast.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PopulationSection {
    /// The population table.
    pub file: String,
    /// Text encoding of a CSV file (`utf-8`, `iso-8859-15`, …); detected if absent.
    pub encoding: Option<String>,
    /// Keep only these areas of a larger table (one municipality out of a national
    /// export).
    pub areas: Option<Vec<String>>,
}

/// `[areas]`: the areas' own names, shown in the printed summary, the report and the
/// workbook.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AreasSection {
    /// The table `area, name[, parent]`.
    pub file: String,
}

/// `[fertility]`: births per woman by the mother's age.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FertilitySection {
    /// The rate table `[area], [year], age, rate`.
    pub file: String,
    /// The value column of a CSV table, when it is not named `rate`.
    pub column: Option<String>,
    /// Rates are per `scale` women (1000 for "per 1000").
    pub scale: Option<f64>,
    /// Share of boys among births (default 0.512).
    pub boys_share: Option<f64>,
    /// Total fertility path (lever): a constant or `{ from = [year, tfr], to = [year, tfr] }`.
    pub tfr: Option<Param>,
}

/// `[mortality]`: probabilities of dying.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MortalitySection {
    /// The rate table `[area], [year], sex, age, rate` (age `s` or `-1`: born during
    /// the year).
    pub file: String,
    /// The value column of a CSV table, when it is not named `rate`.
    pub column: Option<String>,
    /// Rates are per `scale` persons.
    pub scale: Option<f64>,
    /// Yearly mortality improvement rate `r`: `q_y = q · (1 − r)^(y − base_year)`; a
    /// number, or a table `[area], [sex], age, rate` of rates by age.
    pub improvement: Option<NumberOrTable>,
}

/// A key that takes one number for every cell or a table by `[area], [sex], age`
/// (`[mortality] improvement`, `[uncertainty] migration_rate_sd`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum NumberOrTable {
    /// The same value everywhere.
    Rate(f64),
    /// A table `[area], [sex], age, value`, relative to the scenario file.
    Table(String),
}

/// `[[migration]]`: one named flow.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MigrationSection {
    /// Flow name (`internal`, `international`, …).
    pub name: String,
    /// `in` or `out`.
    pub direction: String,
    /// Counts by sex and age.
    pub counts: Option<String>,
    /// Yearly totals per area (with `profile`).
    pub total: Option<String>,
    /// Age × sex profile of shares.
    pub profile: Option<String>,
    /// Out-rates by sex and age.
    pub rates: Option<String>,
    /// Rates or counts are per `scale`.
    pub scale: Option<f64>,
    /// Multiplier path on the flow (lever): a constant or `{ from = …, to = … }`.
    pub multiplier: Option<Param>,
    /// For an out-flow given as `rates`: destination shares `[area], sex, age, share`
    /// (summing to 1 over areas) that make the flow a closed internal system.
    pub destinations: Option<String>,
    /// The value column of `counts` or `rates`, when it is not named `count` / `rate`.
    pub column: Option<String>,
    /// The value column of `total`, when it is not named `total`.
    pub total_column: Option<String>,
    /// The value column of `profile`, when it is not named `share`.
    pub share_column: Option<String>,
}

/// `[[service.segment]]`: a customer segment of a service.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SegmentSection {
    /// Segment id.
    pub id: String,
    /// Share of the service's users in the segment.
    pub share: Option<Param>,
    /// Largest teaching group.
    pub max_group_size: Option<f64>,
    /// Lesson hours of a group relative to a general group.
    pub hours_factor: Option<f64>,
    /// Extra weekly support hours per pupil.
    pub support_hours_per_unit: Option<f64>,
    /// Floor area per unit of demand.
    pub floor_area_per_unit: Option<f64>,
    /// Units of demand per staff FTE.
    pub units_per_fte: Option<f64>,
    /// Segment-specific costs.
    pub cost: Option<CostSection>,
}

/// `[service.teaching]`: the teaching model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TeachingSection {
    /// Weekly lesson hours per grade (tuntijako), from the first age.
    pub lesson_hours: Vec<f64>,
    /// Teaching obligation in hours per week (opetusvelvollisuus).
    pub teaching_obligation: f64,
    /// Largest teaching group of segments that do not give their own.
    pub max_group_size: Option<f64>,
}

/// `[service.cost]`: product costs (JHS 203 style), in base-year euros.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct CostSection {
    /// Euros per unit of demand per year.
    pub per_unit: Option<f64>,
    /// Euros per m² per year.
    pub per_m2: Option<f64>,
    /// Euros per FTE per year.
    pub per_fte: Option<f64>,
    /// Fixed euros per year.
    pub fixed: Option<f64>,
    /// Overhead share on direct costs.
    pub overhead: Option<f64>,
    /// Real yearly growth of every cost component.
    pub growth: Option<f64>,
    /// Real yearly growth of `per_unit` costs, instead of `growth`.
    pub growth_per_unit: Option<f64>,
    /// Real yearly growth of `per_m2` costs, instead of `growth`.
    pub growth_per_m2: Option<f64>,
    /// Real yearly growth of `per_fte` costs, instead of `growth`.
    pub growth_per_fte: Option<f64>,
    /// Real yearly growth of `fixed` costs, instead of `growth`.
    pub growth_fixed: Option<f64>,
    /// What `fixed` is per: `area` (default: every area, every year) or `service` (one
    /// sum a year, carried by the areas in proportion to their demand).
    pub fixed_per: Option<String>,
}

impl CostSection {
    /// This section's keys, falling back to `base`'s where this one has none.
    pub fn or(&self, base: Option<&CostSection>) -> CostSection {
        let Some(b) = base else {
            return self.clone();
        };
        CostSection {
            per_unit: self.per_unit.or(b.per_unit),
            per_m2: self.per_m2.or(b.per_m2),
            per_fte: self.per_fte.or(b.per_fte),
            fixed: self.fixed.or(b.fixed),
            overhead: self.overhead.or(b.overhead),
            growth: self.growth.or(b.growth),
            growth_per_unit: self.growth_per_unit.or(b.growth_per_unit),
            growth_per_m2: self.growth_per_m2.or(b.growth_per_m2),
            growth_per_fte: self.growth_per_fte.or(b.growth_per_fte),
            growth_fixed: self.growth_fixed.or(b.growth_fixed),
            fixed_per: self.fixed_per.clone().or_else(|| b.fixed_per.clone()),
        }
    }

    fn numbers(&self) -> [(&'static str, Option<f64>); 10] {
        [
            ("per_unit", self.per_unit),
            ("per_m2", self.per_m2),
            ("per_fte", self.per_fte),
            ("fixed", self.fixed),
            ("overhead", self.overhead),
            ("growth", self.growth),
            ("growth_per_unit", self.growth_per_unit),
            ("growth_per_m2", self.growth_per_m2),
            ("growth_per_fte", self.growth_per_fte),
            ("growth_fixed", self.growth_fixed),
        ]
    }
}

/// `[[service]]`: a productised service (tuotteistettu palvelu).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ServiceSection {
    /// Service id.
    pub id: String,
    /// Name.
    pub name: Option<String>,
    /// Unit of demand (pupil, child, client, …).
    pub unit: Option<String>,
    /// Ages served, `[age_min, age_max]`.
    pub ages: (u16, u16),
    /// Only one sex (`female`/`male`).
    pub sex: Option<String>,
    /// Share of the age group using the service.
    pub coverage: Option<Param>,
    /// Floor area per unit of demand.
    pub floor_area_per_unit: Option<f64>,
    /// Units of demand per staff FTE.
    pub units_per_fte: Option<f64>,
    /// Customer segments.
    #[serde(default)]
    pub segment: Vec<SegmentSection>,
    /// Teaching model.
    pub teaching: Option<TeachingSection>,
    /// Costs.
    pub cost: Option<CostSection>,
}

/// `[[unit]]`: a unit of the service network (palveluverkko).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UnitSection {
    /// Unit id (a school's name).
    pub id: String,
    /// Service it provides.
    pub service: String,
    /// Places.
    pub capacity: f64,
    /// Floor area in m².
    pub floor_area: Option<f64>,
    /// First year open.
    pub opens: Option<i32>,
    /// Last year open.
    pub closes: Option<i32>,
    /// Share of places kept spare: a shortage starts above `capacity · (1 −
    /// spare_target)` (default 0).
    pub spare_target: Option<f64>,
    /// `[unit.cost]`: the unit's own costs (MODEL.md §9).
    pub cost: Option<UnitCostSection>,
}

/// `[unit.cost]`: a unit's own costs in base-year euros (MODEL.md §9).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct UnitCostSection {
    /// Premises, € per m² of the unit's floor area a year while open.
    pub per_m2: Option<f64>,
    /// Fixed € a year while open.
    pub fixed: Option<f64>,
    /// One-off investment, € in `investment_year` (default: the year it opens).
    pub investment: Option<f64>,
    /// The year of the investment.
    pub investment_year: Option<i32>,
    /// Real yearly growth of `per_m2` and `fixed`.
    pub growth: Option<f64>,
}

/// `[alignment]`: align the projected areas to control totals of their parent areas
/// (MODEL.md §4).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AlignmentSection {
    /// The parent of each area: a CSV table `area,parent`.
    pub parents: String,
    /// The control population of the parents: a population table
    /// `area, sex, age, year, population` whose areas are the parents.
    pub control: String,
}

/// `[catchment]`: each area's share of demand going to each unit.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CatchmentSection {
    /// The catchment table `area, unit, share`.
    pub file: String,
}

/// `[uncertainty]`: Monte Carlo settings (MODEL.md §5).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct UncertaintySection {
    /// Number of trajectories.
    pub trajectories: Option<u32>,
    /// Seed of the random streams.
    pub seed: Option<u64>,
    /// Yearly spread (standard deviation of the log multiplier's innovation) of the
    /// fertility level.
    pub fertility_sd: Option<f64>,
    /// Persistence (AR(1) coefficient) of the fertility multiplier.
    pub fertility_ar: Option<f64>,
    /// Yearly spread of the mortality level.
    pub mortality_sd: Option<f64>,
    /// Persistence of the mortality multiplier.
    pub mortality_ar: Option<f64>,
    /// Yearly spread of each migration flow.
    pub migration_sd: Option<f64>,
    /// Persistence of the migration multipliers.
    pub migration_ar: Option<f64>,
    /// The yearly spread of each area's net migration rate
    /// ([`crate::uncertainty::MigrationRate`]): a number for every cell, or a table
    /// `[area], [sex], age, sd`.
    pub migration_rate_sd: Option<NumberOrTable>,
    /// The persistence of the net migration rate's process (default 1, a random
    /// walk).
    pub migration_rate_ar: Option<f64>,
    /// Births, deaths and movers drawn as Poisson counts (for small areas).
    pub process_noise: Option<bool>,
    /// Quantile levels, ascending, each strictly between 0 and 1.
    pub quantiles: Option<Vec<f64>>,
    /// Whether to write `population_quantiles` and `components_quantiles` (default
    /// true; the population's quantiles are the slowest part of a large run).
    pub population_quantiles: Option<bool>,
    /// The age groups of `population_quantiles`: labels such as `"0-6"`, `"75+"`,
    /// `"all"`, or `"single"` for every single year (default: the planning groups).
    pub age_groups: Option<AgeGroupsKey>,
}

/// `[uncertainty] age_groups`: a list of group labels, or the word `"single"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum AgeGroupsKey {
    /// `"single"`: every single year of age.
    Word(String),
    /// Labels `"0-6"`, `"7-12"`, `"75+"`, `"all"`, `"5"`.
    Groups(Vec<String>),
}

impl AgeGroupsKey {
    /// The groups, or a sentence saying what is wrong.
    ///
    /// # Errors
    /// A word other than `single`, an empty list, or a label that is not a group.
    pub fn groups(&self) -> Result<crate::uncertainty::AgeGroups, String> {
        use crate::uncertainty::{AgeGroup, AgeGroups};
        match self {
            AgeGroupsKey::Word(w) if w.trim().eq_ignore_ascii_case("single") => {
                Ok(AgeGroups::SingleYears)
            }
            AgeGroupsKey::Word(w) => Err(format!(
                "`{w}`: give \"single\" or a list of groups such as [\"0-6\", \"7-12\", \"75+\", \"all\"]"
            )),
            AgeGroupsKey::Groups(list) if list.is_empty() => {
                Err("the list is empty: give at least one group such as \"all\"".into())
            }
            AgeGroupsKey::Groups(list) => list
                .iter()
                .map(|l| {
                    AgeGroup::parse(l).ok_or_else(|| {
                        format!("`{l}` is not an age group (write `7-12`, `75+`, `5` or `all`)")
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(AgeGroups::Groups),
        }
    }
}

/// A whole scenario file as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ScenarioFile {
    /// `[scenario]`.
    pub scenario: ScenarioSection,
    /// `[population]`.
    pub population: PopulationSection,
    /// `[fertility]`.
    pub fertility: Option<FertilitySection>,
    /// `[mortality]`.
    pub mortality: Option<MortalitySection>,
    /// `[[migration]]`.
    #[serde(default)]
    pub migration: Vec<MigrationSection>,
    /// `[[service]]`.
    #[serde(default)]
    pub service: Vec<ServiceSection>,
    /// `[[unit]]`.
    #[serde(default)]
    pub unit: Vec<UnitSection>,
    /// `[catchment]`.
    pub catchment: Option<CatchmentSection>,
    /// `[alignment]`.
    pub alignment: Option<AlignmentSection>,
    /// `[uncertainty]`.
    pub uncertainty: Option<UncertaintySection>,
    /// `[areas]`.
    pub areas: Option<AreasSection>,
    /// `[[variant]]`: partial documents merged onto this one (see [`super::variant`]).
    #[serde(default)]
    pub variant: Vec<toml::Table>,
}

/// One problem with a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Line in the scenario file, where known.
    pub line: Option<usize>,
    /// The key at fault (`scenario.end_year`, `service[2].cost.per_unit`).
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = self.line {
            write!(f, "line {l}: ")?;
        }
        if let Some(k) = &self.key {
            write!(f, "`{k}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl ScenarioFile {
    /// Parses a scenario from TOML text and checks its parameters.
    ///
    /// # Errors
    /// Every problem found: TOML syntax (with line), unknown keys (each with its name
    /// and line), missing or mistyped keys, and out-of-range values.
    pub fn parse(text: &str) -> Result<ScenarioFile, Vec<Problem>> {
        let mut unknown = Vec::new();
        let de = toml::Deserializer::new(text);
        let parsed: Result<ScenarioFile, _> =
            serde_ignored::deserialize(de, |path| unknown.push(key_name(&path.to_string())));
        let mut problems: Vec<Problem> = Vec::new();
        let mut searched_from = Vec::new();
        for key in &unknown {
            let line = key_line(text, key, &mut searched_from);
            problems.push(Problem {
                line,
                key: Some(key.to_string()),
                message: "unknown key".into(),
            });
        }
        match parsed {
            Err(e) => {
                let line = e
                    .span()
                    .map(|s| 1 + text[..s.start.min(text.len())].matches('\n').count());
                problems.push(Problem {
                    line,
                    key: None,
                    message: e.message().trim().to_string(),
                });
                Err(problems)
            }
            Ok(s) => {
                problems.extend(s.check());
                if problems.is_empty() {
                    Ok(s)
                } else {
                    Err(problems)
                }
            }
        }
    }

    /// Parses a scenario document already read as TOML (a variant merged onto its
    /// base): as [`ScenarioFile::parse`], without line numbers.
    ///
    /// # Errors
    /// As [`ScenarioFile::parse`].
    pub fn from_table(t: toml::Table) -> Result<ScenarioFile, Vec<Problem>> {
        let mut unknown = Vec::new();
        let parsed: Result<ScenarioFile, _> =
            serde_ignored::deserialize(toml::Value::Table(t), |path| {
                unknown.push(key_name(&path.to_string()))
            });
        let mut problems: Vec<Problem> = unknown
            .into_iter()
            .map(|key| Problem {
                line: None,
                key: Some(key),
                message: "unknown key".into(),
            })
            .collect();
        match parsed {
            Err(e) => {
                problems.push(Problem {
                    line: None,
                    key: None,
                    message: e.to_string().trim().to_string(),
                });
                Err(problems)
            }
            Ok(s) => {
                problems.extend(s.check());
                if problems.is_empty() {
                    Ok(s)
                } else {
                    Err(problems)
                }
            }
        }
    }

    /// Checks parameter ranges that do not need the input files.
    pub fn check(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        let mut bad = |key: &str, message: String| {
            p.push(Problem {
                line: None,
                key: Some(key.to_string()),
                message,
            })
        };
        let s = &self.scenario;
        if s.end_year < s.base_year {
            bad(
                "scenario.end_year",
                format!("{} is before base_year {}", s.end_year, s.base_year),
            );
        } else if i64::from(s.end_year) - i64::from(s.base_year)
            > i64::from(crate::scenario::MAX_YEARS)
        {
            bad(
                "scenario.end_year",
                format!(
                    "{} is more than {} years after base_year {}: kunta projects at most {} years",
                    s.end_year,
                    crate::scenario::MAX_YEARS,
                    s.base_year,
                    crate::scenario::MAX_YEARS
                ),
            );
        }
        if let Some(r) = s.discount_rate {
            if !(r >= 0.0 && r.is_finite()) {
                bad(
                    "scenario.discount_rate",
                    format!("{r} must not be negative (a real rate such as 0.035)"),
                );
            }
        }
        if let Some(f) = &self.fertility {
            if let Some(c) = f.boys_share {
                if !(0.0..=1.0).contains(&c) {
                    bad(
                        "fertility.boys_share",
                        format!("{c} is not a share between 0 and 1"),
                    );
                }
            }
            if let Some(sc) = f.scale {
                if !(sc > 0.0 && sc.is_finite()) {
                    bad("fertility.scale", format!("{sc} must be positive"));
                }
            }
        }
        if let Some(m) = &self.mortality {
            if let Some(sc) = m.scale {
                if !(sc > 0.0 && sc.is_finite()) {
                    bad("mortality.scale", format!("{sc} must be positive"));
                }
            }
        }
        for (i, m) in self.migration.iter().enumerate() {
            let key = |k: &str| format!("migration[{i}].{k}");
            if !matches!(m.direction.as_str(), "in" | "out" | "net") {
                bad(
                    &key("direction"),
                    format!("`{}` is not `in`, `out` or `net`", m.direction),
                );
            }
            let forms = [
                m.counts.is_some(),
                m.total.is_some() || m.profile.is_some(),
                m.rates.is_some(),
            ];
            if forms.iter().filter(|f| **f).count() != 1 {
                bad(
                    &key("counts"),
                    "give exactly one of `counts`, `total` with `profile`, or `rates`".into(),
                );
            } else if m.total.is_some() != m.profile.is_some() {
                bad(&key("profile"), "`total` and `profile` go together".into());
            } else if m.rates.is_some() && m.direction != "out" {
                bad(&key("rates"), "rates are for out-migration only".into());
            } else if m.direction == "net" && m.counts.is_none() {
                bad(
                    &key("counts"),
                    "a net flow is given as signed `counts` by [area], [year], sex, age".into(),
                );
            }
            if m.destinations.is_some() && m.rates.is_none() {
                bad(
                    &key("destinations"),
                    "a closed internal system needs an out-flow given as `rates`".into(),
                );
            }
            if let Some(sc) = m.scale {
                if !(sc > 0.0 && sc.is_finite()) {
                    bad(&key("scale"), format!("{sc} must be positive"));
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        for sv in &self.service {
            if !seen.insert(sv.id.as_str()) {
                bad(
                    &format!("service[{}].id", sv.id),
                    "another service has the same id".into(),
                );
            }
            check_service(sv, &mut bad);
        }
        let mut ids = std::collections::HashSet::new();
        for u in &self.unit {
            let key = |k: &str| format!("unit[{}].{k}", u.id);
            if !ids.insert(u.id.as_str()) {
                bad(&key("id"), "another unit has the same id".into());
            }
            if !self.service.iter().any(|s| s.id == u.service) {
                bad(
                    &key("service"),
                    format!("`{}` is not the id of a [[service]]", u.service),
                );
            }
            number(&mut bad, &key("capacity"), Some(u.capacity), true);
            number(&mut bad, &key("floor_area"), u.floor_area, true);
            if let Some(t) = u.spare_target {
                if !(0.0..1.0).contains(&t) {
                    bad(
                        &key("spare_target"),
                        format!("{t} must be at least 0 and below 1"),
                    );
                }
            }
            if let (Some(o), Some(c)) = (u.opens, u.closes) {
                if c < o {
                    bad(&key("closes"), format!("{c} is before `opens` {o}"));
                }
            }
            if let Some(c) = &u.cost {
                number(&mut bad, &key("cost.per_m2"), c.per_m2, true);
                number(&mut bad, &key("cost.fixed"), c.fixed, true);
                number(&mut bad, &key("cost.investment"), c.investment, true);
                if let Some(g) = c.growth {
                    if !(g.is_finite() && g > -1.0) {
                        bad(&key("cost.growth"), format!("{g} must be above -1"));
                    }
                }
                if c.per_m2.is_some_and(|v| v > 0.0) && u.floor_area.is_none() {
                    bad(
                        &key("cost.per_m2"),
                        "premises are priced per m² of the unit's floor area: give `floor_area`"
                            .into(),
                    );
                }
                if let Some(y) = c.investment_year {
                    let s = &self.scenario;
                    if y < s.base_year || y > s.end_year {
                        bad(
                            &key("cost.investment_year"),
                            format!(
                                "{y} is outside the scenario's years {}–{}",
                                s.base_year, s.end_year
                            ),
                        );
                    }
                }
            }
        }
        if self.catchment.is_some() && self.unit.is_empty() {
            bad(
                "catchment.file",
                "a catchment needs units: add [[unit]] sections".into(),
            );
        }
        if let Some(u) = &self.uncertainty {
            if u.trajectories == Some(0) {
                bad("uncertainty.trajectories", "must be at least 1".into());
            }
            for (k, v) in [
                ("fertility_sd", u.fertility_sd),
                ("mortality_sd", u.mortality_sd),
                ("migration_sd", u.migration_sd),
                (
                    "migration_rate_sd",
                    match u.migration_rate_sd {
                        Some(NumberOrTable::Rate(r)) => Some(r),
                        _ => None,
                    },
                ),
            ] {
                number(&mut bad, &format!("uncertainty.{k}"), v, true);
            }
            for (k, v) in [
                ("fertility_ar", u.fertility_ar),
                ("mortality_ar", u.mortality_ar),
                ("migration_ar", u.migration_ar),
                ("migration_rate_ar", u.migration_rate_ar),
            ] {
                if let Some(v) = v {
                    if !(-1.0..=1.0).contains(&v) {
                        bad(
                            &format!("uncertainty.{k}"),
                            format!("{v} is not between -1 and 1"),
                        );
                    }
                }
            }
            if let Some(Err(e)) = u.age_groups.as_ref().map(AgeGroupsKey::groups) {
                bad("uncertainty.age_groups", e);
            }
            if let Some(q) = &u.quantiles {
                let outside = q.iter().find(|v| !(**v > 0.0 && **v < 1.0));
                let unordered = q.windows(2).find(|w| w[0] >= w[1]);
                let problem = match (q.is_empty(), outside, unordered) {
                    (true, _, _) => Some("the list is empty".to_string()),
                    (_, Some(v), _) => Some(format!("{v} is not strictly between 0 and 1")),
                    (_, _, Some(w)) => Some(format!("{} does not come after {}", w[1], w[0])),
                    _ => None,
                };
                if let Some(p) = problem {
                    bad(
                        "uncertainty.quantiles",
                        format!("{p}: give levels strictly between 0 and 1, in ascending order"),
                    );
                }
            }
        }
        p
    }
}

/// Parses a service's `sex`: `female`/`male` and the other spellings of the input
/// tables.
pub fn parse_service_sex(s: &str) -> Option<crate::population::Sex> {
    use crate::population::Sex;
    match s.trim().to_lowercase().as_str() {
        "female" | "f" | "2" | "naiset" | "nainen" | "women" => Some(Sex::Female),
        "male" | "m" | "1" | "miehet" | "mies" | "men" => Some(Sex::Male),
        _ => None,
    }
}

/// A number that must be positive (or, with `zero_ok`, not negative).
fn number(bad: &mut dyn FnMut(&str, String), k: &str, v: Option<f64>, zero_ok: bool) {
    if let Some(v) = v {
        let ok = v.is_finite() && if zero_ok { v >= 0.0 } else { v > 0.0 };
        if !ok {
            let must = if zero_ok {
                "must not be negative"
            } else {
                "must be positive"
            };
            bad(k, format!("{v} {must}"));
        }
    }
}

/// The range checks of one `[[service]]` that need no files; keys are named
/// `service[ID].…`.
fn check_service(sv: &ServiceSection, bad: &mut dyn FnMut(&str, String)) {
    let key = |k: &str| format!("service[{}].{k}", sv.id);
    let (lo, hi) = sv.ages;
    if lo > hi {
        bad(
            &key("ages"),
            format!("[{lo}, {hi}]: the first age is above the last"),
        );
    }
    if let Some(x) = &sv.sex {
        if parse_service_sex(x).is_none() {
            bad(&key("sex"), format!("`{x}` is neither `female` nor `male`"));
        }
    }
    let share_range = |k: &str, p: &Option<Param>, bad: &mut dyn FnMut(&str, String)| {
        let values: Vec<f64> = match p {
            Some(Param::Constant(v)) => vec![*v],
            Some(Param::Path { from, to }) => vec![from.1, to.1],
            _ => Vec::new(),
        };
        for v in values {
            if !(0.0..=1.0).contains(&v) {
                bad(k, format!("{v} is not a share between 0 and 1"));
            }
        }
    };
    share_range(&key("coverage"), &sv.coverage, bad);
    number(
        bad,
        &key("floor_area_per_unit"),
        sv.floor_area_per_unit,
        true,
    );
    number(bad, &key("units_per_fte"), sv.units_per_fte, false);
    if let Some(t) = &sv.teaching {
        let grades = usize::from(hi.saturating_sub(lo)) + 1;
        if lo <= hi && t.lesson_hours.len() != grades {
            bad(
                &key("teaching.lesson_hours"),
                format!(
                    "{} values for {grades} grades (ages {lo}–{hi}): give one per grade",
                    t.lesson_hours.len()
                ),
            );
        }
        if let Some(h) = t
            .lesson_hours
            .iter()
            .find(|h| !(h.is_finite() && **h >= 0.0))
        {
            bad(
                &key("teaching.lesson_hours"),
                format!("{h} must not be negative"),
            );
        }
        number(
            bad,
            &key("teaching.teaching_obligation"),
            Some(t.teaching_obligation),
            false,
        );
        number(
            bad,
            &key("teaching.max_group_size"),
            t.max_group_size,
            false,
        );
    }
    let costs = |k: String, c: &CostSection, bad: &mut dyn FnMut(&str, String)| {
        for (name, v) in c.numbers() {
            let Some(v) = v else { continue };
            let growth = name.starts_with("growth");
            if !v.is_finite() || (growth && v <= -1.0) || (!growth && v < 0.0) {
                let must = if growth {
                    "must be above -1"
                } else {
                    "a cost must not be negative"
                };
                bad(&format!("{k}.{name}"), format!("{v}: {must}"));
            }
        }
        if let Some(f) = &c.fixed_per {
            if f != "area" && f != "service" {
                bad(
                    &format!("{k}.fixed_per"),
                    format!("`{f}` is neither `area` nor `service`"),
                );
            }
        }
    };
    if let Some(c) = &sv.cost {
        costs(key("cost"), c, bad);
    }
    let mut ids = std::collections::HashSet::new();
    let mut constant_sum = Some(0.0);
    for g in &sv.segment {
        let sk = |k: &str| key(&format!("segment[{}].{k}", g.id));
        if !ids.insert(g.id.as_str()) {
            bad(&sk("id"), "another segment has the same id".into());
        }
        share_range(&sk("share"), &g.share, bad);
        match (&g.share, sv.segment.len()) {
            (Some(Param::Constant(v)), _) => constant_sum = constant_sum.map(|s| s + v),
            (None, 1) => constant_sum = constant_sum.map(|s| s + 1.0),
            (None, _) => {
                bad(
                    &sk("share"),
                    "a service with several segments needs every segment's share".into(),
                );
                constant_sum = None;
            }
            _ => constant_sum = None,
        }
        number(bad, &sk("max_group_size"), g.max_group_size, false);
        number(bad, &sk("hours_factor"), g.hours_factor, true);
        number(
            bad,
            &sk("support_hours_per_unit"),
            g.support_hours_per_unit,
            true,
        );
        number(bad, &sk("floor_area_per_unit"), g.floor_area_per_unit, true);
        number(bad, &sk("units_per_fte"), g.units_per_fte, false);
        if let Some(c) = &g.cost {
            costs(sk("cost"), c, bad);
        }
        if let Some(t) = &sv.teaching {
            if g.max_group_size.is_none() && t.max_group_size.is_none() {
                bad(
                    &sk("max_group_size"),
                    "a service with a teaching model needs every segment's largest group (or `teaching.max_group_size`)".into(),
                );
            }
        }
    }
    if sv.segment.is_empty() {
        if let Some(t) = &sv.teaching {
            if t.max_group_size.is_none() {
                bad(
                    &key("teaching.max_group_size"),
                    "a service with a teaching model and no segments needs the largest group size"
                        .into(),
                );
            }
        }
    }
    if let Some(sum) = constant_sum {
        if !sv.segment.is_empty() && (sum - 1.0).abs() > 1e-6 {
            bad(
                &key("segment.share"),
                format!("the segments' shares sum to {sum}; they must sum to 1"),
            );
        }
    }
}

/// `service.0.cost.?.per_unti` (as serde_ignored writes paths) →
/// `service[0].cost.per_unti`.
fn key_name(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('.').filter(|p| *p != "?") {
        if part.bytes().all(|b| b.is_ascii_digit()) && !out.is_empty() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

/// The line of an unknown key such as `service[1].cost.per_unti`: the next line, after
/// those already reported for the same name, that assigns the key's last part or opens
/// a table of that name.
fn key_line(text: &str, path: &str, used: &mut Vec<(String, usize)>) -> Option<usize> {
    let last = path.rsplit('.').next().unwrap_or(path);
    let last = last.split('[').next().unwrap_or(last);
    let after = used
        .iter()
        .filter(|(k, _)| k == last)
        .map(|(_, l)| *l)
        .max()
        .unwrap_or(0);
    let found = text.lines().enumerate().skip(after).find_map(|(i, l)| {
        let t = l.trim_start();
        let assigns = t
            .strip_prefix(last)
            .is_some_and(|r| r.trim_start().starts_with('=') || r.starts_with('.'));
        let header = t.starts_with('[')
            && t.trim_matches(|c| c == '[' || c == ']')
                .rsplit('.')
                .next()
                .is_some_and(|h| h.trim() == last);
        (assigns || header).then_some(i + 1)
    })?;
    used.push((last.to_string(), found));
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[scenario]\nname = \"x\"\nbase_year = 2024\nend_year = 2030\n\n[population]\nfile = \"p.csv\"\n";

    #[test]
    fn every_unknown_key_is_named_with_its_line() {
        let text = format!("{BASE}colour = 1\n\n[[service]]\nid = \"s\"\nages = [7, 12]\n[service.cost]\nper_unti = 3.0\n");
        let p = ScenarioFile::parse(&text).unwrap_err();
        let shown: Vec<String> = p.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "line 8: `population.colour`: unknown key",
                "line 14: `service[0].cost.per_unti`: unknown key"
            ]
        );
    }

    #[test]
    fn quantile_levels_are_named_when_refused() {
        let with = |q: &str| {
            ScenarioFile::parse(&format!("{BASE}\n[uncertainty]\nquantiles = {q}\n")).unwrap_err()
        };
        assert!(with("[0.05, 1.5]")[0]
            .message
            .starts_with("1.5 is not strictly between"));
        assert!(with("[0.5, 0.25]")[0]
            .message
            .starts_with("0.25 does not come after 0.5"));
        assert!(with("[]")[0].message.starts_with("the list is empty"));
    }

    #[test]
    fn a_random_walk_is_a_persistence_and_more_is_not() {
        let with = |ar: &str| {
            ScenarioFile::parse(&format!("{BASE}\n[uncertainty]\nmortality_ar = {ar}\n"))
        };
        assert!(with("1.0").is_ok());
        let p = with("1.5").unwrap_err();
        assert_eq!(
            p[0].key.as_deref(),
            Some("uncertainty.mortality_ar"),
            "{p:?}"
        );
        assert!(p[0].message.contains("1.5"), "{p:?}");
    }

    #[test]
    fn range_problems_are_listed_together() {
        let text = BASE.replace("end_year = 2030", "end_year = 2020\ndiscount_rate = -0.5");
        let p = ScenarioFile::parse(&text).unwrap_err();
        assert_eq!(p.len(), 2, "{p:?}");
    }

    #[test]
    fn a_horizon_past_the_limit_is_refused() {
        let text = BASE.replace("end_year = 2030", "end_year = 1000000");
        let p = ScenarioFile::parse(&text).unwrap_err();
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].key.as_deref(), Some("scenario.end_year"));
        assert!(p[0].message.contains("at most 200 years"), "{p:?}");
        assert!(ScenarioFile::parse(&BASE.replace("end_year = 2030", "end_year = 2224")).is_ok());
    }

    #[test]
    fn syntax_error_has_a_line() {
        let p = ScenarioFile::parse("[scenario]\nname = \n").unwrap_err();
        assert_eq!(p[0].line, Some(2), "{p:?}");
    }

    #[test]
    fn params_take_three_forms() {
        #[derive(Deserialize)]
        struct T {
            a: Param,
            b: Param,
            c: Param,
        }
        let t: T = toml::from_str(
            "a = 0.9\nb = \"cov.csv\"\nc = { from = [2025, 0.9], to = [2030, 0.95] }",
        )
        .unwrap();
        assert_eq!(t.a, Param::Constant(0.9));
        assert_eq!(t.b, Param::Table("cov.csv".into()));
        assert_eq!(
            t.c,
            Param::Path {
                from: (2025, 0.9),
                to: (2030, 0.95)
            }
        );
    }
}
