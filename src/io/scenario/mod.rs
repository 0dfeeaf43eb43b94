//! TOML → [`ValidScenario`]: a scenario file and the tables it names, from a
//! directory or from the example compiled into kunta, loaded into the
//! [`crate::scenario::Scenario`] a run takes.
//!
//! - [`mod@file`]: the document's keys as TOML structs, parsed and range-checked
//!   ([`file::ScenarioFile::parse`]);
//! - [`variant`]: variants as partial documents merged onto the base;
//! - the tables each section names, read and checked against the population:
//!   `inputs.rs` (fertility, mortality, migration, alignment), `service.rs`,
//!   `network.rs` (units and catchments) and `areas.rs` (names and parents);
//! - this module: loading as a whole (variants too), the scenario built and
//!   validated.
//!
//! Loading never stops at the first problem: every input is read and checked, and all
//! problems are returned together, so that `kunta validate` can list them at once.

use super::error::{DataError, IoError};
use super::rates::{rate_rows, total_rows, Shape};
use super::text::TextEncoding;
use super::{read_table_bytes, CsvOptions, LongTable};
use crate::population::Year;
use crate::projection::YearPath;
use crate::rates::{RateError, RateRow, RateTable};
use crate::scenario::{CohortEffect, Scenario, ValidScenario};
use file::{NumberOrTable, Param, ScenarioFile};
use std::path::{Path, PathBuf};
use variant::Variant;

mod areas;
pub mod file;
mod inputs;
mod network;
mod service;
pub mod variant;

use areas::{aggregate_notes, load_area_names};
use inputs::{load_alignment, load_inputs, load_migration_rate_sd};
use network::load_network;
use service::load_services;

/// Checks that the trajectories asked for (`trajectories` from the command line, else
/// the scenario's `[uncertainty] trajectories`) fit within
/// [`crate::uncertainty::TRAJECTORY_MEMORY`], before anything is run.
///
/// # Errors
/// One sentence naming the key, the value and the most this scenario can run.
pub fn check_trajectories(l: &LoadedScenario, trajectories: Option<u32>) -> Result<(), String> {
    let from_file = l.file.uncertainty.as_ref().and_then(|u| u.trajectories);
    let Some(n) = trajectories.or(from_file) else {
        return Ok(());
    };
    let limit = crate::run::trajectory_limit(&l.scenario);
    if (n as usize) <= limit {
        return Ok(());
    }
    let key = if trajectories.is_some() {
        "--trajectories".to_string()
    } else {
        format!("{}: `uncertainty.trajectories`", l.source.name())
    };
    Err(format!(
        "{key}: {n} trajectories cannot run: this scenario's multipliers and sums per trajectory allow at most {limit} within kunta's limit of 8 GiB"
    ))
}

/// Where a scenario's files come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A scenario file on disk; relative paths inside it are relative to its directory.
    File(PathBuf),
    /// The bundled example (see [`crate::example`]).
    Example,
}

impl Source {
    /// How the scenario file is named in messages.
    pub fn name(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Example => "example:scenario.toml".into(),
        }
    }

    /// The path a file named in the scenario is shown and read as.
    fn resolve(&self, rel: &str) -> PathBuf {
        match self {
            Source::File(p) => p.parent().unwrap_or(Path::new("")).join(rel),
            Source::Example => PathBuf::from(format!("example:{rel}")),
        }
    }

    fn read(&self, rel: &str) -> Result<Vec<u8>, IoError> {
        let path = self.resolve(rel);
        match self {
            Source::File(_) => super::read_input(&path),
            Source::Example => crate::example::FILES
                .iter()
                .find(|(n, _)| *n == rel)
                .map(|(_, c)| c.as_bytes().to_vec())
                .ok_or_else(|| IoError::File {
                    path,
                    action: "read",
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                }),
        }
    }

    fn read_scenario(&self) -> Result<Vec<u8>, IoError> {
        match self {
            Source::File(p) => super::read_input(p),
            Source::Example => self.read("scenario.toml"),
        }
    }
}

