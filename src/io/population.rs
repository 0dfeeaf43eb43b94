//! From a long table to a [`Population`]: finding the area, sex, age and year columns,
//! normalising their codes, and skipping total rows.

use super::error::DataError;
use super::labels::{is_total, parse_age, parse_sex, parse_year, role_of, Label, Role};
use super::table::{Column, LongTable};
use crate::population::{Age, Population, PopulationError, Record, Sex, Year};
use crate::FastMap as HashMap;
use std::collections::BTreeMap;

/// What was left out of a table on the way to a population: total rows, by the column
/// and label that made them totals. Never summed in; reported so the user can see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Rows skipped per (column, label).
    pub totals: BTreeMap<(String, String), usize>,
}

impl Skipped {
    /// Number of rows skipped.
    pub fn rows(&self) -> usize {
        self.totals.values().sum()
    }

    /// One line for the user, or `None` when nothing was skipped.
    pub fn message(&self, file: &str) -> Option<String> {
        if self.totals.is_empty() {
            return None;
        }
        let parts: Vec<String> = self
            .totals
            .iter()
            .map(|((c, l), n)| format!("{c} `{l}`: {n}"))
            .collect();
        Some(format!(
            "{file}: skipped {} total rows, not summed in ({})",
            self.rows(),
            parts.join(", ")
        ))
    }
}

/// Where each role sits among a table's columns.
struct Roles<'a> {
    area: &'a Column,
    sex: &'a Column,
    age: &'a Column,
    year: &'a Column,
}

/// The columns of a table that play each role, if it has all four.
fn roles(t: &LongTable) -> Result<Roles<'_>, DataError> {
    let mut found: [Option<&Column>; 4] = [None; 4];
    let order = [Role::Area, Role::Sex, Role::Age, Role::Year];
    for c in &t.columns {
        let role = role_of(&c.name).or_else(|| c.label.as_deref().and_then(role_of));
        match role {
            Some(Role::Content) if c.levels.len() > 1 => {
                return Err(DataError::file(
                    &t.source,
                    format!(
                        "the table holds {} different statistics; a population table must hold one",
                        c.levels.len()
                    ),
                )
                .column(c.name.clone()))
            }
            Some(r) if r != Role::Content => {
                let k = order.iter().position(|o| *o == r).unwrap_or(0);
                if let Some(prev) = found[k] {
                    return Err(DataError::file(
                        &t.source,
                        format!(
                            "two columns are {}: `{}` and `{}`",
                            r.name(),
                            prev.name,
                            c.name
                        ),
                    ));
                }
                found[k] = Some(c);
            }
            _ => {}
        }
    }
    let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
    let get = |k: usize| {
        found[k].ok_or_else(|| {
            DataError::file(
                &t.source,
                format!(
                    "no {} column (the table has: {}, {})",
                    order[k].name(),
                    names.join(", "),
                    t.value_name
                ),
            )
        })
    };
    Ok(Roles {
        area: get(0)?,
        sex: get(1)?,
        age: get(2)?,
        year: get(3)?,
    })
}

/// Whether a table is meant as a population table: it has area, sex, age and year
/// columns, or its value column is called `population`. (A table of the second kind
/// that lacks one of the four columns is then an error, not a generic table.)
pub fn is_population_shaped(t: &LongTable) -> bool {
    t.value_name.eq_ignore_ascii_case("population") || roles(t).is_ok()
}

/// Parses each level of a column once, trying the code first and then the label.
fn parse_levels<T: Copy>(
    c: &Column,
    f: impl Fn(&str) -> Option<Label<T>>,
) -> Vec<Option<Label<T>>> {
    (0..c.levels.len())
        .map(|i| f(&c.levels[i]).or_else(|| f(c.level_label(i))))
        .collect()
}

