//! The demographic inputs of a scenario file: fertility, mortality and its
//! improvement, the migration flows, the control totals of an alignment and the
//! spread of the migration rate, each table read and checked against the population.

use super::file::{self, MigrationSection, NumberOrTable, ScenarioFile};
use super::{year_path, Loader};
use crate::io::error::DataError;
use crate::io::rates::{rate_rows, Shape};
use crate::io::to_population;
use crate::population::{Population, Sex};
use crate::projection::{Direction, Flow, FlowForm, ProjectionInputs};
use crate::rates::{AgeIndex, RateRow, RateTable};
use crate::scenario::ControlTotals;

/// A table `[area], [sex], age, value` that holds for every year (an improvement,
/// a migration rate spread): read, each value checked by `valid` (a bad one named
/// by line, column and value with `invalid`), and a year column refused. Returns the
/// table's source and its values; every problem goes to the loader.
pub(super) fn yearless_age_table(
    l: &mut Loader<'_>,
    rel: &str,
    what: &str,
    values: &str,
    valid: fn(f64) -> bool,
    invalid: &str,
    areas: &[String],
) -> Option<(String, RateTable)> {
    let t = l.table(rel, None)?;
    let shape = Shape {
        sex: crate::io::rates::has_role(&t, crate::io::labels::Role::Sex),
        age: true,
        signed: false,
    };
    let rows = match rate_rows(&t, shape, what) {
        Ok(r) => r,
        Err(e) => {
            l.problem(e.to_string());
            return None;
        }
    };
    if crate::io::rates::has_role(&t, crate::io::labels::Role::Year) {
        let article = if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        l.problem(format!(
            "{}: {article} {what} table is by `[area], [sex], age`; its {values} hold every year, so it takes no year column",
            t.source
        ));
        return None;
    }
    if let Some(i) = rows.iter().position(|r| !valid(r.value)) {
        l.problem(
            DataError::at(&t.source, t.place(i), invalid)
                .column(t.value_column(i).to_string())
                .value(rows[i].value.to_string())
                .to_string(),
        );
        return None;
    }
    match RateTable::from_rows(&rows, 1.0, areas) {
        Ok(r) => Some((t.source.clone(), r)),
        Err(e) => {
            l.problem(format!("{}: {e}", t.source));
            None
        }
    }
}

/// `[uncertainty] migration_rate_sd`, a number or a table `[area], [sex], age, sd`,
/// by `(area, sex, age)` of the population (ages the table leaves out get 0).
pub(super) fn load_migration_rate_sd(
    l: &mut Loader<'_>,
    key: &NumberOrTable,
    pop: &Population,
) -> Option<ndarray::Array3<f64>> {
    let dim = (pop.areas().len(), 2, pop.n_ages());
    let rel = match key {
        // A number is checked with the other keys.
        NumberOrTable::Rate(r) => return Some(ndarray::Array3::from_elem(dim, *r)),
        NumberOrTable::Table(rel) => rel,
    };
    let what = "migration rate spread";
    let (source, table) = yearless_age_table(
        l,
        rel,
        what,
        "spreads",
        |v| v >= 0.0 && v.is_finite(),
        "a spread must be a number, 0 or more",
        pop.areas(),
    )?;
    // An area-keyed table names every area: a missing one would silently get no
    // spread.
    if let Some(a) = (0..dim.0).find(|a| !table.covers_area(*a)) {
        l.problem(format!(
            "{source}: the {what} table has no rows for area `{}` (give every area, or a table without an area column)",
            pop.areas()[a]
        ));
        return None;
    }
    // Ages above the table's top take the top's value (a table up to `85` serves
    // a population to 100); ages below its first are 0.
    let top = table.age_range().map_or(0, |(_, hi)| usize::from(hi));
    Some(ndarray::Array3::from_shape_fn(dim, |(a, s, x)| {
        table
            .get(a, 0, Sex::ALL[s], AgeIndex::Age(x.min(top) as u16))
            .unwrap_or(0.0)
    }))
}

