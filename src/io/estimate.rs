//! `kunta estimate` and `kunta backtest` on files: the history and the births and
//! deaths (or their rates) read as [`crate::estimate::Events`], and the estimate
//! written as a scenario ready to run and edit.

use super::error::{DataError, IoError};
use super::labels::Role;
use super::rates::{has_role, rate_rows, Shape};
use super::{read_table, CsvOptions};
use crate::estimate::{Estimate, EventKind, Events, Options};
use crate::population::{Population, Sex};
use crate::rates::{AgeIndex, RateRow};
use ndarray::Array4;
use std::fmt::Write as _;
use std::path::Path;

/// Reads a population history (several years by area, sex and single-year age).
///
/// # Errors
/// [`IoError`] for a table that cannot be read or is not a population.
pub fn read_history(path: &Path) -> Result<Population, IoError> {
    let (p, _) = super::read_population(path, &CsvOptions::default())?;
    if p.years().len() < 2 {
        return Err(IoError::Data(DataError::file(
            &path.display().to_string(),
            format!(
                "a history needs several years; the table has only {}",
                p.years().first().map_or(0, |y| y.0)
            ),
        )));
    }
    Ok(p)
}

/// A cell of an events table: area, year, sex, age.
type Key<'a> = (Option<&'a str>, i32, Option<Sex>, usize);

