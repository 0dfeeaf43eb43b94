//! Running a loaded scenario and writing its tables, `manifest.json` and
//! `summary.json`.
//!
//! Every table is computed before anything is written; each file is then written
//! under a temporary name and renamed into place.

use super::frame::{write_atomically, ColumnData, Format, Frame};
use super::scenario::{AlignmentInputs, LoadedScenario};
use super::IoError;
use crate::population::Sex;
use crate::projection::{project, Direction, Projection, ProjectionError};
use std::path::Path;
use std::time::Instant;

/// The result of a run: the projection and the tables made from it.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The projection.
    pub projection: Projection,
    /// Output tables by name (`population`, `components`, `migration`, and
    /// `alignment` when the scenario aligns).
    pub tables: Vec<(&'static str, Frame)>,
    /// The headline figures (also written as `summary.json`).
    pub summary: serde_json::Value,
}

/// Projects a loaded scenario and builds its output tables.
///
/// # Errors
/// [`ProjectionError`] if a year cannot be projected.
pub fn run(l: &LoadedScenario) -> Result<RunOutput, ProjectionError> {
    let s = &l.file.scenario;
    let mut p = project(&l.population, s.base_year, s.end_year, l.inputs.as_ref())?;
    let mut tables = Vec::new();
    if let Some(a) = &l.alignment {
        tables.push(("alignment", align_projection(&s.name, &mut p, a)));
    }
    tables.splice(
        0..0,
        [
            ("population", population_table(&s.name, &p)),
            ("components", components_table(&s.name, &p)),
            ("migration", migration_table(&s.name, &p)),
        ],
    );
    let summary = summary(l, &p);
    Ok(RunOutput {
        projection: p,
        tables,
        summary,
    })
}

/// Writes the tables, `summary.json` and `manifest.json` into `dir` (created if
/// missing).
///
/// # Errors
/// [`IoError`] if the directory or a file cannot be written.
pub fn write(
    l: &LoadedScenario,
    out: &RunOutput,
    dir: &Path,
    format: Format,
    started: Instant,
) -> Result<Vec<String>, IoError> {
    std::fs::create_dir_all(dir).map_err(|source| IoError::File {
        path: dir.to_path_buf(),
        action: "create the output directory",
        source,
    })?;
    let mut written = Vec::new();
    for (name, frame) in &out.tables {
        let file = format!("{name}.{}", format.extension());
        frame.write(&dir.join(&file), format)?;
        written.push(file);
    }
    write_json(&dir.join("summary.json"), &out.summary)?;
    written.push("summary.json".into());
    let manifest = serde_json::json!({
        "kunta_version": env!("CARGO_PKG_VERSION"),
        "scenario": l.file.scenario.name,
        "scenario_file": l.source.name(),
        "inputs": l.files.iter().map(|f| serde_json::json!({"path": f.path, "sha256": f.sha256})).collect::<Vec<_>>(),
        "seed": null,
        "trajectories": null,
        "warnings": warnings(l, &out.projection),
        "tables": written,
        "wall_time_s": started.elapsed().as_secs_f64(),
    });
    write_json(&dir.join("manifest.json"), &manifest)?;
    written.push("manifest.json".into());
    Ok(written)
}

fn write_json(path: &Path, v: &serde_json::Value) -> Result<(), IoError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| IoError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    })? + "\n";
    write_atomically(path, |mut f| {
        use std::io::Write;
        f.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
        f.sync_all().map_err(|e| e.to_string())
    })
}