/// Why a scenario could not be loaded: every problem found, one sentence each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", problems.join("\n"))]
pub struct LoadError {
    /// Every problem found.
    pub problems: Vec<String>,
}

/// One input file: its path as shown to the user and the SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// Path (relative to the working directory, or `example:…`).
    pub path: String,
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
}

/// A scenario with its inputs read and checked.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    /// Where it came from.
    pub source: Source,
    /// The scenario file.
    pub file: ScenarioFile,
    /// The scenario it describes, checked: the population table (base year, and any
    /// published forecast years after it), the rates, the alignment, the services and
    /// the service network, ready for [`crate::run::run`].
    pub scenario: ValidScenario,
    /// Every file read, with its hash.
    pub files: Vec<InputFile>,
    /// Things the user should know (skipped total rows, …).
    pub notes: Vec<String>,
    /// The areas' own names from `[areas] file`, in the population's order of areas
    /// (empty without one).
    pub area_names: Vec<AreaName>,
    /// The variants (MODEL.md §10), each merged onto this scenario and loaded, in the
    /// order given (the scenario file's, then those of `--variant` files).
    pub variants: Vec<LoadedVariant>,
    /// `[uncertainty] migration_rate_sd` by `(area, sex, age)`, when given.
    pub migration_rate_sd: Option<ndarray::Array3<f64>>,
}

/// An area's own name (and the area it belongs to), from `[areas] file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaName {
    /// The area's code as the population table gives it.
    pub area: String,
    /// Its name (the code when the table does not name it).
    pub name: String,
    /// The larger area it belongs to, if the table says.
    pub parent: Option<String>,
}

impl LoadedScenario {
    /// The name of an area (its code when it has none).
    pub fn area_name<'a>(&'a self, code: &'a str) -> &'a str {
        self.area_names
            .iter()
            .find(|a| a.area == code)
            .map_or(code, |a| a.name.as_str())
    }
}

/// A variant of a scenario, loaded.
#[derive(Debug, Clone)]
pub struct LoadedVariant {
    /// The variant as written (name, description, baseline, effects).
    pub variant: Variant,
    /// The base merged with its overrides, loaded: its `scenario.name` is the
    /// variant's name.
    pub loaded: LoadedScenario,
}

impl LoadedScenario {
    /// The name of the scenario a variant is compared with: its `baseline`, or the
    /// base's name.
    pub fn baseline_of<'a>(&'a self, v: &'a LoadedVariant) -> &'a str {
        v.variant.baseline.as_deref().unwrap_or(&self.scenario.name)
    }

    /// The scenario named `name`: the base or one of its variants.
    pub fn named(&self, name: &str) -> Option<&LoadedScenario> {
        if self.scenario.name == name {
            return Some(self);
        }
        self.variants
            .iter()
            .find(|v| v.variant.name == name)
            .map(|v| &v.loaded)
    }
}

struct Loader<'a> {
    source: &'a Source,
    encoding: TextEncoding,
    problems: Vec<String>,
    files: Vec<InputFile>,
    notes: Vec<String>,
}

