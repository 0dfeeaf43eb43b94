//! Rate tables: fertility, mortality and migration inputs by optional area, optional
//! year, optional sex and age (MODEL.md §2, "Rates and scales").
//!
//! - A table without an `area` column applies to every area; one without a `year`
//!   column to every year; one without `sex` to both sexes.
//! - Years after a table's last year repeat its last year; a year before its first
//!   year is an error.
//! - Inside a table's age range every age must have a row: a missing cell is an error,
//!   not zero. Outside the range the table gives nothing (fertility 0, no movers).
//! - Ages are ages at the start of the year; the birth index (`s`, `-1`, "alle 0")
//!   stands for children born during the year.
//! - Values are divided by the table's `scale` (1000 for "per 1000").

use crate::population::Sex;
use crate::FastMap as HashMap;
use std::fmt;

/// An age index of a flow: an age at the start of the year, or the birth index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AgeIndex {
    /// Born during the year (`s`, `-1`).
    Birth,
    /// Age in completed years at the start of the year.
    Age(u16),
}

impl AgeIndex {
    /// The index at position `slot` of a flow array over `n` ages: ages `0..n`, then
    /// the birth index at `n`.
    pub fn of_slot(slot: usize, n: usize) -> AgeIndex {
        if slot == n {
            AgeIndex::Birth
        } else {
            AgeIndex::Age(slot as u16)
        }
    }
}

impl fmt::Display for AgeIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgeIndex::Birth => f.write_str("s (born during the year)"),
            AgeIndex::Age(a) => write!(f, "{a}"),
        }
    }
}

/// One row of a rate table as read.
#[derive(Debug, Clone, PartialEq)]
pub struct RateRow {
    /// Area code, if the table has an area column.
    pub area: Option<String>,
    /// Year, if the table has a year column.
    pub year: Option<i32>,
    /// Sex, if the table has a sex column.
    pub sex: Option<Sex>,
    /// Age index, if the table has an age column.
    pub age: Option<AgeIndex>,
    /// The value, before scaling.
    pub value: f64,
}

/// Why a rate table is unusable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RateError {
    /// Rows disagree on which columns they have.
    #[error("row {row} lacks a column the other rows have")]
    Ragged {
        /// Position of the row.
        row: usize,
    },
    /// The same cell twice.
    #[error("rows {first} and {second} give the same cell")]
    Duplicate {
        /// First row.
        first: usize,
        /// Second row.
        second: usize,
    },
    /// A cell inside the table's range with no row.
    #[error("no value for {cell}: every cell inside the table's range ({range}) needs a row")]
    Missing {
        /// The cell, spelled out.
        cell: String,
        /// The table's range of years and ages, spelled out.
        range: String,
    },
    /// Years missing between two of the table's years.
    #[error("the table has rows for {before} and {after} but none for the years between: every year from its first to its last needs rows (years after the last hold the last year's rates)")]
    YearGap {
        /// The year before the gap.
        before: i32,
        /// The year after the gap.
        after: i32,
    },
    /// A year before the table's first year.
    #[error("the table starts in {first}, so it has no rates for {year}")]
    YearBefore {
        /// The year asked for.
        year: i32,
        /// The table's first year.
        first: i32,
    },
    /// An area code with no population.
    #[error("area `{0}` has no population")]
    UnknownArea(String),
    /// No rows.
    #[error("the table is empty")]
    Empty,
}

/// A rate table, dense over its keys, ready to be looked up by area, year, sex and age.
#[derive(Debug, Clone, PartialEq)]
pub struct RateTable {
    /// Area of each area slot; `None` when the table applies to every area.
    areas: Option<Vec<usize>>,
    /// The area codes the table was built for, in their order (by-area tables only):
    /// a table only fits a population with these areas in this order.
    codes: Option<Vec<String>>,
    /// Slot of each population area (`usize::MAX` where the table lacks it).
    slot_of_area: Vec<usize>,
    /// Years, sorted; `None` when the table applies to every year.
    years: Option<Vec<i32>>,
    by_sex: bool,
    /// Ages covered `min..=max`, and whether the birth index has rows; `None` for a
    /// table without ages (e.g. yearly totals).
    ages: Option<(u16, u16)>,
    birth: bool,
    values: Vec<f64>,
    scale: f64,
}