/// Turns a long table into population records, skipping total rows.
///
/// Returns the records, the table row of each record and what was skipped.
///
/// # Errors
/// A [`DataError`] naming the row, column and value for a missing column, an unknown
/// sex code, an age or year that cannot be read, or a missing value.
pub fn population_records(t: &LongTable) -> Result<(Vec<Record>, Vec<usize>, Skipped), DataError> {
    let r = roles(t)?;
    let area_total: Vec<bool> = (0..r.area.levels.len())
        .map(|i| is_total(&r.area.levels[i]) || is_total(r.area.level_label(i)))
        .collect();
    let sexes = parse_levels(r.sex, parse_sex);
    let ages = parse_levels(r.age, parse_age);
    let years = parse_levels(r.year, |s| parse_year(s).map(Label::Value));
    let mut skipped = Skipped::default();
    let mut records = Vec::with_capacity(t.len());
    let mut rows = Vec::with_capacity(t.len());
    let bad = |row: usize, c: &Column, problem: &str| {
        DataError::at(&t.source, t.place(row), problem.to_string())
            .column(c.name.clone())
            .value(c.get(row).to_string())
    };
    let mut total_rows: HashMap<(usize, usize), usize> = HashMap::default();
    for row in 0..t.len() {
        let (ai, si, xi, yi) = (
            r.area.codes[row] as usize,
            r.sex.codes[row] as usize,
            r.age.codes[row] as usize,
            r.year.codes[row] as usize,
        );
        let sex = match sexes[si] {
            Some(Label::Value(s)) => Some(s),
            Some(Label::Total) => None,
            None => {
                return Err(bad(
                    row,
                    r.sex,
                    "not a sex code (expected 1/2, m/f, male/female or miehet/naiset; 0, SSS or Yhteensä for a total)",
                ))
            }
        };
        let age = match ages[xi] {
            Some(Label::Value(a)) => Some(a),
            Some(Label::Total) => None,
            None => {
                return Err(bad(
                    row,
                    r.age,
                    "not an age (expected whole years 0–150 or an open top group such as `100+` or `100 -`)",
                ))
            }
        };
        let year = match years[yi] {
            Some(Label::Value(y)) => y,
            _ => {
                return Err(bad(
                    row,
                    r.year,
                    "not a year (expected four digits such as 2024)",
                ))
            }
        };
        // The total's column (0 area, 1 sex, 2 age) and level.
        let total_of = if area_total[ai] {
            Some((0, ai))
        } else if sex.is_none() {
            Some((1, si))
        } else if age.is_none() {
            Some((2, xi))
        } else {
            None
        };
        if let Some(key) = total_of {
            // Counted by (column, level) and named once at the end.
            *total_rows.entry(key).or_insert(0usize) += 1;
            continue;
        }
        let value = t.values[row].ok_or_else(|| {
            DataError::at(&t.source, t.place(row), "the population is missing")
                .column(t.value_column(row).to_string())
        })?;
        let (Some(sex), Some(age)) = (sex, age) else {
            continue;
        };
        records.push(Record {
            area: r.area.levels[ai].clone(),
            sex,
            age,
            year: Year(year),
            value,
        });
        rows.push(row);
    }
    for ((role, level), n) in total_rows {
        let c = [r.area, r.sex, r.age][role];
        *skipped
            .totals
            .entry((c.name.clone(), c.level_label(level).to_string()))
            .or_default() += n;
    }
    Ok((records, rows, skipped))
}

/// The largest population of one area, sex, age and year kunta accepts: no country
/// has a billion people of one age, and sums of such cells stay far from overflow.
pub const MAX_CELL: f64 = 1e9;