/// `[mortality] improvement` as a table `[area], [sex], age, rate`: the mortality
/// table becomes one of every year from the base year to the end year with
/// `q_y = q · (1 − r)^(y − base_year)`, `r` by area, sex and age (MODEL.md §2).
pub(super) fn improved_by_table(
    l: &mut Loader<'_>,
    rel: &str,
    m: &RateTable,
    file: &ScenarioFile,
    areas: &[String],
) -> Option<RateTable> {
    let (_, imp) = yearless_age_table(
        l,
        rel,
        "improvement",
        "rates",
        |v| (0.0..1.0).contains(&v),
        "a yearly improvement must be at least 0 and below 1",
        areas,
    )?;
    let (base, end) = (file.scenario.base_year, file.scenario.end_year);
    let Some((lo, hi)) = m.age_range() else {
        return Some(m.clone());
    };
    let ages: Vec<AgeIndex> = (lo..=hi)
        .map(AgeIndex::Age)
        .chain(m.has_birth().then_some(AgeIndex::Birth))
        .collect();
    let mut out = Vec::new();
    for (a, area) in areas.iter().enumerate() {
        for y in base..=end {
            let Ok(ys) = m.year_slot(y) else { continue };
            for sex in crate::population::Sex::ALL {
                for &age in &ages {
                    let Some(q) = m.get(a, ys, sex, age) else {
                        continue;
                    };
                    // Ages the improvement table leaves out do not improve.
                    let r = imp.get(a, 0, sex, age).unwrap_or(0.0);
                    out.push(RateRow {
                        area: Some(area.clone()),
                        year: Some(y),
                        sex: Some(sex),
                        age: Some(age),
                        value: q * (1.0 - r).powi(y - base),
                    });
                }
            }
        }
    }
    match RateTable::from_rows(&out, 1.0, areas) {
        Ok(t) => Some(t),
        Err(e) => {
            l.problem(format!("{}: {e}", l.source.resolve(rel).display()));
            None
        }
    }
}

pub(super) fn load_alignment(
    l: &mut Loader<'_>,
    a: &file::AlignmentSection,
    pop: &Population,
) -> Option<ControlTotals> {
    let control = l
        .table(&a.control, None)
        .and_then(|t| match to_population(&t) {
            Ok((p, skipped)) => {
                l.notes.extend(skipped.message(&t.source));
                Some(p)
            }
            Err(e) => {
                l.problem(e.to_string());
                None
            }
        })?;
    if control.omega() != pop.omega() {
        l.problem(format!(
            "{}: the control population's top age is {}, the population's {}",
            l.source.resolve(&a.control).display(),
            control.omega(),
            pop.omega()
        ));
        return None;
    }
    let (path, bytes) = l.read_input(&a.parents)?;
    let name = path.display().to_string();
    let pairs = match crate::io::csv::read_pairs(&bytes, &name, "area", "parent") {
        Ok(p) => p,
        Err(e) => {
            l.problem(e.to_string());
            return None;
        }
    };
    let mut parent_of = vec![usize::MAX; pop.areas().len()];
    for (area, parent, line) in pairs {
        let Some(ai) = pop.area_index(&area) else {
            l.problem(format!(
                "{name}: line {line}: area `{area}` has no population"
            ));
            continue;
        };
        let Some(pi) = control.area_index(&parent) else {
            l.problem(format!(
                "{name}: line {line}: parent `{parent}` is not an area of the control population"
            ));
            continue;
        };
        parent_of[ai.0] = pi.0;
    }
    if let Some(a) = parent_of.iter().position(|p| *p == usize::MAX) {
        l.problem(format!("{name}: area `{}` has no parent", pop.areas()[a]));
    }
    if parent_of.contains(&usize::MAX) {
        return None;
    }
    Some(ControlTotals { parent_of, control })
}

