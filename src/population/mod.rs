//! The population grid (väestörakenne): persons by area, sex, single-year age and year.
//!
//! `P[a, s, x, t]` is the number of persons in area `a`, of sex `s`, aged `x` completed
//! years at 31 December of year `t` (MODEL.md §1). Ages run `0..=ω`, where `ω` is the
//! open-ended top group (`100 -` in Statistics Finland's tables, `99+` in some city
//! models). `ω` is always taken from the data, never assumed.
//!
//! The cube is stored as a dense [`ndarray::Array4`] in the axis order
//! `(year, area, sex, age)`, so that one year of one area and sex is a contiguous run of
//! ages: the layout the projection loop walks.
//!
//! # Examples
//! ```
//! use kunta::population::{Age, Population, Record, Sex, Year};
//!
//! let records = (0..=2u16).flat_map(|x| {
//!     [Sex::Female, Sex::Male].map(|s| Record {
//!         area: "091".to_string(),
//!         sex: s,
//!         age: Age(x),
//!         year: Year(2024),
//!         value: 10.0 * f64::from(x + 1),
//!     })
//! });
//! let pop = Population::from_records(records).unwrap();
//! assert_eq!(pop.omega(), Age(2));
//! assert_eq!(pop.total(Year(2024)), Some(120.0));
//! let a = pop.area_index("091").unwrap();
//! assert_eq!(pop.get(a, Sex::Male, Age(1), Year(2024)), Some(20.0));
//! ```

mod error;

pub use error::PopulationError;

use crate::FastMap as HashMap;
use ndarray::{Array4, ArrayView1, ArrayView4};
use std::fmt;

/// Sex of a person. Statistics Finland codes `1` = male, `2` = female.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sex {
    /// Women and girls (naiset).
    Female,
    /// Men and boys (miehet).
    Male,
}

impl Sex {
    /// Both sexes in storage order.
    pub const ALL: [Sex; 2] = [Sex::Female, Sex::Male];

    /// Position of this sex on the cube's sex axis.
    pub fn index(self) -> usize {
        match self {
            Sex::Female => 0,
            Sex::Male => 1,
        }
    }

    /// The name written in output tables: `female` or `male`.
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
        }
    }
}

impl fmt::Display for Sex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Age in completed years at 31 December. The largest age of a [`Population`] is its
/// open-ended top group `ω`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Age(pub u16);

impl Age {
    /// Position of this age on the cube's age axis.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl fmt::Display for Age {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A calendar year; populations are counted at 31 December of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Year(pub i32);

impl fmt::Display for Year {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Position of an area on the cube's area axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AreaIndex(pub usize);

/// Position of a year on the cube's year axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct YearIndex(pub usize);

/// One cell of a population table, as read from a tidy long table.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Area code, kept as written (`091`, `KU091`, `Helsinki`).
    pub area: String,
    /// Sex.
    pub sex: Sex,
    /// Age in completed years; the largest age in the table is the open top group.
    pub age: Age,
    /// Year (population at 31 December).
    pub year: Year,
    /// Number of persons.
    pub value: f64,
}

/// Persons by area, sex, single-year age and year (MODEL.md §1).
#[derive(Debug, Clone, PartialEq)]
pub struct Population {
    areas: Vec<String>,
    years: Vec<Year>,
    omega: Age,
    values: Array4<f64>,
}

impl Population {
    /// Builds a population from its axes and a `(year, area, sex, age)` array.
    ///
    /// # Errors
    /// [`PopulationError::Shape`] if the array does not match the axes,
    /// [`PopulationError::Empty`] if there are no areas or years,
    /// [`PopulationError::Unordered`] if years are not strictly increasing or an area
    /// code repeats, and [`PopulationError::Invalid`] for a negative or non-finite value.
    pub fn new(
        areas: Vec<String>,
        years: Vec<Year>,
        values: Array4<f64>,
    ) -> Result<Self, PopulationError> {
        if areas.is_empty() || years.is_empty() {
            return Err(PopulationError::Empty);
        }
        let (ny, na, ns, nx) = values.dim();
        if ny != years.len() || na != areas.len() || ns != 2 || nx == 0 {
            return Err(PopulationError::Shape {
                expected: format!("({}, {}, 2, ages)", years.len(), areas.len()),
                found: format!("({ny}, {na}, {ns}, {nx})"),
            });
        }
        let omega = u16::try_from(nx - 1).map_err(|_| PopulationError::Shape {
            expected: "at most 65536 ages".into(),
            found: format!("{nx} ages"),
        })?;
        if years.windows(2).any(|w| w[0] >= w[1]) {
            return Err(PopulationError::Unordered(
                "years must be strictly increasing",
            ));
        }
        let mut seen = HashMap::with_capacity_and_hasher(areas.len(), Default::default());
        for a in &areas {
            if seen.insert(a.as_str(), ()).is_some() {
                return Err(PopulationError::Unordered("area codes must be unique"));
            }
        }
        if let Some(((y, a, s, x), v)) = values
            .indexed_iter()
            .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
        {
            return Err(PopulationError::Invalid {
                record: None,
                area: areas[a].clone(),
                sex: Sex::ALL[s],
                age: Age(x as u16),
                year: years[y],
                value: *v,
            });
        }
        Ok(Population {
            areas,
            years,
            omega: Age(omega),
            values,
        })
    }

