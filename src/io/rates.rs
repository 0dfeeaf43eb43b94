//! From a long table to rate rows: the optional area, year and sex columns, the age
//! column with its birth index (`s`, `-1`, "alle 0"), and the value.

use super::error::DataError;
use super::labels::{parse_age, parse_sex, parse_year, role_of, Label, Role};
use super::table::{Column, LongTable};
use crate::rates::{AgeIndex, RateRow};

/// Which key columns a kind of rate table must, may or must not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// A sex column is required.
    pub sex: bool,
    /// An age column is required (`false`: ages are ignored, as for yearly totals).
    pub age: bool,
    /// Values may be negative (net migration counts).
    pub signed: bool,
}

/// Parses an age index: whole years, an open top group, or the birth index (`s`,
/// `-1`, `alle 0`, `born`).
pub fn parse_age_index(label: &str) -> Option<AgeIndex> {
    let l = label.trim().to_lowercase();
    if matches!(
        l.as_str(),
        "s" | "-1" | "alle 0" | "alle 0 v" | "born" | "birth"
    ) {
        return Some(AgeIndex::Birth);
    }
    match parse_age(&l)? {
        Label::Value(a) => Some(AgeIndex::Age(a.0)),
        Label::Total => None,
    }
}

/// Whether a table has a column of the given role (`area`, `year`, `sex`, `age`).
pub fn has_role(t: &LongTable, role: Role) -> bool {
    find(t, role).is_some()
}

fn find(t: &LongTable, role: Role) -> Option<&Column> {
    t.columns
        .iter()
        .find(|c| role_of(&c.name).or_else(|| c.label.as_deref().and_then(role_of)) == Some(role))
}

/// Reads rate rows from a long table. `what` names the table in messages
/// (`fertility`, `mortality`, …).
///
/// # Errors
/// A [`DataError`] naming the row, column and value for a required column that is
/// missing, a sex, age or year that cannot be read, a total row, or a missing value.
pub fn rate_rows(t: &LongTable, shape: Shape, what: &str) -> Result<Vec<RateRow>, DataError> {
    let need = |role: Role| {
        find(t, role).ok_or_else(|| {
            let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
            DataError::file(
                &t.source,
                format!(
                    "a {what} table needs a {} column (the table has: {}, {})",
                    role.name(),
                    names.join(", "),
                    t.value_name
                ),
            )
        })
    };
    let area = find(t, Role::Area);
    let year = find(t, Role::Year);
    let sex = if shape.sex {
        Some(need(Role::Sex)?)
    } else {
        None
    };
    let age = if shape.age {
        Some(need(Role::Age)?)
    } else {
        None
    };
    let bad = |row: usize, c: &Column, problem: &str| {
        DataError::at(&t.source, t.place(row), problem.to_string())
            .column(c.name.clone())
            .value(c.get(row).to_string())
    };
    let mut rows = Vec::with_capacity(t.len());
    for row in 0..t.len() {
        let value = t.values[row].ok_or_else(|| {
            DataError::at(
                &t.source,
                t.place(row),
                format!("the {what} value is missing"),
            )
            .column(t.value_column(row).to_string())
        })?;
        if !value.is_finite() || (value < 0.0 && !shape.signed) {
            let must = if shape.signed {
                "a finite number"
            } else {
                "a non-negative number"
            };
            return Err(DataError::at(
                &t.source,
                t.place(row),
                format!("a {what} value must be {must}"),
            )
            .column(t.value_column(row).to_string())
            .value(value.to_string()));
        }
        let y = match year {
            None => None,
            Some(c) => Some(
                parse_year(c.get(row))
                    .ok_or_else(|| bad(row, c, "not a year (expected four digits such as 2024)"))?,
            ),
        };
        let s = match sex {
            None => None,
            Some(c) => match parse_sex(c.get(row)) {
                Some(Label::Value(s)) => Some(s),
                Some(Label::Total) => {
                    return Err(bad(row, c, "a total row has no place in a rate table"))
                }
                None => {
                    return Err(bad(
                        row,
                        c,
                        "not a sex code (expected 1/2, m/f, male/female or miehet/naiset)",
                    ))
                }
            },
        };
        let x = match age {
            None => None,
            Some(c) => Some(parse_age_index(c.get(row)).ok_or_else(|| {
                bad(
                    row,
                    c,
                    "not an age (expected whole years, or `s` / `-1` for children born during the year)",
                )
            })?),
        };
        rows.push(RateRow {
            area: area.map(|c| c.get(row).to_string()),
            year: y,
            sex: s,
            age: x,
            value,
        });
    }
    Ok(rows)
}

/// Rows of yearly totals read from a table that may repeat each total on several rows
/// (one per sex and age of a profile, as some models store them): rows with the same
/// area and year must agree and are merged.
///
/// # Errors
/// A [`DataError`] for two different totals of the same area and year, or as
/// [`rate_rows`].
pub fn total_rows(t: &LongTable, what: &str) -> Result<Vec<RateRow>, DataError> {
    let rows = rate_rows(
        t,
        Shape {
            sex: false,
            age: false,
            signed: false,
        },
        what,
    )?;
    type Key<'a> = (Option<&'a str>, Option<i32>);
    let mut seen: std::collections::HashMap<Key<'_>, (usize, f64)> =
        std::collections::HashMap::new();
    let mut out = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        match seen.get(&(r.area.as_deref(), r.year)) {
            Some((_, v)) if *v == r.value => {}
            Some((first, _)) => {
                return Err(DataError::at(
                    &t.source,
                    t.place(i),
                    format!(
                        "a different {what} for the same area and year as {}",
                        t.place(*first)
                    ),
                )
                .column(t.value_column(i).to_string())
                .value(r.value.to_string()))
            }
            None => {
                seen.insert((r.area.as_deref(), r.year), (i, r.value));
                out.push(r.clone());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::csv::{read, CsvOptions};

    #[test]
    fn mortality_rows_with_birth_index() {
        let t = read(
            b"year,area,sex,age,deaths_per_1000\n2020,1,1,s,1.5\n2020,1,1,0,0.3\n",
            "m.csv",
            &CsvOptions {
                value_column: Some("deaths_per_1000".into()),
                ..CsvOptions::default()
            },
        )
        .unwrap();
        let rows = rate_rows(
            &t,
            Shape {
                sex: true,
                age: true,
                signed: false,
            },
            "mortality",
        )
        .unwrap();
        assert_eq!(rows[0].age, Some(AgeIndex::Birth));
        assert_eq!(rows[1].age, Some(AgeIndex::Age(0)));
        assert_eq!(rows[0].area.as_deref(), Some("1"));
        assert_eq!(rows[0].value, 1.5);
    }

    #[test]
    fn repeated_totals_merge_and_conflicts_are_named() {
        let opts = CsvOptions {
            value_column: Some("total".into()),
            ..CsvOptions::default()
        };
        let t = read(
            b"area,sex,age,total\n1,1,0,100\n1,1,1,100\n2,1,0,50\n",
            "t.csv",
            &opts,
        )
        .unwrap();
        assert_eq!(total_rows(&t, "total").unwrap().len(), 2);
        let t = read(b"area,sex,age,total\n1,1,0,100\n1,1,1,90\n", "t.csv", &opts).unwrap();
        let e = total_rows(&t, "total").unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
    }
}