/// Reads fertility, mortality and migration; `None` (with problems recorded) if any of
/// them is wrong or if the scenario has neither fertility nor mortality.
pub(super) fn load_inputs(
    l: &mut Loader<'_>,
    file: &ScenarioFile,
    pop: &Population,
) -> Option<ProjectionInputs> {
    let areas = pop.areas();
    let (fert, mort) = match (&file.fertility, &file.mortality) {
        (None, None) => {
            if !file.migration.is_empty() {
                l.key_problem(
                    "migration",
                    "migration needs [fertility] and [mortality] too",
                );
            }
            return None;
        }
        (Some(f), Some(m)) => (f, m),
        (Some(f), None) => {
            l.key_problem("mortality", "[fertility] is given but [mortality] is not");
            l.table(&f.file, f.column.as_deref());
            return None;
        }
        (None, Some(m)) => {
            l.key_problem("fertility", "[mortality] is given but [fertility] is not");
            l.table(&m.file, m.column.as_deref());
            return None;
        }
    };
    let base = file.scenario.base_year;
    let first_year = base + 1;
    let fertility = l.rates(
        &fert.file,
        fert.column.as_deref(),
        Shape {
            sex: false,
            age: true,
            signed: false,
        },
        "fertility",
        fert.scale.unwrap_or(1.0),
        areas,
        None,
    );
    if let Some(f) = &fertility {
        if let Some((lo, hi)) = f.age_range() {
            if lo < 10 || hi > 55 {
                l.problem(format!(
                    "{}: fertility is given for mothers aged {lo}–{hi}; a mother's age must be within 10–55",
                    l.source.resolve(&fert.file).display()
                ));
            }
        }
        check_first_year(l, f, first_year, &fert.file);
    }
    let mortality = l.rates(
        &mort.file,
        mort.column.as_deref(),
        Shape {
            sex: true,
            age: true,
            signed: false,
        },
        "mortality",
        mort.scale.unwrap_or(1.0),
        areas,
        Some((1.0, "probability of dying")),
    );
    if let Some(m) = &mortality {
        match m.age_range() {
            Some((0, hi)) if hi >= pop.omega().0 => {}
            range => l.problem(format!(
                "{}: mortality must cover ages 0 to the population's top age {} (it covers {})",
                l.source.resolve(&mort.file).display(),
                pop.omega(),
                range.map_or("no ages".to_string(), |(lo, hi)| format!("{lo}–{hi}"))
            )),
        }
        check_first_year(l, m, first_year, &mort.file);
    }
    let tfr = fert.tfr.as_ref().and_then(|p| match year_path(p) {
        Ok(p) => Some(p),
        Err(m) => {
            l.key_problem("fertility.tfr", m);
            None
        }
    });
    let mut flows = Vec::new();
    for (k, m) in file.migration.iter().enumerate() {
        flows.extend(load_flow(l, k, m, areas, first_year));
    }
    let boys = fert.boys_share.unwrap_or(0.512);
    if !l.problems.is_empty() || flows.len() != file.migration.len() {
        // Every year's rates are checked below only when every table loaded; what
        // the improvement does to mortality alone is checked here, so that the
        // problem is listed with the others.
        if let (Some(m), Some(NumberOrTable::Rate(r))) = (&mortality, mort.improvement.clone()) {
            let s = &file.scenario;
            let worst = m.scaled_values().fold(0.0f64, f64::max);
            let year = (s.base_year + 1..=s.end_year.min(s.base_year + 200))
                .find(|y| worst * (1.0 - r).powi(y - s.base_year) > 1.0);
            if let Some(y) = year {
                l.key_problem(
                    "mortality.improvement",
                    format!(
                        "{r} makes the largest probability of dying in {} ({worst}) {} in {y}: it must be at most 1",
                        l.source.resolve(&mort.file).display(),
                        worst * (1.0 - r).powi(y - s.base_year)
                    ),
                );
            }
        }
        return None;
    }
    let (mortality, improvement) = match mort.improvement.clone() {
        None => (mortality?, None),
        Some(NumberOrTable::Rate(r)) => (mortality?, Some(r)),
        Some(NumberOrTable::Table(rel)) => {
            let m = mortality?;
            (improved_by_table(l, &rel, &m, file, areas)?, None)
        }
    };
    let inputs = ProjectionInputs {
        fertility: fertility?,
        mortality,
        boys_share: boys,
        tfr,
        improvement,
        flows,
    };
    check_year_rates(l, file, pop, &inputs);
    Some(inputs)
}