/// Reads births (`[area], year, age, count`, the mother's age at the birth), fertility
/// rates (`[area], year, age, rate`), deaths (`[area], year, sex, age, count`) or death
/// rates (`[area], year, sex, age, rate`) over the history's areas.
///
/// # Errors
/// [`IoError`] naming the file, row, column and value for a table without a year, an
/// area the history does not have, a negative value, or the birth index.
pub fn read_events(
    path: &Path,
    what: &'static str,
    kind: EventKind,
    history: &Population,
) -> Result<Events, IoError> {
    let file = path.display().to_string();
    let t = read_table(path, &CsvOptions::default())?;
    let deaths = what.starts_with("death");
    // Births may come by the child's sex too: the sexes are added up.
    let sexed = deaths || has_role(&t, Role::Sex);
    let rows = rate_rows(
        &t,
        Shape {
            sex: sexed,
            age: true,
            signed: false,
        },
        what,
    )?;
    if !has_role(&t, Role::Year) {
        return Err(IoError::Data(DataError::file(
            &file,
            format!("a {what} table needs a year column"),
        )));
    }
    let areas = history.areas();
    let by_area = has_role(&t, Role::Area);
    if !by_area && kind == EventKind::Counts && areas.len() > 1 {
        return Err(IoError::Data(DataError::file(
            &file,
            format!(
                "{what} without an area column cannot be shared among the history's {} areas: give them by area",
                areas.len()
            ),
        )));
    }
    let mut years: Vec<i32> = rows.iter().filter_map(|r| r.year).collect();
    years.sort_unstable();
    years.dedup();
    let top = rows
        .iter()
        .filter_map(|r| match r.age {
            Some(AgeIndex::Age(x)) => Some(usize::from(x)),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let ns = if deaths { 2 } else { 1 };
    let mut values = Array4::<f64>::zeros((areas.len(), years.len(), ns, top + 1));
    let mut seen: std::collections::HashMap<Key<'_>, usize> =
        std::collections::HashMap::with_capacity(rows.len());
    let mut matched = vec![false; areas.len()];
    for (i, r) in rows.iter().enumerate() {
        let place = t.place(i);
        let year = r.year.unwrap_or_default();
        let k = years
            .binary_search(&year)
            .expect("the year is among the table's years");
        let x = match r.age {
            Some(AgeIndex::Age(x)) => usize::from(x),
            _ => {
                return Err(IoError::Data(
                    DataError::at(
                        &file,
                        place,
                        "the birth index has no place in a table by the age at the event",
                    )
                    .column("age"),
                ))
            }
        };
        if !(r.value.is_finite() && r.value >= 0.0) {
            return Err(IoError::Data(
                DataError::at(
                    &file,
                    place,
                    format!("a {what} value must be a non-negative number"),
                )
                .column(t.value_column(i).to_string())
                .value(r.value.to_string()),
            ));
        }
        if let Some(first) = seen.insert((r.area.as_deref(), year, r.sex, x), i) {
            return Err(IoError::Data(DataError::at(
                &file,
                place,
                format!(
                    "the same area, year, sex and age is given again (first at {})",
                    t.place(first)
                ),
            )));
        }
        let s = if deaths {
            r.sex.map_or(0, Sex::index)
        } else {
            0
        };
        let targets: Vec<usize> = match &r.area {
            None => (0..areas.len()).collect(),
            Some(a) => match areas.iter().position(|x| x == a) {
                Some(ai) => vec![ai],
                // Areas the history does not have (a national table for a region's
                // history) are left out.
                None => continue,
            },
        };
        for a in targets {
            matched[a] = true;
            values[[a, k, s, x]] += r.value;
        }
    }
    if let Some(a) = matched.iter().position(|m| !m) {
        let mut codes: Vec<&str> = rows.iter().filter_map(|r| r.area.as_deref()).collect();
        codes.sort_unstable();
        codes.dedup();
        return Err(IoError::Data(DataError::file(
            &file,
            format!(
                "area `{}` of the history has no rows (the table's areas include `{}`): are the area codes the same?",
                areas[a],
                codes[..codes.len().min(5)].join("`, `")
            ),
        )));
    }
    Ok(Events {
        years,
        values,
        kind,
        source: file,
    })
}

/// The births or fertility rates and the deaths or death rates of a command line, read.
///
/// # Errors
/// A sentence when neither or both of a pair are given, or [`IoError`] from a table.
pub fn read_rates(
    history: &Population,
    births: Option<&Path>,
    fertility_rates: Option<&Path>,
    deaths: Option<&Path>,
    death_rates: Option<&Path>,
) -> Result<(Events, Events), String> {
    let fert = match (births, fertility_rates) {
        (Some(p), None) => read_events(p, "births", EventKind::Counts, history),
        (None, Some(p)) => read_events(p, "fertility rates", EventKind::Rates, history),
        _ => return Err("give either --births or --fertility-rates".into()),
    }
    .map_err(|e| e.to_string())?;
    let mort = match (deaths, death_rates) {
        (Some(p), None) => read_events(p, "deaths", EventKind::Counts, history),
        (None, Some(p)) => read_events(p, "death rates", EventKind::Rates, history),
        _ => return Err("give either --deaths or --death-rates".into()),
    }
    .map_err(|e| e.to_string())?;
    Ok((fert, mort))
}

fn csv_of(rows: &[RateRow], value: &str) -> String {
    let r0 = rows.first();
    let mut head = Vec::new();
    if r0.is_some_and(|r| r.area.is_some()) {
        head.push("area");
    }
    if r0.is_some_and(|r| r.year.is_some()) {
        head.push("year");
    }
    if r0.is_some_and(|r| r.sex.is_some()) {
        head.push("sex");
    }
    head.push("age");
    head.push(value);
    let mut out = head.join(",") + "\n";
    for r in rows {
        if let Some(a) = &r.area {
            out.push_str(&super::frame::csv_field(a));
            out.push(',');
        }
        if let Some(y) = r.year {
            let _ = write!(out, "{y},");
        }
        if let Some(s) = r.sex {
            out.push_str(if s == Sex::Female { "female," } else { "male," });
        }
        match r.age {
            Some(AgeIndex::Age(x)) => {
                let _ = write!(out, "{x},");
            }
            _ => out.push_str("s,"),
        }
        let _ = writeln!(out, "{}", r.value);
    }
    out
}

/// What `kunta estimate` wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// The files, in the order written.
    pub files: Vec<String>,
    /// The spreads set in `[uncertainty]`: fertility, migration.
    pub spreads: (f64, f64),
}

/// Writes an estimate as a scenario: `population.csv` (the base year of the history),
/// `fertility.csv`, `mortality.csv`, `improvement.csv` (with an improvement trend),
/// `migration_net.csv`, `migration_rate_sd.csv` and `scenario.toml`, all or nothing
/// into `dir`.
///
/// # Errors
/// [`IoError`] if `dir` holds other files or a file cannot be written.
pub fn write(
    dir: &Path,
    e: &Estimate,
    history: &Population,
    opts: &Options,
    end_year: i32,
    source: &str,
) -> Result<Written, IoError> {
    let set = super::output::OutputSet::create_estimate(dir)?;
    let at = set.path().to_path_buf();
    let mut files = Vec::new();
    let mut put = |name: &str, text: String| -> Result<(), IoError> {
        super::frame::write_atomically(&at.join(name), |mut f| {
            use std::io::Write;
            f.write_all(text.as_bytes()).map_err(|x| x.to_string())?;
            f.sync_all().map_err(|x| x.to_string())
        })?;
        files.push(name.to_string());
        Ok(())
    };
    let base = history
        .year_index(crate::population::Year(e.base_year))
        .expect("the base year is in the history");
    let v = history.values();
    let mut pop = String::from("area,sex,age,year,population\n");
    for (a, area) in history.areas().iter().enumerate() {
        for sex in Sex::ALL {
            for x in 0..history.n_ages() {
                let _ = writeln!(
                    pop,
                    "{},{},{x},{},{}",
                    super::frame::csv_field(area),
                    if sex == Sex::Female { "female" } else { "male" },
                    e.base_year,
                    v[[base.0, a, sex.index(), x]]
                );
            }
        }
    }
    put("population.csv", pop)?;
    put("fertility.csv", csv_of(&e.fertility_rows(), "rate"))?;
    put("mortality.csv", csv_of(&e.mortality_rows(), "rate"))?;
    let improvement = match e.improvement_rows() {
        Some(rows) => {
            put("improvement.csv", csv_of(&rows, "rate"))?;
            "\"improvement.csv\"   # yearly improvement by sex and age (the trend of the death rates)".to_string()
        }
        None => "0.0".to_string(),
    };
    put("migration_net.csv", csv_of(&e.net_rows(), "count"))?;
    // The net migration rate's spread, the same for both sexes.
    let rate_sd = e.migration_rate_sd();
    let mut text = String::from("area,age,sd\n");
    for (a, area) in history.areas().iter().enumerate() {
        for x in 0..history.n_ages() {
            let _ = writeln!(
                text,
                "{},{x},{}",
                super::frame::csv_field(area),
                rate_sd[[a, 0, x]]
            );
        }
    }
    put("migration_rate_sd.csv", text)?;
    let spreads = e.spreads(history);
    let fert_level = match opts.fertility {
        crate::estimate::FertilityLevel::Mean => "the window's mean".to_string(),
        crate::estimate::FertilityLevel::Last => "the last year's total fertility".to_string(),
        crate::estimate::FertilityLevel::Trend { years } => {
            format!("the last year's total fertility along the window's trend for {years} years (a year column)")
        }
        crate::estimate::FertilityLevel::Damped { phi } => {
            format!("the last year's total fertility along all areas' trend, damped by {phi} a year (a year column)")
        }
    };
    let toml = format!(
        "# Estimated by `kunta estimate` from {source}: rates averaged over the {k} years\n\
         # {first}–{base} (MODEL.md §11). Edit freely; `kunta run` runs it as it is.\n\n\
         [scenario]\nname = \"Estimate {base}\"\nbase_year = {base}\nend_year = {end_year}\n\n\
         [population]\nfile = \"population.csv\"      # the history's {base}\n\n\
         [fertility]\nfile = \"fertility.csv\"       # births per woman by age at the start of the year; level: {fert_level}\n\
         boys_share = {boys}\n\n\
         [mortality]\nfile = \"mortality.csv\"       # probabilities of dying; age `s` = born during the year\n\
         improvement = {improvement}\n\n\
         [[migration]]\nname = \"net\"\ndirection = \"net\"\ncounts = \"migration_net.csv\"  # signed: the residual of the balancing equation, a year's mean{level}\n\n\
         [uncertainty]\n\
         # Calibrated from the window: the spread of the yearly change of log total\n\
         # fertility, of the yearly net migration around its mean, and of each area's\n\
         # net migration rate by age band from year to year (see the README).\n\
         fertility_sd = {fsd:.4}\nmigration_sd = {msd:.4}\n\
         migration_rate_sd = \"migration_rate_sd.csv\"\nmigration_rate_ar = {rate_ar:.1}   # a random walk: judged by backtests at 5 and 10 years\n",
        k = opts.years,
        first = e.base_year - opts.years as i32 + 1,
        base = e.base_year,
        boys = opts.boys_share,
        level = if opts.migration_level == 1.0 {
            String::new()
        } else {
            format!(" × {}", opts.migration_level)
        },
        fsd = spreads.0,
        msd = spreads.1,
        rate_ar = crate::estimate::MIGRATION_RATE_AR,
    );
    put("scenario.toml", toml)?;
    set.commit()?;
    Ok(Written { files, spreads })
}

/// Writes the `backtest` table (jump_off, horizon, area, group, method, predicted,
/// observed, error_pct) and a `manifest.json` into `dir`, all or nothing. The
/// manifest holds kunta's version, the tables, and each field of `about` (what the
/// backtest was run from and with: its inputs and their hashes, the jump-offs,
/// horizons, options and seed), so that it can be run again.
///
/// # Errors
/// [`IoError`] if `dir` holds other files or a file cannot be written.
pub fn write_backtest(
    dir: &Path,
    rows: &[crate::estimate::backtest::Row],
    format: super::Format,
    about: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), IoError> {
    use super::ColumnData;
    let set = super::output::OutputSet::create(dir)?;
    let at = set.path().to_path_buf();
    let coded = |f: &dyn Fn(&crate::estimate::backtest::Row) -> &str| {
        let mut levels: Vec<String> = Vec::new();
        let codes = rows
            .iter()
            .map(|r| {
                let v = f(r);
                (match levels.iter().position(|l| l == v) {
                    Some(i) => i,
                    None => {
                        levels.push(v.to_string());
                        levels.len() - 1
                    }
                }) as u32
            })
            .collect();
        ColumnData::Coded { levels, codes }
    };
    let frame = super::Frame {
        columns: vec![
            (
                "jump_off".into(),
                ColumnData::Int(rows.iter().map(|r| i64::from(r.jump_off)).collect()),
            ),
            (
                "horizon".into(),
                ColumnData::Int(rows.iter().map(|r| i64::from(r.horizon)).collect()),
            ),
            ("area".into(), coded(&|r| r.area.as_str())),
            ("group".into(), coded(&|r| r.group)),
            ("method".into(), coded(&|r| r.method)),
            (
                "predicted".into(),
                ColumnData::Float(rows.iter().map(|r| r.predicted).collect()),
            ),
            (
                "observed".into(),
                ColumnData::Float(rows.iter().map(|r| r.observed).collect()),
            ),
            (
                "error_pct".into(),
                ColumnData::Float(
                    rows.iter()
                        .map(|r| {
                            if r.error_pct.is_finite() {
                                r.error_pct
                            } else {
                                f64::NAN
                            }
                        })
                        .collect(),
                ),
            ),
        ],
    };
    let mut frame = frame;
    if rows.iter().any(|r| r.interval.is_some()) {
        // kunta's interval (empty on the baselines' rows).
        for (k, name) in ["p05", "p25", "p75", "p95"].iter().enumerate() {
            frame.columns.push((
                (*name).into(),
                ColumnData::Float(
                    rows.iter()
                        .map(|r| r.interval.map_or(f64::NAN, |q| q[k]))
                        .collect(),
                ),
            ));
        }
    }
    frame.write(&at.join(format!("backtest.{}", format.extension())), format)?;
    let mut manifest = serde_json::json!({
        "kunta_version": env!("CARGO_PKG_VERSION"),
        "tables": [format!("backtest.{}", format.extension())],
    });
    if let Some(m) = manifest.as_object_mut() {
        m.extend(about.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let text = serde_json::to_string_pretty(&manifest).unwrap_or_default() + "\n";
    super::frame::write_atomically(&at.join("manifest.json"), |mut f| {
        use std::io::Write;
        f.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
        f.sync_all().map_err(|e| e.to_string())
    })?;
    set.commit()
}