impl RateTable {
    /// Builds a table from rows. `areas` are the population's area codes (a table's
    /// area codes must be among them); `scale` divides every value.
    ///
    /// # Errors
    /// [`RateError`] for rows with different columns, an unknown area, a duplicate or
    /// missing cell, or no rows.
    pub fn from_rows(
        rows: &[RateRow],
        scale: f64,
        areas: &[String],
    ) -> Result<RateTable, RateError> {
        let positions: HashMap<&str, usize> = areas
            .iter()
            .enumerate()
            .map(|(i, a)| (a.as_str(), i))
            .collect();
        let area_index = |code: &str| positions.get(code).copied();
        let first = rows.first().ok_or(RateError::Empty)?;
        let shape = (
            first.area.is_some(),
            first.year.is_some(),
            first.sex.is_some(),
            first.age.is_some(),
        );
        for (i, r) in rows.iter().enumerate() {
            if (
                r.area.is_some(),
                r.year.is_some(),
                r.sex.is_some(),
                r.age.is_some(),
            ) != shape
            {
                return Err(RateError::Ragged { row: i });
            }
        }
        let area_slots = if shape.0 {
            let mut slots: Vec<usize> = Vec::new();
            for r in rows {
                let code = r.area.as_deref().unwrap_or_default();
                let a = area_index(code).ok_or_else(|| RateError::UnknownArea(code.into()))?;
                if !slots.contains(&a) {
                    slots.push(a);
                }
            }
            Some(slots)
        } else {
            None
        };
        let years = shape.1.then(|| {
            let mut y: Vec<i32> = rows.iter().filter_map(|r| r.year).collect();
            y.sort_unstable();
            y.dedup();
            y
        });
        if let Some(w) = years
            .iter()
            .flat_map(|y| y.windows(2))
            .find(|w| w[1] > w[0] + 1)
        {
            return Err(RateError::YearGap {
                before: w[0],
                after: w[1],
            });
        }
        let ages = if shape.3 {
            let numeric = rows.iter().filter_map(|r| match r.age {
                Some(AgeIndex::Age(a)) => Some(a),
                _ => None,
            });
            let (lo, hi) = numeric.fold((u16::MAX, 0), |(lo, hi), a| (lo.min(a), hi.max(a)));
            Some(if lo > hi { (0, 0) } else { (lo, hi) })
        } else {
            None
        };
        let birth = rows.iter().any(|r| r.age == Some(AgeIndex::Birth));
        let has_numeric = rows.iter().any(|r| matches!(r.age, Some(AgeIndex::Age(_))));
        let mut slot_of_area = vec![usize::MAX; areas.len()];
        for (slot, a) in area_slots.iter().flatten().enumerate() {
            slot_of_area[*a] = slot;
        }
        let mut t = RateTable {
            slot_of_area,
            codes: area_slots.is_some().then(|| areas.to_vec()),
            areas: area_slots,
            years,
            by_sex: shape.2,
            ages: if has_numeric {
                ages
            } else {
                shape.3.then_some((1, 0))
            },
            birth,
            values: Vec::new(),
            scale,
        };
        t.values = vec![f64::NAN; t.len()];
        let mut origin = vec![usize::MAX; t.values.len()];
        let area_slot: HashMap<usize, usize> = t
            .areas
            .iter()
            .flatten()
            .enumerate()
            .map(|(slot, a)| (*a, slot))
            .collect();
        for (i, r) in rows.iter().enumerate() {
            let a = r
                .area
                .as_deref()
                .and_then(&area_index)
                .map_or(0, |a| area_slot[&a]);
            let y = match (&t.years, r.year) {
                (Some(ys), Some(y)) => ys.binary_search(&y).unwrap_or(0),
                _ => 0,
            };
            let k = t.flat(a, y, r.sex, r.age);
            if origin[k] != usize::MAX {
                return Err(RateError::Duplicate {
                    first: origin[k],
                    second: i,
                });
            }
            origin[k] = i;
            t.values[k] = r.value;
        }
        if let Some(k) = t.values.iter().position(|v| v.is_nan()) {
            return Err(RateError::Missing {
                cell: t.describe(k, areas),
                range: t.range(),
            });
        }
        Ok(t)
    }

    fn n_age_slots(&self) -> usize {
        match self.ages {
            None => 1,
            Some((lo, hi)) => {
                let numeric = if lo > hi { 0 } else { usize::from(hi - lo) + 1 };
                numeric + usize::from(self.birth)
            }
        }
    }