impl Loader<'_> {
    fn problem(&mut self, p: impl Into<String>) {
        self.problems.push(p.into());
    }

    fn key_problem(&mut self, key: &str, message: impl std::fmt::Display) {
        let name = self.source.name();
        self.problem(format!("{name}: `{key}`: {message}"));
    }

    /// The bytes of the input `rel` and where it lies, recorded among the run's input
    /// files with its SHA-256; a file that cannot be read is a problem and gives none.
    fn read_input(&mut self, rel: &str) -> Option<(PathBuf, Vec<u8>)> {
        let path = self.source.resolve(rel);
        let bytes = match self.source.read(rel) {
            Ok(b) => b,
            Err(e) => {
                self.problem(e.to_string());
                return None;
            }
        };
        self.files.push(InputFile {
            path: path.display().to_string(),
            sha256: super::sha256_hex(&bytes),
        });
        Some((path, bytes))
    }

    fn table(&mut self, rel: &str, value_column: Option<&str>) -> Option<LongTable> {
        let (path, bytes) = self.read_input(rel)?;
        let options = CsvOptions {
            encoding: self.encoding,
            delimiter: None,
            value_column: value_column.map(str::to_string),
        };
        match read_table_bytes(bytes, &path, &options) {
            Ok(t) => Some(t),
            Err(e) => {
                self.problem(e.to_string());
                None
            }
        }
    }

    /// Reads a rate table (or counts) of `what` from `rel`, scaled by `scale`, and
    /// builds it against the population's areas; where `most` is given, each value
    /// after scaling must be at most its bound (named by the text beside it in the
    /// message), and the first row above it is named.
    #[allow(clippy::too_many_arguments)]
    fn rates(
        &mut self,
        rel: &str,
        column: Option<&str>,
        shape: Shape,
        what: &str,
        scale: f64,
        areas: &[String],
        most: Option<(f64, &str)>,
    ) -> Option<RateTable> {
        let t = self.table(rel, column)?;
        let rows = if shape.age || shape.sex {
            rate_rows(&t, shape, what)
        } else {
            total_rows(&t, what)
        };
        let rows: Vec<RateRow> = match rows {
            Ok(r) => r,
            Err(e) => {
                self.problem(e.to_string());
                return None;
            }
        };
        if let Some((most, name)) = most {
            if let Some(row) = rows.iter().position(|r| r.value / scale > most) {
                // A table of rates per 1000 read as they are is the usual slip.
                let hint = if scale == 1.0 {
                    " (per 1000? then give `scale = 1000`)"
                } else {
                    ""
                };
                self.problem(
                    DataError::at(
                        &t.source,
                        t.place(row),
                        format!(
                            "{} after scaling (scale {scale}) is a {name} above {most}{hint}",
                            rows[row].value / scale
                        ),
                    )
                    .column(t.value_column(row).to_string())
                    .value(rows[row].value.to_string())
                    .to_string(),
                );
                return None;
            }
        }
        match RateTable::from_rows(&rows, scale, areas) {
            Ok(r) => Some(r),
            Err(e) => {
                let place = |row: usize| t.place(row).to_string();
                self.problem(match e {
                    RateError::Duplicate { first, second } => format!(
                        "{}: {}: the same cell is given again (first at {})",
                        t.source,
                        place(second),
                        place(first)
                    ),
                    other => format!("{}: {other}", t.source),
                });
                None
            }
        }
    }
}

/// A `tfr` or `multiplier` parameter as a year path; a table file is not a path.
fn year_path(p: &Param) -> Result<YearPath, String> {
    match p {
        Param::Constant(v) => Ok(YearPath::Constant(*v)),
        Param::Path { from, to } => linear(*from, *to),
        Param::Table(f) => Err(format!(
            "a table (`{f}`) is not accepted here; give a constant or {{ from = [year, value], to = [year, value] }}"
        )),
    }
}

/// A path from `from` to `to`: its first year must not be after its last.
fn linear(from: (i32, f64), to: (i32, f64)) -> Result<YearPath, String> {
    if from.0 > to.0 {
        return Err(format!(
            "{{ from = [{}, {}], to = [{}, {}] }}: the path's first year is after its last",
            from.0, from.1, to.0, to.1
        ));
    }
    Ok(YearPath::Linear { from, to })
}

/// Loads a scenario and every input it names, checking them all.
///
/// # Errors
/// [`LoadError`] with every problem found: in the scenario file (unknown keys, bad
/// values), in reading a file, or in a table's content.
pub fn load(source: Source) -> Result<LoadedScenario, LoadError> {
    load_with_variants(source, &[])
}