    /// Builds a population from long records. Areas keep the order of their first
    /// appearance; years are sorted; `ω` is the largest age present.
    ///
    /// Every (area, sex, age, year) cell from age 0 to `ω` must be given exactly once.
    ///
    /// # Errors
    /// [`PopulationError::Empty`] for no records, [`PopulationError::Invalid`] for a
    /// negative or non-finite value, [`PopulationError::Duplicate`] for a cell given
    /// twice and [`PopulationError::Missing`] for a cell not given. Errors carry the
    /// position of the record in the input so that readers can name the line.
    pub fn from_records<I>(records: I) -> Result<Self, PopulationError>
    where
        I: IntoIterator<Item = Record>,
    {
        let records: Vec<Record> = records.into_iter().collect();
        if records.is_empty() {
            return Err(PopulationError::Empty);
        }
        let mut area_pos: HashMap<&str, usize> = HashMap::default();
        let mut areas = Vec::new();
        let mut years: Vec<Year> = Vec::new();
        let mut omega = 0u16;
        for (i, r) in records.iter().enumerate() {
            if !(r.value.is_finite() && r.value >= 0.0) {
                return Err(PopulationError::Invalid {
                    record: Some(i),
                    area: r.area.clone(),
                    sex: r.sex,
                    age: r.age,
                    year: r.year,
                    value: r.value,
                });
            }
            if !area_pos.contains_key(r.area.as_str()) {
                area_pos.insert(r.area.as_str(), areas.len());
                areas.push(r.area.clone());
            }
            years.push(r.year);
            omega = omega.max(r.age.0);
        }
        years.sort_unstable();
        years.dedup();
        let year_pos: HashMap<Year, usize> =
            years.iter().enumerate().map(|(i, y)| (*y, i)).collect();
        let shape = (years.len(), areas.len(), 2, usize::from(omega) + 1);
        let cells = shape.0 * shape.1 * shape.2 * shape.3;
        // Each cell must come from one record, so a grid larger than the input is missing cells.
        if cells > records.len() {
            let mut have = vec![false; cells];
            for r in &records {
                let idx = flat(
                    shape,
                    year_pos[&r.year],
                    area_pos[r.area.as_str()],
                    r.sex,
                    r.age,
                );
                have[idx] = true;
            }
            let missing = have.iter().position(|h| !h).unwrap_or(0);
            let (y, a, s, x) = unflat(shape, missing);
            return Err(PopulationError::Missing {
                area: areas[a].clone(),
                sex: Sex::ALL[s],
                age: Age(x as u16),
                year: years[y],
            });
        }
        let mut values = Array4::from_elem(shape, f64::NAN);
        let mut first: Vec<u32> = vec![u32::MAX; cells];
        for (i, r) in records.iter().enumerate() {
            let (y, a) = (year_pos[&r.year], area_pos[r.area.as_str()]);
            let idx = flat(shape, y, a, r.sex, r.age);
            if first[idx] != u32::MAX {
                return Err(PopulationError::Duplicate {
                    first: first[idx] as usize,
                    second: i,
                    area: r.area.clone(),
                    sex: r.sex,
                    age: r.age,
                    year: r.year,
                });
            }
            first[idx] = i as u32;
            values[[y, a, r.sex.index(), r.age.index()]] = r.value;
        }
        Population::new(areas, years, values)
    }

    /// Area codes in axis order.
    pub fn areas(&self) -> &[String] {
        &self.areas
    }

    /// Years in axis order (strictly increasing).
    pub fn years(&self) -> &[Year] {
        &self.years
    }

    /// The open-ended top age group `ω`.
    pub fn omega(&self) -> Age {
        self.omega
    }

    /// Number of single-year age groups, `ω + 1`.
    pub fn n_ages(&self) -> usize {
        self.omega.index() + 1
    }

    /// The whole cube, axes `(year, area, sex, age)`.
    pub fn values(&self) -> ArrayView4<'_, f64> {
        self.values.view()
    }

    /// Position of an area code on the area axis.
    pub fn area_index(&self, code: &str) -> Option<AreaIndex> {
        self.areas.iter().position(|a| a == code).map(AreaIndex)
    }

    /// Position of a year on the year axis.
    pub fn year_index(&self, year: Year) -> Option<YearIndex> {
        self.years.binary_search(&year).ok().map(YearIndex)
    }