    fn len(&self) -> usize {
        self.areas.as_ref().map_or(1, Vec::len)
            * self.years.as_ref().map_or(1, Vec::len)
            * if self.by_sex { 2 } else { 1 }
            * self.n_age_slots()
    }

    fn age_slot(&self, age: Option<AgeIndex>) -> Option<usize> {
        match (self.ages, age) {
            (None, _) | (_, None) => Some(0),
            (Some((lo, hi)), Some(AgeIndex::Age(a))) => {
                (a >= lo && a <= hi).then(|| usize::from(a - lo))
            }
            (Some(_), Some(AgeIndex::Birth)) => self.birth.then(|| self.n_age_slots() - 1),
        }
    }

    fn flat(
        &self,
        area_slot: usize,
        year_slot: usize,
        sex: Option<Sex>,
        age: Option<AgeIndex>,
    ) -> usize {
        let ny = self.years.as_ref().map_or(1, Vec::len);
        let ns = if self.by_sex { 2 } else { 1 };
        let s = if self.by_sex {
            sex.map_or(0, Sex::index)
        } else {
            0
        };
        ((area_slot * ny + year_slot) * ns + s) * self.n_age_slots()
            + self.age_slot(age).unwrap_or(0)
    }

    /// The table's years and ages, spelled out: `years 2024–2026, ages 15–49`.
    fn range(&self) -> String {
        let mut parts = Vec::new();
        if let Some(ys) = self.years.as_ref().filter(|y| !y.is_empty()) {
            parts.push(format!("years {}–{}", ys[0], ys[ys.len() - 1]));
        }
        if let Some((lo, hi)) = self.ages.filter(|(lo, hi)| lo <= hi) {
            parts.push(format!("ages {lo}–{hi}"));
        }
        if self.birth {
            parts.push("the birth index".into());
        }
        if parts.is_empty() {
            "every key".into()
        } else {
            parts.join(", ")
        }
    }

    fn describe(&self, k: usize, codes: &[String]) -> String {
        let na = self.n_age_slots();
        let ns = if self.by_sex { 2 } else { 1 };
        let ny = self.years.as_ref().map_or(1, Vec::len);
        let age_slot = k % na;
        let r = k / na;
        let s = r % ns;
        let r = r / ns;
        let y = r % ny;
        let a = r / ny;
        let mut parts = Vec::new();
        if let Some(areas) = &self.areas {
            parts.push(format!("area `{}`", codes[areas[a]]));
        }
        if let Some(years) = &self.years {
            parts.push(format!("year {}", years[y]));
        }
        if self.by_sex {
            parts.push(Sex::ALL[s].to_string());
        }
        if let Some((lo, _)) = self.ages {
            let numeric = self.n_age_slots() - usize::from(self.birth);
            if age_slot < numeric {
                parts.push(format!("age {}", usize::from(lo) + age_slot));
            } else {
                parts.push("the birth index".into());
            }
        }
        parts.join(", ")
    }

    /// The table's first and last year, if it has a year column.
    pub fn year_range(&self) -> Option<(i32, i32)> {
        let y = self.years.as_ref()?;
        Some((*y.first()?, *y.last()?))
    }

    /// The ages the table covers, `(min, max)`, if it has an age column with ages.
    pub fn age_range(&self) -> Option<(u16, u16)> {
        self.ages.filter(|(lo, hi)| lo <= hi)
    }

    /// Whether the table has a row for the birth index.
    pub fn has_birth(&self) -> bool {
        self.birth
    }

    /// The slot of year `year`: the last table year at or before it.
    ///
    /// # Errors
    /// [`RateError::YearBefore`] for a year before the table's first year.
    pub fn year_slot(&self, year: i32) -> Result<usize, RateError> {
        match &self.years {
            None => Ok(0),
            Some(ys) => match ys.partition_point(|y| *y <= year) {
                0 => Err(RateError::YearBefore { year, first: ys[0] }),
                n => Ok(n - 1),
            },
        }
    }

    /// The scaled value for an area (by population position), year slot, sex and age;
    /// `None` outside the table's age range or for an area the table does not cover.
    pub fn get(&self, area: usize, year_slot: usize, sex: Sex, age: AgeIndex) -> Option<f64> {
        let a = match &self.areas {
            None => 0,
            Some(_) => *self.slot_of_area.get(area).filter(|s| **s != usize::MAX)?,
        };
        self.age_slot(Some(age))?;
        Some(self.values[self.flat(a, year_slot, Some(sex), Some(age))] / self.scale)
    }