/// Loads a scenario as [`load`] does, with the variants of `variant_files` (files
/// holding `[[variant]]` tables, as `kunta run --variant FILE` names them) after the
/// scenario file's own. Every variant is merged onto the base and loaded as a
/// scenario; its problems are named with the variant.
///
/// # Errors
/// [`LoadError`] with every problem found in the base and in every variant.
pub fn load_with_variants(
    source: Source,
    variant_files: &[PathBuf],
) -> Result<LoadedScenario, LoadError> {
    let name = source.name();
    let text = source
        .read_scenario()
        .map_err(|e| LoadError {
            problems: vec![e.to_string()],
        })
        .and_then(|bytes| {
            String::from_utf8(bytes).map_err(|_| LoadError {
                problems: vec![
                    DataError::file(&name, "the scenario file is not UTF-8 text").to_string(),
                ],
            })
        })?;
    let file = ScenarioFile::parse(&text).map_err(|problems| LoadError {
        problems: problems.iter().map(|p| format!("{name}: {p}")).collect(),
    })?;
    let mut problems = Vec::new();
    // The scenario file and the variant files are inputs too, first in the list.
    let mut own = vec![InputFile {
        path: name.clone(),
        sha256: super::sha256_hex(text.as_bytes()),
    }];
    // The `[[variant]]` tables as the scenario's parse read them (the text is not
    // parsed again).
    let mut doc = toml::Table::new();
    if !file.variant.is_empty() {
        let tables = file.variant.iter().cloned().map(toml::Value::Table);
        doc.insert("variant".into(), toml::Value::Array(tables.collect()));
    }
    // Each variant with the file it was written in, which its problems name.
    let mut variants: Vec<(Variant, String)> = Variant::split(&doc)
        .unwrap_or_else(|p| {
            problems.extend(p.into_iter().map(|m| format!("{name}: {m}")));
            Vec::new()
        })
        .into_iter()
        .map(|v| (v, name.clone()))
        .collect();
    for path in variant_files {
        match read_variant_file(path) {
            Ok((v, sha256)) => {
                let shown = path.display().to_string();
                variants.extend(v.into_iter().map(|v| (v, shown.clone())));
                own.push(InputFile {
                    path: shown,
                    sha256,
                });
            }
            Err(p) => problems.extend(p),
        }
    }
    let base = load_file(&source, file, &[]);
    let base = match base {
        Ok(b) => Some(b),
        Err(e) => {
            problems.extend(e.problems);
            None
        }
    };
    let loaded_variants = load_variants(&source, &text, variants, &mut problems);
    match base {
        Some(mut b) if problems.is_empty() => {
            b.files.splice(0..0, own);
            b.variants = loaded_variants;
            Ok(b)
        }
        _ => Err(LoadError { problems }),
    }
}

/// The variants of a file given with `--variant` (a TOML document of `[[variant]]`
/// tables and nothing else), and the SHA-256 of its bytes.
fn read_variant_file(path: &Path) -> Result<(Vec<Variant>, String), Vec<String>> {
    let shown = path.display().to_string();
    let bytes = super::read_input(path).map_err(|e| vec![e.to_string()])?;
    let sha256 = super::sha256_hex(&bytes);
    let text = String::from_utf8(bytes).map_err(|_| {
        vec![DataError::file(&shown, "the variant file is not UTF-8 text").to_string()]
    })?;
    let doc: toml::Table = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| 1 + text[..s.start.min(text.len())].matches('\n').count());
        vec![match line {
            Some(l) => format!("{shown}: line {l}: {}", e.message().trim()),
            None => format!("{shown}: {}", e.message().trim()),
        }]
    })?;
    let others: Vec<&String> = doc.keys().filter(|k| *k != "variant").collect();
    if !others.is_empty() {
        return Err(vec![format!(
            "{shown}: a variant file holds only [[variant]] tables, not `{}`",
            others[0]
        )]);
    }
    if !doc.contains_key("variant") {
        return Err(vec![format!("{shown}: the file holds no [[variant]]")]);
    }
    Variant::split(&doc)
        .map(|v| (v, sha256))
        .map_err(|p| p.into_iter().map(|m| format!("{shown}: {m}")).collect())
}