    /// Persons in one cell, or `None` if the age or year is outside the cube.
    pub fn get(&self, area: AreaIndex, sex: Sex, age: Age, year: Year) -> Option<f64> {
        let y = self.year_index(year)?;
        self.values
            .get([y.0, area.0, sex.index(), age.index()])
            .copied()
    }

    /// Persons by age `0..=ω` of one area, sex and year.
    pub fn ages(&self, area: AreaIndex, sex: Sex, year: YearIndex) -> ArrayView1<'_, f64> {
        self.values
            .slice(ndarray::s![year.0, area.0, sex.index(), ..])
    }

    /// Total population of a year over all areas, sexes and ages.
    pub fn total(&self, year: Year) -> Option<f64> {
        let y = self.year_index(year)?;
        Some(self.values.index_axis(ndarray::Axis(0), y.0).sum())
    }

    /// Persons aged `from..=to` in a year, summed over areas and sexes. Ages above `ω`
    /// are ignored; the open top group counts as age `ω`.
    pub fn total_ages(&self, year: Year, from: Age, to: Age) -> Option<f64> {
        let y = self.year_index(year)?;
        let hi = to.index().min(self.omega.index());
        if from.index() > hi {
            return Some(0.0);
        }
        Some(
            self.values
                .slice(ndarray::s![y.0, .., .., from.index()..=hi])
                .sum(),
        )
    }

    /// Iterates over every cell as a [`Record`], in axis order.
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        self.values.indexed_iter().map(|((y, a, s, x), v)| Record {
            area: self.areas[a].clone(),
            sex: Sex::ALL[s],
            age: Age(x as u16),
            year: self.years[y],
            value: *v,
        })
    }
}

fn flat(shape: (usize, usize, usize, usize), y: usize, a: usize, s: Sex, x: Age) -> usize {
    ((y * shape.1 + a) * shape.2 + s.index()) * shape.3 + x.index()
}

fn unflat(shape: (usize, usize, usize, usize), i: usize) -> (usize, usize, usize, usize) {
    let x = i % shape.3;
    let r = i / shape.3;
    let s = r % shape.2;
    let r = r / shape.2;
    (r / shape.1, r % shape.1, s, x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(area: &str, sex: Sex, age: u16, year: i32, value: f64) -> Record {
        Record {
            area: area.into(),
            sex,
            age: Age(age),
            year: Year(year),
            value,
        }
    }

    fn full(areas: &[&str], omega: u16, years: &[i32]) -> Vec<Record> {
        let mut v = Vec::new();
        for &y in years {
            for a in areas {
                for s in Sex::ALL {
                    for x in 0..=omega {
                        v.push(rec(a, s, x, y, f64::from(x) + 1.0));
                    }
                }
            }
        }
        v
    }

    #[test]
    fn builds_cube_with_omega_from_data() {
        let p = Population::from_records(full(&["091", "049"], 99, &[2019, 2018])).unwrap();
        assert_eq!(p.omega(), Age(99));
        assert_eq!(p.years(), &[Year(2018), Year(2019)]);
        assert_eq!(p.areas(), &["091".to_string(), "049".to_string()]);
        let per_sex: f64 = (1..=100).map(f64::from).sum();
        assert_eq!(p.total(Year(2019)), Some(4.0 * per_sex));
        assert_eq!(p.total_ages(Year(2019), Age(0), Age(1)), Some(4.0 * 3.0));
        assert_eq!(p.records().count(), 2 * 2 * 2 * 100);
    }

    #[test]
    fn duplicate_cell_names_both_records() {
        let mut r = full(&["A"], 2, &[2020]);
        r.push(rec("A", Sex::Male, 1, 2020, 5.0));
        match Population::from_records(r) {
            Err(PopulationError::Duplicate { first, second, .. }) => {
                assert_eq!(second, 6);
                assert_eq!(first, 4);
            }
            other => panic!("expected a duplicate error, got {other:?}"),
        }
    }

    #[test]
    fn missing_cell_is_an_error_not_zero() {
        let mut r = full(&["A"], 2, &[2020]);
        r.remove(1);
        r.push(rec("A", Sex::Male, 0, 2020, 5.0)); // keep the count equal: a duplicate hides it
        let e = Population::from_records(r).unwrap_err();
        assert!(matches!(e, PopulationError::Duplicate { .. }), "{e:?}");
        let mut r = full(&["A"], 2, &[2020]);
        r.remove(1);
        let e = Population::from_records(r).unwrap_err();
        match e {
            PopulationError::Missing { sex, age, .. } => {
                assert_eq!((sex, age), (Sex::Female, Age(1)));
            }
            other => panic!("expected a missing cell, got {other:?}"),
        }
    }

    #[test]
    fn negative_and_nan_values_are_refused_with_their_position() {
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let mut r = full(&["A"], 1, &[2020]);
            r[3].value = bad;
            match Population::from_records(r) {
                Err(PopulationError::Invalid { record, .. }) => assert_eq!(record, Some(3)),
                other => panic!("expected an invalid value, got {other:?}"),
            }
        }
    }
}