    /// Whether the table has an area column (otherwise it applies to every area).
    pub fn by_area(&self) -> bool {
        self.areas.is_some()
    }

    /// Whether the table covers an area (always, for a table without areas).
    pub fn covers_area(&self, area: usize) -> bool {
        self.areas.is_none()
            || self
                .slot_of_area
                .get(area)
                .is_some_and(|s| *s != usize::MAX)
    }

    /// The area codes a table by area was built for, in the order its positions
    /// refer to (`None` for a table that applies to every area).
    pub fn built_for(&self) -> Option<&[String]> {
        self.codes.as_deref()
    }

    /// Every scaled value, for range checks.
    pub fn scaled_values(&self) -> impl Iterator<Item = f64> + '_ {
        self.values.iter().map(move |v| v / self.scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(area: Option<&str>, year: Option<i32>, age: u16, value: f64) -> RateRow {
        RateRow {
            area: area.map(str::to_string),
            year,
            sex: None,
            age: Some(AgeIndex::Age(age)),
            value,
        }
    }

    fn areas() -> Vec<String> {
        vec!["A".into(), "B".into()]
    }

    #[test]
    fn carry_forward_and_years_before_first() {
        let rows = [
            row(None, Some(2020), 15, 50.0),
            row(None, Some(2021), 15, 60.0),
        ];
        let t = RateTable::from_rows(&rows, 1000.0, &areas()).unwrap();
        assert_eq!(
            t.get(
                1,
                t.year_slot(2020).unwrap(),
                Sex::Female,
                AgeIndex::Age(15)
            ),
            Some(0.05)
        );
        assert_eq!(
            t.get(
                0,
                t.year_slot(2030).unwrap(),
                Sex::Female,
                AgeIndex::Age(15)
            ),
            Some(0.06)
        );
        assert_eq!(t.get(0, 0, Sex::Female, AgeIndex::Age(14)), None);
        assert_eq!(
            t.year_slot(2019),
            Err(RateError::YearBefore {
                year: 2019,
                first: 2020
            })
        );
    }

    #[test]
    fn a_gap_between_years_is_refused() {
        let rows = [
            row(None, Some(2020), 15, 50.0),
            row(None, Some(2021), 15, 50.0),
            row(None, Some(2023), 15, 60.0),
        ];
        assert_eq!(
            RateTable::from_rows(&rows, 1000.0, &areas()),
            Err(RateError::YearGap {
                before: 2021,
                after: 2023
            })
        );
    }

    #[test]
    fn missing_cell_and_unknown_area() {
        let rows = [row(Some("A"), None, 15, 1.0), row(Some("A"), None, 17, 1.0)];
        let e = RateTable::from_rows(&rows, 1.0, &areas()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no value for area `A`, age 16: every cell inside the table's range (ages 15–17) needs a row"
        );
        let rows = [row(Some("Z"), None, 15, 1.0)];
        assert_eq!(
            RateTable::from_rows(&rows, 1.0, &areas()).unwrap_err(),
            RateError::UnknownArea("Z".into())
        );
        let rows = [row(Some("A"), None, 15, 1.0), row(Some("A"), None, 15, 2.0)];
        assert!(matches!(
            RateTable::from_rows(&rows, 1.0, &areas()),
            Err(RateError::Duplicate {
                first: 0,
                second: 1
            })
        ));
    }

    #[test]
    fn birth_index_and_sex() {
        let rows: Vec<RateRow> = Sex::ALL
            .iter()
            .flat_map(|s| {
                [AgeIndex::Birth, AgeIndex::Age(0), AgeIndex::Age(1)].map(|age| RateRow {
                    area: None,
                    year: None,
                    sex: Some(*s),
                    age: Some(age),
                    value: if *s == Sex::Male { 2.0 } else { 1.0 },
                })
            })
            .collect();
        let t = RateTable::from_rows(&rows, 1.0, &areas()).unwrap();
        assert!(t.has_birth());
        assert_eq!(t.get(0, 0, Sex::Male, AgeIndex::Birth), Some(2.0));
        assert_eq!(t.get(1, 0, Sex::Female, AgeIndex::Age(1)), Some(1.0));
    }
}