/// Merges each variant onto the base document `text` and loads it; problems go to
/// `problems`, each named with the file the variant is written in and its name.
fn load_variants(
    source: &Source,
    text: &str,
    variants: Vec<(Variant, String)>,
    problems: &mut Vec<String>,
) -> Vec<LoadedVariant> {
    if variants.is_empty() {
        return Vec::new();
    }
    let mut doc: toml::Table = toml::from_str(text).unwrap_or_default();
    doc.remove("variant");
    let base_name = doc
        .get("scenario")
        .and_then(|s| s.get("name"))
        .and_then(toml::Value::as_str)
        .unwrap_or_default()
        .to_string();
    let (variants, origins): (Vec<Variant>, Vec<String>) = variants.into_iter().unzip();
    let names: Vec<&str> = variants.iter().map(|v| v.name.as_str()).collect();
    let mut out = Vec::new();
    for (k, v) in variants.iter().enumerate() {
        let tag = format!("{}: variant `{}`", origins[k], v.name);
        if v.name == base_name || names[..k].contains(&v.name.as_str()) {
            problems.push(format!(
                "{tag}: the name is taken (by the base scenario or another variant): every scenario needs its own"
            ));
            continue;
        }
        if let Some(b) = &v.baseline {
            if *b != base_name && !names.contains(&b.as_str()) {
                problems.push(format!(
                    "{tag}: `baseline` `{b}` is neither the base scenario `{base_name}` nor a variant"
                ));
            } else if baseline_cycle(&variants, k) {
                problems.push(format!(
                    "{tag}: `baseline` `{b}` leads back to the variant itself"
                ));
            }
        }
        if let Some(s) = v.overrides.get("scenario").and_then(toml::Value::as_table) {
            for key in ["base_year", "end_year", "discount_rate", "name"] {
                if s.contains_key(key) {
                    problems.push(format!(
                        "{tag}: `scenario.{key}` cannot change in a variant (variants are compared year by year with their baseline)"
                    ));
                }
            }
        }
        let mut effects = Vec::new();
        for (j, e) in v.effects.iter().enumerate() {
            match parse_effect(e) {
                Ok(e) => effects.push(e),
                Err(m) => problems.push(format!("{tag}: `effect[{j}]`: {m}")),
            }
        }
        let merged = match variant::merge(&doc, &v.overrides) {
            Ok(mut m) => {
                if let Some(toml::Value::Table(s)) = m.get_mut("scenario") {
                    s.insert("name".into(), toml::Value::String(v.name.clone()));
                }
                m
            }
            Err(e) => {
                problems.push(format!("{tag}: {e}"));
                continue;
            }
        };
        let file = match ScenarioFile::from_table(merged.clone()) {
            Ok(f) => f,
            Err(p) => {
                // A service the scenario does not have is read as a new one, which
                // must be given whole: most often its id is mistyped.
                // Said only where a problem is in the services.
                let in_services = p.iter().any(|p| {
                    p.key.as_deref().is_some_and(|k| k.starts_with("service"))
                        || p.message.contains("`service`")
                });
                let added = variant::added_ids(&doc, &v.overrides, "service");
                if in_services && !added.is_empty() {
                    let known = variant::ids(&doc, "service").join(", ");
                    for id in added {
                        problems.push(format!(
                            "{tag}: service `{id}` is not one of the scenario's ({known}), so it is read as a new service, given whole"
                        ));
                    }
                }
                problems.extend(p.into_iter().map(|mut p| {
                    // The merged document's places by id, not by index: the variant's
                    // own text has no such index.
                    p.key = p.key.map(|k| variant::name_elements(&k, &merged));
                    p.message = p.message.split_whitespace().collect::<Vec<_>>().join(" ");
                    format!("{tag}: {p}")
                }));
                continue;
            }
        };
        match load_file(source, file, &effects) {
            Ok(l) => out.push(LoadedVariant {
                variant: v.clone(),
                loaded: l,
            }),
            Err(e) => {
                // A problem of the inputs it shares with the base scenario (a file, a
                // row) is the base's, said once.
                let own: Vec<String> = e
                    .problems
                    .iter()
                    .filter(|p| !problems.contains(p))
                    .map(|p| format!("{tag}: {p}"))
                    .collect();
                problems.extend(own);
            }
        }
    }
    out
}