/// Like [`population_records`], and checks every value (a non-negative finite number
/// of at most [`MAX_CELL`])
/// and that no (area, sex, age, year) cell is given twice. Does not require the
/// records to fill a grid: a table over several years may lack an area in some year.
///
/// # Errors
/// As [`population_records`], and for a negative or non-finite population or a cell
/// given twice (naming both rows).
pub fn checked_records(t: &LongTable) -> Result<(Vec<Record>, Skipped), DataError> {
    let (records, rows, skipped) = population_records(t)?;
    // A record's area as the first code with its text (a PX or JSON-stat file may
    // list an area twice).
    let area = {
        let c = roles(t)?.area;
        let mut first: HashMap<&str, u32> = HashMap::default();
        let canon: Vec<u32> = (0..c.levels.len() as u32)
            .map(|k| *first.entry(c.levels[k as usize].as_str()).or_insert(k))
            .collect();
        move |row: usize| canon[c.codes[row] as usize]
    };
    // Where the (area, sex, age, year) grid is not much larger than the table, each
    // cell's first row is kept in a flat array; otherwise in a map.
    let (mut y0, mut y1, mut top, mut areas) = (i32::MAX, i32::MIN, 0usize, 0usize);
    for (r, &row) in records.iter().zip(&rows) {
        (y0, y1) = (y0.min(r.year.0), y1.max(r.year.0));
        top = top.max(usize::from(r.age.0));
        areas = areas.max(area(row) as usize + 1);
    }
    let span = usize::try_from(i64::from(y1) - i64::from(y0) + 1).unwrap_or(0);
    let grid = areas
        .checked_mul(2 * (top + 1))
        .and_then(|c| c.checked_mul(span))
        .filter(|c| *c <= 4 * records.len() + 1024)
        .filter(|_| rows.last().is_none_or(|r| *r < u32::MAX as usize));
    let mut dense: Vec<u32> = vec![0; grid.unwrap_or(0)];
    let mut seen: HashMap<(u32, Sex, Age, Year), usize> = HashMap::default();
    let mut first_of = |r: &Record, row: usize| -> Option<usize> {
        if grid.is_some() {
            let cell = ((area(row) as usize * 2 + r.sex.index()) * (top + 1)
                + usize::from(r.age.0))
                * span
                + (r.year.0 - y0) as usize;
            let was = std::mem::replace(&mut dense[cell], row as u32 + 1);
            (was > 0).then(|| was as usize - 1)
        } else {
            seen.insert((area(row), r.sex, r.age, r.year), row)
        }
    };
    for (i, r) in records.iter().enumerate() {
        if !(r.value.is_finite() && r.value >= 0.0) {
            return Err(DataError::at(
                &t.source,
                t.place(rows[i]),
                "the population must be a non-negative number",
            )
            .column(t.value_column(rows[i]).to_string())
            .value(r.value.to_string()));
        }
        if r.value > MAX_CELL {
            return Err(DataError::at(
                &t.source,
                t.place(rows[i]),
                "not a plausible number of persons of one area, sex and age (at most 1e9)",
            )
            .column(t.value_column(rows[i]).to_string())
            .value(r.value.to_string()));
        }
        if let Some(first) = first_of(r, rows[i]) {
            return Err(DataError::at(
                &t.source,
                t.place(rows[i]),
                format!(
                    "area `{}`, {}, age {}, year {} is given twice (first at {})",
                    r.area,
                    r.sex,
                    r.age,
                    r.year,
                    t.place(first)
                ),
            ));
        }
    }
    Ok((records, skipped))
}

/// Turns a long table into a [`Population`], skipping total rows.
///
/// # Errors
/// As [`checked_records`], and for a cell of the area × sex × age × year grid that no
/// row gives.
pub fn to_population(t: &LongTable) -> Result<(Population, Skipped), DataError> {
    to_population_of(t, None)
}

/// Like [`to_population`], keeping only the areas of `keep` when given (one
/// municipality out of a national table).
///
/// # Errors
/// As [`to_population`], and for an area of `keep` the table does not have (naming it
/// and some of the table's areas).
pub fn to_population_of(
    t: &LongTable,
    keep: Option<&[String]>,
) -> Result<(Population, Skipped), DataError> {
    let (mut records, skipped) = checked_records(t)?;
    if let Some(keep) = keep {
        let mut present: Vec<&str> = records.iter().map(|r| r.area.as_str()).collect();
        present.sort_unstable();
        present.dedup();
        if let Some(a) = keep
            .iter()
            .find(|a| present.binary_search(&a.as_str()).is_err())
        {
            let some = present[..present.len().min(6)].join("`, `");
            return Err(DataError::file(
                &t.source,
                format!(
                    "area `{a}` of `population.areas` is not in the table (its {} areas include `{some}`{})",
                    present.len(),
                    if present.len() > 6 { ", …" } else { "" }
                ),
            ));
        }
        records.retain(|r| keep.contains(&r.area));
    }
    let pop = Population::from_records(records).map_err(|e| match e {
        PopulationError::Empty => DataError::file(
            &t.source,
            format!(
                "the table has no population rows{}",
                if skipped.rows() > 0 { " (all rows are totals)" } else { "" }
            ),
        ),
        PopulationError::Missing {
            area,
            sex,
            age,
            year,
        } => DataError::file(
            &t.source,
            format!(
                "no population for area `{area}`, {sex}, age {age}, year {year}: every area, sex, age from 0 to the top age and year needs a row"
            ),
        ),
        other => DataError::file(&t.source, other.to_string()),
    })?;
    Ok((pop, skipped))
}