/// Aligns the projected years that have a control (MODEL.md §4) and returns the
/// `alignment` table: scenario, parent, sex, age, year, factor (empty where the
/// children were all 0 and the control was shared out).
fn align_projection(scenario: &str, p: &mut Projection, a: &AlignmentInputs) -> Frame {
    let (ny, _, _, nx) = p.population.dim();
    let parents = a.control.areas();
    let mut control = ndarray::Array4::zeros((ny, parents.len(), 2, nx));
    let mut slots = Vec::new();
    for (k, y) in p.years.iter().enumerate().skip(1) {
        if let Some(c) = a.control.year_index(crate::population::Year(*y)) {
            control
                .index_axis_mut(ndarray::Axis(0), k)
                .assign(&a.control.values().index_axis(ndarray::Axis(0), c.0));
            slots.push(k);
        }
    }
    let factors =
        crate::projection::align(&mut p.population, &a.parent_of, control.view(), &slots).factors;
    let (mut parent, mut sex, mut age, mut year, mut factor) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (pi, code) in parents.iter().enumerate() {
        for s in Sex::ALL {
            for x in 0..nx {
                for &k in &slots {
                    let f = factors[[k, pi, s.index(), x]];
                    parent.push(code.clone());
                    sex.push(s.as_str().to_string());
                    age.push(x as i64);
                    year.push(i64::from(p.years[k]));
                    factor.push((!f.is_nan()).then_some(f));
                }
            }
        }
    }
    let n = parent.len();
    Frame {
        columns: vec![
            ("scenario".into(), text(n, scenario)),
            ("parent".into(), ColumnData::Text(parent)),
            ("sex".into(), ColumnData::Text(sex)),
            ("age".into(), ColumnData::Int(age)),
            ("year".into(), ColumnData::Int(year)),
            ("factor".into(), ColumnData::Float(factor)),
        ],
    }
}

/// Skipped rows and unmet out-migration, for the manifest and the user.
pub fn warnings(l: &LoadedScenario, p: &Projection) -> Vec<String> {
    let mut w = l.notes.clone();
    for (k, c) in p.components.iter().enumerate() {
        let Some(c) = c else { continue };
        for ((a, s), v) in c.unmet_out_migration.indexed_iter() {
            if *v > 0.0 {
                w.push(format!(
                    "unmet out-migration of {v:.3} persons in area `{}`, {}, {}: the out-flows exceeded the population",
                    p.areas[a],
                    Sex::ALL[s],
                    p.years[k]
                ));
            }
        }
    }
    w
}

fn text(n: usize, v: &str) -> ColumnData {
    ColumnData::Coded {
        levels: vec![v.to_string()],
        codes: vec![0; n],
    }
}

fn sex_levels() -> Vec<String> {
    Sex::ALL.iter().map(|s| s.as_str().to_string()).collect()
}

/// The `population` table: scenario, area, sex, age, year, population.
pub fn population_table(scenario: &str, p: &Projection) -> Frame {
    let (ny, na, _, nx) = p.population.dim();
    let n = ny * na * 2 * nx;
    let (mut area, mut sex, mut age, mut year, mut value) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for a in 0..p.areas.len() {
        for s in Sex::ALL {
            for x in 0..nx {
                for (k, y) in p.years.iter().enumerate() {
                    area.push(a as u32);
                    sex.push(s.index() as u32);
                    age.push(x as i64);
                    year.push(i64::from(*y));
                    value.push(Some(p.population[[k, a, s.index(), x]]));
                }
            }
        }
    }
    Frame {
        columns: vec![
            ("scenario".into(), text(n, scenario)),
            (
                "area".into(),
                ColumnData::Coded {
                    levels: p.areas.clone(),
                    codes: area,
                },
            ),
            (
                "sex".into(),
                ColumnData::Coded {
                    levels: sex_levels(),
                    codes: sex,
                },
            ),
            ("age".into(), ColumnData::Int(age)),
            ("year".into(), ColumnData::Int(year)),
            ("population".into(), ColumnData::Float(value)),
        ],
    }
}