/// A `[[variant.effect]]` table: `exposure = { service, years = [e0, e1] }`,
/// `outcome` and `factor`.
fn parse_effect(t: &toml::Table) -> Result<CohortEffect, String> {
    for k in t.keys() {
        if !matches!(k.as_str(), "exposure" | "outcome" | "factor") {
            return Err(format!(
                "`{k}` is an unknown key (an effect has exposure, outcome and factor)"
            ));
        }
    }
    let exposure = t
        .get("exposure")
        .and_then(toml::Value::as_table)
        .ok_or("needs `exposure = { service = \"…\", years = [first, last] }`")?;
    for k in exposure.keys() {
        if !matches!(k.as_str(), "service" | "years") {
            return Err(format!("`exposure.{k}` is an unknown key"));
        }
    }
    let service = exposure
        .get("service")
        .and_then(toml::Value::as_str)
        .ok_or("`exposure.service` must name a service")?;
    let years: Vec<i64> = exposure
        .get("years")
        .and_then(toml::Value::as_array)
        .map(|a| a.iter().filter_map(toml::Value::as_integer).collect())
        .unwrap_or_default();
    let [e0, e1] = years[..] else {
        return Err("`exposure.years` must be two years: [first, last]".into());
    };
    let year =
        |y: i64| i32::try_from(y).map_err(|_| format!("`exposure.years`: {y} is not a year"));
    let outcome = t
        .get("outcome")
        .and_then(toml::Value::as_str)
        .ok_or("`outcome` must name a service")?;
    let factor = match t.get("factor") {
        Some(toml::Value::Float(f)) => *f,
        Some(toml::Value::Integer(i)) => *i as f64,
        _ => return Err("`factor` must be a number (0.85: 15 % fewer)".into()),
    };
    Ok(CohortEffect {
        exposure: service.to_string(),
        years: (year(e0)?, year(e1)?),
        outcome: outcome.to_string(),
        factor,
    })
}

/// Whether following the baselines from variant `k` comes back to it.
fn baseline_cycle(variants: &[Variant], k: usize) -> bool {
    let mut at = k;
    for _ in 0..=variants.len() {
        let Some(b) = &variants[at].baseline else {
            return false;
        };
        match variants.iter().position(|v| v.name == *b) {
            Some(next) if next == k => return true,
            Some(next) => at = next,
            None => return false,
        }
    }
    true
}