/// Checks the rates of every projected year as the projection takes them, after
/// scaling, improvement and multipliers: a probability of dying at most 1, and the
/// probability of dying plus the out-migration rates at most 1 in every cell (more
/// would take out more people than there are). The first cell at fault is named.
pub(super) fn check_year_rates(
    l: &mut Loader<'_>,
    file: &ScenarioFile,
    pop: &Population,
    inputs: &ProjectionInputs,
) {
    use crate::projection::{FlowValues, InputError, ProjectionError};
    let s = &file.scenario;
    let r = match crate::projection::resolve(pop, s.base_year, s.end_year, Some(inputs)) {
        Ok(r) => r,
        Err(ProjectionError::Input {
            year,
            source:
                InputError::Probability {
                    area,
                    sex,
                    age,
                    value,
                    ..
                },
        }) => {
            l.key_problem(
                "mortality.improvement",
                format!(
                    "{} makes the probability of dying {value} for area `{area}`, {sex}, age {age} in {year}: it must be at most 1",
                    inputs.improvement.unwrap_or(0.0)
                ),
            );
            return;
        }
        Err(e) => {
            l.problem(format!("{}: {e}", l.source.name()));
            return;
        }
    };
    let n = pop.n_ages();
    for (k, rates) in r.year_rates.iter().enumerate() {
        let Some(rates) = rates else { continue };
        let out: Vec<(&ndarray::Array3<f64>, f64)> = rates
            .flows
            .iter()
            .filter_map(|f| match &f.values {
                FlowValues::OutRates(v) => Some((&**v, f.multiplier)),
                FlowValues::Counts(_) => None,
            })
            .collect();
        if out.is_empty() {
            continue;
        }
        let rows = out
            .iter()
            .map(|(v, _)| v.dim().0)
            .chain([rates.q.dim().0])
            .max()
            .unwrap_or(1);
        for a in 0..rows {
            for sx in 0..2 {
                for i in 0..=n {
                    let row = |arr: &ndarray::Array3<f64>| if arr.dim().0 == 1 { 0 } else { a };
                    let q = rates.q[[row(&rates.q), sx, i]] * rates.q_factor;
                    let total = out.iter().fold(q, |t, (v, m)| t + m * v[[row(v), sx, i]]);
                    if total > 1.0 + 1e-12 {
                        let area = if rows == 1 {
                            "every area".to_string()
                        } else {
                            format!("area `{}`", pop.areas()[a])
                        };
                        l.problem(format!(
                            "{}: in {}, {area}, {}, age {}: the probability of dying {q} plus the out-migration rates make {total}; together they must be at most 1",
                            l.source.name(),
                            r.years[k],
                            Sex::ALL[sx],
                            crate::rates::AgeIndex::of_slot(i, n),
                        ));
                        return;
                    }
                }
            }
        }
    }
}

pub(super) fn check_first_year(l: &mut Loader<'_>, t: &RateTable, first_year: i32, rel: &str) {
    if let Err(e) = t.year_slot(first_year) {
        l.problem(format!("{}: {e}", l.source.resolve(rel).display()));
    }
}