/// The `components` table of the projected years.
pub fn components_table(scenario: &str, p: &Projection) -> Frame {
    let mut keys = (Vec::new(), Vec::new(), Vec::new());
    let mut cols: [Vec<Option<f64>>; 6] = Default::default();
    for (a, code) in p.areas.iter().enumerate() {
        for s in Sex::ALL {
            for (k, c) in p.components.iter().enumerate() {
                let Some(c) = c else { continue };
                let i = [a, s.index()];
                keys.0.push(code.clone());
                keys.1.push(s.as_str().to_string());
                keys.2.push(i64::from(p.years[k]));
                let (inm, outm) = (c.in_migration[i], c.out_migration[i]);
                for (col, v) in cols.iter_mut().zip([
                    c.births[i],
                    c.deaths[i],
                    inm,
                    outm,
                    inm - outm,
                    c.unmet_out_migration[i],
                ]) {
                    col.push(Some(v));
                }
            }
        }
    }
    let n = keys.0.len();
    let mut columns = vec![
        ("scenario".into(), text(n, scenario)),
        ("area".into(), ColumnData::Text(keys.0)),
        ("sex".into(), ColumnData::Text(keys.1)),
        ("year".into(), ColumnData::Int(keys.2)),
    ];
    let names = [
        "births",
        "deaths",
        "in_migration",
        "out_migration",
        "net_migration",
        "unmet_out_migration",
    ];
    for (name, col) in names.iter().zip(cols) {
        columns.push((name.to_string(), ColumnData::Float(col)));
    }
    Frame { columns }
}

/// The `migration` table: movers of each flow by area, sex and year. A closed
/// internal system's arrivals appear as the flow's `in` rows.
pub fn migration_table(scenario: &str, p: &Projection) -> Frame {
    let (mut area, mut sex, mut year, mut flow, mut dir, mut count) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for (a, code) in p.areas.iter().enumerate() {
        for s in Sex::ALL {
            for (k, c) in p.components.iter().enumerate() {
                let Some(c) = c else { continue };
                for (f, info) in p.flows.iter().enumerate() {
                    let mut push = |direction: &str, v: f64| {
                        area.push(code.clone());
                        sex.push(s.as_str().to_string());
                        year.push(i64::from(p.years[k]));
                        flow.push(info.name.clone());
                        dir.push(direction.to_string());
                        count.push(Some(v));
                    };
                    let movers = c.flow_movers[[f, a, s.index()]];
                    match info.direction {
                        Direction::In => push("in", movers),
                        Direction::Out => push("out", movers),
                    }
                    if info.closed {
                        push("in", c.flow_arrivals[[f, a, s.index()]]);
                    }
                }
            }
        }
    }
    let n = area.len();
    Frame {
        columns: vec![
            ("scenario".into(), text(n, scenario)),
            ("area".into(), ColumnData::Text(area)),
            ("sex".into(), ColumnData::Text(sex)),
            ("year".into(), ColumnData::Int(year)),
            ("flow".into(), ColumnData::Text(flow)),
            ("direction".into(), ColumnData::Text(dir)),
            ("count".into(), ColumnData::Float(count)),
        ],
    }
}

fn summary(l: &LoadedScenario, p: &Projection) -> serde_json::Value {
    let last = p.years.len() - 1;
    let total = |k: usize, a: Option<usize>| -> f64 {
        let y = p.population.index_axis(ndarray::Axis(0), k);
        match a {
            None => y.sum(),
            Some(a) => y.index_axis(ndarray::Axis(0), a).sum(),
        }
    };
    let sum_comp = |f: &dyn Fn(&crate::projection::YearComponents) -> f64| -> f64 {
        p.components.iter().flatten().map(f).sum()
    };
    let areas: Vec<serde_json::Value> = p
        .areas
        .iter()
        .enumerate()
        .map(|(a, code)| {
            serde_json::json!({
                "area": code,
                "population_first": total(0, Some(a)),
                "population_last": total(last, Some(a)),
            })
        })
        .collect();
    serde_json::json!({
        "scenario": l.file.scenario.name,
        "base_year": p.years[0],
        "end_year": p.years[last],
        "population_first": total(0, None),
        "population_last": total(last, None),
        "projected_years": p.components.iter().filter(|c| c.is_some()).count(),
        "births": sum_comp(&|c| c.births.sum()),
        "deaths": sum_comp(&|c| c.deaths.sum()),
        "net_migration": sum_comp(&|c| c.in_migration.sum() - c.out_migration.sum()),
        "unmet_out_migration": sum_comp(&|c| c.unmet_out_migration.sum()),
        "areas": areas,
    })
}