/// Loads the inputs a parsed scenario file names and checks them.
fn load_file(
    source: &Source,
    file: ScenarioFile,
    effects: &[CohortEffect],
) -> Result<LoadedScenario, LoadError> {
    let source = source.clone();
    let name = source.name();
    let mut l = Loader {
        source: &source,
        encoding: TextEncoding::Detect,
        problems: Vec::new(),
        files: Vec::new(),
        notes: Vec::new(),
    };
    if let Some(e) = &file.population.encoding {
        match e.parse() {
            Ok(enc) => l.encoding = enc,
            Err(m) => l.key_problem("population.encoding", m),
        }
    }
    let keep = file.population.areas.as_deref();
    let population =
        l.table(&file.population.file, None).and_then(
            |t| match super::population::to_population_of(&t, keep) {
                Ok((p, skipped)) => {
                    l.notes.extend(skipped.message(&t.source));
                    Some(p)
                }
                Err(e) => {
                    l.problem(e.to_string());
                    None
                }
            },
        );
    let Some(population) = population else {
        // Without a population nothing else can be checked against it; still list the
        // files that cannot be read at all.
        for rel in other_files(&file) {
            if let Err(e) = source.read(rel) {
                l.problem(e.to_string());
            }
        }
        return Err(LoadError {
            problems: l.problems,
        });
    };
    let base = file.scenario.base_year;
    if population.year_index(Year(base)).is_none() {
        let years: Vec<String> = population.years().iter().map(ToString::to_string).collect();
        l.key_problem(
            "scenario.base_year",
            format!(
                "{base} is not a year of {} (it has {})",
                source.resolve(&file.population.file).display(),
                years.join(", ")
            ),
        );
    }
    let area_names = file
        .areas
        .as_ref()
        .map(|a| load_area_names(&mut l, &a.file, &population))
        .unwrap_or_default();
    if population.year_index(Year(base)).is_some() {
        let notes = aggregate_notes(&population, Year(base), &area_names, &file.population.file);
        l.notes.extend(notes);
    }
    let inputs = load_inputs(&mut l, &file, &population);
    let services = load_services(&mut l, &file, &population);
    let alignment = file
        .alignment
        .as_ref()
        .and_then(|a| load_alignment(&mut l, a, &population));
    // Catchment rows are placed by the base year: without it in the population, the
    // network's problems would only echo that one.
    let network = population
        .year_index(Year(base))
        .and_then(|_| load_network(&mut l, &file, &population));
    let migration_rate_sd = file
        .uncertainty
        .as_ref()
        .and_then(|u| u.migration_rate_sd.clone())
        .and_then(|k| load_migration_rate_sd(&mut l, &k, &population));
    if inputs.is_none() && l.problems.is_empty() {
        let missing =
            (base + 1..=file.scenario.end_year).find(|y| population.year_index(Year(*y)).is_none());
        if let Some(y) = missing {
            l.key_problem(
                "scenario.end_year",
                format!(
                    "year {y} is not in the population table, and without [fertility] and [mortality] it cannot be projected"
                ),
            );
        }
    }
    if !l.problems.is_empty() {
        return Err(LoadError {
            problems: l.problems,
        });
    }
    let s = &file.scenario;
    let mut scenario = Scenario {
        name: s.name.clone(),
        base_year: s.base_year,
        end_year: s.end_year,
        discount_rate: s.discount_rate.unwrap_or(0.0),
        population,
        inputs,
        alignment,
        services,
        network,
    };
    for (j, e) in effects.iter().enumerate() {
        if let Err(err) = scenario.apply_effect(e) {
            return Err(LoadError {
                problems: vec![format!("{name}: `effect[{j}]`: {err}")],
            });
        }
    }
    let scenario = scenario.validate().map_err(|e| LoadError {
        problems: vec![format!("{name}: {e}")],
    })?;
    Ok(LoadedScenario {
        files: l.files,
        notes: l.notes,
        source,
        file,
        scenario,
        area_names,
        variants: Vec::new(),
        migration_rate_sd,
    })
}

/// Every file a scenario names besides the population.
fn other_files(f: &ScenarioFile) -> Vec<&str> {
    let mut v: Vec<&str> = Vec::new();
    v.extend(f.fertility.as_ref().map(|s| s.file.as_str()));
    v.extend(f.mortality.as_ref().map(|s| s.file.as_str()));
    if let Some(Some(NumberOrTable::Table(t))) = f.mortality.as_ref().map(|m| &m.improvement) {
        v.push(t.as_str());
    }
    if let Some(Some(NumberOrTable::Table(t))) =
        f.uncertainty.as_ref().map(|u| &u.migration_rate_sd)
    {
        v.push(t.as_str());
    }
    for m in &f.migration {
        v.extend(
            [&m.counts, &m.total, &m.profile, &m.rates, &m.destinations]
                .into_iter()
                .flatten()
                .map(String::as_str),
        );
    }
    v.extend(f.catchment.as_ref().map(|c| c.file.as_str()));
    v.extend(f.areas.as_ref().map(|c| c.file.as_str()));
    if let Some(a) = &f.alignment {
        v.extend([a.parents.as_str(), a.control.as_str()]);
    }
    v
}

/// Checks a scenario and every input it names without running anything, and returns
/// every problem found (an empty list means the scenario is valid).
pub fn validate(source: &Source) -> Vec<String> {
    validate_with_variants(source, &[])
}

/// As [`validate`], with the variants of `variant_files` (see
/// [`load_with_variants`]).
pub fn validate_with_variants(source: &Source, variant_files: &[PathBuf]) -> Vec<String> {
    match load_with_variants(source.clone(), variant_files) {
        Ok(l) => check_trajectories(&l, None).err().into_iter().collect(),
        Err(e) => e.problems,
    }
}