pub(super) fn load_flow(
    l: &mut Loader<'_>,
    k: usize,
    m: &MigrationSection,
    areas: &[String],
    first_year: i32,
) -> Option<Flow> {
    let key = |s: &str| format!("migration[{k}].{s}");
    let what = format!("migration {} {}", m.name, m.direction);
    let scale = m.scale.unwrap_or(1.0);
    let age_sex = Shape {
        sex: true,
        age: true,
        signed: false,
    };
    let direction = match m.direction.as_str() {
        "in" => Direction::In,
        "net" => Direction::Net,
        _ => Direction::Out,
    };
    let form = if let Some(c) = &m.counts {
        let shape = Shape {
            signed: direction == Direction::Net,
            ..age_sex
        };
        let t = l.rates(c, m.column.as_deref(), shape, &what, scale, areas, None)?;
        check_first_year(l, &t, first_year, c);
        FlowForm::Counts(t)
    } else if let Some(r) = &m.rates {
        let most = Some((1.0, "share of the population moving out"));
        let t = l.rates(r, m.column.as_deref(), age_sex, &what, scale, areas, most)?;
        check_first_year(l, &t, first_year, r);
        FlowForm::OutRates(t)
    } else {
        let (tf, pf) = (m.total.as_deref()?, m.profile.as_deref()?);
        let total = l.rates(
            tf,
            m.total_column.as_deref(),
            Shape {
                sex: false,
                age: false,
                signed: false,
            },
            &what,
            scale,
            areas,
            None,
        );
        let profile = l.rates(
            pf,
            m.share_column.as_deref(),
            age_sex,
            &what,
            1.0,
            areas,
            None,
        );
        if let Some(p) = &profile {
            check_first_year(l, p, first_year, pf);
            check_profile(l, p, areas, pf);
        }
        let (total, profile) = (total?, profile?);
        check_first_year(l, &total, first_year, tf);
        FlowForm::TotalProfile { total, profile }
    };
    let multiplier = m.multiplier.as_ref().and_then(|p| match year_path(p) {
        Ok(p) => Some(p),
        Err(msg) => {
            l.key_problem(&key("multiplier"), msg);
            None
        }
    });
    let destinations = match &m.destinations {
        None => None,
        Some(d) => {
            let t = l.rates(d, Some("share"), age_sex, &what, 1.0, areas, None)?;
            check_destinations(l, &t, areas, d);
            Some(t)
        }
    };
    Some(Flow {
        name: m.name.clone(),
        direction,
        form,
        multiplier,
        destinations,
    })
}

/// Shares of a profile must sum to 1 over sex and age, per area and year.
pub(super) fn check_profile(l: &mut Loader<'_>, t: &RateTable, areas: &[String], rel: &str) {
    let slots = t.year_range().map_or(1, |(a, b)| (b - a + 1) as usize);
    let first = t.year_range().map_or(0, |r| r.0);
    for (a, code) in areas.iter().enumerate() {
        for y in 0..slots {
            let Ok(slot) = t.year_slot(first + y as i32) else {
                continue;
            };
            let sum: f64 = Sex::ALL
                .iter()
                .flat_map(|s| ages_of(t).map(move |i| (*s, i)))
                .filter_map(|(s, i)| t.get(a, slot, s, i))
                .sum();
            if (sum - 1.0).abs() > 1e-6 {
                l.problem(format!(
                    "{}: the profile's shares for area `{code}` sum to {sum}, not 1",
                    l.source.resolve(rel).display()
                ));
                return;
            }
        }
    }
}

/// Destination shares must sum to 1 over areas, per sex and age.
pub(super) fn check_destinations(l: &mut Loader<'_>, t: &RateTable, areas: &[String], rel: &str) {
    for s in Sex::ALL {
        for i in ages_of(t) {
            let sum: f64 = (0..areas.len()).filter_map(|a| t.get(a, 0, s, i)).sum();
            if (sum - 1.0).abs() > 1e-6 {
                l.problem(format!(
                    "{}: destination shares for {s}, age {i} sum to {sum} over the areas, not 1",
                    l.source.resolve(rel).display()
                ));
                return;
            }
        }
    }
}

pub(super) fn ages_of(t: &RateTable) -> impl Iterator<Item = AgeIndex> + Clone {
    let (lo, hi) = t.age_range().unwrap_or((1, 0));
    (lo..=hi)
        .map(AgeIndex::Age)
        .chain(t.has_birth().then_some(AgeIndex::Birth))
}
